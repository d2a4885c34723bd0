/* test_threads.c — results do not depend on the number of threads inside a rank.
 *
 *  - In-process, for the BERT and Qwen3 F32 fixture models: embeddings, the InfoNCE loss and every
 *    parameter gradient of one batch are bitwise equal with 1, 2 and 4 threads (gp_set_threads:
 *    the kernels' loops and the split matmuls), with every loop and matmul threaded however small
 *    (gp_set_par_min(0)) and with the default threshold; lean activations (made again on the team,
 *    the attention's probabilities in per-thread scratch) on 4 threads bitwise all of them on 1.
 *    Every loop's result is bitwise the same; matmuls split between threads differ from one call in
 *    the last bits (OpenBLAS rounds by the shape it is given), so with them split the limit is 1e-6
 *    relative (gradients 1e-5, the rank-count tests' limit), and with them whole (gp_set_sgemm_min)
 *    everything must be bitwise equal.
 *  - `gaprune stats` (the sanitizer build) with OMP_NUM_THREADS = 1, 2 and 4 on 1 rank, and 2
 *    against 1 on 2 ranks, every loop threaded: every dataset of stats.h5 bitwise equal with the
 *    matmuls whole; with them split, within 1e-5 relative per dataset (the rank-count tests'
 *    limit). The statistics cover every linear layer (prune.layers = linear).
 */
#include "test_util.h"

#include <hdf5.h>

#include "gaprune/kernels.h"
#include "gaprune/loss.h"
#include "gaprune/model.h"

typedef struct {
    float *emb, *grads;
    float loss;
    size_t n_emb, n_grads;
} result;

/* n texts of varied lengths made from the 8 fixture texts (line i, then line 3i + 1). */
static char **make_texts(int n) {
    char *all = tu_read_file(FIXTURES "/texts.txt", NULL);
    assert_non_null(all);
    char *lines[8], *save = NULL;
    for (int i = 0; i < 8; i++) {
        lines[i] = strtok_r(i ? NULL : all, "\n", &save);
        assert_non_null(lines[i]);
    }
    char **t = calloc((size_t)n, sizeof(char *));
    for (int i = 0; i < n; i++) {
        const char *a = lines[i % 8], *b = lines[(3 * i + 1) % 8];
        t[i] = malloc(strlen(a) + strlen(b) + 2);
        sprintf(t[i], "%s %s", a, b);
    }
    free(all);
    return t;
}

/* Forward, InfoNCE (the first half queries, the rest documents), backward on `threads` threads. */
static result run_model(gp_model *m, char **texts, int n, int threads) {
    gp_set_threads(threads);
    assert_int_equal(gp_threads(), threads);
    gp_batch b;
    gp_tokenizer_batch(m->tok, (const char *const *)texts, n, 40, &b);
    const int D = gp_model_dim(m), B = n / 2;
    result r = {.n_emb = (size_t)n * D, .n_grads = m->table.total};
    r.emb = malloc(r.n_emb * sizeof(float));
    gp_model_zero_grad(m);
    gp_model_forward(m, &b, r.emb);
    gp_infonce L = {0};
    r.loss = gp_infonce_forward(&L, r.emb, r.emb + (size_t)B * D, B, n - B, D, 20.0f);
    float *demb = calloc(r.n_emb, sizeof(float));
    gp_infonce_backward(&L, demb, demb + (size_t)B * D);
    gp_model_backward(m, demb);
    r.grads = malloc(r.n_grads * sizeof(float));
    memcpy(r.grads, m->grads, r.n_grads * sizeof(float));
    gp_infonce_free(&L);
    free(demb);
    gp_batch_free(&b);
    return r;
}

/* ‖a − b‖ / ‖a‖ (0 when both are zero). */
static double rel(const float *a, const float *b, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), r += (double)a[i] * a[i];
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* tol 0: bitwise; otherwise embeddings and loss within tol relative, and every gradient within
 * 10 tol relative per tensor (the limit of the rank-count tests: a gradient that is a sum of
 * cancelling terms, such as a LayerNorm bias, magnifies rounding). A gradient that is zero in
 * exact arithmetic (the attention key bias) is measured against the norm of all gradients
 * instead. Returns the worst gradient error, *worst_out that of embeddings and loss. */
