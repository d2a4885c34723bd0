/* kernels.c — layer kernels, forward and backward (see kernels.h for shapes and conventions).
 *
 * Matrix products go through cblas_sgemm; everything else is a plain loop written so that the
 * compiler vectorises it. Reductions over a row (LayerNorm statistics, softmax sums, norms) are
 * accumulated in double: they are cheap next to the matmuls and keep the float error at the
 * level of one rounding.
 *
 * Threads (docs/DESIGN.md §4.7): everything runs on OpenMP's threads. A big matmul is split into
 * blocks of rows or columns of its output, one one-thread OpenBLAS call each (gp_sgemm); the
 * attention runs one (sequence, head) per task; the other loops go over independent rows, heads
 * or elements. No element's sum is ever split between threads: where rows add into one parameter
 * gradient (LayerNorm and RMSNorm weights, biases, embedding rows) the threads split the columns
 * and every column still adds its rows in row order. So the loops give bitwise the same results
 * on any number of threads; a split matmul differs from one call in the last bits (gp_sgemm).
 */
#include "gaprune/kernels.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/bf16.h"
#include "gaprune/check.h"
#include "gaprune/vmath.h"

/* Below about this many floats of work a loop stays on the calling thread: waking the team costs
 * microseconds, which a LayerNorm of a few short sequences does not repay. Tests lower it to 0 so
 * that the tiny fixture models run every loop threaded. */
static int64_t par_min = 32768;
#define PAR_MIN par_min
/* Matmuls of fewer multiply-adds than this run as one call: below ~1 MFLOP a split does not pay. */
static int64_t sgemm_min = 262144;
/* Elementwise loops go in blocks of this many (a multiple of 8, so every block but the last takes
 * the same 8-wide path as one thread would, and the last the same scalar tail). */
#define BLOCK 4096
/* Columns per task where threads split the columns of a sum over rows. */
#define COLS 64

/* OpenBLAS runs one thread per call, always: gp_sgemm splits the matmuls over the OpenMP threads
 * instead. Debian's OpenBLAS is the pthread build, whose own pool would spin on the same cores as
 * OpenMP's team between calls (one pool, one knob: OMP_NUM_THREADS). Neither way is bitwise
 * equal to one call: OpenBLAS picks its kernel code by the shape it is given (its own threads
 * moved the fixtures' embeddings by up to 4e-7, the split by 3e-7). Set before main (shared
 * libraries, OpenBLAS among them, are initialised before the program's constructors). */
__attribute__((constructor)) static void blas_one_thread(void) { openblas_set_num_threads(1); }

void gp_set_threads(int n) { omp_set_num_threads(n < 1 ? 1 : n); }

int gp_threads(void) { return omp_get_max_threads(); }

void gp_set_par_min(int64_t floats) { par_min = floats < 0 ? 0 : floats; }

int64_t gp_par_min(void) { return par_min; }

void gp_set_sgemm_min(int64_t madds) { sgemm_min = madds < 0 ? 0 : madds; }

int64_t gp_sgemm_min(void) { return sgemm_min; }

static int min_int(int a, int b) { return a < b ? a : b; }

/* Splits [0, n) into `parts` blocks whose edges are multiples of 16 (whole register tiles of the
 * sgemm kernels); block p is [*b0, *b1). */
static void split16(int n, int parts, int p, int *b0, int *b1) {
    const int units = (n + 15) / 16;
    *b0 = min_int(16 * (int)((int64_t)units * p / parts), n);
    *b1 = min_int(16 * (int)((int64_t)units * (p + 1) / parts), n);
}

