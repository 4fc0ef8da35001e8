#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration tests (the integration tests run
# the real binary on the committed fixtures and malicious corpus), the wasm32-wasip1 build of
# the engine, and the Python package's wheel + pytest. Needs Rust and Python 3 (venv, PyPI); the
# guest build may install Debian packages when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

# The guest first: the host embeds it at build time (--sandbox wasi).
if [ "${MODELGUARD_SKIP_GUEST:-0}" != 1 ]; then
  echo "== wasm32-wasip1 guest (the engine must build without an OS)"
  guest/build.sh
  ls -l guest/target/wasm32-wasip1/release/modelguard-guest.wasm guest/target/wasm32-wasip1/release/escape-probe.wasm
else
  echo "== MODELGUARD_SKIP_GUEST=1: the WASI guest is not built; its tests skip with a reason"
fi

# Python checks in the tests: the SARIF report against the official schema (jsonschema), real
# model files from PyPI wheels (pip download).
if ! python3 -c 'import jsonschema' 2>/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  echo "== installing jsonschema / pip for the Python checks"
  python3 -m pip install --quiet jsonschema 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages jsonschema 2>/dev/null \
    || { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-jsonschema python3-pip >/dev/null; } \
    || echo "warning: no jsonschema for python3; the SARIF schema test will fail in CI"
fi

# The service's web page is tested in headless Chromium: Debian's chromium and chromedriver (same
# version, so they always match), driven from Python by Selenium.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing chromium and chromedriver for the web page test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "warning: no chromium/chromedriver and not root on Debian; the web page test skips (fails in CI)"
  fi
fi
if ! python3 -c 'import selenium' 2>/dev/null; then
  echo "== installing selenium for the web page test"
  python3 -m pip install --quiet selenium 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages selenium 2>/dev/null \
    || echo "warning: no selenium for python3; the web page test skips (fails in CI)"
fi

# Provenance checks (tests/oms.rs, tests/provenance.rs): OMS signatures made by the real OpenSSF
# signer (PyPI model-signing) and BOMs validated against the official CycloneDX 1.6 schema
# (cyclonedx-python-lib), both from a venv in target/ with pinned versions. The signatures are
# made here and never committed (the folder holds the test private keys). Re-runs skip pip and
# the signer unless a requirements file or the generator changed.
venv=target/venv-provenance
oms=target/oms-fixtures
reqs_stamp=$(cat tests/fixtures/signing/requirements.txt tests/fixtures/bom/requirements.txt | sha256sum | cut -c1-64)
if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv for the provenance checks"
  python3 -m venv --clear "$venv" >/dev/null 2>&1 \
    || { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
         && { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; } \
         && python3 -m venv --clear "$venv"; } \
    || { rm -rf "$venv"; echo "warning: cannot make a python3 venv (apt-get install python3-venv); the signature and BOM tests skip (fail in CI)"; }
fi
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.modelguard-requirements" 2>/dev/null)" != "$reqs_stamp" ]; then
  echo "== installing model-signing and cyclonedx-python-lib into $venv"
  rm -f "$venv/.modelguard-requirements"
  if "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
       -r tests/fixtures/signing/requirements.txt -r tests/fixtures/bom/requirements.txt; then
    echo "$reqs_stamp" > "$venv/.modelguard-requirements"
  else
    echo "warning: pip could not install the provenance tools; the signature and BOM tests skip (fail in CI)"
  fi
