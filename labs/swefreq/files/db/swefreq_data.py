"""The SweFreq data files and their tables, read the same way by the loader
and the drift check: each row as the typed tuple the table holds, in the
table's key order."""
import gzip
import hashlib
import os
import sys

# table: (file, columns, key columns)
TABLES = {
    "variants": ("variants.vcf.gz", ["chrom", "pos", "rsid", "ref", "alt", "ac", "an", "af"], ["chrom", "pos", "ref", "alt"]),
    "coverage": ("coverage.tsv.gz", ["chrom", "start", '"end"', "mean", "median", "over_10", "over_20"], ["chrom", "start"]),
}


def _vcf_rows(path):
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith("#"):
                continue
            chrom, pos, rsid, ref, alt, _qual, _flt, info = line.rstrip("\n").split("\t")[:8]
            kv = dict(p.split("=", 1) for p in info.split(";") if "=" in p)
            yield (chrom, int(pos), rsid, ref, alt, int(kv["AC"]), int(kv["AN"]), float(kv["AF"]))


def _coverage_rows(path):
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith("#"):
                continue
            chrom, start, end, mean, median, o10, o20 = line.rstrip("\n").split("\t")
            yield (chrom, int(start), int(end), float(mean), float(median), float(o10), float(o20))


def as_postgres():
    """Run on as the database's owner (peer login on the local socket)."""
    if os.geteuid() == 0:
        os.chdir("/")
        os.execvp("runuser", ["runuser", "-u", "postgres", "--", sys.executable] + sys.argv)


def file_rows(table, data_dir):
    """The rows of a table's file, sorted by the table's key."""
    name, _cols, _key = TABLES[table]
    path = os.path.join(data_dir, name)
    rows = list(_vcf_rows(path) if table == "variants" else _coverage_rows(path))
    if table == "variants":
        rows.sort(key=lambda r: (r[0], r[1], r[3], r[4]))
    else:
        rows.sort(key=lambda r: (r[0], r[1]))
    return rows


def db_rows(cur, table):
    _name, cols, key = TABLES[table]
    cur.execute("SELECT %s FROM %s ORDER BY %s" % (", ".join(cols), table, ", ".join(key)))
    return [tuple(r) for r in cur.fetchall()]


def digest(rows):
    """A content hash of rows: every value in its exact form (repr keeps
    every bit of a float), one row per line."""
    h = hashlib.sha256()
    for r in rows:
        h.update(("\t".join(repr(v) for v in r) + "\n").encode())
    return h.hexdigest()


def file_sha256(table, data_dir):
    with open(os.path.join(data_dir, TABLES[table][0]), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
