#!/usr/bin/env bash
# run_fuzz.sh SECONDS HARNESS... — runs each libFuzzer harness (built by `make fuzz-build`) for
# SECONDS, FUZZ_JOBS at a time (default 1; `make fuzz` and `fuzz-smoke` give the number of
# cores), and prints a table: executions, executions per second, the final
# coverage (libFuzzer's cov: edges and ft: features) and the corpus. Each harness grows a work
# copy of its corpus in <build>/fuzz/work/<harness> (the committed seeds in
# tests/fuzz/corpus/<harness> stay as they are), with the JSON or INI dictionary of
# tests/fuzz where the input is text of that kind. A crash, leak, timeout or failed invariant
# leaves its input in <build>/fuzz/artifacts/<harness>/ and the full log beside it; the
# exit status is the number of harnesses that failed. Run from the repository root.
set -u
secs=$1
shift
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# one harness: its run, its log, its table row in artifacts/<harness>/row; fails when it did
one() {
  bin=$1
  name=$(basename "$bin")
  top=$(dirname "$bin")
  work=$top/work/$name art=$top/artifacts/$name log=$top/artifacts/$name/fuzz.log
  mkdir -p "$work" "$art"
  opts=()
  case "$name" in
    fuzz_job) opts=(-dict=tests/fuzz/ini.dict) ;;
    fuzz_encode | fuzz_h5) ;; # bytes and edit programs: no dictionary
    *) opts=(-dict=tests/fuzz/json.dict) ;;
  esac
  "$bin" -max_total_time="$secs" -timeout=60 -print_final_stats=1 -artifact_prefix="$art/" \
    "${opts[@]}" "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # the last status line: "#N DONE cov: C ft: F corp: U/S ..." (or the last before a crash)
  status=$(grep -E '^#[0-9]+' "$log" | grep ' cov: ' | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$status")
  verdict=ok
  if [ "$rc" -ne 0 ]; then
    verdict="FAILED (exit $rc): $(ls -t "$art" | grep -v '^fuzz.log$\|^row$' | head -1)"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz: invariant|gaprune:)' "$log" | head -5
    echo "log: $log"
  fi
  printf '%-18s %10s %8s %7s %7s %12s  %s\n' "$name" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$verdict" > "$art/row"
  [ "$verdict" = ok ]
}

failed=0
jobs=${FUZZ_JOBS:-1}
pids=()
for bin in "$@"; do
  echo "=== $(basename "$bin"): $secs s"
  one "$bin" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=$((failed + 1))
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
echo
printf '%-18s %10s %8s %7s %7s %12s  %s\n' harness execs exec/s cov ft corp/bytes result
for bin in "$@"; do cat "$(dirname "$bin")/artifacts/$(basename "$bin")/row"; done
exit "$failed"
