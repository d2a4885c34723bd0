"""The numpy reference of SparseGPT's pruning and reconstruction (include/gaprune/obs.h),
written from that header's description alone, in float64.

    /usr/bin/python3 tests/reference/obs_ref.py tests/fixtures      (make fixtures)

writes tests/fixtures/obs.expected.h5 (fixed seeds: the same file every run), which
tests/test_obs.c compares gp_hessian_add, gp_obs_factor, gp_obs_prune and gp_obs_output_error
with. What the file holds:

  /X_dom [Nd, n], /X_gen [Ng, n]  float32 calibration inputs: correlated columns (Z A, scaled per
                                 column), column DEAD exactly 0 in both (an input that never fires).
                                 Every value is a multiple of 1/16 below 8 in magnitude, so XᵀX is
                                 exact in float32 whatever the summation order (each partial sum is
                                 an integer multiple of 1/256 below 2^24).
  /H [n, n]                      float64, X_domᵀX_dom / Nd + lam · X_genᵀX_gen / Ng
  /U [n, n]                      float64, upper, UᵀU = (H + lambda_d I)⁻¹
  /W, /W_tie [rows, n]           float32 dense weights; W_tie is W with the block [0, 16) x [0, 16)
                                 set to 0 (exact ties in the saliencies, for the tie rules)
  /cases/<name>/                 attributes select (0 FIXED, 1 ROW, 2 LAYER, 3 NM), block, sparsity,
                                 nm_n, nm_m, update (0/1), weights ("W" or "W_tie"), err2_mask,
                                 err2_out, err2_ls, norm2, ratio_ls (err2_out / err2_ls);
                                 datasets keep [rows, n] uint8 (1 = kept), W_out [rows, n] float32
                                 (the expected result, rounded to float32), W_ls [rows, n] float32
                                 (the least-squares optimum for the case's mask).
  root attributes: rows, n, Nd, Ng, lam, damp, lambda_d, dead, max_ratio_ls.

err2_* = Σ_r (a_r − b_r) H (a_r − b_r)ᵀ against the dense weights (b) with the undampened H, each
computed from the float32 arrays that the file holds (so gp_obs_output_error on those arrays must
give them to double rounding); norm2 = Σ_r b_r H b_rᵀ.

The script checks itself before writing: the same sweep run in float32 (float32 W and U, as the C
code works) must choose the same masks, and every selection's boundary (largest pruned saliency
against smallest kept one) must be apart by a relative margin large enough that float32 rounding
cannot move it, except at the designed exact ties (zeros).
"""
import os
import sys

import h5py
import numpy as np

ROWS, N, ND, NG = 24, 40, 300, 200
LAM, DAMP = 0.5, 0.01
DEAD = 5  # the input column that is always 0
FIXED, ROW, LAYER, NM = 0, 1, 2, 3
SEED = 20260424  # chosen so that every selection boundary is at least 1e-3 apart (relative), see main


def fl(p, n):
    """floor(p · n + 1e-9): the cumulative counts of ROW and LAYER."""
    return int(np.floor(p * n + 1e-9))


def make_inputs(rng):
    def batch(count, A, scale):
        X = (rng.standard_normal((count, N)) @ A) * scale
        X = np.clip(np.round(X * 16) / 16, -127 / 16, 127 / 16)
        X[:, DEAD] = 0
        return X.astype(np.float32)

    A = np.eye(N) + 0.9 * rng.standard_normal((N, N)) / np.sqrt(N)
    A_gen = A + 0.5 * rng.standard_normal((N, N)) / np.sqrt(N)
    scale = np.exp(rng.uniform(-1.2, 0.5, N))
    scale_gen = scale * np.exp(rng.uniform(-0.3, 0.3, N))
    return batch(ND, A, scale), batch(NG, A_gen, scale_gen)


