/* kmeans.c — distributed k-means with k-means++ seeding, the same on any number of ranks
 * (see kmeans.h). */
#include "gaprune/kmeans.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/kernels.h"
#include "gaprune/log.h"
#include "gaprune/rng.h"

/* Blocks of the sweep: 1024 points against 1024 centroids, a 4 MiB score block (larger ones ran
 * no faster on 50,000 x 5000 x 384; smaller ones spent more of the time packing operands). */
#define ROWS 1024
#define COLS 1024
#define SEED_BATCH 128 /* k-means++ centres between two refreshes of the D² snapshot */
#define SEED_REJECTS 8 /* rejected proposals in a row that refresh the snapshot early */

/* MPI_DOUBLE_INT's layout, for MINLOC / MAXLOC (the lower index wins a tie, by the standard). */
typedef struct {
    double v;
    int i;
} val_idx;

typedef struct {
    MPI_Comm comm;
    int rank, P;
    const float *x; /* [nl, d] */
    int64_t nl, lo, n;
    int64_t *starts; /* [P + 1] first global row of every rank */
    int d;
    double *xn, *xs; /* [nl] ‖x‖², ‖x‖ */
    double gamma;    /* bound on the relative rounding of a float dot product of length d */
} km;

double gp_kmeans_dist2(const float *a, const float *b, int d) {
    /* four running sums in a fixed pattern: as deterministic as one, without its add latency */
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    int k = 0;
    for (; k + 4 <= d; k += 4)
        for (int q = 0; q < 4; q++) {
            double t = (double)a[k + q] - (double)b[k + q];
            s[q] += t * t;
        }
    for (; k < d; k++) {
        double t = (double)a[k] - (double)b[k];
        s[0] += t * t;
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* ---- order-independent sums ---------------------------------------------------------------------- */

/* The power of two that puts `count` values of magnitude <= vmax on an int64 grid whose total
 * stays below 2^62: integer sums are exact, so any grouping over ranks gives the same total. */
static double fixed_scale(double vmax, int64_t count) {
    if (!(vmax > 0)) return 0.0;
    int ex, bits = 0;
    frexp(vmax, &ex); /* vmax < 2^ex */
    while (bits < 63 && ((int64_t)1 << bits) < count) bits++;
    int e = 62 - ex - bits;
    if (e > 1000) e = 1000;
    if (e < -1000) e = -1000;
    return ldexp(1.0, e);
}

static int64_t to_fixed(double v, double scale) { return (int64_t)llrint(v * scale); }

static void allreduce_i64(MPI_Comm comm, int64_t *buf, size_t n) {
    for (size_t i = 0; i < n; i += GP_DIST_CHUNK) {
        size_t c = n - i < GP_DIST_CHUNK ? n - i : GP_DIST_CHUNK;
        GP_MPI(MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)c, MPI_INT64_T, MPI_SUM, comm));
    }
}

static double allreduce_max(MPI_Comm comm, double v) {
    double out;
    GP_MPI(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, comm));
    return out;
}

/* Σ v over every rank's nl values (v >= 0), the same for any partition. */
static double exact_sum(const km *s, const double *v) {
    double m = 0.0;
    for (int64_t i = 0; i < s->nl; i++) m = v[i] > m ? v[i] : m;
    double scale = fixed_scale(allreduce_max(s->comm, m), s->n);
    if (scale == 0.0) return 0.0;
    int64_t t = 0;
    for (int64_t i = 0; i < s->nl; i++) t += to_fixed(v[i], scale);
    allreduce_i64(s->comm, &t, 1);
    return (double)t / scale;
}

/* ---- rows that live on one rank -------------------------------------------------------------- */

static int owner_of(const km *s, int64_t g) {
    int r = 0;
    while (r + 1 < s->P && s->starts[r + 1] <= g) r++;
    return r;
}

