#!/usr/bin/env python3
"""Writes the lab's synthetic data set: data/variants.vcf.gz (a VCF of
single-allele variants on chromosome 22, with allele counts and
frequencies) and data/coverage.tsv.gz (mean and median read depth, and the
share of bases over 10x and 20x, per 500-base bin). The same seed gives
the same bytes on any machine: run it again only to change the data set.

    scripts/gen-data.py [--variants 3000] [--seed 1]
"""
import argparse
import gzip
import io
import os
import random

START = 16_050_000
BIN = 500


def variants(rng, n):
    pos = START
    an = 2000  # 1000 individuals, two alleles each
    for i in range(n):
        pos += rng.randint(20, 400)
        ref = rng.choice("ACGT")
        alt = rng.choice([b for b in "ACGT" if b != ref])
        ac = max(1, int(rng.paretovariate(1.2)) if rng.random() < 0.8 else rng.randint(1, an))
        ac = min(ac, an)
        af = round(ac / an, 6)
        rsid = "rs%d" % (100000 + i * 7 + rng.randint(0, 6))
        yield ("22", pos, rsid, ref, alt, ac, an, af)


def write_gz(path, text):
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(text.encode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
    rows = list(variants(rng, args.variants))
    vcf = io.StringIO()
    vcf.write("##fileformat=VCFv4.2\n")
    vcf.write("##source=labs/swefreq/scripts/gen-data.py seed=%d\n" % args.seed)
    vcf.write("##contig=<ID=22,length=50818468>\n")
    vcf.write('##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count">\n')
    vcf.write('##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles">\n')
    vcf.write('##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">\n')
    vcf.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    for chrom, pos, rsid, ref, alt, ac, an, af in rows:
        vcf.write("%s\t%d\t%s\t%s\t%s\t.\tPASS\tAC=%d;AN=%d;AF=%s\n" % (chrom, pos, rsid, ref, alt, ac, an, repr(af)))
    write_gz(os.path.join(here, "variants.vcf.gz"), vcf.getvalue())
    cov = io.StringIO()
    cov.write("#chrom\tstart\tend\tmean\tmedian\tover_10\tover_20\n")
    end = rows[-1][1] + BIN
    for start in range(START, end, BIN):
        mean = round(rng.gauss(32, 6), 2)
        median = round(mean + rng.gauss(0, 1.5), 2)
        over10 = round(min(1.0, max(0.0, rng.gauss(0.97, 0.02))), 4)
        over20 = round(min(over10, max(0.0, rng.gauss(0.85, 0.06))), 4)
        cov.write("22\t%d\t%d\t%s\t%s\t%s\t%s\n" % (start, start + BIN - 1, mean, median, over10, over20))
    write_gz(os.path.join(here, "coverage.tsv.gz"), cov.getvalue())


if __name__ == "__main__":
    main()
