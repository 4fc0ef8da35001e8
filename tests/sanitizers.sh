#!/usr/bin/env bash
# AddressSanitizer (and Miri) over the `unsafe` jail code (issue 8). Results and the reasoning
# behind every step: docs/sanitizers.md.
#
# Why it is not simply `cargo test` with -Zsanitizer=address: the jailed worker is this same
# binary re-executed, and ASan cannot live inside the worker the product builds:
#   * ASan reserves ~15 TiB of shadow memory at start-up. tests/common's run_limited() starts
#     every CLI run under `ulimit -v` (4 GiB), so the ASan binary cannot even start there
#     ("ReserveShadowMemoryRange failed"): fixtures_roundtrip and hostile_inputs fail, and
#     sandboxes skips itself (its `doctor` probe fails the same way) and reports "ok".
#   * The worker sets RLIMIT_AS (<= 8 GiB) on itself; with ASan's reservation already far above
#     that, the kernel refuses every later mmap: the worker dies right after the rlimit step
#     ("AddressSanitizer: out of memory ... InternalMmapVector"), before Landlock and seccomp.
#   * LeakSanitizer's exit-time check calls gettid (and would clone a tracer thread), which the
#     seccomp allowlist kills with SIGSYS; the host starts the worker with env_clear(), so
#     ASAN_OPTIONS=detect_leaks=0 cannot reach a worker the host starts.
#   * Any ASan report inside the jail dies with SIGSYS at its first getpid (the "==PID==" prefix)
#     before printing anything: inside the jail a memory error shows as a seccomp kill.
# So this script runs, all with one ASan build (debug profile, --features jail-probe):
#   1. the library's unit tests (all of them, the jail's included);
#   2. the four integration suites that exercise the worker, unmodified, to record what happens
#      (their failures are the environmental ones above and are not a gate; an ASan/LSan
#      *bug report* in their output is);
#   3. the CLI host under ASan+LSan without `ulimit -v`: every single-file fixture through
#      --sandbox none (the engine in-process, full ASan reports) and --sandbox wasi (wasmtime,
#      the guest compiled once and then loaded from the cache: src/wasi/cache.rs's unsafe);
#   4. the worker itself (`modelguard __worker ARGS`, as tests/jail_attacks.rs starts it) with
#      every layer on except RLIMIT_AS (budget.memory = u64::MAX, which the worker clamps to the
#      hard limit, i.e. unlimited) and ASAN_OPTIONS=detect_leaks=0 in its environment: the
#      jail-attack probes, every fixture compared with its ground truth, the malicious corpus,
#      hostile inputs and truncations, and the stacked (--sandbox both) worker. This covers every
#      unsafe block of src/jail/ under ASan inside the real seccomp/Landlock/namespace jail;
#   5. Miri on the jail's unit tests when cargo-miri is installed (none of them reaches an
#      unsafe block: the blocks are FFI calls Miri cannot execute; see the doc).
# Nothing here changes the product: the jail is exactly what users run, minus RLIMIT_AS in step 4
# (chosen through the worker's own budget argument, as the jail tests choose theirs).
#
# Usage: tests/sanitizers.sh      (CARGO_TARGET_DIR defaults to target/sanitizers: the ASan
# RUSTFLAGS would otherwise rebuild the normal target dir). SANITIZERS_MIRI=0 skips Miri.
# Needs rustup's nightly toolchain; Miri also needs its miri and rust-src components.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/sanitizers}"
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
start_all=$(date +%s)
logs="$CARGO_TARGET_DIR/sanitizer-logs"
mkdir -p "$logs"
status=0
elapsed() { echo "$(( $(date +%s) - $1 )) s"; }

# A real finding: an ASan/LSan bug report. "out of memory" / "failed to allocate" are the
# environmental failures described above.
findings() {
  grep -E 'ERROR: (AddressSanitizer|LeakSanitizer): ' "$1" | grep -Ev 'out of memory|failed to allocate' || true
}

# The WASI guest is embedded at build time (build.rs): without it the wasi/both parts skip.
guest=guest/target/wasm32-wasip1/release/modelguard-guest.wasm
if [ ! -f "$guest" ] && [ "${MODELGUARD_SKIP_GUEST:-0}" != 1 ]; then
  echo "== building the WASI guest"
  guest/build.sh
fi