/* Row g (global) into out on every rank. */
static void bcast_row(const km *s, int64_t g, float *out) {
    int r = owner_of(s, g);
    if (r == s->rank) memcpy(out, s->x + (size_t)(g - s->lo) * s->d, (size_t)s->d * sizeof(float));
    GP_MPI(MPI_Bcast(out, s->d, MPI_FLOAT, r, s->comm));
}

/* ---- the screened sweep ------------------------------------------------------------------------- */

typedef struct {
    const float *c; /* [k, d] */
    int64_t k;
    double *cn, *cs; /* [k] ‖c‖², ‖c‖ */
    double csmax, cnmax;
} centres;

static void centres_norms(centres *c, int d) {
    c->csmax = c->cnmax = 0.0;
    for (int64_t j = 0; j < c->k; j++) {
        const float *r = c->c + (size_t)j * d;
        double t = 0.0;
        for (int q = 0; q < d; q++) t += (double)r[q] * r[q];
        c->cn[j] = t;
        c->cs[j] = sqrt(t);
        if (c->cs[j] > c->csmax) c->csmax = c->cs[j];
        if (t > c->cnmax) c->cnmax = t;
    }
}

/*
 * One pass over this rank's points against the centres, block by block through sgemm.
 * best[i] (and assign[i] when not NULL) keep the running exact nearest centre of point i, ties
 * to the lower centre index (they may start from any centre's exact distance: a warm start); colv[j], coli[j] (when not NULL) the running exact distance and
 * global index of the nearest point of centre j, ties to the lower point index. The sgemm estimate est = ‖x‖² + ‖c‖² − 2·fl(x·c) differs from
 * the exact distance by at most 2γ‖x‖‖c‖ plus double rounding; tol is twice that, so a pair
 * whose est − tol is not below the running best cannot win, and only the others are recomputed
 * exactly. The outcome is thus the exact argmin whatever sgemm's blocking and rounding.
 */
static void sweep(const km *s, const centres *c, double *best, int32_t *assign, double *colv, int *coli, float *S) {
    const int d = s->d;
    for (int64_t i0 = 0; i0 < s->nl; i0 += ROWS) {
        int m = (int)(s->nl - i0 < ROWS ? s->nl - i0 : ROWS);
        for (int64_t j0 = 0; j0 < c->k; j0 += COLS) {
            int nc = (int)(c->k - j0 < COLS ? c->k - j0 : COLS);
            gp_sgemm(0, 1, m, nc, d, 1.0f, s->x + (size_t)i0 * d, d, c->c + (size_t)j0 * d, d, 0.0f, S, nc);
            const double *cn = c->cn + j0;
            double *cv = colv ? colv + j0 : NULL;
            for (int ii = 0; ii < m; ii++) {
                const int64_t i = i0 + ii;
                const float *xi = s->x + (size_t)i * d, *row = S + (size_t)ii * nc;
                const double xn = s->xn[i];
                const double tol = 4.0 * s->gamma * s->xs[i] * c->csmax + 0x1p-40 * (xn + c->cnmax);
                const double off = xn - tol; /* lower bound of the exact distance: v + off */
                double b = best[i];
                int32_t a = assign ? assign[i] : -1;
                for (int q0 = 0; q0 < nc; q0 += 16) {
                    const int q1 = nc - q0 < 16 ? nc : q0 + 16;
                    /* a vectorisable screen of 16 entries first: almost every block has no candidate */
                    const double row_t = b - off;
                    int any = 0;
                    if (cv)
                        for (int q = q0; q < q1; q++) {
                            const double v = cn[q] - 2.0 * (double)row[q];
                            any |= (v < row_t) | (v + off < cv[q]);
                        }
                    else
                        for (int q = q0; q < q1; q++) any |= cn[q] - 2.0 * (double)row[q] < row_t;
                    if (!any) continue;
                    for (int q = q0; q < q1; q++) {
                        const double lb = cn[q] - 2.0 * (double)row[q] + off;
                        const bool for_row = lb < b, for_col = cv && lb < cv[q];
                        if (!for_row && !for_col) continue;
                        const double e = gp_kmeans_dist2(xi, c->c + (size_t)(j0 + q) * d, d);
                        if (for_row && (e < b || (e == b && j0 + q < a))) b = e, a = (int32_t)(j0 + q);
                        if (for_col && e < cv[q]) cv[q] = e, coli[j0 + q] = (int)(s->lo + i);
                    }
                }
                best[i] = b;
                if (assign) assign[i] = a;
            }
        }
    }
}

