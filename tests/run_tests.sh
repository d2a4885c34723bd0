#!/usr/bin/env bash
# Runs every test binary given as an argument and reports a one-line verdict per binary.
# Binaries named test_mpi_* run under mpirun with 1, 2 and 4 ranks; fuzz_* (the replays of
# tests/fuzz's harnesses over their committed inputs) run as they are. Each run's wall and CPU
# time is printed after it, and a table of them, slowest first, at the end, so that the next
# slow one is seen (make test must stay within 6 minutes on 2 cores: docs/testing.md "Tests").
# Fixtures several programs read (a fixture model's statistics) are made once per run in
# GAPRUNE_TEST_CACHE, a temporary folder of this run unless the caller names one.
# GAPRUNE_TEST_LONG (test_util.h's tu_run_group): unset or 0 (make test), every case but the
# long ones, whose count the summary gives; 1 (make test-long), the long ones (and the cases
# whose output they read); all, every case.
# Exit status: the number of failed runs (0 = all passed). Run from the repository root
# (fixtures are relative).
set -u
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# one thread per process: up to 4 ranks share 2 cores here (test_threads sets its own counts);
# OpenBLAS's own pool too, whose threads alive at exit have crashed LeakSanitizer's tracer
# ("Tracer caught signal 11" after fuzz_h5's replay on this 2-core VM)
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Open MPI's shared-memory transport (every test runs on one node): left to choose, Debian's Open
# MPI starts UCX and probes its fabric components in every MPI_Init: ~0.2 s of each launch of
# gaprune or a test_mpi_* program (0.6 s against 0.4 s for `mpirun -np 2 gaprune --help` here),
# and make test launches hundreds. No test uses one-sided communication, the only other user of UCX.
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader
failed=0
failures=()
runs=()
# tu_run_group appends "COUNT NAMES" of the long cases it left out to this file
left=$(mktemp)
cpu_file=$(mktemp)
# fixtures the programs share, made once per run (test_util.h tu_stats_fixture)
own_cache=
if [ -z "${GAPRUNE_TEST_CACHE:-}" ]; then own_cache=$(mktemp -d); export GAPRUNE_TEST_CACHE=$own_cache; fi
trap 'rm -f "$left" "$cpu_file"; [ -z "$own_cache" ] || rm -rf "$own_cache"' EXIT

# The CPU seconds (user + system) of this shell's finished children so far: with the wall
# time, it tells a slow program from a loaded machine (other work shares the cores).
# (times runs in this shell, not in a command substitution's subshell, which has no children.)
cpu_now() {
  times >"$cpu_file"
  cpu=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, "m"); s += t[1] * 60 + t[2] } print s }' "$cpu_file")
}

# run LABEL COUNT_LONG COMMAND...: runs the command and records its wall and CPU time under
# LABEL; when COUNT_LONG is 1, the long cases it leaves out are counted (once per program).
run() {
  local label=$1 count=$2 start=$EPOCHREALTIME cpu0 rc secs
  shift 2
  cpu_now
  cpu0=$cpu
  if [ "$count" = 1 ]; then
    GAPRUNE_TEST_LONG_LEFT="$left" "$@"
  else
    GAPRUNE_TEST_LONG_LEFT= "$@"
  fi
  rc=$?
  secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  cpu_now
  cpu=$(awk -v a="$cpu0" -v b="$cpu" 'BEGIN { printf "%.1f", b - a }')
  echo "--- $label: ${secs} s (CPU ${cpu} s)"
  runs+=("$secs $cpu $label")
  if [ "$rc" -ne 0 ]; then failed=$((failed + 1)); failures+=("$label"); fi
}

total_start=$EPOCHREALTIME
for t in "$@"; do
  name=$(basename "$t")
  case "$name" in
    test_mpi_*)
      for np in 1 2 4; do
        echo "=== $name (mpirun -np $np)"
        # Open MPI's own allocations are reported as leaks at exit; our code's leaks are
        # caught by the non-MPI tests, which keep leak detection on.
        run "$name -np $np" "$([ "$np" = 1 ] && echo 1 || echo 0)" \
          env ASAN_OPTIONS=detect_leaks=0 OPENBLAS_NUM_THREADS=1 \
          mpirun -np "$np" -x ASAN_OPTIONS -x UBSAN_OPTIONS -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS "$t"
      done ;;
    *)
      echo "=== $name"
      run "$name" 1 "$t" ;;
  esac
done
total=$(awk -v a="$total_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
echo
echo "wall and CPU time per run, slowest first (load average now: $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '%s\n' "${runs[@]}" | sort -rn | awk '{ w = $1; c = $2; $1 = $2 = ""; printf "%8.1f s  CPU %7.1f s %s\n", w, c, $0 }'
printf '%s\n' "${runs[@]}" | awk -v n="$#" -v wall="$total" \
  '{ w += $1; c += $2 } END { printf "%8.1f s  CPU %7.1f s in all (%d programs; %.1f s from first to last)\n", w, c, n, wall }'
long_left=$(awk '{ n += $1 } END { print n + 0 }' "$left")
if [ "$long_left" -gt 0 ]; then
  echo "$long_left test(s) left to make test-long (GAPRUNE_TEST_LONG=1)"
fi
echo
if [ "$failed" -eq 0 ]; then
  echo "ALL TESTS PASSED ($# test programs)"
else
  echo "FAILED: ${failures[*]}"
fi
exit "$failed"