def hessian(X_dom, X_gen):
    Xd, Xg = X_dom.astype(np.float64), X_gen.astype(np.float64)
    return Xd.T @ Xd / ND + LAM * (Xg.T @ Xg) / NG


def factor(H, damp):
    mean = np.mean(np.diag(H))
    lam_d = damp * mean if mean != 0 else damp
    Hinv = np.linalg.inv(H + lam_d * np.eye(H.shape[0]))
    Hinv = (Hinv + Hinv.T) / 2
    U = np.linalg.cholesky(Hinv).T  # numpy's lower L with Hinv = L Lᵀ; U = Lᵀ so Hinv = UᵀU
    return U, lam_d


class Margins:
    """The smallest relative gap between the pruned and the kept side of every selection."""

    def __init__(self):
        self.min_gap, self.ties = np.inf, 0

    def boundary(self, sal_sorted, k):
        if k == 0 or k == sal_sorted.size:
            return
        lo, hi = sal_sorted[k - 1], sal_sorted[k]
        if lo == hi:
            # only designed ties (exact zeros, the same in float32) are allowed at a boundary
            assert lo == 0, f"a non-zero tie at a selection boundary: {lo}"
            self.ties += 1
            return
        self.min_gap = min(self.min_gap, (hi - lo) / hi)


def prune_lowest(sal, k, margins):
    """Flat indices of the k lowest of sal (flattened row-major), ties to the lower index."""
    flat = sal.ravel()
    order = np.argsort(flat, kind="stable")
    if margins is not None:
        margins.boundary(flat[order], k)
    return order[:k]


