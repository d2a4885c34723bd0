/* test_prune.c — every criterion on hand-made arrays against hand-computed values, the
 * authors' smoothed alignment, and selection against a sort-based reference on random scores
 * with many ties, for every scope. */
#include "test_util.h"
#include "select_ref.h"

#include "gaprune/prune.h"

static gp_score_in base_in(void) {
    static const float w[4] = {0.25f, -1.0f, 0.04f, 4.0f};
    static const float fd[4] = {1.0f, 0.5f, 2.0f, 0.0f};
    static const float fg[4] = {0.5f, 1.0f, 0.0f, 0.25f};
    gp_score_in in = {.index = 3, .rows = 1, .cols = 4, .w = w, .fisher_dom = fd, .fisher_gen = fg, .cosine = 0.5,
                      .alpha = 0.2, .beta = 1.0, .gamma = 0.5, .seed = 42};
    return in;
}

static void expect_scores(const char *name, const gp_score_in *in, const double *want, int n, double tol) {
    const gp_criterion *c = gp_criterion_find(name);
    assert_non_null(c);
    float out[16];
    c->score(in, out);
    for (int i = 0; i < n; i++)
        if (fabs(out[i] - want[i]) > tol) fail_msg("%s[%d] = %.9g, want %.9g", name, i, (double)out[i], want[i]);
}

