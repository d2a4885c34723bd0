"""The numpy reference of gaprune's paired comparisons (include/gaprune/compare.h): the same
splitmix64 draws, bootstrap percentiles, permutation p-values and queries needed, computed
independently of the C code, on fixed per-query vectors.

    /usr/bin/python3 tests/reference/compare_ref.py tests/fixtures/compare.expected.json

writes the vectors and the expected results (make fixtures); tests/test_eval.c compares
gp_paired_mean, gp_paired_spearman and gp_paired_combined (average precision) with them, and
tests/test_mpi_stages.c the same on 1, 2 and 4 ranks. Each resample is recomputed here from the
resampled vectors themselves (numpy's ranks, a sort per average precision), where the C code derives it
from orders sorted once.
"""
import json
import sys

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
Z_SUM = 1.959963984540054 + 0.8416212335729143


def mix(z):
    z = z.astype(np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def stream_seeds(seed, first, count):
    """gp_rng_seed(seed, stream) for streams first .. first + count - 1."""
    streams = np.arange(first, first + count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix(np.uint64(seed) * GOLDEN + streams + np.uint64(1))


def draws_below(states, n, count):
    """count draws of gp_rng_below(state, n) on every lane: [lanes, count]."""
    bound = np.uint64(n)
    with np.errstate(over="ignore"):
        threshold = (np.uint64(0) - bound) % bound  # 2^64 mod n
    out = np.empty((states.size, count), dtype=np.int64)
    states = states.copy()
    for i in range(count):
        pending = np.ones(states.size, dtype=bool)
        while pending.any():
            states[pending] += GOLDEN
            r = mix(states[pending])
            ok = r >= threshold
            idx = np.flatnonzero(pending)
            out[idx[ok], i] = (r[ok] % bound).astype(np.int64)
            pending[idx[ok]] = False
    return out


def top_bits(states, count):
    """The top bit of count draws of gp_rng_next on every lane: [lanes, count] of 0/1."""
    out = np.empty((states.size, count), dtype=np.uint8)
    states = states.copy()
    for i in range(count):
        states += GOLDEN
        out[:, i] = (mix(states) >> np.uint64(63)).astype(np.uint8)
    return out


def average_ranks(v):
    """Ranks 1..n, ties sharing their average rank."""
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def pearson(x, y):
    mx, my = x.mean(), y.mean()
    sxx, syy = ((x - mx) ** 2).sum(), ((y - my) ** 2).sum()
    return ((x - mx) * (y - my)).sum() / np.sqrt(sxx * syy) if sxx > 0 and syy > 0 else np.nan


def spearman(x, y):
    return pearson(average_ranks(x), average_ranks(y))


def average_precision(score, label):
    """Average precision over descending score, one threshold per run of equal scores."""
    npos = int((label != 0).sum())
    if npos == 0:
        return np.nan
    values, inverse = np.unique(-score, return_inverse=True)
    tp = np.bincount(inverse, weights=(label != 0).astype(float), minlength=values.size)
    fp = np.bincount(inverse, weights=(label == 0).astype(float), minlength=values.size)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    recall = tp / npos
    precision = tp / (tp + fp)
    return float((np.diff(np.concatenate([[0.0], recall])) * precision).sum())


def paired(a, b, gold, resamples, seed, kind):
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = a.size
    idx = draws_below(stream_seeds(seed, 0, resamples), n, n)
    swap = top_bits(stream_seeds(seed, resamples, resamples), n).astype(bool)
    if kind == "mean":
        delta = float((b - a).mean())
        boot = (b[idx] - a[idx]).mean(axis=1)
        perm = np.where(swap, -(b - a), b - a).mean(axis=1)
    else:
        gold = np.asarray(gold, float)
        stat = spearman if kind == "spearman" else average_precision
        delta = stat(b, gold) - stat(a, gold)
        boot = np.array([stat(b[i], gold[i]) - stat(a[i], gold[i]) for i in idx])
        perm = np.array([stat(np.where(s, a, b), gold) - stat(np.where(s, b, a), gold) for s in swap])
    boot = np.sort(boot[np.isfinite(boot)])
    extreme = int((np.abs(perm) >= abs(delta) - 1e-9 * abs(delta)).sum())
    lo, hi = np.percentile(boot, 2.5), np.percentile(boot, 97.5)
    se = float(np.std(boot, ddof=1))
    p = (1 + extreme) / (resamples + 1)
    return {"delta": delta, "lo": float(lo), "hi": float(hi), "se": se, "p": p,
            "n_needed": n * (Z_SUM * se / abs(delta)) ** 2 if delta != 0 else None,
            "significant": bool(p < 0.05 and (lo > 0 or hi < 0))}


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(20261207)
    n = 200
    # multiples of 1/1024: every difference and sum below is exact, so the null's is exactly 0
    a = np.round(rng.uniform(0, 1, n) * 1024) / 1024
    # a difference built to be significant: b is a plus 0.06 plus noise of sd 0.1
    b_sig = a + 0.06 + rng.normal(0, 0.1, n)
    # a small difference, of a p-value in between
    b_mid = a + 0.012 + rng.normal(0, 0.1, n)
    # a null difference: b is a plus noise whose second half is the first half negated
    e = np.round(rng.normal(0, 0.1, n // 2) * 1024) / 1024
    b_null = a + np.concatenate([e, -e])
    # STS: gold in half steps (ties), one model's cosines closer to it than the other's
    m = 150
    gold = np.round(rng.uniform(0, 5, m) * 2) / 2
    ca = gold / 5 + rng.normal(0, 0.3, m)
    cb = gold / 5 + rng.normal(0, 0.15, m)
    cc = gold / 5 + rng.normal(0, 0.27, m)
    # pair classification: 0/1 labels, one model's scores (in steps of 0.05: ties) closer to them
    k = 160
    label = (rng.uniform(0, 1, k) < 0.4).astype(float)
    sa = np.round((label * 0.3 + rng.normal(0, 0.3, k)) * 20) / 20
    sb = np.round((label * 0.5 + rng.normal(0, 0.3, k)) * 20) / 20
    B, seed = 10000, 42
    cases = [
        {"name": "significant", "kind": "mean", "a": a.tolist(), "b": b_sig.tolist()},
        {"name": "moderate", "kind": "mean", "a": a.tolist(), "b": b_mid.tolist()},
        {"name": "null", "kind": "mean", "a": a.tolist(), "b": b_null.tolist()},
        {"name": "sts", "kind": "spearman", "a": ca.tolist(), "b": cb.tolist(), "gold": gold.tolist()},
        {"name": "sts-moderate", "kind": "spearman", "a": ca.tolist(), "b": cc.tolist(), "gold": gold.tolist()},
        {"name": "sts-null", "kind": "spearman", "a": ca.tolist(), "b": ca.tolist(), "gold": gold.tolist()},
        {"name": "ap", "kind": "ap", "a": sa.tolist(), "b": sb.tolist(), "gold": label.tolist()},
    ]
    for c in cases:
        c["expected"] = paired(c["a"], c["b"], c.get("gold"), B, seed, c["kind"])
        print(c["name"], c["expected"])
    json.dump({"resamples": B, "seed": seed, "cases": cases}, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
