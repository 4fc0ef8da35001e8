#!/usr/bin/env python3
"""What the Python API costs next to torch.load(weights_only=True), its baseline.

Makes a state dict of N MiB of float32 (GPT-2-like shapes) with torch.save, then times, each in
a fresh process (so peak RSS is per case and the page cache is warm for all of them):
  torch.load(weights_only=True), with and without mmap;
  modelguard.load, cold (conversion cache empty) and cached;
  torch.load under guard_torch_load, cold and cached.
Memory: how much the Python process's resident set grew while holding the result (ru_maxrss
is useless here: `import torch` alone peaks higher than loading the tensors), and
separately the peak RSS of the conversion itself (host + jailed worker, GNU time).

usage: target/venv-python/bin/python bench/python_load.py [SIZE_MIB] [REPEATS]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

CASES = {
    "torch.load(weights_only=True)": "torch.load(PATH, weights_only=True)",
    "torch.load(weights_only=True, mmap=True)": "torch.load(PATH, weights_only=True, mmap=True)",
    "modelguard.load, cold": "modelguard.load(PATH, cache=False)",
    "modelguard.load, cached": "modelguard.load(PATH)",
    "guard_torch_load + torch.load, cold": "(modelguard.guard_torch_load(cache=False), torch.load(PATH))",
    "guard_torch_load + torch.load, cached": "(modelguard.guard_torch_load(), torch.load(PATH))",
}

RUNNER = textwrap.dedent(
    """
    import json, resource, sys, time
    import torch, modelguard
    PATH = sys.argv[1]
    def resident():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / (1 << 20)
    base = resident()
    t = time.perf_counter()
    result = eval(sys.argv[3])
    elapsed = time.perf_counter() - t
    print(json.dumps({"s": elapsed, "rss": resident() - base}))
    """
)


def main() -> None:
    size_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MODELGUARD_CACHE"] = os.path.join(tmp, "cache")
        path = os.path.join(tmp, "model.pt")
        d, layers = 768, max(1, size_mib * (1 << 20) // (4 * 12 * 768 * 768))
        sd = {}
        for i in range(layers):
            sd[f"h.{i}.attn.c_attn.weight"] = torch.randn(d, 3 * d)
            sd[f"h.{i}.attn.c_proj.weight"] = torch.randn(d, d)
            sd[f"h.{i}.mlp.c_fc.weight"] = torch.randn(d, 4 * d)
            sd[f"h.{i}.mlp.c_proj.weight"] = torch.randn(4 * d, d)
        torch.save(sd, path)
        real = os.path.getsize(path) / (1 << 20)
        print(f"state dict: {len(sd)} tensors, {real:.0f} MiB; median of {repeats} runs\n")
        print("| case | time (s) | resident growth, result held (MiB) |")
        print("|---|---:|---:|")
        # The cached cases find the conversion made here, in another process.
        subprocess.run(
            [sys.executable, "-c", "import modelguard, sys; modelguard.load(sys.argv[1])", path],
            check=True,
        )
        for name, code in CASES.items():
            runs = []
            for _ in range(repeats):
                out = subprocess.run(
                    [sys.executable, "-c", RUNNER, path, name, code],
                    capture_output=True, text=True, check=True,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
            print(f"| {name} | {med('s'):.3f} | {med('rss'):.0f} |")
        import modelguard

        out = subprocess.run(
            ["/usr/bin/time", "-f", "%M", modelguard.find_modelguard_bin(), "convert", "-q",
             path, os.path.join(tmp, "o.safetensors")],
            capture_output=True, text=True, check=True,
        )
        kib = int(out.stderr.strip().splitlines()[-1])
        print(f"\nmodelguard convert (host + jailed worker): peak RSS {kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
