"""Reads a model folder written by gaprune (BERT or Qwen3, at any intermediate_size: a folder
with whole MLP neurons removed too,
the same number from every block or, scope neurons-global, each block its own) with the PyTorch reference and compares its embeddings with
gaprune's (`gaprune encode` output).

    /usr/bin/python3 tests/reference/check_pruned.py MODEL_DIR TEXTS.txt EMB.h5

Prints the largest absolute difference and exits 1 when it is above 1e-5. Used by
tests/test_score.c when Debian's torch is installed.
"""
import json
import os
import re
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import bert_ref as R  # noqa: E402
import bpe_ref  # noqa: E402
import qwen3_ref as Q  # noqa: E402


def main():
    folder, texts_path, emb_path = sys.argv[1:4]
    cfg = json.load(open(os.path.join(folder, "config.json")))
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    P = {}
    for f in files:
        t, meta = R.read_safetensors(os.path.join(folder, f))
        assert meta and meta.get("format") == "pt", "metadata must carry format=pt"
        P.update({k[5:] if k.startswith("bert.") or k.startswith("model.") else k: v for k, v in t.items()})
    # every tensor at the shape config.json implies (a structured export changes intermediate_size;
    # scope neurons-global gives every block its own, gaprune_intermediate_sizes)
    L = cfg["num_hidden_layers"]
    sizes = cfg.get("gaprune_intermediate_sizes") or [cfg["intermediate_size"]] * L
    assert len(sizes) == L and max(sizes) == cfg["intermediate_size"], f"gaprune_intermediate_sizes {sizes}"
    for k, v in P.items():
        blk = re.search(r"layers?\.(\d+)\.", k)
        I = sizes[int(blk.group(1))] if blk else None
        if k.endswith(("intermediate.dense.weight", "intermediate.dense.bias", "mlp.gate_proj.weight", "mlp.up_proj.weight")):
            assert v.shape[0] == I, f"{k}: {tuple(v.shape)}, intermediate size {I}"
        if k.endswith(("output.dense.weight", "mlp.down_proj.weight")) and "attention" not in k:
            assert v.shape[1] == I, f"{k}: {tuple(v.shape)}, intermediate size {I}"
    # BERT with transformers' pruned_heads: each layer keeps num_attention_heads - len(pruned) heads
    if cfg["model_type"] == "bert":
        hs = cfg["hidden_size"] // cfg["num_attention_heads"]
        for l in range(cfg["num_hidden_layers"]):
            A = (cfg["num_attention_heads"] - len(cfg.get("pruned_heads", {}).get(str(l), []))) * hs
            for w in ("query", "key", "value"):
                assert P[f"encoder.layer.{l}.attention.self.{w}.weight"].shape[0] == A, f"layer {l} {w}: not {A} rows"
            assert P[f"encoder.layer.{l}.attention.output.dense.weight"].shape[1] == A, f"layer {l}: not {A} columns"
    texts = [l.rstrip("\n") for l in open(texts_path, encoding="utf-8")]
    msl = json.load(open(os.path.join(folder, "sentence_bert_config.json"))).get("max_seq_length", 512)
    if cfg["model_type"] == "qwen3":
        tok = bpe_ref.Tokenizer(folder)
        pad = tok.vocab.get("<|endoftext|>", next(t["id"] for t in tok.added if t["content"] == "<|endoftext|>"))
        seqs = [tok.encode(t, min(msl, cfg["max_position_embeddings"])) for t in texts]
        T = max(len(q) for q in seqs)
        ids = np.full((len(seqs), T), pad, dtype=np.int64)
        mask = np.zeros((len(seqs), T), dtype=np.uint8)
        for i, q in enumerate(seqs):
            ids[i, :len(q)], mask[i, :len(q)] = q, 1
        Pd = {k: v.double() for k, v in P.items()}
        m = torch.from_numpy(mask)
        h = Q.qwen3_forward(Pd, torch.from_numpy(ids), m, cfg)
        ref = torch.nn.functional.normalize(Q.last_token_pool(h, m), dim=1).float().numpy()
        return compare(texts, ref, emb_path, P)
    tc = json.load(open(os.path.join(folder, "tokenizer_config.json")))
    vocab = [l.rstrip("\n") for l in open(os.path.join(folder, "vocab.txt"), encoding="utf-8")]
    tok = R.WordPiece(vocab, lower=tc.get("do_lower_case", True))
    pool = json.load(open(os.path.join(folder, "1_Pooling", "config.json")))
    mode = "cls" if pool["pooling_mode_cls_token"] else "lasttoken" if pool["pooling_mode_lasttoken"] else "mean"
    modules = json.load(open(os.path.join(folder, "modules.json")))
    normalize = any(m["type"].endswith("Normalize") for m in modules)
    ids, mask = tok.batch(texts, min(msl, cfg["max_position_embeddings"]))
    h = R.bert_forward(P, torch.from_numpy(ids).long(), torch.from_numpy(mask), cfg)
    ref = R.pool(h, torch.from_numpy(mask), mode, normalize).numpy()
    return compare(texts, ref, emb_path, P)


def compare(texts, ref, emb_path, P):
    ours = h5py.File(emb_path, "r")["embeddings"][:]
    d = float(np.abs(ours - ref).max())
    zeros = sum(int((v == 0).sum()) for v in P.values())
    print(f"check_pruned: {len(texts)} texts, max abs difference {d:.2e}, {zeros} zero weights read back, "
          f"{sum(v.numel() for v in P.values())} weights")
    sys.exit(0 if d < 1e-5 else 1)


if __name__ == "__main__":
    main()
