/*
 * kernels.h — the layer kernels of the encoders, in forward/backward pairs.
 *
 * Conventions (llm.c's): outputs first, then saved-for-backward caches, then inputs and
 * weights, then sizes. Backward functions ADD into every gradient they produce (parameter
 * gradients and input gradients alike), so the caller zeroes what it wants fresh. Rows are
 * tokens of a packed ("ragged") batch: sequence b owns rows offsets[b] .. offsets[b+1]-1, with
 * no padding rows at all; a padded batch with an attention mask is packed first (model.h), which
 * gives exactly what a padded computation with masked keys gives for every real token.
 *
 * Sizes: N tokens, C channels, OC output channels, NH query heads, NKV key/value heads,
 * hs head size, B sequences. Matrices are row-major; nn.Linear weights are [OC, C].
 * Every optimized kernel has a naive double-precision twin in tests/test_kernels.c.
 *
 * Usage:
 *     gp_matmul_forward(out, inp, w, b, N, C, OC);             // out = inp w^T + b
 *     gp_matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
 */
#pragma once

#include <stdint.h>

/* out[N,OC] = inp[N,C] · w[OC,C]^T + b[OC] (b may be NULL). */
void gp_matmul_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC);
/* dinp[N,C] += dout·w; dw[OC,C] += dout^T·inp; db[OC] += Σ_n dout. dinp/db may be NULL. */
void gp_matmul_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        int N, int C, int OC);

/* out[N,C] = (inp - mean) * rstd * w + b, with mean[N], rstd[N] saved. */
void gp_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                          int N, int C, float eps);
void gp_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                           const float *mean, const float *rstd, int N, int C);

/* GELU, erf form: out = x/2 · (1 + erf(x/√2)), over n elements. */
void gp_gelu_forward(float *out, const float *inp, int64_t n);
/* dinp += dout · gelu'(inp) */
void gp_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n);

/* Multi-head scaled dot-product attention over a packed batch.
 * q: rows of NH*hs (row stride ldq), k and v: rows of NKV*hs (strides ldk, ldv); query head h
 * reads key/value head h / (NH/NKV). out: rows of NH*hs (stride ldo).
 * att: saved softmax probabilities, Σ_b NH·len_b² floats (gp_attention_cache_size).
 * causal: token i attends to tokens j <= i of its sequence only. */
int64_t gp_attention_cache_size(const int *offsets, int B, int NH);
void gp_attention_forward(float *out, int ldo, float *att, const float *q, int ldq, const float *k, int ldk,
                          const float *v, int ldv, const int *offsets, int B, int NH, int NKV, int hs, int causal);
void gp_attention_backward(float *dq, float *dk, float *dv, const float *dout, int ldo, const float *att,
                           const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                           const int *offsets, int B, int NH, int NKV, int hs, int causal);

/* BERT embeddings: out[n] = wte[ids[n]] + wpe[pos[n]] + wtt[type 0]; wpe/wtt may be NULL. */
void gp_embedding_forward(float *out, const int32_t *ids, const int32_t *pos, const float *wte, const float *wpe,
                          const float *wtt, int N, int C);
void gp_embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                           const int32_t *pos, int N, int C);

typedef enum { GP_POOL_MEAN = 0, GP_POOL_CLS = 1, GP_POOL_LAST = 2 } gp_pool_mode;

/* out[B,C] from hidden[N,C]: mean of each sequence's rows, its first row, or its last row. */
void gp_pool_forward(float *out, const float *hidden, const int *offsets, int B, int C, gp_pool_mode mode);
void gp_pool_backward(float *dhidden, const float *dout, const int *offsets, int B, int C, gp_pool_mode mode);

/* out[B,D] = inp / max(‖inp‖, 1e-12) per row (torch.nn.functional.normalize); norm[B] saved. */
void gp_l2norm_forward(float *out, float *norm, const float *inp, int B, int D);
void gp_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm, int B, int D);

/* out = a + b over n elements (out may alias a). */
void gp_add(float *out, const float *a, const float *b, int64_t n);
