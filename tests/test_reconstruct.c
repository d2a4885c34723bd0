/* test_reconstruct.c — one-shot reconstruction as a stage (reconstruct.h), the sanitizer build:
 *  - the block-wise forward (gp_model_embed, gp_model_block) gives every linear layer the input
 *    a whole forward gives it, on the BERT and Qwen3 fixtures;
 *  - `gaprune score` with prune.reconstruct = obs (magnitude's mask) and with sparsegpt's own
 *    masks (scopes layer, row, 2:4): on 1, 2 and 4 ranks and with 1 and 2 threads the masks are
 *    identical and the weights within a stated bound; masked weights exactly 0; the output error
 *    of every tensor falls; the mask file records the settings and errors;
 *  - a run killed after its first block's checkpoint resumes and ends with the same weights,
 *    bitwise, as an uninterrupted one;
 *  - structured scope neurons: the down projection re-solved over the kept neurons;
 *  - bad settings (sparsegpt with scope neurons) exit 2 naming the keys before any stage.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include <cmocka.h>

#include "gaprune/fs.h"
#include "gaprune/json.h"
#include "gaprune/h5.h"
#include "gaprune/mask_file.h"
#include "gaprune/model.h"
#include "gaprune/tokenizer.h"

static char *g_dir;
static char g_bin[4096], g_cwd[2048];

static int setup(void **state) {
    (void)state;
    g_dir = tu_mkdtemp();
    tu_mpi_env();
    tu_testhooks_off();
    if (!getcwd(g_cwd, sizeof g_cwd) || !realpath(tu_bin(), g_bin)) return -1;
    char p[4400], text[8192];
    snprintf(p, sizeof p, "%s/job.ini", g_dir);
    /* block 16: several column blocks and lazy updates in every weight of the 64-wide fixture */
    snprintf(text, sizeof text,
             "[model]\npath = %s/" FIXTURES "/bert-f32\n[data]\ndomain = %s/" FIXTURES "/corpora/domain.json\n"
             "general = %s/" FIXTURES "/corpora/general.jsonl\n[prune]\nlayers = linear\nblock = 16\n"
             "reconstruct_general = 0.5\n[eval]\nbatch = 8\n[output]\ndir = out\n",
             g_cwd, g_cwd, g_cwd);
    tu_write(p, text);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* ---- the block-wise forward ------------------------------------------------------------------ */

typedef struct {
    float *x[64];
    int64_t n[64];
    int count;
} inputs;

static void keep_input(void *ctx, int param, const float *x, int N, int in) {
    inputs *v = ctx;
    assert_true(v->count < 64);
    (void)param;
    v->x[v->count] = gp_malloc((size_t)N * in * sizeof(float));
    memcpy(v->x[v->count], x, (size_t)N * in * sizeof(float));
    v->n[v->count++] = (int64_t)N * in;
}

static void block_forward_matches(const char *fixture) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", FIXTURES, fixture);
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(dir, &m, &err), GP_OK);
    const char *texts[] = {"What is the capital of France?", "Paris is the capital and largest city of France.",
                           "supercalifragilisticexpialidocious unknownword xyzzy"};
    gp_batch b;
    gp_tokenizer_batch(m->tok, texts, 3, 32, &b);
    float emb[3 * 64];
    gp_model_forward(m, &b, emb);
    inputs whole = {0}, blocks = {0};
    gp_model_each_linear_input(m, keep_input, &whole);
    gp_seqs *s = gp_model_seqs(m, &b);
    const int N = gp_seqs_tokens(s), C = m->cfg.hidden;
    float *x = gp_malloc((size_t)N * C * sizeof(float)), *y = gp_malloc((size_t)N * C * sizeof(float));
    gp_model_embed(m, s, x);
    for (int l = 0; l < m->cfg.layers; l++) {
        gp_model_block(m, s, l, x, y, keep_input, &blocks);
        memcpy(x, y, (size_t)N * C * sizeof(float));
    }
    assert_int_equal(whole.count, blocks.count);
    assert_true(whole.count >= 12);
    double worst = 0;
    for (int k = 0; k < whole.count; k++) {
        assert_int_equal(whole.n[k], blocks.n[k]);
        const double e = tu_max_abs(whole.x[k], blocks.x[k], (size_t)whole.n[k]);
        worst = e > worst ? e : worst;
        free(whole.x[k]), free(blocks.x[k]);
    }
    /* the same kernels on the same values: bitwise */
    assert_true(worst == 0.0);
    /* and backward refuses the block-wise forward's buffers until the next forward: a forward again works */
    gp_model_forward(m, &b, emb);
    printf("    %s: the %d linear layers' inputs of the block-wise forward equal the whole forward's bitwise\n", fixture,
           whole.count);
    free(x), free(y);
    gp_seqs_free(s);
    gp_batch_free(&b);
    gp_model_free(m);
}

