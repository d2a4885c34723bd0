/* test_taskmetrics.c — MTEB's task metrics (taskmetrics.h) against hand-computed values and the
 * numpy reference tests/reference/taskmetrics_ref.py (tests/fixtures/taskmetrics.expected.json):
 * V-measure, average precision, reranking AP and MRR@10, summarization Spearman, bitext accuracy
 * and macro F1 within 1e-9 of the reference, on inputs with ties and the edge cases; liblinear's
 * logistic regression against the reference's Newton solution of the same objective on the same
 * training subsets; and the undersampled experiments of gp_logreg_experiments. */
#include "test_util.h"

#include <cJSON.h>

#include "gaprune/kernels.h"
#include "gaprune/taskmetrics.h"

#define TOL 1e-9

static cJSON *doc;

static const cJSON *item(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) fail_msg("fixture: no \"%s\"", key);
    return v;
}

static int len_of(const cJSON *o, const char *key) { return cJSON_GetArraySize(item(o, key)); }

static double *doubles(const cJSON *o, const char *key) {
    const cJSON *a = item(o, key);
    const int n = cJSON_GetArraySize(a);
    double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
    for (int i = 0; i < n; i++) v[i] = cJSON_GetArrayItem(a, i)->valuedouble;
    return v;
}

static float *floats(const cJSON *o, const char *key) {
    const cJSON *a = item(o, key);
    const int n = cJSON_GetArraySize(a);
    float *v = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int i = 0; i < n; i++) v[i] = (float)cJSON_GetArrayItem(a, i)->valuedouble;
    return v;
}

static int32_t *ints(const cJSON *o, const char *key) {
    const cJSON *a = item(o, key);
    const int n = cJSON_GetArraySize(a);
    int32_t *v = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    for (int i = 0; i < n; i++) v[i] = (int32_t)cJSON_GetArrayItem(a, i)->valueint;
    return v;
}