static void test_criteria(void **state) {
    (void)state;
    gp_score_in in = base_in();
    /* DAI = [(F_dom - F_gen)|w| + 0.5 sqrt|w|] (1 + 0.2 * 0.5), worked by hand:
     *   (0.5*0.25 + 0.5*0.5)*1.1, (-0.5*1 + 0.5*1)*1.1, (2*0.04 + 0.5*0.2)*1.1, (-0.25*4 + 0.5*2)*1.1 */
    const double dai[4] = {0.4125, 0.0, 0.198, 0.0};
    expect_scores("gaprune", &in, dai, 4, 1e-7);
    /* softplus((F_dom - F_gen)|w| * 1.1 + 0.5 sqrt(|w| + 1e-8)): softplus(0.3875), softplus(-0.05),
     * softplus(0.188), softplus(-0.1) */
    const double ref[4] = {0.9055504453, 0.6684596492, 0.7915586964, 0.6443966607};
    expect_scores("gaprune-ref", &in, ref, 4, 1e-6);
    const double mag[4] = {0.25, 1.0, 0.04, 4.0};
    expect_scores("magnitude", &in, mag, 4, 1e-7);
    const double fdv[4] = {1, 0.5, 2, 0}, fgv[4] = {0.5, 1, 0, 0.25};
    expect_scores("fisher-domain", &in, fdv, 4, 0);
    expect_scores("fisher-general", &in, fgv, 4, 0);
    /* Optimal Brain Damage: F w^2 / 2 */
    const double obd_d[4] = {0.03125, 0.25, 0.0016, 0}, obd_g[4] = {0.015625, 0.5, 0, 2.0};
    expect_scores("fisher-domain-obd", &in, obd_d, 4, 1e-9);
    expect_scores("fisher-general-obd", &in, obd_g, 4, 1e-9);
    /* gaprune-scaled with scales 2 (Fisher term) and 4 (magnitude term), by hand:
     *   (0.125*2 + 0.5*0.5*4)*1.1, (-0.5*2 + 0.5*1*4)*1.1, (0.08*2 + 0.5*0.2*4)*1.1, (-1*2 + 0.5*2*4)*1.1 */
    in.fisher_scale = 2, in.magnitude_scale = 4;
    const double scaled[4] = {1.375, 1.1, 0.616, 2.2};
    expect_scores("gaprune-scaled", &in, scaled, 4, 1e-6);
    /* ... which is the paper's DAI with gamma 0.5 * 4 / 2, times 2 */
    float a4[4], b4[4];
    gp_criterion_find("gaprune-scaled")->score(&in, a4);
    gp_score_in paper = base_in();
    paper.gamma = 0.5 * 4 / 2;
    gp_criterion_find("gaprune")->score(&paper, b4);
    for (int k = 0; k < 4; k++) assert_true(fabs(a4[k] - 2 * b4[k]) < 1e-6);
    /* its two terms, as the report's ratio reads them: each times its scale */
    double fs = 0, ms = 0;
    gp_dai_terms(&in, &fs, &ms);
    assert_true(fabs(fs - 2 * 1.705) < 1e-6 && fabs(ms - 4 * 1.85) < 1e-6);
    in = base_in();
    /* alignment modulates: cos = -1 with alpha 0.2 scales DAI by 0.8; the ref clamp keeps 0.8 */
    in.cosine = -1.0;
    const double dai_neg[4] = {0.3, 0.0, 0.144, 0.0};
    expect_scores("gaprune", &in, dai_neg, 4, 1e-7);
    in.cosine = 5.0; /* out of [-1, 1]: the ref clamps 1 + alpha s = 2 to 1.2 */
    const double ref_clamp[4] = {log1p(exp(0.125 * 1.2 + 0.5 * sqrt(0.25 + 1e-8))), 0, 0, 0};
    expect_scores("gaprune-ref", &in, ref_clamp, 1, 1e-6);
    /* DAI's two terms: sum |(F_dom - F_gen)|w|| = 0.125 + 0.5 + 0.08 + 1, sum 0.5 sqrt|w| = 0.25 + 0.5 + 0.1 + 1 */
    double ft = 0, mt = 0;
    in = base_in();
    gp_dai_terms(&in, &ft, &mt);
    assert_true(fabs(ft - 1.705) < 1e-6 && fabs(mt - 1.85) < 1e-6);
    /* wanda: |w_ij| sqrt(sum x_j^2) */
    const float w2[4] = {1, -2, 3, 0.5f}, act[2] = {4, 9};
    gp_score_in wi = {.rows = 2, .cols = 2, .w = w2, .act = act};
    const double wanda[4] = {2, 6, 6, 1.5};
    expect_scores("wanda", &wi, wanda, 4, 0);
    assert_true(gp_criterion_find("wanda")->rowwise);
    /* random: in [0, 1), reproducible, different per seed and per tensor */
    float r1[4], r2[4], r3[4], r4[4];
    in = base_in();
    gp_criterion_find("random")->score(&in, r1);
    gp_criterion_find("random")->score(&in, r2);
    in.seed = 43;
    gp_criterion_find("random")->score(&in, r3);
    in.seed = 42, in.index = 4;
    gp_criterion_find("random")->score(&in, r4);
    assert_memory_equal(r1, r2, sizeof r1);
    assert_memory_not_equal(r1, r3, sizeof r1);
    assert_memory_not_equal(r1, r4, sizeof r1);
    for (int i = 0; i < 4; i++) assert_true(r1[i] >= 0 && r1[i] < 1);
    assert_null(gp_criterion_find("obc"));
    /* sparsegpt's mask comes from the reconstruction's sweep (reconstruct.h), not from a score */
    const gp_criterion *sg = gp_criterion_find("sparsegpt");
    assert_non_null(sg);
    assert_true(sg->needs & GP_NEED_OBS);
    assert_null(sg->score);
}

