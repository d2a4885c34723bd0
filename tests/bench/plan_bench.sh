#!/usr/bin/env bash
# `gaprune plan` against a measured peak on a MiniLM-L6-shaped model (22.7M parameters, random
# weights, written by bench_bert's `data` subcommand): predicted bytes per rank vs gaprune
# stats' peak_rss_mb, release build, 1 and 2 ranks, replicated and sharded, prune.layers mlp and
# linear. A benchmark, not a test: numbers to read, nothing asserted.
# model.max_length = 14 makes every text full length (queries are 12 words + [CLS] [SEP], the
# documents longer and truncated), the case the formula describes; with longer limits the
# plan is an upper bound, since real texts are shorter.
# Usage: tests/bench/plan_bench.sh [BENCH_BERT_BINARY] [TRIPLETS]
#   (default build/bench/bench_bert, 64 triplets per corpus; `make build/bench/bench_bert`)
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
printf '%-8s %-6s %-11s %3s %6s %14s %14s %8s\n' layers ranks accum fb maxlen "predicted MiB" "measured MiB" "diff"
for layers in mlp linear; do
  for fb in 1 16; do
    for case in "1 replicated" "2 replicated" "2 sharded"; do
      set -- $case
      sets=(--set prune.layers=$layers --set stats.accumulators=$2 --set stats.fisher_batch=$fb
            --set model.max_length=14 --set output.dir=out-plan)
      pred=$(cd "$data" && "$gaprune" plan stats.ini --ranks "$1" --threads 1 "${sets[@]}" | grep '^{"command":"plan"')
      rm -rf "$data/out-plan"
      meas=$(cd "$data" && mpirun -np "$1" -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS "$gaprune" stats stats.ini \
             "${sets[@]}" | grep '^{"command":"stats"')
      /usr/bin/python3 - "$pred" "$meas" "$layers" "$1" "$2" "$fb" <<'PY'
import json, sys
p = json.loads(sys.argv[1])["stages"][0]; m = json.loads(sys.argv[2])
pm, mm = p["bytes"] / 2**20, m["peak_rss_mb"]
acc = m["accumulators"]
print(f"{sys.argv[3]:8} {sys.argv[4]:6} {acc:11} {sys.argv[6]:>3} {p['seq_len']:6} {pm:14.1f} {mm:14.1f} {100 * (pm - mm) / mm:+7.1f}%"
      + ("" if acc == sys.argv[5] else f"  (asked {sys.argv[5]})"))
PY
    done
  done
done
