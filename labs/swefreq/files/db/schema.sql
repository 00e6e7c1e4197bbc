-- The variant database of SweFreq: what the loader fills and the browser reads.
CREATE TABLE IF NOT EXISTS variants (
    chrom text    NOT NULL,
    pos   integer NOT NULL,
    rsid  text    NOT NULL,
    ref   text    NOT NULL,
    alt   text    NOT NULL,
    ac    integer NOT NULL,
    an    integer NOT NULL,
    af    double precision NOT NULL,
    PRIMARY KEY (chrom, pos, ref, alt)
);
CREATE INDEX IF NOT EXISTS variants_rsid ON variants (rsid);
CREATE TABLE IF NOT EXISTS coverage (
    chrom   text    NOT NULL,
    start   integer NOT NULL,
    "end"   integer NOT NULL,
    mean    double precision NOT NULL,
    median  double precision NOT NULL,
    over_10 double precision NOT NULL,
    over_20 double precision NOT NULL,
    PRIMARY KEY (chrom, start)
);
-- One row per loaded file: which file, its checksum, how many rows, when.
CREATE TABLE IF NOT EXISTS dataset (
    tbl       text PRIMARY KEY,
    file      text NOT NULL,
    sha256    text NOT NULL,
    rows      integer NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    loaded_on text NOT NULL
);
GRANT SELECT ON variants, coverage, dataset TO swefreq;
