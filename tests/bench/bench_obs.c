/* bench_obs.c — the reconstruction's update (obs.h) against the machine's sgemm rate, measured in
 * one run on the weight shapes of real models: the OBS sweep of a fixed 50% mask over column
 * blocks of 128 (its work: count² per row and column block inside the block, and the lazy update
 * 2·rows·count·(n − i2), a BLAS-3 product), the Hessian accumulation of 4096 tokens (ssyrk) and the
 * factorization (LAPACK in double). Threads: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS as set.
 *
 *   build/bench/bench_obs [repeats]        one JSON line per shape, then a summary line
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/log.h"
#include "gaprune/obs.h"

static void fill(float *x, size_t n, uint64_t *s) {
    for (size_t i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(*s >> 11) / 9007199254740992.0 - 0.5);
    }
}

static double best_of(int reps, double (*fn)(void *), void *ctx) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t = fn(ctx);
        best = t < best ? t : best;
    }
    return best;
}

typedef struct {
    int64_t rows, n, tokens;
    float *W, *W0, *U, *X, *scratch, *A, *B, *C;
    double *H;
    uint8_t *keep;
} shape;

static double run_sgemm(void *v) { /* the lazy update's own shape: [rows, 128] x [128, n] */
    shape *s = v;
    const double t0 = gp_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->rows, (int)s->n, 128, 1.0f, s->A, 128, s->B, (int)s->n,
                0.0f, s->C, (int)s->n);
    return gp_now() - t0;
}

static double run_prune(void *v) {
    shape *s = v;
    memcpy(s->W, s->W0, (size_t)(s->rows * s->n) * sizeof(float));
    gp_obs_opts o = {.select = GP_OBS_FIXED, .block = 128, .update = true};
    gp_err err = {0};
    const double t0 = gp_now();
    gp_obs_prune(s->W, s->rows, s->n, s->U, &o, s->keep, &err);
    return gp_now() - t0;
}

static double run_hessian(void *v) {
    shape *s = v;
    memset(s->H, 0, (size_t)(s->n * s->n) * sizeof(double));
    const double t0 = gp_now();
    gp_hessian_add(s->H, s->X, s->tokens, s->n, 1.0 / (double)s->tokens, s->scratch);
    return gp_now() - t0;
}

static double run_factor(void *v) {
    shape *s = v;
    double lambda;
    gp_err err = {0};
    const double t0 = gp_now();
    gp_obs_factor(s->H, s->n, 0.01, s->U, &lambda, &err);
    return gp_now() - t0;
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 3;
    const struct {
        const char *name;
        int64_t rows, n;
    } cases[] = {{"minilm-up", 1536, 384},      {"minilm-down", 384, 1536}, {"bert-base-up", 3072, 768},
                 {"bert-base-down", 768, 3072}, {"qwen3-0.6b-down", 1024, 3072}};
    uint64_t seed = 42;
    double worst = 1e30;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        shape s = {.rows = cases[c].rows, .n = cases[c].n, .tokens = 4096};
        const size_t rn = (size_t)(s.rows * s.n), nn = (size_t)(s.n * s.n);
        s.W = malloc(rn * sizeof(float)), s.W0 = malloc(rn * sizeof(float)), s.U = malloc(nn * sizeof(float));
        s.X = malloc((size_t)s.tokens * s.n * sizeof(float)), s.scratch = malloc(nn * sizeof(float));
        s.H = malloc(nn * sizeof(double)), s.keep = malloc(rn / 8 + 1);
        s.A = malloc((size_t)s.rows * 128 * sizeof(float)), s.B = malloc((size_t)128 * s.n * sizeof(float));
        s.C = malloc(rn * sizeof(float));
        fill(s.W0, rn, &seed), fill(s.X, (size_t)s.tokens * s.n, &seed), fill(s.A, (size_t)s.rows * 128, &seed);
        fill(s.B, (size_t)128 * s.n, &seed);
        for (size_t k = 0; k < rn / 8 + 1; k++) s.keep[k] = (uint8_t)(seed >> (k % 56)) ^ 0x5a; /* about half kept */
        const double th = best_of(reps, run_hessian, &s), tf = best_of(reps, run_factor, &s);
        const double tp = best_of(reps, run_prune, &s), tg = best_of(reps, run_sgemm, &s);
        double flop = 0;
        for (int64_t i1 = 0; i1 < s.n; i1 += 128) {
            const int64_t i2 = i1 + 128 < s.n ? i1 + 128 : s.n;
            flop += (double)(i2 - i1) * (double)(i2 - i1) + 2.0 * (double)(i2 - i1) * (double)(s.n - i2);
        }
        flop *= (double)s.rows;
        const double rate = flop / tp / 1e9, sgemm = 2.0 * (double)s.rows * 128 * (double)s.n / tg / 1e9;
        const double hrate = (double)s.tokens * (double)s.n * (double)s.n / th / 1e9; /* ssyrk: N·n² */
        printf("{\"case\":\"%s\",\"rows\":%lld,\"n\":%lld,\"update_s\":%.4f,\"update_gflops\":%.2f,\"sgemm_gflops\":%.2f,"
               "\"ratio\":%.3f,\"hessian_4096_tokens_s\":%.4f,\"hessian_gflops\":%.2f,\"factor_s\":%.4f}\n",
               cases[c].name, (long long)s.rows, (long long)s.n, tp, rate, sgemm, rate / sgemm, th, hrate, tf);
        fflush(stdout);
        worst = rate / sgemm < worst ? rate / sgemm : worst;
        free(s.W), free(s.W0), free(s.U), free(s.X), free(s.scratch), free(s.H), free(s.keep), free(s.A), free(s.B), free(s.C);
    }
    printf("{\"bench\":\"obs\",\"worst_update_vs_sgemm\":%.3f,\"repeats\":%d}\n", worst, reps);
    return 0;
}
