"""Reference for the pruned-model export (tests/test_score.c).

    /usr/bin/python3 tests/reference/make_prune_fixtures.py tests/fixtures      (make fixtures)

Prunes bert-tiny by magnitude at 50% over its MLP weights (intermediate.dense.weight and
output.dense.weight, one global threshold, ties pruned lowest index first in parameter-table
order), and records the masks and the embeddings of the masked model for a few texts:
gaprune's OUT/pruned-magnitude-0.5 must hold exactly these weights and give these embeddings.
"""
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import bert_ref as R  # noqa: E402
import make_bert_fixtures as M  # noqa: E402

TEXTS = ["paris is the capital of france", "Hello, world!", "people in japan (日本)", ""]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    folder = os.path.join(out, "bert-tiny")
    P, _ = R.read_safetensors(os.path.join(folder, "model.safetensors"))
    P = {k: v.float() for k, v in P.items()}
    mlp = [k for k in P if k.endswith("intermediate.dense.weight") or
           (k.endswith("output.dense.weight") and "attention" not in k)]
    # gaprune's table order within a layer: intermediate before output
    mlp.sort(key=lambda k: (int(k.split(".")[2]), 0 if "intermediate" in k else 1))
    flat = torch.cat([P[k].abs().flatten() for k in mlp])
    k = int(np.floor(0.5 * flat.numel()))
    order = np.lexsort((np.arange(flat.numel()), flat.numpy()))  # by value, then by position
    keep = np.ones(flat.numel(), dtype=np.uint8)
    keep[order[:k]] = 0
    at = 0
    masks = {}
    for name in mlp:
        n = P[name].numel()
        masks[name] = keep[at:at + n].reshape(P[name].shape)
        P[name] = P[name] * torch.from_numpy(masks[name]).float()
        at += n
    import json
    cfg = json.load(open(os.path.join(folder, "config.json")))
    tok = R.WordPiece([l.rstrip("\n") for l in open(os.path.join(folder, "vocab.txt"), encoding="utf-8")], lower=True)
    ids, mask = tok.batch(TEXTS, 40)
    h = R.bert_forward({k: v.double() for k, v in P.items()}, torch.from_numpy(ids).long(), torch.from_numpy(mask), cfg)
    emb = R.pool(h, torch.from_numpy(mask), "mean", True)
    with h5py.File(os.path.join(out, "pruned-magnitude.expected.h5"), "w") as f:
        f.attrs["description"] = "bert-tiny pruned by magnitude at 50% of its MLP weights (make_prune_fixtures.py)"
        f.attrs["n_pruned"] = k
        f.create_dataset("texts", data=[t.encode() for t in TEXTS], dtype=h5py.string_dtype("utf-8"))
        f.create_dataset("embeddings", data=emb.float().numpy())
        for name in mlp:
            f.create_dataset(f"mask/{name}", data=masks[name], compression="gzip")
    print(f"magnitude 50%: pruned {k} of {flat.numel()} MLP weights")


if __name__ == "__main__":
    main()