/* ---- k-means++ ------------------------------------------------------------------------------------ */

typedef struct {
    double *D2;       /* [nl] squared distance to the nearest centre of the snapshot */
    int64_t *w, *cum; /* [nl] D2 on the fixed grid, and its running sum */
    int64_t *W;       /* [P] every rank's total */
    int64_t total;
    double scale;     /* fixed at the first refresh, when D2 is largest */
    int64_t ts;       /* centres [0, ts) are in the snapshot */
} snapshot;

/* Brings the snapshot up to centres [0, t). Collective. */
static void refresh(const km *s, snapshot *sn, const float *C, int64_t t, float *S) {
    if (t == sn->ts) return;
    centres c = {C + (size_t)sn->ts * s->d, t - sn->ts, gp_malloc((size_t)(t - sn->ts) * sizeof(double)),
                 gp_malloc((size_t)(t - sn->ts) * sizeof(double)), 0, 0};
    centres_norms(&c, s->d);
    sweep(s, &c, sn->D2, NULL, NULL, NULL, S);
    free(c.cn);
    free(c.cs);
    if (sn->ts == 0) { /* the first centre: D2 never grows again, so this grid holds every later weight */
        double m = 0.0;
        for (int64_t i = 0; i < s->nl; i++) m = sn->D2[i] > m ? sn->D2[i] : m;
        sn->scale = fixed_scale(allreduce_max(s->comm, m), s->n);
    }
    int64_t run = 0;
    for (int64_t i = 0; i < s->nl; i++) {
        sn->w[i] = to_fixed(sn->D2[i], sn->scale);
        run += sn->w[i];
        sn->cum[i] = run;
    }
    GP_MPI(MPI_Allgather(&run, 1, MPI_INT64_T, sn->W, 1, MPI_INT64_T, s->comm));
    sn->total = 0;
    for (int r = 0; r < s->P; r++) sn->total += sn->W[r];
    sn->ts = t;
}

/*
 * Exact k-means++ over the fixed-point weights w = D²·scale. A proposal x is drawn ∝ w_snapshot(x)
 * (a binary search on its owner) and kept with probability w_now(x) / w_snapshot(x), where w_now
 * also counts the centres chosen since the snapshot: the kept x is distributed ∝ w_now(x), as
 * k-means++ asks, while the O(n·d) distance updates happen in sgemm batches, not one centre at a
 * time. When every weight is zero (fewer distinct points than k) a point is drawn uniformly.
 */
