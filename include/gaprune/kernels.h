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

/* Threads inside a rank (docs/DESIGN.md §4.7): OpenMP's threads, OMP_NUM_THREADS of them, run
 * the loops of these kernels and the matmuls, which gp_sgemm splits into one-thread OpenBLAS
 * calls (OpenBLAS is held at one thread; OPENBLAS_NUM_THREADS changes nothing). gp_set_threads
 * sets the count in the running process (tests compare 1, 2 and 4). The loops give bitwise the
 * same results on any number of threads; a split matmul differs from one call in the last bits
 * (OpenBLAS's kernels round by the shape they are given), about 1e-7 relative. */
void gp_set_threads(int n);
int gp_threads(void);
/* C[M,N] = alpha op(A) op(B) + beta C, row-major (cblas_sgemm's arguments; op transposes when
 * trans_x is nonzero), the rows or columns of C split over the threads; call it from outside a
 * parallel region. */
void gp_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc);
/* Loops with less work than this many floats stay on the calling thread (default 32768); tests
 * set 0 so that even the tiny fixture models run every loop threaded. */
void gp_set_par_min(int64_t floats);
int64_t gp_par_min(void);
/* Matmuls of fewer multiply-adds than this run as one call (default 262144); tests set a huge
 * value to check that everything else is bitwise independent of the thread count. */
void gp_set_sgemm_min(int64_t madds);
int64_t gp_sgemm_min(void);

/* The arithmetic of the matmuls of gp_matmul_forward/backward (model.compute): float32 through
 * OpenBLAS, or BF16 operands accumulated in float32 through oneDNN (bf16.h), the operands rounded
 * to BF16 per call. Everything else (norms, softmax, attention, loss, every accumulator and
 * gradient buffer) stays float32 either way. Process-wide, like the thread count. */
typedef enum { GP_COMPUTE_F32 = 0, GP_COMPUTE_BF16 = 1 } gp_compute;
void gp_set_compute(gp_compute c);
gp_compute gp_compute_get(void);
/* The names, in gp_compute order, NULL-terminated: "f32", "bf16" (job key model.compute). */
extern const char *const gp_compute_names[];
/* What a settings hash appends for the mode in effect: "" for f32 (so hashes made before the mode
 * existed stay valid), "; compute bf16" otherwise. */
const char *gp_compute_tag(void);

/* out[N,OC] = inp[N,C] · w[OC,C]^T + b[OC] (b may be NULL). */
void gp_matmul_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC);
/* dinp[N,C] += dout·w; dw[OC,C] += dout^T·inp; db[OC] += Σ_n dout. Any of dinp, dw, db may be
 * NULL: that gradient is not formed (the statistics form only the weights they score). */
void gp_matmul_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        int N, int C, int OC);

/* out[N,C] = (inp - mean) * rstd * w + b, with mean[N], rstd[N] saved. */
void gp_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                          int N, int C, float eps);
/* dinp += ∂/∂inp; dw += Σ dout · x̂; db += Σ dout (dw, db may be NULL: not formed). */
void gp_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                           const float *mean, const float *rstd, int N, int C);

/* GELU, erf form: out = x/2 · (1 + erf(x/√2)), over n elements. */
void gp_gelu_forward(float *out, const float *inp, int64_t n);
/* dinp += dout · gelu'(inp) */
void gp_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n);

/* RMSNorm (Qwen3): out = inp · rstd · w, rstd = 1/√(mean(inp²) + eps), over chunks of C
 * channels: each of the N rows (strides ldi, ldo) holds H consecutive chunks, all scaled by the
 * same w[C]. H = 1 is the layer norm of a hidden state; H = heads is the per-head q/k norm.
 * rstd[N·H] is saved for backward. */
void gp_rmsnorm_forward(float *out, int ldo, float *rstd, const float *inp, int ldi, const float *w, int N, int H,
                        int C, float eps);
/* out again from a saved rstd: bitwise what gp_rmsnorm_forward wrote (a model keeps rstd, not out). */
void gp_rmsnorm_apply(float *out, int ldo, const float *rstd, const float *inp, int ldi, const float *w, int N, int H,
                      int C);
/* dinp (stride ldi) += ∂/∂inp; dw[C] += Σ dout · inp · rstd (dw may be NULL: not formed). */
void gp_rmsnorm_backward(float *dinp, float *dw, const float *dout, int ldo, const float *inp, int ldi,
                         const float *w, const float *rstd, int N, int H, int C);

/* Rotary position embedding, transformers' rotate_half form: within each head of hs channels,
 * channel i < hs/2 pairs with i + hs/2 and the pair turns by pos · θ^(−2i/hs).
 * gp_rope_tables fills cos, sin [N, hs/2] computing the angle in float32 exactly as
 * transformers does (so long positions carry the same rounding); the rotation itself is
 * applied in place to the H heads of each row (stride ld). Being a rotation, its backward turns
 * the gradient back, in place too. */
void gp_rope_tables(float *cos_t, float *sin_t, const int32_t *pos, int N, int hs, double theta);
void gp_rope_forward(float *x, int ld, const float *cos_t, const float *sin_t, int N, int H, int hs);
void gp_rope_backward(float *dx, int ld, const float *cos_t, const float *sin_t, int N, int H, int hs);

/* SwiGLU: out[N,F] = silu(gu[:, :F]) ⊙ gu[:, F:], gu = [gate | up] of width 2F. */
void gp_swiglu_forward(float *out, const float *gu, int N, int F);
/* dgu[N,2F] += the gradients of gate and up. */
void gp_swiglu_backward(float *dgu, const float *dout, const float *gu, int N, int F);

/* Multi-head scaled dot-product attention over a packed batch.
 * q: rows of NH*hs (row stride ldq), k and v: rows of NKV*hs (strides ldk, ldv); query head h
 * reads key/value head h / (NH/NKV). out: rows of NH*hs (stride ldo).
 * causal: token i attends to tokens j <= i of its sequence only.
 * att: the softmax probabilities, Σ_b NH·len_b² floats (gp_attention_cache_size), written by the
 * forward and read by the backward; or NULL in both: not kept, the backward makes them again from
 * q and k by the forward's own calls (bitwise the same), one (sequence, head) at a time. That
 * saves NH·len² floats a sequence (at 512 tokens and 32 heads 16384 floats a token, more than any
 * other activation) for one more len x len x hs product and softmax per head (a few % of a
 * MiniLM-sized block at 128 tokens, under 1% of a Qwen3-4B block). Scratch per call: len² floats
 * a thread in the forward (without att), len² or 2·len² in the backward. */
int64_t gp_attention_cache_size(const int *offsets, int B, int NH);
void gp_attention_forward(float *out, int ldo, float *att, const float *q, int ldq, const float *k, int ldk,
                          const float *v, int ldv, const int *offsets, int B, int NH, int NKV, int hs, int causal);
void gp_attention_backward(float *dq, float *dk, float *dv, const float *dout, int ldo, const float *att,
                           const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                           const int *offsets, int B, int NH, int NKV, int hs, int causal);

/* BERT embeddings: out[n] = wte[ids[n]] + wpe[pos[n]] + wtt[type 0]; wpe/wtt may be NULL. */
void gp_embedding_forward(float *out, const int32_t *ids, const int32_t *pos, const float *wte, const float *wpe,
                          const float *wtt, int N, int C);
/* Scatter-adds dout into the rows used; any of dwte, dwpe, dwtt may be NULL (not formed). */
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