static void test_refcode_alignment(void **state) {
    (void)state;
    /* all-ones gradients: u = 1/3 each, e = 1/9; the zero-padded 3x3 mean is 1/9 at the centre,
     * 6/81 on the edges, 4/81 in the corners */
    float g[9], out[9];
    for (int i = 0; i < 9; i++) g[i] = 1.0f;
    gp_alignment_refcode(g, g, 3, 3, out);
    const double want[9] = {4 / 81.0, 6 / 81.0, 4 / 81.0, 6 / 81.0, 9 / 81.0, 6 / 81.0, 4 / 81.0, 6 / 81.0, 4 / 81.0};
    for (int i = 0; i < 9; i++) assert_true(fabs(out[i] - want[i]) < 1e-7);
    /* a single non-zero product spreads 1/9 of itself over its 3x3 neighbourhood only */
    float gd[20] = {0}, gg[20] = {0}, o2[20];
    gd[7] = 2.0f, gg[7] = 3.0f; /* row 1, col 2 of a 4x5 matrix: u_dom = u_gen = 1 there */
    gp_alignment_refcode(gd, gg, 4, 5, o2);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 5; c++) {
            double w = (abs(r - 1) <= 1 && abs(c - 2) <= 1) ? 1.0 / 9 : 0.0;
            assert_true(fabs(o2[r * 5 + c] - w) < 1e-7);
        }
    /* the scoring path with refcode alignment: s = e smoothed, so DAI = (...)(1 + 0.2 s) */
    gp_score_in in = base_in();
    in.rows = 2, in.cols = 2, in.refcode_alignment = true, in.grad_dom = g, in.grad_gen = g;
    float sc[4], s[4];
    gp_alignment_refcode(g, g, 2, 2, s);
    gp_criterion_find("gaprune")->score(&in, sc);
    for (int k = 0; k < 4; k++) {
        double a = fabs(in.w[k]);
        double want_k = (((double)in.fisher_dom[k] - in.fisher_gen[k]) * a + 0.5 * sqrt(a)) * (1 + 0.2 * s[k]);
        assert_true(fabs(sc[k] - want_k) < 1e-7);
    }
}

/* A rank scores a slice of a tensor's rows: the refcode alignment of rows [r0, r1) (given the
 * whole tensor's Σ G², added slice by slice in order), random draws and DAI's terms equal the
 * whole tensor's, bitwise, for every cut. */
static void test_slices(void **state) {
    (void)state;
    const int64_t rows = 7, cols = 5, n = rows * cols;
    float gd[35], gg[35], w[35], fd[35], fg[35], whole[35], part[35];
    uint64_t seed = 3;
    tu_fill(gd, n, 1.0, &seed), tu_fill(gg, n, 0.5, &seed), tu_fill(w, n, 0.1, &seed);
    tu_fill(fd, n, 1e-3, &seed), tu_fill(fg, n, 1e-3, &seed);
    gp_alignment_refcode(gd, gg, rows, cols, whole);
    gp_score_in in = {.index = 2, .rows = rows, .cols = cols, .w = w, .fisher_dom = fd, .fisher_gen = fg,
                      .grad_dom = gd, .grad_gen = gg, .refcode_alignment = true, .alpha = 0.2, .beta = 1, .gamma = 0.5,
                      .seed = 9};
    float sw[35], sp[35], rw[35], rp[35];
    gp_criterion_find("gaprune")->score(&in, sw);
    gp_criterion_find("random")->score(&in, rw);
    double fw = 0, mw = 0;
    gp_dai_terms(&in, &fw, &mw);
    int cuts = 0;
    for (int64_t a = 0; a < rows; a++)
        for (int64_t b = a + 1; b <= rows; b++) {
            /* Σ G² carried over the slices [0, a), [a, b), [b, rows) in order */
            double sd = 0, sg = 0, fp = 0, mp = 0;
            gp_alignment_sq_sums(gd, gg, a * cols, &sd, &sg);
            gp_alignment_sq_sums(gd + a * cols, gg + a * cols, (b - a) * cols, &sd, &sg);
            gp_alignment_sq_sums(gd + b * cols, gg + b * cols, (rows - b) * cols, &sd, &sg);
            gp_alignment_refcode_rows(gd + a * cols, gg + a * cols, a, b - a, rows, cols, sd, sg, part);
            assert_memory_equal(part, whole + a * cols, (size_t)((b - a) * cols) * sizeof(float));
            gp_score_in sl = in;
            sl.rows = b - a, sl.row0 = a, sl.tensor_rows = rows, sl.grad_sq_dom = sd, sl.grad_sq_gen = sg;
            sl.w = w + a * cols, sl.fisher_dom = fd + a * cols, sl.fisher_gen = fg + a * cols;
            sl.grad_dom = gd + a * cols, sl.grad_gen = gg + a * cols;
            gp_criterion_find("gaprune")->score(&sl, sp);
            gp_criterion_find("random")->score(&sl, rp);
            assert_memory_equal(sp, sw + a * cols, (size_t)((b - a) * cols) * sizeof(float));
            assert_memory_equal(rp, rw + a * cols, (size_t)((b - a) * cols) * sizeof(float));
            gp_score_in head = in, tail = in;
            head.rows = a, tail.rows = rows - a, tail.row0 = a, tail.tensor_rows = rows;
            tail.w = w + a * cols, tail.fisher_dom = fd + a * cols, tail.fisher_gen = fg + a * cols;
            gp_dai_terms(&head, &fp, &mp);
            gp_dai_terms(&tail, &fp, &mp);
            assert_true(fp == fw && mp == mw);
            cuts++;
        }
    printf("    %d row slices of a 7x5 tensor: refcode alignment, gaprune and random scores, DAI terms bitwise the "
           "whole tensor's\n", cuts);
}