fi
if [ -f "$venv/.modelguard-requirements" ]; then
  oms_stamp=$( (echo "$reqs_stamp"; cat tests/fixtures/signing/make_signatures.py) | sha256sum | cut -c1-64)
  if [ ! -f "$oms/expected.json" ] || [ "$(cat "$oms/.modelguard-stamp" 2>/dev/null)" != "$oms_stamp" ]; then
    echo "== signing the OMS test models with model-signing (into $oms)"
    rm -f "$oms/.modelguard-stamp"
    if "$venv/bin/python" tests/fixtures/signing/make_signatures.py "$oms"; then
      echo "$oms_stamp" > "$oms/.modelguard-stamp"
    else
      echo "warning: make_signatures.py failed; the signature tests skip (fail in CI)"
    fi
  fi
  # A caller's own settings win.
  export MODELGUARD_BOM_PYTHON="${MODELGUARD_BOM_PYTHON:-$PWD/$venv/bin/python}"
  if [ -f "$oms/.modelguard-stamp" ]; then
    export MODELGUARD_OMS_FIXTURES="${MODELGUARD_OMS_FIXTURES:-$PWD/$oms}"
  fi
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (deny warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "== cargo test (release: the hostile-input tests build 1 GiB bombs; jail-probe adds the in-jail attack tests)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --release --workspace --features jail-probe 2>&1 | tee "$log"
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')

# The Python package (python/): a maturin wheel carrying the executable, installed into a venv
# with torch/transformers/pre-commit (the ground truth of its tests), then pytest (python/tests
# and the Docker seccomp profile script, sandbox-profiles/docker) and mypy.
pyvenv=target/venv-python
py_stamp=$(sha256sum python/tests/requirements.txt | cut -c1-64)
if [ "$(cat "$pyvenv/.modelguard-requirements" 2>/dev/null)" != "$py_stamp" ]; then
  echo "== creating $pyvenv for the Python package tests (torch, transformers, pre-commit, maturin)"
  rm -rf "$pyvenv"
  python3 -m venv "$pyvenv"
  "$pyvenv/bin/python" -m pip install --quiet --disable-pip-version-check -r python/tests/requirements.txt
  echo "$py_stamp" > "$pyvenv/.modelguard-requirements"
fi
echo "== Python package: maturin wheel, pytest, mypy --strict"
rm -rf target/wheels
(cd python && "../$pyvenv/bin/maturin" build --release --quiet --out ../target/wheels)
wheel=$(ls target/wheels/modelguard_cli-*.whl)
"$pyvenv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"
(cd python && "../$pyvenv/bin/python" -m mypy --strict modelguard)
pylog=$(mktemp)
trap 'rm -f "$log" "$pylog"' EXIT
# MODELGUARD_BIN unset: the tests must find the wheel's own executable.
(cd python && env -u MODELGUARD_BIN MODELGUARD_WHEEL="$PWD/../$wheel" "../$pyvenv/bin/python" -m pytest -q -p no:cacheprovider tests ../sandbox-profiles/docker) 2>&1 | tee "$pylog"
py_passed=$( (grep -Eo '[0-9]+ passed' "$pylog" || true) | tail -1 | awk '{s+=$1} END {print s+0}')
py_failed=$( (grep -Eo '[0-9]+ failed' "$pylog" || true) | tail -1 | awk '{s+=$1} END {print s+0}')
passed=$((passed + py_passed))
failed=$((failed + py_failed))

# >>> registry claims (tests/registry/) >>>
# Every claim of src/policy/registry.toml checked against the libraries in target/venv-python:
# names resolve as the loaders' find_class does, modelled Python source is pinned in
# tests/registry/upstream.lock.json, classes keep the restore behaviour the machine models. A
# library upgrade that changes what the unpickler reaches fails here. Re-bless after review:
#   MODELGUARD_BLESS=1 target/venv-python/bin/python -m pytest tests/registry
echo "== registry claims against the installed libraries (tests/registry)"
registry_stamp=$(sha256sum tests/registry/requirements.txt | cut -c1-64)
if [ "$(cat "$pyvenv/.registry-requirements" 2>/dev/null)" != "$registry_stamp" ]; then
  "$pyvenv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/registry/requirements.txt
  echo "$registry_stamp" > "$pyvenv/.registry-requirements"
fi
reglog=$(mktemp)
"$pyvenv/bin/python" -m pytest -q -p no:cacheprovider tests/registry 2>&1 | tee "$reglog" || true
passed=$((passed + $( (grep -Eo '[0-9]+ passed' "$reglog" || true) | tail -1 | awk '{s+=$1} END {print s+0}')))
failed=$((failed + $( (grep -Eo '[0-9]+ failed' "$reglog" || true) | tail -1 | awk '{s+=$1} END {print s+0}')))
grep -Eq '[0-9]+ passed' "$reglog" || failed=$((failed + 1))
rm -f "$reglog"
# <<< registry claims <<<

# >>> differential oracle (tests/oracle/, docs/oracle.md) >>>
# The real loaders (pickle C and Python, torch.load both ways, joblib, numpy) run generated
# pickles in a bubblewrap sandbox; modelguard's scan/convert verdicts are checked against what
# they did. Bounded: seed 1, at most 400 candidates and 240 s, no minimisation; it fails on a
# counterexample whose signature is not kept under tests/fixtures/oracle/.
echo "== differential oracle: sandbox and tracer tests, then a bounded run (seed 1)"
if ! command -v bwrap >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "error: the oracle needs bubblewrap (apt-get install bubblewrap)"; exit 1
  fi
fi
oracle_stamp=$(sha256sum tests/oracle/requirements.txt | cut -c1-64)
if [ "$(cat "$pyvenv/.oracle-requirements" 2>/dev/null)" != "$oracle_stamp" ]; then
  "$pyvenv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/oracle/requirements.txt
  echo "$oracle_stamp" > "$pyvenv/.oracle-requirements"
fi
orlog=$(mktemp)
trap 'rm -f "$log" "$pylog" "$orlog"' EXIT
"$pyvenv/bin/python" -m pytest -q -p no:cacheprovider tests/oracle 2>&1 | tee "$orlog" || true
passed=$((passed + $( (grep -Eo '[0-9]+ passed' "$orlog" || true) | tail -1 | awk '{s+=$1} END {print s+0}')))
failed=$((failed + $( (grep -Eo '[0-9]+ failed' "$orlog" || true) | tail -1 | awk '{s+=$1} END {print s+0}')))
grep -Eq '[0-9]+ passed' "$orlog" || failed=$((failed + 1))
# target/release/modelguard was built by `cargo test --release` above
if nice -n 5 "$pyvenv/bin/python" tests/oracle/run.py --seed 1 --max-candidates 400 --budget-seconds 240 \
     --jobs 2 --no-minimise; then
  passed=$((passed + 1))
else
  echo "error: the oracle found a counterexample not kept under tests/fixtures/oracle (see above)"
  failed=$((failed + 1))
fi
[ "$failed" = 0 ] || { echo "tests: $passed passed, $failed failed"; exit 1; }
# <<< differential oracle <<<

echo "== debug build: the jail must work in the build 'cargo build' makes too"
cargo build --quiet
target/debug/modelguard doctor | grep -q "native jail: NOT WORKING" && { target/debug/modelguard doctor; exit 1; }
tmp=$(mktemp -d)
target/debug/modelguard convert -q tests/fixtures/models/sd_sequential.pt "$tmp/o.safetensors"
rm -rf "$tmp"

echo "== all checks passed"
echo "tests: $passed passed, $failed failed"
