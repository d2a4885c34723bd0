#!/usr/bin/env bash
# `make bench`: gaprune and PyTorch on the same shapes with one thread each, in one run, and the
# ratios. Usage: tests/bench/run_bench.sh BENCH_BINARY [REPS]
set -euo pipefail
bin=$1
reps=${2:-5}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
here=$(dirname "$0")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(getconf _NPROCESSORS_ONLN) cores; one thread per process"
ours=$("$bin" "$reps")
theirs=$(/usr/bin/python3 "$here/bench_torch.py" "$reps")
/usr/bin/python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
theirs = {j["case"]: j for j in (json.loads(l) for l in sys.argv[2].splitlines() if l.strip())}
sgemm = next(o for o in ours if o["case"] == "sgemm")["gflops"]
print(f"cblas_sgemm 1024^3, 1 thread: {sgemm:.1f} GFLOP/s (the practical peak)")
print(f"{'case (forward + InfoNCE + backward)':38} {'gaprune tok/s':>14} {'PyTorch tok/s':>14} {'speed-up':>9} {'GFLOP/s':>8} {'of sgemm':>9}")
for o in ours:
    if o["case"] == "sgemm":
        continue
    t = theirs[o["case"]]
    print(f"{o['case']:38} {o['tokens_per_s']:14.1f} {t['tokens_per_s']:14.1f} {t['seconds'] / o['seconds']:8.2f}x "
          f"{o['gflops']:8.1f} {o['gflops'] / sgemm:8.0%}")
PY
