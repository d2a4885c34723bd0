/* test_score.c — `gaprune score` end to end (the sanitizer build):
 *  - magnitude 50% of bert-tiny's MLP: the mask and the pruned model's weights equal the
 *    PyTorch reference (make_prune_fixtures.py), its embeddings too, non-weight files are
 *    byte-identical, and (when Debian's torch is installed) the reference reads the folder
 *    gaprune wrote and reproduces gaprune's embeddings (check_pruned.py);
 *  - export of the BF16, sharded, "bert."-prefixed model: dtypes, shards, untouched tensors
 *    byte for byte, weights exactly masked;
 *  - every scope prunes exactly what it promises, /summary agrees with /mask, reruns skip;
 *  - the mask files (masks, scores, summary, attributes: all of h5dump but the run's command,
 *    clock, rank count and paths) are identical on 1, 2, 3, 4 and 8 ranks for every scope and
 *    criterion, the refcode alignment included;
 *  - a NaN score stops with exit 2 naming the tensor;
 *  - damaged statistics and mask files (an attribute holding an array, names that are not
 *    strings or more of them than cosines, a damaged /summary row, an extent the file does not
 *    hold, scores far outside the summary's range) give exit 2 naming the file, or a table,
 *    never a sanitizer report.
 */
#include "test_util.h"
#include "h5_edit.h"

#include <hdf5.h>
#include <sys/wait.h>

#include <math.h>

#include "gaprune/export.h"
#include "gaprune/h5.h"
#include "gaprune/mask.h"
#include "gaprune/mask_file.h"
#include "gaprune/model.h"
#include "gaprune/safetensors.h"
#include "gaprune/stats_file.h"

static char *g_dir;

static const char *bin(void) { return tu_bin_abs(); }

static char *in_dir(const char *rel) {
    char *p = malloc(4400);
    snprintf(p, 4400, "%s/%s", g_dir, rel);
    return p;
}

static void assert_stderr_has(const char *needle) {
    char *p = in_dir("err.txt"), *e = tu_read_file(p, NULL);
    if (!e || !strstr(e, needle)) fail_msg("expected \"%s\" in stderr:\n%s", needle, e ? e : "(none)");
    if (strstr(e, "AddressSanitizer") || strstr(e, "runtime error")) fail_msg("sanitizer report:\n%s", e);
    free(e), free(p);
}

static void write_job(const char *name, const char *model, const char *extra) {
    char p[4400], cwd[2048], text[8192];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(p, sizeof p, "%s/%s.ini", g_dir, name);
    snprintf(text, sizeof text,
             "[model]\npath = %s/" FIXTURES "/%s\n[data]\ndomain = %s/" FIXTURES "/corpora/domain.json\n"
             "general = %s/" FIXTURES "/corpora/general.jsonl\n[output]\ndir = out-%s\n%s",
             cwd, model, cwd, cwd, name, extra ? extra : "");
    tu_write(p, text);
}

static int setup(void **state) {
    (void)state;
    g_dir = tu_mkdtemp();
    tu_mpi_env();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static uint8_t *read_u8(hid_t f, const char *name, size_t n) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) fail_msg("no dataset %s", name);
    uint8_t *x = malloc(n);
    assert_true(H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Dclose(d);
    return x;
}

static bool same_file(const char *a, const char *b) {
    char *x = tu_read_file(a, NULL), *y = tu_read_file(b, NULL);
    bool ok = x && y && strcmp(x, y) == 0;
    free(x), free(y);
    return ok;
}

/* The PyTorch reference reads the folder gaprune wrote and reproduces its embeddings of the
 * texts (emb_path: `gaprune encode`'s), when Debian's torch is installed. */
static void check_pruned(const char *label, const char *pruned, const char *texts_path, const char *emb_path) {
    if (system("/usr/bin/python3 -c 'import torch, h5py' >/dev/null 2>&1") != 0) {
        printf("    (no torch here: check_pruned.py not run)\n");
        return;
    }
    char cwd[2048];
    assert_non_null(getcwd(cwd, sizeof cwd));
    int rc = tu_run_in(g_dir, "/usr/bin/python3 %s/tests/reference/check_pruned.py %s %s %s", cwd, pruned, texts_path, emb_path);
    char *o = in_dir("out.txt"), *txt = tu_read_file(o, NULL);
    printf("    %s%s%s", label, *label ? ": " : "", txt ? txt : "");
    free(o), free(txt);
    assert_int_equal(rc, 0);
}

static void test_magnitude_against_reference(void **state) {
    (void)state;
    write_job("mag", "bert-tiny", NULL);
    assert_int_equal(tu_run_in(g_dir, "%s score mag.ini --method magnitude --sparsity 0.5", bin()), 0);
    char *pruned = in_dir("out-mag/pruned-magnitude-0.5"), *maskf = in_dir("out-mag/mask-magnitude-0.5.h5");
    gp_model *orig, *pm;
    gp_err err = {0};
    assert_int_equal(gp_model_load(FIXTURES "/bert-tiny", &orig, &err), GP_OK);
    if (gp_model_load(pruned, &pm, &err)) fail_msg("%s", err.msg);
    hid_t ref = H5Fopen(FIXTURES "/pruned-magnitude.expected.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t mf = H5Fopen(maskf, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(ref >= 0 && mf >= 0);
    int64_t pruned_total = 0;
    for (int i = 0; i < orig->table.n; i++) {
        const gp_param *p = &orig->table.p[i];
        const float *w0 = gp_model_param(orig, i), *w1 = gp_model_param(pm, i);
        char name[300];
        snprintf(name, sizeof name, "mask/%s", p->name);
        if (H5Lexists(ref, "mask", H5P_DEFAULT) > 0 && H5Lexists(ref, name, H5P_DEFAULT) > 0) {
            uint8_t *want = read_u8(ref, name, p->numel), *got = read_u8(mf, name, p->numel);
            for (size_t k = 0; k < p->numel; k++) {
                assert_int_equal(got[k], want[k]);
                assert_true(w1[k] == (want[k] ? w0[k] : 0.0f)); /* exactly masked */
                pruned_total += !want[k];
            }
            free(want), free(got);
        } else {
            assert_memory_equal(w0, w1, p->numel * sizeof(float)); /* everything else untouched */
        }
    }
    assert_int_equal(pruned_total, 2048);
    /* embeddings of the pruned model */
    hid_t d = H5Dopen2(ref, "texts", H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char *texts[4];
    assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, texts) >= 0);
    H5Dclose(d);
    H5Tclose(t);
    float want[4 * 32], got[4 * 32];
    d = H5Dopen2(ref, "embeddings", H5P_DEFAULT);
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, want) >= 0);
    H5Dclose(d);
    gp_model_encode(pm, (const char *const *)texts, 4, 4, 0, NULL, got);
    double diff = tu_max_abs(got, want, 4 * 32);
    printf("    magnitude 50%%: mask and weights equal the reference; embeddings within %.2e\n", diff);
    assert_true(diff < 1e-5);
    /* the other files, byte for byte, and the provenance */
    static const char *same[] = {"config.json", "vocab.txt", "tokenizer_config.json", "modules.json", "1_Pooling/config.json",
                                 "sentence_bert_config.json"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        char a[4400], b[4400];
        snprintf(a, sizeof a, FIXTURES "/bert-tiny/%s", same[i]);
        snprintf(b, sizeof b, "%s/%s", pruned, same[i]);
        assert_true(same_file(a, b));
    }
    gp_st_file *sf;
    char sp[4400];
    snprintf(sp, sizeof sp, "%s/model.safetensors", pruned);
    assert_int_equal(gp_st_open(sp, &sf, &err), GP_OK);
    assert_string_equal(gp_st_meta(sf, "format"), "pt");
    assert_string_equal(gp_st_meta(sf, "gaprune.method"), "magnitude");
    assert_non_null(gp_st_meta(sf, "gaprune.mask_file"));
    gp_st_close(sf);
    /* the PyTorch reference reads gaprune's folder (when Debian's torch is there) */
    char texts_path[4400], emb_path[4400];
    snprintf(texts_path, sizeof texts_path, "%s/texts.txt", g_dir);
    snprintf(emb_path, sizeof emb_path, "%s/pruned-emb.h5", g_dir);
    FILE *tf = fopen(texts_path, "w");
    for (int i = 0; i < 3; i++) fprintf(tf, "%s\n", texts[i]); /* the empty text would be lost in a .txt */
    fclose(tf);
    assert_int_equal(tu_run_in(g_dir, "%s encode --model %s --input %s --output %s", bin(), pruned, texts_path, emb_path), 0);
    check_pruned("", pruned, texts_path, emb_path);
    for (int i = 0; i < 4; i++) free(texts[i]);
    H5Fclose(ref);
    H5Fclose(mf);
    gp_model_free(orig);
    gp_model_free(pm);
    free(pruned), free(maskf);
    /* a rerun keeps what is complete */
    assert_int_equal(tu_run_in(g_dir, "%s score mag.ini --method magnitude --sparsity 0.5", bin()), 0);
    char *o = in_dir("out.txt"), *txt = tu_read_file(o, NULL);
    assert_non_null(strstr(txt, "up to date"));
    free(o), free(txt);
}

static void test_bf16_sharded_export(void **state) {
    (void)state;
    write_job("bf", "bert-bf16", NULL);
    assert_int_equal(tu_run_in(g_dir, "mpirun -np 2 -x ASAN_OPTIONS %s score bf.ini --method magnitude --sparsity 0.5", bin()), 0);
    char *pruned = in_dir("out-bf/pruned-magnitude-0.5");
    gp_st_set *a, *b;
    gp_err err = {0};
    assert_int_equal(gp_st_set_open(FIXTURES "/bert-bf16", &a, &err), GP_OK);
    assert_int_equal(gp_st_set_open(pruned, &b, &err), GP_OK);
    assert_int_equal(gp_st_set_nfiles(b), 2);
    int zeros = 0, tensors = 0;
    for (int s = 0; s < gp_st_set_nfiles(a); s++) {
        const gp_st_file *fa = gp_st_set_file(a, s);
        for (int k = 0; k < gp_st_count(fa); k++) {
            const gp_st_tensor *ta = gp_st_at(fa, k), *tb = gp_st_set_find(b, ta->name);
            assert_non_null(tb);
            assert_int_equal(ta->dtype, tb->dtype);
            assert_int_equal(ta->ndim, tb->ndim);
            assert_string_equal(gp_st_set_file_name(a, s), strrchr(tb->path, '/') + 1); /* same shard */
            bool mlp = strstr(ta->name, "intermediate.dense.weight") ||
                       (strstr(ta->name, "output.dense.weight") && !strstr(ta->name, "attention"));
            if (!mlp) {
                assert_memory_equal(ta->data, tb->data, ta->end - ta->begin); /* pooler, position_ids, ... */
            } else {
                const uint16_t *x = (const uint16_t *)ta->data, *y = (const uint16_t *)tb->data;
                for (int64_t e = 0; e < ta->numel; e++) {
                    assert_true(y[e] == x[e] || y[e] == 0); /* kept exactly, or +0 */
                    zeros += y[e] == 0 && x[e] != 0;
                }
            }
            tensors++;
        }
    }
    printf("    BF16, 2 shards: %d tensors, %d weights zeroed\n", tensors, zeros);
    assert_int_equal(zeros, 2 * (128 * 64 + 64 * 128) / 2); /* 2 layers, intermediate + output, 50% */
    char idx[4400];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", pruned);
    assert_true(same_file(FIXTURES "/bert-bf16/model.safetensors.index.json", idx));
    gp_st_set_close(a);
    gp_st_set_close(b);
    gp_model *pm;
    if (gp_model_load(pruned, &pm, &err)) fail_msg("%s", err.msg);
    gp_model_free(pm);
    free(pruned);
}