void gp_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc) {
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    const int nt = omp_get_max_threads();
    /* small ones run as one call; otherwise the longer side of C is split */
    if (nt == 1 || (int64_t)M * N * K < sgemm_min || (M < 32 && N < 32)) {
        if (M > 0 && N > 0) cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const int by_cols = N >= M, len = by_cols ? N : M;
    const int parts = min_int(nt, (len + 15) / 16);
#pragma omp parallel for num_threads(parts) schedule(static)
    for (int p = 0; p < parts; p++) {
        int b0, b1;
        split16(len, parts, p, &b0, &b1);
        if (b1 <= b0) continue;
        if (by_cols)
            cblas_sgemm(CblasRowMajor, ta, tb, M, b1 - b0, K, alpha, A, lda, trans_b ? B + (size_t)b0 * ldb : B + b0,
                        ldb, beta, C + b0, ldc);
        else
            cblas_sgemm(CblasRowMajor, ta, tb, b1 - b0, N, K, alpha, trans_a ? A + b0 : A + (size_t)b0 * lda, lda, B,
                        ldb, beta, C + (size_t)b0 * ldc, ldc);
    }
}

static gp_compute compute = GP_COMPUTE_F32;

void gp_set_compute(gp_compute c) { compute = c; }

gp_compute gp_compute_get(void) { return compute; }

const char *const gp_compute_names[] = {"f32", "bf16", NULL};

const char *gp_compute_tag(void) { return compute == GP_COMPUTE_F32 ? "" : "; compute bf16"; }

/* The BF16 copies of a matmul's operands, grown as needed and kept (one product at a time runs). */
typedef struct {
    gp_bf16 *p;
    int64_t cap;
} bf16_buf;
static bf16_buf bf16_w, bf16_x, bf16_d;

static const gp_bf16 *to_bf16(bf16_buf *b, const float *x, int64_t n) {
    if (n > b->cap) {
        free(b->p);
        b->p = gp_malloc((size_t)n * sizeof(gp_bf16));
        b->cap = n;
    }
    gp_bf16_from_f32(b->p, x, n);
    return b->p;
}

void gp_matmul_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
    float beta = 0.0f;
    if (b) {
#pragma omp parallel for if ((int64_t)N * OC >= PAR_MIN) schedule(static)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, b, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    if (compute == GP_COMPUTE_BF16)
        gp_bf16_gemm(0, 1, N, OC, C, to_bf16(&bf16_x, inp, (int64_t)N * C), C, to_bf16(&bf16_w, w, (int64_t)OC * C), C,
                     beta, out, OC);
    else
        gp_sgemm(0, 1, N, OC, C, 1.0f, inp, C, w, C, beta, out, OC);
}

void gp_matmul_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        int N, int C, int OC) {
    if (compute == GP_COMPUTE_BF16 && (dinp || dw)) {
        const gp_bf16 *d16 = to_bf16(&bf16_d, dout, (int64_t)N * OC);
        if (dinp) gp_bf16_gemm(0, 0, N, C, OC, d16, OC, to_bf16(&bf16_w, w, (int64_t)OC * C), C, 1.0f, dinp, C);
        if (dw) gp_bf16_gemm(1, 0, OC, C, N, d16, OC, to_bf16(&bf16_x, inp, (int64_t)N * C), C, 1.0f, dw, C);
    } else {
        if (dinp) gp_sgemm(0, 0, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
        if (dw) gp_sgemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    }
    if (!db) return;
    /* threads split the columns; each column sums its rows in row order */
#pragma omp parallel for if ((int64_t)N * OC >= PAR_MIN) schedule(static)
    for (int o0 = 0; o0 < OC; o0 += COLS) {
        const int o1 = min_int(o0 + COLS, OC);
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * OC;
            for (int o = o0; o < o1; o++) db[o] += d[o];
        }
    }
}

void gp_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                          int N, int C, float eps) {
#pragma omp parallel for if ((int64_t)N * C >= PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double s = 0.0;
        for (int i = 0; i < C; i++) s += x[i];
        float m = (float)(s / C);
        double v = 0.0;
        for (int i = 0; i < C; i++) {
            float d = x[i] - m;
            v += (double)d * d;
        }
        float r = (float)(1.0 / sqrt(v / C + (double)eps));
        for (int i = 0; i < C; i++) y[i] = (x[i] - m) * r * w[i] + b[i];
        mean[n] = m;
        rstd[n] = r;
    }
}