static void test_block_forward(void **state) {
    (void)state;
    block_forward_matches("bert-f32");
    block_forward_matches("qwen3-f32");
}

/* ---- the stage through gaprune score ---------------------------------------------------------- */

/* Every MLP and attention weight of a pruned folder, concatenated in table order (malloc'd; *n
 * their count), and the mask file's /mask bytes of the same tensors in the same order. */
static float *folder_weights(const char *dir, const char *mask_path, uint8_t **keep, int64_t *n) {
    gp_model *m;
    gp_err err = {0};
    if (gp_model_load(dir, &m, &err)) fail_msg("%s: %s", dir, err.msg);
    hid_t f = H5Fopen(mask_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    float *all = NULL;
    *keep = NULL;
    *n = 0;
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        if (gp_model_param_kind(m, i, &layer) == GP_PARAM_OTHER) continue;
        const int64_t k = (int64_t)m->table.p[i].numel;
        all = gp_realloc(all, (size_t)(*n + k) * sizeof(float));
        *keep = gp_realloc(*keep, (size_t)(*n + k));
        memcpy(all + *n, gp_model_param(m, i), (size_t)k * sizeof(float));
        char name[512];
        gp_mask_tensor(name, sizeof name, GP_MASK_KEEP, m->src_names[i]);
        hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
        assert_true(ds >= 0);
        assert_true(H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, *keep + *n) >= 0);
        H5Dclose(ds);
        *n += k;
    }
    H5Fclose(f);
    gp_model_free(m);
    return all;
}

typedef struct {
    float *w;
    uint8_t *keep;
    int64_t nw, nk;
} result;

/* `gaprune score` of one (method, scope) with reconstruction on np ranks and t threads into out-<tag>. */
static result score_run(const char *method, const char *scope, const char *recon, int np, int threads, const char *tag) {
    assert_int_equal(tu_run_in(g_dir,
                               "OMP_NUM_THREADS=%d mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS %s "
                               "score job.ini --method %s --sparsity 0.5 --set prune.scope=%s --set prune.reconstruct=%s "
                               "--set output.dir=out-%s",
                               threads, np, g_bin, method, scope, recon, tag),
                     0);
    char p[4400], label[128];
    snprintf(label, sizeof label, "%s%s-0.5", method, strcmp(recon, "obs") ? "" : "+obs");
    result r;
    char q[4400];
    snprintf(p, sizeof p, "%s/out-%s/pruned-%s", g_dir, tag, label);
    snprintf(q, sizeof q, "%s/out-%s/mask-%s.h5", g_dir, tag, label);
    r.w = folder_weights(p, q, &r.keep, &r.nw);
    r.nk = r.nw;
    return r;
}

static void result_free(result *r) { free(r->w), free(r->keep); }