/* ---- selection ------------------------------------------------------------------------------ */

typedef struct {
    int n;
    int64_t *numel;
    float **scores;
} src_ctx;

static gp_status give(void *ctx, int item, float *out, gp_err *err) {
    (void)err;
    src_ctx *c = ctx;
    memcpy(out, c->scores[item], (size_t)c->numel[item] * sizeof(float));
    return GP_OK;
}

static void test_select_global_and_layer(void **state) {
    (void)state;
    uint64_t seed = 5;
    for (int trial = 0; trial < 12; trial++) {
        src_ctx c = {.n = 1 + trial % 4};
        c.numel = malloc((size_t)c.n * sizeof(int64_t));
        c.scores = malloc((size_t)c.n * sizeof(float *));
        int64_t total = 0;
        for (int i = 0; i < c.n; i++) {
            c.numel[i] = 1 + (int64_t)((tu_rand(&seed) + 1) * 700);
            c.scores[i] = malloc((size_t)c.numel[i] * sizeof(float));
            for (int64_t j = 0; j < c.numel[i]; j++) c.scores[i][j] = sr_tie_score(&seed);
            total += c.numel[i];
        }
        float *all = malloc((size_t)total * sizeof(float));
        uint8_t *want = malloc((size_t)total);
        int64_t at = 0;
        for (int i = 0; i < c.n; i++) {
            memcpy(all + at, c.scores[i], (size_t)c.numel[i] * sizeof(float));
            at += c.numel[i];
        }
        int64_t ks[] = {0, 1, total / 3, total / 2, total - 1, total};
        for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) {
            int64_t k = ks[q];
            sr_reference(all, total, k, want);
            uint8_t **keep = malloc((size_t)c.n * sizeof(uint8_t *));
            for (int i = 0; i < c.n; i++) keep[i] = malloc((size_t)(c.numel[i] + 7) / 8);
            gp_score_source src = {c.n, c.numel, give, &c};
            float thr;
            gp_err err = {0};
            assert_int_equal(gp_select_smallest(&src, k, keep, &thr, &err), GP_OK);
            int64_t pos = 0, pruned = 0;
            for (int i = 0; i < c.n; i++)
                for (int64_t j = 0; j < c.numel[i]; j++, pos++) {
                    int p = !gp_bit_get(keep[i], j);
                    if (p != want[pos]) fail_msg("trial %d k %lld: element %lld pruned %d, want %d", trial, (long long)k,
                                                 (long long)pos, p, want[pos]);
                    pruned += p;
                    if (p) assert_true(all[pos] <= thr || gp_float_key(all[pos]) <= gp_float_key(thr));
                }
            assert_int_equal(pruned, k); /* exactly k */
            for (int i = 0; i < c.n; i++) free(keep[i]);
            free(keep);
        }
        /* "layer" scope = the same selection on a subset: the last item alone */
        int last = c.n - 1;
        int64_t k = c.numel[last] / 2;
        sr_reference(c.scores[last], c.numel[last], k, want);
        uint8_t *keep1 = malloc((size_t)(c.numel[last] + 7) / 8);
        src_ctx one = {1, &c.numel[last], &c.scores[last]};
        gp_score_source src1 = {1, one.numel, give, &one};
        float thr;
        gp_err err = {0};
        assert_int_equal(gp_select_smallest(&src1, k, &keep1, &thr, &err), GP_OK);
        for (int64_t j = 0; j < c.numel[last]; j++) assert_int_equal(!gp_bit_get(keep1, j), want[j]);
        free(keep1);
        for (int i = 0; i < c.n; i++) free(c.scores[i]);
        free(c.scores), free(c.numel), free(all), free(want);
    }
}