# -Zsanitizer needs an explicit --target, so that build scripts and proc macros (which run on
# the build machine) are not instrumented. std is not rebuilt (no -Zbuild-std): its own code is
# uninstrumented, but every allocation goes through ASan's malloc.
export RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address"
cargo_asan=(cargo +nightly test --target "$host" --features jail-probe)

echo "== 1. unit tests under ASan (cargo test --lib)"
t=$(date +%s)
"${cargo_asan[@]}" --lib 2>&1 | tee "$logs/lib.log" | grep -E '^test result|FAILED|panicked' || true
grep -q '^test result: ok' "$logs/lib.log" || { echo "unit tests failed under ASan"; status=1; }
echo "   ($(elapsed "$t"))"

echo "== 2. integration suites under ASan, unmodified (failures expected: see the header)"
for suite in jail_attacks sandboxes hostile_inputs fixtures_roundtrip; do
  t=$(date +%s)
  # --nocapture: a test that skips itself says so on stderr.
  "${cargo_asan[@]}" --test "$suite" -- --nocapture > "$logs/$suite.log" 2>&1 || true
  result=$(grep -E '^test result' "$logs/$suite.log" | sed 's/; 0 measured.*//' || echo "no result (build failed?)")
  shadow=$(grep -c 'ReserveShadowMemoryRange failed' "$logs/$suite.log" || true)
  skipped=$(grep -c '^skipped' "$logs/$suite.log" || true)
  echo "   $suite: $result ($(elapsed "$t")); runs where ASan could not start under" \
    "ulimit -v: $shadow; tests that skipped themselves: $skipped"
  f=$(findings "$logs/$suite.log")
  if [ -n "$f" ]; then echo "$f"; status=1; fi
done

bin="$CARGO_TARGET_DIR/$host/debug/modelguard"
[ -x "$bin" ] || "${cargo_asan[@]}" --no-run --test jail_attacks >/dev/null 2>&1
doctor=$("$bin" doctor 2>&1 || true)
# The worker the host starts exits 1 with "AddressSanitizer: out of memory" (RLIMIT_AS).
echo "   doctor with the ASan binary: $(grep 'native jail' <<< "$doctor" || true)"

# The Python half of steps 3 and 4: the product's own tests are Rust, but steps 3-4 need to run
# the ASan binary without `ulimit -v` and the worker with an environment, which the Rust
# helpers do not allow without changing tests/common (see docs/sanitizers.md).
drv=$(mktemp -d)
trap 'rm -rf "$drv"' EXIT
cat > "$drv/drive.py" <<'PY'
import json, os, shutil, signal, socket, struct, subprocess, sys, tempfile, time

mode, exe, root = sys.argv[1], sys.argv[2], sys.argv[3]
results, failures = {"pass": 0, "fail": 0}, []
tmp = tempfile.mkdtemp(prefix="mg-asan-")


def record(name, ok, detail=""):
    results["pass" if ok else "fail"] += 1
    if not ok:
        failures.append(f"{name}: {detail}")
    print(f"   {'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail[:3000]}", flush=True)


def safetensors(data):
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    return ({k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]])
             for k, v in header.items()}, meta)


def same_as_expected(data, expected):
    got, meta = safetensors(data)
    want, _ = safetensors(open(os.path.join(root, "tests/fixtures", expected), "rb").read())
    return got == want and meta.get("format") == "pt"


manifest = [c for c in json.load(open(os.path.join(root, "tests/fixtures/manifest.json")))
            if c["format"] != "hf-folder"]
malicious = json.load(open(os.path.join(root, "tests/fixtures/malicious/manifest.json")))


def finish():
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"   {mode}: {results['pass']} passed, {results['fail']} failed")
    for f in failures:
        print("   FAILED", f[:3000])
    sys.exit(1 if results["fail"] else 0)


