#!/usr/bin/env bash
# Scaling of the statistics pass, masked retraining and k-means over 1..16 ranks on one machine
# (MiniLM-L6 shapes, random weights), and whether the statistics and the gaprune mask depend on
# the rank count. Needs build/gaprune and build/bench/bench_{bert,kmeans} (`make bench` builds
# them), mpirun, and a python3 with h5py (PYTHON=/usr/bin/python3 on Debian). Usage:
#   NPS="1 2 4 8 16" NT=200 tests/bench/scale.sh [OUT_DIR]     (JSON lines in OUT_DIR/scale.jsonl)
# The 16-CPU numbers of docs/performance.md came from this script (tests/bench/scale-16cpu-2026-11-26.jsonl).
set -u
OUT=${1:-build/scale}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
G=$(pwd)/build/gaprune
BB=$(pwd)/build/bench
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
MPIRUN=${MPIRUN:-mpirun}
T0=$(date +%s)
R=$OUT/scale.jsonl
: > "$R"
D=$OUT/data
rm -rf "$D"
NT=${NT:-200}
export NPS=${NPS:-1 2 4 8 16}
$BB/bench_bert data $D "$NT" > /dev/null
cd $D
for np in ${NPS:-1 2 4 8 16}; do
  timeout 200 $MPIRUN --bind-to core -np $np -x OPENBLAS_NUM_THREADS $G stats stats.ini \
    --set output.dir=out-$np --set stats.checkpoint_every=1000 2>/dev/null | grep '^{"command":"stats"' | tee -a $R
  echo "t=$(( $(date +%s) - T0 ))s"
done
for np in 1 ${NPS##* }; do $G score stats.ini --set output.dir=out-$np --method gaprune --sparsity 0.5 > /dev/null 2>&1; done
${PYTHON:-python3} - <<'PY' | tee -a $R
import h5py, numpy as np, json, os
# largest |difference| to 1 rank, relative to the dataset's largest |value|, per group of stats.h5
nps = os.environ["NPS"].split()
a = h5py.File("out-1/stats.h5", "r")
worst = {}
for p in nps[1:]:
    b, w = h5py.File(f"out-{p}/stats.h5", "r"), {}
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f" and obj.size > 0:
            x, y = a[name][...].astype(np.float64), obj[...].astype(np.float64)
            g = name.split("/")[0]
            w[g] = max(w.get(g, 0.0), float(np.abs(x - y).max() / max(np.abs(x).max(), 1e-30)))
    b.visititems(visit)
    worst[p] = w
g1 = h5py.File("out-1/mask-gaprune-0.5.h5", "r")["mask"]
gN = h5py.File(f"out-{nps[-1]}/mask-gaprune-0.5.h5", "r")["mask"]
print(json.dumps({"stats_max_rel_diff_vs_1_rank": worst, "mask_elements": sum(int(g1[k].size) for k in g1),
                  "mask_elements_differing_1_vs_" + nps[-1]: sum(int((g1[k][...] != gN[k][...]).sum()) for k in g1)}))
PY
$G score stats.ini --set output.dir=out-1 --method magnitude --sparsity 0.5 > /dev/null 2>&1
for np in ${NPS:-1 2 4 8 16}; do
  timeout 100 $MPIRUN --bind-to core -np $np -x OPENBLAS_NUM_THREADS $G retrain stats.ini \
    --mask out-1/mask-magnitude-0.5.h5 --set output.dir=out-r$np --set retrain.steps=6 --set retrain.batch=16 \
    --set retrain.checkpoint_every=1000 2>/dev/null | grep '^{"command":"retrain"' | tee -a $R
done
echo "t=$(( $(date +%s) - T0 ))s"
for np in ${NPS:-1 2 4 8 16}; do
  timeout 100 $MPIRUN --bind-to core -np $np -x OPENBLAS_NUM_THREADS $BB/bench_kmeans ${KM:-50000 5000 384 8} 2>/dev/null | grep '^{"case": "kmeans"' | tee -a $R
done
echo "t=$(( $(date +%s) - T0 ))s"
