"""Reference statistics for the stats pass (tests/test_stats.c).

    /usr/bin/python3 tests/reference/make_stats_fixtures.py tests/fixtures      (make fixtures)

Builds bert-tiny/ (1 layer, hidden 32: small enough to commit its statistics) and, for the corpora
in corpora/ and fisher_batch 1 and 4, the per-unit Fisher, mean gradients, per-tensor alignment
cosine and linear-layer activation sums that `gaprune stats` must reproduce:
    F_c = sum over units of g^2 / n_triplets,   G_c = sum over units of g / n_units,
units = consecutive groups of fisher_batch triplets in file order, g = gradient of the unit's
InfoNCE loss (float64). Per MLP neuron, with a gate of 1 multiplied into its output (autograd
through the gate, not gaprune's formula): Phi_c = sum over units of (dL/dgate)^2 / n_triplets,
mean gate gradient, and the cosine of G_gen and G_dom over the neuron's weights. Written to
stats-fb<k>.expected.h5.
"""
import json
import os
import sys

import h5py
import torch

sys.path.insert(0, os.path.dirname(__file__))
import bert_ref as R  # noqa: E402
import make_bert_fixtures as M  # noqa: E402

TINY = dict(M.CFG, hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=1)
MAX_LENGTH = 40  # the folder's sentence_bert_config max_seq_length


def read_triplets(path):
    def first(v):
        return v[0] if isinstance(v, list) else v

    with open(path, encoding="utf-8") as f:
        text = f.read()
    recs = json.loads(text) if text.lstrip().startswith("[") else [json.loads(l) for l in text.splitlines() if l.strip()]
    out = []
    for r in recs:
        pos = r["positive"] if "positive" in r else r["pos"]
        neg = r["negative"] if "negative" in r else r["neg"]
        out.append((r["query"], first(pos), first(neg)))
    return out


def corpus_stats(params, cfg, tok, triplets, fb, record_acts):
    names = list(params)
    L, I = cfg["num_hidden_layers"], cfg["intermediate_size"]
    gates = [f"encoder.layer.{l}.gate" for l in range(L)]
    NF, NG = torch.zeros(L, I, dtype=torch.float64), torch.zeros(L, I, dtype=torch.float64)
    F = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in params.items()}
    G = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in params.items()}
    act = {}
    units, loss_sum = 0, 0.0
    for u in range(0, len(triplets), fb):
        chunk = triplets[u:u + fb]
        b = len(chunk)
        texts = [t[0] for t in chunk] + [t[1] for t in chunk] + [t[2] for t in chunk]
        ids, mask = tok.batch(texts, MAX_LENGTH)
        ids, mask = torch.from_numpy(ids).long(), torch.from_numpy(mask)
        P = {k: v.double().requires_grad_(True) for k, v in params.items()}
        for gname in gates:
            P[gname] = torch.ones(I, dtype=torch.float64, requires_grad=True)
        rec = {} if record_acts else None
        h = R.bert_forward(P, ids, mask, cfg, rec)
        e = R.pool(h, mask, "mean", True)
        loss = R.infonce(e[:b], e[b:])
        grads = torch.autograd.grad(loss, [P[k] for k in names] + [P[g] for g in gates])
        for l in range(L):
            d = grads[len(names) + l]
            NF[l] += d * d
            NG[l] += d
        for k, g in zip(names, grads):
            F[k] += g * g
            G[k] += g
        if rec is not None:
            m = mask.double()[..., None]
            for w, x in rec.items():
                s = (x.detach() ** 2 * m).sum((0, 1))
                act[w] = act[w] + s if w in act else s
        units += 1
        loss_sum += float(loss)
    n = len(triplets)
    return ({k: v / n for k, v in F.items()}, {k: v / units for k, v in G.items()}, act, units, loss_sum / units,
            NF / n, NG / units)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    torch.set_num_threads(1)
    vocab = M.BASE_VOCAB
    cfg = dict(TINY, vocab_size=len(vocab))
    gen = torch.Generator().manual_seed(99)
    params = R.random_params(cfg, gen, scale=0.3)
    spec = [(k, v, "F32") for k, v in params.items()]
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    tok_cfg = {"do_lower_case": True, "strip_accents": None, "tokenize_chinese_chars": True}
    M.write_folder(os.path.join(out, "bert-tiny"), vocab, tok_cfg, modules, M.pooling_cfg("mean", cfg), spec, 1, cfg)
    tok = R.WordPiece(vocab, lower=True)
    dom = read_triplets(os.path.join(out, "corpora", "domain.json"))
    gen_t = read_triplets(os.path.join(out, "corpora", "general.jsonl"))
    for fb in (1, 4):
        Fd, Gd, act, ud, ld, NFd, NGd = corpus_stats(params, cfg, tok, dom, fb, True)
        Fg, Gg, _, ug, lg, NFg, NGg = corpus_stats(params, cfg, tok, gen_t, fb, False)
        with h5py.File(os.path.join(out, f"stats-fb{fb}.expected.h5"), "w") as f:
            f.attrs["description"] = f"PyTorch float64 statistics of bert-tiny, fisher_batch {fb} (make_stats_fixtures.py)"
            for c, (Fc, Gc, u, l, n, NFc, NGc) in {"domain": (Fd, Gd, ud, ld, len(dom), NFd, NGd),
                                                   "general": (Fg, Gg, ug, lg, len(gen_t), NFg, NGg)}.items():
                g = f.create_group(c)
                g.attrs["n_units"], g.attrs["loss_mean"], g.attrs["n_triplets"] = u, l, n
                g.create_dataset("neuron_fisher", data=NFc.numpy())
                g.create_dataset("neuron_grad_mean", data=NGc.numpy())
                for k in params:
                    g.create_dataset(f"fisher/{k}", data=Fc[k].float().numpy())
                    g.create_dataset(f"grad_mean/{k}", data=Gc[k].float().numpy())
            for k in params:
                a, b = Gg[k].flatten(), Gd[k].flatten()
                f.create_dataset(f"alignment/{k}", data=float((a @ b) / (a.norm() * b.norm() + 1e-12)))
            # per neuron j of block l: row j of intermediate.dense.weight, column j of output.dense.weight
            L, I = cfg["num_hidden_layers"], cfg["intermediate_size"]
            ncos = torch.zeros(L, I, dtype=torch.float64)
            for l in range(L):
                up, down = f"encoder.layer.{l}.intermediate.dense.weight", f"encoder.layer.{l}.output.dense.weight"
                for j in range(I):
                    a = torch.cat([Gg[up][j], Gg[down][:, j]])
                    b = torch.cat([Gd[up][j], Gd[down][:, j]])
                    ncos[l, j] = (a @ b) / (a.norm() * b.norm() + 1e-12)
            f.create_dataset("alignment/neuron_cosine", data=ncos.numpy())
            for w, v in act.items():
                f.create_dataset(f"activations/{w}", data=v.float().numpy())
        print(f"fisher_batch {fb}: domain loss {ld:.5f} ({ud} units), general loss {lg:.5f} ({ug} units)")


if __name__ == "__main__":
    main()
