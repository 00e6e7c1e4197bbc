#!/usr/bin/python3
"""pg-agent: automatic failover of the todomvc lab's PostgreSQL, through Serf.

Runs on every pg node (pg-agent.service) and owns the local server: it is the
one that starts it at boot (the cluster's start.conf is "manual"), so a node
that comes back never starts as a second primary. Twice a second it looks at
Serf's member list and:

  primary   tags itself pg=primary epoch=E; makes the replication slot of
            every other pg node of the lab; if another live primary has a
            higher epoch (or the same, and a lower name), it steps down: it
            stops, rewinds onto that one (pg_rewind) and starts as a standby.
  standby   follows the live primary with the highest epoch (primary_conninfo,
            reloaded); tags lag=ok while its replay is within LAG_BYTES of
            the primary's position, else lag=behind (the apps read only from
            standbys that are ok); if it cannot stream from that primary for
            STUCK seconds (a timeline it cannot follow), it rewinds onto it.
            The primary is gone when this node's Serf calls it failed, or
            when this node cannot reach it and another live pg node's Serf
            calls it failed (asked over that node's Serf RPC: one node's
            view can trail the others' by up to 18 s, see failed_elsewhere).
            When no primary is alive, the standbys elect one: each asks
            every other live pg node for its replay position (directly:
            Serf's tags can lag), and the one with the highest position
            (then the lowest name) promotes itself, with an epoch above
            every epoch seen.

At boot: once Serf has joined, a node that was a primary and finds another
live primary rewinds onto it; otherwise it starts as it was.
"""
import json
import os
import random
import subprocess
import sys
import time

PGV = "15"
DATA = f"/var/lib/postgresql/{PGV}/main"
CONF = f"/etc/postgresql/{PGV}/main/postgresql.conf"
BIN = f"/usr/lib/postgresql/{PGV}/bin"
UNIT = f"postgresql@{PGV}-main"
EPOCH = "/var/lib/postgresql/lab-epoch"
STUCK = 15.0
TICK = 0.5
SYNC = 2.0
LAG_BYTES = 1 << 20

def facts():
    with open("/etc/lab/facts.json") as f:
        return json.load(f)


ME = facts()["node"]


def log(msg):
    print(f"{ME}: {msg}", flush=True)


def run(*args, check=True, timeout=60):
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=timeout)


def as_postgres():
    """psql and pg_rewind run as postgres: a plain setuid, no PAM session
    (runuser would log two lines a second)."""
    return dict(user="postgres", group="postgres", extra_groups=[], cwd="/",
                env=dict(os.environ, HOME="/var/lib/postgresql", PGCONNECT_TIMEOUT="2"))


def psql(sql, host=None, user=None, db="postgres", timeout=5):
    args = ["psql", "-qtAX", "-d", db, "-c", sql]
    if host:
        args += ["-h", host, "-U", user or "rewind"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **as_postgres())
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or f"psql exit {r.returncode}")
    return r.stdout.strip()


def members():
    out = run("serf", "members", "-format", "json", timeout=10).stdout
    return [m for m in json.loads(out)["members"] if m["tags"].get("role") == "pg"]


def sync(everyone=False):
    """A full-state exchange with a random live member (serf join): Serf's
    gossip can lose a tag change, which would reach this node only at the
    next periodic exchange, up to 15 s later; an election must not wait
    for that. (lab-discovery does the same on the other roles.) With
    everyone, with every live member at once: what this node knows (its
    promotion, the primary's death) reaches them all now."""
    out = run("serf", "members", "-format", "json", timeout=10).stdout
    peers = [m["addr"] for m in json.loads(out)["members"] if m["status"] == "alive" and m["name"] != ME]
    if peers:
        run("serf", "join", *(peers if everyone else [random.choice(peers)]), timeout=5)


def push():
    """sync(everyone=True), for a change that must not wait: a failure
    to reach some member is the periodic sync's to make up."""
    try:
        sync(everyone=True)
    except Exception as e:
        print(f"{ME}: push: {e}", file=sys.stderr, flush=True)


