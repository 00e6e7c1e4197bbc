"""What this branch adds to the browser's core: the read depth (coverage)
beside each variant, and /api/coverage for a region."""
import re

import tornado.web

NAMES = ["coverage"]


def variant_extras(conn, variants):
    """Each variant gets the mean coverage of the bin it lies in."""
    with conn.cursor() as cur:
        for v in variants:
            cur.execute("SELECT mean FROM coverage WHERE chrom = %s AND start <= %s AND \"end\" >= %s",
                        (v["chrom"], v["pos"], v["pos"]))
            row = cur.fetchone()
            v["coverage"] = row[0] if row else None
    return variants


class ApiCoverage(tornado.web.RequestHandler):
    def initialize(self, db):
        self.db = db

    def get(self):
        q = self.get_argument("q", "")
        m = re.fullmatch(r"(?:chr)?(\w+):(\d+)-(\d+)", q.strip())
        if not m:
            self.set_status(400)
            self.write({"error": "want a region: 22:16050000-16060000"})
            return
        conn = self.db()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*), avg(mean), min(over_20) FROM coverage "
                            "WHERE chrom = %s AND \"end\" >= %s AND start <= %s",
                            (m.group(1), int(m.group(2)), int(m.group(3))))
                bins, mean, worst = cur.fetchone()
        finally:
            conn.close()
        self.write({"query": q, "bins": bins, "mean": mean, "min_over_20": worst})


def handlers(db):
    """The routes this branch adds; db makes a variant database connection."""
    return [(r"/api/coverage", ApiCoverage, {"db": db})]