/* Checks the mask file of a run against its scope. */
static void check_scope(const char *job, const char *tag, const char *scope, gp_model *m) {
    char path[4400];
    snprintf(path, sizeof path, "%s/out-%s/mask-%s.h5", g_dir, job, tag);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) fail_msg("no %s", path);
    int64_t total = 0, pruned = 0;
    int64_t layer_n[8] = {0}, layer_p[8] = {0};
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        if (gp_model_param_kind(m, i, &layer) != GP_PARAM_MLP) continue;
        const gp_param *p = &m->table.p[i];
        char name[300];
        snprintf(name, sizeof name, "mask/%s", m->src_names[i]);
        uint8_t *k = read_u8(f, name, p->numel);
        int64_t rows = p->shape[0], cols = p->shape[1];
        for (int64_t r = 0; r < rows; r++) {
            int64_t kept = 0;
            for (int64_t c = 0; c < cols; c++) kept += k[r * cols + c];
            if (!strcmp(scope, "row")) assert_int_equal(cols - kept, (int64_t)floor(0.5 * (double)cols));
            if (!strcmp(scope, "2:4"))
                for (int64_t c = 0; c < cols; c += 4) assert_int_equal(k[r * cols + c] + k[r * cols + c + 1] + k[r * cols + c + 2] + k[r * cols + c + 3], 2);
            total += cols, pruned += cols - kept;
            layer_n[layer] += cols, layer_p[layer] += cols - kept;
        }
        free(k);
    }
    if (!strcmp(scope, "global")) assert_int_equal(pruned, (int64_t)floor(0.5 * (double)total));
    if (!strcmp(scope, "layer"))
        for (int l = 0; l < 8; l++) assert_int_equal(layer_p[l], (int64_t)floor(0.5 * (double)layer_n[l]));
    /* /summary agrees */
    hid_t d = H5Dopen2(f, "summary", H5P_DEFAULT);
    hid_t t = H5Tcreate(H5T_COMPOUND, 2 * sizeof(int64_t));
    H5Tinsert(t, "numel", 0, H5T_NATIVE_INT64);
    H5Tinsert(t, "kept", sizeof(int64_t), H5T_NATIVE_INT64);
    hid_t sp = H5Dget_space(d);
    size_t n = (size_t)H5Sget_simple_extent_npoints(sp);
    int64_t *rows = malloc(n * 2 * sizeof(int64_t));
    assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    int64_t sn = 0, sk = 0;
    for (size_t i = 0; i < n; i++) sn += rows[2 * i], sk += rows[2 * i + 1];
    assert_int_equal(sn, total);
    assert_int_equal(sn - sk, pruned);
    double ach;
    hid_t a = H5Aopen(f, "sparsity_achieved", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_DOUBLE, &ach);
    H5Aclose(a);
    assert_true(fabs(ach - (double)pruned / (double)total) < 1e-12);
    printf("    %-7s %s: pruned %lld of %lld\n", scope, tag, (long long)pruned, (long long)total);
    free(rows);
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
}

static void test_scopes(void **state) {
    (void)state;
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(FIXTURES "/bert-f32", &m, &err), GP_OK);
    static const char *scopes[] = {"global", "layer", "row", "2:4"};
    for (int s = 0; s < 4; s++) {
        char job[32], extra[128];
        snprintf(job, sizeof job, "scope%d", s);
        snprintf(extra, sizeof extra, "[prune]\nscope = %s\n", scopes[s]);
        write_job(job, "bert-f32", extra);
        char out[4200];
        snprintf(out, sizeof out, "%s/out-%s", g_dir, job);
        tu_stats_fixture("bert-f32", "", out); /* the scope does not change the statistics */
        assert_int_equal(tu_run_in(g_dir, "mpirun -np 2 -x ASAN_OPTIONS %s score %s.ini --method gaprune,wanda --sparsity 0.5", bin(), job), 0);
        check_scope(job, "gaprune-0.5", scopes[s], m);
        /* issue 27: a selection without one threshold (wanda's rows, and every scope but global)
         * says so; global names its threshold, a number */
        char *op = in_dir("out.txt"), *log = tu_read_file(op, NULL);
        assert_non_null(log);
        assert_null(strstr(log, "threshold nan"));
        const char *g = strstr(log, "score: gaprune at 0.5: "), *w = strstr(log, "score: wanda at 0.5: ");
        assert_true(g && w && strchr(g, '\n') && strchr(w, '\n'));
        const char *ng = strstr(w, "; no global threshold (selected per row, n:m group, layer or structure)");
        assert_true(ng && ng < strchr(w, '\n'));
        const char *gt = strstr(g, s == 0 ? "; threshold " : "; no global threshold");
        assert_true(gt && gt < strchr(g, '\n'));
        if (s == 0) assert_true(strtod(gt + 12, NULL) > 0);
        free(op), free(log);
    }
    check_scope("scope0", "wanda-0.5", "row", m); /* wanda: global means row */
    /* gaprune inspect: a table per layer and an SVG figure, for a mask and for the statistics */
    assert_int_equal(tu_run_in(g_dir, "%s inspect out-scope0/mask-gaprune-0.5.h5 --svg mask.svg", bin()), 0);
    char *o = in_dir("out.txt"), *txt = tu_read_file(o, NULL), *sv = in_dir("mask.svg"), *svg = tu_read_file(sv, NULL);
    assert_non_null(strstr(txt, "mask of gaprune, scope global: target 0.5, achieved 0.5"));
    assert_non_null(strstr(txt, "score mean"));
    assert_true(svg && !strncmp(svg, "<svg", 4) && strstr(svg, "kept fraction per layer") && strstr(svg, "</svg>"));
    free(txt), free(svg);
    assert_int_equal(tu_run_in(g_dir, "%s inspect out-scope0/stats.h5 --svg stats.svg", bin()), 0);
    txt = tu_read_file(o, NULL);
    assert_non_null(strstr(txt, "mean F_dom"));
    /* a row per block (the tensors are chunked and deflated: read whole, not taken for missing) */
    if (!strstr(txt, "\n0             2 ") || !strstr(txt, "\n1             2 ")) fail_msg("inspect stats.h5:\n%s", txt);
    if (!strstr(txt, "MLP neurons: Fisher of a gate") || !strstr(txt, "\n1           128 ")) fail_msg("inspect stats.h5:\n%s", txt);
    free(txt), free(o), free(sv);
    char cwd[2048];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(tu_run_in(g_dir, "%s inspect %s/" FIXTURES "/bert-f32.expected.h5", bin(), cwd), 2); /* not ours */
    gp_model_free(m);
}

/* h5dump of a mask file without the attributes that record the run (command, created_utc,
 * n_ranks) or name its folder (stats_file); malloc'd. */
static char *mask_dump(const char *path) {
    static const char *const skip[] = {"command", "created_utc", "n_ranks", "stats_file", NULL};
    return tu_h5dump_without(skip, "'%s'", path);
}

/* Every rank scores its slice: the mask files equal one rank's on 2, 3, 4 and (global, layer)
 * 8 ranks, for every scope, with the scores saved; gaprune-ref with the refcode alignment, whose
 * smoothing reads a row beyond each slice and whose norms are the whole tensor's. */
static void test_ranks_agree(void **state) {
    (void)state;
    write_job("rk", "bert-f32", "[prune]\nlayers = linear\nsave_scores = true\n");
    char *rk_out = in_dir("out-rk");
    tu_stats_fixture("bert-f32", "[prune]\nlayers = linear\n", rk_out);
    free(rk_out);
    static const char *scopes[] = {"global", "layer", "row", "2:4"};
    static const char *sets[][3] = {{"gaprune,random,wanda,magnitude", "tensor", "gaprune random wanda magnitude"},
                                    {"gaprune-ref", "refcode", "gaprune-ref"}};
    static const int nps[] = {1, 2, 3, 4, 8};
    int files = 0;
    size_t bytes = 0;
    for (int sc = 0; sc < 4; sc++)
        for (int st = 0; st < 2; st++)
            for (size_t k = 0; k < sizeof nps / sizeof *nps; k++) {
                if (nps[k] == 8 && sc >= 2) continue; /* 8 oversubscribed ranks: the two selections over ranks */
                char out[64];
                snprintf(out, sizeof out, "out-rk%d-%d-%d", nps[k], sc, st);
                tu_sh("mkdir -p '%s/%s' && cp '%s/out-rk/stats.h5' '%s/%s/'", g_dir, out, g_dir, g_dir, out);
                assert_int_equal(tu_run_in(g_dir,
                                           "mpirun -np %d -x ASAN_OPTIONS %s score rk.ini --method %s --sparsity 0.5 "
                                           "--set prune.scope=%s --set stats.alignment=%s --set output.dir=%s",
                                           nps[k], bin(), sets[st][0], scopes[sc], sets[st][1], out),
                                 0);
                if (nps[k] == 1) continue;
                char methods[128], *save = NULL;
                snprintf(methods, sizeof methods, "%s", sets[st][2]);
                for (char *mt = strtok_r(methods, " ", &save); mt; mt = strtok_r(NULL, " ", &save)) {
                    char a[4400], b[4400];
                    snprintf(a, sizeof a, "%s/out-rk1-%d-%d/mask-%s-0.5.h5", g_dir, sc, st, mt);
                    snprintf(b, sizeof b, "%s/%s/mask-%s-0.5.h5", g_dir, out, mt);
                    char *da = mask_dump(a), *db = mask_dump(b);
                    if (strcmp(da, db)) fail_msg("%s on %d ranks, scope %s: h5dump differs from 1 rank's", mt, nps[k], scopes[sc]);
                    bytes += strlen(da);
                    free(da), free(db);
                    files++;
                }
            }
    printf("    %d mask files on 2, 3, 4 and 8 ranks: h5dump identical to 1 rank's (%zu bytes compared)\n", files, bytes);
}