void gp_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                           const float *mean, const float *rstd, int N, int C) {
    const int par = (int64_t)N * C >= PAR_MIN;
#pragma omp parallel if (par)
    {
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float m = mean[n], r = rstd[n];
            double sd = 0.0, sdn = 0.0;
            for (int i = 0; i < C; i++) {
                float xhat = (x[i] - m) * r, dn = dy[i] * w[i];
                sd += dn;
                sdn += (double)dn * xhat;
            }
            float md = (float)(sd / C), mdn = (float)(sdn / C);
            for (int i = 0; i < C; i++) {
                float xhat = (x[i] - m) * r;
                dx[i] += (dy[i] * w[i] - md - xhat * mdn) * r;
            }
        }
        /* dw and db sum over rows: threads split the columns, rows stay in order */
#pragma omp for schedule(static)
        for (int i0 = 0; i0 < C; i0 += COLS) {
            const int i1 = min_int(i0 + COLS, C);
            for (int n = 0; n < N && (dw || db); n++) {
                const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
                float m = mean[n], r = rstd[n];
                if (db)
                    for (int i = i0; i < i1; i++) db[i] += dy[i];
                if (dw)
                    for (int i = i0; i < i1; i++) dw[i] += dy[i] * ((x[i] - m) * r);
            }
        }
    }
}

static void gelu_forward_range(float *out, const float *inp, int64_t i, int64_t n) {
#ifdef GP_HAVE_AVX2
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), r2 = _mm256_set1_ps((float)M_SQRT1_2);
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(inp + i);
        __m256 cdf = _mm256_mul_ps(half, _mm256_add_ps(one, gp_erf8(_mm256_mul_ps(x, r2))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(x, cdf));
    }
#endif
    for (; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + gp_erff(x * (float)M_SQRT1_2));
    }
}

static void gelu_backward_range(float *dinp, const float *inp, const float *dout, int64_t i, int64_t n) {
    const float k = 0.3989422804014327f; /* 1/sqrt(2π) */
#ifdef GP_HAVE_AVX2
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), r2 = _mm256_set1_ps((float)M_SQRT1_2),
                 kk = _mm256_set1_ps(k), mhalf = _mm256_set1_ps(-0.5f);
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(inp + i);
        __m256 cdf = _mm256_mul_ps(half, _mm256_add_ps(one, gp_erf8(_mm256_mul_ps(x, r2))));
        __m256 pdf = _mm256_mul_ps(kk, gp_exp8(_mm256_mul_ps(mhalf, _mm256_mul_ps(x, x))));
        __m256 g = _mm256_fmadd_ps(x, pdf, cdf);
        _mm256_storeu_ps(dinp + i, _mm256_fmadd_ps(_mm256_loadu_ps(dout + i), g, _mm256_loadu_ps(dinp + i)));
    }
#endif
    for (; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + gp_erff(x * (float)M_SQRT1_2));
        float pdf = k * gp_expf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

void gp_gelu_forward(float *out, const float *inp, int64_t n) {
    const int64_t nb = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t b = 0; b < nb; b++) gelu_forward_range(out, inp, b * BLOCK, b == nb - 1 ? n : (b + 1) * BLOCK);
}

void gp_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n) {
    const int64_t nb = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t b = 0; b < nb; b++) gelu_backward_range(dinp, inp, dout, b * BLOCK, b == nb - 1 ? n : (b + 1) * BLOCK);
}

/* y = x r w: the one expression the forward and gp_rmsnorm_apply share, so that both round alike. */
static inline void rms_scale(float *y, const float *x, float r, const float *w, int C) {
    for (int i = 0; i < C; i++) y[i] = x[i] * r * w[i];
}

