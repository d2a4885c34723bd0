/* test_mpi_kmeans.c — distributed k-means (kmeans.h), run on 1, 2 and 4 ranks:
 *  - well-separated clusters (12 in 16-D, tiny noise, points interleaved): one selected point
 *    per cluster, and the inertia never increases;
 *  - every result (centroids, assignments, nearest points, selection, inertia) is bitwise the
 *    result of rank 0 alone (MPI_COMM_SELF) on the whole data, for an even cut of the rows and
 *    for a skewed one that leaves the last rank empty;
 *  - the final assignment and the nearest point of every centroid equal a brute-force search
 *    in double precision (ties to the lower index), with duplicated points making exact ties;
 *  - n <= k keeps every point; k = 1 picks the point nearest the mean;
 *  - duplicates (5 distinct points, k = 8) leave clusters empty: they are re-seeded, nothing
 *    breaks, and the selection holds each distinct point once;
 *  - k = 0 and a NaN coordinate are input errors on every rank. */
#include "test_util.h"
#include "test_mpi.h"

#include <limits.h>
#include <mpi.h>
#include <stdbool.h>

#include "gaprune/kmeans.h"
#include "gaprune/log.h"

static int g_rank, g_P;

/* Rows [lo, hi) of rank r: an even cut, or (skewed) shares 1 : 2 : 3 ... with the last rank
 * holding nothing when there are several. */
static void cut(int64_t n, int r, int P, bool skewed, int64_t *lo, int64_t *hi) {
    if (!skewed || P == 1) {
        *lo = n * r / P;
        *hi = n * (r + 1) / P;
        return;
    }
    int64_t w = (int64_t)(P - 1) * P / 2, before = (int64_t)r * (r + 1) / 2;
    *lo = r < P - 1 ? n * before / w : n;
    *hi = r < P - 1 ? n * (before + r + 1) / w : n;
}

/* Runs on every rank with the rows of this rank (the whole x is known everywhere). */
static gp_status run_dist(const float *x, int64_t n, int d, const gp_kmeans_opts *o, bool skewed, gp_kmeans_result *r,
                          gp_err *err) {
    int64_t lo, hi;
    cut(n, g_rank, g_P, skewed, &lo, &hi);
    return gp_kmeans_run(x + (size_t)lo * d, hi - lo, d, o, MPI_COMM_WORLD, r, err);
}

static bool same_result(const gp_kmeans_result *a, const gp_kmeans_result *b) {
    if (a->n != b->n || a->k != b->k || a->d != b->d || a->iterations_run != b->iterations_run ||
        a->n_selected != b->n_selected)
        return false;
    size_t it = (size_t)a->iterations_run + 1;
    return !memcmp(a->centroids, b->centroids, (size_t)a->k * a->d * sizeof(float)) &&
           !memcmp(a->assign, b->assign, (size_t)a->n * sizeof(int32_t)) &&
           !memcmp(a->nearest, b->nearest, (size_t)a->k * sizeof(int64_t)) &&
           !memcmp(a->selected, b->selected, (size_t)a->n_selected * sizeof(int64_t)) &&
           !memcmp(a->inertia, b->inertia, it * sizeof(double)) && !memcmp(a->moved, b->moved, it * sizeof(int64_t)) &&
           !memcmp(a->reseeded, b->reseeded, it * sizeof(int64_t));
}

/* Rank 0 decides, every rank asserts (so no rank waits in a collective for a failed one). */
static void assert_everywhere(bool ok, const char *what) {
    int v = ok;
    MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!v) fail_msg("%s (on %d ranks)", what, g_P);
}

/* The distributed run, an even and a skewed cut, equals rank 0 alone; returns the reference
 * (meaningful on rank 0; the distributed result elsewhere). */
static void check_rank_independent(const float *x, int64_t n, int d, const gp_kmeans_opts *o, gp_kmeans_result *ref) {
    gp_err err = {0};
    memset(ref, 0, sizeof *ref);
    if (g_rank == 0) assert_int_equal(gp_kmeans_run(x, n, d, o, MPI_COMM_SELF, ref, &err), GP_OK);
    for (int skewed = 0; skewed < 2; skewed++) {
        gp_kmeans_result r;
        assert_int_equal(run_dist(x, n, d, o, skewed, &r, &err), GP_OK);
        assert_everywhere(g_rank != 0 || same_result(&r, ref), skewed ? "skewed cut differs from 1 rank" : "even cut differs from 1 rank");
        if (g_rank != 0 && !skewed) *ref = r;
        else gp_kmeans_result_free(&r);
    }
}