static void test_nan_score(void **state) {
    (void)state;
    write_job("nan", "bert-tiny", NULL);
    char *out = in_dir("out-nan");
    tu_stats_fixture("bert-tiny", "", out);
    free(out);
    char path[4400];
    snprintf(path, sizeof path, "%s/out-nan/stats.h5", g_dir);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "domain/fisher/encoder.layer.0.output.dense.weight", H5P_DEFAULT);
    hsize_t start[2] = {3, 5}, one[2] = {1, 1};
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(2, one, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, one, NULL);
    float nan = NAN;
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &nan) >= 0);
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d), H5Fclose(f);
    assert_int_equal(tu_run_in(g_dir, "mpirun -np 2 -x ASAN_OPTIONS %s score nan.ini --method gaprune", bin()), 2);
    assert_stderr_has("encoder.layer.0.output.dense.weight");
    assert_stderr_has("score is nan");
    assert_int_equal(tu_run_in(g_dir, "%s score nan.ini --method magnitude", bin()), 0); /* needs no statistics */
    assert_int_equal(tu_run_in(g_dir, "%s score nan.ini --method nonsense", bin()), 2);
    assert_stderr_has("--method nonsense: [prune] methods: \"nonsense\" is not a criterion; one of gaprune|gaprune-ref|");
}

/* Runs `gaprune ARGS` in g_dir; exit 2 with want in stderr (want NULL: exit 0), no sanitizer report. */
static void expect_run(const char *want, const char *args) {
    const int rc = tu_run_in(g_dir, "%s %s", bin(), args);
    char *p = in_dir("err.txt"), *e = tu_read_file(p, NULL);
    tu_assert_no_sanitizer(e ? e : "");
    if (rc != (want ? 2 : 0) || (want && !strstr(e, want)))
        fail_msg("gaprune %s: exit %d, expected %d with \"%s\"; stderr:\n%s", args, rc, want ? 2 : 0, want ? want : "",
                 e ? e : "");
    free(e), free(p);
}

/* issue 14 (fuzz_h5, tests/fuzz/crashes/fuzz_h5/stats-* and mask-*): scalar attributes were read
 * whole (an array wrote past them); /alignment/names was read into a buffer sized by the
 * cosines; `inspect` read names it could not convert as NULL, sized tables by extents the file
 * does not hold, trusted /summary's counts and cast far-off scores to int. */
static void test_damaged_files(void **state) {
    (void)state;
    write_job("dmg", "bert-tiny", "[prune]\nsave_scores = true\n");
    char *out = in_dir("out-dmg");
    tu_stats_fixture("bert-tiny", "", out);
    free(out);
    assert_int_equal(tu_run_in(g_dir, "%s score dmg.ini --method gaprune --sparsity 0.5", bin()), 0);
    char *stats = in_dir("out-dmg/stats.h5"), *mask = in_dir("out-dmg/mask-gaprune-0.5.h5");
    tu_sh("cd '%s' && cp out-dmg/stats.h5 stats.h5 && cp out-dmg/mask-gaprune-0.5.h5 mask.h5", g_dir);
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(FIXTURES "/bert-tiny", &m, &err), GP_OK);

    /* "complete" as six values: refused, read into nothing */
    const int64_t six[6] = {1, 1, 1, 1, 1, 1};
    h5e_attr_i64(mask, "/", GP_H5_ATTR_COMPLETE, six, 6);
    gp_mask mk;
    assert_int_equal(gp_mask_read(mask, m, &mk, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "not a complete gaprune mask file"));
    tu_sh("cp '%s/mask.h5' '%s'", g_dir, mask);

    /* names of another type, then more names than cosines */
    const float two[2] = {1, 2};
    h5e_replace(stats, "alignment/names", H5T_NATIVE_FLOAT, two, 2);
    expect_run("cannot read /alignment", "score dmg.ini --method gaprune --sparsity 0.4");
    expect_run("no readable /alignment/names", "inspect out-dmg/stats.h5");
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, H5T_VARIABLE);
    H5Tset_cset(str, H5T_CSET_UTF8);
    const char *nine[9] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    h5e_replace(stats, "alignment/names", str, nine, 9);
    H5Tclose(str);
    expect_run("are damaged (not one stored name per value)", "score dmg.ini --method gaprune --sparsity 0.4");
    expect_run("no /alignment/cosine of 9 values", "inspect out-dmg/stats.h5 --svg s.svg");

    /* a /summary row that cannot be gaprune's, then an extent the file does not hold */
    hid_t f = H5Fopen(mask, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(H5Ldelete(f, GP_MASK_SUMMARY, H5P_DEFAULT) >= 0);
    gp_mask_summary_row row = {.param = "encoder.layer.0.output.dense.weight", .numel = -5, .kept = 3};
    gp_mask_summary_write(f, &row, 1);
    H5Fclose(f);
    expect_run("/summary row 0 is damaged", "inspect out-dmg/mask-gaprune-0.5.h5");
    f = H5Fopen(mask, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(H5Ldelete(f, GP_MASK_SUMMARY, H5P_DEFAULT) >= 0);
    hsize_t huge = (hsize_t)1 << 40, chunk = 1024;
    hid_t sp = H5Screate_simple(1, &huge, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    hid_t d = H5Dcreate2(f, GP_MASK_SUMMARY, H5T_NATIVE_FLOAT, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp), H5Fclose(f);
    expect_run("no readable /summary", "inspect out-dmg/mask-gaprune-0.5.h5");

    /* a score far outside the summary's range: the histogram clamps it */
    tu_sh("cp '%s/mask.h5' '%s'", g_dir, mask);
    h5e_poke_f32(mask, "score/encoder.layer.0.output.dense.weight", 7, 3.0e38f);
    expect_run(NULL, "inspect out-dmg/mask-gaprune-0.5.h5 --svg m.svg");
    printf("    damaged statistics and mask files: exit 2 naming the file, or a table; no sanitizer report\n");
    gp_model_free(m);
    free(stats), free(mask);
}

/* ---- structured pruning: whole MLP neurons -------------------------------------------------- */

static hid_t open_ro(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) fail_msg("cannot open %s", path);
    return f;
}

static float *read_f32_all(hid_t f, const char *name, size_t n) {
    float *x = malloc(n * sizeof(float));
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) fail_msg("no dataset %s", name);
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Dclose(d);
    return x;
}

/* A copy of a fixture folder (at dir/name) whose weights edit() changed. */
static char *edited_model(const char *fixture, const char *name, void (*edit)(gp_model *m)) {
    gp_model *m;
    gp_err err = {0};
    char src[4400];
    snprintf(src, sizeof src, FIXTURES "/%s", fixture);
    assert_int_equal(gp_model_load(src, &m, &err), GP_OK);
    edit(m);
    char *dir = in_dir(name);
    if (gp_export_model(m, dir, NULL, 0, NULL, &err)) fail_msg("%s", err.msg);
    gp_model_free(m);
    return dir;
}

/* The mask file of a neurons scope against its own element scores and bits: every block loses
 * exactly floor(p·I) neurons, those of the lowest structure scores with ties to the lower index
 * (global, scope neurons-global: floor(p·L·I) of all blocks together, every block keeping one at
 * least, ties to the lower block and index);
 * each structure score is the sum of its weights' scores (rows of the up projections, column of
 * the down projection), computed here by hand in the same order; /mask is the neurons' rows
 * and columns. Returns the neurons removed from block `probe_layer` in *removed[I]. */
/* stats: for gaprune-neurons, its stats.h5: the structure score is then the structured DAI of
 * the sums (the job defaults α 0.2, β 1, γ 0.5), computed here in the same operations; NULL for
 * every other criterion (the sums themselves). */
static void check_struct_mask(const char *path, const gp_model *m, gp_struct_kind kind, double p, bool global,
                              int probe_layer, uint8_t *removed, const char *stats) {
    const int L = m->cfg.layers;
    const int64_t I = gp_model_struct_count(m, kind), g = gp_model_struct_width(m, kind);
    const bool heads = kind == GP_STRUCT_HEADS;
    hid_t f = open_ro(path);
    uint8_t *keep = read_u8(f, heads ? GP_MASK_HEAD_KEEP : GP_MASK_NEURON_KEEP, (size_t)(L * I));
    double *score = malloc((size_t)(L * I) * sizeof(double)), *hand = calloc((size_t)(L * I), sizeof(double));
    assert_int_equal(gp_h5_read_f64(f, heads ? GP_MASK_HEAD_SCORE : GP_MASK_NEURON_SCORE, score, (size_t)(L * I)), GP_OK);
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        const gp_neuron_axis ax = gp_model_struct_axis(m, kind, i, &layer);
        const gp_param *t = &m->table.p[i];
        if (ax == GP_NEURON_NONE || t->ndim != 2) continue;
        char name[400];
        float *s = read_f32_all(f, gp_mask_tensor(name, sizeof name, GP_MASK_SCORE, m->src_names[i]), t->numel);
        uint8_t *bits = read_u8(f, gp_mask_tensor(name, sizeof name, GP_MASK_KEEP, m->src_names[i]), t->numel);
        const int64_t R = t->shape[0], C = t->shape[1];
        double *part = calloc((size_t)I, sizeof(double));
        for (int64_t r = 0; r < R; r++) {
            double row = 0;
            for (int64_t k = 0; k < C; k++) {
                if (ax == GP_NEURON_ROWS) row += s[r * C + k];
                else part[k / g] += s[r * C + k];
                assert_int_equal(bits[r * C + k], keep[layer * I + (ax == GP_NEURON_ROWS ? r : k) / g]);
            }
            if (ax == GP_NEURON_ROWS) part[r / g] += row;
        }
        for (int64_t k = 0; k < I; k++) hand[layer * I + k] += part[k];
        free(part), free(s), free(bits);
    }
    if (stats) {
        int64_t weights = 0; /* of a neuron: a row of each up projection, a column of the down one */
        for (int i = 0; i < m->table.n; i++) {
            int layer;
            const gp_neuron_axis ax = gp_model_neuron_axis(m, i, &layer);
            const gp_param *t = &m->table.p[i];
            if (ax != GP_NEURON_NONE && t->ndim == 2 && layer == 0) weights += ax == GP_NEURON_ROWS ? t->shape[1] : t->shape[0];
        }
        hid_t sf = open_ro(stats);
        double *fd = malloc((size_t)(L * I) * sizeof(double)), *fg = malloc((size_t)(L * I) * sizeof(double)),
               *cs = malloc((size_t)(L * I) * sizeof(double));
        assert_int_equal(gp_h5_read_f64(sf, "domain/neuron_fisher", fd, (size_t)(L * I)), GP_OK);
        assert_int_equal(gp_h5_read_f64(sf, "general/neuron_fisher", fg, (size_t)(L * I)), GP_OK);
        assert_int_equal(gp_h5_read_f64(sf, "alignment/neuron_cosine", cs, (size_t)(L * I)), GP_OK);
        H5Fclose(sf);
        for (int64_t k = 0; k < L * I; k++) {
            assert_true(fd[k] >= 0 && fg[k] >= 0 && fabs(cs[k]) <= 1 + 1e-12);
            hand[k] = ((fd[k] - 1.0 * fg[k]) + 0.5 * hand[k] / (double)weights) * (1.0 + 0.2 * cs[k]);
        }
        free(fd), free(fg), free(cs);
    }
    const int64_t drop = (int64_t)floor(p * (double)I + 1e-9);
    int64_t all_gone = 0, *left = calloc((size_t)L, sizeof(int64_t));
    for (int l = 0; l < L; l++) {
        int64_t gone = 0;
        for (int64_t k = 0; k < I; k++) {
            if (score[l * I + k] != hand[l * I + k])
                fail_msg("%s: block %d neuron %lld: structure score %.17g, by hand %.17g", path, l, (long long)k,
                         score[l * I + k], hand[l * I + k]);
            gone += !keep[l * I + k];
        }
        if (!global) assert_int_equal(gone, drop);
        all_gone += gone, left[l] = I - gone;
        assert_true(left[l] >= 1);
        for (int64_t a = 0; a < I && !global; a++) /* every removed neuron ranks before every kept one */
            for (int64_t b = 0; b < I; b++)
                if (!keep[l * I + a] && keep[l * I + b])
                    assert_true(score[l * I + a] < score[l * I + b] || (score[l * I + a] == score[l * I + b] && a < b));
    }
    if (global) { /* the same over all blocks (flat index l·I + k), but for a block's last neuron */
        int64_t want = (int64_t)floor(p * (double)(L * I) + 1e-9);
        if (want > L * I - L) want = L * I - L;
        assert_int_equal(all_gone, want);
        for (int64_t a = 0; a < L * I; a++)
            for (int64_t b = 0; b < L * I; b++)
                if (!keep[a] && keep[b] && left[b / I] > 1)
                    assert_true(score[a] < score[b] || (score[a] == score[b] && a < b));
    }
    free(left);
    for (int64_t k = 0; removed && k < I; k++) removed[k] = !keep[probe_layer * I + k];
    free(keep), free(score), free(hand);
    H5Fclose(f);
}