static double expect_same(const gp_model *m, const result *a, const result *b, double tol, const char *what,
                          double *worst_out) {
    double worst = 0, total = 0;
    for (size_t i = 0; i < a->n_grads; i++) total += (double)a->grads[i] * a->grads[i];
    total = sqrt(total);
    if (tol == 0) {
        if (memcmp(a->emb, b->emb, a->n_emb * sizeof(float)) != 0)
            fail_msg("%s: embeddings differ (max abs %.3g)", what, tu_max_abs(a->emb, b->emb, a->n_emb));
        if (memcmp(&a->loss, &b->loss, sizeof(float)) != 0) fail_msg("%s: loss %.9g vs %.9g", what, a->loss, b->loss);
    } else {
        double e = rel(a->emb, b->emb, a->n_emb), l = fabs((double)a->loss - b->loss) / fabs((double)a->loss);
        if (e > tol || l > tol) fail_msg("%s: embeddings %.3g, loss %.3g relative", what, e, l);
        *worst_out = e > l ? e : l;
    }
    for (int i = 0; i < m->table.n; i++) {
        const gp_param *p = &m->table.p[i];
        const float *ga = a->grads + p->offset, *gb = b->grads + p->offset;
        if (tol == 0) {
            if (memcmp(ga, gb, p->numel * sizeof(float)) != 0)
                fail_msg("%s: gradient of %s differs (relative %.3g)", what, p->name, rel(ga, gb, p->numel));
            continue;
        }
        double norm = 0, d = 0;
        for (size_t k = 0; k < p->numel; k++) norm += (double)ga[k] * ga[k], d += ((double)ga[k] - gb[k]) * ((double)ga[k] - gb[k]);
        norm = sqrt(norm), d = sqrt(d);
        double r = d / (norm > 1e-6 * total ? norm : total);
        if (r > 10 * tol) fail_msg("%s: gradient of %s differs by %.3g relative (limit %.0e)", what, p->name, r, 10 * tol);
        worst = r > worst ? r : worst;
    }
    return worst;
}

static void check_model(const char *name) {
    char dir[256];
    snprintf(dir, sizeof dir, FIXTURES "/%s", name);
    gp_model *m;
    gp_err err = {0};
    if (gp_model_load(dir, &m, &err)) fail_msg("%s", err.msg);
    const int n = 16;
    char **texts = make_texts(n);
    const int64_t saved = gp_par_min(), saved_sgemm = gp_sgemm_min();
    /* every loop threaded with the matmuls whole (bitwise), then split too (1e-6), then the defaults */
    static const struct {
        int64_t par_min, sgemm_min;
        double tol;
        const char *label;
    } passes[] = {{0, INT64_MAX, 0, "every loop threaded, matmuls whole"},
                  {0, 0, 1e-6, "every loop and matmul threaded"},
                  {-1, -1, 1e-6, "default thresholds"}};
    for (size_t pass = 0; pass < sizeof passes / sizeof passes[0]; pass++) {
        gp_set_par_min(passes[pass].par_min < 0 ? saved : passes[pass].par_min);
        gp_set_sgemm_min(passes[pass].sgemm_min < 0 ? saved_sgemm : passes[pass].sgemm_min);
        result one = run_model(m, texts, n, 1);
        for (int t = 2; t <= 4; t *= 2) {
            result r = run_model(m, texts, n, t);
            char what[160];
            snprintf(what, sizeof what, "%s, %d threads against 1 (%s)", name, t, passes[pass].label);
            double we = 0, wg = expect_same(m, &one, &r, passes[pass].tol, what, &we);
            if (passes[pass].tol == 0)
                printf("    %s: embeddings, loss and %d parameter gradients bitwise equal\n", what, m->table.n);
            else
                printf("    %s: embeddings and loss within %.1e relative (limit %.0e), %d parameter gradients "
                       "within %.1e (limit %.0e)\n",
                       what, we, passes[pass].tol, m->table.n, wg, 10 * passes[pass].tol);
            free(r.emb);
            free(r.grads);
        }
        if (passes[pass].tol == 0) {
            /* lean activations made again on the team's threads: bitwise all of them on one */
            gp_model_set_lean(m, true);
            result r = run_model(m, texts, n, 4);
            gp_model_set_lean(m, false);
            char what[160];
            snprintf(what, sizeof what, "%s, lean activations on 4 threads against all on 1 (%s)", name,
                     passes[pass].label);
            double we = 0;
            expect_same(m, &one, &r, 0, what, &we);
            printf("    %s: embeddings, loss and %d parameter gradients bitwise equal\n", what, m->table.n);
            free(r.emb);
            free(r.grads);
        }
        free(one.emb);
        free(one.grads);
    }
    gp_set_par_min(saved);
    gp_set_sgemm_min(saved_sgemm);
    gp_set_threads(1);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    gp_model_free(m);
}

