"""gaprune's tokenizers, models and exported folders against Hugging Face's own libraries
(tokenizers, transformers, sentence-transformers), on a machine that has them (Debian's archive
does not). DIR was made by gaprune with tests/reference/hf_inputs.sh. Prints one JSON line per
check, writes them to $OUT/hf_check.jsonl (or DIR), and exits 1 when a check fails: an id differs,
an embedding is off by more than 1e-5, an export does not load or lost its zeros.
Usage: python3 tests/reference/hf_check.py [DIR]   (run from the repository root)"""
import json
import os
import sys
import traceback

import h5py
import numpy as np
import torch

torch.set_num_threads(8)
DIR = sys.argv[1] if len(sys.argv) > 1 else "build/hf-check"
out = os.environ.get("OUT", DIR)
failed = []
log = open(os.path.join(out, "hf_check.jsonl"), "w")


def emit(r):
    if "error" in r or r.get("mismatches") or r.get("max_abs_diff", 0) > 1e-5 or r.get("zeros_ok") is False:
        failed.append(r.get("check"))
    s = json.dumps(r, ensure_ascii=False)
    print(s, flush=True)
    log.write(s + "\n")
    log.flush()


import sentence_transformers
import tokenizers
import transformers
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer

emit({"versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                   "sentence_transformers": sentence_transformers.__version__, "tokenizers": tokenizers.__version__}})

texts = open(f"{DIR}/tok-texts.txt", encoding="utf-8").read().split("\n")[:-1]


def check_ids(name, folder, ours_path):
    try:
        tok = AutoTokenizer.from_pretrained(folder)
        ours = [[int(x) for x in l.split()] for l in open(ours_path).read().split("\n")[:-1]]
        assert len(ours) == len(texts)
        bad, trunc = [], 0
        for i, (t, o) in enumerate(zip(texts, ours)):
            full = tok(t)["input_ids"]
            ref = full
            if len(o) < len(full):
                trunc += 1
                ref = tok(t, truncation=True, max_length=len(o))["input_ids"]
            if ref != o:
                bad.append({"line": i + 1, "text": t[:80], "ours": o[:40], "hf": ref[:40]})
        emit({"check": "ids", "tokenizer": name, "class": type(tok).__name__, "texts": len(texts),
              "truncated": trunc, "mismatches": len(bad), "first": bad[:3]})
    except Exception:
        emit({"check": "ids", "tokenizer": name, "error": traceback.format_exc()[-1500:]})


# A: the BPE fixture's expected ids (gaprune equals them in make test) against HF tokenizers itself
try:
    raw = tokenizers.Tokenizer.from_file("tests/fixtures/bpe-tiny/tokenizer.json")
    exp = [json.loads(l) for l in open("tests/fixtures/bpe-tiny/expected.jsonl", encoding="utf-8")]
    # invalid UTF-8 is stored as hex; Python's "replace" gives U+FFFD per bad byte, as gaprune does
    text = [e["text"] if "text" in e else bytes.fromhex(e["hex"]).decode("utf-8", "replace") for e in exp]
    bad = []
    for t, e in zip(text, exp):
        if "max_len" in e:  # truncation keeps room for the appended <|endoftext|>
            raw.enable_truncation(max_length=e["max_len"])
        if raw.encode(t).ids != e["ids"]:
            bad.append(t[:60])
        raw.no_truncation()
    emit({"check": "bpe expected.jsonl vs tokenizers.Tokenizer", "texts": len(exp), "mismatches": len(bad), "first": bad[:3]})
except Exception:
    emit({"check": "bpe expected.jsonl", "error": traceback.format_exc()[-1500:]})

for line in open(f"{DIR}/tokenizers.txt"):
    name, folder = line.split()
    check_ids(name, folder, f"{DIR}/ids-{name}.txt")

# B: embeddings of gaprune encode against SentenceTransformer.encode on the same folders
etexts = open(f"{DIR}/emb-texts.txt", encoding="utf-8").read().split("\n")[:-1]


def load_st(folder):
    for kw in ({"dtype": torch.float32}, {"torch_dtype": torch.float32}):
        try:
            return SentenceTransformer(folder, device="cpu", model_kwargs=kw)
        except TypeError:
            continue
    return SentenceTransformer(folder, device="cpu")


worst = 0.0
for line in open(f"{DIR}/models.txt"):
    name, folder = line.split()
    for prefix, query in (("emb", False), ("embq", True)):
        path = f"{DIR}/{prefix}-{name}.h5"
        if not os.path.exists(path):
            continue
        try:
            st = load_st(folder)
            kw = {"prompt_name": "query"} if query else {}
            ref = st.encode(etexts, batch_size=7, convert_to_numpy=True, **kw)
            with h5py.File(path, "r") as f:
                ours = f["embeddings"][...]
            diff = float(np.abs(ours - ref).max())
            cos = float(np.min(np.sum(ours * ref, 1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)))
            worst = max(worst, diff)
            p = next(iter(st.parameters()))
            emit({"check": "embeddings vs sentence-transformers", "model": name, "query_prompt": query,
                  "texts": len(etexts), "dim": int(ref.shape[1]), "max_abs_diff": diff, "min_cosine": cos,
                  "st_dtype": str(p.dtype), "max_seq_length": st.max_seq_length,
                  "modules": [type(m).__name__ for m in st]})
        except Exception:
            emit({"check": "embeddings", "model": name, "query_prompt": query, "error": traceback.format_exc()[-1500:]})

# C: the pruned exports load in transformers unchanged and keep their zeros
def is_mlp(k):
    return k.endswith(("mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
                       "intermediate.dense.weight")) or (k.endswith("output.dense.weight") and "attention" not in k)


for name in ("qwen3", "bert"):
    folder = f"{DIR}/out-{name}/retrained-gaprune-0.5"
    try:
        m = transformers.AutoModel.from_pretrained(folder)
        z = n = 0
        for k, v in m.named_parameters():
            if is_mlp(k):
                z += int((v == 0).sum())
                n += v.numel()
        emit({"check": "AutoModel loads the export", "model": name + "-retrained", "class": type(m).__name__,
              "mlp_zeros": z, "mlp_weights": n, "zeros_ok": n > 0 and z == n // 2})
    except Exception:
        emit({"check": "AutoModel", "model": name, "error": traceback.format_exc()[-1500:]})
emit({"summary": True, "worst_embedding_abs_diff": worst, "failed": failed})
sys.exit(1 if failed else 0)
