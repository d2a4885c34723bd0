/*
 * vmath.h — exp and erf for the elementwise kernels (softmax, GELU), scalar and 8-wide AVX2.
 *
 * libm's expf and erff are exact to an ulp but scalar calls; inside GELU and softmax they cost
 * as much as a third of a layer's matmul time. These are polynomial versions that the AVX2
 * path evaluates eight at a time and the scalar path evaluates with the same coefficients:
 *   exp: Cody–Waite reduction x = n·ln2 + r, degree-6 polynomial for e^r (Cephes expf),
 *        max relative error about 2e-7; inputs below -87 give 0.
 *   erf: erfc(z) = t·exp(−z² + P(t)), t = 1/(1 + z/2), P of degree 9 (Numerical Recipes'
 *        erfcc, fractional error < 1.2e-7), and erf = 1 − erfc; max absolute error about 3e-7.
 * tests/test_kernels.c measures both against libm in double.
 */
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GP_HAVE_AVX2 1
#endif

#define GP_EXP_LO (-87.0f)
#define GP_EXP_HI 88.3762626647949f

static inline float gp_expf(float x) {
    if (x < GP_EXP_LO) return 0.0f;
    /* NaN out for NaN in, as in the AVX2 path, and never a NaN cast to an integer below
     * (undefined): weights that overflow in the forward reach here as NaN */
    if (x != x) return x;
    if (x > GP_EXP_HI) x = GP_EXP_HI;
    float n = nearbyintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

static inline float gp_erfcf_pos(float z) {
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return t * gp_expf(-z * z + p);
}

static inline float gp_erff(float x) {
    float e = 1.0f - gp_erfcf_pos(fabsf(x));
    return x < 0 ? -e : e;
}

#ifdef GP_HAVE_AVX2
static inline __m256 gp_exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(GP_EXP_LO);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    /* min and max return their second operand when either is NaN: x second, so that a NaN stays
     * one (and comes out NaN) rather than becoming a bound */
    x = _mm256_min_ps(_mm256_set1_ps(GP_EXP_HI), x);
    x = _mm256_max_ps(lo, x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(under, y);
}

static inline __m256 gp_erf8(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 z = _mm256_andnot_ps(sign, x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    __m256 erfc = _mm256_mul_ps(t, gp_exp8(_mm256_fnmadd_ps(z, z, p)));
    __m256 e = _mm256_sub_ps(_mm256_set1_ps(1.0f), erfc);
    return _mm256_or_ps(e, _mm256_and_ps(x, sign)); /* erf is odd */
}
#endif

/* p[i] = exp(p[i]) for i < n */
void gp_expf_inplace(float *p, int64_t n);
/* out[i] = erf(in[i]) for i < n (the path the GELU kernels take) */
void gp_erff_array(float *out, const float *in, int64_t n);
