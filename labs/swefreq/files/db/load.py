#!/usr/bin/env python3
"""Loads the SweFreq data files into this node's variant database, each
table in one transaction (emptied, then copied in), and records which file,
its checksum and row count in `dataset`. A table already loaded from a file
with the same checksum is left as it is (the drift check is what says
whether it still matches).

    swefreq-load DATA_DIR
"""
import io
import socket
import sys

import psycopg2

import swefreq_data as sd


def main():
    sd.as_postgres()
    data_dir = sys.argv[1]
    conn = psycopg2.connect(dbname="swefreq")
    for table, (name, cols, _key) in sd.TABLES.items():
        sha = sd.file_sha256(table, data_dir)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT sha256 FROM dataset WHERE tbl = %s", (table,))
            row = cur.fetchone()
        if row and row[0] == sha:
            print("%s: already loaded from this %s (sha256 %s)" % (table, name, sha[:16]))
            continue
        rows = sd.file_rows(table, data_dir)
        buf = io.StringIO()
        for r in rows:
            buf.write("\t".join(repr(v) if isinstance(v, float) else str(v) for v in r) + "\n")
        buf.seek(0)
        with conn:
            with conn.cursor() as cur:
                cur.execute("TRUNCATE %s" % table)
                cur.copy_expert("COPY %s (%s) FROM STDIN" % (table, ", ".join(cols)), buf)
                cur.execute(
                    "INSERT INTO dataset (tbl, file, sha256, rows, loaded_on) VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (tbl) DO UPDATE SET file = EXCLUDED.file, sha256 = EXCLUDED.sha256, "
                    "rows = EXCLUDED.rows, loaded_at = now(), loaded_on = EXCLUDED.loaded_on",
                    (table, name, sha, len(rows), socket.gethostname()),
                )
        print("loaded %s: %d rows from %s" % (table, len(rows), name))


if __name__ == "__main__":
    main()