void gp_rmsnorm_forward(float *out, int ldo, float *rstd, const float *inp, int ldi, const float *w, int N, int H,
                        int C, float eps) {
#pragma omp parallel for collapse(2) if ((int64_t)N * H * C >= PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            const float *x = inp + (size_t)n * ldi + (size_t)h * C;
            float *y = out + (size_t)n * ldo + (size_t)h * C;
            double ss = 0.0;
            for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
            float r = (float)(1.0 / sqrt(ss / C + (double)eps));
            rms_scale(y, x, r, w, C);
            rstd[(size_t)n * H + h] = r;
        }
}

void gp_rmsnorm_apply(float *out, int ldo, const float *rstd, const float *inp, int ldi, const float *w, int N, int H,
                      int C) {
#pragma omp parallel for collapse(2) if ((int64_t)N * H * C >= PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            rms_scale(out + (size_t)n * ldo + (size_t)h * C, inp + (size_t)n * ldi + (size_t)h * C,
                      rstd[(size_t)n * H + h], w, C);
}

void gp_rmsnorm_backward(float *dinp, float *dw, const float *dout, int ldo, const float *inp, int ldi,
                         const float *w, const float *rstd, int N, int H, int C) {
    const int par = (int64_t)N * H * C >= PAR_MIN;
#pragma omp parallel if (par)
    {
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < N; n++)
            for (int h = 0; h < H; h++) {
                const float *x = inp + (size_t)n * ldi + (size_t)h * C, *dy = dout + (size_t)n * ldo + (size_t)h * C;
                float *dx = dinp + (size_t)n * ldi + (size_t)h * C;
                const float r = rstd[(size_t)n * H + h];
                /* y = w x r with r = (mean x² + eps)^(-1/2): dx = r (w dy) − r³ x Σ(w dy x) / C */
                double s = 0.0;
                for (int i = 0; i < C; i++) s += (double)dy[i] * w[i] * x[i];
                const float k = (float)(s / C) * r * r * r;
                for (int i = 0; i < C; i++) dx[i] += dy[i] * w[i] * r - x[i] * k;
            }
        /* dw sums over rows and heads: threads split the channels, the (row, head) order stays */
#pragma omp for schedule(static)
        for (int i0 = 0; i0 < C; i0 += COLS) {
            const int i1 = min_int(i0 + COLS, C);
            for (int n = 0; n < N && dw; n++)
                for (int h = 0; h < H; h++) {
                    const float *x = inp + (size_t)n * ldi + (size_t)h * C, *dy = dout + (size_t)n * ldo + (size_t)h * C;
                    const float r = rstd[(size_t)n * H + h];
                    for (int i = i0; i < i1; i++) dw[i] += dy[i] * x[i] * r;
                }
        }
    }
}

void gp_rope_tables(float *cos_t, float *sin_t, const int32_t *pos, int N, int hs, double theta) {
    const int half = hs / 2;
    float inv[half > 0 ? half : 1];
    /* transformers: inv_freq = 1 / base^(arange(0, hs, 2).float() / hs), angle = inv_freq * pos,
     * all float32; cos and sin of that float32 angle */
    for (int i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)hs;
        inv[i] = 1.0f / (float)pow(theta, (double)e);
    }
#pragma omp parallel for if ((int64_t)N * half >= PAR_MIN / 8) schedule(static)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < half; i++) {
            float a = inv[i] * (float)pos[n];
            cos_t[(size_t)n * half + i] = (float)cos((double)a);
            sin_t[(size_t)n * half + i] = (float)sin((double)a);
        }
}

