"""The numpy reference of gaprune's task metrics (include/gaprune/taskmetrics.h), written from the
definitions (scikit-learn and scipy are not used, nor installed): V-measure, average precision,
reranking AP and MRR@10, summarization Spearman, bitext nearest-neighbour accuracy, macro F1, and
an L2-regularised logistic regression solved by Newton's method to full precision.

    /usr/bin/python3 tests/reference/taskmetrics_ref.py tests/fixtures/taskmetrics.expected.json

writes fixed inputs (numpy's RandomState(20250917)) and the expected results (make fixtures);
tests/test_taskmetrics.c compares gaprune's functions with them. Every input is written so that
the C test reads back exactly the number computed on here (a float64's shortest decimal; for the
float32 inputs of the C functions, a float32's), so both sides compute on the same numbers.

The logistic regression minimises liblinear's L2R_LR objective exactly as gp_logreg_fit_predict
calls it: 0.5·wᵀw + C·Σ log(1 + exp(−y_i wᵀx̃_i)) with C = 1 and x̃ = [x; 1] (liblinear's bias
feature, its weight regularised like the others); one binary model for two labels (liblinear's
positive class is the label met first in the training order), else one model per label against
the rest, the prediction the label of the largest decision value (first in training order on a
tie). The training subset is given explicitly (sel); this script does not reproduce gaprune's RNG.
"""
import json
import math
import sys

import numpy as np

RNG = np.random.RandomState(20250917)


def f32list(x):
    """float32 values as the shortest decimals that give them back through strtod and a cast to
    float (what the C test does): a third of the digits of their float64 decimals."""
    out = []
    for v in np.asarray(x, dtype=np.float32).ravel():
        d = float(repr(v))
        assert np.float32(d) == v
        out.append(d)
    return out


def nan_to_none(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


# ---- V-measure -----------------------------------------------------------------------------------

def entropy(counts):
    counts = counts[counts > 0].astype(np.float64)
    if counts.size <= 1:
        return 0.0
    p = counts / counts.sum()
    return float(-np.sum(p * np.log(p)))


def v_measure(truth, pred):
    truth, pred = np.asarray(truth), np.asarray(pred)
    n = truth.size
    if n == 0:
        return 1.0
    _, ci = np.unique(truth, return_inverse=True)
    _, ki = np.unique(pred, return_inverse=True)
    table = np.zeros((ci.max() + 1, ki.max() + 1), dtype=np.int64)
    np.add.at(table, (ci, ki), 1)
    a, b = table.sum(axis=1), table.sum(axis=0)
    hc, hk = entropy(a), entropy(b)
    mi = 0.0
    if a.size > 1 and b.size > 1:
        pij = table / n
        pi, pj = a / n, b / n
        nz = table > 0
        mi = float(np.sum(pij[nz] * np.log(pij[nz] / np.outer(pi, pj)[nz])))
        mi = max(mi, 0.0)
    h = mi / hc if hc != 0 else 1.0
    c = mi / hk if hk != 0 else 1.0
    return 0.0 if h + c == 0 else 2 * h * c / (h + c)


# ---- average precision, reranking ----------------------------------------------------------------

def average_precision(score, label):
    """Σ over distinct thresholds, highest first, of (R_k − R_{k−1})·P_k; None without a positive."""
    score, label = np.asarray(score, dtype=np.float64), np.asarray(label, dtype=np.int64)
    npos = int(label.sum())
    if npos == 0:
        return None
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(score.tolist()), reverse=True):
        above = score >= t
        tp = int(label[above].sum())
        recall, precision = tp / npos, tp / int(above.sum())
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def rerank(score, relevant):
    score = np.asarray(score, dtype=np.float64)
    n = score.size
    order = sorted(range(n), key=lambda i: (-score[i], i))  # by score, ties the lower index first
    rr = 0.0
    for r, i in enumerate(order[:10]):
        if relevant[i]:
            rr = 1.0 / (r + 1)
            break
    return average_precision(score, relevant), rr


# ---- summarization -------------------------------------------------------------------------------

def average_ranks(v):
    v = np.asarray(v, dtype=np.float64)
    r = np.empty(v.size)
    for i, x in enumerate(v):
        below, equal = int(np.sum(v < x)), int(np.sum(v == x))
        r[i] = below + (equal + 1) / 2.0
    return r