/* The mask file's per-tensor errors: every tensor's error falls (or, mask alone, stays). */
static void check_errors(const char *path, bool update) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    char *r = gp_h5_read_attr_str(f, GP_MASK_ATTR_RECONSTRUCT);
    assert_non_null(r);
    assert_string_equal(r, update ? "obs" : "none");
    free(r);
    double damp = 0;
    assert_int_equal(gp_h5_read_attr_double(f, GP_MASK_ATTR_DAMPENING, &damp), GP_OK);
    assert_true(damp == 0.01);
    int64_t texts = 0;
    assert_int_equal(gp_h5_read_attr_int(f, GP_MASK_ATTR_CALIBRATION_TEXTS_DOMAIN, &texts), GP_OK);
    assert_true(texts > 0 && texts % 3 == 0);
    double before[16], after[16];
    assert_int_equal(gp_h5_read_f64(f, GP_MASK_RECON_ERROR_BEFORE, before, 12), GP_OK); /* 2 blocks x 6 weights */
    assert_int_equal(gp_h5_read_f64(f, GP_MASK_RECON_ERROR_AFTER, after, 12), GP_OK);
    for (int i = 0; i < 12; i++) {
        assert_true(before[i] > 0.05 && before[i] < 1.5);
        if (update) assert_true(after[i] < before[i]);
        else assert_true(after[i] == before[i]);
    }
    H5Fclose(f);
}

static double g_worst; /* the largest difference compare() saw */

static void compare(const result *a, const result *b, double bound, const char *what) {
    assert_int_equal(a->nk, b->nk);
    assert_memory_equal(a->keep, b->keep, (size_t)a->nk);
    assert_int_equal(a->nw, b->nw);
    const double e = tu_rel_err(a->w, b->w, (size_t)a->nw);
    if (!(e <= bound)) fail_msg("%s: weights differ by %g relative (bound %g)", what, e, bound);
    g_worst = e > g_worst ? e : g_worst;
}

/* Bound on the weights across rank and thread counts: the Hessians are summed over ranks in
 * double (each batch's XᵀX in float32, identical wherever it is made), so they differ by double
 * rounding only, and the factor U is rounded to float32 from them: an ulp here and there, which
 * the sweep and the next block's inputs carry on. Measured 5.6e-7 to 8.7e-7 relative (max
 * |Δ| / max |w|) on this fixture with reconstruction, 0 for sparsegpt's mask alone; masks equal. */
#define RANK_BOUND 1e-5