static uint8_t *bytes(const cJSON *o, const char *key) {
    const cJSON *a = item(o, key);
    const int n = cJSON_GetArraySize(a);
    uint8_t *v = malloc((size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) v[i] = (uint8_t)cJSON_GetArrayItem(a, i)->valueint;
    return v;
}

/* The expected value of a case: null in the fixture stands for NaN. */
static double expected(const cJSON *o, const char *key) {
    const cJSON *v = item(o, key);
    return cJSON_IsNull(v) ? NAN : v->valuedouble;
}

static void assert_close(double got, double want, const char *what, const char *name) {
    if (isnan(want)) {
        if (!isnan(got)) fail_msg("%s %s: %.17g, want NaN", what, name, got);
        return;
    }
    if (!(fabs(got - want) <= TOL)) fail_msg("%s %s: %.17g, want %.17g", what, name, got, want);
}

#define CASES(c, group) cJSON_ArrayForEach(c, item(doc, group))
#define NAME(c) (item(c, "name")->valuestring)

/* ---- V-measure -------------------------------------------------------------------------------- */

static void test_v_measure_reference(void **state) {
    (void)state;
    const cJSON *c;
    int checked = 0;
    CASES(c, "v_measure") {
        const int n = len_of(c, "truth");
        int32_t *t = ints(c, "truth"), *p = ints(c, "pred");
        assert_close(gp_v_measure(t, p, n), expected(c, "expected"), "v_measure", NAME(c));
        /* symmetric, as the harmonic mean of homogeneity and completeness */
        assert_close(gp_v_measure(p, t, n), expected(c, "expected"), "v_measure swapped", NAME(c));
        free(t), free(p);
        checked++;
    }
    assert_true(checked >= 10);
}

static void test_v_measure_hand(void **state) {
    (void)state;
    /* truth {0,0,1,1}, pred {0,0,0,1}: H(C) = ln 2, H(K) = −(3/4 ln 3/4 + 1/4 ln 1/4),
     * MI = H(C) − H(C|K) = ln 2 − 3/4·H(2/3, 1/3) */
    const int32_t t[4] = {0, 0, 1, 1}, p[4] = {0, 0, 0, 1};
    const double hc = log(2.0), hk = -(0.75 * log(0.75) + 0.25 * log(0.25));
    const double mi = hc - 0.75 * -(2.0 / 3 * log(2.0 / 3) + 1.0 / 3 * log(1.0 / 3));
    const double h = mi / hc, cpl = mi / hk;
    assert_true(fabs(gp_v_measure(t, p, 4) - 2 * h * cpl / (h + cpl)) < 1e-12);
    /* the trivial partitions, as scikit-learn: one class and one cluster 1, one of them alone 0 */
    const int32_t zero[5] = {0}, spread[5] = {0, 1, 2, 3, 4};
    assert_true(gp_v_measure(zero, zero, 5) == 1.0);
    assert_true(gp_v_measure(zero, spread, 5) == 0.0);
    assert_true(gp_v_measure(spread, zero, 5) == 0.0);
    assert_true(gp_v_measure(spread, spread, 5) == 1.0);
    assert_true(gp_v_measure(NULL, NULL, 0) == 1.0);
}

/* ---- average precision, reranking ------------------------------------------------------------- */

static void test_average_precision_reference(void **state) {
    (void)state;
    const cJSON *c;
    int checked = 0;
    CASES(c, "average_precision") {
        double *s = doubles(c, "score");
        uint8_t *l = bytes(c, "label");
        assert_close(gp_average_precision(s, l, len_of(c, "score")), expected(c, "expected"), "AP", NAME(c));
        free(s), free(l);
        checked++;
    }
    assert_true(checked >= 7);
    /* by hand: P at the positives' ranks 1 and 3: (1 + 2/3) / 2; tied scores are one threshold:
     * {0.5, 0.5} holds one positive of two (R 1/2, P 1/2), then all (R 1, P 2/3) */
    const double s1[4] = {0.9, 0.8, 0.7, 0.6}, s2[3] = {0.5, 0.5, 0.1};
    const uint8_t l1[4] = {1, 0, 1, 0}, l2[3] = {0, 1, 1}, none[3] = {0};
    assert_true(fabs(gp_average_precision(s1, l1, 4) - 5.0 / 6) < 1e-15);
    assert_true(fabs(gp_average_precision(s2, l2, 3) - (0.25 + 1.0 / 3)) < 1e-15);
    assert_true(isnan(gp_average_precision(s2, none, 3)));
}

static void test_rerank_reference(void **state) {
    (void)state;
    const cJSON *c;
    int checked = 0;
    CASES(c, "rerank") {
        double *s = doubles(c, "score");
        uint8_t *r = bytes(c, "relevant");
        double ap, rr;
        gp_rerank_query(s, r, len_of(c, "score"), &ap, &rr);
        assert_close(ap, expected(c, "ap"), "rerank AP", NAME(c));
        assert_close(rr, expected(c, "rr10"), "rerank RR@10", NAME(c));
        free(s), free(r);
        checked++;
    }
    assert_true(checked >= 10);
}

static void test_rerank_hand(void **state) {
    (void)state;
    double s[15], ap, rr;
    uint8_t rel[15] = {0};
    for (int i = 0; i < 15; i++) s[i] = 1.0 - i / 16.0;
    rel[10] = 1; /* 11th: outside the top 10 */
    gp_rerank_query(s, rel, 15, &ap, &rr);
    assert_true(rr == 0.0 && fabs(ap - 1.0 / 11) < 1e-15);
    rel[10] = 0, rel[9] = 1; /* 10th: inside */
    gp_rerank_query(s, rel, 15, &ap, &rr);
    assert_true(fabs(rr - 0.1) < 1e-15 && fabs(ap - 0.1) < 1e-15);
    /* all tied: index order decides the rank (the relevant one, index 3, is 4th), AP sees one
     * threshold with 1 positive in 5 */
    const double tied[5] = {0.4, 0.4, 0.4, 0.4, 0.4};
    const uint8_t r3[5] = {0, 0, 0, 1, 0}, none[5] = {0};
    gp_rerank_query(tied, r3, 5, &ap, &rr);
    assert_true(rr == 0.25 && fabs(ap - 0.2) < 1e-15);
    gp_rerank_query(tied, none, 5, &ap, &rr);
    assert_true(rr == 0.0 && isnan(ap));
}

/* ---- summarization ---------------------------------------------------------------------------- */

static void test_summary_reference(void **state) {
    (void)state;
    const cJSON *c;
    int checked = 0;
    CASES(c, "summarization") {
        double *cs = doubles(c, "cos"), *rel = doubles(c, "relevance");
        const int m = item(c, "m")->valueint, h = item(c, "h")->valueint;
        assert_int_equal(len_of(c, "cos"), m * h);
        assert_close(gp_summary_spearman(cs, m, h, rel), expected(c, "expected"), "summary Spearman", NAME(c));
        free(cs), free(rel);
        checked++;
    }
    assert_true(checked >= 6);
}

static void test_summary_hand(void **state) {
    (void)state;
    /* best cosines 0.9, 0.5, 0.6 (rows' maxima) → ranks 3, 1, 2; relevance ranks 1, 2, 3:
     * ρ = 1 − 6·Σd² / (n(n²−1)) = 1 − 6·(4 + 1 + 1) / 24 = −0.5 */
    const double cs[6] = {0.1, 0.9, 0.5, 0.2, 0.6, 0.6}, rel[3] = {1, 2, 3};
    assert_true(fabs(gp_summary_spearman(cs, 3, 2, rel) + 0.5) < 1e-15);
    /* ties share their average rank: relevance {1, 1, 2} → ranks 1.5, 1.5, 3 against 3, 1, 2 */
    const double rel2[3] = {1, 1, 2};
    assert_true(fabs(gp_summary_spearman(cs, 3, 2, rel2) - 0.0) < 1e-15);
    /* a constant side, or one machine summary: NaN (MTEB skips the text) */
    const double same[3] = {4, 4, 4}, flat[6] = {0.3, 0.7, 0.7, 0.1, 0.2, 0.7};
    assert_true(isnan(gp_summary_spearman(cs, 3, 2, same)));
    assert_true(isnan(gp_summary_spearman(flat, 3, 2, rel)));
    assert_true(isnan(gp_summary_spearman(cs, 1, 2, rel)));
}

/* ---- bitext mining ---------------------------------------------------------------------------- */

static void test_bitext_reference(void **state) {
    (void)state;
    const cJSON *c;
    int checked = 0;
    CASES(c, "bitext") {
        const int n = item(c, "n")->valueint, d = item(c, "d")->valueint;
        float *a = floats(c, "a"), *b = floats(c, "b");
        uint8_t *want = bytes(c, "correct"), *got = malloc((size_t)n);
        const int64_t count = gp_bitext_nearest(a, b, n, d, got);
        assert_int_equal(count, item(c, "count")->valueint);
        for (int i = 0; i < n; i++)
            if (got[i] != want[i]) fail_msg("bitext %s: correct[%d] = %d, want %d", NAME(c), i, got[i], want[i]);
        assert_close((double)count / n, (double)item(c, "count")->valueint / n, "bitext accuracy", NAME(c));
        free(a), free(b), free(want), free(got);
        checked++;
    }
    assert_true(checked >= 3);
}

static void test_bitext_hand(void **state) {
    (void)state;
    /* a_0 = b_0 exactly, b_1 = b_0 but one coordinate a float ulp larger: a_0·b_1 − a_0·b_0 is
     * ~2e-10, below float's resolution of the sum, so sgemm's scores tie; the scores again in
     * double make b_1 the nearest, and a_0 wrong */
    enum { D = 256 };
    float a[2 * D], b[2 * D];
    for (int k = 0; k < D; k++) a[k] = a[D + k] = b[k] = b[D + k] = 1.0f / 16.0f;
    a[D] = -1.0f; /* a_1 far from both */
    b[D] = nextafterf(b[D], 1.0f);
    uint8_t ok[2];
    assert_int_equal(gp_bitext_nearest(a, b, 2, D, ok), 0);
    assert_true(ok[0] == 0 && ok[1] == 0);
    /* identical lists: every sentence finds its own pair; equal b's: the lower index wins */
    b[D] = b[0];
    assert_int_equal(gp_bitext_nearest(b, b, 2, D, ok), 1); /* b_0 = b_1: both pick 0 */
    assert_true(ok[0] == 1 && ok[1] == 0);
    const float e[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    uint8_t ok3[3];
    assert_int_equal(gp_bitext_nearest(e, e, 3, 3, ok3), 3);
    assert_int_equal(gp_bitext_nearest(e, e, 0, 3, ok3), 0);
}

/* ---- classification --------------------------------------------------------------------------- */

static void test_macro_f1(void **state) {
    (void)state;
    const cJSON *c;
    CASES(c, "macro_f1") {
        int32_t *t = ints(c, "truth"), *p = ints(c, "pred");
        assert_close(gp_macro_f1(t, p, len_of(c, "truth"), item(c, "k")->valueint), expected(c, "expected"), "macro F1",
                     NAME(c));
        free(t), free(p);
    }
    /* label 0: tp 1, fp 1, fn 1 → 1/2; label 1: tp 2, fp 1 → 4/5; label 2: fn 1 → 0; label 3
     * absent from both: not averaged */
    const int32_t t[5] = {0, 0, 1, 1, 2}, p[5] = {0, 1, 1, 1, 0};
    assert_true(fabs(gp_macro_f1(t, p, 5, 4) - (0.5 + 0.8 + 0) / 3) < 1e-15);
    assert_true(isnan(gp_macro_f1(t, p, 0, 4)));
}

/* liblinear (eps GP_LOGREG_EPS = 1e-6) against the reference's Newton optimum of the same
 * objective, on the reference's training subsets. The bound asserted: identical test predictions
 * (so equal accuracy and macro F1). Measured when written: 200/200, 300/300, 120/120 and 160/160
 * identical (780 of 780); liblinear's weights within 1.1e-6 of the optimum and its decision
 * values within 9.7e-6 of the reference's, against the reference's smallest decision margins
 * (binary |w·x|, else the gap between the two largest) of 1.3e-2, 8.7e-3, 1.0e-3 and 1.3e-2.
 * At liblinear's default eps 0.01 the weights are up to 1.3e-2 off, decisions 9.2e-2, and 2 of
 * the 780 predictions differ; at 1e-4, 1.2e-4 and 1.3e-3 (none differ, by luck of 1.0e-3). */
static void test_logreg_reference(void **state) {
    (void)state;
    const cJSON *c;
    int cases = 0, same_all = 0, total = 0;
    CASES(c, "logreg") {
        const int d = item(c, "d")->valueint, k = item(c, "k")->valueint;
        const int nsel = len_of(c, "sel"), nte = len_of(c, "yte");
        float *xtr = floats(c, "xtr"), *xte = floats(c, "xte");
        int32_t *ytr = ints(c, "ytr"), *yte = ints(c, "yte"), *want = ints(c, "pred"), *sel32 = ints(c, "sel");
        int64_t *sel = malloc((size_t)nsel * sizeof(int64_t));
        for (int i = 0; i < nsel; i++) sel[i] = sel32[i];
        int32_t *pred = malloc((size_t)nte * sizeof(int32_t));
        gp_err err = {0};
        assert_int_equal(gp_logreg_fit_predict(xtr, ytr, sel, nsel, xte, nte, d, pred, &err), GP_OK);
        int same = 0, right = 0;
        for (int i = 0; i < nte; i++) same += pred[i] == want[i], right += pred[i] == yte[i];
        printf("  logreg %-12s k=%d d=%-3d train %-3d: %d of %d test predictions as the Newton reference "
               "(accuracy %.4f, reference %.4f)\n",
               NAME(c), k, d, nsel, same, nte, (double)right / nte, item(c, "accuracy")->valuedouble);
        assert_int_equal(same, nte);
        assert_close((double)right / nte, item(c, "accuracy")->valuedouble, "logreg accuracy", NAME(c));
        assert_close(gp_macro_f1(yte, pred, nte, k), item(c, "macro_f1")->valuedouble, "logreg macro F1", NAME(c));
        /* gp_macro_f1 on the reference's own predictions: the reference's F1 */
        assert_close(gp_macro_f1(yte, want, nte, k), item(c, "macro_f1")->valuedouble, "macro F1", NAME(c));
        same_all += same, total += nte, cases++;
        free(xtr), free(xte), free(ytr), free(yte), free(want), free(sel32), free(sel), free(pred);
    }
    assert_true(cases >= 4);
    printf("  logreg: %d of %d predictions identical\n", same_all, total);
}

/* The "four_labels" reference case's data as a training pool, its test set as the test set. */
typedef struct {
    int d, k, ntr, nte;
    float *xtr, *xte;
    int32_t *ytr, *yte;
} pool;

static pool load_pool(const char *name) {
    const cJSON *c;
    CASES(c, "logreg") {
        if (strcmp(NAME(c), name)) continue;
        pool p = {.d = item(c, "d")->valueint, .k = item(c, "k")->valueint, .ntr = len_of(c, "ytr"),
                  .nte = len_of(c, "yte")};
        p.xtr = floats(c, "xtr"), p.xte = floats(c, "xte"), p.ytr = ints(c, "ytr"), p.yte = ints(c, "yte");
        return p;
    }
    fail_msg("no logreg case %s", name);
    return (pool){0};
}

static void free_pool(pool *p) { free(p->xtr), free(p->xte), free(p->ytr), free(p->yte); }

static void test_logreg_subset(void **state) {
    (void)state;
    pool p = load_pool("four_labels"); /* 15 texts of each of 4 labels */
    int64_t *s1 = malloc((size_t)p.ntr * sizeof(int64_t)), *s2 = malloc((size_t)p.ntr * sizeof(int64_t));
    for (int spl = 1; spl <= 20; spl += 3) {
        for (int e = 0; e < 4; e++) {
            const int64_t m = gp_logreg_subset(p.ytr, p.ntr, p.k, spl, 7, e, s1);
            const int want = spl < 15 ? spl : 15;
            assert_int_equal(m, (int64_t)want * p.k);
            int per[4] = {0};
            uint8_t *seen = calloc((size_t)p.ntr, 1);
            for (int64_t i = 0; i < m; i++) {
                assert_true(s1[i] >= 0 && s1[i] < p.ntr && !seen[s1[i]]);
                seen[s1[i]] = 1;
                per[p.ytr[s1[i]]]++;
            }
            for (int l = 0; l < p.k; l++) assert_int_equal(per[l], want); /* at most spl, all when fewer */
            free(seen);
            /* the same seed and experiment: the same subset, in the same order */
            assert_int_equal(gp_logreg_subset(p.ytr, p.ntr, p.k, spl, 7, e, s2), m);
            assert_memory_equal(s1, s2, (size_t)m * sizeof(int64_t));
            /* another seed, or another experiment: another order (and for spl < 15 other texts) */
            gp_logreg_subset(p.ytr, p.ntr, p.k, spl, 8, e, s2);
            assert_memory_not_equal(s1, s2, (size_t)m * sizeof(int64_t));
            gp_logreg_subset(p.ytr, p.ntr, p.k, spl, 7, e + 1, s2);
            assert_memory_not_equal(s1, s2, (size_t)m * sizeof(int64_t));
        }
    }
    /* the sets themselves differ between seeds when they must choose (8 of 15 per label) */
    gp_logreg_subset(p.ytr, p.ntr, p.k, 8, 1, 0, s1);
    gp_logreg_subset(p.ytr, p.ntr, p.k, 8, 2, 0, s2);
    uint8_t in1[64] = {0}, in2[64] = {0};
    for (int i = 0; i < 32; i++) in1[s1[i]] = 1, in2[s2[i]] = 1;
    assert_memory_not_equal(in1, in2, sizeof in1);
    free(s1), free(s2);
    free_pool(&p);
}

static void test_logreg_experiments(void **state) {
    (void)state;
    pool p = load_pool("four_labels");
    const int E = 6, spl = 5;
    double acc, f1, acc2, f12, acc3, f13;
    double *corr = malloc((size_t)p.nte * sizeof(double)), *corr2 = malloc((size_t)p.nte * sizeof(double));
    gp_err err = {0};
    assert_int_equal(gp_logreg_experiments(p.xtr, p.ytr, p.ntr, p.xte, p.yte, p.nte, p.d, p.k, E, spl, 42, &acc, &f1,
                                           corr, &err),
                     GP_OK);
    /* accuracy is the mean of correct[], each a multiple of 1/E */
    double mean = 0;
    for (int i = 0; i < p.nte; i++) {
        mean += corr[i];
        assert_true(corr[i] >= 0 && corr[i] <= 1 && fabs(corr[i] * E - round(corr[i] * E)) < 1e-12);
    }
    mean /= p.nte;
    assert_true(fabs(acc - mean) < 1e-12);
    assert_true(acc > 0.5 && f1 > 0.5 && f1 <= 1);
    /* the experiments one by one through the lower-level calls: the same means */
    int64_t *sel = malloc((size_t)p.ntr * sizeof(int64_t));
    int32_t *pred = malloc((size_t)p.nte * sizeof(int32_t));
    double acc_sum = 0, f1_sum = 0;
    for (int e = 0; e < E; e++) {
        const int64_t m = gp_logreg_subset(p.ytr, p.ntr, p.k, spl, 42, e, sel);
        assert_int_equal(gp_logreg_fit_predict(p.xtr, p.ytr, sel, m, p.xte, p.nte, p.d, pred, &err), GP_OK);
        int right = 0;
        for (int i = 0; i < p.nte; i++) right += pred[i] == p.yte[i];
        acc_sum += (double)right / p.nte;
        f1_sum += gp_macro_f1(p.yte, pred, p.nte, p.k);
    }
    assert_true(fabs(acc - acc_sum / E) < 1e-12 && fabs(f1 - f1_sum / E) < 1e-12);
    /* deterministic for a seed; another seed draws other subsets and scores differently */
    assert_int_equal(gp_logreg_experiments(p.xtr, p.ytr, p.ntr, p.xte, p.yte, p.nte, p.d, p.k, E, spl, 42, &acc2, &f12,
                                           corr2, &err),
                     GP_OK);
    assert_true(acc2 == acc && f12 == f1);
    assert_memory_equal(corr, corr2, (size_t)p.nte * sizeof(double));
    assert_int_equal(gp_logreg_experiments(p.xtr, p.ytr, p.ntr, p.xte, p.yte, p.nte, p.d, p.k, E, spl, 43, &acc3, &f13,
                                           corr2, &err),
                     GP_OK);
    assert_memory_not_equal(corr, corr2, (size_t)p.nte * sizeof(double));
    /* the experiments on 3 threads: the same numbers */
    gp_set_threads(3);
    assert_int_equal(gp_logreg_experiments(p.xtr, p.ytr, p.ntr, p.xte, p.yte, p.nte, p.d, p.k, E, spl, 42, &acc2, &f12,
                                           corr2, &err),
                     GP_OK);
    gp_set_threads(1);
    assert_true(acc2 == acc && f12 == f1);
    assert_memory_equal(corr, corr2, (size_t)p.nte * sizeof(double));
    printf("  experiments: seed 42 accuracy %.4f F1 %.4f, seed 43 accuracy %.4f F1 %.4f\n", acc, f1, acc3, f13);
    /* correct may be NULL */
    assert_int_equal(gp_logreg_experiments(p.xtr, p.ytr, p.ntr, p.xte, p.yte, p.nte, p.d, p.k, 2, spl, 1, &acc2, &f12,
                                           NULL, &err),
                     GP_OK);
    free(sel), free(pred), free(corr), free(corr2);
    free_pool(&p);
}

static void test_logreg_edges(void **state) {
    (void)state;
    pool p = load_pool("binary");
    double acc, f1;
    gp_err err = {0};
    /* a label out of [0, k) names the text */
    p.ytr[3] = 2;
    assert_int_equal(gp_logreg_experiments(p.xtr, p.ytr, p.ntr, p.xte, p.yte, p.nte, p.d, 2, 1, 8, 1, &acc, &f1, NULL,
                                           &err),
                     GP_EINPUT);
    assert_non_null(strstr(err.msg, "text 3"));
    p.ytr[3] = 0;
    p.yte[5] = -1;
    err = (gp_err){0};
    assert_int_equal(gp_logreg_experiments(p.xtr, p.ytr, p.ntr, p.xte, p.yte, p.nte, p.d, 2, 1, 8, 1, &acc, &f1, NULL,
                                           &err),
                     GP_EINPUT);
    assert_non_null(strstr(err.msg, "test label -1 of text 5"));
    p.yte[5] = 0;
    /* nothing to train on */
    err = (gp_err){0};
    assert_int_equal(gp_logreg_experiments(p.xtr, p.ytr, 0, p.xte, p.yte, p.nte, p.d, 2, 1, 8, 1, &acc, &f1, NULL, &err),
                     GP_EINPUT);
    int32_t pred[4];
    err = (gp_err){0};
    assert_int_equal(gp_logreg_fit_predict(p.xtr, p.ytr, NULL, 0, p.xte, 4, p.d, pred, &err), GP_EINPUT);
    /* one label in the training subset: it is predicted everywhere */
    int64_t sel[3];
    int n1 = 0;
    for (int i = 0; i < p.ntr && n1 < 3; i++)
        if (p.ytr[i] == 1) sel[n1++] = i;
    assert_int_equal(gp_logreg_fit_predict(p.xtr, p.ytr, sel, n1, p.xte, 4, p.d, pred, &err), GP_OK);
    for (int i = 0; i < 4; i++) assert_int_equal(pred[i], 1);
    /* k larger than the labels present: the absent ones are never predicted, and macro F1 skips
     * a label absent from both sides */
    assert_int_equal(gp_logreg_experiments(p.xtr, p.ytr, p.ntr, p.xte, p.yte, p.nte, p.d, 5, 2, 8, 1, &acc, &f1, NULL,
                                           &err),
                     GP_OK);
    double acc2, f12;
    assert_int_equal(gp_logreg_experiments(p.xtr, p.ytr, p.ntr, p.xte, p.yte, p.nte, p.d, 2, 2, 8, 1, &acc2, &f12, NULL,
                                           &err),
                     GP_OK);
    assert_true(acc == acc2 && f1 == f12);
    free_pool(&p);
}

int main(void) {
    char *text = tu_read_file(FIXTURES "/taskmetrics.expected.json", NULL);
    if (!text) {
        fprintf(stderr, "no %s/taskmetrics.expected.json (make fixtures)\n", FIXTURES);
        return 1;
    }
    doc = cJSON_Parse(text);
    free(text);
    if (!doc) {
        fprintf(stderr, "taskmetrics.expected.json does not parse\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v_measure_reference),
        cmocka_unit_test(test_v_measure_hand),
        cmocka_unit_test(test_average_precision_reference),
        cmocka_unit_test(test_rerank_reference),
        cmocka_unit_test(test_rerank_hand),
        cmocka_unit_test(test_summary_reference),
        cmocka_unit_test(test_summary_hand),
        cmocka_unit_test(test_bitext_reference),
        cmocka_unit_test(test_bitext_hand),
        cmocka_unit_test(test_macro_f1),
        cmocka_unit_test(test_logreg_reference),
        cmocka_unit_test(test_logreg_subset),
        cmocka_unit_test(test_logreg_experiments),
        cmocka_unit_test(test_logreg_edges),
    };
    const int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cJSON_Delete(doc);
    return rc;
}
