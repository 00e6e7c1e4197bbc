"""The TodoMVC JSON API and page.

Writes go to the primary. Reads go to a live standby when it is safe: the
standby must already have replayed the primary's WAL position taken at the
start of the request, so a read never misses a write that finished before
it (a todo added through nginx1 is there when read through nginx2). When no
standby qualifies, reads go to the primary.
"""
import functools
import json
import logging
import random
import time

from django.conf import settings
from django.db import DatabaseError, InterfaceError, InternalError, OperationalError, connections
from django.http import JsonResponse
from django.shortcuts import render

from .models import Todo

log = logging.getLogger("todo")
_discovery = {"at": 0.0, "primary": None, "standbys": [], "known": False}


def discovery(force=False):
    """What lab-discovery last wrote from Serf: the primary and the standbys
    that are caught up. Read at most once a second, or now when forced."""
    now = time.monotonic()
    if force or now - _discovery["at"] > 1:
        _discovery["at"] = now
        try:
            with open("/etc/todo/discovery.json") as f:
                d = json.load(f)
            _discovery["primary"] = d.get("primary")
            _discovery["standbys"] = d.get("standbys") or []
            _discovery["known"] = True
        except (OSError, ValueError):
            pass
    return _discovery


def follow_primary(force=False):
    """Point "default" (writes) at the primary discovery names: after a
    failover the next request writes to the new one, without a restart."""
    p = discovery(force)["primary"]
    if not p or p == settings.PRIMARY or p not in settings.DATABASES:
        return
    conn = connections["default"]
    conn.close()
    conn.settings_dict["HOST"] = settings.DATABASES[p]["HOST"]
    settings.PRIMARY = p


def no_primary():
    """Discovery says no primary is alive: the old one died and no standby
    has promoted yet. A write then fails at once (503), not after a
    connection attempt to the dead one, so a client that retries writes as
    soon as the new primary is named."""
    d = discovery()
    return d["known"] and d["primary"] is None


def no_primary_reply():
    return reply({"node": settings.LAB_NODE, "error": "no primary: a failover is under way"}, status=503)


def follow_primary_middleware(get_response):
    """Every request first follows the primary (settings.MIDDLEWARE)."""
    def middleware(request):
        follow_primary()
        if request.method not in ("GET", "HEAD", "OPTIONS") and no_primary():
            return no_primary_reply()
        return get_response(request)
    return middleware


def lost_primary(e):
    """Whether a database error says "default" is no longer the primary to
    write to: its connection broke (a restart, a restore, a failover) or it
    is a standby now ("cannot execute ... in a read-only transaction")."""
    if isinstance(e, (OperationalError, InterfaceError)):
        return True
    return isinstance(e, InternalError) and "read-only" in str(e)


def retry_on_failover(view):
    """Run a view again, once, when its database error says the primary
    moved: the connections are closed, discovery is read at once and the
    request goes to the primary it names. A standby refuses a write and a
    broken connection rolls back its transaction, so running it again does
    not repeat it (only a commit whose reply was lost in the break itself
    could be, the same as any client retry)."""
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except DatabaseError as e:
            if not lost_primary(e):
                raise
            log.warning("%s %s: %s: following the primary again and retrying once", request.method, request.path, e)
            for c in connections.all():
                c.close()
            follow_primary(force=True)
            if no_primary():
                return no_primary_reply()
            return view(request, *args, **kwargs)
    return wrapped


def live_standbys():
    """Standbys Serf says are alive and caught up."""
    return [s for s in discovery()["standbys"] if s in settings.DATABASES and s != settings.PRIMARY]