/* Embeddings of texts by the folder at path (its own weights) and by the full model with the
 * mask file applied: the largest difference. */
static double removed_vs_zeroed(const char *fixture, const char *pruned, const char *maskf, gp_model_config *small_cfg) {
    gp_model *full, *small;
    gp_mask mk;
    gp_err err = {0};
    char src[4400];
    snprintf(src, sizeof src, FIXTURES "/%s", fixture);
    assert_int_equal(gp_model_load(src, &full, &err), GP_OK);
    if (gp_model_load(pruned, &small, &err)) fail_msg("%s", err.msg);
    if (gp_mask_read(maskf, full, &mk, &err)) fail_msg("%s", err.msg);
    gp_mask_apply(&mk, full);
    static const char *texts[] = {"the cat sat on the mat", "pruning whole neurons makes the model smaller",
                                  "a third text, somewhat longer than the others, with punctuation!"};
    const int D = gp_model_dim(full);
    float *a = malloc(3 * (size_t)D * sizeof(float)), *b = malloc(3 * (size_t)D * sizeof(float));
    gp_model_encode(full, texts, 3, 3, 0, NULL, a);
    gp_model_encode(small, texts, 3, 3, 0, NULL, b);
    const double d = tu_max_abs(a, b, 3 * (size_t)D);
    *small_cfg = small->cfg;
    free(a), free(b);
    gp_mask_free(&mk);
    gp_model_free(full), gp_model_free(small);
    return d;
}

/* Job `job` (its output folder out-<job> holding stats.h5 and the 1-rank masks at 0.5) scored
 * again with methods (comma-separated) on 2 and 4 ranks from a copy of its statistics: every
 * mask file identical (h5dump, but command, clock, rank count and paths) to 1 rank's. */
static void masks_same_on_ranks(const char *job, const char *methods) {
    for (int np = 2; np <= 4; np += 2) {
        char out[96];
        snprintf(out, sizeof out, "out-%s-np%d", job, np);
        tu_sh("mkdir -p '%s/%s' && cp '%s/out-%s/stats.h5' '%s/%s/'", g_dir, out, g_dir, job, g_dir, out);
        assert_int_equal(tu_run_in(g_dir, "mpirun -np %d -x ASAN_OPTIONS %s score %s.ini --method %s --sparsity 0.5 "
                                   "--set output.dir=%s", np, bin(), job, methods, out), 0);
        char list[256], *save = NULL;
        snprintf(list, sizeof list, "%s", methods);
        for (char *mt = strtok_r(list, ",", &save); mt; mt = strtok_r(NULL, ",", &save)) {
            char x[4400], y[4400];
            snprintf(x, sizeof x, "%s/out-%s/mask-%s-0.5.h5", g_dir, job, mt);
            snprintf(y, sizeof y, "%s/%s/mask-%s-0.5.h5", g_dir, out, mt);
            char *dx = mask_dump(x), *dy = mask_dump(y);
            if (strcmp(dx, dy)) fail_msg("%s, %s on %d ranks: the mask file differs from 1 rank's", job, mt, np);
            free(dx), free(dy);
        }
    }
}

/* Job `job` on the fixture with the given [prune] lines (prune.layers the default, mlp):
 * statistics, then every method of the comma-separated list at 30% and 50%; returns the fixture
 * model. */
static gp_model *score_job(const char *job, const char *fixture, const char *prune, const char *methods) {
    write_job(job, fixture, prune);
    if (strstr(prune, "layers") && !strstr(prune, "layers = mlp")) fail_msg("%s: score_job is for prune.layers = mlp", job);
    char out[4200];
    snprintf(out, sizeof out, "%s/out-%s", g_dir, job);
    tu_stats_fixture(fixture, "", out);
    assert_int_equal(tu_run_in(g_dir, "%s score %s.ini --method %s --sparsity 0.3,0.5", bin(), job, methods), 0);
    gp_model *m;
    gp_err err = {0};
    char src[4400];
    snprintf(src, sizeof src, FIXTURES "/%s", fixture);
    if (gp_model_load(src, &m, &err)) fail_msg("%s", err.msg);
    return m;
}

static void neurons_for(const char *fixture) {
    char job[64];
    snprintf(job, sizeof job, "nr-%s", fixture);
    static const char *methods = "gaprune,gaprune-ref,magnitude,fisher-domain,fisher-general,random,wanda,gaprune-neurons";
    gp_model *m = score_job(job, fixture, "[prune]\nscope = neurons\nlayers = mlp\nsave_scores = true\n", methods);
    char src[4400];
    snprintf(src, sizeof src, FIXTURES "/%s", fixture);
    char list[256], *save = NULL;
    snprintf(list, sizeof list, "%s", methods);
    for (char *mt = strtok_r(list, ",", &save); mt; mt = strtok_r(NULL, ",", &save))
        for (int k = 0; k < 2; k++) {
            const double p = k ? 0.5 : 0.3;
            char rel[256];
            snprintf(rel, sizeof rel, "out-%s/mask-%s-%g.h5", job, mt, p);
            char *maskf = in_dir(rel);
            char sp[4400];
            snprintf(sp, sizeof sp, "%s/out-%s/stats.h5", g_dir, job);
            check_struct_mask(maskf, m, GP_STRUCT_NEURONS, p, false, 0, NULL, strcmp(mt, "gaprune-neurons") ? NULL : sp);
            snprintf(rel, sizeof rel, "out-%s/pruned-%s-%g", job, mt, p);
            char *pruned = in_dir(rel);
            gp_model_config sc;
            const double d = removed_vs_zeroed(fixture, pruned, maskf, &sc);
            assert_int_equal(sc.intermediate, m->cfg.intermediate - (int)floor(p * m->cfg.intermediate + 1e-9));
            if (d > 1e-6) fail_msg("%s %s at %g: removed and zeroed neurons differ by %.3g", fixture, mt, p, d);
            free(maskf), free(pruned);
        }
    printf("    %s: 8 criteria at 30%% and 50%% of the neurons: counts, ties, structure scores by hand, removed = "
           "zeroed within 1e-6, intermediate_size %d -> %d and %d\n", fixture, m->cfg.intermediate,
           m->cfg.intermediate - (int)floor(0.3 * m->cfg.intermediate + 1e-9), m->cfg.intermediate / 2);
    /* config.json: the new size and every other byte as it was; the other files unchanged */
    char rel[256];
    snprintf(rel, sizeof rel, "out-%s/pruned-gaprune-0.5", job);
    char *pruned = in_dir(rel), a[9000], b[9000];
    snprintf(a, sizeof a, "%s/config.json", src);
    snprintf(b, sizeof b, "%s/config.json", pruned);
    char *ca = tu_read_file(a, NULL), *cb = tu_read_file(b, NULL), want[64];
    snprintf(want, sizeof want, "\"intermediate_size\": %d", m->cfg.intermediate / 2);
    assert_non_null(strstr(cb, want));
    assert_int_equal(strlen(ca) - strlen(cb), 1); /* 128 -> 64 */
    free(ca), free(cb);
    snprintf(a, sizeof a, "%s/modules.json", src);
    snprintf(b, sizeof b, "%s/modules.json", pruned);
    assert_true(same_file(a, b));
    /* gaprune inspect: the per-layer counts */
    snprintf(rel, sizeof rel, "out-%s/mask-gaprune-0.5.h5", job);
    assert_int_equal(tu_run_in(g_dir, "%s inspect %s", bin(), rel), 0);
    char *o = in_dir("out.txt"), *txt = tu_read_file(o, NULL);
    snprintf(want, sizeof want, "%-6d %9d %9d", 1, m->cfg.intermediate, m->cfg.intermediate / 2);
    if (!strstr(txt, "MLP neurons") || !strstr(txt, want)) fail_msg("inspect:\n%s", txt);
    free(o), free(txt);
    /* the PyTorch reference reads the smaller folder and reproduces gaprune's embeddings */
    char texts_path[4400], emb_path[4400];
    snprintf(texts_path, sizeof texts_path, "%s/nr-texts.txt", g_dir);
    snprintf(emb_path, sizeof emb_path, "%s/nr-emb-%s.h5", g_dir, fixture);
    tu_write(texts_path, "the cat sat on the mat\npruning whole neurons makes the model smaller\nnumbers 12345 and CAPS\n");
    assert_int_equal(tu_run_in(g_dir, "%s encode --model %s --input %s --output %s", bin(), pruned, texts_path, emb_path), 0);
    check_pruned(fixture, pruned, texts_path, emb_path);
    masks_same_on_ranks(job, "gaprune,wanda,random,gaprune-neurons");
    printf("    %s: mask files of gaprune, wanda, random and gaprune-neurons on 2 and 4 ranks identical to 1 rank's\n", fixture);
    free(pruned);
    gp_model_free(m);
}

