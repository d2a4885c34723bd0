#!/usr/bin/env bash
# Inputs for tests/reference/hf_check.py, made by gaprune: token ids of ~900 texts (man pages,
# WordNet, and hand-picked hard cases) with the BPE and WordPiece test tokenizers, small pruned and
# retrained BERT and Qwen3 exports, and gaprune's embeddings of 28 texts with every model folder.
# Usage: tests/reference/hf_inputs.sh [DIR]   (default build/hf-check; needs `make` and `make data`)
# Then, where transformers, sentence-transformers and tokenizers are installed:
#   python3 tests/reference/hf_check.py DIR
set -euo pipefail
dir=${1:-build/hf-check}
bin=${GAPRUNE:-build/gaprune}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
rm -rf "$dir" && mkdir -p "$dir"
/usr/bin/python3 - "$dir" <<'PY'
import json, random, sys
d = sys.argv[1]
random.seed(7)
pool = []
for f in ("build/data/domain.jsonl", "build/data/general.jsonl"):
    rs = [json.loads(l) for l in open(f, encoding="utf-8")]
    random.shuffle(rs)
    for r in rs[:150]:
        for k in ("query", "positive", "negative"):
            v = r.get(k)
            v = v[0] if isinstance(v, list) else v
            if isinstance(v, str):
                pool.append(" ".join(v.split("\n")))
hard = ["I'm they'LL WE'VE it'S don't rock'n'roll", "in 1,234.75 and 2025-11-26", "wow!!! ok?! yes...",
        "a   b   c\t\td", "机器学习是人工智能。", "Привет, мир! Größe über", "x 🙂🚀 y 👩‍👩‍👧 flags 🇫🇷",
        "<|endoftext|> inside <|im_start|>text<|im_end|>", "e\u0301le\u0300ve caf\u00e9", "ＦＵＬＬ width ｗｉｄｔｈ １２３",
        "  leading and trailing  ", "tabs\tand\u00a0nbsp\u3000ideographic", "مرحبا بالعالم", "नमस्ते दुनिया",
        "한국어 텍스트", "ελληνικά κείμενα", "$PATH=/usr/bin:$HOME; echo \"$x\" | grep -E '^[a-z]+$'",
        "C++ std::vector<int> v{1,2,3}; // comment", "https://example.com/a?b=c&d=e#f", "'''quoted''' \"\"dq\"\"",
        "A" * 300, "ab " * 200, "[CLS] [SEP] [MASK] [UNK] [PAD] in text"]
with open(f"{d}/tok-texts.txt", "w", encoding="utf-8") as f:
    f.write("\n".join(pool + hard) + "\n")
texts = [l.rstrip("\n") for l in open("tests/fixtures/texts.txt", encoding="utf-8")]
with open(f"{d}/emb-texts.txt", "w", encoding="utf-8") as f:
    f.write("\n".join(texts + pool[:40:2]) + "\n")
PY
for t in bpe-tiny:tests/fixtures/bpe-tiny qwen3-f32:tests/fixtures/qwen3-f32 bert-f32:tests/fixtures/bert-f32 \
         demo-model:data/demo-model; do
  "$bin" tokenize --model "${t#*:}" --max-length 100000 < "$dir/tok-texts.txt" > "$dir/ids-${t%%:*}.txt"
  echo "${t%%:*} ${t#*:}" >> "$dir/tokenizers.txt"
done
for m in bert qwen3; do
  src=tests/fixtures/$m-bf16
  cat > "$dir/$m.ini" <<INI
[model]
path = $src
[data]
domain = tests/fixtures/corpora/domain.json
general = tests/fixtures/corpora/general.jsonl
[prune]
methods = gaprune
sparsity = 0.5
[retrain]
methods = gaprune
steps = 2
batch = 4
lr = 1e-3
warmup = 1
[output]
dir = $dir/out-$m
INI
  mpirun -np 2 "$bin" run "$dir/$m.ini" > "$dir/run-$m.log" 2>&1
  rm -f "$dir/out-$m"/*.h5
done
models="bert-f32:tests/fixtures/bert-f32 bert-bf16:tests/fixtures/bert-bf16 qwen3-f32:tests/fixtures/qwen3-f32
        qwen3-bf16:tests/fixtures/qwen3-bf16 demo:data/demo-model
        bert-pruned:$dir/out-bert/pruned-gaprune-0.5 bert-retrained:$dir/out-bert/retrained-gaprune-0.5
        qwen3-pruned:$dir/out-qwen3/pruned-gaprune-0.5 qwen3-retrained:$dir/out-qwen3/retrained-gaprune-0.5"
for t in $models; do
  "$bin" encode --model "${t#*:}" --input "$dir/emb-texts.txt" --output "$dir/emb-${t%%:*}.h5" --batch 5 > /dev/null
  echo "${t%%:*} ${t#*:}" >> "$dir/models.txt"
done
for t in qwen3-f32:tests/fixtures/qwen3-f32 qwen3-retrained:$dir/out-qwen3/retrained-gaprune-0.5; do
  "$bin" encode --model "${t#*:}" --input "$dir/emb-texts.txt" --output "$dir/embq-${t%%:*}.h5" --query > /dev/null
done
echo "hf_inputs: $(wc -l < "$dir/tok-texts.txt") texts tokenized 4 ways, $(wc -l < "$dir/models.txt") models encoded, in $dir ($(du -sh "$dir" | cut -f1))"
