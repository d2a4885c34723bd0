/* compare.c — paired bootstrap intervals and permutation tests of two evaluations (see
 * compare.h). */
#include "gaprune/compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/check.h"
#include "gaprune/dist.h"
#include "gaprune/log.h"
#include "gaprune/rng.h"

/* z_0.975 + z_0.8: a two-sided 5% test with 80% power */
#define Z_SUM (1.959963984540054 + 0.8416212335729143)

/* The statistic of a paired comparison, recomputed on every resample. A bootstrap resample is a
 * multiset of units (unit u drawn cnt[u] times), and a permutation gives each side a_u or b_u, so
 * both are computed from orders sorted once per set, in O(n) a resample: the ranks of the resample
 * (ties sharing their mean rank, as Spearman's correlation takes them) by one walk of the units in
 * ascending value, and average precision by one walk in descending score. The ranks are multiples of
 * 1/2 and their centred products of 1/4, so below about 200,000 units (n³ < 2^53) every sum below is
 * exact in any order and the correlation bitwise gp_spearman's of the resample written out; above,
 * it differs from that in the last bits, the same on any number of ranks and threads all the same. */
enum { STAT_MEAN, STAT_SPEARMAN, STAT_AP };

typedef struct {
    const double *a, *b, *gold; /* gold: the gold scores (Spearman) or the 0/1 labels (AP) */
    int64_t n;
    int stat;
    int64_t *ord_a, *ord_b, *ord_g; /* units by ascending a, b, gold (ord_g: Spearman only) */
    double *ab;                     /* a_u at 2u, b_u at 2u + 1 */
    int64_t *ord_ab;                /* the 2n entries of ab by ascending value (the permutations) */
    uint8_t *pos;                   /* AP: 1 where gold is nonzero (a positive) */
    double *dev_g, syy_g;           /* gold's ranks over every unit once less their mean, Σ dev_g² (the
                                       permutations keep every unit) */
} paired_data;

static int by_value(const void *x, const void *y, void *key) {
    const double *v = key, p = v[*(const int64_t *)x], q = v[*(const int64_t *)y];
    return (p > q) - (p < q);
}

static int64_t *order_of(const double *v, int64_t n) {
    int64_t *ord = gp_malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) ord[i] = i;
    qsort_r(ord, (size_t)n, sizeof(int64_t), by_value, (void *)v);
    return ord;
}

/* The average ranks (from 1, ties sharing their mean) of the multiset holding unit u cnt[u] times
 * (cnt NULL: once), walking ord (the units by ascending v): r[u] for every unit. */
static void ranks_counted(const double *v, const int64_t *ord, int64_t n, const int32_t *cnt, double *r) {
    double below = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i, c = 0;
        do c += cnt ? cnt[ord[j]] : 1;
        while (++j < n && v[ord[j]] == v[ord[i]]);
        const double avg = below + (double)(c + 1) / 2.0;
        for (int64_t k = i; k < j; k++) r[ord[k]] = avg;
        below += (double)c, i = j;
    }
}

/* Spearman's correlation of v with the gold scores on the multiset holding unit u cnt[u] times,
 * walking ord (the units by ascending v), dg[u] unit u's gold rank less the mean rank, syy the
 * multiset's Σ cnt·dg²: Pearson's correlation of the ranks, whose mean is (n + 1) / 2 exactly. */
