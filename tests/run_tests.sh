#!/usr/bin/env bash
# Runs every test binary given as an argument and reports a one-line verdict per binary.
# Binaries named test_mpi_* run under mpirun with 1, 2 and 4 ranks; fuzz_* (the replays of
# tests/fuzz's harnesses over their committed inputs) run as they are. Exit status: the number of
# failed binaries (0 = all passed). Run from the repository root (fixtures are relative).
set -u
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# one thread per process: up to 4 ranks share 2 cores here (test_threads sets its own counts);
# OpenBLAS's own pool too, whose threads alive at exit have crashed LeakSanitizer's tracer
# ("Tracer caught signal 11" after fuzz_h5's replay on this 2-core VM)
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
failures=()
for t in "$@"; do
  name=$(basename "$t")
  case "$name" in
    test_mpi_*)
      for np in 1 2 4; do
        echo "=== $name (mpirun -np $np)"
        # Open MPI's own allocations are reported as leaks at exit; our code's leaks are
        # caught by the non-MPI tests, which keep leak detection on.
        if ! ASAN_OPTIONS=detect_leaks=0 OPENBLAS_NUM_THREADS=1 \
             mpirun -np "$np" -x ASAN_OPTIONS -x UBSAN_OPTIONS -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS "$t"; then
          failed=$((failed + 1)); failures+=("$name -np $np")
        fi
      done ;;
    *)
      echo "=== $name"
      if ! "$t"; then failed=$((failed + 1)); failures+=("$name"); fi ;;
  esac
done
echo
if [ "$failed" -eq 0 ]; then
  echo "ALL TESTS PASSED ($# test programs)"
else
  echo "FAILED: ${failures[*]}"
fi
exit "$failed"