def read_alias():
    standbys = live_standbys()
    if not standbys:
        return "default"
    try:
        with connections["default"].cursor() as c:
            c.execute("SELECT pg_current_wal_lsn()::text")
            lsn = c.fetchone()[0]
    except DatabaseError:
        return "default"
    random.shuffle(standbys)
    for name in standbys:
        try:
            with connections[name].cursor() as c:
                c.execute("SELECT pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])
                if c.fetchone()[0]:
                    return name
        except DatabaseError:
            connections[name].close()
    return "default"


def db_name(alias):
    return settings.PRIMARY if alias == "default" else alias


def reply(data, status=200, alias="default"):
    r = JsonResponse(data, status=status, safe=False)
    r["X-Served-By"] = settings.LAB_NODE
    r["X-DB"] = db_name(alias)
    return r


def body(request):
    try:
        return json.loads(request.body or b"{}")
    except ValueError:
        return None


def index(request):
    return render(request, "index.html", {"node": settings.LAB_NODE})


def health(request):
    """Liveness: the app answers."""
    return reply({"node": settings.LAB_NODE, "status": "ok"})


def ready(request):
    """Readiness: the app reaches the database it writes to, and that is a
    primary (not a standby it was pointed at before a failover or a
    restore). Serf's app tag follows this, and nginx sends only to apps
    that are ready."""
    if no_primary():
        return reply({"node": settings.LAB_NODE, "status": "no primary"}, status=503)
    try:
        with connections["default"].cursor() as c:
            c.execute("SELECT pg_is_in_recovery()")
            standby = c.fetchone()[0]
    except DatabaseError as e:
        connections["default"].close()
        follow_primary(force=True)
        return reply({"node": settings.LAB_NODE, "status": "no database", "error": str(e)}, status=503)
    if standby:
        follow_primary(force=True)
        return reply({"node": settings.LAB_NODE, "status": "database is a standby", "db": settings.PRIMARY}, status=503)
    return reply({"node": settings.LAB_NODE, "status": "ok", "standbys": live_standbys()})


@retry_on_failover
def todos(request):
    if request.method == "GET":
        alias = read_alias()
        items = [t.as_dict() for t in Todo.objects.using(alias).all()]
        return reply(items, alias=alias)
    if request.method == "POST":
        data = body(request)
        title = (data or {}).get("title", "")
        if not isinstance(title, str) or not title.strip():
            return reply({"error": "title is required"}, status=400)
        order = (data or {}).get("order", 0)
        t = Todo.objects.create(title=title.strip(), order=order if isinstance(order, int) else 0)
        return reply(t.as_dict(), status=201)
    if request.method == "DELETE":
        # Clear completed.
        n, _ = Todo.objects.filter(completed=True).delete()
        return reply({"deleted": n})
    return reply({"error": "method not allowed"}, status=405)


@retry_on_failover
def toggle_all(request):
    if request.method != "POST":
        return reply({"error": "method not allowed"}, status=405)
    data = body(request) or {}
    n = Todo.objects.update(completed=bool(data.get("completed", True)))
    return reply({"updated": n})


@retry_on_failover
def todo(request, todo_id):
    if request.method == "GET":
        alias = read_alias()
        t = Todo.objects.using(alias).filter(id=todo_id).first()
        if t is None and alias != "default":
            # The standby was checked to have replayed the primary's
            # position; ask the primary before saying "not found" anyway.
            alias = "default"
            t = Todo.objects.filter(id=todo_id).first()
        if t is None:
            return reply({"error": "not found"}, status=404, alias=alias)
        return reply(t.as_dict(), alias=alias)
    t = Todo.objects.filter(id=todo_id).first()
    if t is None:
        return reply({"error": "not found"}, status=404)
    if request.method == "PATCH":
        data = body(request)
        if data is None:
            return reply({"error": "bad JSON"}, status=400)
        if "title" in data:
            title = data["title"]
            if not isinstance(title, str):
                return reply({"error": "title must be a string"}, status=400)
            if not title.strip():
                # TodoMVC: editing a title to nothing deletes the todo.
                t.delete()
                return reply({"deleted": todo_id})
            t.title = title.strip()
        if "completed" in data:
            t.completed = bool(data["completed"])
        if "order" in data and isinstance(data["order"], int):
            t.order = data["order"]
        t.save()
        return reply(t.as_dict())
    if request.method == "DELETE":
        t.delete()
        return reply({"deleted": todo_id})
    return reply({"error": "method not allowed"}, status=405)