/* Brute force on the final centroids: assignments, nearest points, selection, last inertia. */
static bool brute_force_agrees(const float *x, const gp_kmeans_result *r) {
    const int d = r->d;
    double inertia = 0;
    for (int64_t i = 0; i < r->n; i++) {
        double b = INFINITY;
        int64_t a = -1;
        for (int64_t j = 0; j < r->k; j++) {
            double e = gp_kmeans_dist2(x + i * d, r->centroids + j * d, d);
            if (e < b) b = e, a = j;
        }
        if (a != r->assign[i]) return false;
        inertia += b;
    }
    if (fabs(inertia - r->inertia[r->iterations_run]) > 1e-12 * inertia + 1e-300) return false;
    int64_t *sel = malloc((size_t)r->k * sizeof(int64_t)), ns = 0;
    for (int64_t j = 0; j < r->k; j++) {
        double b = INFINITY;
        int64_t a = -1;
        for (int64_t i = 0; i < r->n; i++) {
            double e = gp_kmeans_dist2(x + i * d, r->centroids + j * d, d);
            if (e < b) b = e, a = i;
        }
        if (a != r->nearest[j]) {
            free(sel);
            return false;
        }
        bool seen = false;
        for (int64_t q = 0; q < ns; q++) seen |= sel[q] == a;
        if (!seen) sel[ns++] = a;
    }
    bool ok = ns == r->n_selected;
    for (int64_t q = 0; ok && q < ns; q++) {
        bool found = false;
        for (int64_t t = 0; t < ns; t++) found |= r->selected[t] == sel[q];
        ok = found && (q == 0 || r->selected[q] > r->selected[q - 1]);
    }
    free(sel);
    return ok;
}

static bool inertia_never_increases(const gp_kmeans_result *r) {
    for (int i = 1; i <= r->iterations_run; i++)
        if (r->inertia[i] > r->inertia[i - 1]) return false;
    return true;
}

/* 12 clusters in 16-D: centres in [-10, 10]^16, noise ±0.01; point i belongs to cluster i % 12. */
static void test_separated(void **state) {
    (void)state;
    const int C = 12, d = 16, per = 25;
    const int64_t n = (int64_t)C * per;
    float *centre = malloc((size_t)C * d * sizeof(float)), *x = malloc((size_t)n * d * sizeof(float));
    uint64_t s = 7;
    tu_fill(centre, (size_t)C * d, 10.0, &s);
    for (int64_t i = 0; i < n; i++)
        for (int q = 0; q < d; q++) x[i * d + q] = centre[(i % C) * d + q] + (float)(0.01 * tu_rand(&s));
    gp_kmeans_opts o = {.k = C, .iterations = 20, .seed = 42};
    gp_kmeans_result r;
    check_rank_independent(x, n, d, &o, &r);
    bool ok = r.n_selected == C && inertia_never_increases(&r) && brute_force_agrees(x, &r);
    int hit[12] = {0};
    for (int64_t q = 0; ok && q < r.n_selected; q++) hit[r.selected[q] % C]++;
    for (int c = 0; c < C; c++) ok = ok && hit[c] == 1;
    /* every true cluster is one k-means cluster */
    for (int64_t i = C; ok && i < n; i++) ok = r.assign[i] == r.assign[i % C];
    assert_everywhere(ok, "well-separated clusters: not one selected point per cluster");
    if (g_rank == 0)
        printf("    12 separated clusters: one point each (%lld..%lld), %d iterations, inertia %.3e -> %.3e, same on %d ranks\n",
               (long long)r.selected[0], (long long)r.selected[C - 1], r.iterations_run, r.inertia[0],
               r.inertia[r.iterations_run], g_P);
    gp_kmeans_result_free(&r);
    free(centre);
    free(x);
}

/* Random points with exact duplicates (ties everywhere) in 8-D, k = 40. */
static void test_ties_brute_force(void **state) {
    (void)state;
    const int d = 8;
    const int64_t n = 500;
    float *x = malloc((size_t)n * d * sizeof(float));
    uint64_t s = 11;
    tu_fill(x, (size_t)n * d, 1.0, &s);
    for (int64_t i = 3; i < n; i += 7) memcpy(x + i * d, x + (i - 3) * d, d * sizeof(float));
    gp_kmeans_opts o = {.k = 40, .iterations = 10, .seed = 3};
    gp_kmeans_result r;
    check_rank_independent(x, n, d, &o, &r);
    assert_everywhere(g_rank != 0 || (inertia_never_increases(&r) && brute_force_agrees(x, &r)),
                      "random points: the result is not the brute-force one, or the inertia rose");
    if (g_rank == 0)
        printf("    500 random points, k 40: %lld selected, %d iterations, inertia %.4f -> %.4f, brute force agrees\n",
               (long long)r.n_selected, r.iterations_run, r.inertia[0], r.inertia[r.iterations_run]);
    gp_kmeans_result_free(&r);
    free(x);
}

