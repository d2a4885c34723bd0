/* test_cli.c — the gaprune binary as a user runs it: encode on 1, 2 and 3 ranks (same
 * embeddings as the library computes in-process), tokenize, and bad input (exit code 2, a
 * message naming the file or key, no sanitizer report). The binary under test is
 * $GAPRUNE_BIN (the sanitizer build, set by tests/run_tests.sh). */
#include "test_util.h"

#include <hdf5.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "gaprune/model.h"
#include "gaprune/prune.h"
#include "gaprune/textfile.h"

static char *g_dir;

static const char *bin(void) { return tu_bin(); }

#define run(...) tu_run_to(g_dir, __VA_ARGS__)

static char *slurp(const char *name) {
    char *b = tu_read_in(g_dir, name);
    assert_non_null(b);
    return b;
}

static void assert_clean_stderr(void) {
    char *e = slurp("err");
    tu_assert_no_sanitizer(e);
    free(e);
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

static float *read_embeddings(const char *path, hsize_t dims[2], char ***ids) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    int64_t complete = 0;
    hid_t a = H5Aopen(f, "complete", H5P_DEFAULT);
    assert_true(a >= 0);
    H5Aread(a, H5T_NATIVE_INT64, &complete);
    H5Aclose(a);
    assert_int_equal(complete, 1);
    hid_t d = H5Dopen2(f, "embeddings", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    float *e = malloc(dims[0] * dims[1] * sizeof(float));
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, e) >= 0);
    assert_true(H5Aexists(d, "description") > 0 && H5Aexists(d, "units") > 0);
    H5Sclose(sp);
    H5Dclose(d);
    if (ids) {
        d = H5Dopen2(f, "ids", H5P_DEFAULT);
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        *ids = calloc(dims[0], sizeof(char *));
        assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, *ids) >= 0);
        H5Tclose(t);
        H5Dclose(d);
    }
    H5Fclose(f);
    return e;
}

static void free_ids(char **ids, size_t n) {
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

static void test_encode_matches_library(void **state) {
    (void)state;
    char out[4200];
    snprintf(out, sizeof out, "%s/e1.h5", g_dir);
    int rc = run("%s encode --model " FIXTURES "/bert-f32 --input " FIXTURES "/texts.txt --output %s --batch 3", bin(), out);
    assert_clean_stderr();
    assert_int_equal(rc, 0);
    char *o = slurp("out");
    assert_non_null(strstr(o, "{\"command\":\"encode\",\"texts\":8"));
    free(o);
    hsize_t dims[2];
    char **ids;
    float *e = read_embeddings(out, dims, &ids);
    assert_int_equal(dims[0], 8);
    assert_int_equal(dims[1], 64);
    assert_string_equal(ids[0], "1");
    assert_string_equal(ids[7], "8");

    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(FIXTURES "/bert-f32", &m, &err), GP_OK);
    gp_texts t;
    assert_int_equal(gp_texts_read(FIXTURES "/texts.txt", 0, 8, true, false, &t, &err), GP_OK);
    float *ref = malloc(8 * 64 * sizeof(float));
    gp_model_encode(m, (const char *const *)t.text, 8, 3, 0, NULL, ref);
    double d = tu_max_abs(e, ref, 8 * 64);
    printf("    1 rank vs library: max abs diff %.2e\n", d);
    assert_true(d < 1e-6);
    free(ref);
    gp_texts_free(&t);
    gp_model_free(m);
    free_ids(ids, dims[0]);
    free(e);
}

/* Qwen3 queries: --query takes the model's own prompt (config_sentence_transformers.json), --task
 * TEXT makes "Instruct: TEXT\nQuery:"; 2 ranks against the library with that exact prefix. */