def summary_spearman(cos, relevance):
    best = np.asarray(cos).max(axis=1)
    if len(set(best.tolist())) == 1 or len(set(relevance)) == 1:
        return None
    rx, ry = average_ranks(best), average_ranks(relevance)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float(np.sum(rx * ry) / math.sqrt(np.sum(rx * rx) * np.sum(ry * ry)))


# ---- bitext mining -------------------------------------------------------------------------------

def bitext(a, b):
    """a, b float32 [n, d]; exact dot products (float32 products are exact in float64, fsum
    rounds their sum once), the nearest b the first index of the largest."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    n = a.shape[0]
    correct = []
    for i in range(n):
        s = [math.fsum((a64[i] * b64[j]).tolist()) for j in range(n)]
        best = max(range(n), key=lambda j: (s[j], -j))
        correct.append(int(best == i))
    return correct


# ---- classification ------------------------------------------------------------------------------

def macro_f1(truth, pred):
    f = []
    for lab in sorted(set(truth) | set(pred)):
        tp = sum(1 for t, p in zip(truth, pred) if t == lab and p == lab)
        fp = sum(1 for t, p in zip(truth, pred) if t != lab and p == lab)
        fn = sum(1 for t, p in zip(truth, pred) if t == lab and p != lab)
        f.append(2 * tp / (2 * tp + fp + fn))
    return sum(f) / len(f)


def newton_lr(X, y, C=1.0):
    """argmin 0.5·wᵀw + C·Σ log(1 + exp(−y_i wᵀx_i)) (y ±1) by damped Newton to |∇| < 1e-12."""
    w = np.zeros(X.shape[1])

    def f(w):
        return 0.5 * w @ w + C * np.sum(np.logaddexp(0.0, -y * (X @ w)))

    for _ in range(200):
        z = y * (X @ w)
        sig = 1.0 / (1.0 + np.exp(-z))
        g = w + C * X.T @ ((sig - 1.0) * y)
        if np.linalg.norm(g) < 1e-12:
            break
        H = np.eye(X.shape[1]) + C * X.T @ ((sig * (1.0 - sig))[:, None] * X)
        step = np.linalg.solve(H, g)
        t, f0 = 1.0, f(w)
        # damped far from the optimum; near it the objective's rounding hides any decrease
        while np.linalg.norm(g) > 1e-6 and f(w - t * step) > f0 - 1e-4 * t * (g @ step) and t > 1e-10:
            t *= 0.5
        w = w - t * step
    else:
        raise RuntimeError("Newton did not converge")
    return w, float(np.linalg.norm(g))


def logreg(xtr, ytr, sel, xte):
    X = np.hstack([xtr[sel].astype(np.float64), np.ones((len(sel), 1))])
    Xt = np.hstack([xte.astype(np.float64), np.ones((xte.shape[0], 1))])
    labels = []
    for i in sel:  # liblinear's label order: first occurrence in the training rows
        if int(ytr[i]) not in labels:
            labels.append(int(ytr[i]))
    yl = np.array([ytr[i] for i in sel])
    gnorm = 0.0
    if len(labels) == 2:
        w, gnorm = newton_lr(X, np.where(yl == labels[0], 1.0, -1.0))
        dec = Xt @ w
        pred = [labels[0] if v > 0 else labels[1] for v in dec]
        margin = np.abs(dec)
    else:
        W = []
        for lab in labels:
            w, gn = newton_lr(X, np.where(yl == lab, 1.0, -1.0))
            W.append(w)
            gnorm = max(gnorm, gn)
        dec = Xt @ np.array(W).T
        pred = [labels[int(np.argmax(row))] for row in dec]
        top2 = np.sort(dec, axis=1)[:, -2:] if len(labels) > 1 else np.zeros((dec.shape[0], 2))
        margin = top2[:, 1] - top2[:, 0]
    return pred, float(np.min(margin)), gnorm


def logreg_case(name, k, d, pool_per_label, per_label, nte, spread, unit):
    centres = RNG.normal(size=(k, d))
    ytr = np.repeat(np.arange(k), pool_per_label)
    RNG.shuffle(ytr)
    xtr = centres[ytr] + spread * RNG.normal(size=(ytr.size, d))
    yte = RNG.randint(0, k, size=nte)
    xte = centres[yte] + spread * RNG.normal(size=(nte, d))
    if unit:
        xtr /= np.linalg.norm(xtr, axis=1, keepdims=True)
        xte /= np.linalg.norm(xte, axis=1, keepdims=True)
    xtr, xte = xtr.astype(np.float32), xte.astype(np.float32)
    sel = []
    for lab in range(k):  # the first per_label of each label, interleaved in a shuffled order
        sel += [int(i) for i in np.flatnonzero(ytr == lab)[:per_label]]
    sel = [int(i) for i in RNG.permutation(sel)]
    pred, margin, gnorm = logreg(xtr, ytr, sel, xte)
    acc = float(np.mean(np.array(pred) == yte))
    print(f"{name}: k={k} d={d} train {len(sel)} test {nte}: accuracy {acc:.4f}, "
          f"smallest decision margin {margin:.3e}, |grad| {gnorm:.1e}")
    return {"name": name, "k": k, "d": d, "xtr": f32list(xtr),
            "ytr": ytr.tolist(), "sel": sel, "xte": f32list(xte),
            "yte": yte.tolist(), "pred": [int(p) for p in pred], "accuracy": acc,
            "macro_f1": macro_f1(yte.tolist(), pred), "min_margin": margin}


# ---- the cases -----------------------------------------------------------------------------------

def main(out):
    doc = {"seed": 20250917}

    vm = [("sklearn_doc_a", [0, 0, 1, 2], [0, 0, 1, 1]), ("sklearn_doc_b", [0, 1, 2, 3], [0, 0, 1, 1]),
          ("perfect_permuted", [0, 0, 1, 1, 2, 2], [2, 2, 0, 0, 1, 1]),
          ("one_cluster", [0, 1, 2, 0, 1, 2, 3], [0] * 7), ("one_class", [4] * 6, [0, 1, 2, 3, 4, 5]),
          ("one_class_one_cluster", [3] * 5, [1] * 5), ("single_point", [0], [0]),
          ("sparse_ids", [7, 7, 3, 3, 3, 9, 9, 9, 9, 0], [1, 1, 1, 8, 8, 8, 2, 2, 5, 5])]
    n = 60
    vm.append(("random", RNG.randint(0, 4, n).tolist(), RNG.randint(0, 6, n).tolist()))
    t = RNG.randint(0, 5, 200)
    p = np.where(RNG.rand(200) < 0.7, t, RNG.randint(0, 7, 200))
    vm.append(("noisy", t.tolist(), (p * 13 % 200).tolist()))
    doc["v_measure"] = [{"name": nm, "truth": list(map(int, a)), "pred": list(map(int, b)),
                         "expected": v_measure(a, b)} for nm, a, b in vm]

    ap = [("hand", [0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]), ("tie_across", [0.5, 0.5, 0.1], [0, 1, 1]),
          ("no_positive", [0.3, 0.2, 0.1], [0, 0, 0]), ("all_positive", [0.3, 0.3, 0.1], [1, 1, 1]),
          ("one", [0.4], [1])]
    s = np.round(RNG.rand(80), 1)
    ap.append(("ties", s.tolist(), (RNG.rand(80) < 0.3 + 0.5 * s).astype(int).tolist()))
    s = RNG.normal(size=300)
    ap.append(("random", s.tolist(), (RNG.rand(300) < 1 / (1 + np.exp(-2 * s))).astype(int).tolist()))
    doc["average_precision"] = [{"name": nm, "score": list(map(float, a)), "label": list(map(int, b)),
                                 "expected": nan_to_none(average_precision(a, b))} for nm, a, b in ap]

    rr = []
    s = np.linspace(1.0, 0.0, 15)
    rr.append(("relevant_11th", s.tolist(), [1 if i == 10 else 0 for i in range(15)]))
    rr.append(("relevant_10th", s.tolist(), [1 if i == 9 else 0 for i in range(15)]))
    rr.append(("tied_top", [0.7] * 5 + [0.2] * 5, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]))
    rr.append(("tie_at_cut", [0.9] * 9 + [0.5] * 4, [0] * 10 + [1, 0, 1]))  # relevant 11th by index among ties
    rr.append(("tie_inside_cut", [0.9] * 9 + [0.5] * 4, [0] * 9 + [1, 0, 0, 1]))
    rr.append(("no_relevant", [0.3, 0.2, 0.1], [0, 0, 0]))
    for q in range(4):
        m = 20 + 7 * q
        s = np.round(RNG.rand(m), 2)
        rel = (RNG.rand(m) < 0.15 + 0.3 * s).astype(int)
        rel[RNG.randint(m)] = 1
        rr.append((f"random{q}", s.tolist(), rel.tolist()))
    doc["rerank"] = []
    for nm, a, b in rr:
        apv, rrv = rerank(a, b)
        doc["rerank"].append({"name": nm, "score": list(map(float, a)), "relevant": b, "ap": nan_to_none(apv), "rr10": rrv})

    sm = []
    c = np.round(RNG.rand(8, 3), 2)
    sm.append(("ties", c, [float(v) for v in RNG.randint(1, 6, 8)]))
    c = RNG.rand(12, 4)
    sm.append(("random", c, RNG.rand(12).tolist()))
    sm.append(("constant_relevance", RNG.rand(6, 2), [3.0] * 6))
    c = RNG.rand(5, 3)
    c[:, 0] = 1.5  # every machine summary's best cosine the same
    sm.append(("constant_best", c, [1.0, 2.0, 3.0, 4.0, 5.0]))
    sm.append(("two", np.array([[0.2, 0.9], [0.5, 0.4]]), [1.0, 2.0]))
    sm.append(("one_human", RNG.rand(7, 1), RNG.rand(7).tolist()))
    doc["summarization"] = [{"name": nm, "m": int(c.shape[0]), "h": int(c.shape[1]), "cos": c.ravel().tolist(),
                             "relevance": r, "expected": nan_to_none(summary_spearman(c, r))} for nm, c, r in sm]

    def unit32(x):
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    bt = []
    n, d = 40, 16
    base = RNG.normal(size=(n, d))
    a = unit32(base + 0.6 * RNG.normal(size=(n, d)))
    b = unit32(base + 0.6 * RNG.normal(size=(n, d)))
    b[5] = b[3]  # an exact tie: a_5's nearest is b_3 or b_5, equal; the lower index (3) wins
    a[5] = unit32(b[3:4].astype(np.float64) + 1e-3 * RNG.normal(size=(1, d)))[0]
    bt.append(("ties", a, b))
    a = unit32(RNG.normal(size=(6, 8)))
    b = np.repeat(unit32(RNG.normal(size=(1, 8))), 6, axis=0)
    bt.append(("all_equal", a, b))
    n, d = 100, 24
    base = RNG.normal(size=(n, d))
    bt.append(("random", unit32(base + 0.9 * RNG.normal(size=(n, d))), unit32(base + 0.9 * RNG.normal(size=(n, d)))))
    doc["bitext"] = []
    for nm, a, b in bt:
        corr = bitext(a, b)
        doc["bitext"].append({"name": nm, "n": int(a.shape[0]), "d": int(a.shape[1]),
                              "a": f32list(a), "b": f32list(b),
                              "correct": corr, "count": int(sum(corr))})

    f1 = [("hand", [0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 4), ("label_only_in_pred", [0, 0, 0], [0, 2, 0], 3),
          ("never_right", [1, 1], [0, 0], 2)]
    t = RNG.randint(0, 6, 100)
    f1.append(("random", t.tolist(), np.where(RNG.rand(100) < 0.6, t, RNG.randint(0, 6, 100)).tolist(), 6))
    doc["macro_f1"] = [{"name": nm, "truth": a, "pred": b, "k": k, "expected": macro_f1(a, b)} for nm, a, b, k in f1]

    doc["logreg"] = [
        logreg_case("binary", k=2, d=8, pool_per_label=20, per_label=8, nte=200, spread=1.6, unit=False),
        logreg_case("four_labels", k=4, d=12, pool_per_label=15, per_label=8, nte=300, spread=1.3, unit=False),
        logreg_case("unit_d64", k=3, d=64, pool_per_label=12, per_label=8, nte=120, spread=2.5, unit=True),
        logreg_case("unit_d32_k6", k=6, d=32, pool_per_label=10, per_label=8, nte=160, spread=2.0, unit=True),
    ]

    with open(out, "w") as fh:
        json.dump(doc, fh, allow_nan=False, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/taskmetrics.expected.json")