static void rope_rotate(float *x, int ld, const float *cos_t, const float *sin_t, int N, int H, int hs, float sign) {
    const int half = hs / 2;
#pragma omp parallel for if ((int64_t)N * H * hs >= PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *c = cos_t + (size_t)n * half, *sn = sin_t + (size_t)n * half;
        for (int h = 0; h < H; h++) {
            float *a = x + (size_t)n * ld + (size_t)h * hs, *b = a + half;
            for (int i = 0; i < half; i++) {
                float s = sign * sn[i], x1 = a[i], x2 = b[i];
                a[i] = x1 * c[i] - x2 * s;
                b[i] = x2 * c[i] + x1 * s;
            }
        }
    }
}

void gp_rope_forward(float *x, int ld, const float *cos_t, const float *sin_t, int N, int H, int hs) {
    rope_rotate(x, ld, cos_t, sin_t, N, H, hs, 1.0f);
}

void gp_rope_backward(float *dx, int ld, const float *cos_t, const float *sin_t, int N, int H, int hs) {
    rope_rotate(dx, ld, cos_t, sin_t, N, H, hs, -1.0f); /* the transpose of a rotation is the opposite turn */
}

/* sigmoid and silu of a row; exp(-g) is 0 beyond g = 87, where silu(g) = g to float precision */
void gp_swiglu_forward(float *out, const float *gu, int N, int F) {
#pragma omp parallel for if ((int64_t)N * F >= PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *g = gu + (size_t)n * 2 * F, *u = g + F;
        float *o = out + (size_t)n * F;
        int i = 0;
#ifdef GP_HAVE_AVX2
        const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
        for (; i + 8 <= F; i += 8) {
            __m256 x = _mm256_loadu_ps(g + i);
            __m256 e = gp_exp8(_mm256_xor_ps(x, neg));
            __m256 silu = _mm256_div_ps(x, _mm256_add_ps(one, e));
            _mm256_storeu_ps(o + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
        }
#endif
        for (; i < F; i++) o[i] = g[i] / (1.0f + gp_expf(-g[i])) * u[i];
    }
}

void gp_swiglu_backward(float *dgu, const float *dout, const float *gu, int N, int F) {
#pragma omp parallel for if ((int64_t)N * F >= PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *g = gu + (size_t)n * 2 * F, *u = g + F, *d = dout + (size_t)n * F;
        float *dg = dgu + (size_t)n * 2 * F, *du = dg + F;
        int i = 0;
#ifdef GP_HAVE_AVX2
        const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
        for (; i + 8 <= F; i += 8) {
            __m256 x = _mm256_loadu_ps(g + i), dd = _mm256_loadu_ps(d + i);
            __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, gp_exp8(_mm256_xor_ps(x, neg))));
            __m256 silu = _mm256_mul_ps(x, sg);
            /* silu'(x) = σ(x) (1 + x (1 − σ(x))) */
            __m256 dsilu = _mm256_mul_ps(sg, _mm256_fmadd_ps(x, _mm256_sub_ps(one, sg), one));
            _mm256_storeu_ps(dg + i, _mm256_fmadd_ps(_mm256_mul_ps(dd, _mm256_loadu_ps(u + i)), dsilu, _mm256_loadu_ps(dg + i)));
            _mm256_storeu_ps(du + i, _mm256_fmadd_ps(dd, silu, _mm256_loadu_ps(du + i)));
        }
#endif
        for (; i < F; i++) {
            float sg = 1.0f / (1.0f + gp_expf(-g[i]));
            dg[i] += d[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
            du[i] += d[i] * g[i] * sg;
        }
    }
}

/* Row softmax of P[L,L] in place; causal rows stop at the diagonal (the rest become 0). */
static void softmax_rows(float *P, int L, int causal) {
    for (int i = 0; i < L; i++) {
        float *p = P + (size_t)i * L;
        int n = causal ? i + 1 : L;
        float mx = p[0];
        for (int j = 1; j < n; j++) mx = p[j] > mx ? p[j] : mx;
        for (int j = 0; j < n; j++) p[j] = p[j] - mx;
        gp_expf_inplace(p, n);
        double s = 0.0;
        for (int j = 0; j < n; j++) s += p[j];
        float inv = (float)(1.0 / s);
        for (int j = 0; j < n; j++) p[j] *= inv;
        for (int j = n; j < L; j++) p[j] = 0.0f;
    }
}

