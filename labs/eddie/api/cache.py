"""The per-node cache in front of PostgreSQL: entries by id, each living
at most TTL seconds, with hit counters per id. Ids arrive as bytes (from
the service bus), str (from GraphQL) and uuid.UUID (from psycopg2): they
are normalised to one form, the UUID's canonical string, so one item has
one entry whatever path asked for it (the first of Eddie's two bugs)."""
import collections
import threading
import time
import uuid


def key(id_):
    """The one form of an id: '6b1f…-…' for a UUID given in any type."""
    if isinstance(id_, uuid.UUID):
        return str(id_)
    if isinstance(id_, (bytes, bytearray)):
        b = bytes(id_)
        return str(uuid.UUID(bytes=b) if len(b) == 16 else uuid.UUID(b.decode()))
    return str(uuid.UUID(str(id_)))


class Cache:
    def __init__(self, ttl):
        self.ttl = ttl
        self.lock = threading.Lock()
        self.entries = {}
        self.hits = collections.Counter()
        self.misses = 0
        self.flushes = 0
        self.clears = 0

    def get(self, id_, load):
        k = key(id_)
        now = time.monotonic()
        with self.lock:
            e = self.entries.get(k)
            if e and e[1] > now:
                self.hits[k] += 1
                return e[0]
            self.misses += 1
        value = load(k)
        with self.lock:
            self.entries[k] = (value, now + self.ttl)
        return value

    def drop(self, id_):
        """Forget one id (a flush from the bus, or this node's own update)."""
        k = key(id_)
        with self.lock:
            if self.entries.pop(k, None) is not None:
                self.flushes += 1

    def clear(self):
        """Forget everything: the bus was away, flushes may have been missed."""
        with self.lock:
            self.entries.clear()
            self.clears += 1

    def stats(self):
        with self.lock:
            return {"entries": len(self.entries), "hits": sum(self.hits.values()), "misses": self.misses,
                    "flushes": self.flushes, "clears": self.clears}

    def hits_of(self, id_):
        with self.lock:
            return self.hits[key(id_)]
