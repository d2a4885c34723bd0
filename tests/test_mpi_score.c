/* test_mpi_score.c — scoring and selection over the ranks' slices (run on 1, 2 and 4 ranks):
 *  - gp_select_smallest with every rank passing its own cut of the items (uneven cuts, a rank
 *    with nothing, items split between ranks) prunes exactly the elements a sort of all scores
 *    by (score, global index) prunes, with many ties, and all-equal scores whose ties at the
 *    threshold span every rank;
 *  - gp_mask_build (magnitude) on a model whose weights are set to two magnitudes: the ties at
 *    the threshold cross rank boundaries and are pruned lowest global index first, in global
 *    and layer scope; the whole mask is the same on every rank;
 *  - a NaN weight on the last rank's slice stops every rank with exit 2 and one message naming
 *    the tensor and its element. */
#include "test_util.h"
#include "select_ref.h"
#include "test_mpi.h"

#include <mpi.h>

#include "gaprune/dist.h"
#include "gaprune/job.h"
#include "gaprune/log.h"
#include "gaprune/prune.h"
#include "gaprune/score.h"
#include "gaprune/stats.h"

/* ---- gp_select_smallest over the ranks ----------------------------------------------------------- */

typedef struct {
    const float *all; /* every score, global order */
    int64_t *start;   /* this rank's items: global offset and length */
    int64_t *numel;
} cut_src;

static gp_status give(void *vctx, int item, float *out, gp_err *err) {
    (void)err;
    const cut_src *c = vctx;
    memcpy(out, c->all + c->start[item], (size_t)c->numel[item] * sizeof(float));
    return GP_OK;
}

/* Selects k of the n scores in `all` (tensors of the given sizes, cut between ranks at cut[]) and
 * checks every rank's bits against the reference; returns the number of elements this rank held. */
static int64_t select_cut(const float *all, const int64_t *sizes, int ns, const int64_t *cut, int64_t k,
                          const uint8_t *want, float *thr) {
    const int r = gp_rank();
    int64_t start[8], numel[8], held = 0;
    int n = 0;
    for (int t = 0, at = 0; t < ns; at += (int)sizes[t], t++) {
        int64_t a = at > cut[r] ? at : cut[r], b = at + sizes[t] < cut[r + 1] ? at + sizes[t] : cut[r + 1];
        if (a < b) start[n] = a, numel[n++] = b - a, held += b - a;
    }
    uint8_t *keep[8];
    for (int i = 0; i < n; i++) keep[i] = malloc((size_t)(numel[i] + 7) / 8);
    cut_src c = {all, start, numel};
    gp_score_source src = {n, numel, give, &c};
    gp_err err = {0};
    assert_int_equal(gp_select_smallest(&src, k, keep, thr, &err), GP_OK);
    int64_t pruned = 0;
    for (int i = 0; i < n; i++)
        for (int64_t j = 0; j < numel[i]; j++) {
            int p = !gp_bit_get(keep[i], j);
            if (p != want[start[i] + j])
                fail_msg("rank %d: element %lld pruned %d, want %d (k %lld)", r, (long long)(start[i] + j), p,
                         want[start[i] + j], (long long)k);
            pruned += p;
        }
    gp_allreduce_sum_i64(&pruned, 1);
    assert_int_equal(pruned, k); /* exactly k over all ranks */
    float t0 = *thr;
    MPI_Bcast(&t0, 1, MPI_FLOAT, 0, MPI_COMM_WORLD);
    assert_true(gp_float_key(t0) == gp_float_key(*thr)); /* the same threshold everywhere */
    for (int i = 0; i < n; i++) free(keep[i]);
    return held;
}