static void test_encode_qwen3_query(void **state) {
    (void)state;
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(FIXTURES "/qwen3-f32", &m, &err), GP_OK);
    assert_non_null(m->query_prompt);
    gp_texts t;
    assert_int_equal(gp_texts_read(FIXTURES "/texts.txt", 0, 8, true, false, &t, &err), GP_OK);
    const int D = gp_model_dim(m);
    const char *cases[][2] = {{"--query", NULL}, {"--query --task 'Find man pages'", "Instruct: Find man pages\nQuery:"}};
    float *first = NULL;
    for (int k = 0; k < 2; k++) {
        char out[4200];
        snprintf(out, sizeof out, "%s/q%d.h5", g_dir, k);
        int rc = run("mpirun -np 2 %s encode --model " FIXTURES "/qwen3-f32 --input " FIXTURES "/texts.txt --output %s %s",
                     bin(), out, cases[k][0]);
        assert_clean_stderr();
        assert_int_equal(rc, 0);
        hsize_t dims[2];
        float *e = read_embeddings(out, dims, NULL);
        assert_int_equal(dims[0], 8);
        assert_int_equal(dims[1], D);
        float *ref = malloc(8 * (size_t)D * sizeof(float));
        gp_model_encode(m, (const char *const *)t.text, 8, 4, 0, cases[k][1] ? cases[k][1] : m->query_prompt, ref);
        double d = tu_max_abs(e, ref, 8 * (size_t)D);
        printf("    qwen3 %s: 2 ranks vs library with its prefix: max abs diff %.2e\n", cases[k][0], d);
        assert_true(d < 1e-6);
        free(ref);
        if (k == 0) first = e;
        else {
            assert_true(tu_max_abs(e, first, 8 * (size_t)D) > 1e-3); /* another prefix, other embeddings */
            free(e);
        }
    }
    assert_int_equal(run("%s encode --model " FIXTURES "/qwen3-f32 --input " FIXTURES "/texts.txt --output %s/x.h5 --query "
                         "--task a --instruction b",
                         bin(), g_dir),
                     2);
    free(first);
    gp_texts_free(&t);
    gp_model_free(m);
}

static void test_encode_ranks_agree(void **state) {
    (void)state;
    char one[4200], many[4200];
    snprintf(one, sizeof one, "%s/e1.h5", g_dir);
    hsize_t d1[2];
    float *e1 = read_embeddings(one, d1, NULL);
    for (int np = 2; np <= 3; np++) {
        snprintf(many, sizeof many, "%s/e%d.h5", g_dir, np);
        int rc = run("mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s encode --model " FIXTURES
                     "/bert-f32 --input " FIXTURES "/texts.txt --output %s --batch 3",
                     np, bin(), many);
        assert_clean_stderr();
        assert_int_equal(rc, 0);
        hsize_t d2[2];
        char **ids;
        float *e2 = read_embeddings(many, d2, &ids);
        assert_int_equal(d2[0], d1[0]);
        assert_string_equal(ids[5], "6");
        double d = tu_max_abs(e1, e2, d1[0] * d1[1]);
        printf("    %d ranks vs 1 rank: max abs diff %.2e\n", np, d);
        assert_true(d < 1e-6);
        free_ids(ids, d2[0]);
        free(e2);
    }
    free(e1);
}

static void test_encode_jsonl(void **state) {
    (void)state;
    char in[4200], out[4200];
    snprintf(in, sizeof in, "%s/corpus.jsonl", g_dir);
    snprintf(out, sizeof out, "%s/c.h5", g_dir);
    tu_write(in, "{\"_id\": \"d1\", \"title\": \"Paris\", \"text\": \"is the capital of france\"}\n"
                 "\n"
                 "{\"_id\": 7, \"text\": \"berlin is big\"}\n");
    assert_int_equal(run("%s encode --model " FIXTURES "/bert-f32 --input %s --output %s", bin(), in, out), 0);
    hsize_t dims[2];
    char **ids;
    float *e = read_embeddings(out, dims, &ids);
    assert_int_equal(dims[0], 2);
    assert_string_equal(ids[0], "d1");
    assert_string_equal(ids[1], "7");
    /* title + " " + text */
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(FIXTURES "/bert-f32", &m, &err), GP_OK);
    const char *texts[] = {"Paris is the capital of france"};
    float ref[64];
    gp_model_encode(m, texts, 1, 1, 0, NULL, ref);
    assert_true(tu_max_abs(e, ref, 64) < 1e-6);
    gp_model_free(m);
    free_ids(ids, dims[0]);
    free(e);

    tu_write(in, "{\"_id\": \"a\", \"text\": \"ok\"}\n{\"_id\": \"b\"}\n");
    assert_int_equal(run("%s encode --model " FIXTURES "/bert-f32 --input %s --output %s/bad.h5", bin(), in, g_dir), 2);
    assert_clean_stderr();
    char *err_text = slurp("err");
    assert_non_null(strstr(err_text, "corpus.jsonl:2: missing field \"text\""));
    free(err_text);
    snprintf(out, sizeof out, "%s/bad.h5", g_dir);
    assert_false(access(out, F_OK) == 0); /* nothing written */
}

