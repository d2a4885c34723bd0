"""Reads a model folder written by gaprune with the PyTorch reference and compares its
embeddings with gaprune's (`gaprune encode` output).

    /usr/bin/python3 tests/reference/check_pruned.py MODEL_DIR TEXTS.txt EMB.h5

Prints the largest absolute difference and exits 1 when it is above 1e-5. Used by
tests/test_score.c when Debian's torch is installed.
"""
import json
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import bert_ref as R  # noqa: E402


def main():
    folder, texts_path, emb_path = sys.argv[1:4]
    cfg = json.load(open(os.path.join(folder, "config.json")))
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    P = {}
    for f in files:
        t, meta = R.read_safetensors(os.path.join(folder, f))
        assert meta and meta.get("format") == "pt", "metadata must carry format=pt"
        P.update({k[5:] if k.startswith("bert.") else k: v for k, v in t.items()})
    tc = json.load(open(os.path.join(folder, "tokenizer_config.json")))
    vocab = [l.rstrip("\n") for l in open(os.path.join(folder, "vocab.txt"), encoding="utf-8")]
    tok = R.WordPiece(vocab, lower=tc.get("do_lower_case", True))
    pool = json.load(open(os.path.join(folder, "1_Pooling", "config.json")))
    mode = "cls" if pool["pooling_mode_cls_token"] else "lasttoken" if pool["pooling_mode_lasttoken"] else "mean"
    modules = json.load(open(os.path.join(folder, "modules.json")))
    normalize = any(m["type"].endswith("Normalize") for m in modules)
    msl = json.load(open(os.path.join(folder, "sentence_bert_config.json"))).get("max_seq_length", 512)
    texts = [l.rstrip("\n") for l in open(texts_path, encoding="utf-8")]
    ids, mask = tok.batch(texts, min(msl, cfg["max_position_embeddings"]))
    h = R.bert_forward(P, torch.from_numpy(ids).long(), torch.from_numpy(mask), cfg)
    ref = R.pool(h, torch.from_numpy(mask), mode, normalize).numpy()
    ours = h5py.File(emb_path, "r")["embeddings"][:]
    d = float(np.abs(ours - ref).max())
    zeros = sum(int((v == 0).sum()) for v in P.values())
    print(f"check_pruned: {len(texts)} texts, max abs difference {d:.2e}, {zeros} zero weights read back")
    sys.exit(0 if d < 1e-5 else 1)


if __name__ == "__main__":
    main()
