#!/usr/bin/env python3
"""The differential oracle: generated candidates, the real loaders in a sandbox, modelguard's
verdicts, and the two properties (see docs/oracle.md).

  tests/oracle/run.py --seed N --budget-seconds S [--jobs J] [--keep] [--no-minimise]

Prints a summary and exits 1 when a counterexample's signature is not already kept as a fixture
under tests/fixtures/oracle/ (2 on a harness error). --keep writes new counterexamples there
(minimised) with the loaders' ground truth; --replay re-checks only the kept fixtures.
"""

from __future__ import annotations

import argparse
import collections
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import check  # noqa: E402
import containers  # noqa: E402
import gen  # noqa: E402
import pk  # noqa: E402
from registry import Registry  # noqa: E402
from sandbox import DEFAULT_VENV, Sandbox, ensure_bubblewrap  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "oracle")
CACHE = os.path.join(REPO, "target", "oracle")


VOCAB_EXTRA = ["sklearn", "sklearn.linear_model", "sklearn.tree", "sklearn.ensemble", "sklearn.preprocessing",
               "sklearn.pipeline", "sklearn.utils", "scipy.sparse", "joblib.memory", "joblib.parallel"]


def load_vocab(sb: Sandbox) -> list:
    os.makedirs(CACHE, exist_ok=True)
    stamp = hashlib.sha256(open(os.path.join(HERE, "worker.py"), "rb").read()).hexdigest()[:16]
    path = os.path.join(CACHE, f"vocab-{stamp}.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    rep = sb.request({"op": "vocab", "extra": VOCAB_EXTRA}, timeout=600)
    if not rep.get("ok"):
        raise RuntimeError(f"vocabulary introspection failed: {rep}")
    with open(path, "w") as f:
        json.dump(rep["vocab"], f)
    return rep["vocab"]


def kept_fixtures():
    out = {}
    for p in sorted(glob.glob(os.path.join(FIXTURES, "*", "*.json"))):
        with open(p) as f:
            j = json.load(f)
        for s in j.get("signatures", []):
            out.setdefault(s, []).append(p)
    return out


def trim_trace(tr):
    """The ground truth kept with a fixture: what the loader resolved, called, raised, returned."""
    keep = {k: tr.get(k) for k in ("raised", "result_type", "tensors", "globals", "tmpfs_writes", "died")}
    keep["calls"] = [c for c in (tr.get("calls") or []) if c.get("op") != "global"][:60]
    keep["events"] = [e for e in (tr.get("events") or []) if e.get("category") not in ("find_class",)][:40]
    return keep


class Runner:
    def __init__(self, args, reg):
        self.args = args
        self.reg = reg
        self.binary = args.binary
        self.lock = threading.Lock()
        self.stats = collections.Counter()
        self.loads = collections.Counter()
        self.calls = collections.Counter()
        self.levels = collections.Counter()
        self.verdicts = collections.Counter()
        self.by_class = collections.Counter()
        self.by_sig = collections.Counter()
        self.examples = {}
        self.kept = kept_fixtures()
        self.new_sigs = {}
        self.per_class_kept = collections.Counter()
        self.kinds = collections.Counter()  # container mutants tried per mutation kind
        self.kind_viol = collections.Counter()
        self.tmp = tempfile.mkdtemp(prefix="oracle-run-")

    def evaluate(self, sb, cand, data=None, loaders=None):
        data = cand.data() if data is None else data
        path = os.path.join(self.tmp, f"{threading.get_ident()}-{cand.name}{gen.EXT[cand.container]}")
        with open(path, "wb") as f:
            f.write(data)
        rep = sb.load(cand.name + gen.EXT[cand.container], data, loaders or cand.loaders,
                      timeout=self.args.load_timeout)
        if not rep.get("ok"):
            os.unlink(path)
            return None, None, None, None, rep
        mg = check.run_modelguard(self.binary, path)
        os.unlink(path)
        info = {"primary": cand.primary}
        viols, level, obs = check.check(info, rep["results"], mg, self.reg)
        return viols, level, obs, mg, rep

    def violation_sigs(self, cand, viols, obs):
        out = []
        for v in viols:
            cls = check.classify_violation(cand.cls, v, obs)
            out.append((cls, check.signature(cls, v, cand.template), v))
        return out

    def keep_fresh(self, sb, cand, fresh):
        """Minimise once for all the candidate's new signatures, keep it, report them."""
        want = {sig for _, sig, _ in fresh}
        path = None
        if self.args.keep:
            small = cand
            if self.args.minimise:
                small = self.minimise(sb, cand, want, time.monotonic() + self.args.minimise_seconds)
            r2 = self.evaluate(sb, small)
            if r2[0] is None or not want <= {s for _, s, _ in self.violation_sigs(small, r2[0], r2[2])}:
                small, r2 = cand, self.evaluate(sb, cand)
            v2, level2, obs2, mg2, rep2 = r2
            if v2 is not None:
                sigs = sorted({s for _, s, _ in self.violation_sigs(small, v2, obs2)})
                cls = next((c for c, _, v in fresh if v["property"] == "P1"), fresh[0][0])
                path = self.keep(small, cls, sigs, v2, level2, obs2, mg2, rep2)
        with self.lock:
            for cls, sig, v in fresh:
                self.new_sigs[sig] = path or cand.name
                print(f"counterexample {sig}: {cand.name} ({cand.note[:120]})"
                      + (f" -> {os.path.relpath(path, REPO)}" if path else ""), file=sys.stderr)

    def minimise(self, sb, cand, sigs, deadline):
        """Greedy delta debugging over the ops: drop chunks while the same signature fails."""
        ops = list(cand.ops)
        if not ops or ops[0][0] == "RAW":
            return cand
        tests = 0

        def still_fails(trial):
            nonlocal tests
            tests += 1
            c = gen.Candidate(**{**cand.__dict__, "ops": trial})
            try:
                viols, _, obs, _, _ = self.evaluate(sb, c)
            except Exception:  # noqa: BLE001
                return False
            if viols is None:
                return False
            return sigs <= {s for _, s, _ in self.violation_sigs(c, viols, obs)}

        n = 2
        while len(ops) >= 2 and time.monotonic() < deadline and tests < self.args.minimise_tests:
            chunk = max(1, len(ops) // n)
            removed = False
            i = 0
            while i < len(ops) and time.monotonic() < deadline and tests < self.args.minimise_tests:
                trial = ops[:i] + ops[i + chunk:]
                if trial and trial[-1][0] == "STOP" and pk.valid_ops(trial) and still_fails(trial):
                    ops = trial
                    removed = True
                else:
                    i += chunk
            if not removed:
                if chunk == 1:
                    break
                n = min(len(ops), n * 2)
        return gen.Candidate(**{**cand.__dict__, "ops": ops})

    def keep(self, cand, cls, sigs, viols, level, obs, mg, rep):
        d = os.path.join(FIXTURES, cls)
        os.makedirs(d, exist_ok=True)
        ext = gen.EXT[cand.container]
        with open(os.path.join(d, cand.name + ext), "wb") as f:
            f.write(cand.data())
        truth = {
            "name": cand.name, "class": cls, "status": "open", "template": cand.template,
            "container": cand.container, "protocol": cand.proto, "note": cand.note, "file": cand.name + ext,
            "signatures": sigs, "violations": viols, "required_level": level,
            "required": {
                "scan_verdict_in": ["malicious", "error"] if level == 2 else (["suspicious", "malicious", "error"] if level == 1 else None),
                "convert_refused": level == 2,
            },
            "primary_loader": cand.primary,
            "primary": trim_trace(rep["results"][cand.primary]) if cand.primary in rep["results"] else None,
            "observations": [o.as_json() for o in obs if o.level > 0][:40],
            "loaders": {k: trim_trace(v) for k, v in rep["results"].items()},
            "modelguard_when_found": {k: mg.get(k) for k in ("verdict", "findings", "convert_exit", "convert_findings")},
        }
        with open(os.path.join(d, cand.name + ".json"), "w") as f:
            json.dump(truth, f, indent=1, sort_keys=True, default=str)
            f.write("\n")
        return os.path.join(d, cand.name + ext)

    def worker(self, jobid, indices, deadline):
        sb = Sandbox(self.args.venv)
        try:
            sb.start()
            for i in indices:
                if time.monotonic() > deadline:
                    break
                if self.args.suite == "containers":
                    cand = containers.make(self.args.seed, i)
                else:
                    cand = gen.make(self.args.seed, i, self.vocab)
                try:
                    viols, level, obs, mg, rep = self.evaluate(sb, cand)
                except Exception as e:  # noqa: BLE001
                    with self.lock:
                        self.stats["harness-errors"] += 1
                        print(f"harness error on {cand.name}: {e!r}", file=sys.stderr)
                    continue
                with self.lock:
                    self.stats["candidates"] += 1
                    if viols is None:
                        self.stats["sandbox-errors"] += 1
                        continue
                    for ld, tr in rep["results"].items():
                        self.loads[ld] += 1
                        if tr.get("raised"):
                            self.loads[ld + " (raised)"] += 1
                    for o in obs:
                        self.calls[o.category] += 1
                    self.levels[level] += 1
                    if cand.template.startswith("container:"):
                        self.kinds[cand.template[10:]] += 1
                    self.verdicts[f"{level}->{mg.get('verdict')}/convert {mg.get('convert_exit')}"] += 1
                    found = self.violation_sigs(cand, viols, obs)
                    fresh = []
                    if found and cand.template.startswith("container:"):
                        self.kind_viol[cand.template[10:]] += 1
                    for cls, sig, v in found:
                        self.by_class[(cls, v["property"])] += 1
                        self.by_sig[sig] += 1
                        self.examples.setdefault(sig, (cand.name, cand.note, v))
                        if sig not in self.kept and sig not in self.new_sigs:
                            self.new_sigs[sig] = None  # claimed by this worker
                            fresh.append((cls, sig, v))
                if fresh:
                    self.keep_fresh(sb, cand, fresh)
        finally:
            sb.close()

    def run(self):
        if self.args.suite == "containers":
            self.vocab = None  # container mutants use no vocabulary
        else:
            sb = Sandbox(self.args.venv)
            try:
                sb.start()
                self.vocab = gen.Vocab(load_vocab(sb), self.reg)
            finally:
                sb.close()
        t0 = time.monotonic()
        deadline = t0 + self.args.budget_seconds
        jobs = max(1, self.args.jobs)
        idx = list(range(self.args.start, self.args.start + self.args.max_candidates))
        threads = [threading.Thread(target=self.worker, args=(j, idx[j::jobs], deadline)) for j in range(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.elapsed = time.monotonic() - t0
        shutil.rmtree(self.tmp, ignore_errors=True)

    def summary(self):
        L = []
        L.append(f"oracle ({self.args.suite}): seed {self.args.seed}, {self.stats['candidates']} candidates in "
                 f"{self.elapsed:.0f} s ({self.args.jobs} jobs), binary {self.binary} sha256 {self.bin_sha[:16]}, "
                 f"registry {self.reg.source}")
        if self.vocab is not None:
            L.append(f"vocabulary: {len(self.vocab.functions)} functions, {len(self.vocab.classes)} classes "
                     f"({len(self.vocab.enums)} enums, {len(self.vocab.dataclasses)} dataclasses) from introspection")
        if self.kinds:
            L.append("container mutants per kind (with a violation): " + ", ".join(
                f"{k} {v} ({self.kind_viol[k]})" for k, v in sorted(self.kinds.items())))
        L.append("loads per loader: " + ", ".join(f"{k} {v}" for k, v in sorted(self.loads.items())))
        L.append("required level (0 clean, 1 suspicious, 2 malicious): " + ", ".join(f"{k}: {v}" for k, v in sorted(self.levels.items())))
        L.append("observations per category: " + ", ".join(f"{k} {v}" for k, v in sorted(self.calls.items(), key=lambda x: -x[1])))
        L.append("required level -> modelguard: " + "; ".join(f"{k} x{v}" for k, v in sorted(self.verdicts.items())))
        L.append(f"counterexamples by class and property ({sum(self.by_class.values())} violations):")
        for (cls, prop), n in sorted(self.by_class.items()):
            L.append(f"  {cls:24s} {prop}  {n}")
        L.append("signatures:")
        for sig, n in sorted(self.by_sig.items()):
            state = "kept" if sig in self.kept else ("NEW" if sig in self.new_sigs else "?")
            ex = self.examples[sig]
            L.append(f"  [{state}] {sig}  x{n}  e.g. {ex[0]}: {ex[1][:100]}")
        if self.stats["harness-errors"] or self.stats["sandbox-errors"]:
            L.append(f"harness errors {self.stats['harness-errors']}, sandbox errors {self.stats['sandbox-errors']}")
        return "\n".join(L)


def refresh(args, reg, binary):
    """Re-run the loaders and modelguard on every kept fixture and rewrite its ground truth
    (the tracer or the registry changed); `status` and `class` stay as they are."""
    r = Runner(args, reg)
    r.binary = binary
    sb = Sandbox(args.venv)
    sb.start()
    n = 0
    try:
        for p in sorted(glob.glob(os.path.join(FIXTURES, "*", "*.json"))):
            if args.only and args.only not in os.path.relpath(p, FIXTURES):
                continue
            with open(p) as f:
                j = json.load(f)
            fpath = os.path.join(os.path.dirname(p), j["file"])
            with open(fpath, "rb") as f:
                data = f.read()
            cand = gen.Candidate(name=j["name"], cls=j["class"], template=j["template"], container=j["container"],
                                 ops=[], proto=j["protocol"], note=j["note"],
                                 loader_set=sorted(j.get("loaders") or {}) if j["template"].startswith("container:")
                                 else [])
            viols, level, obs, mg, rep = r.evaluate(sb, cand, data=data)
            if viols is None:
                print(f"refresh: {p}: sandbox error {rep}", file=sys.stderr)
                continue
            now = sorted({s for _, s, _ in r.violation_sigs(cand, viols, obs)})
            # what was violated when it was found stays (the regression it guards); the
            # loaders' ground truth is re-recorded, and what modelguard does now is noted
            j.update({"signatures": sorted(set(j.get("signatures", [])) | set(now)),
                      "violations_at_refresh": viols, "required_level": level,
                      "modelguard_at_refresh": {k: mg.get(k) for k in ("verdict", "findings", "convert_exit",
                                                                       "convert_findings")},
                      "required": {"scan_verdict_in": ["malicious", "error"] if level == 2 else
                                   (["suspicious", "malicious", "error"] if level == 1 else None),
                                   "convert_refused": level == 2},
                      "primary": trim_trace(rep["results"][cand.primary]),
                      "observations": [o.as_json() for o in obs if o.level > 0][:40],
                      "loaders": {k: trim_trace(v) for k, v in rep["results"].items()}})
            with open(p, "w") as f:
                json.dump(j, f, indent=1, sort_keys=True, default=str)
                f.write("\n")
            n += 1
            print(f"refreshed {os.path.relpath(p, REPO)}: level {level}, {len(viols)} violation(s)")
    finally:
        sb.close()
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--suite", choices=["pickles", "containers"], default="pickles",
                    help="generated pickles (gen.py) or real checkpoints with their structure rewritten "
                         "(containers.py)")
    ap.add_argument("--budget-seconds", type=float, default=180)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--start", type=int, default=0, help="first candidate index")
    ap.add_argument("--max-candidates", type=int, default=10 ** 7)
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "modelguard"))
    ap.add_argument("--venv", default=DEFAULT_VENV)
    ap.add_argument("--keep", action="store_true", help="write new counterexamples to tests/fixtures/oracle")
    ap.add_argument("--no-minimise", dest="minimise", action="store_false")
    ap.add_argument("--minimise-seconds", type=float, default=90)
    ap.add_argument("--minimise-tests", type=int, default=60)
    ap.add_argument("--load-timeout", type=float, default=15)
    ap.add_argument("--json", help="write the summary numbers as JSON here")
    ap.add_argument("--refresh", action="store_true",
                    help="re-record the ground truth of every kept fixture (after a tracer change) and exit")
    ap.add_argument("--only", help="with --refresh: only fixtures whose path under tests/fixtures/oracle "
                                   "contains this text")
    args = ap.parse_args(argv)
    ensure_bubblewrap()
    if not os.path.exists(args.binary):
        print(f"no modelguard binary at {args.binary} (cargo build --release)", file=sys.stderr)
        return 2
    # a private copy: the binary may be rebuilt while the run goes on
    snap_dir = tempfile.mkdtemp(prefix="oracle-bin-")
    snap = os.path.join(snap_dir, "modelguard")
    shutil.copy2(args.binary, snap)
    reg = Registry()
    if args.refresh:
        try:
            refresh(args, reg, snap)
        finally:
            shutil.rmtree(snap_dir, ignore_errors=True)
        return 0
    r = Runner(args, reg)
    r.binary = snap
    r.bin_sha = hashlib.sha256(open(snap, "rb").read()).hexdigest()
    try:
        r.run()
    finally:
        shutil.rmtree(snap_dir, ignore_errors=True)
    print(r.summary())
    new = {s: p for s, p in r.new_sigs.items()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"suite": args.suite, "seed": args.seed, "candidates": r.stats["candidates"],
                       "seconds": round(r.elapsed), "kinds": r.kinds, "kinds_violating": r.kind_viol,
                       "loads": r.loads, "levels": r.levels, "observations": r.calls,
                       "by_class": {f"{c}|{p}": n for (c, p), n in r.by_class.items()},
                       "signatures": r.by_sig, "new": list(new)}, f, indent=1, default=str)
    if r.stats["candidates"] == 0:
        print("oracle: no candidate ran", file=sys.stderr)
        return 2
    if new:
        print(f"oracle: {len(new)} counterexample signature(s) not kept under tests/fixtures/oracle "
              f"(re-run with --keep to add them)", file=sys.stderr)
        return 1
    print("oracle: every counterexample found is already kept as a fixture")
    return 0


if __name__ == "__main__":
    sys.exit(main())