static void test_ranks_and_threads(void **state) {
    (void)state;
    const char *cases[][3] = {{"magnitude", "global", "obs"}, {"sparsegpt", "layer", "obs"}, {"sparsegpt", "row", "obs"},
                              {"sparsegpt", "2:4", "obs"},    {"sparsegpt", "layer", "none"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char tag[64];
        snprintf(tag, sizeof tag, "c%zu-1", c);
        result one = score_run(cases[c][0], cases[c][1], cases[c][2], 1, 1, tag);
        /* pruned weights exactly 0, and the mask's count */
        int64_t pruned = 0, zero_kept = 0;
        for (int64_t k = 0; k < one.nk; k++) {
            pruned += !one.keep[k];
            zero_kept += one.keep[k] && one.w[k] == 0.0f;
            if (!one.keep[k]) assert_true(one.w[k] == 0.0f && !signbit(one.w[k]));
        }
        assert_int_equal(one.nk, one.nw);
        assert_true(pruned == one.nk / 2);
        assert_true(zero_kept < one.nk / 100);
        char p[4400], label[128];
        snprintf(label, sizeof label, "%s%s-0.5", cases[c][0], strcmp(cases[c][2], "obs") ? "" : "+obs");
        snprintf(p, sizeof p, "%s/out-%s/mask-%s.h5", g_dir, tag, label);
        check_errors(p, !strcmp(cases[c][2], "obs"));
        const int np[] = {2, 4};
        for (int k = 0; k < 2; k++) {
            snprintf(tag, sizeof tag, "c%zu-%d", c, np[k]);
            result r = score_run(cases[c][0], cases[c][1], cases[c][2], np[k], 1, tag);
            compare(&one, &r, RANK_BOUND, tag);
            result_free(&r);
        }
        snprintf(tag, sizeof tag, "c%zu-t2", c);
        result t2 = score_run(cases[c][0], cases[c][1], cases[c][2], 1, 2, tag);
        compare(&one, &t2, RANK_BOUND, tag);
        result_free(&t2);
        /* n:m: 2 of every 4 consecutive inputs kept in every row */
        if (!strcmp(cases[c][1], "2:4"))
            for (int64_t k = 0; k < one.nk; k += 4)
                assert_int_equal(one.keep[k] + one.keep[k + 1] + one.keep[k + 2] + one.keep[k + 3], 2);
        printf("    %s scope %s reconstruct %s: masks identical and weights within %g (bound %g) on 1, 2, 4 ranks and 2 "
               "threads\n", cases[c][0], cases[c][1], cases[c][2], g_worst, RANK_BOUND);
        g_worst = 0;
        result_free(&one);
    }
}

static void test_kill_and_resume(void **state) {
    (void)state;
    result whole = score_run("sparsegpt", "layer", "obs", 2, 1, "whole");
    /* killed right after block 0's checkpoint */
    const int rc = tu_run_in(g_dir,
                             "GAPRUNE_TEST_KILL_AFTER_CHECKPOINT=1 mpirun -np 2 -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS "
                             "-x GAPRUNE_TEST_KILL_AFTER_CHECKPOINT %s score job.ini --method sparsegpt --sparsity 0.5 --set "
                             "prune.scope=layer --set prune.reconstruct=obs --set output.dir=out-killed",
                             g_bin);
    assert_int_not_equal(rc, 0);
    char p[4400];
    snprintf(p, sizeof p, "%s/out-killed/reconstruct-sparsegpt+obs-0.5/block-0.h5", g_dir);
    assert_true(gp_file_exists(p));
    snprintf(p, sizeof p, "%s/out-killed/pruned-sparsegpt+obs-0.5", g_dir);
    assert_false(gp_dir_exists(p));
    result resumed = score_run("sparsegpt", "layer", "obs", 2, 1, "killed");
    char *log = tu_read_in(g_dir, "out.txt");
    assert_non_null(strstr(log, "reconstruct: resumed after block 0 of 2"));
    free(log);
    assert_int_equal(whole.nw, resumed.nw);
    assert_memory_equal(whole.w, resumed.w, (size_t)whole.nw * sizeof(float));
    assert_memory_equal(whole.keep, resumed.keep, (size_t)whole.nk);
    /* the checkpoints are gone once the folder is written */
    snprintf(p, sizeof p, "%s/out-killed/reconstruct-sparsegpt+obs-0.5", g_dir);
    assert_false(gp_dir_exists(p));
    printf("    killed after block 0's checkpoint and rerun: the same weights and mask, bitwise\n");
    result_free(&whole), result_free(&resumed);
}

/* Scope neurons: the up projections lose whole rows, the down projection whole columns, which the
 * reconstruction re-solves over the kept neurons; its output error falls. */
static void test_neurons(void **state) {
    (void)state;
    assert_int_equal(tu_run_in(g_dir,
                               "mpirun -np 2 -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s score job.ini --method magnitude "
                               "--sparsity 0.5 --set prune.layers=mlp --set prune.scope=neurons --set prune.reconstruct=obs "
                               "--set output.dir=out-neurons",
                               g_bin),
                     0);
    char p[4400];
    snprintf(p, sizeof p, "%s/out-neurons/mask-magnitude+obs-0.5.h5", g_dir);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    double before[4], after[4]; /* per block: intermediate.dense, output.dense */
    assert_int_equal(gp_h5_read_f64(f, GP_MASK_RECON_ERROR_BEFORE, before, 4), GP_OK);
    assert_int_equal(gp_h5_read_f64(f, GP_MASK_RECON_ERROR_AFTER, after, 4), GP_OK);
    H5Fclose(f);
    for (int i = 0; i < 4; i++) {
        /* the up projection's removed rows cannot be compensated at that layer: the same error; the
         * down projection's columns are re-solved */
        if (i % 2 == 0) assert_true(fabs(after[i] - before[i]) < 1e-6);
        else assert_true(after[i] < 0.9 * before[i]);
    }
    /* the smaller folder loads and has half the neurons */
    snprintf(p, sizeof p, "%s/out-neurons/pruned-magnitude+obs-0.5", g_dir);
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(p, &m, &err), GP_OK);
    assert_int_equal(m->cfg.intermediate, 64);
    gp_model_free(m);
    printf("    scope neurons: down projections re-solved over the kept neurons, error %.3f -> %.3f\n", before[1], after[1]);
}