if mode == "host":
    # 3. The CLI under ASan+LSan (ASAN_OPTIONS from the caller's environment).
    for sandbox in sys.argv[4].split(","):
        for case in manifest:
            out = os.path.join(tmp, case["case"] + ".safetensors")
            r = subprocess.run([exe, "convert", os.path.join(root, "tests/fixtures", case["input"]),
                                out, "-q", "--sandbox", sandbox] + case["options"],
                               capture_output=True, timeout=600)
            ok = r.returncode == 0 and same_as_expected(open(out, "rb").read(), case["expected"])
            record(f"--sandbox {sandbox} {case['case']}", ok,
                   f"exit {r.returncode}: {r.stderr.decode(errors='replace')}")
            os.remove(out) if os.path.exists(out) else None
        for case in malicious:
            out = os.path.join(tmp, "o.safetensors")
            r = subprocess.run([exe, "convert", os.path.join(root, "tests/fixtures/malicious", case["file"]),
                                out, "-q", "--sandbox", sandbox], capture_output=True, timeout=600)
            ok = r.returncode == 1 and not os.path.exists(out) and not os.path.exists(case["marker"])
            record(f"--sandbox {sandbox} malicious {case['case']} refused", ok,
                   f"exit {r.returncode}: {r.stderr.decode(errors='replace')}")
    finish()

# 4. The worker, started directly like tests/jail_attacks.rs does.
module = sys.argv[4]
UNLIMITED = (1 << 64) - 1
LIMITS = {"max_stack": 1048576, "max_memo": 1048576, "max_nodes": 2000000, "max_depth": 10000,
          "max_graph_bytes": 100663296, "max_ops": 268435456, "max_nested_pickles": 64,
          "max_parse_millis": 120000, "max_tensors": 1048576, "max_rank": 64,
          "max_inflated_member": 268435456, "max_archive_members": 65536,
          "max_output_bytes": 17592186044416}
worker_env = {"ASAN_OPTIONS": os.environ.get("WORKER_ASAN_OPTIONS", "detect_leaks=0")}


def worker(input_path, probe=None, cpu=30, dedup=False, guest=None, timeout=120, on_spawn=None):
    """(signal or None, exit code or None, report or None, raw report bytes, output bytes)"""
    out = os.path.join(tmp, "out")
    args = {"input_len": os.path.getsize(input_path),
            "budget": {"parent": os.getpid(), "memory": UNLIMITED, "cpu_seconds": cpu,
                       "output_bytes": LIMITS["max_output_bytes"] + (128 << 20)},
            "options": {"format": {"limits": LIMITS, "skip_unsupported": False},
                        "fail_on": "high", "dedup": dedup, "scan_only": False},
            "probe": probe, "guest": guest}
    with open(input_path, "rb") as i, open(out, "wb") as o:
        p = subprocess.Popen([exe, "__worker", json.dumps(args)], stdin=i, stdout=o,
                             stderr=subprocess.PIPE, env=worker_env, cwd="/")
        if on_spawn:
            on_spawn(p.pid)
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
    rc = p.returncode
    try:
        report = json.loads(err)
    except ValueError:
        report = None
    return (-rc if rc < 0 else None), (rc if rc >= 0 else None), report, err, open(out, "rb").read()


def describe(sig, code, err):
    text = err.decode(errors="replace")
    return (f"signal {signal.Signals(sig).name}" if sig else f"exit {code}") + \
        (" ASAN: " + text if "Sanitizer" in text else "")


empty = os.path.join(tmp, "empty")
open(empty, "wb").close()

# 4a. The attack probes of tests/jail_attacks.rs (lockdown.rs, worker.rs and probe.rs).
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
listener.setblocking(False)
port = listener.getsockname()[1]
for probe in ["open-passwd", "create-tmp", f"connect-loopback:{port}", "socket-unix",
              "exec-shell", "fork", "ptrace", "kill-parent", "mmap-exec", "write-other-fd",
              "seek-output", "unshare"]:
    sig, code, rep, err, _ = worker(empty, probe=probe, cpu=10)
    record(f"probe {probe} -> SIGSYS", sig == signal.SIGSYS, describe(sig, code, err))
try:
    listener.accept()
    record("nothing reached the loopback listener", False, "a connection arrived")
except BlockingIOError:
    record("nothing reached the loopback listener", True)
record("no /tmp/modelguard-jail-escape", not os.path.exists("/tmp/modelguard-jail-escape"))

sig, code, rep, err, _ = worker(empty, probe="none", cpu=10)
layers = (rep or {}).get("layers", {})
record("probe none -> ok, all four layers enforced",
       sig is None and code == 0 and (rep or {}).get("probe") == "ok"
       and all(layers.get(k, {}).get("status") == "enforced"
               for k in ("namespaces", "rlimits", "landlock", "seccomp")),
       describe(sig, code, err) + f" layers={layers}")

