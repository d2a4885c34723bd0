#!/usr/bin/env bash
# Peak memory per rank of masked retraining on a Qwen3-Embedding-shaped model (random float32
# weights from bench_bert's `shape` subcommand, the full 151,669-token vocabulary), 50% magnitude
# mask, for each retrain.optimizer_sharding (and model.recompute) on 1, 2 and 4 ranks: gaprune
# retrain's peak_rss_mb against gaprune plan's retrain stage, and the steps/s. A benchmark, not
# a test: numbers to read, nothing asserted. Release build, one thread per rank.
# Usage: [SHAPE=0.6b|4b] [BATCH=B] [TOKENS=T] [STEPS=S] tests/bench/retrain_mem_bench.sh [BENCH_BERT_BINARY] [CASES...]
#   SHAPE 0.6b (default): Qwen3-0.6B's hidden 1024, intermediate 3072, 16/8 heads of 128, 28
#   blocks; batch 4, 32 tokens, 2 steps; about 7 GB per rank for none, 2.4 GB of disk.
#   SHAPE 4b: Qwen3-4B's hidden 2560, intermediate 9728, 32/8 heads of 128, 2 blocks (what 4
#   ranks of it fit in 24 GB); batch 16, 128 tokens, 1 step (the peak is reached in the first).
#   CASES are "RANKS:MODE[:recompute]" (default 1:none 2:states 2:gradients 4:gradients).
set -euo pipefail
bin=${1:-build/bench/bench_bert}
shift || true
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(1:none 2:states 2:gradients 4:gradients)
gaprune=$(cd "$(dirname "$bin")/.." && pwd)/gaprune
fixture=$(cd "$(dirname "$0")/../fixtures/qwen3-f32" && pwd)
shape=${SHAPE:-0.6b}
case "$shape" in
  0.6b) dims='"hidden_size": 1024, "intermediate_size": 3072, "num_attention_heads": 16, "num_hidden_layers": 28'
        batch=${BATCH:-4} tokens=${TOKENS:-32} steps=${STEPS:-2} what="Qwen3-0.6B shape (28 blocks" ;;
  4b)   dims='"hidden_size": 2560, "intermediate_size": 9728, "num_attention_heads": 32, "num_hidden_layers": 2'
        batch=${BATCH:-16} tokens=${TOKENS:-128} steps=${STEPS:-1} what="Qwen3-4B shape (2 blocks" ;;
  *) echo "SHAPE is 0.6b or 4b" >&2; exit 2 ;;
esac
data=$(dirname "$bin")/qwen${shape/./}-data
config='{"architectures": ["Qwen3Model"], "model_type": "qwen3", "head_dim": 128, "hidden_act": "silu",
 '"$dims"', "max_position_embeddings": 32768, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
 "rope_theta": 1000000, "tie_word_embeddings": true, "torch_dtype": "float32", "vocab_size": 151669}'
mkdir -p "$data"
[ -f "$data/model/config.json" ] || "$bin" shape "$data/model" "$fixture" "$config"
/usr/bin/python3 - "$data" "$batch" <<'PY'
import json, sys
words = "the capital city of france is paris and berlin is a large city in germany".split()
with open(f"{sys.argv[1]}/domain.jsonl", "w") as f:
    for i in range(int(sys.argv[2])):
        text = " ".join(words[(i + k) % len(words)] for k in range(60))
        f.write(json.dumps({"query": text, "positive": text[::-1], "negative": text.upper()}) + "\n")
PY
cat > "$data/job.ini" <<EOF
[model]
path = model
max_length = $tokens
[data]
domain = domain.jsonl
general = domain.jsonl
max_samples = $batch
[prune]
layers = mlp
[retrain]
batch = $batch
steps = $steps
warmup = 0
checkpoint_every = 1000
EOF
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
(cd "$data" && "$gaprune" score job.ini --method magnitude --sparsity 0.5 --set output.dir=out > /dev/null 2>&1)
echo "$what, full vocabulary), $tokens tokens, batch $batch, $steps step(s), 50% magnitude mask"
printf '%-6s %-20s %14s %14s %8s %10s %10s\n' ranks sharding "predicted MiB" "measured MiB" diff steps/s allreduce
for c in "${cases[@]}"; do
  IFS=: read -r np mode rc <<<"$c"
  sets=(--set retrain.optimizer_sharding=$mode --set output.dir=out --set model.recompute=$([ "${rc:-}" = recompute ] && echo true || echo false))
  pred=$(cd "$data" && "$gaprune" plan job.ini --ranks "$np" --threads 1 "${sets[@]}" | grep '^{"command":"plan"')
  rm -f "$data"/out/retrain-*.h5
  meas=$(cd "$data" && mpirun -np "$np" -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS "$gaprune" retrain job.ini \
         --mask out/mask-magnitude-0.5.h5 "${sets[@]}" | grep '^{"command":"retrain"')
  /usr/bin/python3 - "$pred" "$meas" "$np" "${rc:-}" <<'PY'
import json, sys
p = json.loads(sys.argv[1]); m = json.loads(sys.argv[2])
st = next(s for s in p["stages"] if s["stage"] == "retrain")
pm, mm = st["bytes"] / 2**20, m["peak_rss_mb"]
mode = m['optimizer_sharding'] + (" + recompute" if sys.argv[4] == "recompute" else "")
print(f"{sys.argv[3]:6} {mode:20} {pm:14.1f} {mm:14.1f} {100 * (pm - mm) / mm:+7.1f}% "
      f"{m['steps'] / m['loop_s']:10.3f} {100 * m['allreduce_s'] / m['loop_s']:9.1f}%")
PY
done
rm -rf "$data/out"