static void test_small_n(void **state) {
    (void)state;
    const int d = 3;
    float x[7 * 3];
    uint64_t s = 5;
    tu_fill(x, 21, 1.0, &s);
    for (int64_t k = 7; k <= 10; k += 3) {
        gp_kmeans_opts o = {.k = k, .iterations = 20, .seed = 1};
        gp_kmeans_result r;
        check_rank_independent(x, 7, d, &o, &r);
        bool ok = r.k == 7 && r.n_selected == 7 && !memcmp(r.centroids, x, sizeof x);
        for (int64_t i = 0; ok && i < 7; i++) ok = r.selected[i] == i && r.assign[i] == i;
        assert_everywhere(ok, "n <= k does not keep every point");
        gp_kmeans_result_free(&r);
    }
}

static void test_k1_mean(void **state) {
    (void)state;
    const int d = 5;
    const int64_t n = 200;
    float *x = malloc((size_t)n * d * sizeof(float));
    uint64_t s = 9;
    tu_fill(x, (size_t)n * d, 2.0, &s);
    gp_kmeans_opts o = {.k = 1, .iterations = 20, .seed = 8};
    gp_kmeans_result r;
    check_rank_independent(x, n, d, &o, &r);
    double mean[5] = {0};
    for (int64_t i = 0; i < n; i++)
        for (int q = 0; q < d; q++) mean[q] += x[i * d + q] / (double)n;
    double best = INFINITY, dev = 0;
    int64_t arg = -1;
    for (int64_t i = 0; i < n; i++) {
        double e = 0;
        for (int q = 0; q < d; q++) e += (x[i * d + q] - mean[q]) * (x[i * d + q] - mean[q]);
        if (e < best) best = e, arg = i;
    }
    for (int q = 0; q < d; q++) dev = fmax(dev, fabs(r.centroids[q] - mean[q]));
    assert_everywhere(g_rank != 0 || (r.n_selected == 1 && r.selected[0] == arg && dev < 1e-6 && brute_force_agrees(x, &r)),
                      "k = 1 does not pick the point nearest the mean");
    if (g_rank == 0)
        printf("    k = 1: point %lld, nearest the mean (centroid within %.1e of it), %d iterations\n", (long long)arg, dev,
               r.iterations_run);
    gp_kmeans_result_free(&r);
    free(x);
}

/* 5 distinct points, 10 copies each, interleaved; k = 8: k-means++ runs out of distance mass and
 * duplicates centres, whose clusters stay empty and are re-seeded every update. */
static void test_duplicates_empty_clusters(void **state) {
    (void)state;
    const int d = 4;
    const int64_t n = 50;
    float base[5 * 4], x[50 * 4];
    uint64_t s = 13;
    tu_fill(base, 20, 1.0, &s);
    for (int64_t i = 0; i < n; i++) memcpy(x + i * d, base + (i % 5) * d, d * sizeof(float));
    gp_kmeans_opts o = {.k = 8, .iterations = 5, .seed = 2};
    gp_kmeans_result r;
    check_rank_independent(x, n, d, &o, &r);
    int64_t reseeded = 0;
    for (int i = 0; i <= r.iterations_run; i++) reseeded += r.reseeded[i];
    bool ok = r.n_selected == 5 && reseeded > 0 && inertia_never_increases(&r) && brute_force_agrees(x, &r);
    for (int64_t q = 0; ok && q < 5; q++) ok = r.selected[q] == q; /* the first copy of each: ties go low */
    assert_everywhere(g_rank != 0 || ok, "duplicates: empty clusters not handled");
    if (g_rank == 0)
        printf("    5 distinct points, k 8: %lld empty clusters re-seeded over %d updates, selection 0..4\n",
               (long long)reseeded, r.iterations_run);
    gp_kmeans_result_free(&r);
}

static void test_bad_input(void **state) {
    (void)state;
    float x[10 * 2];
    uint64_t s = 1;
    tu_fill(x, 20, 1.0, &s);
    gp_err err = {0};
    gp_kmeans_result r;
    gp_kmeans_opts o = {.k = 0, .iterations = 3, .seed = 1};
    assert_int_equal(run_dist(x, 10, 2, &o, false, &r, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "k = 0"));
    o.k = 3;
    x[7 * 2 + 1] = NAN;
    assert_int_equal(run_dist(x, 10, 2, &o, true, &r, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "point 7 has a non-finite coordinate"));
}

int main(int argc, char **argv) {
    g_rank = tu_mpi_init(&argc, &argv, 0);
    MPI_Comm_size(MPI_COMM_WORLD, &g_P);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separated),        cmocka_unit_test(test_ties_brute_force),
        cmocka_unit_test(test_small_n),          cmocka_unit_test(test_k1_mean),
        cmocka_unit_test(test_duplicates_empty_clusters), cmocka_unit_test(test_bad_input),
    };
    return tu_mpi_finish(cmocka_run_group_tests_name("k-means", tests, NULL, NULL));
}