def tag(**kv):
    sets = [a for k, v in kv.items() if v is not None for a in ("-set", f"{k}={v}")]
    dels = [a for k, v in kv.items() if v is None for a in ("-delete", k)]
    run("serf", "tags", *sets, *dels, timeout=10)


def my_tags():
    try:
        with open("/var/lib/serf/tags.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def epoch():
    try:
        with open(EPOCH) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def set_epoch(e):
    with open(EPOCH, "w") as f:
        f.write(f"{e}\n")


def rank(m):
    """Order of primaries: the highest epoch wins, then the lowest name."""
    return (-int(m["tags"].get("epoch", "0") or 0), m["name"])


def live_primaries(ms):
    return sorted((m for m in ms if m["status"] == "alive" and m["tags"].get("pg") == "primary"), key=rank)


def running():
    return run(f"{BIN}/pg_isready", "-q", "-h", "127.0.0.1", check=False).returncode == 0


def in_recovery():
    return psql("select pg_is_in_recovery()") == "t"


def point_to(primary, live):
    """Make this node a standby of primary: in the running server
    (ALTER SYSTEM, reload) or in postgresql.auto.conf before a start."""
    conninfo = f"host={primary} port=5432 user=replicator application_name={ME}"
    slot = f"{ME}slot"
    if live:
        psql(f"alter system set primary_conninfo = '{conninfo}'")
        psql(f"alter system set primary_slot_name = '{slot}'")
        psql("select pg_reload_conf()")
        return
    auto = f"{DATA}/postgresql.auto.conf"
    lines = []
    if os.path.exists(auto):
        with open(auto) as f:
            lines = [l for l in f if not l.startswith(("primary_conninfo", "primary_slot_name"))]
    lines += [f"primary_conninfo = '{conninfo}'\n", f"primary_slot_name = '{slot}'\n"]
    with open(auto, "w") as f:
        f.writelines(lines)
    run("chown", "postgres:postgres", auto)
    open(f"{DATA}/standby.signal", "a").close()
    run("chown", "postgres:postgres", f"{DATA}/standby.signal")


def upstream():
    try:
        ci = psql("show primary_conninfo")
    except RuntimeError:
        return None
    for part in ci.split():
        if part.startswith("host="):
            return part[5:]
    return None


def start():
    run("systemctl", "start", UNIT, timeout=120)
    for _ in range(150):
        if running():
            return
        time.sleep(0.2)
    raise RuntimeError("PostgreSQL did not start")


def rewind(primary):
    """Stop, rewind onto primary (or, when pg_rewind cannot, clone it
    again), and start as its standby."""
    log(f"rewinding onto {primary}")
    run("systemctl", "stop", UNIT, timeout=120)
    r = subprocess.CompletedProcess([], 1, "", "no data")
    if os.path.exists(f"{DATA}/PG_VERSION"):
        r = subprocess.run([f"{BIN}/pg_rewind", "-D", DATA, f"--config-file={CONF}",
                            f"--source-server=host={primary} port=5432 user=rewind dbname=postgres connect_timeout=5"],
                           capture_output=True, text=True, timeout=600, **as_postgres())
    if r.returncode != 0:
        log(f"pg_rewind failed ({r.stderr.strip().splitlines()[-1:]}); cloning {primary} again")
        run("rm", "-rf", DATA)
        run("install", "-d", "-o", "postgres", "-g", "postgres", "-m", "700", DATA)
        subprocess.run(["pg_basebackup", "-h", primary, "-U", "replicator", "-D", DATA, "-X", "stream", "-c", "fast"],
                       check=True, capture_output=True, text=True, timeout=600, **as_postgres())
    point_to(primary, live=False)
    start()
    tag(pg="standby", lag="behind", epoch=None, lsn=None)
    log(f"standby of {primary}")


def failed_elsewhere(name, ms):
    """Which other live pg node's Serf calls name failed, if any, asked
    directly over that node's RPC (serf.sh binds it on every address).
    Gossip alone can leave this node's view of a dead node behind: when
    this node knows a newer incarnation of it than the node that declared
    it dead (it refuted a suspicion under load), the declaration does not
    apply here, and this node's own suspicion runs to memberlist's longest
    timeout (6 x 3 s in the local profile). Asked only while this node
    cannot reach the primary: a split between it and the primary alone is
    no failover, the others still see the primary alive."""
    for m in ms:
        if m["name"] in (ME, name) or m["status"] != "alive":
            continue
        host = m["addr"].rsplit(":", 1)[0]
        try:
            out = run("serf", "members", "-rpc-addr", f"{host}:7373", "-format", "json", "-name", f"^{name}$",
                      timeout=3).stdout
            if any(x["name"] == name and x["status"] != "alive" for x in json.loads(out)["members"]):
                return m["name"]
        except (subprocess.SubprocessError, ValueError, KeyError):
            continue  # down or busy: no testimony
    return None


def reachable(host):
    return run(f"{BIN}/pg_isready", "-q", "-h", host, "-t", "2", check=False).returncode == 0


def ensure_slots():
    """Every other pg node of the lab file (read each time: a scale-out adds
    nodes, and pg-slots.sh drops the slots of those that left)."""
    have = set(psql("select slot_name from pg_replication_slots").split())
    for n in facts()["roles"]["pg"]["nodes"]:
        if n != ME and f"{n}slot" not in have:
            psql(f"select pg_create_physical_replication_slot('{n}slot', true)")
            log(f"made the slot of {n}")


def lsn_bytes(host=None, timeout=5):
    sql = "select pg_current_wal_lsn() - '0/0'" if host else "select coalesce(pg_last_wal_replay_lsn(), '0/0') - '0/0'"
    return int(float(psql(sql, host=host, timeout=timeout)))


class Agent:
    def __init__(self):
        self.primary_gone_at = None   # when no live primary was first seen
        self.not_promoting = None     # why this node did not promote, last said
        self.pointed_at = (None, 0.0) # the primary followed, since when
        self.streaming_at = time.monotonic()
        self.unreached = None         # the primary this node's last probe could not reach

    def boot(self):
        """Start the local server as what it should be now."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # joined: Serf knows others
            try:
                if len(json.loads(run("serf", "members", "-format", "json").stdout)["members"]) > 1:
                    break
            except Exception:
                pass
            time.sleep(0.5)
        time.sleep(1)  # the others' tags arrive with the join
        others = [m for m in live_primaries(members()) if m["name"] != ME]
        if not os.path.exists(f"{DATA}/PG_VERSION"):
            if not others:
                raise RuntimeError("no data and no primary to clone")
            rewind(others[0]["name"])  # clones it
            return
        was_primary = not os.path.exists(f"{DATA}/standby.signal")
        if was_primary and others:
            rewind(others[0]["name"])
            return
        if not was_primary and others:
            point_to(others[0]["name"], live=False)
        try:
            start()
        except Exception as e:
            if not others:
                raise
            # A standby that cannot start on its own data (a history the
            # primary's does not contain) is rewound or cloned instead of
            # trying the same start twice a second.
            log(f"did not start as a standby of {others[0]['name']} ({e})")
            rewind(others[0]["name"])
            return
        log("started as " + ("primary" if was_primary else "standby"))

    def step(self):
        ms = members()
        if not in_recovery():
            self.as_primary(ms)
        else:
            self.as_standby(ms)

    def as_primary(self, ms):
        e = epoch() or 1
        t = my_tags()
        if t.get("pg") != "primary" or t.get("epoch") != str(e) or "lsn" in t or "lag" in t:
            tag(pg="primary", epoch=str(e), lsn=None, lag=None)
            log(f"primary, epoch {e}")
        better = [m for m in live_primaries(ms) if m["name"] != ME and rank(m) < (-e, ME)]
        if better:
            log(f"{better[0]['name']} is primary with epoch {better[0]['tags'].get('epoch')}: stepping down")
            rewind(better[0]["name"])
            return
        ensure_slots()

    def as_standby(self, ms):
        now = time.monotonic()
        ps = live_primaries(ms)
        if ps and self.unreached == ps[0]["name"]:
            gone = ps[0]["name"]
            who = failed_elsewhere(gone, ms)
            if who:
                if self.primary_gone_at is None:
                    log(f"{gone} is failed in {who}'s view")
                ms = [dict(m, status="failed") if m["name"] == gone else m for m in ms]
                ps = live_primaries(ms)
        if ps:
            self.primary_gone_at = self.not_promoting = None
            self.follow(ps[0]["name"], now)
            return
        if self.primary_gone_at is None:
            self.primary_gone_at = now
            log("no live primary")
        other = self.outranked(ms)
        if other:
            if other != self.not_promoting:
                log(f"not promoting: {other}")
                self.not_promoting = other
                # The one ahead may not know yet that the primary died.
                push()
            if my_tags().get("lag") != "behind":
                tag(lag="behind")
            return
        e = max([epoch()] + [int(m["tags"].get("epoch", "0") or 0) for m in ms]) + 1
        log(f"promoting myself: epoch {e}, at {lsn_bytes()}")
        psql("select pg_promote(true, 30)")
        set_epoch(e)
        tag(pg="primary", epoch=str(e), lsn=None, lag=None)
        push()  # the apps and standbys learn the new primary now
        self.primary_gone_at = self.not_promoting = None
        ensure_slots()

    def outranked(self, ms):
        """Why another pg node should be the primary rather than this one,
        or None. Each live pg node is asked itself, not through Serf's tags
        (gossip can lose or delay a tag, and two standbys that each missed
        the other's would both promote): none may be a primary already, or
        have replayed further (or as far, with a lower name). After a
        primary died the replay positions stand still, so every standby
        that asks reaches the same answer."""
        mine = lsn_bytes()
        for m in ms:
            if m["name"] == ME or m["status"] != "alive":
                continue
            try:
                rec, lsn = psql("select pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn(), '0/0') - '0/0'",
                                host=m["name"]).split("|")
            except (RuntimeError, ValueError, subprocess.TimeoutExpired):
                continue  # down: not a candidate
            if rec == "f":
                return f"{m['name']} is a primary already"
            if (-int(float(lsn)), m["name"]) < (-mine, ME):
                return f"{m['name']} has replayed to {int(float(lsn))}, this node to {mine}"
        return None

    def follow(self, primary, now):
        t = my_tags()
        if "lsn" in t:
            tag(lsn=None)
        if upstream() != primary:
            log(f"following {primary}")
            point_to(primary, live=True)
            self.pointed_at = (primary, now)
            self.streaming_at = now
        streaming = psql("select count(*) from pg_stat_wal_receiver where status = 'streaming'") == "1"
        if streaming:
            self.streaming_at = now
        elif now - self.streaming_at > STUCK and reachable(primary):
            # The primary answers, yet this node cannot stream from it: its
            # history went another way (a timeline it cannot follow).
            rewind(primary)
            self.streaming_at = time.monotonic()
            return
        try:
            # At most 1.5 s: a primary that just died answers nothing (its
            # stream looks alive until TCP gives up), and a round that
            # waits on it is a round that does not see Serf call it failed.
            ahead = lsn_bytes(primary, timeout=1.5)
            self.unreached = None
            ok = streaming and ahead - lsn_bytes() < LAG_BYTES
        except (RuntimeError, ValueError, subprocess.TimeoutExpired):
            self.unreached, ok = primary, False
        want = "ok" if ok else "behind"
        if t.get("lag") != want or t.get("pg") != "standby":
            tag(pg="standby", lag=want, epoch=None)


def main():
    a = Agent()
    last_sync = 0.0
    while True:
        if time.monotonic() - last_sync >= SYNC:
            last_sync = time.monotonic()
            try:
                sync()
            except Exception as e:
                print(f"{ME}: sync: {e}", file=sys.stderr, flush=True)
        try:
            if running():
                a.step()
            else:
                a.boot()
        except Exception as e:  # one bad round (Serf restarting, a slow query): try again
            print(f"{ME}: {e}", file=sys.stderr, flush=True)
        time.sleep(TICK)


if __name__ == "__main__":
    main()
