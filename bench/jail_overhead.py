#!/usr/bin/env python3
"""Per-file cost of the jails: convert a tiny checkpoint 100 times in-process (--sandbox none),
through the jailed worker, the WASI guest and both stacked, and compare the medians (whole
process wall time; the WASI module cache is warmed first).

Usage: python3 bench/jail_overhead.py [--bin target/release/modelguard] [--runs 100]
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time


def median_ms(cmd, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}")
    return statistics.median(times) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/modelguard")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--input", default="tests/fixtures/models/sd_sequential.pt")
    args = ap.parse_args()
    out = os.path.join(tempfile.mkdtemp(), "o.safetensors")
    base = [args.bin, "convert", args.input, out, "-q"]
    inproc = median_ms(base + ["--sandbox", "none"], args.runs)
    jailed = median_ms(base, args.runs)
    subprocess.run(base + ["--sandbox", "wasi"], check=True)  # warm the module cache
    wasi = median_ms(base + ["--sandbox", "wasi"], args.runs)
    both = median_ms(base + ["--sandbox", "both"], args.runs)
    print(f"tiny checkpoint ({os.path.getsize(args.input)} bytes), median of {args.runs} runs:")
    print(f"  in-process (--sandbox none):   {inproc:.2f} ms")
    print(f"  jailed worker (default):       {jailed:.2f} ms")
    print(f"  WASI guest (--sandbox wasi):   {wasi:.2f} ms")
    print(f"  stacked (--sandbox both):      {both:.2f} ms")
    print(f"  jail overhead:                 {jailed - inproc:.2f} ms per file")


if __name__ == "__main__":
    main()
