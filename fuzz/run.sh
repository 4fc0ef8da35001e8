#!/usr/bin/env bash
# Run fuzz targets for a fixed time each and print one table row per target.
#
#   fuzz/run.sh SECONDS [TARGET...]        (all targets when none is named)
#
# libFuzzer grows fuzz/work/TARGET (ignored by git) and reads the committed, minimised
# fuzz/corpus/TARGET without writing to it, so CI's short runs never dirty the checkout. A crash,
# leak, timeout or out-of-memory stops the target, keeps the input in fuzz/artifacts/TARGET and
# makes this script exit 1 after the remaining targets ran. Logs: fuzz/logs/TARGET.log.
# FUZZ_PARALLEL=2 runs two targets side by side (the development machine has two cores).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} = 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build >/dev/null 2>&1 || { cargo +nightly fuzz build; exit 2; }
mkdir -p logs

run_one() {
  local t=$1
  mkdir -p "work/$t" "corpus/$t" "artifacts/$t"
  # -rss_limit_mb and -timeout sit far above what the engine's own 64 MiB limits allow, so
  # they only trip on a real bug.
  if cargo +nightly fuzz run "$t" "work/$t" "corpus/$t" -- \
       -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
       >"logs/$t.log" 2>&1; then
    echo ok >"logs/$t.status"
  else
    echo "FAILED (see fuzz/logs/$t.log, input in fuzz/artifacts/$t)" >"logs/$t.status"
  fi
}

parallel=${FUZZ_PARALLEL:-1}
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then wait -n || true; running=$((running - 1)); fi
done
wait

stat() { sed -n "s/^stat::$2: *//p" "logs/$1.log" | tail -1; }
failed=0
echo "| target | seconds | executions | coverage (edges) | features | corpus after | exec/s | peak RSS (MB) | result |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
for t in "${targets[@]}"; do
  last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "logs/$t.log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  status=$(cat "logs/$t.status")
  [ "$status" = ok ] || failed=1
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$secs" \
    "$(stat "$t" number_of_executed_units)" "$cov" "$ft" "$corp" \
    "$(stat "$t" average_exec_per_sec)" "$(stat "$t" peak_rss_mb)" "$status"
done
exit $failed
