#!/usr/bin/env python3
"""SweFreq: a browser of variant frequencies, a small stand-in for the
real SweFreq written for this lab (Tornado, PostgreSQL for variants,
MariaDB for the users who log in).

    swefreq.py serve              serve on the port the config names
    swefreq.py adduser NAME PASS  add (or reset) a user of the site

The configuration is /etc/swefreq/swefreq.conf (SWEFREQ_CONF to change).
"""
import configparser
import hashlib
import hmac
import os
import re
import sys

import psycopg2
import pymysql
import tornado.ioloop
import tornado.web

import features

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = configparser.ConfigParser()
CONF.read(os.environ.get("SWEFREQ_CONF", "/etc/swefreq/swefreq.conf"))
COLUMNS = ["chrom", "pos", "rsid", "ref", "alt", "ac", "an", "af"]
LIMIT = 100


class QueryError(ValueError):
    pass


def variant_db():
    """A new connection for every request: the database's name is
    resolved each time, so a change of what it names is seen at once."""
    c = CONF["database"]
    return psycopg2.connect(host=c["host"], port=c.getint("port", 5432), dbname=c["name"],
                            user=c["user"], password=c["password"], connect_timeout=3)


def users_db():
    return pymysql.connect(unix_socket="/run/mysqld/mysqld.sock", user="swefreq", database="swefreq_users")


def parse_query(q):
    """'22:16050088', '22-16050088', '22:16050000-16060000' or 'rs100003'."""
    q = q.strip()
    m = re.fullmatch(r"(?:chr)?(\w+)[:-](\d+)", q)
    if m:
        return "chrom = %s AND pos = %s", (m.group(1), int(m.group(2)))
    m = re.fullmatch(r"(?:chr)?(\w+):(\d+)-(\d+)", q)
    if m:
        return "chrom = %s AND pos BETWEEN %s AND %s", (m.group(1), int(m.group(2)), int(m.group(3)))
    if re.fullmatch(r"rs\d+", q):
        return "rsid = %s", (q,)
    raise QueryError("search by position (22:16050088), range (22:16050000-16060000) or id (rs100003)")


def search(q):
    where, args = parse_query(q)
    conn = variant_db()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT %s FROM variants WHERE %s ORDER BY chrom, pos, ref, alt LIMIT %d"
                        % (", ".join(COLUMNS), where, LIMIT), args)
            rows = [dict(zip(COLUMNS, r)) for r in cur.fetchall()]
        return features.variant_extras(conn, rows)
    finally:
        conn.close()


def database_info():
    conn = variant_db()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT host(inet_server_addr()), (SELECT count(*) FROM variants)")
            addr, count = cur.fetchone()
            cur.execute("SELECT tbl, file, sha256, rows, loaded_on FROM dataset ORDER BY tbl")
            loaded = [dict(zip(["table", "file", "sha256", "rows", "loaded_on"], r)) for r in cur.fetchall()]
        return {"name": CONF["database"]["host"], "address": addr, "variants": count, "loaded": loaded}
    finally:
        conn.close()


def site():
    s = CONF["site"]
    return {"branch": s.get("branch", "?"), "revision": s.get("revision", "?"), "features": features.NAMES}


def password_hash(password, salt):
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 50_000)


def check_login(name, password):
    conn = users_db()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT salt, pw_hash FROM users WHERE username = %s", (name,))
            row = cur.fetchone()
    finally:
        conn.close()
    return row is not None and hmac.compare_digest(password_hash(password, row[0]), row[1])


class Base(tornado.web.RequestHandler):
    def get_current_user(self):
        user = self.get_secure_cookie("user")
        return user.decode() if user else None

    def page(self, q="", variants=None, error=None):
        self.render("index.html", q=q, variants=variants, error=error, site=site(), user=self.current_user)


class Index(Base):
    def get(self):
        self.page()


class Search(Base):
    def get(self):
        q = self.get_argument("q", "")
        try:
            self.page(q, search(q))
        except QueryError as e:
            self.set_status(400)
            self.page(q, error=str(e))


class ApiSearch(Base):
    def get(self):
        q = self.get_argument("q", "")
        try:
            variants = search(q)
        except QueryError as e:
            self.set_status(400)
            self.write({"error": str(e)})
            return
        self.write({"query": q, "count": len(variants), "variants": variants})


class ApiInfo(Base):
    def get(self):
        self.write(dict(site(), database=database_info(), user=self.current_user))


class Health(Base):
    def get(self):
        conn = variant_db()
        conn.close()
        self.write("ok\n")


class Login(Base):
    def get(self):
        self.render("login.html", error=None, site=site())

    def post(self):
        name, password = self.get_argument("username", ""), self.get_argument("password", "")
        if not check_login(name, password):
            self.set_status(403)
            self.render("login.html", error="wrong user name or password", site=site())
            return
        self.set_secure_cookie("user", name, httponly=True)
        self.redirect("/")


class Logout(Base):
    def post(self):
        self.clear_cookie("user")
        self.redirect("/")


def serve():
    app = tornado.web.Application(
        [(r"/", Index), (r"/search", Search), (r"/api/search", ApiSearch), (r"/api/info", ApiInfo),
         (r"/health", Health), (r"/login", Login), (r"/logout", Logout)] + features.handlers(variant_db),
        template_path=os.path.join(HERE, "templates"),
        cookie_secret=CONF["site"]["cookie_secret"],
        xsrf_cookies=False,
    )
    app.listen(CONF["site"].getint("port", 8000), address=CONF["site"].get("address", ""))
    tornado.ioloop.IOLoop.current().start()


def adduser(name, password):
    salt = os.urandom(16)
    conn = users_db()
    try:
        with conn.cursor() as cur:
            cur.execute("REPLACE INTO users (username, salt, pw_hash) VALUES (%s, %s, %s)",
                        (name, salt, password_hash(password, salt)))
        conn.commit()
    finally:
        conn.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] == ["adduser"] and len(sys.argv) == 4:
        adduser(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