/* Order parallel: every block's inputs from the dense model. Block 0 sees the same inputs either way
 * (the embeddings), so its solved weights equal the sequential order's; block 1's differ. */
static void test_parallel_order(void **state) {
    (void)state;
    result seq = score_run("magnitude", "global", "obs", 1, 1, "seq");
    assert_int_equal(tu_run_in(g_dir,
                               "%s score job.ini --method magnitude --sparsity 0.5 --set prune.reconstruct=obs --set "
                               "prune.reconstruct_order=parallel --set output.dir=out-par",
                               g_bin),
                     0);
    char p[4400], q[4400];
    snprintf(p, sizeof p, "%s/out-par/pruned-magnitude+obs-0.5", g_dir);
    snprintf(q, sizeof q, "%s/out-par/mask-magnitude+obs-0.5.h5", g_dir);
    result par;
    par.w = folder_weights(p, q, &par.keep, &par.nw);
    par.nk = par.nw;
    check_errors(q, true);
    assert_memory_equal(seq.keep, par.keep, (size_t)seq.nk);
    /* block 0's query, key and value read the embeddings either way; everything after them reads
     * solved (sequential) or dense (parallel) layers' outputs */
    const int64_t qkv = 3 * 64 * 64;
    assert_memory_equal(seq.w, par.w, (size_t)qkv * sizeof(float));
    assert_memory_not_equal(seq.w + qkv, par.w + qkv, (size_t)(seq.nw - qkv) * sizeof(float));
    hid_t f = H5Fopen(q, H5F_ACC_RDONLY, H5P_DEFAULT);
    char *order = gp_h5_read_attr_str(f, GP_MASK_ATTR_RECONSTRUCT_ORDER);
    assert_string_equal(order, "parallel");
    free(order);
    H5Fclose(f);
    printf("    order parallel: block 0's query, key and value as the sequential order's (bitwise), every later layer "
           "solved on the dense model's inputs\n");
    result_free(&seq), result_free(&par);
}

/* gaprune run on the fixture: rows with and without reconstruction and the dense-retrained
 * baseline; the reconstructed masks' retraining starts from the reconstructed weights. */
