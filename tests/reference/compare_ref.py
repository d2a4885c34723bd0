"""The numpy reference of gaprune's paired comparisons (include/gaprune/compare.h): the same
splitmix64 draws, bootstrap percentiles, permutation p-values and queries needed, computed
independently of the C code, on fixed per-query vectors.

    /usr/bin/python3 tests/reference/compare_ref.py tests/fixtures/compare.expected.json

writes the vectors and the expected results (make fixtures); tests/test_eval.c compares
gp_paired_mean and gp_paired_spearman with them.
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


def paired(a, b, gold, resamples, seed):
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = a.size
    if gold is None:
        stat = lambda xa, xb: (xb - xa).mean(axis=-1)
    else:
        gold = np.asarray(gold, float)
        stat = None
    if stat is not None:
        delta = float(stat(a, b))
        idx = draws_below(stream_seeds(seed, 0, resamples), n, n)
        boot = stat(a[idx], b[idx])
        swap = top_bits(stream_seeds(seed, resamples, resamples), n).astype(bool)
        perm = np.where(swap, -(b - a), b - a).mean(axis=1)
    else:
        delta = spearman(b, gold) - spearman(a, gold)
        idx = draws_below(stream_seeds(seed, 0, resamples), n, n)
        boot = np.array([spearman(b[i], gold[i]) - spearman(a[i], gold[i]) for i in idx])
        swap = top_bits(stream_seeds(seed, resamples, resamples), n).astype(bool)
        perm = np.array([spearman(np.where(s, a, b), gold) - spearman(np.where(s, b, a), gold) for s in swap])
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
    B, seed = 10000, 42
    cases = [
        {"name": "significant", "kind": "mean", "a": a.tolist(), "b": b_sig.tolist()},
        {"name": "moderate", "kind": "mean", "a": a.tolist(), "b": b_mid.tolist()},
        {"name": "null", "kind": "mean", "a": a.tolist(), "b": b_null.tolist()},
        {"name": "sts", "kind": "spearman", "a": ca.tolist(), "b": cb.tolist(), "gold": gold.tolist()},
        {"name": "sts-moderate", "kind": "spearman", "a": ca.tolist(), "b": cc.tolist(), "gold": gold.tolist()},
        {"name": "sts-null", "kind": "spearman", "a": ca.tolist(), "b": ca.tolist(), "gold": gold.tolist()},
    ]
    for c in cases:
        c["expected"] = paired(c["a"], c["b"], c.get("gold"), B, seed)
        print(c["name"], c["expected"])
    json.dump({"resamples": B, "seed": seed, "cases": cases}, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