t0 = time.time()
sig, code, rep, err, _ = worker(empty, probe="spin", cpu=1, timeout=20)
record("probe spin (1 CPU s) -> SIGXCPU/SIGKILL",
       sig in (signal.SIGXCPU, signal.SIGKILL) and time.time() - t0 < 10, describe(sig, code, err))

seen = {}


def inspect(pid):
    status = ""
    for _ in range(400):
        try:
            status = open(f"/proc/{pid}/status").read()
        except OSError:
            status = ""
        if "Seccomp:\t2" in status:
            break
        time.sleep(0.005)
    seen["status"] = status
    try:
        seen["fds"] = sorted(os.listdir(f"/proc/{pid}/fd"))
        seen["ns"] = os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    except OSError:
        pass


sig, code, rep, err, _ = worker(empty, probe="idle", cpu=10, on_spawn=inspect)
st = seen.get("status", "")
record("probe idle: seccomp mode 2, no_new_privs, own net namespace, only fds 0-2",
       "Seccomp:\t2" in st and "NoNewPrivs:\t1" in st and seen.get("ns") is True
       and seen.get("fds") == ["0", "1", "2"] and sig is None and code == 0,
       f"fds={seen.get('fds')} netns={seen.get('ns')} {describe(sig, code, err)}")

# RLIMIT_AS is lifted here, so this probe cannot show the limit; it shows that ASan's
# allocator serves a 16 GiB allocation inside seccomp (anonymous mmap, no PROT_EXEC).
sig, code, rep, err, _ = worker(empty, probe="alloc", cpu=10)
record("probe alloc (RLIMIT_AS lifted: must survive; result printed)", sig is None and code == 0,
       describe(sig, code, err))
print(f"        alloc probe said: {(rep or {}).get('probe')}")

# 4b. Every single-file fixture, converted inside the jail and compared with the ground truth
#     (worker.rs's fd ownership, copy.rs's copy_file_range, the whole engine).
for case in manifest:
    sig, code, rep, err, data = worker(os.path.join(root, "tests/fixtures", case["input"]),
                                       dedup="--dedup" in case["options"])
    ok = sig is None and code == 0 and rep is not None and not rep["outcome"].get("error")
    detail = describe(sig, code, err)
    if ok:
        try:
            ok, detail = same_as_expected(data, case["expected"]), "tensors differ from the ground truth"
        except Exception as e:  # noqa: BLE001
            ok, detail = False, f"unreadable output: {e}"
    record(f"fixture {case['case']}", ok, detail)

# 4c. The malicious corpus: refused inside the jail, no marker file.
for case in malicious:
    sig, code, rep, err, _ = worker(os.path.join(root, "tests/fixtures/malicious", case["file"]))
    ok = (sig is None and code == 0 and rep is not None and rep["outcome"].get("refused")
          and not os.path.exists(case["marker"]))
    record(f"malicious {case['case']} refused", ok, describe(sig, code, err))

# 4d. Hostile inputs (from tests/hostile_inputs.rs and tests/sandboxes.rs; not the ones whose
#     bound is RLIMIT_AS itself, which is off here) and a fixture cut at ~150 points: each must
#     end in an error report, never a crash.
hostile = [("string length past the input", b"\x80\x02X\xf0\xff\xff\xff."),
           ("million-deep nesting", b"\x80\x02" + b"]" * 1_000_000 + b"a" * 999_999 + b"."),
           ("endless pickle without STOP", b"\x80\x02" + b"N0" * 500_000),
           ("memo doubling", b"\x80\x02]q\x00" + b"h\x00h\x00\x86q\x00" * 200 + b".")]
for name, data_in in hostile:
    p = os.path.join(tmp, "hostile")
    open(p, "wb").write(data_in)
    sig, code, rep, err, _ = worker(p)
    record(f"hostile: {name} -> error report",
           sig is None and code == 0 and rep is not None and rep["outcome"].get("error") is not None,
           describe(sig, code, err))