static void seed_plusplus(const km *s, int64_t k, uint64_t seed, const char *label, float *C) {
    const int d = s->d;
    uint64_t rng = seed ^ 0x6a09e667f3bcc909ull;
    snapshot sn = {gp_malloc((size_t)(s->nl ? s->nl : 1) * sizeof(double)),
                   gp_malloc((size_t)(s->nl ? s->nl : 1) * sizeof(int64_t)),
                   gp_malloc((size_t)(s->nl ? s->nl : 1) * sizeof(int64_t)), gp_malloc((size_t)s->P * sizeof(int64_t)),
                   0, 0.0, 0};
    for (int64_t i = 0; i < s->nl; i++) sn.D2[i] = INFINITY;
    float *S = gp_malloc((size_t)ROWS * COLS * sizeof(float));
    const size_t pk = 2 * sizeof(int64_t) + (size_t)d * sizeof(float); /* w_snapshot, w_now, the row */
    unsigned char *packet = gp_malloc(pk);
    char plabel[96];
    snprintf(plabel, sizeof plabel, "%s k-means++", label ? label : "kmeans");
    gp_progress prog;
    if (label) gp_progress_init(&prog, plabel, k, "centres");

    bcast_row(s, (int64_t)gp_rng_below(&rng, (uint64_t)s->n), C);
    int64_t t = 1;
    refresh(s, &sn, C, t, S);
    int rejects = 0;
    while (t < k) {
        if (sn.total == 0) {
            bcast_row(s, (int64_t)gp_rng_below(&rng, (uint64_t)s->n), C + (size_t)t * d);
            t++;
        } else {
            int64_t r = (int64_t)gp_rng_below(&rng, (uint64_t)sn.total);
            int owner = 0;
            while (r >= sn.W[owner]) r -= sn.W[owner++];
            int64_t hdr[2] = {0, 0};
            if (owner == s->rank) {
                int64_t lo = 0, hi = s->nl - 1; /* the first i with cum[i] > r */
                while (lo < hi) {
                    int64_t mid = lo + (hi - lo) / 2;
                    if (sn.cum[mid] > r) hi = mid;
                    else lo = mid + 1;
                }
                const float *xi = s->x + (size_t)lo * d;
                double now = sn.D2[lo];
                for (int64_t j = sn.ts; j < t; j++) {
                    double e = gp_kmeans_dist2(xi, C + (size_t)j * d, d);
                    if (e < now) now = e;
                }
                hdr[0] = sn.w[lo];
                hdr[1] = to_fixed(now, sn.scale);
                memcpy(packet + sizeof hdr, xi, (size_t)d * sizeof(float));
            }
            memcpy(packet, hdr, sizeof hdr);
            GP_MPI(MPI_Bcast(packet, (int)pk, MPI_BYTE, owner, s->comm));
            memcpy(hdr, packet, sizeof hdr);
            if ((int64_t)gp_rng_below(&rng, (uint64_t)hdr[0]) < hdr[1]) {
                memcpy(C + (size_t)t * d, packet + sizeof hdr, (size_t)d * sizeof(float));
                t++;
                rejects = 0;
            } else {
                rejects++;
            }
        }
        if (t - sn.ts >= SEED_BATCH || rejects >= SEED_REJECTS) {
            refresh(s, &sn, C, t, S);
            rejects = 0;
        }
        if (label) gp_progress_update(&prog, t);
    }
    if (label) gp_progress_done(&prog);
    free(packet);
    free(S);
    free(sn.D2);
    free(sn.w);
    free(sn.cum);
    free(sn.W);
}

/* ---- Lloyd -------------------------------------------------------------------------------------------- */

/* Centroids from the points' assignments; empty clusters re-seeded. Returns how many were. */
static int64_t update(const km *s, const int32_t *assign, double *best, float *C, int64_t k, double xscale,
                      int64_t *sums, int64_t *counts) {
    const int d = s->d;
    memset(sums, 0, (size_t)k * d * sizeof(int64_t));
    memset(counts, 0, (size_t)k * sizeof(int64_t));
    for (int64_t i = 0; i < s->nl; i++) {
        const float *xi = s->x + (size_t)i * d;
        int64_t *sj = sums + (size_t)assign[i] * d;
        for (int q = 0; q < d; q++) sj[q] += to_fixed(xi[q], xscale);
        counts[assign[i]]++;
    }
    allreduce_i64(s->comm, sums, (size_t)k * d);
    allreduce_i64(s->comm, counts, (size_t)k);
    int64_t empty = 0;
    for (int64_t j = 0; j < k; j++) {
        float *cj = C + (size_t)j * d;
        if (counts[j] > 0) {
            for (int q = 0; q < d; q++) cj[q] = (float)((double)sums[(size_t)j * d + q] / xscale / (double)counts[j]);
            continue;
        }
        /* the point farthest from its centroid that is not a new centroid yet (best < 0 marks those) */
        val_idx mine = {-1.0, INT_MAX}, far;
        for (int64_t i = 0; i < s->nl; i++)
            if (best[i] > mine.v) mine.v = best[i], mine.i = (int)(s->lo + i);
        GP_MPI(MPI_Allreduce(&mine, &far, 1, MPI_DOUBLE_INT, MPI_MAXLOC, s->comm));
        bcast_row(s, far.i, cj);
        if (far.i >= s->lo && far.i < s->lo + s->nl) best[far.i - s->lo] = -1.0;
        empty++;
    }
    return empty;
}

