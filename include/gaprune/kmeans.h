/*
 * kmeans.h — distributed k-means with k-means++ seeding, for the representative calibration
 * sample (docs/DESIGN.md §1.2, §4.6).
 *
 * The points are rows of a [n, d] float matrix spread over the ranks of a communicator in
 * contiguous blocks, in rank order (rank 0 holds the first rows; a rank may hold none). Every
 * result is the same, bit for bit, whatever the number of ranks and wherever the blocks are cut:
 *   - distances are screened with cblas_sgemm (‖x‖² − 2x·c + ‖c‖², blocked so memory stays
 *     bounded) and every decision is then taken on the exact double-precision distance
 *     Σ (x_k − c_k)², recomputed for each pair the screen cannot rule out (the screen's
 *     rounding is bounded, so it never drops the true winner); ties go to the lower index;
 *   - sums over points (centroid sums, k-means++ weights, inertia) are taken in 64-bit fixed
 *     point on a grid set from the global maximum, so their totals do not depend on the order
 *     of addition;
 *   - the random numbers (splitmix64 of the seed) are drawn identically on every rank.
 *
 * Seeding: k-means++ (the first centre uniform, each next one with probability ∝ D², the
 * squared distance to the nearest centre so far). Exact and fast: proposals are drawn from a
 * snapshot of D² that is refreshed with one sgemm every 128 centres, and a proposal x is kept
 * with probability D²_now(x) / D²_snapshot(x) — exactly the k-means++ distribution.
 * Iterations: Lloyd. Each rank assigns its points, the per-cluster sums and counts are summed
 * over ranks (MPI_Allreduce), the centroids are the means. An empty cluster is re-seeded with
 * the point farthest from its nearest centroid (ties: lower index). It stops after
 * `iterations` updates, or earlier when no point changes cluster (the centroids are then a
 * fixed point: more updates would change nothing). Then, for each final centroid, the nearest point (ties: lower index); the
 * distinct ones, ascending, are the selection.
 * When n <= k every point is its own cluster and all are selected.
 *
 * Usage (collective over comm):
 *     gp_kmeans_opts o = {.k = 5000, .iterations = 20, .seed = 42, .label = "kmeans"};
 *     gp_kmeans_result r; gp_err err = {0};
 *     if (gp_kmeans_run(x_mine, n_mine, d, &o, MPI_COMM_WORLD, &r, &err)) ...;
 *     for (int64_t i = 0; i < r.n_selected; i++) use(r.selected[i]);   // global row indices
 *     gp_kmeans_result_free(&r);
 */
#pragma once

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"

typedef struct {
    int64_t k;          /* clusters asked for (>= 1) */
    int iterations;     /* Lloyd updates at most (0: the k-means++ seeds only) */
    uint64_t seed;      /* k-means++ */
    const char *label;  /* prefix of the progress lines on rank 0; NULL: silent */
    bool all_iterations; /* no early stop at convergence (benchmarks: the same work every run) */
} gp_kmeans_opts;

typedef struct {
    int64_t n;          /* points over all ranks */
    int64_t k;          /* clusters: min(opts.k, n) */
    int d;
    int iterations_run; /* Lloyd updates done */
    float *centroids;   /* [k, d] final centroids (every rank) */
    int32_t *assign;    /* [n] nearest final centroid of every point (every rank) */
    int64_t *nearest;   /* [k] the point nearest each final centroid */
    int64_t *selected;  /* [n_selected] the distinct entries of nearest, ascending */
    int64_t n_selected;
    double *inertia;    /* [iterations_run + 1] Σ of squared distances to the nearest centroid
                           after i updates (i = 0: the seeds) */
    int64_t *moved;     /* [iterations_run + 1] points whose nearest centroid changed (0: all) */
    int64_t *reseeded;  /* [iterations_run + 1] empty clusters re-seeded by update i (0: none) */
    double seconds_seed, seconds_iter; /* k-means++; all assignment passes and updates */
    double pass_gflop;  /* sgemm work of one assignment pass over all ranks: 2·n·k·d / 1e9 */
} gp_kmeans_result;

/* Collective over comm. x holds this rank's n_local rows of d floats. GP_EINPUT for k < 1, no
 * point at all, d < 1, more than 2^31 − 1 points, or a non-finite coordinate (the message
 * names the row); every rank returns the same status. */
gp_status gp_kmeans_run(const float *x, int64_t n_local, int d, const gp_kmeans_opts *o, MPI_Comm comm,
                        gp_kmeans_result *r, gp_err *err);
void gp_kmeans_result_free(gp_kmeans_result *r);

/* The exact squared distance every decision is taken on: Σ (a_k − b_k)² in double, summed in a
 * fixed order (four interleaved running sums, then (s0 + s1) + (s2 + s3)). */
double gp_kmeans_dist2(const float *a, const float *b, int d);
