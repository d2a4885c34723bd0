/* test_sample.c — `gaprune sample` and the sample stage of `gaprune run`, as a user runs them
 * (the sanitizer build, $GAPRUNE_BIN), on tests/fixtures/bert-tiny and tests/fixtures/corpora:
 *  - kmeans, k 3: every line of sample-<corpus>.jsonl is an original record byte for byte, in
 *    corpus order; sample-<corpus>.h5 carries its provenance, hashes and `complete`, and every
 *    dataset its description and units;
 *  - 1, 2 and 3 ranks write the same samples (jsonl bytes and every dataset);
 *  - a rerun skips both corpora and leaves the files untouched; another k, or an edited
 *    sample file, makes it redo them;
 *  - a multi-line JSON array: each kept element becomes one compact line; n <= k keeps all;
 *  - random: the seeded k of gp_sample_random, the same on 1 and 2 ranks;
 *  - bad keys, a missing sampling model, an empty corpus, method none: exit 2 on every rank,
 *    the message names the key or file, no sanitizer report;
 *  - gaprune run with sample.method = kmeans computes the statistics of the samples, a rerun
 *    skips the sample and the statistics, and going back to method none recomputes them. */
#include "test_util.h"

#include <hdf5.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "gaprune/h5.h"
#include "gaprune/hash.h"
#include "gaprune/json.h"
#include "gaprune/sample.h"

static char *g_dir;
static char g_bin[4096], g_cwd[2048];

/* mpirun -np N gaprune ARGS (np 0: the binary alone) */
static int gaprune(int np, const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    if (np == 0) return tu_run_in(g_dir, "%s %s", g_bin, args);
    return tu_run_in(g_dir, "mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s %s", np, g_bin, args);
}

static char *slurp_abs(const char *path) {
    char *b = tu_read_file(path, NULL);
    assert_non_null(b);
    return b;
}

static void assert_clean_stderr(void) {
    char *e = tu_read_in(g_dir, "err.txt");
    assert_non_null(e);
    if (strstr(e, "AddressSanitizer") || strstr(e, "runtime error") || strstr(e, "LeakSanitizer"))
        fail_msg("sanitizer report:\n%s", e);
    free(e);
}

static void write_job(const char *name, const char *extra) {
    char p[4400], text[8192];
    snprintf(p, sizeof p, "%s/%s.ini", g_dir, name);
    snprintf(text, sizeof text,
             "[model]\npath = %s/" FIXTURES "/bert-tiny\n[data]\ndomain = %s/" FIXTURES "/corpora/domain.json\n"
             "general = %s/" FIXTURES "/corpora/general.jsonl\n[sample]\nmethod = kmeans\nk = 3\n[output]\ndir = out\n%s",
             g_cwd, g_cwd, g_cwd, extra ? extra : "");
    tu_write(p, text);
}

static int setup(void **state) {
    (void)state;
    g_dir = tu_mkdtemp();
    tu_mpi_env();
    const char *b = getenv("GAPRUNE_BIN");
    if (!realpath(b ? b : "build/san/gaprune", g_bin) || !getcwd(g_cwd, sizeof g_cwd)) return -1;
    write_job("job", NULL);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* ---- reading the outputs -------------------------------------------------------------------- */

static int count_lines(const char *text) {
    int n = 0;
    for (const char *p = text; *p; p++) n += *p == '\n';
    return n;
}

/* Every line of the sample is a record of the corpus as it is in the file (a whole line of a
 * JSONL file, or an element of a one-element-per-line JSON array), in corpus order. */
static void assert_original_records(const char *sample_rel, const char *corpus_path, int expect_lines) {
    char *s = tu_read_in(g_dir, sample_rel), *corpus = slurp_abs(corpus_path);
    assert_non_null(s);
    assert_int_equal(count_lines(s), expect_lines);
    const char *after = corpus;
    for (char *line = s; *line;) {
        char *eol = strchr(line, '\n');
        assert_non_null(eol);
        *eol = '\0';
        const char *at = strstr(after, line);
        if (!at) fail_msg("%s: \"%s\" is not a record of %s after the previous one", sample_rel, line, corpus_path);
        /* the whole record: a line of its own, or an array element ending in ',' or ']' */
        char next = at[strlen(line)];
        assert_true(next == '\n' || next == ',' || next == '\0');
        after = at + strlen(line);
        line = eol + 1;
    }
    free(s);
    free(corpus);
}

static char *attr_str(hid_t f, const char *name) {
    char *v = gp_h5_read_attr_str(f, name);
    if (!v) fail_msg("no attribute %s", name);
    return v;
}

static int64_t attr_int(hid_t f, const char *name) {
    int64_t v = -1;
    if (gp_h5_read_attr_int(f, name, &v)) fail_msg("no integer attribute %s", name);
    return v;
}

static herr_t check_described(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    int *n = data;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (H5Aexists(d, "description") <= 0 || H5Aexists(d, "units") <= 0) fail_msg("dataset %s has no description/units", name);
    H5Dclose(d);
    (*n)++;
    return 0;
}

/* The n int64 (or int32 widened) values of a 1-D dataset. */
static int64_t *read_ints(hid_t f, const char *name, hsize_t *n) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) fail_msg("no dataset %s", name);
    hid_t sp = H5Dget_space(d);
    H5Sget_simple_extent_dims(sp, n, NULL);
    int64_t *v = malloc((*n ? *n : 1) * sizeof(int64_t));
    assert_true(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    return v;
}