/* Block 0's MLP weights a thousand times smaller: ranked over all blocks at once, magnitude takes
 * its neurons first. */
static void small_block0(gp_model *m) {
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        const gp_param *t = &m->table.p[i];
        if (gp_model_neuron_axis(m, i, &layer) == GP_NEURON_NONE || layer != 0 || t->ndim != 2) continue;
        for (size_t k = 0; k < t->numel; k++) gp_model_param(m, i)[k] *= 1e-3f;
    }
}

/* Scope neurons-global on one fixture: for 5 criteria at 30% and 50%, floor(p·L·I) neurons of all
 * blocks together, the lowest structure scores (by hand) with ties to the lower block and index,
 * every block keeping one; the folder's blocks at their own sizes (config.json's
 * gaprune_intermediate_sizes, GAPRUNE-ONLY.md) give the zeroed full model's embeddings and the
 * PyTorch reference's; the mask files are the same on 2 and 4 ranks. */
static void neurons_global_for(const char *fixture) {
    char job[64], rel[256];
    snprintf(job, sizeof job, "ng-%s", fixture);
    static const char *methods = "gaprune,magnitude,random,wanda,gaprune-neurons";
    gp_model *m = score_job(job, fixture, "[prune]\nscope = neurons-global\nsave_scores = true\n", methods);
    const int L = m->cfg.layers, I = m->cfg.intermediate;
    int uneven = 0;
    char list[256], *save = NULL;
    snprintf(list, sizeof list, "%s", methods);
    for (char *mt = strtok_r(list, ",", &save); mt; mt = strtok_r(NULL, ",", &save))
        for (int k = 0; k < 2; k++) {
            const double p = k ? 0.5 : 0.3;
            snprintf(rel, sizeof rel, "out-%s/mask-%s-%g.h5", job, mt, p);
            char *maskf = in_dir(rel), sp[4400];
            snprintf(sp, sizeof sp, "%s/out-%s/stats.h5", g_dir, job);
            check_struct_mask(maskf, m, GP_STRUCT_NEURONS, p, true, 0, NULL, strcmp(mt, "gaprune-neurons") ? NULL : sp);
            /* the kept count of each block, from the mask file */
            hid_t f = open_ro(maskf);
            uint8_t *keep = read_u8(f, GP_MASK_NEURON_KEEP, (size_t)L * (size_t)I);
            H5Fclose(f);
            snprintf(rel, sizeof rel, "out-%s/pruned-%s-%g", job, mt, p);
            char *pruned = in_dir(rel);
            gp_model_config sc;
            const double d = removed_vs_zeroed(fixture, pruned, maskf, &sc);
            if (d > 1e-6) fail_msg("%s %s at %g: removed and zeroed neurons differ by %.3g", fixture, mt, p, d);
            bool differ = false;
            for (int l = 0; l < L; l++) {
                int kept = 0;
                for (int j = 0; j < I; j++) kept += keep[l * I + j];
                assert_int_equal(gp_config_inter(&sc, l), kept);
                differ |= gp_config_inter(&sc, l) != gp_config_inter(&sc, 0);
            }
            /* a folder of blocks alike is an ordinary one; one of blocks apart says so */
            char np[4500];
            snprintf(np, sizeof np, "%s/" GP_EXPORT_NOTICE, pruned);
            assert_int_equal(sc.ragged, differ);
            assert_int_equal(access(np, F_OK) == 0, differ);
            uneven += differ;
            free(keep), free(maskf), free(pruned);
        }
    assert_true(uneven > 0); /* the criteria do choose other counts per block */
    printf("    %s neurons-global: 5 criteria at 30%% and 50%%: floor(p·L·I) of all blocks, ranked by hand over "
           "them, removed = zeroed within 1e-6, per-block sizes in %d of 10 folders\n", fixture, uneven);
    /* the PyTorch reference reads a folder of blocks apart */
    snprintf(rel, sizeof rel, "out-%s/pruned-gaprune-neurons-0.5", job);
    char *pruned = in_dir(rel), texts_path[4400], emb_path[4400];
    snprintf(texts_path, sizeof texts_path, "%s/ng-texts.txt", g_dir);
    snprintf(emb_path, sizeof emb_path, "%s/ng-emb-%s.h5", g_dir, fixture);
    tu_write(texts_path, "the cat sat on the mat\neach block keeps its own number of neurons\nnumbers 12345 and CAPS\n");
    assert_int_equal(tu_run_in(g_dir, "%s encode --model %s --input %s --output %s", bin(), pruned, texts_path, emb_path), 0);
    check_pruned(fixture, pruned, texts_path, emb_path);
    free(pruned);
    masks_same_on_ranks(job, "gaprune,random,gaprune-neurons");
    printf("    %s neurons-global: mask files of gaprune, random and gaprune-neurons on 2 and 4 ranks identical\n", fixture);
    gp_model_free(m);
}

static void test_neurons_global(void **state) {
    (void)state;
    neurons_global_for("bert-f32");
    neurons_global_for("qwen3-f32");
    /* a block of tiny weights: magnitude over all blocks takes all of its neurons but the one
     * each block keeps, and the rest from the next block; per block it could take only half */
    char *sm = edited_model("bert-f32", "bert-small0", small_block0);
    char text[8192];
    snprintf(text, sizeof text, "[model]\npath = %s\n[prune]\nscope = neurons-global\nsave_scores = true\n[output]\ndir = out-sm\n", sm);
    char *jp = in_dir("sm.ini");
    tu_write(jp, text);
    free(jp);
    assert_int_equal(tu_run_in(g_dir, "%s score sm.ini --method magnitude --sparsity 0.5", bin()), 0);
    gp_model *m, *small;
    gp_err err = {0};
    assert_int_equal(gp_model_load(sm, &m, &err), GP_OK);
    const int I = m->cfg.intermediate;
    char *mf = in_dir("out-sm/mask-magnitude-0.5.h5"), *pd = in_dir("out-sm/pruned-magnitude-0.5");
    check_struct_mask(mf, m, GP_STRUCT_NEURONS, 0.5, true, 0, NULL, NULL);
    assert_int_equal(gp_model_load(pd, &small, &err), GP_OK);
    assert_true(small->cfg.ragged);
    assert_int_equal(gp_config_inter(&small->cfg, 0), 1);
    assert_int_equal(gp_config_inter(&small->cfg, 1), I - 1); /* 2 blocks: I of 2I go, I - 1 of them block 0's */
    assert_int_equal(small->cfg.intermediate, gp_config_inter(&small->cfg, 1));
    char cp[4500];
    snprintf(cp, sizeof cp, "%s/config.json", pd);
    char *cfg = tu_read_file(cp, NULL), want[96];
    snprintf(want, sizeof want, "\"" GP_CONFIG_INTER_SIZES "\": [1, %d]", I - 1);
    if (!strstr(cfg, want)) fail_msg("%s: no %s in\n%s", cp, want, cfg);
    free(cfg);
    printf("    a block of tiny weights: neurons-global removes %d of its %d neurons and 1 of the other's (%s)\n", I - 1, I, want);
    gp_model_free(small);
    /* what a folder of blocks apart refuses, before any long stage: structured pruning again, and
     * statistics of its MLP weights (attention weights are alike in every block: they work) */
    snprintf(text, sizeof text, "[model]\npath = %s\n[prune]\nscope = neurons\n[output]\ndir = out-sm2\n", pd);
    jp = in_dir("sm2.ini");
    tu_write(jp, text);
    expect_run("have different intermediate sizes (gaprune_intermediate_sizes in its config.json)",
               "score sm2.ini --method magnitude");
    char cwd[2048];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(text, sizeof text,
             "[model]\npath = %s\n[data]\ndomain = %s/" FIXTURES "/corpora/domain.json\ngeneral = %s/" FIXTURES
             "/corpora/general.jsonl\n[output]\ndir = out-sm3\n", pd, cwd, cwd);
    tu_write(jp, text);
    expect_run("block 1's mlp weights differ in size from block 0's", "stats sm2.ini");
    assert_int_equal(tu_run_in(g_dir, "%s stats sm2.ini --set prune.layers=attention", bin()), 0);
    printf("    a folder of per-block sizes: scope neurons and mlp statistics exit 2 naming it; attention statistics run\n");
    free(jp), free(mf), free(pd), free(sm);
    gp_model_free(m);
}

/* The criteria of issue-16 kind on the BERT fixture's MLP: fisher-domain-obd and
 * fisher-general-obd are F w^2 / 2 of stats.h5 and the weights, bitwise; gaprune-scaled's term
 * means equal a sum by hand, and its scores are the paper's DAI at gamma M_F / M_m times
 * 1 / M_F (float rounding apart); the masks are the same on 2 and 4 ranks. */