/* P[L,L] = softmax(Q K^T / sqrt(hs)) of one (sequence, head): the forward's and, made again by the
 * same calls, the backward's (so bitwise the same probabilities). */
static void attention_probs(float *P, const float *Q, int ldq, const float *K, int ldk, int L, int hs, int causal) {
    const float scale = 1.0f / sqrtf((float)hs);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hs, scale, Q, ldq, K, ldk, 0.0f, P, L);
    softmax_rows(P, L, causal);
}

int64_t gp_attention_cache_size(const int *offsets, int B, int NH) {
    int64_t s = 0;
    for (int b = 0; b < B; b++) {
        int64_t L = offsets[b + 1] - offsets[b];
        s += L * L;
    }
    return s * NH;
}

/* Where each sequence's probabilities start in att: NH·Σ_{b'<b} len_b'² (B + 1 entries). */
static size_t *att_offsets(const int *offsets, int B, int NH) {
    size_t *o = gp_malloc((size_t)(B + 1) * sizeof(size_t));
    o[0] = 0;
    for (int b = 0; b < B; b++) {
        const size_t L = (size_t)(offsets[b + 1] - offsets[b]);
        o[b + 1] = o[b] + (size_t)NH * L * L;
    }
    return o;
}

static int longest(const int *offsets, int B) {
    int maxL = 0;
    for (int b = 0; b < B; b++) maxL = offsets[b + 1] - offsets[b] > maxL ? offsets[b + 1] - offsets[b] : maxL;
    return maxL;
}

/* Whether a call runs its tasks on the team: enough work (Σ len² · hs) and more than one task. */
static int attention_par(const int *offsets, int B, int tasks, int hs) {
    int64_t work = 0;
    for (int b = 0; b < B; b++) work += (int64_t)(offsets[b + 1] - offsets[b]) * (offsets[b + 1] - offsets[b]);
    return work * hs >= PAR_MIN && tasks > 1 && omp_get_max_threads() > 1;
}

void gp_attention_forward(float *out, int ldo, float *att, const float *q, int ldq, const float *k, int ldk,
                          const float *v, int ldv, const int *offsets, int B, int NH, int NKV, int hs, int causal) {
    GP_CHECK(NKV > 0 && NH % NKV == 0, "NH=%d NKV=%d", NH, NKV);
    const int group = NH / NKV, maxL = longest(offsets, B);
    /* every (sequence, head) is independent: its own probabilities, its own columns of out */
    const int par = attention_par(offsets, B, B * NH, hs);
    const int nt = par ? omp_get_max_threads() : 1;
    size_t *aoff = att ? att_offsets(offsets, B, NH) : NULL;
    float *Pall = att ? NULL : gp_malloc((size_t)nt * maxL * maxL * sizeof(float) + 1);
#pragma omp parallel for collapse(2) if (par) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const int s = offsets[b], L = offsets[b + 1] - offsets[b], kh = h / group;
            float *P = att ? att + aoff[b] + (size_t)h * L * L : Pall + (size_t)omp_get_thread_num() * maxL * maxL;
            const float *V = v + (size_t)s * ldv + kh * hs;
            if (L == 0) continue;
            attention_probs(P, q + (size_t)s * ldq + h * hs, ldq, k + (size_t)s * ldk + kh * hs, ldk, L, hs, causal);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hs, L, 1.0f, P, L, V, ldv, 0.0f,
                        out + (size_t)s * ldo + h * hs, ldo);
        }
    free(Pall);
    free(aoff);
}

