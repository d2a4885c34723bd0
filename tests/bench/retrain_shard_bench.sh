#!/usr/bin/env bash
# retrain.optimizer_sharding on a MiniLM-L6-shaped model (22.7M parameters, random weights, from
# bench_bert's `data` subcommand), 50% magnitude mask, release build: peak RSS per rank and
# steps/s of none, states and gradients on 1 and 2 ranks (batch 8, 10 steps, one checkpoint at
# the end), the shares of a step in communication (allreduce) and in the update (mask, norm,
# AdamW), and the loss of the last step (equal across modes). A benchmark, not a test: numbers
# to read, nothing asserted.
# Usage: [BASELINE=OTHER_GAPRUNE] [REPEAT=N] tests/bench/retrain_shard_bench.sh [BENCH_BERT_BINARY] [TRIPLETS]
#   (default build/bench/bench_bert, 64 triplets; `make build/bench/bench_bert`). BASELINE: a
#   gaprune binary of an earlier commit (e.g. one built in a `git worktree`) whose retraining runs
#   first on the same data and settings, as rows "baseline" (its summary may lack the newer
#   columns: "-"). REPEAT: each row N times, interleaved (noisy machines), then the median steps/s
#   of each row and its ratio to none's (to the baseline's with BASELINE) on the same rank count.
#   RANKS: the rank counts (default "1 2").
set -euo pipefail
bin=${1:-build/bench/bench_bert}
ntrip=${2:-64}
gaprune=$(cd "$(dirname "$bin")/.." && pwd)/gaprune
data=$(dirname "$bin")/plan-data
if [ ! -f "$data/stats.ini" ] || [ "$(wc -l < "$data/domain.jsonl")" -ne "$ntrip" ]; then
  rm -rf "$data" && mkdir -p "$data" && "$bin" data "$data" "$ntrip"
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
common=(--set output.dir=out-shard --set retrain.batch=8 --set retrain.steps=10 --set retrain.warmup=2
        --set retrain.checkpoint_every=1000 --set model.max_length=32)
(cd "$data" && "$gaprune" score stats.ini --method magnitude --sparsity 0.5 "${common[@]}" > /dev/null)
printf '%-6s %-10s %8s %10s %8s %14s %12s\n' ranks sharding steps/s allreduce update "peak RSS MiB" "last loss"
modes=(none states gradients)
[ -n "${BASELINE:-}" ] && modes=(baseline "${modes[@]}")
rows=$(mktemp)
for rep in $(seq "${REPEAT:-1}"); do
for np in ${RANKS:-1 2}; do
  for mode in "${modes[@]}"; do
    rm -f "$data/out-shard/retrain-magnitude-0.5.h5"
    if [ "$mode" = baseline ]; then
      bin_run=$(cd "$(dirname "$BASELINE")" && pwd)/$(basename "$BASELINE") sets=()
    else
      bin_run=$gaprune sets=(--set retrain.optimizer_sharding=$mode)
    fi
    line=$(cd "$data" && mpirun -np "$np" -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS "$bin_run" retrain stats.ini \
           --mask out-shard/mask-magnitude-0.5.h5 "${common[@]}" "${sets[@]}" |
           grep '^{"command":"retrain"')
    /usr/bin/python3 - "$line" "$np" "$mode" <<'PY' | tee -a "$rows"
import json, sys
j = json.loads(sys.argv[1])
share = lambda k: f"{100 * j[k] / j['loop_s']:.1f}%" if k in j else "-"
rss = f"{j['peak_rss_mb']:.1f}" if "peak_rss_mb" in j else "-"
print(f"{sys.argv[2]:6} {sys.argv[3]:10} {j['steps'] / j['loop_s']:8.3f} {share('allreduce_s'):>10} "
      f"{share('update_s'):>8} {rss:>14} {j['last_loss']:12.6f}")
PY
  done
done
done
rm -rf "$data/out-shard"
/usr/bin/python3 - "$rows" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    runs[(f[0], f[1])].append(float(f[2]))
print(f"\n{'ranks':6} {'sharding':10} {'median steps/s':>15} {'runs':>5} {'ratio':>7}")
for (np, mode), v in runs.items():
    ref = runs.get((np, "baseline")) or runs.get((np, "none"))
    print(f"{np:6} {mode:10} {statistics.median(v):15.3f} {len(v):5} {statistics.median(v) / statistics.median(ref):7.3f}")
PY
rm -f "$rows"
