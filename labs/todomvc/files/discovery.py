#!/usr/bin/python3
"""lab-discovery: Serf-driven service discovery for the todomvc lab.

  lab-discovery event    Serf event handler: on any membership or tag change,
                         rewrite what this node derives from the member list.
  lab-discovery refresh  the same, run by hand or by provisioning.
  lab-discovery watch    app nodes: probe this node's app every second (is it
                         ready: does it reach its database?) and set the Serf
                         tag app=up or app=down when it changes.

What a node derives depends on its role tag:
  nginx: /etc/nginx/todo-upstreams.conf (live app nodes that are ready; when
         none is, every live one, as a load balancer's panic mode; nginx
         reloaded when it changes).
  app:   /etc/todo/discovery.json: the primary (the live pg node tagged
         pg=primary with the highest epoch) for writes, and the live standbys
         whose replay lag is under the bound (lag=ok) for reads.
  adm:   the status page, /var/www/status/index.html and members.json.
"""
import fcntl
import html
import json
import os
import random
import subprocess
import sys
import syslog
import time
import urllib.request

RPC = "127.0.0.1:7373"
SYNC = 2  # seconds between full-state exchanges with a random live member


def serf(*args, timeout=10):
    return subprocess.run(["serf", *args, "-rpc-addr", RPC], capture_output=True, text=True, timeout=timeout, check=True).stdout


def members():
    return json.loads(serf("members", "-format", "json"))["members"]