static void test_run_report(void **state) {
    (void)state;
    char p[4400], text[16384];
    snprintf(p, sizeof p, "%s/run.ini", g_dir);
    snprintf(text, sizeof text,
             "[model]\npath = %s/" FIXTURES "/bert-f32\n[data]\ndomain = %s/" FIXTURES "/corpora/domain.json\n"
             "general = %s/" FIXTURES "/corpora/general.jsonl\n[prune]\nmethods = magnitude, sparsegpt\n"
             "reconstruct = none, obs\nblock = 16\n[retrain]\nmethods = magnitude, dense\nsteps = 2\nbatch = 4\n"
             "lr = 1e-3\nwarmup = 1\n[eval]\nretrieval = %s/" FIXTURES "/beir-tiny\n[output]\ndir = out-run\n",
             g_cwd, g_cwd, g_cwd, g_cwd);
    tu_write(p, text);
    assert_int_equal(tu_run_in(g_dir, "mpirun -np 2 -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s run run.ini", g_bin), 0);
    snprintf(p, sizeof p, "%s/out-run/report.md", g_dir);
    size_t len;
    char *md = tu_read_file(p, &len);
    const char *rows[] = {"| magnitude | 0.5 |", "| magnitude+obs | 0.5 |", "| sparsegpt | 0.5 |", "| sparsegpt+obs | 0.5 |",
                          "| magnitude → magnitude+obs |", "Retrained models against the dense model retrained alike"};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (!strstr(md, rows[i])) fail_msg("report.md lacks \"%s\"", rows[i]);
    free(md);
    /* both magnitude masks retrained; the reconstructed one from its own weights: another first loss */
    snprintf(p, sizeof p, "%s/out-run/report.json", g_dir);
    char *js = tu_read_file(p, &len);
    cJSON *j = cJSON_Parse(js);
    assert_non_null(j);
    double first[2] = {NAN, NAN}, err[2] = {NAN, NAN};
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(j, "rows")) {
        const cJSON *mth = cJSON_GetObjectItem(r, "method");
        const cJSON *fl = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "retraining"), "first_loss");
        const cJSON *rc = cJSON_GetObjectItem(r, "reconstruction");
        if (!cJSON_IsString(mth)) continue;
        if (!strcmp(mth->valuestring, "magnitude") && cJSON_IsNumber(fl)) first[0] = fl->valuedouble;
        if (!strcmp(mth->valuestring, "magnitude") && rc) fail_msg("a mask-only row with a reconstruction");
        if (!strcmp(mth->valuestring, "magnitude+obs") && cJSON_IsNumber(fl)) first[1] = fl->valuedouble;
        if (!strcmp(mth->valuestring, "magnitude+obs") && rc) {
            err[0] = cJSON_GetObjectItem(rc, "output_error_mask_alone")->valuedouble;
            err[1] = cJSON_GetObjectItem(rc, "output_error_written")->valuedouble;
        }
    }
    assert_true(isfinite(first[0]) && isfinite(first[1]) && first[0] != first[1]);
    assert_true(err[1] < err[0] && err[0] > 0);
    assert_non_null(cJSON_GetObjectItem(j, "dense_retrained"));
    cJSON_Delete(j);
    free(js);
    /* a rerun finds every mask, folder and evaluation current */
    assert_int_equal(tu_run_in(g_dir, "mpirun -np 2 -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s run run.ini", g_bin), 0);
    char *log = tu_read_in(g_dir, "out.txt");
    assert_null(strstr(log, "reconstruct: block"));
    assert_non_null(strstr(log, "pruned-magnitude+obs-0.5 are up to date"));
    free(log);
    printf("    gaprune run: rows with and without reconstruction, sparsegpt's, the dense-retrained baseline; a rerun "
           "reconstructs nothing\n");
}

static void test_bad_settings(void **state) {
    (void)state;
    const int rc = tu_run_in(g_dir, "%s score job.ini --method sparsegpt --set prune.layers=mlp --set prune.scope=neurons",
                             g_bin);
    assert_int_equal(rc, 2);
    char *e = tu_read_in(g_dir, "err.txt");
    assert_non_null(strstr(e, "sparsegpt"));
    assert_non_null(strstr(e, "scope"));
    free(e);
    assert_int_equal(tu_run_in(g_dir, "%s score job.ini --method magnitude --set prune.reconstruct=obs,qr", g_bin), 2);
    e = tu_read_in(g_dir, "err.txt");
    assert_non_null(strstr(e, "--set prune.reconstruct=obs,qr"));
    free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_forward),
        /* five methods and scopes on 1, 2 and 4 ranks and 2 threads */
        tu_long_test(test_ranks_and_threads),
        cmocka_unit_test(test_kill_and_resume),
        cmocka_unit_test(test_neurons),
        cmocka_unit_test(test_parallel_order),
        cmocka_unit_test(test_run_report),
        cmocka_unit_test(test_bad_settings),
    };
    return tu_run_group("reconstruct", tests, setup, teardown);
}