static void test_bert_threads(void **state) {
    (void)state;
    check_model("bert-f32");
}

static void test_qwen3_threads(void **state) {
    (void)state;
    check_model("qwen3-f32");
}

/* ---- gaprune stats ----------------------------------------------------------------------- */

typedef struct {
    hid_t other;
    double tol, worst;
    int compared, differ;
    char first[256];
} cmp_ctx;

/* Float datasets (read as double) within tol relative (0: bitwise), others byte for byte. */
static herr_t cmp_dataset(hid_t root, const char *name, const H5O_info_t *info, void *vctx) {
    cmp_ctx *c = vctx;
    if (info->type != H5O_TYPE_DATASET) return 0;
    if (H5Lexists(c->other, name, H5P_DEFAULT) <= 0) {
        if (!c->differ++) snprintf(c->first, sizeof c->first, "%s missing", name);
        return 0;
    }
    hid_t da = H5Dopen2(root, name, H5P_DEFAULT), db = H5Dopen2(c->other, name, H5P_DEFAULT);
    hid_t ta = H5Dget_type(da), tb = H5Dget_type(db);
    hid_t sa = H5Dget_space(da), sb = H5Dget_space(db);
    size_t n = (size_t)H5Sget_simple_extent_npoints(sa), sz = H5Tget_size(ta);
    int same = H5Tequal(ta, tb) > 0 && (size_t)H5Sget_simple_extent_npoints(sb) == n;
    if (same && H5Tget_class(ta) == H5T_FLOAT) {
        double *a = malloc(n * sizeof(double) + 8), *b = malloc(n * sizeof(double) + 8), d = 0, r = 0;
        assert_true(H5Dread(da, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, a) >= 0);
        assert_true(H5Dread(db, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) >= 0);
        if (c->tol == 0) {
            same = memcmp(a, b, n * sizeof(double)) == 0;
        } else {
            for (size_t i = 0; i < n; i++) d += (a[i] - b[i]) * (a[i] - b[i]), r += a[i] * a[i];
            double e = r > 0 ? sqrt(d / r) : sqrt(d);
            same = e <= c->tol;
            c->worst = e > c->worst ? e : c->worst;
        }
        free(a);
        free(b);
    } else if (same && H5Tget_class(ta) != H5T_STRING && H5Tget_class(ta) != H5T_VLEN) {
        char *a = malloc(n * sz + 1), *b = malloc(n * sz + 1);
        assert_true(H5Dread(da, ta, H5S_ALL, H5S_ALL, H5P_DEFAULT, a) >= 0);
        assert_true(H5Dread(db, tb, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) >= 0);
        same = memcmp(a, b, n * sz) == 0;
        free(a);
        free(b);
    }
    c->compared++;
    if (!same && !c->differ++) snprintf(c->first, sizeof c->first, "%s", name);
    H5Sclose(sa), H5Sclose(sb), H5Tclose(ta), H5Tclose(tb), H5Dclose(da), H5Dclose(db);
    return 0;
}