static void test_select_across_ranks(void **state) {
    (void)state;
    const int P = gp_nranks();
    const int64_t sizes[3] = {700, 1, 1300}, n = 2001;
    float *all = malloc((size_t)n * sizeof(float));
    uint8_t *want = malloc((size_t)n);
    int64_t cut[65];
    uint64_t seed = 17;
    for (int64_t i = 0; i < n; i++) all[i] = sr_tie_score(&seed);
    /* skewed cuts (rank q ends at n·(q+1)²/P²), rank 1 empty when there are 3 or more */
    cut[0] = 0;
    for (int q = 1; q <= P; q++) cut[q] = n * q * q / ((int64_t)P * P);
    if (P >= 3) cut[2] = cut[1];
    const int64_t ks[] = {0, 1, n / 3, n / 2, n - 1, n};
    float thr;
    for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) {
        sr_reference(all, n, ks[q], want);
        select_cut(all, sizes, 3, cut, ks[q], want, &thr);
    }
    /* all scores equal: the threshold is that score and exactly the first k in global order go,
     * whichever ranks hold them (the even cut puts the k-th in the middle of the last rank) */
    for (int64_t i = 0; i < n; i++) all[i] = 0.5f;
    for (int q = 0; q <= P; q++) cut[q] = n * q / P;
    const int64_t k = n - n / (2 * P);
    for (int64_t i = 0; i < n; i++) want[i] = i < k;
    int64_t held = select_cut(all, sizes, 3, cut, k, want, &thr);
    assert_true(thr == 0.5f);
    printf("    gp_select_smallest on %d rank%s: 6 k of %lld tied scores on skewed cuts equal the sort; all equal: "
           "the first %lld in global order pruned (this rank held %lld)\n",
           P, P > 1 ? "s" : "", (long long)n, (long long)k, (long long)held);
    free(all), free(want);
}

/* ---- gp_mask_build on a model with tied weights ---------------------------------------------------- */

typedef struct {
    gp_model *m;
    gp_prune_opts cfg;
    gp_job job;
    char *dir;
    char path[4200];
} model_case;

static void case_init(model_case *c, const char *scope) {
    memset(c, 0, sizeof *c);
    gp_job_defaults(&c->job);
    gp_err err = {0};
    assert_int_equal(gp_scope_parse(scope, &c->job.prune.scope, &err), GP_OK);
    gp_prune_opts_from_job(&c->cfg, &c->job);
    assert_int_equal(gp_model_load(FIXTURES "/bert-f32", &c->m, &err), GP_OK);
    if (gp_rank() == 0) {
        c->dir = tu_mkdtemp();
        snprintf(c->path, sizeof c->path, "%s/mask.h5", c->dir);
    }
}

static void case_free(model_case *c) {
    gp_model_free(c->m);
    gp_job_free(&c->job);
    if (c->dir) tu_rmtree(c->dir);
    free(c->dir);
}

/* Selected weight g (global order over the selected tensors): magnitude 1 every third, else
 * 0.25 with alternating signs, so two thirds tie at 0.25. */
static float tied_weight(int64_t g) { return g % 3 == 0 ? 1.0f : (g % 2 ? -0.25f : 0.25f); }