def self_tags():
    try:
        with open("/var/lib/serf/tags.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_if_changed(path, content, mode=0o644):
    try:
        with open(path) as f:
            if f.read() == content:
                return False
    except OSError:
        pass
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def ip_of(m):
    return m["addr"].rsplit(":", 1)[0]


def alive(ms, **tags):
    return sorted((m for m in ms if m["status"] == "alive" and all(m["tags"].get(k) == v for k, v in tags.items())),
                  key=lambda m: m["name"])


def primary_of(ms):
    """The live primary: of the pg nodes tagged pg=primary, the highest epoch
    (a promotion raises it), then the lowest name."""
    ps = alive(ms, role="pg", pg="primary")
    ps.sort(key=lambda m: (-int(m["tags"].get("epoch", "0") or 0), m["name"]))
    return ps[0] if ps else None


def refresh_nginx(ms):
    backends = alive(ms, role="app", app="up")
    note = ""
    if not backends:
        # No app is ready: send to every live one rather than to none (a
        # load balancer's panic mode); each says what it cannot reach.
        backends, note = alive(ms, role="app"), "  # panic: no app is ready"
    lines = [f"server {ip_of(m)}:8000 max_fails=1 fail_timeout=3s;  # {m['name']}{note}\n" for m in backends]
    if not lines:
        # nginx needs one server; none is up, so answer 502 until one is.
        lines = ["server 127.0.0.1:9 down;  # no live backend\n"]
    if write_if_changed("/etc/nginx/todo-upstreams.conf", "".join(lines)):
        if subprocess.run(["nginx", "-t", "-q"]).returncode == 0:
            subprocess.run(["systemctl", "reload", "nginx"], check=False)


def refresh_app(ms):
    p = primary_of(ms)
    standbys = [m["name"] for m in alive(ms, role="pg", pg="standby", lag="ok")]
    os.makedirs("/etc/todo", exist_ok=True)
    doc = {"primary": p["name"] if p else None, "standbys": standbys,
           "epoch": int(p["tags"].get("epoch", "0") or 0) if p else None}
    if write_if_changed("/etc/todo/discovery.json", json.dumps(doc, indent=2) + "\n"):
        # To the journal (the event handler's own output only reaches Serf's log).
        syslog.openlog("lab-discovery")
        syslog.syslog(f"primary {doc['primary']}, standbys {', '.join(standbys) or 'none'}")


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>{lab}: members</title>
<style>
 body {{ font: 15px system-ui, sans-serif; margin: 2em; color: #222 }}
 table {{ border-collapse: collapse }} td, th {{ padding: .3em .9em; border-bottom: 1px solid #ddd; text-align: left }}
 .alive {{ color: #080 }} .failed {{ color: #c00; font-weight: bold }} .left {{ color: #888 }} .down {{ color: #c00 }}
</style></head><body>
<h1>{lab}</h1>
<p>{n_alive} of {n} members alive &middot; refreshed from Serf at {when} &middot; <a href="members.json">members.json</a></p>
<table><tr><th>member</th><th>address</th><th>role</th><th>status</th><th>health</th><th>tags</th></tr>
{rows}
</table></body></html>
"""


def health(m):
    t = m["tags"]
    if m["status"] != "alive":
        return m["status"]
    if t.get("role") == "app":
        return "app " + t.get("app", "?")
    if t.get("role") == "pg":
        if t.get("pg") == "primary":
            return f"primary (epoch {t.get('epoch', '?')})"
        if t.get("pg") == "standby":
            return "standby, " + ("caught up" if t.get("lag") == "ok" else "behind")
        return t.get("pg", "starting")
    return "ok"


def refresh_adm(ms):
    os.makedirs("/var/www/status", exist_ok=True)
    ms = sorted(ms, key=lambda m: (m["tags"].get("role", ""), m["name"]))
    rows = []
    for m in ms:
        h = health(m)
        cls = "down" if h.endswith("down") else m["status"]
        tags = ", ".join(f"{k}={v}" for k, v in sorted(m["tags"].items()))
        rows.append(f"<tr><td>{html.escape(m['name'])}</td><td>{ip_of(m)}</td><td>{html.escape(m['tags'].get('role', ''))}</td>"
                    f"<td class=\"{m['status']}\">{m['status']}</td><td class=\"{cls}\">{html.escape(h)}</td><td>{html.escape(tags)}</td></tr>")
    doc = [{"name": m["name"], "address": ip_of(m), "role": m["tags"].get("role"), "status": m["status"],
            "health": health(m), "tags": m["tags"]} for m in ms]
    write_if_changed("/var/www/status/members.json", json.dumps(doc, indent=2) + "\n")
    write_if_changed("/var/www/status/index.html", PAGE.format(
        lab=html.escape(lab_name()), n=len(ms), n_alive=sum(m["status"] == "alive" for m in ms),
        when=time.strftime("%H:%M:%S"), rows="\n".join(rows)))


def lab_name():
    try:
        with open("/etc/lab/facts.json") as f:
            return json.load(f)["lab"]
    except (OSError, ValueError, KeyError):
        return "lab"


def sync(me, everyone=False):
    """Serf's gossip can lose a message: a node that missed a tag change
    (app=down, a new primary) would learn it only at Serf's next full-state
    exchange, up to 15 s later (measured: each node missed 5-10% of 60 tag
    changes for over 3 s). Joining a live member is such an exchange, done
    now; both sides leave it with the newer of each member's state. With
    everyone, with every live member at once (after this node's own tag
    changed: the nginx nodes learn it now)."""
    peers = [m["addr"] for m in members() if m["status"] == "alive" and m["name"] != me]
    if peers:
        serf("join", *(peers if everyone else [random.choice(peers)]), timeout=5)


def refresh():
    role = os.environ.get("SERF_SELF_ROLE") or self_tags().get("role")
    # Handlers can run at once; one at a time keeps the files consistent.
    with open("/run/lab-discovery.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ms = members()
        if role == "nginx":
            refresh_nginx(ms)
        elif role == "app":
            refresh_app(ms)
        elif role == "adm":
            refresh_adm(ms)


def watch():
    """The per-node loop. On app nodes: probe this node's app every second
    (ready: it reaches its database) and set the Serf tag app=up/down when
    it changes. On every role: refresh
    from the member list every 5 s (apps: every second) as well as on Serf's events, so a missed or
    reordered event cannot leave a live backend out (or a dead one in)."""
    role = self_tags().get("role")
    with open("/etc/lab/facts.json") as f:
        facts = json.load(f)
    node = facts["node"]
    url = "http://127.0.0.1:8000/api/ready" if role == "app" else None
    # Start from the tag the node carries (kept in Serf's tags file across
    # restarts): a node whose app comes back as it boots changes no tag, so
    # its rejoin is not raced by flapping updates.
    state = self_tags().get("app")
    fails = 0
    last_refresh = last_sync = 0.0
    while True:
        if url:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    up = r.status == 200
            except Exception:
                up = False
            # Down after two failed probes in a row, up after one good one: a
            # graceful reload (or one slow answer) must not empty the upstreams.
            fails = 0 if up else fails + 1
            want = "up" if up else ("down" if fails >= 2 else state)
            if want is not None and want != state:
                try:
                    serf("tags", "-set", f"app={want}")
                    print(f"{node}: app {want}", flush=True)
                    state = want
                except Exception as e:  # serf not up yet: try again next round
                    print(f"{node}: serf tags: {e}", file=sys.stderr, flush=True)
                else:
                    try:  # the nginx nodes learn it now; else the next sync
                        sync(node, everyone=True)
                    except Exception as e:
                        print(f"{node}: sync: {e}", file=sys.stderr, flush=True)
        if time.monotonic() - last_sync >= SYNC:
            last_sync = time.monotonic()
            try:
                sync(node)
            except Exception as e:
                print(f"{node}: sync: {e}", file=sys.stderr, flush=True)
        # Apps resync every second (a failover's new primary must reach them
        # fast, even if Serf's event is late); others every 5 s.
        if time.monotonic() - last_refresh >= (1 if role == "app" else 5):
            last_refresh = time.monotonic()
            try:
                refresh()
            except Exception as e:
                print(f"{node}: refresh: {e}", file=sys.stderr, flush=True)
        time.sleep(1)


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else "refresh"
    if cmd == "event":
        sys.stdin.read()  # the event's members; we re-read the whole list
        refresh()
    elif cmd == "refresh":
        refresh()
    elif cmd == "watch":
        watch()
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
