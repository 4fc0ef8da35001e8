#!/usr/bin/env python3
"""Compare modelguard with the peer pickle scanners picklescan, modelscan, fickling and ModelAudit.

Every tool is run once per file, as a subprocess with a wall-clock limit, so a crash on one file
hides nothing else. Two inputs:

  * the malicious corpus tests/fixtures/malicious/ (the cases listed in its manifest.json; every
    case is malicious), and
  * the benign fixtures tests/fixtures/models/ (real torch/numpy/joblib checkpoints; only the files
    modelguard does not report as "skipped" are counted, so config.json and shard index files are
    left out for every tool).

For each tool and file the outcome is one of

  detected  the tool reports the file as unsafe at its own default threshold (the findings that make
            it exit "issues found"), read from its report;
  missed    the tool finished and reported nothing at that threshold;
  error     the tool crashed, timed out, refused the file, or exited non-zero without such a finding.

What each tool's "detected" means (established from --help, the tools' sources and trial runs):

  modelguard  `scan FILE --format json`: verdict "malicious" (a finding of severity high or more,
              which is what makes it exit 1 by default); verdict "error" or exit 2 is an error.
              "suspicious" (medium/low findings, exit 0) is not a detection; it is kept in the details.
  picklescan  `-p FILE`: it printed "dangerous import ... FOUND" (Infected files > 0). It exits 1 for
              that, but 2 when it also hit a parse error, which is still reported as detected here
              (the exit code is kept in the details). Exit 2 with no dangerous global is an error.
  modelscan   `-p FILE -r json -o OUT`: any issue in the JSON report (it exits 1 for any issue, but 2
              when errors were also recorded). No issue and exit 2/3 (scan error / "no supported
              files") is an error.
  fickling    `--check-safety --json-output OUT FILE`: exit 1 (severity above LIKELY_SAFE). Exit 2
              ("failed to parse ... DO NOT TRUST this file") is an error, not a detection.
  modelaudit  `scan --format json --no-cache -o OUT FILE`: an issue of severity warning or critical
              (what makes it exit 1). No such issue and exit 2 is an error.

The details file also keeps, per run, the exit code, the strongest severity the tool reported, a
short reason and "top_band" (the finding is in the tool's top severity band: modelguard malicious,
picklescan dangerous, modelscan HIGH/CRITICAL, fickling LIKELY_OVERTLY_MALICIOUS or above, ModelAudit
critical). A second table reports that stricter reading and a fail-closed one (any non-zero exit or
timeout = blocked). `--tools picklescan-strict` runs `picklescan --strict` as an extra tool.

SAFETY: this script never unpickles anything. It only starts the scanners, which parse the files
statically. The corpus payloads only create /tmp/modelguard-marker-<case>; the script checks that no
new marker appeared during the run and says so.

Usage:
    python3 bench/compare_scanners.py [--details /tmp/compare_scanners.json]
        [--venv /work/venv-scanners] [--modelguard target/release/modelguard]
        [--tools modelguard,picklescan,modelscan,fickling,modelaudit] [--timeout 60]

Tools run in a scratch directory each (modelscan reads ./modelscan-settings.toml, fickling writes its
JSON there), with ModelAudit telemetry off and the Hugging Face Hub offline.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAL_DIR = os.path.join(REPO, "tests", "fixtures", "malicious")
BENIGN_DIR = os.path.join(REPO, "tests", "fixtures", "models")
TOOLS = ["modelguard", "picklescan", "modelscan", "fickling", "modelaudit"]
MARKER_GLOB = "/tmp/modelguard-marker-*"

# Keep the peers quiet and offline: ModelAudit sends telemetry unless told not to, and both it and
# fickling can reach for the Hugging Face Hub.
TOOL_ENV = {
    "PROMPTFOO_DISABLE_TELEMETRY": "1",
    "NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "NO_COLOR": "1",
    "TERM": "dumb",
    "COLUMNS": "200",
}


def run(cmd, cwd, timeout):
    """Run cmd in its own process group; return (rc or None on timeout, stdout, stderr, seconds)."""
    env = dict(os.environ)
    env.update(TOOL_ENV)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        rc = None
    secs = time.perf_counter() - t0
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), secs


def last_line(text, n=200):
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return lines[-1][:n] if lines else ""


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# One adapter per tool: (command, parse). parse returns a dict with at least "status" and "reason".


class Tool:
    name = ""

    def version(self):
        raise NotImplementedError

    def command(self, path, workdir):
        raise NotImplementedError

    def parse(self, rc, out, err, workdir):
        raise NotImplementedError

    def scan(self, path, timeout):
        workdir = tempfile.mkdtemp(prefix=f"cmpscan-{self.name}-")
        try:
            rc, out, err, secs = run(self.command(path, workdir), workdir, timeout)
            if rc is None:
                res = {"status": "error", "reason": f"timed out after {timeout} s"}
            else:
                try:
                    res = self.parse(rc, out, err, workdir)
                except Exception as e:  # a report we could not read is the tool's error
                    res = {"status": "error", "reason": f"unreadable output ({type(e).__name__}: {e})"}
            res["exit_code"] = rc
            res["seconds"] = round(secs, 4)
            return res
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def py_version(venv, dist):
    r = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                        f"import importlib.metadata as m; print(m.version({dist!r}))"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "?"


class Modelguard(Tool):
    name = "modelguard"

    def __init__(self, binary):
        self.bin = binary

    def version(self):
        r = subprocess.run([self.bin, "--version"], capture_output=True, text=True)
        return r.stdout.strip().split()[-1] if r.stdout.strip() else "?"

    def command(self, path, workdir):
        return [self.bin, "scan", path, "--format", "json", "--no-hash"]

    def parse(self, rc, out, err, workdir):
        rep = json.loads(out)
        f = rep["files"][0]
        sev = [x.get("severity") for x in f.get("findings", [])]
        rules = sorted({x.get("rule_id") for x in f.get("findings", [])})
        order = ["info", "low", "medium", "high", "critical"]
        top = max(sev, key=order.index) if sev else None
        verdict = f.get("verdict")
        res = {"verdict": verdict, "max_severity": top, "rules": rules, "top_band": verdict == "malicious"}
        if verdict == "malicious":
            res.update(status="detected", reason=f"malicious: {', '.join(rules)}")
        elif verdict == "error" or rc == 2:
            res.update(status="error", reason=str(f.get("error") or last_line(err) or "error"))
        else:
            res.update(status="missed", reason=f"{verdict}" + (f": {', '.join(rules)}" if rules else ""))
        return res


class Picklescan(Tool):
    name = "picklescan"

    def __init__(self, venv):
        self.venv = venv

    def version(self):
        return py_version(self.venv, "picklescan")

    def command(self, path, workdir):
        return [os.path.join(self.venv, "bin", "picklescan"), "-p", path]

    def parse(self, rc, out, err, workdir):
        def count(label):
            m = re.search(rf"^{label}: (\d+)", out, re.M)
            return int(m.group(1)) if m else None

        infected, dangerous, suspicious = count("Infected files"), count("Dangerous globals"), count("Suspicious globals")
        found = re.findall(r"dangerous import '([^']*)' FOUND", out)
        res = {"infected": infected, "dangerous_globals": dangerous, "suspicious_globals": suspicious,
               "max_severity": "dangerous" if dangerous else ("suspicious" if suspicious else None),
               "top_band": bool(dangerous)}
        if (infected or 0) > 0 or (dangerous or 0) > 0:
            res.update(status="detected", reason="dangerous: " + ", ".join(sorted(set(found)))[:200]
                       + (" (exit 2: parse error too)" if rc == 2 else ""))
        elif rc == 0:
            res.update(status="missed", reason=f"exit 0; suspicious globals: {suspicious}")
        else:
            errl = [l for l in (err + out).splitlines() if "ERROR" in l or "Error" in l or "Exception" in l]
            res.update(status="error", reason=f"exit {rc}: " + (errl[-1].strip()[:200] if errl else last_line(err + out)))
        return res


class PicklescanStrict(Picklescan):
    """picklescan --strict: suspicious globals are promoted to dangerous. Not in the default set."""
    name = "picklescan-strict"

    def command(self, path, workdir):
        return super().command(path, workdir) + ["--strict"]


class Modelscan(Tool):
    name = "modelscan"

    def __init__(self, venv):
        self.venv = venv

    def version(self):
        return py_version(self.venv, "modelscan")

    def command(self, path, workdir):
        return [os.path.join(self.venv, "bin", "modelscan"), "-p", path, "-r", "json", "--show-skipped",
                "-o", os.path.join(workdir, "report.json")]

    def parse(self, rc, out, err, workdir):
        rep = load_json(os.path.join(workdir, "report.json"))
        if rep is None:
            return {"status": "error", "reason": f"exit {rc}, no report: {last_line(err + out)}"}
        issues = rep.get("issues", [])
        errors = rep.get("errors", [])
        order = ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
        sevs = [i.get("severity") for i in issues if i.get("severity") in order]
        skipped = rep.get("summary", {}).get("skipped", {}).get("skipped_files", [])
        top = max(sevs, key=order.index) if sevs else None
        res = {"max_severity": top, "top_band": top in ("HIGH", "CRITICAL"),
               "scanned": rep.get("summary", {}).get("scanned", {}).get("total_scanned"),
               "errors": [e.get("description", "")[:200] for e in errors][:5],
               "skipped": [f"{k.get('category')}: {k.get('description', '')[:150]}" for k in skipped][:5]}
        if issues:
            ops = sorted({f"{i.get('module')}.{i.get('operator')}" for i in issues})
            res.update(status="detected", reason=f"{res['max_severity']}: " + ", ".join(ops)[:200]
                       + (f" (exit {rc}: errors too)" if rc != 1 else ""))
        elif rc == 0:
            res.update(status="missed", reason="exit 0, no issues")
        else:
            if errors:
                why = errors[0].get("description", "")[:200]
            elif skipped:
                why = "; ".join(f"{k.get('category')}: {k.get('description', '')}" for k in skipped
                                if k.get("category") != "SCAN_NOT_SUPPORTED")[:200] or "skipped"
            else:
                why = last_line(err + out)
            what = {2: "scan error", 3: "no supported files scanned"}.get(rc, "exit")
            res.update(status="error", reason=f"exit {rc} ({what}): {why}")
        return res


class Fickling(Tool):
    name = "fickling"

    def __init__(self, venv):
        self.venv = venv

    def version(self):
        return py_version(self.venv, "fickling")

    def command(self, path, workdir):
        return [os.path.join(self.venv, "bin", "fickling"), "--check-safety",
                "--json-output", os.path.join(workdir, "safety.json"), path]

    # fickling appends one JSON object per stacked pickle to the --json-output file.
    ORDER = ["LIKELY_SAFE", "POSSIBLY_UNSAFE", "SUSPICIOUS", "LIKELY_UNSAFE", "LIKELY_OVERTLY_MALICIOUS",
             "OVERTLY_MALICIOUS"]

    def parse(self, rc, out, err, workdir):
        docs = []
        try:
            with open(os.path.join(workdir, "safety.json"), encoding="utf-8") as f:
                text = f.read()
        except OSError:
            text = ""
        dec, i = json.JSONDecoder(), 0
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                break
            doc, i = dec.raw_decode(text, i)
            docs.append(doc)
        sevs = [d.get("severity") for d in docs if d.get("severity") in self.ORDER]
        top = max(sevs, key=self.ORDER.index) if sevs else None
        res = {"max_severity": top, "pickles_analysed": len(docs),
               "top_band": rc == 1 and "Traceback (most recent call last)" not in err
               and top in ("LIKELY_OVERTLY_MALICIOUS", "OVERTLY_MALICIOUS")}
        if "Traceback (most recent call last)" in err:
            # An uncaught exception also exits 1, which must not be read as "unsafe".
            res.update(status="error", reason=f"exit {rc}: crashed: {last_line(err)}"
                       + (f" (after {len(docs)} pickle(s), worst {top})" if docs else ""))
        elif rc == 1:
            worst = next((d for d in docs if d.get("severity") == top), {})
            first = (worst.get("analysis") or "").strip().splitlines()
            res.update(status="detected", reason=f"{top}: {first[0][:180] if first else ''}")
        elif rc == 0:
            res.update(status="missed", reason=f"exit 0 ({top or 'no analysis'})")
        else:
            lines = [l for l in err.splitlines() if l.strip()]
            why = next((l for l in lines if "failed" in l.lower() or "error" in l.lower()), lines[-1] if lines else "")
            res.update(status="error", reason=f"exit {rc}: {why.strip()[:200]}")
        return res


class Modelaudit(Tool):
    name = "modelaudit"

    def __init__(self, venv):
        self.venv = venv

    def version(self):
        return py_version(self.venv, "modelaudit")

    def command(self, path, workdir):
        return [os.path.join(self.venv, "bin", "modelaudit"), "scan", "--format", "json", "--no-cache",
                "-o", os.path.join(workdir, "report.json"), path]

    def parse(self, rc, out, err, workdir):
        rep = load_json(os.path.join(workdir, "report.json"))
        if rep is None:
            return {"status": "error", "reason": f"exit {rc}, no report: {last_line(err + out)}"}
        order = ["debug", "info", "warning", "critical"]
        issues = [i for i in rep.get("issues", []) if str(i.get("severity", "")).lower() in order]
        sevs = [str(i["severity"]).lower() for i in issues]
        flagged = [i for i in issues if str(i["severity"]).lower() in ("warning", "critical")]
        crit = [i for i in issues if str(i["severity"]).lower() == "critical"]
        res = {"max_severity": max(sevs, key=order.index) if sevs else None,
               "critical_issues": len(crit), "warning_issues": len(flagged) - len(crit), "top_band": bool(crit),
               "has_errors": rep.get("has_errors")}
        if flagged:
            top = (crit or flagged)[0]
            res.update(status="detected", reason=f"{res['max_severity']}: {top.get('message', '')[:180]}"
                       + (f" (exit {rc})" if rc != 1 else ""))
        elif rc == 0:
            res.update(status="missed", reason="exit 0, no warning/critical issue")
        else:
            msgs = [i.get("message", "") for i in rep.get("issues", [])]
            why = msgs[0][:200] if msgs else last_line(err + out)
            res.update(status="error", reason=f"exit {rc}: {why}")
        return res


# ---------------------------------------------------------------------------------------------


def benign_files(mg_bin):
    """The benign fixtures modelguard actually scans (its "skipped" files are left out for all)."""
    r = subprocess.run([mg_bin, "scan", BENIGN_DIR, "--format", "json", "--no-hash"],
                       capture_output=True, text=True)
    rep = json.loads(r.stdout)
    keep, skipped = [], []
    for f in rep["files"]:
        p = f["path"] if os.path.isabs(f["path"]) else os.path.join(os.getcwd(), f["path"])
        rel = os.path.relpath(os.path.realpath(p), BENIGN_DIR)
        (skipped if f["verdict"] == "skipped" else keep).append(rel)
    return sorted(keep), sorted(skipped)


def markers():
    return set(glob.glob(MARKER_GLOB))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--details", default="/tmp/compare_scanners.json", help="per-case JSON output")
    ap.add_argument("--venv", default="/work/venv-scanners", help="venv holding the peer scanners")
    ap.add_argument("--modelguard", default=os.path.join(REPO, "target", "release", "modelguard"))
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per tool per file")
    args = ap.parse_args()

    mg_bin = os.path.abspath(args.modelguard)
    if not os.access(mg_bin, os.X_OK):
        sys.exit(f"modelguard binary not found: {mg_bin}")
    adapters = {"modelguard": Modelguard(mg_bin), "picklescan": Picklescan(args.venv),
                "modelscan": Modelscan(args.venv), "fickling": Fickling(args.venv),
                "modelaudit": Modelaudit(args.venv), "picklescan-strict": PicklescanStrict(args.venv)}
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for t in tools:
        if t not in adapters:
            sys.exit(f"unknown tool {t}; choose from {', '.join(adapters)}")

    with open(os.path.join(MAL_DIR, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    mal = [{"set": "malicious", "case": e["case"], "file": os.path.join(MAL_DIR, e["file"]),
            "technique": e.get("technique", "")} for e in manifest]
    keep, skipped = benign_files(mg_bin)
    ben = [{"set": "benign", "case": rel, "file": os.path.join(BENIGN_DIR, rel), "technique": ""} for rel in keep]
    for item in mal + ben:
        if not os.path.isfile(item["file"]):
            sys.exit(f"missing input: {item['file']}")

    versions = {t: adapters[t].version() for t in tools}
    before = markers()
    started = datetime.datetime.now().astimezone()
    results = {t: [] for t in tools}
    total = len(tools) * (len(mal) + len(ben))
    done = 0
    # One tool at a time, one file at a time: the timings are then not disturbed by the other tools.
    for t in tools:
        for item in mal + ben:
            res = adapters[t].scan(item["file"], args.timeout)
            res.update(set=item["set"], case=item["case"], file=os.path.relpath(item["file"], REPO))
            results[t].append(res)
            done += 1
            print(f"[{done}/{total}] {t:<10} {item['set']:<9} {item['case']:<45} {res['status']:<8} "
                  f"{res['seconds']:.2f}s  {res['reason'][:90]}", file=sys.stderr, flush=True)
    new_markers = sorted(markers() - before)

    summary = []
    for t in tools:
        rs = results[t]
        m = [r for r in rs if r["set"] == "malicious"]
        b = [r for r in rs if r["set"] == "benign"]
        summary.append({
            "tool": t, "version": versions[t],
            "malicious_total": len(m),
            "malicious_detected": sum(r["status"] == "detected" for r in m),
            "malicious_missed": sum(r["status"] == "missed" for r in m),
            "malicious_errors": sum(r["status"] == "error" for r in m),
            "benign_total": len(b),
            "benign_false_positives": sum(r["status"] == "detected" for r in b),
            "benign_errors": sum(r["status"] == "error" for r in b),
            # Alternative gate: a CI job that blocks on any non-zero exit (or a timeout).
            "malicious_nonzero_exit": sum(r["exit_code"] != 0 for r in m),
            "benign_nonzero_exit": sum(r["exit_code"] != 0 for r in b),
            # Stricter reading: only the tool's top severity band counts (see top_band in the results).
            "malicious_top_band": sum(bool(r.get("top_band")) for r in m),
            "benign_top_band": sum(bool(r.get("top_band")) for r in b),
            "median_seconds": round(statistics.median(r["seconds"] for r in rs), 3) if rs else None,
            "median_seconds_malicious": round(statistics.median(r["seconds"] for r in m), 3) if m else None,
            "median_seconds_benign": round(statistics.median(r["seconds"] for r in b), 3) if b else None,
        })

    lines = ["| tool | version | malicious detected / total | errors on malicious | "
             "false positives on benign / total | errors on benign | median seconds per file |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for s in summary:
        lines.append(f"| {s['tool']} | {s['version']} | {s['malicious_detected']} / {s['malicious_total']} | "
                     f"{s['malicious_errors']} | {s['benign_false_positives']} / {s['benign_total']} | "
                     f"{s['benign_errors']} | {s['median_seconds']:.2f} |")
    table = "\n".join(lines)

    alt = ["| tool | top band only: malicious / total | top band only: benign flagged / total | "
           "any non-zero exit: malicious / total | any non-zero exit: benign / total |",
           "|---|---:|---:|---:|---:|"]
    for s in summary:
        alt.append(f"| {s['tool']} | {s['malicious_top_band']} / {s['malicious_total']} | "
                   f"{s['benign_top_band']} / {s['benign_total']} | {s['malicious_nonzero_exit']} / "
                   f"{s['malicious_total']} | {s['benign_nonzero_exit']} / {s['benign_total']} |")
    alt_table = "\n".join(alt)

    # Per-case matrix (D = detected, - = missed, E = error) for the malicious corpus.
    short = {"detected": "D", "missed": "-", "error": "E"}
    mat = ["| case | " + " | ".join(tools) + " |", "|---|" + "---|" * len(tools)]
    for i, item in enumerate(mal):
        mat.append(f"| {item['case']} | " + " | ".join(short[results[t][i]['status']] for t in tools) + " |")
    matrix = "\n".join(mat)

    details = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python3"] + sys.argv),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "timeout_seconds": args.timeout,
        "versions": versions,
        "benign_skipped_by_modelguard": skipped,
        "new_marker_files": new_markers,
        "summary": summary,
        "table_markdown": table,
        "alternative_gates_markdown": alt_table,
        "malicious_matrix_markdown": matrix,
        "cases": [dict(item, file=os.path.relpath(item["file"], REPO)) for item in mal + ben],
        "results": results,
    }
    with open(args.details, "w", encoding="utf-8") as f:
        json.dump(details, f, indent=2)

    print(table)
    print()
    print("Other gates (top band: modelguard malicious, picklescan dangerous, modelscan HIGH/CRITICAL, fickling "
          ">= LIKELY_OVERTLY_MALICIOUS, ModelAudit critical; a timeout counts as non-zero):")
    print()
    print(alt_table)
    print()
    print(f"malicious: {len(mal)} cases from {os.path.relpath(MAL_DIR, REPO)}/manifest.json; "
          f"benign: {len(ben)} files in {os.path.relpath(BENIGN_DIR, REPO)} "
          f"({len(skipped)} skipped by modelguard and left out: {', '.join(skipped)})")
    print(f"details: {args.details}")
    if new_markers:
        print(f"WARNING: marker files appeared during the run (a payload ran): {', '.join(new_markers)}")
    else:
        print("no /tmp/modelguard-marker-* file appeared during the run (no payload was executed)")


if __name__ == "__main__":
    main()