static void check_h5(const char *rel, const char *corpus_path, int n_candidates, int n_selected) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", g_dir, rel);
    hid_t f = gp_h5_open_quiet(p);
    assert_true(f >= 0);
    char *fmt = attr_str(f, "format"), *method = attr_str(f, "method"), *hash = attr_str(f, "settings_hash"),
         *csha = attr_str(f, "corpus_sha256"), *msha = attr_str(f, "model_sha256"), *ssha = attr_str(f, "sample_sha256"),
         *spath = attr_str(f, "sample_path"), *cmd = attr_str(f, "command");
    assert_string_equal(fmt, "gaprune-sample");
    assert_string_equal(method, "kmeans");
    assert_int_equal(strlen(hash), 64);
    assert_int_equal(strlen(msha), 64);
    assert_non_null(strstr(cmd, "sample"));
    char want[65];
    gp_err err = {0};
    assert_int_equal(gp_sha256_file(corpus_path, want, &err), GP_OK);
    assert_string_equal(csha, want);
    snprintf(p, sizeof p, "%s/%s", g_dir, spath);
    assert_int_equal(gp_sha256_file(p, want, &err), GP_OK);
    assert_string_equal(ssha, want);
    assert_int_equal(attr_int(f, "complete"), 1);
    assert_int_equal(attr_int(f, "k"), 3);
    assert_int_equal(attr_int(f, "iterations"), 20);
    assert_int_equal(attr_int(f, "seed"), 42);
    assert_int_equal(attr_int(f, "n_candidates"), n_candidates);
    assert_int_equal(attr_int(f, "n_selected"), n_selected);
    int nds = 0;
    H5Literate(f, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, check_described, &nds);
    assert_int_equal(nds, 8); /* centroids assignment nearest inertia moved reseeded selected selected_line */
    hsize_t na, ns, nn;
    int64_t *assign = read_ints(f, "assignment", &na), *sel = read_ints(f, "selected", &ns), *near = read_ints(f, "nearest", &nn);
    assert_int_equal(na, n_candidates);
    assert_int_equal(ns, n_selected);
    assert_int_equal(nn, 3);
    for (hsize_t j = 0; j < ns; j++) {
        assert_true(sel[j] >= 0 && sel[j] < n_candidates);
        if (j) assert_true(sel[j] > sel[j - 1]);
    }
    /* each nearest triplet belongs to its own centroid's cluster */
    for (hsize_t j = 0; j < nn; j++) assert_int_equal(assign[near[j]], (int64_t)j);
    hsize_t ni;
    int64_t *moved = read_ints(f, "moved", &ni);
    assert_int_equal(moved[0], n_candidates);
    free(moved), free(assign), free(sel), free(near);
    free(fmt), free(method), free(hash), free(csha), free(msha), free(ssha), free(spath), free(cmd);
    H5Fclose(f);
}

/* ---- the tests ---------------------------------------------------------------------------------- */

