"""The TodoMVC JSON API and page.

Writes go to the primary. Reads go to a live standby when it is safe: the
standby must already have replayed the primary's WAL position taken at the
start of the request, so a read never misses a write that finished before
it (a todo added through nginx1 is there when read through nginx2). When no
standby qualifies, reads go to the primary.
"""
import json
import random
import time

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import JsonResponse
from django.shortcuts import render

from .models import Todo

_discovery = {"at": 0.0, "primary": None, "standbys": []}


def discovery():
    """What lab-discovery last wrote from Serf: the primary and the standbys
    that are caught up. Read at most once a second."""
    now = time.monotonic()
    if now - _discovery["at"] > 1:
        _discovery["at"] = now
        try:
            with open("/etc/todo/discovery.json") as f:
                d = json.load(f)
            _discovery["primary"] = d.get("primary")
            _discovery["standbys"] = d.get("standbys") or []
        except (OSError, ValueError):
            pass
    return _discovery


def follow_primary():
    """Point "default" (writes) at the primary discovery names: after a
    failover the next request writes to the new one, without a restart."""
    p = discovery()["primary"]
    if not p or p == settings.PRIMARY or p not in settings.DATABASES:
        return
    conn = connections["default"]
    conn.close()
    conn.settings_dict["HOST"] = settings.DATABASES[p]["HOST"]
    settings.PRIMARY = p


def follow_primary_middleware(get_response):
    """Every request first follows the primary (settings.MIDDLEWARE)."""
    def middleware(request):
        follow_primary()
        return get_response(request)
    return middleware


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
    """Readiness: the app reaches the database it writes to. Serf's app tag
    follows this, and nginx sends only to apps that are ready."""
    try:
        with connections["default"].cursor() as c:
            c.execute("SELECT 1")
    except DatabaseError as e:
        return reply({"node": settings.LAB_NODE, "status": "no database", "error": str(e)}, status=503)
    return reply({"node": settings.LAB_NODE, "status": "ok", "standbys": live_standbys()})


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


def toggle_all(request):
    if request.method != "POST":
        return reply({"error": "method not allowed"}, status=405)
    data = body(request) or {}
    n = Todo.objects.update(completed=bool(data.get("completed", True)))
    return reply({"updated": n})


def todo(request, todo_id):
    if request.method == "GET":
        alias = read_alias()
        t = Todo.objects.using(alias).filter(id=todo_id).first()
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
