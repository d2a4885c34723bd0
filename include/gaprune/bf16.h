/*
 * bf16.h — BF16 numbers and the BF16 matrix product (model.compute = bf16).
 *
 * A BF16 number is the upper half of a float32: same exponent range, 8 bits of significand. The
 * product C = op(A)·op(B) takes BF16 operands and accumulates in float32, as PyTorch's CPU
 * autocast and the authors' own (GPU) code do; it runs on oneDNN's matmul primitive, which uses
 * the CPU's BF16 instructions (AVX512-BF16, AMX) where it has them and emulates them otherwise
 * (then slower than float32, never wrong). Debian's OpenBLAS 0.3.21 has no BF16 GEMM (its
 * cblas_sbgemm is not exported), hence oneDNN, the library PyTorch uses for the same job.
 *
 * Usage:
 *     gp_bf16_from_f32(a16, a, n);                          // round to nearest even
 *     gp_bf16_gemm(0, 1, M, N, K, a16, K, b16, K, 0.0f, c, N);   // c[M,N] = a[M,K] b[N,K]^T
 */
#pragma once

#include <stdint.h>

typedef uint16_t gp_bf16;

/* out[i] = x[i] rounded to the nearest BF16 (ties to even; a NaN stays a NaN), n elements,
 * over the OpenMP threads when n is large. */
void gp_bf16_from_f32(gp_bf16 *out, const float *x, int64_t n);
/* out[i] = x[i] exactly (every BF16 is a float32). */
void gp_bf16_to_f32(float *out, const gp_bf16 *x, int64_t n);
/* One number each way (the safetensors reader and writer use these too). */
static inline float gp_bf16_value(gp_bf16 h) {
    union { uint32_t u; float f; } v = {.u = (uint32_t)h << 16};
    return v.f;
}
static inline gp_bf16 gp_bf16_round(float f) {
    union { float f; uint32_t u; } v = {.f = f};
    /* ties to even; a NaN keeps a set quiet bit so that dropping bits cannot make it an Inf */
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (gp_bf16)((v.u >> 16) | 0x40u);
    return (gp_bf16)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

/* C[M,N] = op(A)·op(B) + beta·C, row-major like gp_sgemm (op transposes when trans_x is
 * nonzero), A and B BF16, C float32; beta is 0 or 1. Called from outside a parallel region: the
 * product runs on OpenMP's threads (oneDNN's own). Primitives are made once per shape and kept. */
void gp_bf16_gemm(int trans_a, int trans_b, int M, int N, int K, const gp_bf16 *A, int lda, const gp_bf16 *B,
                  int ldb, float beta, float *C, int ldc);

/* Whether the CPU multiplies BF16 in hardware as oneDNN runs it (its effective ISA, which
 * DNNL_MAX_CPU_ISA may lower), and that ISA's name ("avx512_core_bf16", "avx2", ...). */
int gp_bf16_native(void);
const char *gp_bf16_isa(void);
/* Drops the kept primitives (tests, leak checks at exit). */
void gp_bf16_release(void);