static void test_kmeans_sample(void **state) {
    (void)state;
    assert_int_equal(gaprune(0, "sample job.ini"), 0);
    assert_clean_stderr();
    char *out = tu_read_in(g_dir, "out.txt");
    assert_non_null(strstr(out, "{\"command\":\"sample\""));
    assert_non_null(strstr(out, "sample domain: iteration 0/20: inertia"));
    assert_non_null(strstr(out, "points moved"));
    free(out);
    char corpus[2][4400];
    snprintf(corpus[0], sizeof corpus[0], "%s/" FIXTURES "/corpora/domain.json", g_cwd);
    snprintf(corpus[1], sizeof corpus[1], "%s/" FIXTURES "/corpora/general.jsonl", g_cwd);
    assert_original_records("out/sample-domain.jsonl", corpus[0], 3);
    assert_original_records("out/sample-general.jsonl", corpus[1], 3);
    check_h5("out/sample-domain.h5", corpus[0], 6, 3);
    check_h5("out/sample-general.h5", corpus[1], 5, 3);
    printf("    k 3: 3 of 6 domain and 3 of 5 general triplets, original records in corpus order; h5 described\n");
}

static bool same_file(const char *a, const char *b) {
    char *x = tu_read_in(g_dir, a), *y = tu_read_in(g_dir, b);
    bool same = x && y && !strcmp(x, y);
    free(x), free(y);
    return same;
}

static void test_ranks_agree(void **state) {
    (void)state;
    for (int np = 2; np <= 3; np++) {
        assert_int_equal(gaprune(np, "sample job.ini --set output.dir=out-np%d", np), 0);
        assert_clean_stderr();
        for (int c = 0; c < 2; c++) {
            const char *corpus = c ? "general" : "domain";
            char a[128], b[128];
            snprintf(a, sizeof a, "out/sample-%s.jsonl", corpus);
            snprintf(b, sizeof b, "out-np%d/sample-%s.jsonl", np, corpus);
            assert_true(same_file(a, b));
            /* every dataset, bit for bit (attributes such as n_ranks and times may differ) */
            assert_int_equal(tu_run_in(g_dir, "h5diff -q out/sample-%s.h5 out-np%d/sample-%s.h5 /centroids && "
                                 "h5diff -q out/sample-%s.h5 out-np%d/sample-%s.h5 /assignment && "
                                 "h5diff -q out/sample-%s.h5 out-np%d/sample-%s.h5 /inertia && "
                                 "h5diff -q out/sample-%s.h5 out-np%d/sample-%s.h5 /selected",
                                 corpus, np, corpus, corpus, np, corpus, corpus, np, corpus, corpus, np, corpus),
                             0);
        }
    }
    printf("    1, 2 and 3 ranks: the same samples, centroids, assignments and inertia\n");
}

static double mtime(const char *rel) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", g_dir, rel);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec;
}

static void test_skip_and_redo(void **state) {
    (void)state;
    double j0 = mtime("out/sample-domain.jsonl"), h0 = mtime("out/sample-general.h5");
    assert_int_equal(gaprune(2, "sample job.ini"), 0);
    char *out = tu_read_in(g_dir, "out.txt");
    assert_non_null(strstr(out, "sample domain: out/sample-domain.jsonl is complete for these settings"));
    assert_non_null(strstr(out, "sample general: out/sample-general.jsonl is complete for these settings"));
    assert_non_null(strstr(out, "\"up_to_date\":true"));
    free(out);
    assert_true(mtime("out/sample-domain.jsonl") == j0 && mtime("out/sample-general.h5") == h0);
    /* another k: redone */
    assert_int_equal(gaprune(0, "sample job.ini --set sample.k=2"), 0);
    char *s = tu_read_in(g_dir, "out/sample-domain.jsonl");
    assert_int_equal(count_lines(s), 2);
    free(s);
    /* a sample file changed by hand: redone, even with the same settings */
    tu_sh("echo '{\"query\": \"q\", \"positive\": \"p\", \"negative\": \"n\"}' >> '%s/out/sample-general.jsonl'", g_dir);
    assert_int_equal(gaprune(0, "sample job.ini --set sample.k=2"), 0);
    out = tu_read_in(g_dir, "out.txt");
    assert_non_null(strstr(out, "sample domain: out/sample-domain.jsonl is complete"));
    assert_null(strstr(out, "sample general: out/sample-general.jsonl is complete"));
    free(out);
    s = tu_read_in(g_dir, "out/sample-general.jsonl");
    assert_int_equal(count_lines(s), 2);
    free(s);
    printf("    a rerun skips both corpora (files untouched); another k or an edited sample is redone\n");
}