/* Every job-file error stops the job before any stage runs (no output folder is made), with
 * exit code 2 on every rank and one message naming FILE:LINE or the option it came from and,
 * for a choice, the valid values. */
static void test_job_errors_before_any_stage(void **state) {
    (void)state;
    char job[4200], out[4200];
    snprintf(job, sizeof job, "%s/bad.ini", g_dir);
    snprintf(out, sizeof out, "%s/bad-out", g_dir);
    const char *good = "[model]\npath = " FIXTURES "/bert-tiny\n[data]\ndomain = " FIXTURES "/corpora/domain.json\n"
                       "general = " FIXTURES "/corpora/general.jsonl\n[output]\ndir = %s\n[prune]\n";
    static const struct {
        const char *line;  /* appended to [prune] (line 9), or NULL */
        const char *args;  /* extra arguments */
        const char *cmd;   /* gaprune command */
        const char *want;  /* in stderr; "@" stands for the job file */
    } cases[] = {
        {"alpah = 1\n", "", "run", "@:9: unknown key \"alpah\" in [prune]"},
        {"gamma = much\n", "", "run", "@:9: [prune] gamma: \"much\" is not a number in [-1e+09, 1e+09)"},
        {"methods = gaprune, magnitud\n", "", "run",
         "@:9: [prune] methods: \"magnitud\" is not a criterion; one of gaprune|gaprune-ref|magnitude|fisher-domain|"},
        {"sparsity = 0.5, 2\n", "", "run", "@:9: [prune] sparsity: \"2\" is not a number in [0, 1) (in \"0.5, 2\")"},
        {"scope = 2:5x\n", "", "stats", "@:9: [prune] scope: \"2:5x\" is not one of global|layer|row|n:m"},
        {"layers = all\n", "", "score", "@:9: [prune] layers: \"all\" is not one of mlp|attention|linear"},
        {NULL, "--set prune.scope=2:5x", "run", "--set prune.scope=2:5x: [prune] scope: \"2:5x\" is not one of"},
        {NULL, "--set prune.sparsity=1", "run", "--set prune.sparsity=1: [prune] sparsity: \"1\" is not a number in [0, 1)"},
        {NULL, "--set prune.methods=gaprun", "run", "--set prune.methods=gaprun: [prune] methods: \"gaprun\" is not a criterion"},
        {NULL, "--set retrain.methods=gaprune,x", "retrain --mask m.h5", "--set retrain.methods=gaprune,x: [retrain] methods"},
        {NULL, "--set stats.alignment=cosine", "stats", "--set stats.alignment=cosine: [stats] alignment: \"cosine\" is not one of tensor|refcode"},
        {NULL, "--method gaprun", "score", "--method gaprun: [prune] methods: \"gaprun\" is not a criterion; one of gaprune|"},
        {NULL, "--sparsity 0.5,1.5", "score", "--sparsity 0.5,1.5: [prune] sparsity: \"1.5\" is not a number in [0, 1)"},
        {NULL, "--only gaprun:0.5", "run", "--only gaprun:0.5: \"gaprun\" is not a criterion (one of gaprune|"},
        /* checks that need the model still come before the first stage */
        {"scope = 3:7\n", "", "run", "@:9: [prune] scope 3:7: tensor \"encoder.layer.0.intermediate.dense.weight\" has"},
        {NULL, "--set prune.scope=1:3", "stats", "--set prune.scope=1:3: [prune] scope 1:3: tensor"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[8192];
        int at = snprintf(text, sizeof text, good, out);
        if (cases[i].line) snprintf(text + at, sizeof text - (size_t)at, "%s", cases[i].line);
        tu_write(job, text);
        char want[8192] = "";
        const char *at_sign = strchr(cases[i].want, '@');
        if (at_sign) snprintf(want, sizeof want, "%s%s", job, at_sign + 1);
        else snprintf(want, sizeof want, "%s", cases[i].want);
        for (int np = 1; np <= 2; np++) {
            char cmd[256];
            snprintf(cmd, sizeof cmd, "%s", cases[i].cmd);
            char *sp = strchr(cmd, ' ');
            const char *rest = "";
            if (sp) *sp = '\0', rest = sp + 1;
            int rc = run("mpirun -np %d -x ASAN_OPTIONS %s %s '%s' %s %s", np, bin(), cmd, job, rest, cases[i].args);
            char *e = slurp("err");
            if (rc != 2 || !strstr(e, want))
                fail_msg("gaprune %s %s (%d ranks): exit %d, expected 2 and \"%s\" in:\n%s", cases[i].cmd, cases[i].args, np, rc,
                         want, e);
            /* reported once, by the lowest failing rank, not once per rank */
            assert_null(strstr(strstr(e, "gaprune: error:") + 1, "gaprune: error:"));
            free(e);
            assert_clean_stderr();
            struct stat st;
            assert_int_not_equal(stat(out, &st), 0); /* no stage ran */
        }
    }
    if (gp_rank() == 0) printf("    %zu bad jobs: exit 2 before any stage on 1 and 2 ranks\n", sizeof cases / sizeof cases[0]);
}

static void test_bad_input_exit_2(void **state) {
    (void)state;
    char d[4200];
    snprintf(d, sizeof d, "%s/broken", g_dir);
    tu_sh("cp -r " FIXTURES "/bert-f32 '%s' && truncate -s 1000 '%s/model.safetensors'", d, d);
    for (int np = 1; np <= 2; np++) {
        int rc = run("mpirun -np %d -x ASAN_OPTIONS %s encode --model %s --input " FIXTURES "/texts.txt --output %s/x.h5",
                     np, bin(), d, g_dir);
        assert_int_equal(rc, 2);
        assert_clean_stderr();
        char *e = slurp("err");
        assert_non_null(strstr(e, "gaprune: error:"));
        assert_non_null(strstr(e, "model.safetensors"));
        assert_non_null(strstr(e, "truncated"));
        free(e);
    }
    assert_int_equal(run("%s encode --model %s", bin(), d), 2);
    char *e = slurp("err");
    assert_non_null(strstr(e, "--input"));
    free(e);
    assert_int_equal(run("%s encode --modle x", bin()), 2);
    e = slurp("err");
    assert_non_null(strstr(e, "unknown option \"--modle\""));
    free(e);
    assert_int_equal(run("%s encode --model " FIXTURES "/bert-f32 --input /no/such.txt --output x.h5", bin()), 2);
    e = slurp("err");
    assert_non_null(strstr(e, "/no/such.txt"));
    free(e);
    /* issue 14: a job file that cannot be read was reported twice */
    for (int np = 0; np <= 2; np += 2) {
        if (np) assert_int_equal(run("mpirun -np %d -x ASAN_OPTIONS %s run /nonexistent.ini", np, bin()), 2);
        else assert_int_equal(run("%s run /nonexistent.ini", bin()), 2);
        e = slurp("err");
        const char *first = strstr(e, "gaprune: error: /nonexistent.ini: cannot open");
        if (!first || strstr(first + 1, "gaprune: error:")) fail_msg("want the error once:\n%s", e);
        free(e);
    }
    /* issue 14: a warm-up longer than the retraining is said at load, with both origins */
    char job[4300];
    snprintf(job, sizeof job, "%s/warm.ini", g_dir);
    tu_write(job, "[model]\npath = /no/such/model\n[retrain]\nsteps = 100\nwarmup = 200\n");
    assert_int_equal(run("%s eval '%s'", bin(), job), 2);
    e = slurp("err");
    char want[8800];
    snprintf(want, sizeof want, "%s:5: [retrain] warmup = 200 is more than [retrain] steps = 100 (%s:4)", job, job);
    if (!strstr(e, want) || !strstr(e, "continuing")) fail_msg("want \"%s\" in:\n%s", want, e);
    free(e);
    assert_int_equal(run("%s frobnicate", bin()), 2);
    assert_int_equal(run("%s --version", bin()), 0);
    assert_int_equal(run("%s encode --help", bin()), 0);
    char *o = slurp("out");
    assert_non_null(strstr(o, "--max-length"));
    free(o);
}

static void test_tokenize(void **state) {
    (void)state;
    assert_int_equal(run("%s tokenize --model " FIXTURES "/bert-f32 'Hello, World!' 'paris'", bin()), 0);
    assert_clean_stderr();
    char *o = slurp("out");
    /* ids from the fixture's vocab.txt: hello 119, "," 16, world 120, "!" 5, paris 110 */
    assert_string_equal(o, "2 119 16 120 5 3\n2 110 3\n");
    free(o);
    assert_int_equal(run("printf 'paris\\n\\nfrance' | %s tokenize --model " FIXTURES "/bert-f32 --tokens", bin()), 0);
    o = slurp("out");
    assert_string_equal(o, "[CLS] paris [SEP]\n[CLS] [SEP]\n[CLS] france [SEP]\n");
    free(o);
    assert_int_equal(run("%s tokenize --model " FIXTURES "/bert-f32 --max-length 3 'paris is big'", bin()), 0);
    o = slurp("out");
    assert_string_equal(o, "2 110 3\n");
    free(o);
}

/* issue 27: `gaprune run JOB --list` prints the masks alone on stdout (the configuration goes to
 * stderr), so $(gaprune run JOB --list) is the list; on 2 ranks too. */
static void test_run_list_alone_on_stdout(void **state) {
    (void)state;
    char job[4200];
    snprintf(job, sizeof job, "%s/list.ini", g_dir);
    tu_write(job, "[model]\npath = " FIXTURES "/bert-tiny\n[data]\ndomain = " FIXTURES "/corpora/domain.json\n"
                  "general = " FIXTURES "/corpora/general.jsonl\n[prune]\nmethods = magnitude, gaprune\n"
                  "sparsity = 0.3, 0.5\n[retrain]\nmethods = wanda\n");
    for (int np = 1; np <= 2; np++) {
        assert_int_equal(run("mpirun -np %d -x ASAN_OPTIONS %s run %s --list", np, bin(), job), 0);
        assert_clean_stderr();
        char *o = slurp("out"), *e = slurp("err");
        assert_string_equal(o, "magnitude:0.3\nmagnitude:0.5\ngaprune:0.3\ngaprune:0.5\nwanda:0.3\nwanda:0.5\n");
        assert_non_null(strstr(e, "effective configuration:\n[model]\n")); /* the echo is still there, on stderr */
        free(o), free(e);
    }
}

/* issue 27: a --max-length beyond the model's is capped and said once on stderr, and the header
 * names the length used (encode; tokenize keeps stdout the ids); encode's summary rate is its
 * progress rate: the texts over the encoding's seconds, not over the whole command's. */
static void test_max_length_capped_and_said(void **state) {
    (void)state;
    char out[4200];
    snprintf(out, sizeof out, "%s/cap.h5", g_dir);
    assert_int_equal(run("%s encode --model " FIXTURES "/bert-f32 --input " FIXTURES "/texts.txt --output %s --max-length 100000",
                         bin(), out), 0);
    assert_clean_stderr();
    char *o = slurp("out"), *e = slurp("err");
    /* sentence_bert_config.json's max_seq_length: 40 */
    const char *w = "--max-length 100000 is more than the 40 tokens " FIXTURES "/bert-f32 takes; using 40";
    if (!strstr(e, w) || strstr(strstr(e, w) + 1, "--max-length 100000")) fail_msg("want \"%s\" once in:\n%s", w, e);
    assert_non_null(strstr(o, "max 40 tokens"));
    assert_null(strstr(o, "max 100000 tokens"));
    const char *js = strstr(o, "{\"command\":\"encode\"");
    assert_non_null(js);
    double texts = 0, seconds = 0, enc = 0, rate = 0;
    assert_int_equal(sscanf(js, "{\"command\":\"encode\",\"texts\":%lf,\"dim\":%*d,\"ranks\":%*d,\"seconds\":%lf,"
                                "\"encode_seconds\":%lf,\"texts_per_s\":%lf", &texts, &seconds, &enc, &rate), 4);
    assert_true(texts == 8 && enc > 0 && enc <= seconds);
    assert_true(fabs(texts / rate - enc) <= 0.0006); /* the rate is texts / encode_seconds (printed to 1 ms) */
    /* the last progress line ("[encode] 8/8 texts ... R texts/s") has the same rate */
    const char *pl = strstr(o, "[encode] 8/8 texts (100.0%) ");
    assert_non_null(pl);
    double prate = 0;
    assert_int_equal(sscanf(pl, "[encode] 8/8 texts (100.0%%) %lf", &prate), 1);
    printf("    encode: %g texts/s in the summary, %g in the progress line, %.3f of %.3f s encoding\n", rate, prate, enc, seconds);
    assert_true(fabs(prate - rate) <= 0.05 * rate + 0.01);
    free(o), free(e);
    assert_int_equal(run("%s tokenize --model " FIXTURES "/bert-f32 --max-length 100000 'paris'", bin()), 0);
    o = slurp("out"), e = slurp("err");
    assert_string_equal(o, "2 110 3\n");
    assert_non_null(strstr(e, "--max-length 100000 is more than the 40 tokens " FIXTURES "/bert-f32 takes; using 40"));
    free(o), free(e);
    assert_int_equal(run("%s tokenize --model " FIXTURES "/bert-f32 --max-length 3 'paris'", bin()), 0);
    e = slurp("err");
    assert_string_equal(e, ""); /* within the model's: nothing to say */
    free(e);
}

/* issue 27 (drift): the BERT template names every criterion and every structured scope a user
 * can put in it. */
static void test_template_names_every_criterion(void **state) {
    (void)state;
    char *t = tu_read_file("jobs/template-bert.ini", NULL);
    assert_non_null(t);
    for (const gp_criterion *const *c = gp_criteria(); *c; c++) {
        char word[80];
        snprintf(word, sizeof word, " %s", (*c)->name);
        bool found = false;
        /* a whole word: fisher-domain is not fisher-domain-obd */
        for (const char *at = strstr(t, word); at && !found; at = strstr(at + 1, word)) {
            const char e = at[strlen(word)];
            found = e == ',' || e == ';' || e == '\n' || e == ' ';
        }
        if (!found) fail_msg("jobs/template-bert.ini does not name the criterion %s", (*c)->name);
    }
    static const char *const scopes[] = {"global", "layer", "row", "n:m", "neurons", "neurons-global", "heads"};
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (!strstr(t, scopes[i])) fail_msg("jobs/template-bert.ini does not name the scope %s", scopes[i]);
    free(t);
}

/* docs/guide.md's job-file reference is `gaprune help-job`, generated from the option table. */
static void test_guide_job_reference(void **state) {
    (void)state;
    assert_int_equal(run("%s help-job", bin()), 0);
    char *help = slurp("out");
    FILE *f = fopen("docs/guide.md", "rb");
    assert_non_null(f);
    char *readme = calloc(1, 1 << 20);
    readme[fread(readme, 1, (1 << 20) - 1, f)] = '\0';
    fclose(f);
    const char *open = "<!-- help-job -->\n```\n", *close = "```\n<!-- /help-job -->";
    char *a = strstr(readme, open), *b = a ? strstr(a, close) : NULL;
    assert_non_null(a);
    assert_non_null(b);
    a += strlen(open);
    *b = '\0';
    if (strcmp(a, help) != 0) fail_msg("docs/guide.md's job-file reference differs from `gaprune help-job`: regenerate it");
    free(help), free(readme);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_matches_library), cmocka_unit_test(test_encode_ranks_agree),
        cmocka_unit_test(test_encode_qwen3_query),
        cmocka_unit_test(test_encode_jsonl),           cmocka_unit_test(test_bad_input_exit_2),
        /* 16 bad jobs, each under mpirun on 1 and 2 ranks */
        tu_long_test(test_job_errors_before_any_stage),
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_run_list_alone_on_stdout),
        cmocka_unit_test(test_max_length_capped_and_said),
        cmocka_unit_test(test_template_names_every_criterion),
        cmocka_unit_test(test_guide_job_reference),
    };
    return tu_run_group("cli", tests, setup, teardown);
}