void gp_attention_backward(float *dq, float *dk, float *dv, const float *dout, int ldo, const float *att,
                           const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                           const int *offsets, int B, int NH, int NKV, int hs, int causal) {
    /* masked probabilities are exact zeros, so their gradients vanish on their own */
    const int group = NH / NKV, maxL = longest(offsets, B);
    const float scale = 1.0f / sqrtf((float)hs);
    /* Tasks are (sequence, key/value head): the query heads of a group add into the same dK and dV
     * rows, so they run on one thread, in head order, as on one thread. */
    const int par = attention_par(offsets, B, B * NKV, hs);
    const int nt = par ? omp_get_max_threads() : 1;
    size_t *aoff = att ? att_offsets(offsets, B, NH) : NULL;
    float *Pall = gp_malloc((att ? 1 : 2) * (size_t)nt * maxL * maxL * sizeof(float) + 1);
#pragma omp parallel for collapse(2) if (par) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int kh = 0; kh < NKV; kh++) {
            const int s = offsets[b], L = offsets[b + 1] - offsets[b];
            /* dP, and the probabilities made again when they were not kept */
            float *dP = Pall + (att ? 1 : 2) * (size_t)omp_get_thread_num() * maxL * maxL, *Ps = dP + (size_t)maxL * maxL;
            for (int h = kh * group; h < (kh + 1) * group && L > 0; h++) {
                const float *Q = q + (size_t)s * ldq + h * hs;
                const float *K = k + (size_t)s * ldk + kh * hs;
                const float *V = v + (size_t)s * ldv + kh * hs;
                const float *dO = dout + (size_t)s * ldo + h * hs;
                float *dQ = dq + (size_t)s * ldq + h * hs;
                float *dK = dk + (size_t)s * ldk + kh * hs;
                float *dV = dv + (size_t)s * ldv + kh * hs;
                const float *P = att ? att + aoff[b] + (size_t)h * L * L : Ps;
                if (!att) attention_probs(Ps, Q, ldq, K, ldk, L, hs, causal);
                /* dP = dO V^T ; dV += P^T dO */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hs, 1.0f, dO, ldo, V, ldv, 0.0f, dP, L);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, hs, L, 1.0f, P, L, dO, ldo, 1.0f, dV, ldv);
                /* softmax backward: dS = P ⊙ (dP − Σ_j dP·P) */
                for (int i = 0; i < L; i++) {
                    const float *p = P + (size_t)i * L;
                    float *d = dP + (size_t)i * L;
                    double dot = 0.0;
                    for (int j = 0; j < L; j++) dot += (double)d[j] * p[j];
                    float fd = (float)dot;
                    for (int j = 0; j < L; j++) d[j] = p[j] * (d[j] - fd);
                }
                /* S = scale Q K^T: dQ += scale dS K ; dK += scale dS^T Q */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hs, L, scale, dP, L, K, ldk, 1.0f, dQ, ldq);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, hs, L, scale, dP, L, Q, ldq, 1.0f, dK, ldk);
            }
        }
    free(Pall);
    free(aoff);
}

void gp_embedding_forward(float *out, const int32_t *ids, const int32_t *pos, const float *wte, const float *wpe,
                          const float *wtt, int N, int C) {
#pragma omp parallel for if ((int64_t)N * C >= PAR_MIN) schedule(static)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        const float *e = wte + (size_t)ids[n] * C;
        memcpy(o, e, (size_t)C * sizeof(float));
        if (wpe) {
            const float *p = wpe + (size_t)pos[n] * C;
            for (int i = 0; i < C; i++) o[i] += p[i];
        }
        if (wtt)
            for (int i = 0; i < C; i++) o[i] += wtt[i];
    }
}