static void result_alloc(gp_kmeans_result *r, int64_t n, int64_t k, int d, int max_iter) {
    r->n = n;
    r->k = k;
    r->d = d;
    r->centroids = gp_malloc((size_t)k * d * sizeof(float));
    r->assign = gp_malloc((size_t)n * sizeof(int32_t));
    r->nearest = gp_malloc((size_t)k * sizeof(int64_t));
    r->selected = gp_malloc((size_t)k * sizeof(int64_t));
    r->inertia = gp_calloc((size_t)max_iter + 1, sizeof(double));
    r->moved = gp_calloc((size_t)max_iter + 1, sizeof(int64_t));
    r->reseeded = gp_calloc((size_t)max_iter + 1, sizeof(int64_t));
}

/* [n] on every rank from every rank's [nl] block. */
static void gather_assign(const km *s, const int32_t *mine, int32_t *all) {
    int *counts = gp_malloc((size_t)s->P * sizeof(int)), *displs = gp_malloc((size_t)s->P * sizeof(int));
    for (int r = 0; r < s->P; r++) {
        counts[r] = (int)(s->starts[r + 1] - s->starts[r]);
        displs[r] = (int)s->starts[r];
    }
    GP_MPI(MPI_Allgatherv(mine, (int)s->nl, MPI_INT32_T, all, counts, displs, MPI_INT32_T, s->comm));
    free(counts);
    free(displs);
}

