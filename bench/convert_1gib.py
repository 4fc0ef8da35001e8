#!/usr/bin/env python3
"""Benchmark: convert a 1 GiB float32 state dict (256 tensors of 4 MiB, torch zip format).

Compares, on the same file and warm page cache, wall time and peak RSS of
  cp                          (the floor: copying the bytes),
  modelguard convert          (without and with --report, which adds two sha256 passes),
  torch.load + safetensors.torch.save_file (the usual Python route; needs torch).
Each is run --runs times; the median wall time and the max peak RSS are reported.

Usage: python3 bench/convert_1gib.py [--bin target/release/modelguard] [--runs 5] [--workdir DIR]
Generating the input needs torch (only once); without torch the torch row is skipped and the
input must already exist in the work dir.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def run(cmd, workdir):
    """Wall seconds and peak RSS (MiB) of one command, measured by GNU time (the Python parent's
    own RSS would otherwise leak into ru_maxrss through fork)."""
    rss_file = os.path.join(workdir, "rss.txt")
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}")
    with open(rss_file) as f:
        rss_kib = int(f.read().split()[-1])
    return wall, rss_kib / 1024


def make_input(path, python):
    code = (
        "import torch\n"
        "g = torch.Generator().manual_seed(0)\n"
        "sd = {f'layer{i}.weight': torch.randn(1024, 1024, generator=g) for i in range(256)}\n"
        f"torch.save(sd, {path!r})\n"
    )
    subprocess.run([python, "-c", code], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/modelguard")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", action="append", help="run only contenders whose name contains this (cp always runs)")
    ap.add_argument("--workdir", default="/tmp/modelguard-bench",
                    help="where input and outputs live; use a tmpfs (/dev/shm/...) to take the disk out")
    ap.add_argument("--python", default=os.environ.get("MODELGUARD_BENCH_PYTHON", sys.executable),
                    help="a Python with torch and safetensors, for the input and the baseline")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    src = os.path.join(args.workdir, "state_dict_1gib.pt")
    if not os.path.exists(src):
        make_input(src, args.python)
    size = os.path.getsize(src)
    out = os.path.join(args.workdir, "out")
    # Warm the page cache so every contender reads from memory.
    with open(src, "rb") as f:
        while f.read(1 << 24):
            pass

    has_torch = subprocess.run([args.python, "-c", "import torch, safetensors"], capture_output=True).returncode == 0
    contenders = [
        ("cp", ["cp", src, out + ".bin"]),
        # modelguard fsyncs its output before renaming it into place; this is the like-for-like floor.
        ("cp + sync", ["sh", "-c", 'cp "$0" "$1" && sync "$1"', src, out + ".bin"]),
        ("modelguard convert --sandbox none", [args.bin, "convert", src, out + ".safetensors", "-q",
                                               "--sandbox", "none"]),
        ("modelguard convert (jailed)", [args.bin, "convert", src, out + ".safetensors", "-q"]),
        ("modelguard convert --sandbox wasi", [args.bin, "convert", src, out + ".safetensors", "-q",
                                               "--sandbox", "wasi"]),
        ("modelguard convert --sandbox both", [args.bin, "convert", src, out + ".safetensors", "-q",
                                               "--sandbox", "both"]),
        ("modelguard convert (jailed) --fsync", [args.bin, "convert", src, out + ".safetensors", "-q", "--fsync"]),
        ("modelguard convert (jailed) --report", [args.bin, "convert", src, out + ".safetensors", "-q",
                                         "--report", out + ".json"]),
    ]
    if has_torch:
        contenders.append(("torch.load + save_file", [args.python, "-c",
            "import sys, torch; from safetensors.torch import save_file; "
            "save_file(torch.load(sys.argv[1], weights_only=True), sys.argv[2], metadata={'format': 'pt'})",
            src, out + ".torch.safetensors"]))
    if args.only:
        contenders = [c for c in contenders if c[0] == "cp" or any(o in c[0] for o in args.only)]
    results = {}
    for name, cmd in contenders:
        walls, peaks = [], []
        for _ in range(args.runs):
            for p in (out + ".bin", out + ".safetensors", out + ".torch.safetensors"):
                if os.path.exists(p):
                    os.remove(p)
            w, m = run(cmd, args.workdir)
            walls.append(w)
            peaks.append(m)
        results[name] = (statistics.median(walls), max(peaks))
    cp_wall = results["cp"][0]
    print(f"input: {size / 2**30:.2f} GiB, 256 float32 tensors of 4 MiB, torch zip, in {args.workdir}; "
          f"{args.runs} runs, warm cache\n")
    print("| command | median wall (s) | x cp | peak RSS (MiB) |")
    print("|---|---:|---:|---:|")
    for name, (w, m) in results.items():
        print(f"| {name} | {w:.3f} | {w / cp_wall:.2f} | {m:.1f} |")
    shutil.rmtree(out + ".d", ignore_errors=True)
    for p in (out + ".bin", out + ".safetensors", out + ".torch.safetensors", out + ".json"):
        if os.path.exists(p):
            os.remove(p)


if __name__ == "__main__":
    main()
