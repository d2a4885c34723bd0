/* obs.c — Optimal Brain Surgeon reconstruction of a pruned linear layer (see obs.h). */
#include "gaprune/obs.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/prune.h"

/* LAPACK's Cholesky factorization and inverse from OpenBLAS, through the Fortran interface:
 * Debian's libopenblas exports them (dpotrf_, dpotri_) but not LAPACKE, and these two calls need
 * no more than the prototypes. Column-major; on a symmetric matrix stored full and row-major, the
 * "L" of the Fortran view is the row-major upper triangle. */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);

/* a size for gp_malloc: at least 1 */
static size_t nz(int64_t k) { return k > 0 ? (size_t)k : 1; }

int64_t gp_obs_floor(double p, int64_t n) { return (int64_t)floor(p * (double)n + 1e-9); }

void gp_hessian_add(double *H, const float *X, int64_t N, int64_t n, double weight, float *scratch) {
    if (N <= 0) return;
    /* scratch (upper, row-major) = XᵀX: one BLAS-3 call for the batch */
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)N, 1.0f, X, (int)n, 0.0f, scratch, (int)n);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++) {
            const double v = weight * (double)scratch[i * n + j];
            H[i * n + j] += v;
            if (j != i) H[j * n + i] += v;
        }
}

gp_status gp_obs_factor(const double *H, int64_t n, double dampening, float *U, double *lambda, gp_err *err) {
    if (n > 46340) /* LAPACK's int dimensions; n² must fit one too */
        return gp_errf(err, GP_EINPUT, "a layer of %lld inputs is beyond the reconstruction's LAPACK calls", (long long)n);
    double mean = 0;
    for (int64_t i = 0; i < n; i++) mean += H[i * n + i];
    mean /= (double)(n ? n : 1);
    const double lam = mean > 0 ? dampening * mean : dampening;
    *lambda = lam;
    double *A = gp_malloc(nz(n * n) * sizeof(double));
    memcpy(A, H, (size_t)(n * n) * sizeof(double));
    for (int64_t i = 0; i < n; i++) A[i * n + i] += lam;
    const int ni = (int)n;
    int info = 0;
    /* row-major upper = column-major lower: A = L Lᵀ, then A⁻¹ in the same triangle */
    dpotrf_("L", &ni, A, &ni, &info);
    if (!info) dpotri_("L", &ni, A, &ni, &info);
    if (info) {
        free(A);
        return gp_errf(err, GP_EINPUT,
                       "the layer's input Hessian plus dampening %g is not positive definite (LAPACK info %d): raise "
                       "prune.dampening",
                       dampening, info);
    }
    /* A⁻¹ is in the row-major upper triangle; mirror it, then factor A⁻¹ = UᵀU with U row-major upper
     * (column-major lower of the same storage: Lᶜ Lᶜᵀ where Lᶜ = Uᵀ) */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) A[j * n + i] = A[i * n + j];
    dpotrf_("L", &ni, A, &ni, &info);
    if (info) {
        free(A);
        return gp_errf(err, GP_EINPUT, "the inverse of the layer's input Hessian is not positive definite (LAPACK info %d): "
                       "raise prune.dampening", info);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) U[i * n + j] = j >= i ? (float)A[i * n + j] : 0.0f;
    free(A);
    return GP_OK;
}

/* (saliency, index) pairs ordered for the lowest-first selections, ties to the lower index */
typedef struct {
    float s;
    int64_t i;
} sal_ix;

