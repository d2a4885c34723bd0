/* bench_kmeans.c — k-means (kmeans.h) on random unit vectors, for `make bench`: the paper's
 * sampling shape by default, 50,000 points of dimension 384, k = 5000, 20 iterations.
 *
 *     mpirun -np P build/bench/bench_kmeans [N K D ITERATIONS]
 *
 * Every rank makes its block of rows from the row index alone (a Gaussian vector, normalised),
 * so the data are the same on any number of ranks. Rank 0 prints one JSON line:
 *   {"case": "kmeans", "ranks", "n", "k", "d", "iterations", "passes", "seconds_seed",
 *    "seconds_iter", "seconds_per_iteration", "gflops", "n_selected", "inertia_first", "inertia_last"}
 * where an iteration is one assignment pass (the sgemm of every point against every centroid,
 * 2·n·k·d flops, plus the exact checks) and the centroid update, and gflops counts the sgemm
 * flops of all passes over their wall time. Run with OMP_NUM_THREADS=1: one thread per rank
 * (gaprune splits the sgemm over its OpenMP threads).
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "gaprune/kmeans.h"
#include "gaprune/log.h"
#include "gaprune/rng.h"

/* the state after a step is the output itself: a different stream from gp_rng_next's */
static uint64_t mix(uint64_t z) { return gp_rng_mix(z + GP_RNG_GOLDEN); }

/* Row i: d Box-Muller normals from the row index, scaled to unit length. */
static void unit_row(int64_t i, int d, float *out) {
    uint64_t s = mix(0x5eed ^ (uint64_t)i * 0x100000001b3ull);
    double norm = 0;
    for (int q = 0; q < d; q += 2) {
        s = mix(s);
        double u1 = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
        s = mix(s);
        double u2 = (double)(s >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        out[q] = (float)(r * cos(2 * M_PI * u2));
        if (q + 1 < d) out[q + 1] = (float)(r * sin(2 * M_PI * u2));
    }
    for (int q = 0; q < d; q++) norm += (double)out[q] * out[q];
    for (int q = 0; q < d; q++) out[q] = (float)(out[q] / sqrt(norm));
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, P;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    gp_log_init(rank, P);
    const int64_t n = argc > 1 ? atoll(argv[1]) : 50000, k = argc > 2 ? atoll(argv[2]) : 5000;
    const int d = argc > 3 ? atoi(argv[3]) : 384, iterations = argc > 4 ? atoi(argv[4]) : 20;
    const int64_t lo = n * rank / P, hi = n * (rank + 1) / P;
    float *x = malloc((size_t)((hi - lo) ? hi - lo : 1) * d * sizeof(float));
    for (int64_t i = lo; i < hi; i++) unit_row(i, d, x + (size_t)(i - lo) * d);
    /* random points settle after one update; the benchmark runs every iteration all the same */
    gp_kmeans_opts o = {.k = k, .iterations = iterations, .seed = 42, .label = getenv("GAPRUNE_BENCH_VERBOSE") ? "kmeans" : NULL,
                        .all_iterations = true};
    gp_kmeans_result r;
    gp_err err = {0};
    if (gp_kmeans_run(x, hi - lo, d, &o, MPI_COMM_WORLD, &r, &err)) {
        if (rank == 0) fprintf(stderr, "bench_kmeans: %s\n", err.msg);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    const int passes = r.iterations_run + 1;
    if (rank == 0)
        printf("{\"case\": \"kmeans\", \"ranks\": %d, \"n\": %lld, \"k\": %lld, \"d\": %d, \"iterations\": %d, \"passes\": %d, "
               "\"seconds_seed\": %.3f, \"seconds_iter\": %.3f, \"seconds_per_iteration\": %.4f, \"gflops\": %.2f, "
               "\"n_selected\": %lld, \"inertia_first\": %.6f, \"inertia_last\": %.6f}\n",
               P, (long long)n, (long long)r.k, d, r.iterations_run, passes, r.seconds_seed, r.seconds_iter,
               r.seconds_iter / passes, r.pass_gflop * passes / r.seconds_iter, (long long)r.n_selected, r.inertia[0],
               r.inertia[r.iterations_run]);
    gp_kmeans_result_free(&r);
    free(x);
    MPI_Finalize();
    return 0;
}
