/* vmath.c — array forms of the exp and erf of vmath.h. */
#include "gaprune/vmath.h"

void gp_expf_inplace(float *p, int64_t n) {
    int64_t i = 0;
#ifdef GP_HAVE_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(p + i, gp_exp8(_mm256_loadu_ps(p + i)));
#endif
    for (; i < n; i++) p[i] = gp_expf(p[i]);
}

void gp_erff_array(float *out, const float *in, int64_t n) {
    int64_t i = 0;
#ifdef GP_HAVE_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, gp_erf8(_mm256_loadu_ps(in + i)));
#endif
    for (; i < n; i++) out[i] = gp_erff(in[i]);
}
