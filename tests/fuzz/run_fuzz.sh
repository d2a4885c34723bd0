#!/usr/bin/env bash
# run_fuzz.sh SECONDS HARNESS... — runs each libFuzzer harness (built by `make fuzz-build`) for
# SECONDS, one after the other, and prints a table: executions, executions per second, the final
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
failed=0
rows=()
for bin in "$@"; do
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
  echo "=== $name: $secs s"
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
    verdict="FAILED (exit $rc): $(ls -t "$art" | grep -v fuzz.log | head -1)"
    failed=$((failed + 1))
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz: invariant|gaprune:)' "$log" | head -5
    echo "log: $log"
  fi
  rows+=("$(printf '%-18s %10s %8s %7s %7s %12s  %s' "$name" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$verdict")")
done
echo
printf '%-18s %10s %8s %7s %7s %12s  %s\n' harness execs exec/s cov ft corp/bytes result
printf '%s\n' "${rows[@]}"
exit "$failed"