static void test_json_array_and_small(void **state) {
    (void)state;
    /* a pretty-printed array: elements span lines and keep spaces inside strings */
    tu_sh("printf '[\\n  {\\n    \"query\": \"a  b\",\\n    \"positive\": \"x y\",\\n    \"negative\": [\"z\", \"w\"]\\n  },\\n"
          "  {\"query\": \"c\", \"positive\": \"d\", \"negative\": \"e\"}\\n]\\n' > '%s/pretty.json'",
          g_dir);
    assert_int_equal(gaprune(0, "sample job.ini --set output.dir=out-small --set data.domain=pretty.json"), 0);
    assert_clean_stderr();
    char *s = tu_read_in(g_dir, "out-small/sample-domain.jsonl");
    assert_string_equal(s, "{\"query\":\"a  b\",\"positive\":\"x y\",\"negative\":[\"z\",\"w\"]}\n"
                           "{\"query\": \"c\", \"positive\": \"d\", \"negative\": \"e\"}\n");
    free(s);
    /* n <= k (5000 by default): everything, unchanged */
    assert_int_equal(gaprune(2, "sample job.ini --set output.dir=out-all --set sample.k=5000"), 0);
    char *a = tu_read_in(g_dir, "out-all/sample-general.jsonl");
    char corpus[4400];
    snprintf(corpus, sizeof corpus, "%s/" FIXTURES "/corpora/general.jsonl", g_cwd);
    char *b = slurp_abs(corpus);
    /* the fixture has a blank line, which is no record */
    assert_int_equal(count_lines(a), 5);
    assert_original_records("out-all/sample-general.jsonl", corpus, 5);
    char *out = tu_read_in(g_dir, "out.txt");
    assert_non_null(strstr(out, "no more than k = 5000 triplets: all are kept"));
    free(out), free(a), free(b);
    /* the one-line form is JSON's: the library agrees */
    size_t n;
    char *one = gp_json_one_line("{ \"a\" :\n [1, \"x\\\"\n\"] }", 22, &n);
    assert_string_equal(one, "{\"a\":[1,\"x\\\"\\u000a\"]}");
    free(one);
    printf("    a pretty-printed JSON array becomes one compact line per element; n <= k keeps all\n");
}

static void test_random(void **state) {
    (void)state;
    assert_int_equal(gaprune(0, "sample job.ini --set output.dir=out-r1 --set sample.method=random --set sample.k=2"), 0);
    assert_int_equal(gaprune(2, "sample job.ini --set output.dir=out-r2 --set sample.method=random --set sample.k=2"), 0);
    assert_clean_stderr();
    assert_true(same_file("out-r1/sample-general.jsonl", "out-r2/sample-general.jsonl"));
    int64_t idx[2];
    assert_int_equal(gp_sample_random(5, 2, 42, idx), 2);
    /* the records of general.jsonl (its third line is blank, not a record) */
    const char *rec[5] = {
        "{\"query\": \"what is it?\", \"pos\": [\"it is special\"], \"neg\": [\"the capital\"]}",
        "{\"query\": \"special tokens\", \"positive\": \"tokens inside text\", \"negative\": \"unknown word\"}",
        "{\"query\": \"cafe in paris\", \"pos\": [\"a cafe in the city of paris\"], \"neg\": [\"berlin people\", \"more\"]}",
        "{\"query\": \"naive\", \"positive\": \"naive world\", \"negative\": \"big japan\"}",
        "{\"query\": \"12,345 people\", \"positive\": \"people of the city: 12,345\", \"negative\": [\"xyzzy\"]}"};
    char want[1024];
    snprintf(want, sizeof want, "%s\n%s\n", rec[idx[0]], rec[idx[1]]);
    char *s = tu_read_in(g_dir, "out-r1/sample-general.jsonl");
    assert_string_equal(s, want);
    free(s);
    printf("    random, k 2: records %lld and %lld of general.jsonl on 1 and 2 ranks\n", (long long)idx[0], (long long)idx[1]);
}

static void expect_exit2(const char *sets, const char *needle) {
    assert_int_equal(gaprune(2, "sample job.ini --set output.dir=out-bad %s", sets), 2);
    assert_clean_stderr();
    char *e = tu_read_in(g_dir, "err.txt");
    if (!strstr(e, needle)) fail_msg("%s: expected \"%s\" in:\n%s", sets, needle, e);
    free(e);
}

