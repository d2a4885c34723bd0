/*
 * compare.h — paired comparisons of two evaluations on the same set: the difference of their
 * main scores, a seeded 95% paired bootstrap interval of it, a paired permutation test's
 * p-value, and how many queries (or pairs) a difference of that size would need.
 *
 * The two evaluations must score the same units in the same order (the eval files' per-query
 * vectors, eval.h): retrieval, the per-query main metric a_i, b_i, and the difference of the
 * means Δ = mean(b − a); STS, the model's cosines ca_i, cb_i of the same pairs and the gold
 * scores, and Δ = Spearman(cb, gold) − Spearman(ca, gold).
 *
 *   bootstrap     resample r of B: n units drawn uniformly with replacement (the draws of
 *                 stream r of the seed: gp_rng_seed(seed, r), then gp_rng_below(., n) n times),
 *                 Δ recomputed on them; [lo, hi] the 2.5th and 97.5th percentiles of the B values
 *                 (linear interpolation between order statistics, numpy's default), se their
 *                 standard deviation (n − 1 in the denominator).
 *   permutation   shuffle r of B: each unit's two values swapped when the top bit of the next
 *                 draw of stream B + r is set; p = (1 + #{|Δ_r| >= |Δ|}) / (B + 1), two-sided
 *                 (|Δ| less 1e-9 of itself, so that the same difference summed in another order
 *                 still counts).
 *   significant   p < 0.05 and [lo, hi] excludes 0.
 *   n_needed      n · ((z_0.975 + z_0.8) · se / |Δ|)²: the units in which a difference of this
 *                 size and spread reaches a two-sided 5% test with 80% power (normal
 *                 approximation; infinite when Δ = 0).
 * Every resample is a function of the seed and its index alone, so the result is the same for
 * any number of threads and ranks. Collective: under MPI every rank calls with the same values
 * and takes a share of the resamples (and the threads split it), and every rank gets the result.
 * A resample costs O(n): the orders of a set's values are sorted once, and the ranks of a
 * bootstrap resample (a multiset of units: counts) or of a permutation's two sides, and the
 * average precision of either, follow from them in one walk; 10,000 resamples of 1,379 STS pairs
 * take about 0.2 s of one core. tests/reference/compare_ref.py is the numpy reference of all of
 * it (each resample recomputed from the resampled vectors).
 *
 * Usage:
 *     gp_paired d;
 *     gp_paired_mean(ndcg_dense, ndcg_pruned, n_queries, 10000, 42, &d);   // d.delta, d.lo, d.hi, d.p
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The default number of resamples (and of permutations), and the least a comparison may use. */
#define GP_COMPARE_RESAMPLES 10000
#define GP_COMPARE_MIN_RESAMPLES 1000

typedef struct {
    double delta;    /* b's main score less a's */
    double lo, hi;   /* the 95% bootstrap interval of delta */
    double se;       /* the bootstrap standard error */
    double p;        /* two-sided permutation p-value */
    double n_needed; /* units for 80% power at the 5% level (INFINITY when delta = 0) */
    int64_t n;       /* queries or pairs */
    int resamples;   /* B */
    bool significant;
} gp_paired;

/* Means of per-unit values: a[i], b[i] of unit i (n >= 1). */
void gp_paired_mean(const double *a, const double *b, int64_t n, int resamples, uint64_t seed, gp_paired *out);
/* Spearman correlations with the gold scores of the same pairs (n >= 2). */
void gp_paired_spearman(const double *ca, const double *cb, const double *gold, int64_t n, int resamples, uint64_t seed,
                        gp_paired *out);


/* A weighted sum of the differences of several sets (a mean over sets, or over task types of their
 * means): each set's units resampled on their own (set k's draws are streams k·2B + r and
 * k·2B + B + r of the seed), its statistic recomputed, the weighted sum taken; the interval,
 * p-value and spread of that sum as for one set. out->n is all the sets' units together (and
 * n_needed, in those units, a rough guide only: the sets are not one pool). */
typedef enum { GP_PAIRED_MEAN = 0, GP_PAIRED_SPEARMAN = 1, GP_PAIRED_AP = 2 } gp_paired_kind;
typedef struct {
    gp_paired_kind kind;
    /* as gp_paired_mean, gp_paired_spearman (gold), or for GP_PAIRED_AP the two models' scores of
     * the same pairs and their 0/1 labels in gold (nonzero: positive; taskmetrics.h's average
     * precision, a resample without a positive left out like a constant Spearman one) */
    const double *a, *b, *gold;
    int64_t n;
    double weight;
} gp_paired_set;
void gp_paired_combined(const gp_paired_set *sets, int nsets, int resamples, uint64_t seed, gp_paired *out);
