/*
 * obs.h — one-shot reconstruction of a pruned linear layer by Optimal Brain Surgeon steps, as
 * SparseGPT (Frantar & Alistarh 2023) performs them: the kept weights of each row are updated
 * so that the layer's outputs on calibration inputs stay close to the dense layer's, and
 * SparseGPT's own adaptive mask (docs/DESIGN.md §5.9).
 *
 * A linear layer y = x Wᵀ with W [rows, n] and inputs X [N, n] is summarised by H = XᵀX (any
 * positive weighting of several corpora: the stage's H = X_domᵀX_dom / N_dom + λ X_genᵀX_gen /
 * N_gen). The output error of W' against W is Σ_r (w'_r − w_r) H (w'_r − w_r)ᵀ = ‖X W'ᵀ − X Wᵀ‖²,
 * so everything here works from H alone, never from X.
 *
 * The update: with λ_d = dampening · mean(diag H) added to the diagonal, U is the upper Cholesky
 * factor of (H + λ_d I)⁻¹ = UᵀU. Columns are visited left to right in blocks of `block`; at column
 * i each row's weight w_i becomes q_i (itself when kept, 0 when pruned), the error e = (w_i − q_i) /
 * U_ii is spread over the columns to its right, w_j −= e · U_ij (j > i), inside the block at once
 * and for the columns after it in one matrix product per block (SparseGPT's lazy batch update,
 * BLAS-3). Rows are independent once U is known, so a rank (and a thread) may take any rows.
 *
 * Masks (gp_obs_select): FIXED takes the caller's; the others choose SparseGPT's saliency
 * w_i² / U_ii² from the weights as updated so far: ROW the floor(p·c1) − floor(p·c0) lowest of
 * each row in each column block [c0, c1) (so floor(p·n) a row); LAYER the floor(p·R·c1) −
 * floor(p·R·c0) lowest of a whole column block of all R rows of the tensor (floor(p·R·n) a
 * tensor; across ranks through `pick`); NM the m − n lowest of every m consecutive columns,
 * chosen when the sweep reaches the group's first column. Ties go to the lower index (the row,
 * then the column, for LAYER; the column otherwise).
 *
 * Usage:
 *     float *U = malloc(n * n * sizeof *U); double lambda;
 *     gp_obs_factor(H, n, 0.01, U, &lambda, &err);
 *     gp_obs_opts o = {.select = GP_OBS_FIXED, .block = 128, .update = true};
 *     gp_obs_prune(W, rows, n, U, &o, keep, &err);         // W updated, pruned entries 0
 *     gp_obs_output_error(H, n, W_new, W_dense, rows, &e2, &y2);   // relative error √(e2 / y2)
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"

/* H += weight · XᵀX for X [N, n] (float, row-major): the product in float32 into scratch [n, n]
 * (a whole batch's, so its rounding does not depend on who computes it), then added in double.
 * H is kept full (both triangles). */
void gp_hessian_add(double *H, const float *X, int64_t N, int64_t n, double weight, float *scratch);

/* U [n, n] (row-major, upper triangle; the lower is zeroed) with UᵀU = (H + λ_d I)⁻¹, λ_d =
 * dampening · mean(diag H) (dampening itself when that mean is 0: no input reached the layer).
 * The factorization runs in double through LAPACK (dpotrf, dpotri, dpotrf). *lambda gets λ_d.
 * GP_EINPUT when H + λ_d I is not positive definite (a dampening of 0 with dependent inputs). */
gp_status gp_obs_factor(const double *H, int64_t n, double dampening, float *U, double *lambda, gp_err *err);

typedef enum { GP_OBS_FIXED = 0, GP_OBS_ROW = 1, GP_OBS_LAYER = 2, GP_OBS_NM = 3 } gp_obs_select;

/* LAYER across ranks: of the saliencies sal [rows, count] of this rank's rows of a column block
 * (the ranks' rows one after the other in rank order make the tensor's), prune the k lowest of
 * all ranks' together, ties to the lower tensor row, then column: prune[rows · count] gets 1 for
 * this rank's pruned elements. Collective over the ranks that share the tensor's rows. */
typedef gp_status (*gp_obs_pick_fn)(void *ctx, const float *sal, int64_t rows, int64_t count, int64_t k, uint8_t *prune,
                                    gp_err *err);

typedef struct {
    gp_obs_select select;
    int block;           /* columns per lazy block (SparseGPT's 128) */
    double sparsity;     /* ROW, LAYER: p */
    int nm_n, nm_m;      /* NM: keep n of every m */
    int64_t tensor_rows; /* LAYER: R, the rows of the whole tensor (rows when 0) */
    gp_obs_pick_fn pick; /* LAYER: the selection over ranks; NULL: these rows are the whole tensor */
    void *pick_ctx;
    bool update; /* true: W gets the reconstructed weights; false: W keeps its values, pruned ones 0 (the
                  * mask SparseGPT chooses, without its update) */
} gp_obs_opts;

/* Prunes and (with o->update) reconstructs rows [rows, n] of a tensor, given U of gp_obs_factor.
 * keep holds rows · n bits (bit k of byte k/8; 1 = keep), row-major: read with FIXED, written
 * otherwise. Pruned weights end exactly +0. Rows run in parallel over OpenMP threads, the lazy
 * update through OpenBLAS; the result does not depend on the thread count. */
gp_status gp_obs_prune(float *W, int64_t rows, int64_t n, const float *U, const gp_obs_opts *o, uint8_t *keep, gp_err *err);

/* err2 = Σ_r (a_r − b_r) H (a_r − b_r)ᵀ and norm2 = Σ_r b_r H b_rᵀ over rows [rows, n] of two
 * weight matrices: ‖X aᵀ − X bᵀ‖² and ‖X bᵀ‖² for the inputs H summarises. Added to *err2 and *norm2. */
void gp_obs_output_error(const double *H, int64_t n, const float *a, const float *b, int64_t rows, double *err2,
                         double *norm2);

/* The k lowest of sal[0..N) marked 1 in prune[0..N) (the rest 0), in the order (value, index): ties
 * to the lower index, so [rows, count] row-major goes by row, then column. */
void gp_obs_pick_lowest(const float *sal, int64_t N, int64_t k, uint8_t *prune);

/* The exact count the cumulative floors give: floor(p · n + 1e-9) (the 1e-9 makes 0.3 · 10 give 3). */
int64_t gp_obs_floor(double p, int64_t n);
