/* compare.c — paired bootstrap intervals and permutation tests of two evaluations (see
 * compare.h). */
#include "gaprune/compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/check.h"
#include "gaprune/eval.h"
#include "gaprune/rng.h"
#include "gaprune/taskmetrics.h"

/* z_0.975 + z_0.8: a two-sided 5% test with 80% power */
#define Z_SUM (1.959963984540054 + 0.8416212335729143)

/* The statistic of a paired comparison on units idx[0..n) (idx NULL: every unit once, in
 * order), with unit i's two values swapped where swap[i] (swap NULL: none). */
enum { STAT_MEAN, STAT_SPEARMAN, STAT_AP };

typedef struct {
    const double *a, *b, *gold; /* gold: the gold scores (Spearman) or the 0/1 labels (AP) */
    int64_t n;
    int stat;
} paired_data;

/* A thread's buffers for the statistics that are recomputed from the units (all NULL for a mean). */
typedef struct {
    double *xa, *xb, *xg;
    uint8_t *xl;
} scratch;

static void scratch_init(scratch *w, const paired_data *d) {
    const bool need = d->stat != STAT_MEAN;
    const size_t n = (size_t)d->n;
    w->xa = need ? gp_malloc(n * sizeof(double)) : NULL;
    w->xb = need ? gp_malloc(n * sizeof(double)) : NULL;
    w->xg = need ? gp_malloc(n * sizeof(double)) : NULL;
    w->xl = d->stat == STAT_AP ? gp_malloc(n) : NULL;
}

static void scratch_free(scratch *w) { free(w->xa), free(w->xb), free(w->xg), free(w->xl); }

static double statistic(const paired_data *d, const int64_t *idx, const uint8_t *swap, scratch *w) {
    const int64_t n = d->n;
    double *xa = w->xa, *xb = w->xb, *xg = w->xg;
    if (d->stat == STAT_MEAN) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            const int64_t u = idx ? idx[i] : i;
            const double diff = d->b[u] - d->a[u];
            s += swap && swap[i] ? -diff : diff;
        }
        return s / (double)n;
    }
    for (int64_t i = 0; i < n; i++) {
        const int64_t u = idx ? idx[i] : i;
        const bool sw = swap && swap[i];
        xa[i] = sw ? d->b[u] : d->a[u];
        xb[i] = sw ? d->a[u] : d->b[u];
        xg[i] = d->gold[u];
    }
    if (d->stat == STAT_SPEARMAN) return gp_spearman(xb, xg, n) - gp_spearman(xa, xg, n);
    for (int64_t i = 0; i < n; i++) w->xl[i] = xg[i] != 0;
    return gp_average_precision(xb, w->xl, n) - gp_average_precision(xa, w->xl, n);
}

/* Ascending, NaN last. */
static int cmp_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
    return (a > b) - (a < b);
}

/* numpy.percentile's default: linear interpolation between the order statistics of sorted x. */
static double percentile(const double *x, int n, double q) {
    const double h = (double)(n - 1) * q;
    const int k = (int)floor(h);
    return k + 1 < n ? x[k] + (h - k) * (x[k + 1] - x[k]) : x[n - 1];
}

/* The interval, spread, p-value and power of a comparison from its B bootstrap values (sorted here),
 * the observed delta, the permutations at least as extreme and the units. */
static void summarize(double *boot, int B, double delta, int64_t extreme, int64_t n, gp_paired *out) {
    /* a resample whose gold scores (or cosines) are all equal has no correlation (NaN): the
     * interval and the spread are those of the others (sorted last, left out) */
    qsort(boot, (size_t)B, sizeof(double), cmp_double);
    int nb = B;
    while (nb > 0 && isnan(boot[nb - 1])) nb--;
    double mean = 0;
    for (int r = 0; r < nb; r++) mean += boot[r];
    mean /= nb;
    double var = 0;
    for (int r = 0; r < nb; r++) var += (boot[r] - mean) * (boot[r] - mean);
    *out = (gp_paired){.delta = delta,
                       .lo = nb ? percentile(boot, nb, 0.025) : NAN,
                       .hi = nb ? percentile(boot, nb, 0.975) : NAN,
                       .se = nb > 1 ? sqrt(var / (nb - 1)) : NAN,
                       .p = (1.0 + (double)extreme) / (B + 1.0),
                       .n = n,
                       .resamples = B};
    out->significant = out->p < 0.05 && (out->lo > 0 || out->hi < 0);
    out->n_needed = delta != 0 ? (double)n * pow(Z_SUM * out->se / fabs(delta), 2) : INFINITY;
    if (!isfinite(delta)) out->lo = out->hi = out->se = out->p = out->n_needed = NAN, out->significant = false;
}