static void test_ties_across_ranks(void **state) {
    (void)state;
    static const char *scopes[] = {"global", "layer"};
    for (int s = 0; s < 2; s++) {
        model_case c;
        case_init(&c, scopes[s]);
        gp_model *m = c.m;
        /* set the selected weights; note each one's global index and block */
        int64_t total = 0;
        for (int i = 0; i < m->table.n; i++) {
            int layer;
            if (!gp_prune_selects(c.cfg.layers, m, i, &layer)) continue;
            float *w = gp_model_param(m, i);
            for (size_t k = 0; k < m->table.p[i].numel; k++) w[k] = tied_weight(total + (int64_t)k);
            total += (int64_t)m->table.p[i].numel;
        }
        gp_mask mask;
        gp_err err = {0};
        gp_mask_request req = {gp_criterion_find("magnitude"), 0.5, NULL, c.path, "test"};
        assert_int_equal(gp_mask_build(&c.cfg, m, &req, &mask, &err), GP_OK);
        /* expected: within the scope's group (all, or one block), the first floor(n/2) weights of
         * magnitude 0.25 in global order are pruned (there are 2n/3 of them), nothing else */
        int64_t g = 0, checked = 0, last_tie = -1;
        int64_t left = 0; /* ties still to prune in the current group */
        int cur_layer = -2;
        const int P = gp_nranks();
        for (int t = 0; t < mask.n; t++) {
            int layer;
            gp_model_param_kind(m, mask.param[t], &layer);
            if (s == 0 && t == 0) left = total / 2;
            if (s == 1 && layer != cur_layer) {
                int64_t nl = 0;
                for (int u = t; u < mask.n; u++) {
                    int l2;
                    gp_model_param_kind(m, mask.param[u], &l2);
                    if (l2 == layer) nl += mask.numel[u];
                }
                left = nl / 2, cur_layer = layer;
            }
            for (int64_t k = 0; k < mask.numel[t]; k++, g++) {
                const bool tie = tied_weight(g) != 1.0f;
                const int want_pruned = tie && left > 0;
                left -= want_pruned;
                if ((!gp_bit_get(mask.keep[t], k)) != want_pruned)
                    fail_msg("%s: weight %lld of %s pruned %d, want %d", scopes[s], (long long)k,
                             m->src_names[mask.param[t]], !gp_bit_get(mask.keep[t], k), want_pruned);
                checked++;
                if (want_pruned) last_tie = g;
            }
        }
        assert_int_equal(checked, total);
        assert_int_equal(mask.total, total);
        assert_int_equal(mask.pruned, s == 0 ? total / 2 : mask.pruned);
        if (gp_rank() == 0)
            printf("    magnitude %s on %d rank%s, %lld weights two thirds tied at the threshold: the first ties in "
                   "global order pruned, %lld pruned (threshold %g)\n",
                   scopes[s], P, P > 1 ? "s" : "", (long long)total, (long long)mask.pruned, mask.threshold);
        /* the slices are the statistics' blocks: in global scope the last tie pruned lies past
         * rank 0's block, so the ties below it were counted on other ranks */
        int64_t *off = malloc((size_t)m->table.n * sizeof(int64_t)), bounds[65];
        gp_stats_blocks(&m->table, off, gp_stats_layout(m, c.cfg.layers, off), P, bounds);
        int owner = 0;
        while (owner + 1 < P && last_tie >= bounds[owner + 1]) owner++;
        if (s == 0 && P > 1) assert_true(owner > 0);
        if (gp_rank() == 0) printf("      the last tie pruned, weight %lld, is in rank %d's slice\n", (long long)last_tie, owner);
        free(off);
        gp_mask_free(&mask);
        case_free(&c);
    }
}

static void test_nan_on_last_rank(void **state) {
    (void)state;
    model_case c;
    case_init(&c, "global");
    gp_model *m = c.m;
    int last = -1;
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        if (gp_prune_selects(c.cfg.layers, m, i, &layer)) last = i;
    }
    const size_t n = m->table.p[last].numel;
    gp_model_param(m, last)[n - 3] = NAN; /* in the last rank's slice */
    gp_mask mask;
    gp_err err = {0};
    gp_mask_request req = {gp_criterion_find("magnitude"), 0.5, NULL, c.path, "test"};
    assert_int_equal(gp_mask_build(&c.cfg, m, &req, &mask, &err), GP_EINPUT);
    char want[64];
    snprintf(want, sizeof want, "at element %zu ", n - 3);
    if (!strstr(err.msg, m->src_names[last]) || !strstr(err.msg, "score is nan") || !strstr(err.msg, want))
        fail_msg("rank %d: message \"%s\"", gp_rank(), err.msg);
    if (gp_rank() == 0) printf("    a NaN weight in the last rank's slice: every rank stops with \"%s\"\n", err.msg);
    case_free(&c);
}

int main(int argc, char **argv) {
    tu_mpi_init(&argc, &argv, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_across_ranks),
        cmocka_unit_test(test_ties_across_ranks),
        cmocka_unit_test(test_nan_on_last_rank),
    };
    return tu_mpi_finish(cmocka_run_group_tests_name("score over ranks", tests, NULL, NULL));
}