/* n <= k: every point is a cluster of its own. */
static void everyone(const km *s, gp_kmeans_result *r) {
    GP_CHECK(s->n * s->d <= INT_MAX, "%lld points of dimension %d in one gather", (long long)s->n, s->d);
    int *counts = gp_malloc((size_t)s->P * sizeof(int)), *displs = gp_malloc((size_t)s->P * sizeof(int));
    for (int q = 0; q < s->P; q++) {
        counts[q] = (int)((s->starts[q + 1] - s->starts[q]) * s->d);
        displs[q] = (int)(s->starts[q] * s->d);
    }
    GP_MPI(MPI_Allgatherv(s->x, (int)(s->nl * s->d), MPI_FLOAT, r->centroids, counts, displs, MPI_FLOAT, s->comm));
    free(counts);
    free(displs);
    for (int64_t i = 0; i < s->n; i++) r->assign[i] = (int32_t)i, r->nearest[i] = r->selected[i] = i;
    r->n_selected = s->n;
    r->moved[0] = s->n;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

gp_status gp_kmeans_run(const float *x, int64_t n_local, int d, const gp_kmeans_opts *o, MPI_Comm comm,
                        gp_kmeans_result *r, gp_err *err) {
    memset(r, 0, sizeof *r);
    GP_CHECK(n_local >= 0 && (n_local == 0 || x), "n_local %lld", (long long)n_local);
    km s = {.comm = comm, .x = x, .nl = n_local, .d = d};
    GP_MPI(MPI_Comm_rank(comm, &s.rank));
    GP_MPI(MPI_Comm_size(comm, &s.P));
    /* the layout, and the first non-finite coordinate anywhere */
    int64_t bad = INT64_MAX;
    s.starts = gp_malloc((size_t)(s.P + 1) * sizeof(int64_t));
    GP_MPI(MPI_Allgather(&n_local, 1, MPI_INT64_T, s.starts + 1, 1, MPI_INT64_T, comm));
    s.starts[0] = 0;
    for (int q = 0; q < s.P; q++) s.starts[q + 1] += s.starts[q];
    s.lo = s.starts[s.rank];
    s.n = s.starts[s.P];
    for (int64_t i = 0; d > 0 && i < n_local && bad == INT64_MAX; i++)
        for (int q = 0; q < d; q++)
            if (!isfinite(x[(size_t)i * d + q])) {
                bad = s.lo + i;
                break;
            }
    GP_MPI(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT64_T, MPI_MIN, comm));
    gp_status rc = GP_OK;
    if (o->k < 1) rc = gp_errf(err, GP_EINPUT, "k-means: k = %lld, must be at least 1", (long long)o->k);
    else if (d < 1) rc = gp_errf(err, GP_EINPUT, "k-means: points of dimension %d", d);
    else if (s.n == 0) rc = gp_errf(err, GP_EINPUT, "k-means: no points");
    else if (s.n > INT_MAX) rc = gp_errf(err, GP_EINPUT, "k-means: %lld points, at most %d", (long long)s.n, INT_MAX);
    else if (bad != INT64_MAX) rc = gp_errf(err, GP_EINPUT, "k-means: point %lld has a non-finite coordinate", (long long)bad);
    else if (o->iterations < 0) rc = gp_errf(err, GP_EINPUT, "k-means: %d iterations", o->iterations);
    if (rc) {
        free(s.starts);
        return rc;
    }
    const int64_t k = o->k < s.n ? o->k : s.n;
    const int R = o->iterations;
    result_alloc(r, s.n, k, d, R);
    if (s.n <= o->k) {
        everyone(&s, r);
        free(s.starts);
        return GP_OK;
    }
    const double u = 0x1p-24;
    s.gamma = d * u / (1.0 - d * u);
    s.xn = gp_malloc((size_t)(n_local ? n_local : 1) * sizeof(double));
    s.xs = gp_malloc((size_t)(n_local ? n_local : 1) * sizeof(double));
    double xabs = 0.0;
    for (int64_t i = 0; i < n_local; i++) {
        const float *xi = x + (size_t)i * d;
        double t = 0.0;
        for (int q = 0; q < d; q++) {
            t += (double)xi[q] * xi[q];
            if (fabs(xi[q]) > xabs) xabs = fabs(xi[q]);
        }
        s.xn[i] = t;
        s.xs[i] = sqrt(t);
    }
    /* centroid sums: one coordinate of every point on the grid, per cluster */
    const double xscale = fixed_scale(allreduce_max(comm, xabs), s.n);

    double t0 = gp_now();
    seed_plusplus(&s, k, o->seed, o->label, r->centroids);
    r->seconds_seed = gp_now() - t0;
    r->pass_gflop = 2.0 * (double)s.n * (double)k * d / 1e9;
    if (o->label)
        gp_log0("%s: %lld k-means++ centres from %lld points of dimension %d in %.2f s", o->label, (long long)k,
                (long long)s.n, d, r->seconds_seed);

    const size_t nl1 = (size_t)(n_local ? n_local : 1);
    double *best = gp_malloc(nl1 * sizeof(double));
    int32_t *assign = gp_malloc(nl1 * sizeof(int32_t)), *prev = gp_malloc(nl1 * sizeof(int32_t));
    double *colv = gp_malloc((size_t)k * sizeof(double));
    int *coli = gp_malloc((size_t)k * sizeof(int));
    int64_t *sums = gp_malloc((size_t)k * d * sizeof(int64_t)), *counts = gp_malloc((size_t)k * sizeof(int64_t));
    float *S = gp_malloc((size_t)ROWS * COLS * sizeof(float));
    centres c = {r->centroids, k, gp_malloc((size_t)k * sizeof(double)), gp_malloc((size_t)k * sizeof(double)), 0, 0};
    t0 = gp_now();
    int p = 0;
    for (;; p++) {
        double tp = gp_now();
        centres_norms(&c, d);
        /* from the second pass on, each point starts from its previous centroid: a new winner then
         * has to beat a close distance, so few other pairs need the exact check */
        for (int64_t i = 0; i < n_local; i++)
            best[i] = p == 0 ? INFINITY : gp_kmeans_dist2(x + (size_t)i * d, r->centroids + (size_t)assign[i] * d, d);
        if (p == 0)
            for (int64_t i = 0; i < n_local; i++) assign[i] = INT32_MAX;
        for (int64_t j = 0; j < k; j++) colv[j] = INFINITY, coli[j] = INT_MAX;
        sweep(&s, &c, best, assign, colv, coli, S);
        int64_t moved = 0;
        for (int64_t i = 0; i < n_local; i++) moved += p == 0 || assign[i] != prev[i];
        allreduce_i64(comm, &moved, 1);
        r->inertia[p] = exact_sum(&s, best);
        r->moved[p] = moved;
        /* no point moved and the centroids were plain means: updating again gives them back */
        bool converged = p > 0 && moved == 0 && r->reseeded[p] == 0 && !o->all_iterations;
        bool last = p == R || converged;
        if (!last) {
            memcpy(prev, assign, (size_t)n_local * sizeof(int32_t));
            r->reseeded[p + 1] = update(&s, assign, best, r->centroids, k, xscale, sums, counts);
        }
        if (o->label) {
            char change[48] = "";
            if (p > 0 && r->inertia[p - 1] > 0)
                snprintf(change, sizeof change, " (%+.3f%%)", 100.0 * (r->inertia[p] / r->inertia[p - 1] - 1.0));
            gp_log0("%s: iteration %d/%d: inertia %.6e%s, %lld points moved, %lld empty clusters re-seeded, %.2f s%s",
                    o->label, p, R, r->inertia[p], change, (long long)moved, (long long)(last ? 0 : r->reseeded[p + 1]),
                    gp_now() - tp, converged ? " (converged: no point moved)" : "");
        }
        if (last) break;
    }
    r->iterations_run = p;
    val_idx *col = gp_malloc((size_t)k * sizeof(val_idx));
    for (int64_t j = 0; j < k; j++) col[j] = (val_idx){colv[j], coli[j]};
    GP_MPI(MPI_Allreduce(MPI_IN_PLACE, col, (int)k, MPI_DOUBLE_INT, MPI_MINLOC, comm));
    r->seconds_iter = gp_now() - t0;
    for (int64_t j = 0; j < k; j++) r->nearest[j] = r->selected[j] = col[j].i;
    qsort(r->selected, (size_t)k, sizeof(int64_t), cmp_i64);
    int64_t u_n = 0;
    for (int64_t j = 0; j < k; j++)
        if (u_n == 0 || r->selected[u_n - 1] != r->selected[j]) r->selected[u_n++] = r->selected[j];
    r->n_selected = u_n;
    gather_assign(&s, assign, r->assign);

    free(c.cn);
    free(c.cs);
    free(S);
    free(sums);
    free(counts);
    free(col);
    free(colv);
    free(coli);
    free(best);
    free(assign);
    free(prev);
    free(s.xn);
    free(s.xs);
    free(s.starts);
    return GP_OK;
}

void gp_kmeans_result_free(gp_kmeans_result *r) {
    free(r->centroids);
    free(r->assign);
    free(r->nearest);
    free(r->selected);
    free(r->inertia);
    free(r->moved);
    free(r->reseeded);
    memset(r, 0, sizeof *r);
}
