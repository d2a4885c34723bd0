/* kernels.c — layer kernels, forward and backward (see kernels.h for shapes and conventions).
 *
 * Matrix products go through cblas_sgemm; everything else is a plain loop written so that the
 * compiler vectorises it. Reductions over a row (LayerNorm statistics, softmax sums, norms) are
 * accumulated in double: they are cheap next to the matmuls and keep the float error at the
 * level of one rounding.
 */
#include "gaprune/kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/check.h"
#include "gaprune/vmath.h"

void gp_matmul_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
    float beta = 0.0f;
    if (b) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, b, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, beta, out, OC);
}

void gp_matmul_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        int N, int C, int OC) {
    if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (db)
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * OC;
            for (int o = 0; o < OC; o++) db[o] += d[o];
        }
}

void gp_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                          int N, int C, float eps) {
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
        if (db)
            for (int i = 0; i < C; i++) db[i] += dy[i];
        if (dw)
            for (int i = 0; i < C; i++) dw[i] += dy[i] * ((x[i] - m) * r);
        float md = (float)(sd / C), mdn = (float)(sdn / C);
        for (int i = 0; i < C; i++) {
            float xhat = (x[i] - m) * r;
            dx[i] += (dy[i] * w[i] - md - xhat * mdn) * r;
        }
    }
}

void gp_gelu_forward(float *out, const float *inp, int64_t n) {
    int64_t i = 0;
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

void gp_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n) {
    const float k = 0.3989422804014327f; /* 1/sqrt(2π) */
    int64_t i = 0;
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

void gp_rmsnorm_forward(float *out, int ldo, float *rstd, const float *inp, int ldi, const float *w, int N, int H,
                        int C, float eps) {
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            const float *x = inp + (size_t)n * ldi + (size_t)h * C;
            float *y = out + (size_t)n * ldo + (size_t)h * C;
            double ss = 0.0;
            for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
            float r = (float)(1.0 / sqrt(ss / C + (double)eps));
            for (int i = 0; i < C; i++) y[i] = x[i] * r * w[i];
            rstd[(size_t)n * H + h] = r;
        }
}

void gp_rmsnorm_backward(float *dinp, float *dw, const float *dout, int ldo, const float *inp, int ldi,
                         const float *w, const float *rstd, int N, int H, int C) {
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            const float *x = inp + (size_t)n * ldi + (size_t)h * C, *dy = dout + (size_t)n * ldo + (size_t)h * C;
            float *dx = dinp + (size_t)n * ldi + (size_t)h * C;
            const float r = rstd[(size_t)n * H + h];
            /* y = w x r with r = (mean x² + eps)^(-1/2): dx = r (w dy) − r³ x Σ(w dy x) / C */
            double s = 0.0;
            for (int i = 0; i < C; i++) s += (double)dy[i] * w[i] * x[i];
            if (dw)
                for (int i = 0; i < C; i++) dw[i] += dy[i] * x[i] * r;
            const float k = (float)(s / C) * r * r * r;
            for (int i = 0; i < C; i++) dx[i] += dy[i] * w[i] * r - x[i] * k;
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
    for (int n = 0; n < N; n++)
        for (int i = 0; i < half; i++) {
            float a = inv[i] * (float)pos[n];
            cos_t[(size_t)n * half + i] = (float)cos((double)a);
            sin_t[(size_t)n * half + i] = (float)sin((double)a);
        }
}

static void rope_rotate(float *x, int ld, const float *cos_t, const float *sin_t, int N, int H, int hs, float sign) {
    const int half = hs / 2;
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

int64_t gp_attention_cache_size(const int *offsets, int B, int NH) {
    int64_t s = 0;
    for (int b = 0; b < B; b++) {
        int64_t L = offsets[b + 1] - offsets[b];
        s += L * L;
    }
    return s * NH;
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

void gp_attention_forward(float *out, int ldo, float *att, const float *q, int ldq, const float *k, int ldk,
                          const float *v, int ldv, const int *offsets, int B, int NH, int NKV, int hs, int causal) {
    GP_CHECK(NKV > 0 && NH % NKV == 0, "NH=%d NKV=%d", NH, NKV);
    const int group = NH / NKV;
    const float scale = 1.0f / sqrtf((float)hs);
    size_t aoff = 0;
    for (int b = 0; b < B; b++) {
        const int s = offsets[b], L = offsets[b + 1] - offsets[b];
        for (int h = 0; h < NH; h++) {
            const int kh = h / group;
            float *P = att + aoff + (size_t)h * L * L;
            const float *Q = q + (size_t)s * ldq + h * hs;
            const float *K = k + (size_t)s * ldk + kh * hs;
            const float *V = v + (size_t)s * ldv + kh * hs;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hs, scale, Q, ldq, K, ldk, 0.0f, P, L);
            softmax_rows(P, L, causal);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hs, L, 1.0f, P, L, V, ldv, 0.0f,
                        out + (size_t)s * ldo + h * hs, ldo);
        }
        aoff += (size_t)NH * L * L;
    }
}

void gp_attention_backward(float *dq, float *dk, float *dv, const float *dout, int ldo, const float *att,
                           const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                           const int *offsets, int B, int NH, int NKV, int hs, int causal) {
    (void)causal; /* masked probabilities are exact zeros, so their gradients vanish on their own */
    const int group = NH / NKV;
    const float scale = 1.0f / sqrtf((float)hs);
    int maxL = 0;
    for (int b = 0; b < B; b++) maxL = offsets[b + 1] - offsets[b] > maxL ? offsets[b + 1] - offsets[b] : maxL;
    float *dP = gp_malloc((size_t)maxL * maxL * sizeof(float));
    size_t aoff = 0;
    for (int b = 0; b < B; b++) {
        const int s = offsets[b], L = offsets[b + 1] - offsets[b];
        for (int h = 0; h < NH; h++) {
            const int kh = h / group;
            const float *P = att + aoff + (size_t)h * L * L;
            const float *Q = q + (size_t)s * ldq + h * hs;
            const float *K = k + (size_t)s * ldk + kh * hs;
            const float *V = v + (size_t)s * ldv + kh * hs;
            const float *dO = dout + (size_t)s * ldo + h * hs;
            float *dQ = dq + (size_t)s * ldq + h * hs;
            float *dK = dk + (size_t)s * ldk + kh * hs;
            float *dV = dv + (size_t)s * ldv + kh * hs;
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
        aoff += (size_t)NH * L * L;
    }
    free(dP);
}

void gp_embedding_forward(float *out, const int32_t *ids, const int32_t *pos, const float *wte, const float *wpe,
                          const float *wtt, int N, int C) {
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
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C;
        if (dwte) {
            float *e = dwte + (size_t)ids[n] * C;
            for (int i = 0; i < C; i++) e[i] += d[i];
        }
        if (dwpe) {
            float *p = dwpe + (size_t)pos[n] * C;
            for (int i = 0; i < C; i++) p[i] += d[i];
        }
        if (dwtt)
            for (int i = 0; i < C; i++) dwtt[i] += d[i];
    }
}

void gp_pool_forward(float *out, const float *hidden, const int *offsets, int B, int C, gp_pool_mode mode) {
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
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
