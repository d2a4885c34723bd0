#!/usr/bin/env bash
# Peak memory per rank of the statistics pass on a Qwen3-Embedding-4B-shaped model (hidden 2560,
# intermediate 9728, 32/8 heads of 128, the full 151,665-token vocabulary; random float32 weights
# written by bench_bert's `shape` subcommand) with as many blocks as this machine holds, on 1, 2
# and 4 ranks, replicated and sharded: gaprune stats' peak_rss_mb against gaprune plan's
# prediction, and the accumulators' share, which sharding divides by the ranks. A benchmark, not
# a test: numbers to read, nothing asserted. Release build, one thread per rank.
# Usage: tests/bench/qwen4b_bench.sh [BENCH_BERT_BINARY] [BLOCKS] [MAX_LENGTH]
#   (defaults build/bench/bench_bert, 2 blocks, 128 tokens; `make build/bench/bench_bert`)
# Needs ~(3.2 + 2.4·BLOCKS) GB of memory per rank replicated at 2 blocks, 2.4·BLOCKS GB of disk.
set -euo pipefail
bin=${1:-build/bench/bench_bert}
blocks=${2:-2}
maxlen=${3:-128}
gaprune=$(cd "$(dirname "$bin")/.." && pwd)/gaprune
fixture=$(cd "$(dirname "$0")/../fixtures/qwen3-f32" && pwd)
data=$(dirname "$bin")/qwen4b-data
config="{\"architectures\": [\"Qwen3Model\"], \"model_type\": \"qwen3\", \"head_dim\": 128, \"hidden_act\": \"silu\",
 \"hidden_size\": 2560, \"intermediate_size\": 9728, \"max_position_embeddings\": 40960, \"num_attention_heads\": 32,
 \"num_hidden_layers\": $blocks, \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000,
 \"tie_word_embeddings\": true, \"torch_dtype\": \"float32\", \"vocab_size\": 151665}"
mkdir -p "$data"
if ! grep -q "\"num_hidden_layers\": $blocks," "$data/model/config.json" 2>/dev/null; then
  "$bin" shape "$data/model" "$fixture" "$config"
fi
# 4 triplets per corpus (one unit per rank on 4 ranks), every text longer than max_length
/usr/bin/python3 - "$data" <<'PY'
import json, sys
words = "the capital city of france is paris and berlin is a large city in germany".split()
text = " ".join(words[i % len(words)] for i in range(600))
for name in ("domain", "general"):
    with open(f"{sys.argv[1]}/{name}.jsonl", "w") as f:
        for _ in range(4):
            f.write(json.dumps({"query": text, "positive": text, "negative": text}) + "\n")
PY
cat > "$data/job.ini" <<EOF
[model]
path = model
max_length = $maxlen
[data]
domain = domain.jsonl
general = general.jsonl
max_samples = 4
[prune]
layers = mlp
EOF
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
echo "Qwen3-4B shape, $blocks blocks, full vocabulary, $maxlen tokens, prune.layers = mlp, 4 + 4 triplets"
printf '%-6s %-11s %14s %14s %8s %18s %10s %12s\n' ranks accum "predicted MiB" "measured MiB" diff "accumulators MiB" reduce_s triplets/s
for case in "1 replicated" "2 replicated" "2 sharded" "4 sharded"; do
  set -- $case
  sets=(--set stats.accumulators=$2 --set output.dir=out-$1-$2)
  pred=$(cd "$data" && "$gaprune" plan job.ini --ranks "$1" --threads 1 "${sets[@]}" | grep '^{"command":"plan"')
  rm -rf "$data/out-$1-$2"
  meas=$(cd "$data" && mpirun -np "$1" -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS "$gaprune" stats job.ini "${sets[@]}" |
         grep '^{"command":"stats"')
  /usr/bin/python3 - "$pred" "$meas" "$1" <<'PY'
import json, sys
p = json.loads(sys.argv[1]); m = json.loads(sys.argv[2])
st = next(s for s in p["stages"] if s["stage"] == "stats")
pm, mm = p["stats_command_bytes"] / 2**20, m["peak_rss_mb"]
print(f"{sys.argv[3]:6} {m['accumulators']:11} {pm:14.1f} {mm:14.1f} {100 * (pm - mm) / mm:+7.1f}% "
      f"{st['parts']['accumulators'] / 2**20:18.1f} {m.get('reduce_s', 0):10.2f} {m['triplets_per_s']:12.3f}")
PY
  rm -rf "$data/out-$1-$2"
done
