#!/usr/bin/env python3
"""Scan speed: a 1 GiB torch checkpoint (made by bench/convert_1gib.py) and a folder of 1,000
small checkpoints, through the jailed worker (the default), wall time including everything.

Usage: python3 bench/scan_speed.py [--bin target/release/modelguard] [--big /tmp/modelguard-bench/state_dict_1gib.pt]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def wall(cmd, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
        if r.returncode not in (0, 1):
            raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}")
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/modelguard")
    ap.add_argument("--big", default="/tmp/modelguard-bench/state_dict_1gib.pt")
    ap.add_argument("--small", default="tests/fixtures/models/sd_sequential.pt")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    if os.path.exists(args.big):
        size = os.path.getsize(args.big) / 2**30
        with open(args.big, "rb") as f:  # warm the page cache
            while f.read(1 << 24):
                pass
        print(f"1 file of {size:.2f} GiB, median of {args.runs}:")
        for label, extra in [("text", []), ("json, no hash", ["--format", "json", "--no-hash"]),
                             ("json with sha256", ["--format", "json"])]:
            t = wall([args.bin, "scan", *extra, args.big], args.runs)
            print(f"  scan ({label}): {t * 1000:.1f} ms")
    else:
        print(f"{args.big} missing: run bench/convert_1gib.py first to make it")
    folder = tempfile.mkdtemp(prefix="modelguard-scan-")
    try:
        for i in range(1000):
            shutil.copyfile(args.small, os.path.join(folder, f"m{i:04}.pt"))
        t = wall([args.bin, "scan", "--format", "json", folder], 3)
        print(f"1,000 checkpoints of {os.path.getsize(args.small)} bytes, {os.cpu_count()} cores, "
              f"median of 3: {t:.2f} s ({t:.2f} ms per file)")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
