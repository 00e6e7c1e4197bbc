"""Eddie's GraphQL API (a stand-in written for this lab, on Debian's
python3-graphene under gunicorn): items with owners, users, a transfer
mutation, sign-up with a welcome mail, and a notice every user sees.

Items are read through this node's cache (cache.py); an update drops its
id here and publishes it on the bus (bus.py) so every api node drops it.
/etc/eddie/flush-off switches that off: the original bug, on purpose.

Served by gunicorn (one worker, threads): POST /graphql {query, variables}.
"""
import configparser
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import types

import graphene
import psycopg2
import psycopg2.extras

from bus import Bus
from cache import Cache, key

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = configparser.ConfigParser()
CONF.read(os.environ.get("EDDIE_CONF", "/etc/eddie/eddie.conf"))
FLUSH_OFF = "/etc/eddie/flush-off"
NODE = socket.gethostname()
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
log = logging.getLogger("eddie")
psycopg2.extras.register_uuid()

cache = Cache(CONF.getfloat("cache", "ttl", fallback=300))


def db():
    c = CONF["database"]
    return psycopg2.connect(host=c["host"], dbname=c["name"], user=c["user"], password=c["password"],
                            connect_timeout=3)


def query(sql, args=(), one=False, write=False):
    conn = db()
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, args)
            rows = cur.fetchall() if cur.description else []
        return (rows[0] if rows else None) if one else rows
    finally:
        conn.close()


def flush_on():
    return not os.path.exists(FLUSH_OFF)


def on_flush(body):
    try:
        cache.drop(body)
    except ValueError:
        log.warning("bus: not an id: %r", body)


bus = Bus(CONF["bus"]["host"], CONF["bus"]["user"], CONF["bus"]["password"], on_flush, cache.clear)


def load_item(k):
    return query("SELECT id, title, owner FROM items WHERE id = %s", (k,), one=True)


class User(graphene.ObjectType):
    id = graphene.ID()
    name = graphene.String()
    email = graphene.String()


def user_of(id_):
    row = query("SELECT id, name, email FROM users WHERE id = %s", (key(id_),), one=True)
    return types.SimpleNamespace(**row) if row else None


class Item(graphene.ObjectType):
    id = graphene.ID()
    title = graphene.String()
    owner = graphene.Field(User)

    def resolve_owner(root, info):
        return user_of(root.owner_id)


def item_of(row):
    return types.SimpleNamespace(id=row["id"], title=row["title"], owner_id=row["owner"]) if row else None


class Notice(graphene.ObjectType):
    text = graphene.String()
    set_at = graphene.String()


class CacheStats(graphene.ObjectType):
    entries = graphene.Int()
    hits = graphene.Int()
    misses = graphene.Int()
    flushes = graphene.Int()
    clears = graphene.Int()
    flush_enabled = graphene.Boolean()
    bus_connected = graphene.Boolean()
    item_hits = graphene.Int(id=graphene.ID(required=True))

    def resolve_item_hits(root, info, id):
        return cache.hits_of(id)


class Query(graphene.ObjectType):
    node = graphene.String(description="the api node that answered")
    item = graphene.Field(Item, id=graphene.ID(required=True), description="an item, through this node's cache")
    items = graphene.List(Item, search=graphene.String(), description="search: straight from the database")
    users = graphene.List(User)
    notice = graphene.Field(Notice)
    cache = graphene.Field(CacheStats)

    def resolve_node(self, info):
        return NODE

    def resolve_item(self, info, id):
        return item_of(cache.get(id, load_item))

    def resolve_items(self, info, search=""):
        rows = query("SELECT id, title, owner FROM items WHERE title ILIKE %s ORDER BY title", ("%" + search + "%",))
        return [item_of(r) for r in rows]

    def resolve_users(self, info):
        return [types.SimpleNamespace(**r) for r in query("SELECT id, name, email FROM users ORDER BY name")]

    def resolve_notice(self, info):
        row = query("SELECT text, set_at::text AS set_at FROM notice WHERE id = 1", one=True)
        return types.SimpleNamespace(**row) if row else None

    def resolve_cache(self, info):
        return types.SimpleNamespace(flush_enabled=flush_on(), bus_connected=bus.connected.is_set(), **cache.stats())


class TransferItem(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True)
        to = graphene.ID(required=True, description="the new owner's user id")

    Output = Item

    def mutate(self, info, id, to):
        row = query("UPDATE items SET owner = %s WHERE id = %s RETURNING id, title, owner", (key(to), key(id)),
                    one=True, write=True)
        if row is None:
            raise ValueError("no item %s" % id)
        if flush_on():
            cache.drop(id)
            if not bus.publish(row["id"].bytes):
                log.warning("transfer of %s: the bus is away; other nodes see it when it returns", id)
        return item_of(row)


class SignUp(graphene.Mutation):
    class Arguments:
        name = graphene.String(required=True)
        email = graphene.String(required=True)

    Output = User

    def mutate(self, info, name, email):
        row = query("INSERT INTO users (name, email) VALUES (%s, %s) RETURNING id, name, email", (name, email),
                    one=True, write=True)
        send_mail("signup", email, {"name": name, "email": email, "node": NODE, "user_id": str(row["id"])})
        return types.SimpleNamespace(**row)


class SetNotice(graphene.Mutation):
    class Arguments:
        text = graphene.String(required=True)

    Output = Notice

    def mutate(self, info, text):
        row = query("INSERT INTO notice (id, text) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text, "
                    "set_at = now() RETURNING text, set_at::text AS set_at", (text,), one=True, write=True)
        return types.SimpleNamespace(**row)


class Mutation(graphene.ObjectType):
    transfer_item = TransferItem.Field()
    sign_up = SignUp.Field()
    set_notice = SetNotice.Field()


schema = graphene.Schema(query=Query, mutation=Mutation)


def send_mail(template, to, variables):
    """Each mail is sent by a process of its own, its parameters as JSON on
    its stdin (the fix for mails lost under green threads); a thread reaps it."""
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "sendmail.py")], stdin=subprocess.PIPE)
    p.stdin.write(json.dumps({"template": template, "to": to, "vars": variables}).encode())
    p.stdin.close()
    threading.Thread(target=p.wait, daemon=True).start()


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    headers = [("Content-Type", "application/json"), ("X-Served-By", NODE)]
    if path == "/health":
        query("SELECT 1")
        start_response("200 OK", headers)
        return [b'{"ok": true}']
    if path != "/graphql":
        start_response("404 Not Found", headers)
        return [b'{"error": "POST /graphql"}']
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        req = json.loads(environ["wsgi.input"].read(length) or b"{}")
    except ValueError:
        start_response("400 Bad Request", headers)
        return [b'{"error": "want JSON: {\\"query\\": ..., \\"variables\\": {...}}"}']
    result = schema.execute(req.get("query", ""), variable_values=req.get("variables") or {})
    body = {"data": result.data}
    if result.errors:
        body["errors"] = [{"message": str(e)} for e in result.errors]
    start_response("200 OK", headers)
    return [json.dumps(body).encode()]
