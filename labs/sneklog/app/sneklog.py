"""SnekLog: a care log for reptiles (written for this lab): animals, their
feedings and sheds, and pictures, which go to an S3 bucket; the database
row of a picture holds only its key. Served by gunicorn:

    gunicorn --bind 0.0.0.0:8000 sneklog:app

The configuration is /etc/sneklog/sneklog.conf (SNEKLOG_CONF to change).
Every response says which node served it (X-Served-By) and the running
version (X-Version); /metrics is for Prometheus; each request is logged to
syslog as "sneklog".
"""
import configparser
import logging
import logging.handlers
import os
import socket
import uuid

import psycopg2
import psycopg2.extras
from flask import Flask, Response, abort, jsonify, render_template, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = configparser.ConfigParser()
CONF.read(os.environ.get("SNEKLOG_CONF", "/etc/sneklog/sneklog.conf"))
NODE = socket.gethostname()
try:
    with open(os.path.join(HERE, "VERSION")) as f:
        VERSION = f.read().strip()
except OSError:
    VERSION = "dev"

app = Flask(__name__, template_folder=os.path.join(HERE, "templates"))
log = logging.getLogger("sneklog")
log.setLevel(logging.INFO)
if os.path.exists("/dev/log"):
    h = logging.handlers.SysLogHandler(address="/dev/log")
    h.setFormatter(logging.Formatter("sneklog: %(message)s"))
    log.addHandler(h)
REQUESTS = Counter("sneklog_requests_total", "Requests served", ["method", "status"])


def db():
    c = CONF["database"]
    return psycopg2.connect(host=c["host"], dbname=c["name"], user=c["user"], password=c["password"],
                            connect_timeout=3)


def sql(q, args=(), one=False):
    conn = db()
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(q, args)
            rows = cur.fetchall() if cur.description else []
        return (rows[0] if rows else None) if one else rows
    finally:
        conn.close()


def s3():
    import boto3  # imported when first used: the app answers sooner after a restart

    c = CONF["store"]
    return boto3.client("s3", endpoint_url=c["endpoint"], aws_access_key_id=c["access_key"],
                        aws_secret_access_key=c["secret_key"], region_name="us-east-1")


BUCKET = CONF.get("store", "bucket", fallback="sneklog-pictures")


@app.after_request
def identify(resp):
    resp.headers["X-Served-By"] = NODE
    resp.headers["X-Version"] = VERSION
    REQUESTS.labels(request.method, str(resp.status_code)).inc()
    if request.path not in ("/metrics", "/health"):
        log.info("%s %s %d", request.method, request.path, resp.status_code)
    return resp


@app.get("/health")
def health():
    sql("SELECT 1")
    return "ok\n"


@app.get("/version")
def version():
    return jsonify(version=VERSION, node=NODE)


@app.get("/metrics")
def metrics():
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


def animals():
    return sql("""SELECT a.id, a.name, a.species,
                    (SELECT max(at)::text FROM feedings f WHERE f.animal_id = a.id) AS last_fed,
                    (SELECT max(at)::text FROM sheds s WHERE s.animal_id = a.id) AS last_shed,
                    (SELECT array_agg(p.id ORDER BY p.id) FROM pictures p WHERE p.animal_id = a.id) AS pictures
                  FROM animals a ORDER BY a.id""")


@app.get("/")
def index():
    return render_template("index.html", animals=animals(), node=NODE, version=VERSION)


@app.get("/api/animals")
def list_animals():
    return jsonify(animals())


@app.post("/api/animals")
def add_animal():
    body = request.get_json(force=True)
    row = sql("INSERT INTO animals (name, species) VALUES (%s, %s) RETURNING id, name, species",
              (body["name"], body.get("species", "")), one=True)
    return jsonify(row), 201


@app.post("/api/animals/<int:aid>/feedings")
def feed(aid):
    body = request.get_json(force=True, silent=True) or {}
    row = sql("INSERT INTO feedings (animal_id, food) VALUES (%s, %s) RETURNING id, food, at::text",
              (aid, body.get("food", "mouse")), one=True)
    return jsonify(row), 201


@app.post("/api/animals/<int:aid>/sheds")
def shed(aid):
    body = request.get_json(force=True, silent=True) or {}
    row = sql("INSERT INTO sheds (animal_id, complete) VALUES (%s, %s) RETURNING id, complete, at::text",
              (aid, bool(body.get("complete", True))), one=True)
    return jsonify(row), 201


@app.post("/api/animals/<int:aid>/pictures")
def upload(aid):
    f = request.files.get("picture")
    if f is None:
        abort(400, "send the picture as multipart field 'picture'")
    data = f.read()
    key = "pictures/%d/%s" % (aid, uuid.uuid4())
    s3().put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=f.mimetype or "application/octet-stream")
    row = sql("INSERT INTO pictures (animal_id, s3_key, content_type, size) VALUES (%s, %s, %s, %s) "
              "RETURNING id, s3_key, content_type, size", (aid, key, f.mimetype, len(data)), one=True)
    return jsonify(row), 201


@app.get("/pictures/<int:pid>")
def picture(pid):
    row = sql("SELECT s3_key, content_type FROM pictures WHERE id = %s", (pid,), one=True)
    if row is None:
        abort(404)
    import botocore.exceptions

    try:
        obj = s3().get_object(Bucket=BUCKET, Key=row["s3_key"])
    except botocore.exceptions.ClientError:
        abort(404)
    return Response(obj["Body"].read(), mimetype=row["content_type"])


def ensure_bucket():
    """Makes the pictures bucket if the store has none (every app node may
    try; the store answers the second one that it is there)."""
    import botocore.exceptions

    client = s3()
    try:
        client.head_bucket(Bucket=BUCKET)
    except botocore.exceptions.ClientError:
        try:
            client.create_bucket(Bucket=BUCKET)
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


if __name__ == "__main__":
    ensure_bucket()