static void test_bad_input(void **state) {
    (void)state;
    char p[4400];
    snprintf(p, sizeof p, "%s/empty.jsonl", g_dir);
    tu_write(p, "");
    expect_exit2("--set sample.k=0", "[sample] k = 0 is out of range");
    expect_exit2("--set sample.method=kmedoids", "[sample] method: \"kmedoids\" is not one of none|kmeans|random");
    expect_exit2("--set sample.iterations=0", "[sample] iterations = 0 is out of range");
    expect_exit2("--set sample.model=/no/such/model", "[sample] model: /no/such/model is not a model folder");
    expect_exit2("--set sample.model=/tmp", "[sample] model:");
    expect_exit2("--set data.domain=empty.jsonl", "empty.jsonl: empty file (no triplets)");
    expect_exit2("--set sample.method=none", "[sample] method is none");
    printf("    k 0, an unknown method, 0 iterations, a missing or broken model, an empty corpus, method none: exit 2\n");
}

static char *h5_group_attr(const char *rel, const char *group, const char *name) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", g_dir, rel);
    hid_t f = gp_h5_open_quiet(p);
    assert_true(f >= 0);
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    char *v = gp_h5_read_attr_str(g, name);
    int64_t n = -1;
    if (!v && !gp_h5_read_attr_int(g, name, &n)) {
        v = malloc(32);
        snprintf(v, 32, "%lld", (long long)n);
    }
    H5Gclose(g);
    H5Fclose(f);
    if (!v) fail_msg("%s: no attribute %s of %s", rel, name, group);
    return v;
}

static void test_run_uses_samples(void **state) {
    (void)state;
    write_job("run", "[prune]\nmethods = magnitude\n[retrain]\nmethods =\n");
    assert_int_equal(gaprune(2, "run run.ini --set output.dir=out-run"), 0);
    assert_clean_stderr();
    char *out = tu_read_in(g_dir, "out.txt");
    assert_non_null(strstr(out, "run: stage 0/4, calibration sample (kmeans, k 3)"));
    free(out);
    for (int c = 0; c < 2; c++) {
        const char *g = c ? "/general" : "/domain";
        char *path = h5_group_attr("out-run/stats.h5", g, "corpus_path"), *from = h5_group_attr("out-run/stats.h5", g, "sampled_from"),
             *nt = h5_group_attr("out-run/stats.h5", g, "n_triplets");
        assert_string_equal(path, c ? "out-run/sample-general.jsonl" : "out-run/sample-domain.jsonl");
        assert_non_null(strstr(from, c ? "corpora/general.jsonl" : "corpora/domain.json"));
        assert_string_equal(nt, "3");
        free(path), free(from), free(nt);
    }
    char *root = h5_group_attr("out-run/stats.h5", "/", "sample_method");
    assert_string_equal(root, "kmeans");
    free(root);
    char *md = tu_read_in(g_dir, "out-run/report.md");
    assert_non_null(strstr(md, "kmeans samples (k 3)"));
    free(md);
    /* again: the sample and the statistics are complete */
    assert_int_equal(gaprune(2, "run run.ini --set output.dir=out-run"), 0);
    out = tu_read_in(g_dir, "out.txt");
    assert_non_null(strstr(out, "sample domain: out-run/sample-domain.jsonl is complete"));
    assert_non_null(strstr(out, "stats: out-run/stats.h5 is complete for these settings"));
    free(out);
    /* without the sample the old statistics are not reused */
    assert_int_equal(gaprune(2, "run run.ini --set output.dir=out-run --set sample.method=none"), 0);
    out = tu_read_in(g_dir, "out.txt");
    assert_null(strstr(out, "stats.h5 is complete"));
    assert_non_null(strstr(out, "stats: domain: 6 triplets selected"));
    free(out);
    printf("    gaprune run: statistics of the 3 + 3 sampled triplets; a rerun skips both; method none recomputes\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kmeans_sample),      cmocka_unit_test(test_ranks_agree),
        cmocka_unit_test(test_skip_and_redo),      cmocka_unit_test(test_json_array_and_small),
        cmocka_unit_test(test_random),             cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_run_uses_samples),
    };
    return cmocka_run_group_tests_name("gaprune sample", tests, setup, teardown);
}
