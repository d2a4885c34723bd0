#!/usr/bin/env bash
# retrain.optimizer_sharding on a MiniLM-L6-shaped model (22.7M parameters, random weights, from
# bench_bert's `data` subcommand), 50% magnitude mask, release build: peak RSS per rank and
# steps/s of none, states and gradients on 1 and 2 ranks (batch 8, 10 steps, one checkpoint at
# the end), the shares of a step in communication (allreduce) and in the update (mask, norm,
# AdamW), and the loss of the last step (equal across modes). A benchmark, not a test: numbers
# to read, nothing asserted.
# Usage: tests/bench/retrain_shard_bench.sh [BENCH_BERT_BINARY] [TRIPLETS]
#   (default build/bench/bench_bert, 64 triplets; `make build/bench/bench_bert`)
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
for np in 1 2; do
  for mode in none states gradients; do
    rm -f "$data/out-shard/retrain-magnitude-0.5.h5"
    line=$(cd "$data" && mpirun -np "$np" -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS "$gaprune" retrain stats.ini \
           --mask out-shard/mask-magnitude-0.5.h5 "${common[@]}" --set retrain.optimizer_sharding=$mode |
           grep '^{"command":"retrain"')
    /usr/bin/python3 - "$line" "$np" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
print(f"{sys.argv[2]:6} {j['optimizer_sharding']:10} {j['steps'] / j['loop_s']:8.3f} {100 * j['allreduce_s'] / j['loop_s']:9.1f}% "
      f"{100 * j['update_s'] / j['loop_s']:7.1f}% {j['peak_rss_mb']:14.1f} {j['last_loss']:12.6f}")
PY
  done
done
rm -rf "$data/out-shard"
