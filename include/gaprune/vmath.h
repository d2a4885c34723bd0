/*
 * vmath.h — elementwise exp and erf for the kernels.
 *
 * Kept behind one header so the kernels do not care whether a call goes to libm or to a
 * vectorisable polynomial; tests/test_kernels.c checks them against libm in double.
 */
#pragma once

#include <math.h>
#include <stdint.h>

static inline float gp_expf(float x) { return expf(x); }
static inline float gp_erff(float x) { return erff(x); }

/* p[i] = exp(p[i]) for i < n */
void gp_expf_inplace(float *p, int64_t n);
