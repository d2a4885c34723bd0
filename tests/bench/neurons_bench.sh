#!/usr/bin/env bash
# Structured pruning (prune.scope = neurons): encode throughput of the folders gaprune writes at
# their reduced intermediate_size, 0, 30, 50 and 70% of every block's MLP neurons removed
# (magnitude), on one thread, for the MiniLM-L6 shape (6 layers, 384 hidden, 1536 neurons) and
# two layers of the Qwen3-0.6B shape (1024 hidden, 3072 neurons), texts of 128 tokens; beside
# it PyTorch's forward pass (tests/reference, float32, one thread) on the same shapes, and the
# MLP's share of the forward FLOPs, which bounds the speed-up. A benchmark: numbers to read.
# Usage: tests/bench/neurons_bench.sh [BENCH_BERT_BINARY] [TEXTS] [REPEAT]
#   (default build/bench/bench_bert, 64 texts, best of 3)
set -euo pipefail
bin=${1:-build/bench/bench_bert}
ntext=${2:-64}
reps=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
gaprune=$(cd "$(dirname "$bin")/.." && pwd)/gaprune
work=$(dirname "$bin")/neurons-data
rm -rf "$work" && mkdir -p "$work"
work=$(cd "$work" && pwd)
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$bin" data "$work/bert" 4 > /dev/null
mkdir -p "$work/qwen3"
"$bin" shape "$work/qwen3/qwen" "$root/tests/fixtures/qwen3-f32" '{"model_type": "qwen3", "vocab_size": 479,
  "hidden_size": 1024, "num_hidden_layers": 2, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
  "intermediate_size": 3072, "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "rope_theta": 1000000, "hidden_act": "silu",
  "tie_word_embeddings": true}'
# texts of 128 tokens: 126 vocabulary words (+ [CLS], [SEP]) for BERT; BPE pieces truncated at 128 for Qwen3
/usr/bin/python3 - "$work" "$ntext" <<'PY'
import random, sys
w, n = sys.argv[1], int(sys.argv[2])
r = random.Random(7)
open(f"{w}/bert/texts.txt", "w").write("".join(" ".join(f"w{r.randrange(30000)}" for _ in range(126)) + "\n" for _ in range(n)))
open(f"{w}/qwen3/texts.txt", "w").write("".join(" ".join(f"x{r.randrange(99999)}" for _ in range(200)) + "\n" for _ in range(n)))
PY
rows=$(mktemp)
for arch in bert qwen3; do
  dir=$work/$arch
  model=$([ $arch = bert ] && echo minilm || echo qwen)
  printf '[model]\npath = %s\n[prune]\nscope = neurons\nlayers = mlp\n[output]\ndir = out\n' "$model" > "$dir/n.ini"
  (cd "$dir" && "$gaprune" score n.ini --method magnitude --sparsity 0.3,0.5,0.7 > /dev/null)
  for p in 0 0.3 0.5 0.7; do
    folder=$([ $p = 0 ] && echo "$model" || echo "out/pruned-magnitude-$p")
    best=0
    for r in $(seq "$reps"); do
      line=$(cd "$dir" && "$gaprune" encode --model "$folder" --input texts.txt --output enc.h5 --batch 16 \
             --max-length 128 | grep '^{"command":"encode"')
      best=$(/usr/bin/python3 -c 'import json,sys; print(max(float(sys.argv[2]), json.loads(sys.argv[1])["texts_per_s"]))' "$line" "$best")
    done
    cfg=$dir/$folder/config.json
    tbest=0
    for r in $(seq "$reps"); do
      tl=$(/usr/bin/python3 "$here/bench_torch.py" forward $arch "$cfg" "$ntext" 16 128)
      tbest=$(/usr/bin/python3 -c 'import json,sys; print(max(float(sys.argv[2]), json.loads(sys.argv[1])["texts_per_s"]))' "$tl" "$tbest")
    done
    echo "$arch $p $cfg $best $tbest" >> "$rows"
  done
done
/usr/bin/python3 - "$rows" <<'PY'
import json, sys
rows = [l.split() for l in open(sys.argv[1])]
print(f"{'shape':10} {'removed':>8} {'neurons':>8} {'MLP FLOPs':>10} {'bound':>7} {'gaprune texts/s':>16} {'speed-up':>9} "
      f"{'PyTorch texts/s':>16} {'speed-up':>9} {'gaprune/PyTorch':>16}")
dense = {}
for arch, p, cfg, ours, theirs in rows:
    c = json.load(open(cfg))
    C, I, T = c["hidden_size"], c["intermediate_size"], 128
    heads = c["num_attention_heads"]
    hd = c.get("head_dim") or C // heads
    kv = c.get("num_key_value_heads", heads)
    # multiply-adds per token per layer: projections, attention scores and values, the MLP
    attn = C * hd * (heads + 2 * kv) + heads * hd * C + 2 * T * heads * hd
    mlp = (3 if arch == "qwen3" else 2) * C * I
    ours, theirs = float(ours), float(theirs)
    if p == "0":
        dense[arch] = (ours, theirs, attn, mlp)
    d_ours, d_theirs, d_attn, d_mlp = dense[arch]
    share = mlp / (attn + mlp)
    bound = (d_attn + d_mlp) / (attn + mlp)
    name = "MiniLM-L6" if arch == "bert" else "Qwen3-0.6B"
    print(f"{name:10} {float(p):8.0%} {I:8d} {share:10.0%} {bound:6.2f}x {ours:16.2f} {ours / d_ours:8.2f}x "
          f"{theirs:16.2f} {theirs / d_theirs:8.2f}x {ours / theirs:15.2f}x")
PY
rm -f "$rows"
