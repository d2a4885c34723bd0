/* vmath.c — elementwise exp (see vmath.h). */
#include "gaprune/vmath.h"

void gp_expf_inplace(float *p, int64_t n) {
    for (int64_t i = 0; i < n; i++) p[i] = gp_expf(p[i]);
}