static int by_sal(const void *a, const void *b) {
    const sal_ix *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static inline float saliency(float w, float d) { return (w * w) / (d * d); }

void gp_obs_pick_lowest(const float *sal, int64_t N, int64_t k, uint8_t *prune) {
    sal_ix *v = gp_malloc(nz(N) * sizeof *v);
    for (int64_t i = 0; i < N; i++) v[i] = (sal_ix){sal[i], i};
    qsort(v, (size_t)N, sizeof *v, by_sal);
    memset(prune, 0, (size_t)N);
    for (int64_t i = 0; i < k && i < N; i++) prune[v[i].i] = 1;
    free(v);
}

gp_status gp_obs_prune(float *W, int64_t rows, int64_t n, const float *U, const gp_obs_opts *o, uint8_t *keep, gp_err *err) {
    const int64_t B = o->block > 0 ? o->block : 128;
    const int64_t R = o->tensor_rows > 0 ? o->tensor_rows : rows;
    /* sub-blocks of the sweep: 32 columns, a whole number of n:m groups (B is one too) */
    int64_t IB = 32;
    if (o->select == GP_OBS_NM && o->nm_m > 0) IB = (IB + o->nm_m - 1) / o->nm_m * o->nm_m;
    if (IB > B) IB = B;
    if (o->select == GP_OBS_NM && (o->nm_m <= 0 || n % o->nm_m || B % o->nm_m))
        return gp_errf(err, GP_EINPUT, "n:m reconstruction needs the width %lld and prune.block %lld to be multiples of %d",
                       (long long)n, (long long)B, o->nm_m);
    float *orig = o->update ? NULL : gp_malloc(nz(rows * n) * sizeof(float));
    if (orig) memcpy(orig, W, (size_t)(rows * n) * sizeof(float));
    float *Err = gp_malloc(nz(rows * B) * sizeof(float));
    uint8_t *prune = gp_malloc(nz(rows * B)); /* the block's choice: 1 = pruned */
    float *sal = o->select == GP_OBS_LAYER ? gp_malloc(nz(rows * B) * sizeof(float)) : NULL;
    gp_status rc = GP_OK;
    for (int64_t i1 = 0; i1 < n && !rc; i1 += B) {
        const int64_t i2 = i1 + B < n ? i1 + B : n, count = i2 - i1;
        if (o->select == GP_OBS_FIXED) {
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < count; c++) prune[r * count + c] = !gp_bit_get(keep, r * n + i1 + c);
        } else if (o->select == GP_OBS_LAYER) {
            const int64_t k = gp_obs_floor(o->sparsity, R * i2) - gp_obs_floor(o->sparsity, R * i1);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < count; c++) sal[r * count + c] = saliency(W[r * n + i1 + c], U[(i1 + c) * n + i1 + c]);
            if (o->pick) rc = o->pick(o->pick_ctx, sal, rows, count, k, prune, err);
            else gp_obs_pick_lowest(sal, rows * count, k, prune);
            if (rc) break;
        } else if (o->select == GP_OBS_ROW) {
            const int64_t k = gp_obs_floor(o->sparsity, i2) - gp_obs_floor(o->sparsity, i1);
#pragma omp parallel
            {
                sal_ix *v = gp_malloc((size_t)count * sizeof *v);
#pragma omp for schedule(static)
                for (int64_t r = 0; r < rows; r++) {
                    for (int64_t c = 0; c < count; c++) v[c] = (sal_ix){saliency(W[r * n + i1 + c], U[(i1 + c) * n + i1 + c]), c};
                    qsort(v, (size_t)count, sizeof *v, by_sal);
                    memset(prune + r * count, 0, (size_t)count);
                    for (int64_t c = 0; c < k; c++) prune[r * count + v[c].i] = 1;
                }
                free(v);
            }
        }
        /* the sweep over the block's columns in sub-blocks of IB: inside a sub-block each row on its
         * own (the rank-1 updates, vectorised along the row), then the rest of the block by one
         * product, so that most of the block's work is BLAS-3 too */
        for (int64_t j1 = i1; j1 < i2; j1 += IB) {
            const int64_t j2 = j1 + IB < i2 ? j1 + IB : i2;
#pragma omp parallel for schedule(static)
            for (int64_t r = 0; r < rows; r++) {
                float *w = W + r * n;
                uint8_t *pr = prune + r * count;
                float *e = Err + r * count;
                for (int64_t i = j1; i < j2; i++) {
                    const int64_t c = i - i1;
                    if (o->select == GP_OBS_NM && i % o->nm_m == 0) { /* the group's m − n lowest, from w as it is now */
                        sal_ix v[64];
                        const int m = o->nm_m;
                        for (int g = 0; g < m; g++) v[g] = (sal_ix){saliency(w[i + g], U[(i + g) * n + i + g]), g};
                        qsort(v, (size_t)m, sizeof *v, by_sal);
                        for (int g = 0; g < m; g++) pr[c + g] = 0;
                        for (int g = 0; g < m - o->nm_n; g++) pr[c + v[g].i] = 1;
                    }
                    const float d = U[i * n + i];
                    const float q = pr[c] ? 0.0f : w[i];
                    const float ei = (w[i] - q) / d;
                    e[c] = ei;
                    if (ei != 0.0f) {
                        const float *u = U + i * n;
                        for (int64_t j = i + 1; j < j2; j++) w[j] -= ei * u[j];
                    }
                    w[i] = q;
                }
            }
            if (j2 < i2 && rows > 0) /* W[:, j2:i2] −= Err[:, j1:j2] · U[j1:j2, j2:i2] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)(i2 - j2), (int)(j2 - j1), -1.0f,
                            Err + (j1 - i1), (int)count, U + j1 * n + j2, (int)n, 1.0f, W + j2, (int)n);
        }
        /* the columns after the block: W[:, i2:] −= Err · U[i1:i2, i2:] */
        if (i2 < n && rows > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)(n - i2), (int)count, -1.0f, Err,
                        (int)count, U + i1 * n + i2, (int)n, 1.0f, W + i2, (int)n);
        if (o->select != GP_OBS_FIXED)
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < count; c++) gp_bit_set(keep, r * n + i1 + c, !prune[r * count + c]);
    }
    if (!rc && orig) /* the mask alone: the dense values where kept */
        for (int64_t k = 0; k < rows * n; k++) W[k] = gp_bit_get(keep, k) ? orig[k] : 0.0f;
    free(orig), free(Err), free(prune), free(sal);
    return rc;
}

void gp_obs_output_error(const double *H, int64_t n, const float *a, const float *b, int64_t rows, double *err2,
                         double *norm2) {
    /* in chunks of rows: D = a − b and b in double, then D·H and b·H as BLAS-3 products */
    const int64_t chunk = 256;
    double *D = gp_malloc(nz(chunk * 2 * n) * sizeof(double));
    double *P = gp_malloc(nz(chunk * 2 * n) * sizeof(double));
    double e = 0, y = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t nr = r0 + chunk < rows ? chunk : rows - r0;
        for (int64_t r = 0; r < nr; r++)
            for (int64_t j = 0; j < n; j++) {
                const int64_t k = (r0 + r) * n + j;
                D[r * n + j] = (double)a[k] - (double)b[k];
                D[(nr + r) * n + j] = (double)b[k];
            }
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, (int)(2 * nr), (int)n, 1.0, H, (int)n, D, (int)n, 0.0, P, (int)n);
        for (int64_t k = 0; k < nr * n; k++) e += D[k] * P[k];
        for (int64_t k = nr * n; k < 2 * nr * n; k++) y += D[k] * P[k];
    }
    free(D), free(P);
    *err2 += e;
    *norm2 += y;
}