static double corr_counted(const double *v, const int64_t *ord, int64_t n, const int32_t *cnt, const double *dg, double syy) {
    const double mean = (double)(n + 1) / 2.0;
    double below = 0, sxy = 0, sxx = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i, c = 0;
        do c += cnt[ord[j]];
        while (++j < n && v[ord[j]] == v[ord[i]]);
        const double dx = below + (double)(c + 1) / 2.0 - mean;
        double sg = 0;
        for (int64_t k = i; k < j; k++) sg += cnt[ord[k]] * dg[ord[k]];
        sxy += dx * sg, sxx += (double)c * dx * dx;
        below += (double)c, i = j;
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

/* The same for both sides of a permutation: side a holds a_u, or b_u where swap[u] (swap NULL:
 * none), side b the other value; every unit once, so the gold ranks are the set's. Spearman's of side
 * b less side a's. */
static double corr_swapped(const paired_data *d, const uint8_t *swap) {
    const int64_t m = 2 * d->n;
    const double mean = (double)(d->n + 1) / 2.0;
    double below[2] = {0, 0}, sxy[2] = {0, 0}, sxx[2] = {0, 0};
    for (int64_t i = 0; i < m;) {
        /* side b's count and gold deviations in the run of equal values, side a's the rest (kept in
         * registers: a side chosen at random would make an array indexed by it a chain through memory) */
        int64_t j = i, cb = 0;
        double gb = 0, gall = 0;
        do {
            const int64_t e = d->ord_ab[j], side = (e & 1) ^ (swap ? swap[e >> 1] : 0);
            const double g = d->dev_g[e >> 1];
            cb += side, gall += g, gb += (double)side * g;
        } while (++j < m && d->ab[d->ord_ab[j]] == d->ab[d->ord_ab[i]]);
        const int64_t c[2] = {j - i - cb, cb};
        const double sg[2] = {gall - gb, gb};
        for (int s = 0; s < 2; s++) {
            const double dx = below[s] + (double)(c[s] + 1) / 2.0 - mean;
            sxy[s] += dx * sg[s], sxx[s] += (double)c[s] * dx * dx, below[s] += (double)c[s];
        }
        i = j;
    }
    const double syy = d->syy_g;
    if (!(syy > 0)) return NAN;
    const double rb = sxx[1] > 0 ? sxy[1] / sqrt(sxx[1] * syy) : NAN, ra = sxx[0] > 0 ? sxy[0] / sqrt(sxx[0] * syy) : NAN;
    return rb - ra;
}

/* Average precision (taskmetrics.h) of the multiset holding unit u cnt[u] times, walking ord (the
 * units by ascending v) from its end: a run of equal scores is one threshold; a run the multiset
 * does not hold is none. */
static double ap_counted(const double *v, const int64_t *ord, int64_t n, const uint8_t *pos, const int32_t *cnt) {
    int64_t npos = 0;
    for (int64_t u = 0; u < n; u++) npos += pos[u] * cnt[u];
    if (npos == 0) return NAN;
    int64_t tp = 0, all = 0;
    double ap = 0, prev_recall = 0;
    for (int64_t i = n - 1; i >= 0;) {
        int64_t j = i, dtp = 0;
        do {
            const int64_t u = ord[j];
            dtp += pos[u] * cnt[u], all += cnt[u];
        } while (--j >= 0 && v[ord[j]] == v[ord[i]]);
        i = j;
        tp += dtp;
        /* a run without positives leaves the recall and adds exactly 0: skipped, and its divisions */
        if (dtp == 0) continue;
        const double recall = (double)tp / (double)npos, precision = (double)tp / (double)all;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    return ap;
}

/* The average precision of side b less side a's under a permutation (swap as corr_swapped's). The
 * counts are kept in registers, as there: a side chosen at random would make arrays indexed by it
 * a chain through memory. */
static double ap_swapped(const paired_data *d, const uint8_t *swap) {
    int64_t npos = 0;
    for (int64_t u = 0; u < d->n; u++) npos += d->pos[u];
    if (npos == 0) return NAN;
    int64_t tp[2] = {0, 0}, all[2] = {0, 0};
    double ap[2] = {0, 0}, prev[2] = {0, 0};
    for (int64_t i = 2 * d->n - 1; i >= 0;) {
        int64_t j = i, nb = 0, pb = 0, pn = 0;
        do {
            const int64_t e = d->ord_ab[j], side = (e & 1) ^ (swap ? swap[e >> 1] : 0), p = d->pos[e >> 1];
            nb += side, pb += side & p, pn += p;
        } while (--j >= 0 && d->ab[d->ord_ab[j]] == d->ab[d->ord_ab[i]]);
        const int64_t dtp[2] = {pn - pb, pb}, dall[2] = {i - j - nb, nb};
        i = j;
        for (int s = 0; s < 2; s++) {
            tp[s] += dtp[s], all[s] += dall[s];
            if (dtp[s] == 0) continue; /* as in ap_counted */
            const double recall = (double)tp[s] / (double)npos, precision = (double)tp[s] / (double)all[s];
            ap[s] += (recall - prev[s]) * precision;
            prev[s] = recall;
        }
    }
    return ap[1] - ap[0];
}

static void paired_data_init(paired_data *d, const gp_paired_set *s) {
    memset(d, 0, sizeof *d);
    d->a = s->a, d->b = s->b, d->gold = s->gold, d->n = s->n;
    d->stat = s->kind == GP_PAIRED_SPEARMAN ? STAT_SPEARMAN : s->kind == GP_PAIRED_AP ? STAT_AP : STAT_MEAN;
    if (d->stat == STAT_MEAN) return;
    const int64_t n = d->n;
    d->ord_a = order_of(d->a, n), d->ord_b = order_of(d->b, n);
    d->ab = gp_malloc(2 * (size_t)n * sizeof(double));
    for (int64_t u = 0; u < n; u++) d->ab[2 * u] = d->a[u], d->ab[2 * u + 1] = d->b[u];
    d->ord_ab = order_of(d->ab, 2 * n);
    if (d->stat == STAT_AP) {
        d->pos = gp_malloc((size_t)n);
        for (int64_t u = 0; u < n; u++) d->pos[u] = d->gold[u] != 0;
    }
    if (d->stat == STAT_SPEARMAN) {
        d->ord_g = order_of(d->gold, n);
        d->dev_g = gp_malloc((size_t)n * sizeof(double));
        ranks_counted(d->gold, d->ord_g, n, NULL, d->dev_g);
        for (int64_t u = 0; u < n; u++) d->dev_g[u] -= (double)(n + 1) / 2.0, d->syy_g += d->dev_g[u] * d->dev_g[u];
    }
}

static void paired_data_free(paired_data *d) {
    free(d->ord_a), free(d->ord_b), free(d->ord_g), free(d->ab), free(d->ord_ab), free(d->dev_g), free(d->pos);
}

/* A thread's buffers: the draws and counts of a resample, its gold ranks less their mean, the swaps of
 * a permutation. */
typedef struct {
    int64_t *idx;
    int32_t *cnt;
    double *dg;
    uint8_t *swap;
} scratch;

static void scratch_init(scratch *w, int64_t n_max) {
    const size_t n = (size_t)n_max;
    w->idx = gp_malloc(n * sizeof(int64_t));
    w->cnt = gp_malloc(n * sizeof(int32_t));
    w->dg = gp_malloc(n * sizeof(double));
    w->swap = gp_malloc(n);
}

static void scratch_free(scratch *w) { free(w->idx), free(w->cnt), free(w->dg), free(w->swap); }

/* The statistic on the bootstrap resample of units w->idx[0..n). */
static double stat_boot(const paired_data *d, scratch *w) {
    const int64_t n = d->n;
    if (d->stat == STAT_MEAN) { /* summed in the order drawn */
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += d->b[w->idx[i]] - d->a[w->idx[i]];
        return s / (double)n;
    }
    memset(w->cnt, 0, (size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) w->cnt[w->idx[i]]++;
    if (d->stat == STAT_AP)
        return ap_counted(d->b, d->ord_b, n, d->pos, w->cnt) - ap_counted(d->a, d->ord_a, n, d->pos, w->cnt);
    ranks_counted(d->gold, d->ord_g, n, w->cnt, w->dg);
    double syy = 0;
    for (int64_t u = 0; u < n; u++) w->dg[u] -= (double)(n + 1) / 2.0, syy += w->cnt[u] * w->dg[u] * w->dg[u];
    return corr_counted(d->b, d->ord_b, n, w->cnt, w->dg, syy) - corr_counted(d->a, d->ord_a, n, w->cnt, w->dg, syy);
}

/* The statistic with unit u's two values exchanged where swap[u] (swap NULL: the observed one). */
static double stat_perm(const paired_data *d, const uint8_t *swap) {
    const int64_t n = d->n;
    if (d->stat == STAT_MEAN) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            const double diff = d->b[i] - d->a[i];
            s += swap && swap[i] ? -diff : diff;
        }
        return s / (double)n;
    }
    if (d->stat == STAT_AP) return ap_swapped(d, swap);
    return corr_swapped(d, swap);
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


void gp_paired_combined(const gp_paired_set *sets, int nsets, int resamples, uint64_t seed, gp_paired *out) {
    GP_CHECK(nsets >= 1 && resamples >= 2, "a combined comparison of %d sets with %d resamples", nsets, resamples);
    const int B = resamples;
    paired_data *d = gp_malloc((size_t)nsets * sizeof *d);
    int64_t n_all = 0, n_max = 1;
    for (int k = 0; k < nsets; k++) {
        GP_CHECK(sets[k].n >= 1, "a paired comparison of a set of %lld units", (long long)sets[k].n);
        paired_data_init(&d[k], &sets[k]);
        n_all += sets[k].n;
        n_max = sets[k].n > n_max ? sets[k].n : n_max;
    }
    double delta = 0;
    for (int k = 0; k < nsets; k++) delta += sets[k].weight * stat_perm(&d[k], NULL);
    /* every rank takes its share of the resamples and the threads split it; each value is a
     * function of its index alone, gathered by a sum over ranks (each slot has one nonzero
     * addend), so the result is the same for any number of ranks and threads */
    const int P = gp_nranks(), me = gp_rank();
    const int r0 = (int)((int64_t)B * me / P), r1 = (int)((int64_t)B * (me + 1) / P);
    double *boot = gp_calloc((size_t)B, sizeof(double));
    int64_t extreme = 0;
    const double bar = fabs(delta) - 1e-9 * fabs(delta);
#pragma omp parallel reduction(+ : extreme)
    {
        scratch w;
        scratch_init(&w, n_max);
#pragma omp for schedule(dynamic, 64)
        for (int r = r0; r < r1; r++) {
            /* set k's draws: streams k·2B + r (bootstrap) and k·2B + B + r (permutation) */
            double bs = 0, ps = 0;
            for (int k = 0; k < nsets; k++) {
                const int64_t n = d[k].n;
                const gp_rng_bound below = gp_rng_bound_of((uint64_t)n);
                uint64_t st = gp_rng_seed(seed, (uint64_t)k * 2 * (uint64_t)B + (uint64_t)r);
                for (int64_t i = 0; i < n; i++) w.idx[i] = (int64_t)gp_rng_below_b(&st, &below);
                bs += sets[k].weight * stat_boot(&d[k], &w);
                st = gp_rng_seed(seed, (uint64_t)k * 2 * (uint64_t)B + (uint64_t)B + (uint64_t)r);
                for (int64_t i = 0; i < n; i++) w.swap[i] = (uint8_t)(gp_rng_next(&st) >> 63);
                ps += sets[k].weight * stat_perm(&d[k], w.swap);
            }
            boot[r] = bs + 0.0; /* -0 as +0: what the sum over ranks makes of it */
            extreme += fabs(ps) >= bar;
        }
        scratch_free(&w);
    }
    gp_allreduce_sum_f64(boot, (size_t)B);
    gp_allreduce_sum_i64(&extreme, 1);
    summarize(boot, B, delta, extreme, n_all, out);
    for (int k = 0; k < nsets; k++) paired_data_free(&d[k]);
    free(boot), free(d);
}