static void test_scaled_and_obd(void **state) {
    (void)state;
    gp_model *m = score_job("crit", "bert-f32", "[prune]\nsave_scores = true\n",
                            "gaprune-scaled,fisher-domain-obd,fisher-general-obd");
    char *sp = in_dir("out-crit/stats.h5"), *ms = in_dir("out-crit/mask-gaprune-scaled-0.5.h5");
    hid_t sf = open_ro(sp), mf = open_ro(ms);
    double sum_f = 0, sum_m = 0, count = 0, negative = 0;
    int tensors = 0;
    for (int i = 0; i < m->table.n; i++) {
        if (gp_model_neuron_axis(m, i, NULL) == GP_NEURON_NONE || m->table.p[i].ndim != 2) continue;
        const size_t n = m->table.p[i].numel;
        char name[400];
        float *fd = read_f32_all(sf, gp_stats_tensor(name, sizeof name, GP_STATS_DOMAIN_FISHER, m->src_names[i]), n);
        float *fg = read_f32_all(sf, gp_stats_tensor(name, sizeof name, GP_STATS_GENERAL_FISHER, m->src_names[i]), n);
        const float *w = gp_model_param(m, i);
        for (size_t k = 0; k < n; k++) {
            sum_f += fabs(((double)fd[k] - 1.0 * fg[k]) * fabs((double)w[k]));
            sum_m += sqrt(fabs((double)w[k]));
            negative += (double)fd[k] - 1.0 * fg[k] < 0;
        }
        count += (double)n;
        for (int g = 0; g < 2; g++) { /* OBD, bitwise */
            snprintf(name, sizeof name, "%s/out-crit/mask-fisher-%s-obd-0.5.h5", g_dir, g ? "general" : "domain");
            hid_t of = open_ro(name);
            float *s = read_f32_all(of, gp_mask_tensor(name, sizeof name, GP_MASK_SCORE, m->src_names[i]), n);
            const float *fi = g ? fg : fd;
            for (size_t k = 0; k < n; k++)
                assert_true(s[k] == (float)(0.5 * (double)fi[k] * (double)w[k] * (double)w[k]));
            free(s);
            H5Fclose(of);
        }
        free(fd), free(fg);
        tensors++;
    }
    assert_int_equal(tensors, 4);
    const double mean_f = sum_f / count, mean_m = sum_m / count, gamma_eff = 0.5 * mean_f / mean_m;
    double got_f, got_m, got_g;
    assert_int_equal(gp_h5_read_attr_double(mf, GP_MASK_ATTR_MEAN_FISHER_TERM, &got_f), GP_OK);
    assert_int_equal(gp_h5_read_attr_double(mf, GP_MASK_ATTR_MEAN_MAGNITUDE_TERM, &got_m), GP_OK);
    assert_int_equal(gp_h5_read_attr_double(mf, GP_MASK_ATTR_GAMMA_EFFECTIVE, &got_g), GP_OK);
    assert_true(fabs(got_f / mean_f - 1) < 1e-12 && fabs(got_m / mean_m - 1) < 1e-12 && fabs(got_g / gamma_eff - 1) < 1e-12);
    /* the share of weights whose Fisher term is negative (issue 27's sign: the report flags it above half) */
    double got_neg;
    assert_int_equal(gp_h5_read_attr_double(mf, GP_MASK_ATTR_FISHER_NEGATIVE, &got_neg), GP_OK);
    printf("    gaprune-scaled: Fisher term negative on %.1f%% of the MLP weights (by hand %.1f%%)\n", 100 * got_neg,
           100 * negative / count);
    assert_true(got_neg == negative / count);
    assert_true(negative > 0 && negative < count);
    /* the paper's DAI at that gamma, scored beside it */
    tu_sh("mkdir -p '%s/out-crit-paper' && cp '%s' '%s/out-crit-paper/'", g_dir, sp, g_dir);
    assert_int_equal(tu_run_in(g_dir, "%s score crit.ini --method gaprune --sparsity 0.5 --set prune.gamma=%.17g "
                               "--set output.dir=out-crit-paper", bin(), gamma_eff), 0);
    char *mp = in_dir("out-crit-paper/mask-gaprune-0.5.h5");
    hid_t pf = open_ro(mp);
    double worst = 0;
    for (int i = 0; i < m->table.n; i++) {
        if (gp_model_neuron_axis(m, i, NULL) == GP_NEURON_NONE || m->table.p[i].ndim != 2) continue;
        const size_t n = m->table.p[i].numel;
        char name[400];
        float *a = read_f32_all(mf, gp_mask_tensor(name, sizeof name, GP_MASK_SCORE, m->src_names[i]), n);
        float *b = read_f32_all(pf, name, n);
        for (size_t k = 0; k < n; k++) {
            const double want = (double)b[k] / mean_f, d = fabs(a[k] - want) / fmax(fabs(want), 1e-30);
            worst = d > worst ? d : worst;
        }
        free(a), free(b);
    }
    if (worst > 1e-5) fail_msg("gaprune-scaled against the paper's DAI at gamma %.6g: %.3g relative", gamma_eff, worst);
    printf("    gaprune-scaled: M_F %.4g and M_m %.4g as by hand, the paper's DAI at gamma %.4g / M_F within %.2g; "
           "OBD scores F w^2 / 2 bitwise\n", mean_f, mean_m, gamma_eff, worst);
    H5Fclose(pf), H5Fclose(mf), H5Fclose(sf);
    masks_same_on_ranks("crit", "gaprune-scaled,fisher-domain-obd");
    free(mp), free(ms), free(sp);
    gp_model_free(m);
}

/* prune.beta and prune.gamma lists: every weighted criterion once per (beta, gamma), tagged
 * <method>-b<beta>-g<gamma>, its mask file carrying them, the unweighted ones once; `gaprune run
 * --list` names exactly those masks and `--only` takes a variant's label; a variant's mask equals
 * the one a job of that single gamma makes. */
static void test_variants(void **state) {
    (void)state;
    gp_model *m = score_job("var", "bert-f32", "[prune]\ngamma = 0.5, 2\nbeta = 1\n", "gaprune-scaled,magnitude");
    gp_model_free(m);
    static const char *const files[] = {"mask-gaprune-scaled-b1-g0.5-0.5.h5", "mask-gaprune-scaled-b1-g2-0.5.h5",
                                        "mask-gaprune-scaled-b1-g2-0.3.h5", "mask-magnitude-0.5.h5"};
    for (int k = 0; k < 4; k++) {
        char rel[256];
        snprintf(rel, sizeof rel, "out-var/%s", files[k]);
        char *p = in_dir(rel);
        hid_t f = open_ro(p);
        double g = 0;
        assert_int_equal(gp_h5_read_attr_double(f, GP_MASK_ATTR_GAMMA, &g), GP_OK);
        assert_true(g == (k == 0 || k == 3 ? 0.5 : 2.0));
        H5Fclose(f);
        free(p);
    }
    char *none = in_dir("out-var/mask-magnitude-b1-g2-0.5.h5");
    assert_int_equal(access(none, F_OK), -1);
    free(none);
    /* the same masks as a job of one gamma, tag apart */
    tu_sh("mkdir -p '%s/out-var1' && cp '%s/out-var/stats.h5' '%s/out-var1/'", g_dir, g_dir, g_dir);
    assert_int_equal(tu_run_in(g_dir, "%s score var.ini --method gaprune-scaled --sparsity 0.5 --set prune.gamma=2 "
                               "--set output.dir=out-var1", bin()), 0);
    char a[4400], b[4400];
    snprintf(a, sizeof a, "%s/out-var/mask-gaprune-scaled-b1-g2-0.5.h5", g_dir);
    snprintf(b, sizeof b, "%s/out-var1/mask-gaprune-scaled-0.5.h5", g_dir);
    char *da = tu_h5dump_without((const char *const[]){"command", "created_utc", "n_ranks", "stats_file", NULL}, "-g mask '%s'", a),
         *db = tu_h5dump_without((const char *const[]){"command", "created_utc", "n_ranks", "stats_file", NULL}, "-g mask '%s'", b);
    const char *pa = strstr(da, "GROUP \"mask\""), *pb = strstr(db, "GROUP \"mask\"");
    assert_true(pa && pb && !strcmp(pa, pb));
    free(da), free(db);
    /* --list, and --only with a label */
    assert_int_equal(tu_run_in(g_dir, "GAPRUNE_VERBOSE=0 %s run var.ini --list --set prune.methods=magnitude,gaprune-scaled "
                               "--set prune.sparsity=0.5,0.3 --set retrain.methods=", bin()), 0);
    char *out = in_dir("out.txt"), *txt = tu_read_file(out, NULL);
    assert_string_equal(txt, "magnitude:0.5\nmagnitude:0.3\ngaprune-scaled-b1-g0.5:0.5\ngaprune-scaled-b1-g0.5:0.3\n"
                             "gaprune-scaled-b1-g2:0.5\ngaprune-scaled-b1-g2:0.3\n");
    free(txt);
    assert_int_equal(tu_run_in(g_dir, "GAPRUNE_VERBOSE=0 %s run var.ini --list --only gaprune-scaled-b1-g2:0.3", bin()), 0);
    txt = tu_read_file(out, NULL);
    assert_string_equal(txt, "gaprune-scaled-b1-g2:0.3\n");
    printf("    gamma 0.5, 2: gaprune-scaled twice (its mask at gamma 2 as a job of gamma 2 makes), magnitude once; "
           "--list and --only by label\n");
    free(txt), free(out);
}

/* Scope heads on the BERT fixture (4 heads of 16 dimensions in each of 2 blocks): for every
 * element criterion at 25% and 50%, exactly floor(p·4) heads per block, ties to the lower
 * index, structure scores equal to the sums by hand, the folder with the heads removed gives
 * the zeroed full model's embeddings and the PyTorch reference's, config.json lists exactly the
 * removed heads as transformers' pruned_heads, and the mask files are the same on 2 and 4 ranks. */