/* Every dataset of a/stats.h5 against b/stats.h5: bitwise (tol 0) or within tol relative. */
static void expect_same_stats(const char *dir, const char *a, const char *b, double tol) {
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/%s/stats.h5", dir, a);
    snprintf(pb, sizeof pb, "%s/%s/stats.h5", dir, b);
    hid_t fa = H5Fopen(pa, H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(pb, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fa < 0 || fb < 0) fail_msg("cannot open %s or %s", pa, pb);
    cmp_ctx c = {fb, tol, 0, 0, 0, ""};
    assert_true(H5Ovisit(fa, H5_INDEX_NAME, H5_ITER_NATIVE, cmp_dataset, &c) >= 0);
    H5Fclose(fa);
    H5Fclose(fb);
    if (c.differ) fail_msg("%s against %s: %d of %d datasets differ, first %s", b, a, c.differ, c.compared, c.first);
    assert_true(c.compared > 10);
    if (tol == 0)
        printf("    stats %s = %s: %d datasets bitwise equal\n", b, a, c.compared);
    else
        printf("    stats %s = %s: %d datasets within %.1e relative (limit %.0e)\n", b, a, c.compared, c.worst, tol);
}

/* `h5dump -g /mask` of the mask of method scored from dir/out's statistics; malloc'd. */
static char *mask_dump(const char *dir, const char *out, const char *method) {
    char *txt = tu_output("h5dump -g /mask '%s/%s/mask-%s-0.5.h5' | tail -n +2", dir, out, method);
    assert_true(strlen(txt) > 1000);
    return txt;
}

static void test_stats_threads(void **state) {
    (void)state;
    char *dir = tu_mkdtemp(), cwd[2048];
    assert_non_null(getcwd(cwd, sizeof cwd));
    tu_mpi_env();
    unsetenv("OPENBLAS_NUM_THREADS"); /* gaprune holds OpenBLAS at one thread whatever it says */
    setenv("GAPRUNE_TEST_PAR_MIN", "0", 1);
    const char *b = getenv("GAPRUNE_BIN");
    char bin[4096];
    if (!realpath(b ? b : "build/san/gaprune", bin)) fail_msg("no gaprune binary");
    char job[8192];
    snprintf(job, sizeof job,
             "[model]\npath = %s/" FIXTURES "/bert-tiny\n[data]\ndomain = %s/" FIXTURES "/corpora/domain.json\n"
             "general = %s/" FIXTURES "/corpora/general.jsonl\n[stats]\nfisher_batch = 4\n[prune]\nlayers = linear\n",
             cwd, cwd, cwd);
    char p[4200];
    snprintf(p, sizeof p, "%s/t.ini", dir);
    tu_write(p, job);
    /* ranks, threads; matmuls whole (their sums then have one order) or split as by default */
    static const int runs[][2] = {{1, 1}, {1, 2}, {1, 4}, {2, 1}, {2, 2}};
    for (int split = 0; split < 2; split++) {
        setenv("GAPRUNE_TEST_SGEMM_MIN", split ? "0" : "9223372036854775807", 1);
        for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
            int rc = tu_run_in(dir,
                               "OMP_NUM_THREADS=%d mpirun -np %d --bind-to none -x ASAN_OPTIONS -x OMP_NUM_THREADS "
                               "-x GAPRUNE_TEST_PAR_MIN -x GAPRUNE_TEST_SGEMM_MIN %s stats t.ini "
                               "--set output.dir=out-%d-%dx%d",
                               runs[i][1], runs[i][0], bin, split, runs[i][0], runs[i][1]);
            char *e = tu_read_in(dir, "err.txt");
            if (rc != 0) fail_msg("stats on %d ranks x %d threads: exit %d\n%s", runs[i][0], runs[i][1], rc, e ? e : "");
            if (e && (strstr(e, "AddressSanitizer") || strstr(e, "runtime error"))) fail_msg("sanitizer report:\n%s", e);
            free(e);
        }
        const double tol = split ? 1e-5 : 0;
        char a[64], o[64];
        for (size_t i = 1; i < sizeof runs / sizeof runs[0]; i++) {
            if (runs[i][1] == 1) continue;
            snprintf(a, sizeof a, "out-%d-%dx1", split, runs[i][0]);
            snprintf(o, sizeof o, "out-%d-%dx%d", split, runs[i][0], runs[i][1]);
            expect_same_stats(dir, a, o, tol);
        }
    }
    /* the masks scored from every run's statistics (split matmuls: the default) equal 1 x 1's bit
     * for bit, for criteria reading each kind of statistic */
    static const char *const methods[] = {"gaprune", "gaprune-ref", "fisher-domain", "wanda"};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        int rc = tu_run_in(dir, "%s score t.ini --set output.dir=out-1-%dx%d --method gaprune,gaprune-ref,fisher-domain,wanda "
                                "--set stats.alignment=refcode", bin, runs[i][0], runs[i][1]);
        if (rc != 0) fail_msg("score of out-1-%dx%d: exit %d", runs[i][0], runs[i][1], rc);
        if (i == 0) continue;
        char o[64];
        snprintf(o, sizeof o, "out-1-%dx%d", runs[i][0], runs[i][1]);
        for (int k = 0; k < 4; k++) {
            char *x = mask_dump(dir, "out-1-1x1", methods[k]), *y = mask_dump(dir, o, methods[k]);
            if (strcmp(x, y)) fail_msg("%s mask from %s's statistics differs from 1 x 1's", methods[k], o);
            free(x), free(y);
        }
    }
    printf("    masks (gaprune, gaprune-ref refcode, fisher-domain, wanda) from 1x2, 1x4, 2x1 and 2x2 statistics equal 1x1's bit for bit\n");
    unsetenv("GAPRUNE_TEST_SGEMM_MIN");
    unsetenv("GAPRUNE_TEST_PAR_MIN");
    tu_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bert_threads),
        cmocka_unit_test(test_qwen3_threads),
        /* gaprune stats with 1, 2 and 4 threads on 1 rank and 1 and 2 on 2, matmuls whole and split */
        tu_long_test(test_stats_threads),
    };
    return tu_run_group("threads", tests, NULL, NULL);
}
