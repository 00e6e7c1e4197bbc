#!/usr/bin/env python3
"""The drift check: does each table still hold exactly what its file says?
Compares row counts and a content hash of every row, table by table, and
exits 1 naming each table that differs.

    swefreq-drift [DATA_DIR]     (default /opt/swefreq-db/data)
"""
import sys

import psycopg2

import swefreq_data as sd


def main():
    sd.as_postgres()
    data_dir = sys.argv[1] if len(sys.argv) > 1 else "/opt/swefreq-db/data"
    conn = psycopg2.connect(dbname="swefreq")
    differ = []
    with conn, conn.cursor() as cur:
        for table in sd.TABLES:
            want = sd.file_rows(table, data_dir)
            have = sd.db_rows(cur, table)
            wd, hd = sd.digest(want), sd.digest(have)
            if len(want) == len(have) and wd == hd:
                print("%s: ok, %d rows, sha256 %s" % (table, len(have), hd[:16]))
                continue
            differ.append(table)
            extra = sorted(set(have) - set(want))
            missing = sorted(set(want) - set(have))
            print("%s: DIFFERS from %s: table %d rows (sha256 %s), file %d rows (sha256 %s)"
                  % (table, sd.TABLES[table][0], len(have), hd[:16], len(want), wd[:16]))
            for r in missing[:5]:
                print("  file has:  %s" % (r,))
            for r in extra[:5]:
                print("  table has: %s" % (r,))
    if differ:
        print("drift in: %s" % " ".join(differ))
        sys.exit(1)


if __name__ == "__main__":
    main()