static void test_select_rows_and_nm(void **state) {
    (void)state;
    uint64_t seed = 11;
    const int64_t rows = 37, cols = 48, n = rows * cols;
    float *s = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) s[i] = sr_tie_score(&seed);
    uint8_t *keep = calloc((size_t)(n + 64) / 8, 1), *want = malloc((size_t)cols);
    /* row scope: 50% of every row, with a bit offset to check packing */
    gp_select_groups(s, n, cols, cols / 2, keep, 5);
    for (int64_t r = 0; r < rows; r++) {
        sr_reference(s + r * cols, cols, cols / 2, want);
        int kept = 0;
        for (int64_t j = 0; j < cols; j++) {
            assert_int_equal(!gp_bit_get(keep, 5 + r * cols + j), want[j]);
            kept += gp_bit_get(keep, 5 + r * cols + j);
        }
        assert_int_equal(kept, cols / 2);
    }
    /* n:m: 2:4 and 1:8 keep exactly n in every group of m */
    const int nm[2][2] = {{2, 4}, {1, 8}};
    for (int t = 0; t < 2; t++) {
        int keepn = nm[t][0], m = nm[t][1];
        gp_select_groups(s, n, m, m - keepn, keep, 0);
        for (int64_t g = 0; g < n; g += m) {
            sr_reference(s + g, m, m - keepn, want);
            int kept = 0;
            for (int j = 0; j < m; j++) {
                assert_int_equal(!gp_bit_get(keep, g + j), want[j]);
                kept += gp_bit_get(keep, g + j);
            }
            assert_int_equal(kept, keepn);
        }
    }
    free(s), free(keep), free(want);
}

static void test_scope_parse(void **state) {
    (void)state;
    gp_scope sc;
    gp_err err = {0};
    assert_int_equal(gp_scope_parse("2:4", &sc, &err), GP_OK);
    assert_int_equal(sc.kind, GP_SCOPE_NM);
    assert_int_equal(sc.n, 2);
    assert_int_equal(sc.m, 4);
    assert_int_equal(gp_scope_parse("row", &sc, &err), GP_OK);
    assert_int_equal(sc.kind, GP_SCOPE_ROW);
    assert_int_equal(gp_scope_parse("4:2", &sc, &err), GP_EINPUT);
    assert_int_equal(gp_scope_parse("2:4x", &sc, &err), GP_EINPUT);
    /* keys order floats, with -0 just below +0 */
    assert_true(gp_float_key(-1.0f) < gp_float_key(-0.5f));
    assert_true(gp_float_key(-0.0f) < gp_float_key(0.0f));
    assert_true(gp_float_key(1e-30f) < gp_float_key(1.0f));
    assert_true(gp_key_float(gp_float_key(-3.5f)) == -3.5f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_criteria),
        cmocka_unit_test(test_refcode_alignment),
        cmocka_unit_test(test_slices),
        cmocka_unit_test(test_select_global_and_layer),
        cmocka_unit_test(test_select_rows_and_nm),
        cmocka_unit_test(test_scope_parse),
    };
    return cmocka_run_group_tests_name("prune", tests, NULL, NULL);
}