def sweep(W0, U, select, block, p=0.0, nm=(0, 0), keep=None, R=None, update=True, dtype=np.float64,
          margins=None):
    """SparseGPT's sweep as obs.h describes it; returns (W_out, keep) with keep bool [rows, n]."""
    W = W0.astype(dtype).copy()
    U = U.astype(dtype)
    rows, n = W.shape
    R = rows if R is None else R
    d = np.diag(U).copy()
    keep = np.ones((rows, n), bool) if keep is None else keep.astype(bool).copy()
    nm_n, nm_m = nm
    for i1 in range(0, n, block):
        i2 = min(i1 + block, n)
        if select == ROW:
            k = fl(p, i2) - fl(p, i1)
            sal = W[:, i1:i2] ** 2 / d[i1:i2] ** 2
            for r in range(rows):
                keep[r, i1 + prune_lowest(sal[r], k, margins)] = False
        elif select == LAYER:
            k = fl(p, R * i2) - fl(p, R * i1)
            sal = W[:, i1:i2] ** 2 / d[i1:i2] ** 2
            idx = prune_lowest(sal, k, margins)
            keep[idx // (i2 - i1), i1 + idx % (i2 - i1)] = False
        Err = np.zeros((rows, i2 - i1), dtype)
        for i in range(i1, i2):
            if select == NM and i % nm_m == 0:
                sal = W[:, i:i + nm_m] ** 2 / d[i:i + nm_m] ** 2
                for r in range(rows):
                    keep[r, i + prune_lowest(sal[r], nm_m - nm_n, margins)] = False
            w = W[:, i].copy()
            q = np.where(keep[:, i], w, dtype(0))
            e = (w - q) / U[i, i]
            W[:, i:i2] -= np.outer(e, U[i, i:i2])
            W[:, i] = q
            Err[:, i - i1] = e
        W[:, i2:] -= Err @ U[i1:i2, i2:]
    if not update:
        W = np.where(keep, W0.astype(dtype), dtype(0))
    return W, keep


def err2(H, a, b):
    D = a.astype(np.float64) - b.astype(np.float64)
    return float(np.sum((D @ H) * D))


def least_squares(H, W, keep):
    """Per row, the kept weights minimising (w' − w) H (w' − w)ᵀ, the others 0. H[K, K] is singular
    where K holds the dead column (its row and column of H are 0): that weight does not change the
    output, so it is solved without it and set to 0."""
    W = W.astype(np.float64)
    out = np.zeros_like(W)
    live = np.diag(H) > 0
    for r in range(W.shape[0]):
        K = np.flatnonzero(keep[r] & live)
        if K.size:
            out[r, K] = np.linalg.solve(H[np.ix_(K, K)], H[K, :] @ W[r])
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    rng = np.random.default_rng(SEED)
    X_dom, X_gen = make_inputs(rng)
    H = hessian(X_dom, X_gen)
    U, lam_d = factor(H, DAMP)
    assert np.allclose(U.T @ U, np.linalg.inv(H + lam_d * np.eye(N)), rtol=1e-9, atol=1e-9 * np.abs(U).max() ** 2)
    # rows of different scales, as a layer's outputs have
    W = (0.1 * rng.standard_normal((ROWS, N)) * np.exp(rng.uniform(-0.5, 0.5, (ROWS, 1)))).astype(np.float32)
    W_tie = W.copy()
    W_tie[:16, :16] = 0
    fixed = np.zeros(ROWS * N, bool)
    fixed[rng.permutation(ROWS * N)[:ROWS * N // 2]] = True
    fixed = fixed.reshape(ROWS, N)

    # name: (select, block, sparsity, (nm_n, nm_m), update, weights)
    cases = {
        "a_fixed": (FIXED, 16, 0.0, (0, 0), True, "W"),
        "b_layer": (LAYER, 16, 0.6, (0, 0), True, "W"),
        "c_row": (ROW, 16, 0.5, (0, 0), True, "W"),
        "d_nm": (NM, 8, 0.0, (2, 4), True, "W"),
        "e_layer_noupdate": (LAYER, 16, 0.6, (0, 0), False, "W"),
        "e_nm_noupdate": (NM, 8, 0.0, (2, 4), False, "W"),
        "f_fixed_b8": (FIXED, 8, 0.0, (0, 0), True, "W"),
        "f_fixed_b64": (FIXED, 64, 0.0, (0, 0), True, "W"),
        "f_row_b8": (ROW, 8, 0.5, (0, 0), True, "W"),
        "f_layer_b8": (LAYER, 8, 0.6, (0, 0), True, "W"),
        "f_layer_b64": (LAYER, 64, 0.6, (0, 0), True, "W"),
        "f_nm_b40": (NM, 40, 0.0, (2, 4), True, "W"),
        "f_nm_b64": (NM, 64, 0.0, (2, 4), True, "W"),
        "g_layer_ties": (LAYER, 16, 0.6, (0, 0), True, "W_tie"),
        "g_row_ties": (ROW, 16, 0.5, (0, 0), True, "W_tie"),
        "g_nm_ties": (NM, 8, 0.0, (2, 4), True, "W_tie"),
    }
    weights = {"W": W, "W_tie": W_tie}
    margins = Margins()
    results = {}
    worst32, worst_err32 = 0.0, 0.0
    for name, (sel, block, p, nm, update, wname) in cases.items():
        assert sel != NM or block % nm[1] == 0
        W0 = weights[wname]
        keep_in = fixed if sel == FIXED else None
        W_out, keep = sweep(W0, U, sel, block, p, nm, keep_in, update=update, margins=margins)
        # float32 cross-check: the masks must not depend on the precision
        W32, keep32 = sweep(W0, U.astype(np.float32), sel, block, p, nm, keep_in, update=update, dtype=np.float32)
        assert np.array_equal(keep, keep32), f"{name}: the float32 sweep chose another mask"
        W_out32 = W_out.astype(np.float32)
        worst32 = max(worst32, np.abs(W32 - W_out).max() / np.abs(W_out).max())
        assert np.all(W_out[~keep] == 0)
        W_masked = np.where(keep, W0, np.float32(0))
        W_ls = least_squares(H, W0, keep).astype(np.float32)
        r = dict(keep=keep, W_out=W_out32, W_ls=W_ls,
                 err2_mask=err2(H, W_masked, W0), err2_out=err2(H, W_out32, W0), err2_ls=err2(H, W_ls, W0),
                 norm2=err2(H, W0, np.zeros_like(W0)))
        worst_err32 = max(worst_err32, abs(err2(H, W32, W0) - r["err2_out"]) / r["err2_out"])
        r["ratio_ls"] = r["err2_out"] / r["err2_ls"]
        if update:
            assert r["err2_out"] <= r["err2_mask"], name
        results[name] = r
        print(f"{name:18s} pruned {int((~keep).sum()):4d}  err2 mask {r['err2_mask']:.6g}  out {r['err2_out']:.6g}  "
              f"LS {r['err2_ls']:.6g}  out/LS {r['ratio_ls']:.4f}  norm2 {r['norm2']:.6g}")
    # the relations the spec implies between cases
    assert np.array_equal(results["b_layer"]["keep"], results["e_layer_noupdate"]["keep"])
    assert np.array_equal(results["d_nm"]["keep"], results["e_nm_noupdate"]["keep"])
    assert np.array_equal(results["f_layer_b64"]["keep"], sweep(W, U, LAYER, N, 0.6)[1])
    for fx in ("f_fixed_b8", "f_fixed_b64"):
        assert np.abs(results[fx]["W_out"] - results["a_fixed"]["W_out"]).max() <= 1e-5 * np.abs(W).max()
    max_ratio = max(r["ratio_ls"] for n_, r in results.items() if cases[n_][4])
    print(f"smallest relative selection margin {margins.min_gap:.3g} ({margins.ties} boundaries at exact zero ties)")
    print(f"float32 sweep vs float64: max |dW| / max |W| {worst32:.3g}, err2 relative {worst_err32:.3g}")
    print(f"lambda_d {lam_d:.9g}, cond(H + lambda_d I) {np.linalg.cond(H + lam_d * np.eye(N)):.3g}, "
          f"max err2_out / err2_ls {max_ratio:.4f}")
    assert margins.min_gap > 1e-3, "a selection boundary too close for float32: change SEED"

    path = os.path.join(out, "obs.expected.h5")
    with h5py.File(path, "w") as f:
        f.attrs["description"] = "SparseGPT pruning and reconstruction, numpy reference (tests/reference/obs_ref.py)"
        for k, v in dict(rows=ROWS, n=N, Nd=ND, Ng=NG, dead=DEAD).items():
            f.attrs[k] = np.int64(v)
        for k, v in dict(lam=LAM, damp=DAMP, lambda_d=lam_d, max_ratio_ls=max_ratio).items():
            f.attrs[k] = np.float64(v)
        f.create_dataset("X_dom", data=X_dom, compression="gzip", shuffle=True)
        f.create_dataset("X_gen", data=X_gen, compression="gzip", shuffle=True)
        f.create_dataset("H", data=H)
        f.create_dataset("U", data=U)
        f.create_dataset("W", data=W)
        f.create_dataset("W_tie", data=W_tie)
        for name, (sel, block, p, nm, update, wname) in cases.items():
            g = f.create_group(f"cases/{name}")
            r = results[name]
            for k, v in dict(select=sel, block=block, nm_n=nm[0], nm_m=nm[1], update=int(update)).items():
                g.attrs[k] = np.int64(v)
            g.attrs["sparsity"] = np.float64(p)
            g.attrs["weights"] = np.bytes_(wname)
            for k in ("err2_mask", "err2_out", "err2_ls", "norm2", "ratio_ls"):
                g.attrs[k] = np.float64(r[k])
            g.create_dataset("keep", data=r["keep"].astype(np.uint8), compression="gzip")
            g.create_dataset("W_out", data=r["W_out"])
            g.create_dataset("W_ls", data=r["W_ls"])
    print("wrote", path)


if __name__ == "__main__":
    main()