void gp_embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                           const int32_t *pos, int N, int C) {
    if (!dwte && !dwpe && !dwtt) return;
    /* rows repeat (a token twice, a position in every sequence): threads split the columns and
     * each column takes its tokens in order */
#pragma omp parallel for if ((int64_t)N * C >= PAR_MIN) schedule(static)
    for (int i0 = 0; i0 < C; i0 += COLS) {
        const int i1 = min_int(i0 + COLS, C);
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * C;
            if (dwte) {
                float *e = dwte + (size_t)ids[n] * C;
                for (int i = i0; i < i1; i++) e[i] += d[i];
            }
            if (dwpe) {
                float *p = dwpe + (size_t)pos[n] * C;
                for (int i = i0; i < i1; i++) p[i] += d[i];
            }
            if (dwtt)
                for (int i = i0; i < i1; i++) dwtt[i] += d[i];
        }
    }
}

void gp_pool_forward(float *out, const float *hidden, const int *offsets, int B, int C, gp_pool_mode mode) {
#pragma omp parallel for if (mode == GP_POOL_MEAN && (int64_t)offsets[B] * C >= PAR_MIN) schedule(dynamic)
    for (int b = 0; b < B; b++) {
        const int s = offsets[b], L = offsets[b + 1] - offsets[b];
        float *o = out + (size_t)b * C;
        if (mode == GP_POOL_MEAN) {
            for (int i = 0; i < C; i++) {
                double acc = 0.0;
                for (int t = 0; t < L; t++) acc += hidden[(size_t)(s + t) * C + i];
                o[i] = L ? (float)(acc / L) : 0.0f;
            }
        } else {
            const int row = mode == GP_POOL_CLS ? s : s + L - 1;
            if (L) memcpy(o, hidden + (size_t)row * C, (size_t)C * sizeof(float));
            else memset(o, 0, (size_t)C * sizeof(float));
        }
    }
}

void gp_pool_backward(float *dhidden, const float *dout, const int *offsets, int B, int C, gp_pool_mode mode) {
#pragma omp parallel for if (mode == GP_POOL_MEAN && (int64_t)offsets[B] * C >= PAR_MIN) schedule(dynamic)
    for (int b = 0; b < B; b++) {
        const int s = offsets[b], L = offsets[b + 1] - offsets[b];
        const float *d = dout + (size_t)b * C;
        if (L == 0) continue;
        if (mode == GP_POOL_MEAN) {
            float inv = 1.0f / (float)L;
            for (int t = 0; t < L; t++) {
                float *dh = dhidden + (size_t)(s + t) * C;
                for (int i = 0; i < C; i++) dh[i] += d[i] * inv;
            }
        } else {
            float *dh = dhidden + (size_t)(mode == GP_POOL_CLS ? s : s + L - 1) * C;
            for (int i = 0; i < C; i++) dh[i] += d[i];
        }
    }
}

void gp_l2norm_forward(float *out, float *norm, const float *inp, int B, int D) {
#pragma omp parallel for if ((int64_t)B * D >= PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * D;
        double s = 0.0;
        for (int i = 0; i < D; i++) s += (double)x[i] * x[i];
        double n = sqrt(s);
        float nf = (float)(n > 1e-12 ? n : 1e-12);
        norm[b] = nf;
        for (int i = 0; i < D; i++) out[(size_t)b * D + i] = x[i] / nf;
    }
}

void gp_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm, int B, int D) {
#pragma omp parallel for if ((int64_t)B * D >= PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++) {
        const float *y = out + (size_t)b * D, *dy = dout + (size_t)b * D;
        float *dx = dinp + (size_t)b * D;
        if (norm[b] <= 1e-12f) { /* the clamp is active: y = x / eps is linear */
            for (int i = 0; i < D; i++) dx[i] += dy[i] / norm[b];
            continue;
        }
        double dot = 0.0;
        for (int i = 0; i < D; i++) dot += (double)y[i] * dy[i];
        float fd = (float)dot, inv = 1.0f / norm[b];
        for (int i = 0; i < D; i++) dx[i] += (dy[i] - y[i] * fd) * inv;
    }
}

void gp_add(float *out, const float *a, const float *b, int64_t n) {
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