static void test_heads(void **state) {
    (void)state;
    write_job("hd", "bert-f32", "[prune]\nscope = heads\nlayers = attention\nsave_scores = true\n");
    char *out = in_dir("out-hd");
    tu_stats_fixture("bert-f32", "[prune]\nlayers = attention\n", out);
    free(out);
    static const char *methods = "gaprune,gaprune-ref,magnitude,fisher-domain,fisher-general,random,wanda";
    assert_int_equal(tu_run_in(g_dir, "%s score hd.ini --method %s --sparsity 0.25,0.5", bin(), methods), 0);
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(FIXTURES "/bert-f32", &m, &err), GP_OK);
    const int H = m->cfg.heads;
    char list[256], *save = NULL;
    snprintf(list, sizeof list, "%s", methods);
    for (char *mt = strtok_r(list, ",", &save); mt; mt = strtok_r(NULL, ",", &save))
        for (int k = 0; k < 2; k++) {
            const double p = k ? 0.5 : 0.25;
            char rel[256];
            snprintf(rel, sizeof rel, "out-hd/mask-%s-%g.h5", mt, p);
            char *maskf = in_dir(rel);
            uint8_t removed[2][64];
            for (int l = 0; l < 2; l++) check_struct_mask(maskf, m, GP_STRUCT_HEADS, p, false, l, removed[l], NULL);
            snprintf(rel, sizeof rel, "out-hd/pruned-%s-%g", mt, p);
            char *pruned = in_dir(rel);
            gp_model_config sc;
            const double d = removed_vs_zeroed("bert-f32", pruned, maskf, &sc);
            const int gone = (int)floor(p * H + 1e-9);
            assert_int_equal(sc.heads, H - gone);
            assert_int_equal(sc.heads_pruned, gone);
            if (d > 1e-6) fail_msg("heads %s at %g: removed and zeroed heads differ by %.3g", mt, p, d);
            /* pruned_heads names exactly the removed heads of every block */
            char cp[4400], want[128];
            snprintf(cp, sizeof cp, "%s/config.json", pruned);
            char *cfg = tu_read_file(cp, NULL);
            int at = snprintf(want, sizeof want, "\"pruned_heads\": {");
            for (int l = 0; l < 2; l++) {
                at += snprintf(want + at, sizeof want - (size_t)at, "%s\"%d\": [", l ? ", " : "", l);
                for (int h = 0, n = 0; h < H; h++)
                    if (removed[l][h]) at += snprintf(want + at, sizeof want - (size_t)at, "%s%d", n++ ? ", " : "", h);
                at += snprintf(want + at, sizeof want - (size_t)at, "]");
            }
            if (!strstr(cfg, want)) fail_msg("%s: no %s in\n%s", cp, want, cfg);
            free(cfg), free(maskf), free(pruned);
        }
    printf("    bert-f32 heads: 7 criteria at 25%% and 50%% of 4 heads a block: counts, ties, structure scores by hand, "
           "removed = zeroed within 1e-6, pruned_heads the removed heads\n");
    /* the PyTorch reference reads the folder (the shapes pruned_heads implies) and matches gaprune */
    char *pruned = in_dir("out-hd/pruned-gaprune-0.5"), texts_path[4400], emb_path[4400];
    snprintf(texts_path, sizeof texts_path, "%s/hd-texts.txt", g_dir);
    snprintf(emb_path, sizeof emb_path, "%s/hd-emb.h5", g_dir);
    tu_write(texts_path, "the cat sat on the mat\nhalf of the attention heads are gone\nnumbers 12345 and CAPS\n");
    assert_int_equal(tu_run_in(g_dir, "%s encode --model %s --input %s --output %s", bin(), pruned, texts_path, emb_path), 0);
    check_pruned("heads", pruned, texts_path, emb_path);
    /* gaprune inspect: the per-block counts */
    assert_int_equal(tu_run_in(g_dir, "%s inspect out-hd/mask-gaprune-0.5.h5", bin()), 0);
    char *o = in_dir("out.txt"), *txt = tu_read_file(o, NULL);
    if (!strstr(txt, "attention heads (whole head_dim rows") || !strstr(txt, "\n1              4         2 "))
        fail_msg("inspect:\n%s", txt);
    free(o), free(txt);
    masks_same_on_ranks("hd", "gaprune,wanda,random");
    printf("    bert-f32 heads: mask files of gaprune, wanda and random on 2 and 4 ranks identical to 1 rank's\n");
    /* what scope heads refuses, before any long stage: MLP layers, Qwen3, a folder already head-pruned */
    write_job("hd-mlp", "bert-f32", "[prune]\nscope = heads\n");
    assert_int_equal(tu_run_in(g_dir, "%s score hd-mlp.ini --method magnitude", bin()), 2);
    o = in_dir("err.txt"), txt = tu_read_file(o, NULL);
    if (!strstr(txt, "scope = heads removes whole attention heads: it needs layers = attention")) fail_msg("%s", txt);
    free(txt);
    write_job("hd-q", "qwen3-f32", "[prune]\nscope = heads\nlayers = attention\n");
    assert_int_equal(tu_run_in(g_dir, "%s score hd-q.ini --method magnitude", bin()), 2);
    txt = tu_read_file(o, NULL);
    if (!strstr(txt, "has no heads scope")) fail_msg("%s", txt);
    free(txt);
    char text[8192];
    snprintf(text, sizeof text, "[model]\npath = %s\n[prune]\nscope = heads\nlayers = attention\n[output]\ndir = out-hd-again\n",
             pruned);
    char *jp = in_dir("hd-again.ini");
    tu_write(jp, text);
    assert_int_equal(tu_run_in(g_dir, "%s score hd-again.ini --method magnitude", bin()), 2);
    txt = tu_read_file(o, NULL);
    if (!strstr(txt, "already has pruned_heads")) fail_msg("%s", txt);
    printf("    scope heads with layers = mlp, on Qwen3, and on a head-pruned folder: exit 2 naming the reason\n");
    free(txt), free(o), free(jp), free(pruned);
    gp_model_free(m);
}

/* gp_model_reopen (gaprune run's switch to the smaller model and back): the model of another
 * folder encodes bitwise as that folder loaded afresh, back again as the dense one; a folder of
 * other shapes is refused and leaves the model as it was. */
static void check_reopen(const char *pruned) {
    gp_model *m, *fresh;
    gp_err err = {0};
    static const char *texts[] = {"the cat sat on the mat", "whole neurons"};
    assert_int_equal(gp_model_load(FIXTURES "/bert-f32", &m, &err), GP_OK);
    const int D = gp_model_dim(m);
    float a[2 * 64], b[2 * 64];
    assert_true(D <= 64);
    const char *dirs[] = {pruned, FIXTURES "/bert-f32"};
    for (int k = 0; k < 2; k++) {
        if (gp_model_reopen(m, dirs[k], &err)) fail_msg("%s", err.msg);
        assert_int_equal(gp_model_load(dirs[k], &fresh, &err), GP_OK);
        assert_int_equal(m->cfg.intermediate, fresh->cfg.intermediate);
        assert_int_equal(m->table.total, fresh->table.total);
        gp_model_encode(m, texts, 2, 2, 0, NULL, a);
        gp_model_encode(fresh, texts, 2, 2, 0, NULL, b);
        assert_memory_equal(a, b, 2 * (size_t)D * sizeof(float));
        gp_model_free(fresh);
    }
    assert_int_equal(gp_model_reopen(m, FIXTURES "/qwen3-f32", &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "differs from"));
    gp_model_encode(m, texts, 2, 2, 0, NULL, b);
    assert_memory_equal(a, b, 2 * (size_t)D * sizeof(float));
    gp_model_free(m);
    printf("    gp_model_reopen: the smaller folder and back, bitwise as fresh loads; another architecture refused\n");
}

/* A sharded BF16 folder with whole neurons removed: smaller shards in the source's dtype, and
 * model.safetensors.index.json's total_size the bytes of the tensors written, the rest of the
 * index as it was but that number. */
static void check_sharded_index(void) {
    write_job("nr-bf16", "bert-bf16", "[prune]\nscope = neurons\n");
    assert_int_equal(tu_run_in(g_dir, "%s score nr-bf16.ini --method magnitude --sparsity 0.5", bin()), 0);
    char *pruned = in_dir("out-nr-bf16/pruned-magnitude-0.5");
    gp_st_set *set;
    gp_err err = {0};
    if (gp_st_set_open(pruned, &set, &err)) fail_msg("%s", err.msg);
    uint64_t total = 0;
    for (int s = 0; s < gp_st_set_nfiles(set); s++)
        for (int k = 0; k < gp_st_count(gp_st_set_file(set, s)); k++) {
            const gp_st_tensor *t = gp_st_at(gp_st_set_file(set, s), k);
            uint64_t n = 1;
            for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
            total += n * gp_dtype_size(t->dtype);
        }
    assert_int_equal(gp_st_set_nfiles(set), 2);
    gp_st_set_close(set);
    char a[4400], b[4400], want[64];
    snprintf(a, sizeof a, FIXTURES "/bert-bf16/model.safetensors.index.json");
    snprintf(b, sizeof b, "%s/model.safetensors.index.json", pruned);
    char *ia = tu_read_file(a, NULL), *ib = tu_read_file(b, NULL);
    snprintf(want, sizeof want, "\"total_size\": %llu", (unsigned long long)total);
    if (!strstr(ib, want)) fail_msg("%s does not say %s:\n%s", b, want, ib);
    const char *ka = strstr(ia, "\"weight_map\""), *kb = strstr(ib, "\"weight_map\"");
    assert_non_null(ka), assert_non_null(kb);
    assert_string_equal(ka, kb);
    gp_model *m;
    if (gp_model_load(pruned, &m, &err)) fail_msg("%s", err.msg);
    printf("    bert-bf16 (2 shards): half of the neurons removed, index total_size %llu (the tensors' bytes)\n",
           (unsigned long long)total);
    gp_model_free(m);
    free(ia), free(ib), free(pruned);
}

static void test_neurons(void **state) {
    (void)state;
    check_sharded_index();
    neurons_for("bert-f32");
    char *pruned = in_dir("out-nr-bert-f32/pruned-gaprune-0.5");
    check_reopen(pruned);
    free(pruned);
    neurons_for("qwen3-f32");
    /* attention weights have no neurons */
    write_job("nr-bad", "bert-f32", "[prune]\nscope = neurons\nlayers = linear\n");
    assert_int_equal(tu_run_in(g_dir, "%s score nr-bad.ini --method magnitude --sparsity 0.5", bin()), 2);
    assert_stderr_has("scope = neurons removes whole MLP neurons: it needs layers = mlp");
}

/* Every MLP weight of the model 0.25: every neuron's magnitude score ties, and the lowest
 * indices go first. */
static void all_equal(gp_model *m) {
    for (int i = 0; i < m->table.n; i++)
        if (gp_model_neuron_axis(m, i, NULL) != GP_NEURON_NONE && m->table.p[i].ndim == 2)
            for (size_t k = 0; k < m->table.p[i].numel; k++) gp_model_param(m, i)[k] = 0.25f;
}

static int g_hand_neuron = 5;

/* Neuron 5 of block 0 made a thousand times smaller: magnitude's first choice. */
static void small_neuron(gp_model *m) {
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        const gp_neuron_axis ax = gp_model_neuron_axis(m, i, &layer);
        const gp_param *t = &m->table.p[i];
        if (ax == GP_NEURON_NONE || layer != 0 || t->ndim != 2) continue;
        float *w = gp_model_param(m, i);
        for (int64_t r = 0; r < t->shape[0]; r++)
            for (int64_t k = 0; k < t->shape[1]; k++)
                if ((ax == GP_NEURON_ROWS ? r : k) == g_hand_neuron) w[r * t->shape[1] + k] *= 1e-3f;
    }
}