src = open(os.path.join(root, "tests/fixtures/models/sd_sequential.pt"), "rb").read()
cuts = sorted(set(range(0, len(src), max(1, len(src) // 150))) | {len(src) - 1})
bad = []
for cut in cuts:
    p = os.path.join(tmp, "cut")
    open(p, "wb").write(src[:cut])
    sig, code, rep, err, _ = worker(p)
    if not (sig is None and code == 0 and rep is not None and rep["outcome"].get("error")):
        bad.append(f"cut {cut}: {describe(sig, code, err)}")
record(f"sd_sequential.pt truncated at {len(cuts)} cut points -> error reports", not bad,
       "; ".join(bad))

# 4e. The stacked jail (--sandbox both): wasmtime inside the worker, alarm.rs's sigaction and
#     cache.rs's Module::deserialize_file run in the locked-down worker.
if module:
    gdir = tempfile.mkdtemp(prefix="mg-asan-guest-")
    fixture = os.path.join(root, "tests/fixtures/models/sd_sequential.pt")
    shutil.copyfile(fixture, os.path.join(gdir, "input"))
    guest = {"dir": gdir, "module": module, "timeout_secs": 10}
    sig, code, rep, err, data = worker(fixture, guest=guest)
    ok = sig is None and code == 0 and rep is not None and not rep["outcome"].get("error")
    record("stacked: the guest converts sd_sequential.pt inside the jail",
           ok and same_as_expected(data, "expected/sd_sequential.safetensors"),
           describe(sig, code, err) + f" {rep}")
    for probe, expect in [("stacked-open-input", (None, "Ok(())")),
                          ("stacked-open-outside", (None, "Err(EACCES)")),
                          ("stacked-open-cwd", (signal.SIGSYS, None)),
                          ("mmap-exec", (signal.SIGSYS, None)),
                          ("open-passwd", (signal.SIGSYS, None)),
                          ("socket-unix", (signal.SIGSYS, None)),
                          ("exec-shell", (signal.SIGSYS, None)),
                          ("fork", (signal.SIGSYS, None))]:
        sig, code, rep, err, _ = worker(empty, probe=probe, guest=guest, cpu=10)
        got = (sig, (rep or {}).get("probe"))
        record(f"stacked probe {probe} -> {expect}", got == expect, f"{got} {describe(sig, code, err)}")
    shutil.rmtree(gdir, ignore_errors=True)
else:
    print("   stacked jail: skipped (no WASI guest in this build)")
finish()
PY

# The compiled guest is cached per user: a private cache for this run, so that step 3 compiles
# it once (wasmtime + cranelift under ASan: ~1.5 min) and then loads it (cache.rs's unsafe).
export XDG_CACHE_HOME="$drv/cache"
mkdir -m 700 "$XDG_CACHE_HOME"
sandboxes=none
if grep -q 'wasi guest: sha256' <<< "$doctor"; then sandboxes=none,wasi; fi

echo "== 3. the CLI host under ASan + LeakSanitizer: --sandbox $sandboxes, every fixture and the malicious corpus"
t=$(date +%s)
python3 "$drv/drive.py" host "$bin" "$root" "$sandboxes" > "$logs/host.log" 2>&1 || status=1
grep -Ev '^   ok  ' "$logs/host.log" || true
f=$(findings "$logs/host.log"); if [ -n "$f" ]; then echo "$f"; status=1; fi
echo "   ($(elapsed "$t"))"

echo "== 4. the jailed worker under ASan (every layer but RLIMIT_AS; ASAN_OPTIONS=detect_leaks=0)"
t=$(date +%s)
module=$(ls "$XDG_CACHE_HOME"/modelguard/guest-*.cwasm 2>/dev/null | head -1 || true)
python3 "$drv/drive.py" worker "$bin" "$root" "$module" > "$logs/worker.log" 2>&1 || status=1
grep -Ev '^   ok  ' "$logs/worker.log" || true
f=$(findings "$logs/worker.log"); if [ -n "$f" ]; then echo "$f"; status=1; fi
echo "   ($(elapsed "$t"))"
unset RUSTFLAGS RUSTDOCFLAGS

echo "== 5. Miri: the jail's unit tests"
if [ "${SANITIZERS_MIRI:-1}" = 1 ] && cargo +nightly miri --version >/dev/null 2>&1; then
  t=$(date +%s)
  # Only what the jail needs (host): wasmtime and the service's SQLite would be interpreted too.
  cargo +nightly miri test --no-default-features --features host,jail-probe --lib jail \
    2>&1 | tee "$logs/miri.log" | grep -E '^test |^test result' || true
  grep -q '^test result: ok' "$logs/miri.log" || { echo "Miri failed"; status=1; }
  echo "   ($(elapsed "$t"))"

  echo "== 5b. Miri on each unsafe block, called one at a time from a scratch crate"
  # None of the unit tests above reaches an unsafe block (they are FFI calls in code that only
  # the worker runs). This calls each one from a throw-away crate that depends on this one, to
  # record what Miri says: "unsupported operation" is Miri stopping at a syscall it cannot
  # execute (not a bug); "Undefined Behavior" would be a finding.
  t=$(date +%s)
  probe="$CARGO_TARGET_DIR/miri-probe"
  mkdir -p "$probe/src" "$probe/tests"
  cp Cargo.lock "$probe/"
  : > "$probe/src/lib.rs"
  cat > "$probe/Cargo.toml" <<TOML
[package]
name = "miri-probe"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
modelguard = { path = "$root", default-features = false, features = ["host", "jail-probe"] }

[workspace]
TOML
  cat > "$probe/tests/unsafe_blocks.rs" <<'RS'
use modelguard::jail::lockdown::{hygiene, lock_down, Budget, Profile};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};

fn budget() -> Budget {
    Budget { parent: 1, memory: 1 << 30, cpu_seconds: 1, output_bytes: 1 }
}
/// lockdown.rs: close_range through libc::syscall (hygiene's first step).
#[test]
fn lockdown_close_range() { let _ = hygiene(&budget()); }
/// lockdown.rs: the Landlock ABI query; lock_down reaches it after unshare and setrlimit.
#[test]
fn lockdown_landlock_abi() { let _ = lock_down(&budget(), Profile::Parser); }
/// alarm.rs: sigaction.
#[test]
fn alarm_sigaction() { let _ = modelguard::jail::alarm::arm(std::time::Duration::from_secs(3600), || {}); }
/// worker.rs: the same fd calls as worker::main (which never returns), then copy.rs on fd 0.
#[test]
fn worker_fd_ownership() {
    let report = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(2) });
    assert_eq!(report.as_raw_fd(), 2);
    let output = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    let input = unsafe { BorrowedFd::borrow_raw(0) };
    assert!(modelguard::jail::copy::copy_range(input, &*output, 0, 0).unwrap());
}
/// probe.rs: the attacks that use unsafe.
#[test]
fn probe_fork() { modelguard::jail::probe::attack("fork"); }
#[test]
fn probe_mmap_exec() { modelguard::jail::probe::attack("mmap-exec"); }
#[test]
fn probe_write_other_fd() { modelguard::jail::probe::attack("write-other-fd"); }
#[test]
fn probe_seek_output() { modelguard::jail::probe::attack("seek-output"); }
#[test]
fn probe_openat2() { modelguard::jail::probe::attack_stacked("stacked-open-cwd", -100); }
RS
  for test in lockdown_close_range lockdown_landlock_abi alarm_sigaction worker_fd_ownership \
      probe_fork probe_mmap_exec probe_write_other_fd probe_seek_output probe_openat2; do
    out=$( (cd "$probe" && cargo +nightly miri test -q --test unsafe_blocks -- --exact "$test") 2>&1 || true)
    echo "$out" > "$logs/miri-$test.log"
    verdict=$(grep -m1 -E '^error: (unsupported operation|Undefined Behavior|abnormal termination)|^fatal runtime error|^test result' <<< "$out" || echo "no verdict (see $logs/miri-$test.log)")
    where=$(grep -m1 -A1 -E '^error: (unsupported operation|Undefined Behavior)' <<< "$out" | grep -oE 'src/[a-z/_]+\.rs:[0-9]+|library/std/src/[a-z/_]+\.rs:[0-9]+|/nix-[0-9.]+/src/[a-z/_]+\.rs:[0-9]+' | head -1 || true)
    if grep -q '^fatal runtime error' <<< "$out"; then verdict="$verdict ($(grep -m1 -A0 '^error: abnormal' <<< "$out" || true))"; fi
    echo "   $test: $verdict${where:+ at $where}"
    if grep -q 'Undefined Behavior' <<< "$out"; then status=1; fi
  done
  echo "   ($(elapsed "$t"))"
else
  echo "   skipped (SANITIZERS_MIRI=0, or no cargo-miri: rustup component add --toolchain nightly miri rust-src)"
fi

echo "== done in $(elapsed "$start_all"); logs in $logs"
[ "$status" = 0 ] && echo "== no sanitizer finding" || echo "== FAILED (see above)"
exit "$status"