/* One set is the combined comparison of one set of weight 1: its draws are streams r and B + r, and
 * 0 + 1·x is x, so nothing but the bookkeeping is shared. */
void gp_paired_mean(const double *a, const double *b, int64_t n, int resamples, uint64_t seed, gp_paired *out) {
    const gp_paired_set one = {GP_PAIRED_MEAN, a, b, NULL, n, 1.0};
    gp_paired_combined(&one, 1, resamples, seed, out);
}

void gp_paired_spearman(const double *ca, const double *cb, const double *gold, int64_t n, int resamples, uint64_t seed,
                        gp_paired *out) {
    const gp_paired_set one = {GP_PAIRED_SPEARMAN, ca, cb, gold, n, 1.0};
    gp_paired_combined(&one, 1, resamples, seed, out);
}


/* The statistic kinds of gp_paired_set, in paired_data's terms. */
static int stat_of(gp_paired_kind k) { return k == GP_PAIRED_SPEARMAN ? STAT_SPEARMAN : k == GP_PAIRED_AP ? STAT_AP : STAT_MEAN; }

void gp_paired_combined(const gp_paired_set *sets, int nsets, int resamples, uint64_t seed, gp_paired *out) {
    GP_CHECK(nsets >= 1 && resamples >= 2, "a combined comparison of %d sets with %d resamples", nsets, resamples);
    const int B = resamples;
    paired_data *d = gp_malloc((size_t)nsets * sizeof *d);
    int64_t n_all = 0, n_max = 1;
    for (int k = 0; k < nsets; k++) {
        GP_CHECK(sets[k].n >= 1, "a paired comparison of a set of %lld units", (long long)sets[k].n);
        d[k] = (paired_data){sets[k].a, sets[k].b, sets[k].gold, sets[k].n, stat_of(sets[k].kind)};
        n_all += sets[k].n;
        n_max = sets[k].n > n_max ? sets[k].n : n_max;
    }
    double delta = 0;
    for (int k = 0; k < nsets; k++) {
        scratch w;
        scratch_init(&w, &d[k]);
        delta += sets[k].weight * statistic(&d[k], NULL, NULL, &w);
        scratch_free(&w);
    }
    double *boot = gp_malloc((size_t)B * sizeof(double));
    int64_t extreme = 0;
    const double bar = fabs(delta) - 1e-9 * fabs(delta);
#pragma omp parallel reduction(+ : extreme)
    {
        int64_t *idx = gp_malloc((size_t)n_max * sizeof(int64_t));
        uint8_t *swap = gp_malloc((size_t)n_max);
        scratch *w = gp_malloc((size_t)nsets * sizeof *w);
        for (int k = 0; k < nsets; k++) scratch_init(&w[k], &d[k]);
#pragma omp for schedule(static)
        for (int r = 0; r < B; r++) {
            /* set k's draws: streams k·2B + r (bootstrap) and k·2B + B + r (permutation) */
            double bs = 0, ps = 0;
            for (int k = 0; k < nsets; k++) {
                const int64_t n = d[k].n;
                uint64_t st = gp_rng_seed(seed, (uint64_t)k * 2 * (uint64_t)B + (uint64_t)r);
                for (int64_t i = 0; i < n; i++) idx[i] = (int64_t)gp_rng_below(&st, (uint64_t)n);
                bs += sets[k].weight * statistic(&d[k], idx, NULL, &w[k]);
                st = gp_rng_seed(seed, (uint64_t)k * 2 * (uint64_t)B + (uint64_t)B + (uint64_t)r);
                for (int64_t i = 0; i < n; i++) swap[i] = (uint8_t)(gp_rng_next(&st) >> 63);
                ps += sets[k].weight * statistic(&d[k], NULL, swap, &w[k]);
            }
            boot[r] = bs;
            extreme += fabs(ps) >= bar;
        }
        for (int k = 0; k < nsets; k++) scratch_free(&w[k]);
        free(w), free(idx), free(swap);
    }
    summarize(boot, B, delta, extreme, n_all, out);
    free(boot), free(d);
}