static void test_neurons_by_hand(void **state) {
    (void)state;
    /* ties: the lower index first */
    char *eq = edited_model("bert-f32", "bert-equal", all_equal);
    char text[8192];
    snprintf(text, sizeof text, "[model]\npath = %s\n[prune]\nscope = neurons\n[output]\ndir = out-eq\n", eq);
    char *jp = in_dir("eq.ini");
    tu_write(jp, text);
    free(jp);
    assert_int_equal(tu_run_in(g_dir, "%s score eq.ini --method magnitude --sparsity 0.5 --set prune.save_scores=true", bin()), 0);
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(eq, &m, &err), GP_OK);
    uint8_t removed[4096];
    char *mf = in_dir("out-eq/mask-magnitude-0.5.h5");
    check_struct_mask(mf, m, GP_STRUCT_NEURONS, 0.5, false, 1, removed, NULL);
    for (int k = 0; k < m->cfg.intermediate; k++) assert_int_equal(removed[k], k < m->cfg.intermediate / 2);
    free(mf);
    gp_model_free(m);
    /* a neuron of tiny weights and a large domain Fisher: magnitude removes it, gaprune keeps it */
    char *hd = edited_model("bert-f32", "bert-hand", small_neuron);
    char cwd[2048];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(text, sizeof text,
             "[model]\npath = %s\n[data]\ndomain = %s/" FIXTURES "/corpora/domain.json\ngeneral = %s/" FIXTURES
             "/corpora/general.jsonl\n[prune]\nscope = neurons\nsave_scores = true\n[output]\ndir = out-hand\n",
             hd, cwd, cwd);
    jp = in_dir("hand.ini");
    tu_write(jp, text);
    free(jp);
    assert_int_equal(tu_run_in(g_dir, "%s stats hand.ini", bin()), 0);
    assert_int_equal(gp_model_load(hd, &m, &err), GP_OK);
    char *sp = in_dir("out-hand/stats.h5");
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        const gp_neuron_axis ax = gp_model_neuron_axis(m, i, &layer);
        const gp_param *t = &m->table.p[i];
        if (ax == GP_NEURON_NONE || layer != 0 || t->ndim != 2) continue;
        char name[400];
        gp_stats_tensor(name, sizeof name, GP_STATS_DOMAIN_FISHER, m->src_names[i]);
        for (int64_t r = 0; r < t->shape[0]; r++)
            for (int64_t k = 0; k < t->shape[1]; k++)
                if ((ax == GP_NEURON_ROWS ? r : k) == g_hand_neuron) h5e_poke_f32(sp, name, (hsize_t)(r * t->shape[1] + k), 1e5f);
    }
    assert_int_equal(tu_run_in(g_dir, "%s score hand.ini --method gaprune,magnitude --sparsity 0.5", bin()), 0);
    uint8_t by_mag[4096], by_gap[4096], by_struct[4096];
    mf = in_dir("out-hand/mask-magnitude-0.5.h5");
    check_struct_mask(mf, m, GP_STRUCT_NEURONS, 0.5, false, 0, by_mag, NULL);
    free(mf);
    mf = in_dir("out-hand/mask-gaprune-0.5.h5");
    check_struct_mask(mf, m, GP_STRUCT_NEURONS, 0.5, false, 0, by_gap, NULL);
    free(mf);
    assert_true(by_mag[g_hand_neuron]);
    assert_false(by_gap[g_hand_neuron]);
    /* the structured DAI: the same neuron's own gate Fisher on the domain, large, keeps it; with
     * the stats as measured (tiny weights, a tiny gate Fisher) it goes */
    assert_int_equal(tu_run_in(g_dir, "%s score hand.ini --method gaprune-neurons --sparsity 0.5 --set prune.save_scores=true",
                               bin()), 0);
    mf = in_dir("out-hand/mask-gaprune-neurons-0.5.h5");
    check_struct_mask(mf, m, GP_STRUCT_NEURONS, 0.5, false, 0, by_struct, sp);
    assert_true(by_struct[g_hand_neuron]);
    h5e_poke_f32(sp, "domain/neuron_fisher", (hsize_t)g_hand_neuron, 1e5f);
    tu_sh("rm '%s'", mf); /* the same settings: it would be reused, not rescored */
    assert_int_equal(tu_run_in(g_dir, "%s score hand.ini --method gaprune-neurons --sparsity 0.5 --set prune.save_scores=true",
                               bin()), 0);
    check_struct_mask(mf, m, GP_STRUCT_NEURONS, 0.5, false, 0, by_struct, sp);
    assert_false(by_struct[g_hand_neuron]);
    free(mf);
    printf("    ties go to the lower index; a neuron of tiny weights and large domain Fisher: removed by magnitude, "
           "kept by gaprune; and by gaprune-neurons when its gate Fisher is large, removed when it is as measured\n");
    gp_model_free(m);
    free(sp), free(eq), free(hd);
}

/* A mask written with one-shot reconstruction (prune.reconstruct = obs): `gaprune inspect` prints
 * its settings and a row per /summary tensor with the errors of reconstruction/error_before and
 * error_after, as the file holds them; errors that are not one value per /summary row (too many,
 * an extent the file does not hold) give the settings and a note, never a buffer sized by them. */
static void test_inspect_reconstruction(void **state) {
    (void)state;
    write_job("rec", "bert-tiny", NULL);
    assert_int_equal(tu_run_in(g_dir, "%s score rec.ini --method magnitude --sparsity 0.5 --set prune.reconstruct=obs", bin()), 0);
    char *mask = in_dir("out-rec/mask-magnitude+obs-0.5.h5");
    hid_t f = H5Fopen(mask, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    size_t n = 0;
    gp_mask_summary_row *r = gp_mask_summary_read(f, &n);
    assert_non_null(r);
    assert_int_equal(n, 2); /* bert-tiny's MLP: intermediate and output of its one block */
    double before[2], after[2];
    assert_int_equal(gp_h5_read_f64(f, GP_MASK_RECON_ERROR_BEFORE, before, n), GP_OK);
    assert_int_equal(gp_h5_read_f64(f, GP_MASK_RECON_ERROR_AFTER, after, n), GP_OK);
    H5Fclose(f);

    assert_int_equal(tu_run_in(g_dir, "%s inspect 'out-rec/mask-magnitude+obs-0.5.h5'", bin()), 0);
    char *o = in_dir("out.txt"), *txt = tu_read_file(o, NULL);
    assert_non_null(txt);
    if (!strstr(txt, "reconstruction: obs, order sequential, dampening 0.01, general weight 1, block 128, ") ||
        !strstr(txt, "calibration: domain ") || !strstr(txt, "texts, "))
        fail_msg("inspect: no reconstruction settings:\n%s", txt);
    const char *head = strstr(txt, "error before");
    if (!head || !strstr(head, "error after") || !strstr(head, "after/before")) fail_msg("inspect: no error table:\n%s", txt);
    /* the table: its rows between the header and "mean", one per /summary row, in its order */
    const char *line = strchr(head, '\n') + 1;
    size_t rows = 0;
    double sb = 0, sa = 0;
    for (; *line && strncmp(line, "mean ", 5); line = strchr(line, '\n') + 1, rows++) {
        if (rows >= n) fail_msg("inspect: more rows than /summary's %zu:\n%s", n, txt);
        const size_t l = strlen(r[rows].param);
        if (strncmp(line, r[rows].param, l) || line[l] != ' ') fail_msg("inspect: row %zu is not %s:\n%s", rows, r[rows].param, txt);
        char b[64], a[64], ratio[64], want_b[64], want_a[64], want_r[64];
        assert_int_equal(sscanf(line + l, "%63s %63s %63s", b, a, ratio), 3);
        snprintf(want_b, sizeof want_b, "%.6g", before[rows]);
        snprintf(want_a, sizeof want_a, "%.6g", after[rows]);
        snprintf(want_r, sizeof want_r, "%.4g", after[rows] / before[rows]);
        if (strcmp(b, want_b) || strcmp(a, want_a) || strcmp(ratio, want_r))
            fail_msg("inspect: %s: %s %s %s, the file holds %s %s (ratio %s)", r[rows].param, b, a, ratio, want_b, want_a, want_r);
        assert_true(before[rows] > 0 && after[rows] < before[rows]); /* the reconstruction helps */
        sb += before[rows], sa += after[rows];
    }
    assert_int_equal(rows, n);
    char mean[128];
    snprintf(mean, sizeof mean, " %14.6g %14.6g ", sb / (double)n, sa / (double)n);
    if (strncmp(line, "mean ", 5) || !strstr(line, mean)) fail_msg("inspect: no mean row \"%s\":\n%s", mean, txt);
    free(txt);

    /* three values for two rows: the settings and a note, no table */
    const double three[3] = {0.5, 0.25, 0.125};
    h5e_replace(mask, GP_MASK_RECON_ERROR_AFTER, H5T_NATIVE_DOUBLE, three, 3);
    expect_run(NULL, "inspect 'out-rec/mask-magnitude+obs-0.5.h5'");
    txt = tu_read_file(o, NULL);
    if (!strstr(txt, "reconstruction: obs, ") || !strstr(txt, "no per-tensor errors") || strstr(txt, "error before"))
        fail_msg("inspect with 3 errors for 2 rows:\n%s", txt);
    free(txt);
    /* an extent of 2^40 values the file does not hold: not read, not allocated */
    hid_t w = H5Fopen(mask, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(H5Ldelete(w, GP_MASK_RECON_ERROR_BEFORE, H5P_DEFAULT) >= 0);
    hsize_t huge = (hsize_t)1 << 40, chunk = 1024;
    hid_t sp = H5Screate_simple(1, &huge, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    hid_t d = H5Dcreate2(w, GP_MASK_RECON_ERROR_BEFORE, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp), H5Fclose(w);
    h5e_replace(mask, GP_MASK_RECON_ERROR_AFTER, H5T_NATIVE_DOUBLE, after, 2);
    expect_run(NULL, "inspect 'out-rec/mask-magnitude+obs-0.5.h5'");
    txt = tu_read_file(o, NULL);
    if (!strstr(txt, "no per-tensor errors") || strstr(txt, "error before")) fail_msg("inspect with a 2^40 extent:\n%s", txt);
    free(txt);
    /* a mask without reconstruction: no such lines */
    assert_int_equal(tu_run_in(g_dir, "%s score rec.ini --method magnitude --sparsity 0.5", bin()), 0);
    assert_int_equal(tu_run_in(g_dir, "%s inspect out-rec/mask-magnitude-0.5.h5", bin()), 0);
    txt = tu_read_file(o, NULL);
    if (strstr(txt, "reconstruction")) fail_msg("inspect of a mask without reconstruction:\n%s", txt);
    printf("    inspect: reconstruction settings and %zu rows of errors as the file holds them; damaged errors: a note\n", n);
    free(txt), free(o), free(mask);
    gp_mask_summary_free(r, n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magnitude_against_reference),
        cmocka_unit_test(test_bf16_sharded_export),
        cmocka_unit_test(test_scopes),
        /* 70 mask files, each scored under mpirun: minutes on 2 cores */
        tu_long_test(test_ranks_agree),
        cmocka_unit_test(test_nan_score),
        cmocka_unit_test(test_damaged_files),
        cmocka_unit_test(test_neurons),
        cmocka_unit_test(test_neurons_by_hand),
        cmocka_unit_test(test_heads),
        /* 5 criteria at 30% and 50% on two models, folders checked by the reference, 2 and 4 ranks */
        tu_long_test(test_neurons_global),
        cmocka_unit_test(test_scaled_and_obd),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_inspect_reconstruction),
    };
    /* GP_TEST_FILTER=test_heads runs one test while iterating (cmocka's pattern) */
    return tu_run_group("score", tests, setup, teardown);
}
