/* test_mpi_job.c — job files: defaults, typed values (enums, scope, criteria, number and path
 * lists), ranges, unknown keys and bad values with file:line or the --set they came from, the
 * valid values of every choice, escapes, and every rank holding the same job (run on 1, 2 and 4
 * ranks). */
#include "test_util.h"
#include "test_mpi.h"

#include <mpi.h>

#include "gaprune/job.h"
#include "gaprune/model.h"
#include "gaprune/log.h"

static char g_path[4200];
static char *g_dir;

static int setup(void **state) {
    (void)state;
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    /* one scratch folder for all ranks: rank 0 makes it */
    char buf[4096] = "";
    if (rank == 0) {
        g_dir = tu_mkdtemp();
        snprintf(buf, sizeof buf, "%s", g_dir);
    }
    MPI_Bcast(buf, sizeof buf, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank != 0) g_dir = strdup(buf);
    snprintf(g_path, sizeof g_path, "%s/my-job.ini", g_dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    MPI_Barrier(MPI_COMM_WORLD);
    if (gp_rank() == 0) tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static void write_job(const char *text) {
    if (gp_rank() == 0) tu_write(g_path, text);
    MPI_Barrier(MPI_COMM_WORLD);
}

static void test_defaults_and_values(void **state) {
    (void)state;
    write_job("# a comment\n[model]\npath = models/x\nquery_instruction = Instruct: find\\nQuery: \n"
              "[data]\ndomain = d.json ; inline comment\nmax_samples = 100\non_bad_record = skip\n"
              "[prune]\nsparsity = 0.3, 0.5,0.6\nscope = 2:4\nsave_scores = yes\nalpha = 0.25\n");
    gp_job c;
    gp_err err = {0};
    char want[4300];
    assert_int_equal(gp_job_load(&c, g_path, NULL, NULL, 0, &err), GP_OK);
    assert_string_equal(c.model.path, "models/x");
    assert_string_equal(c.model.query_instruction, "Instruct: find\nQuery:");
    assert_string_equal(c.data.domain, "d.json");
    assert_int_equal(c.data.max_samples, 100);
    assert_int_equal(c.data.on_bad_record, GP_BAD_SKIP);
    assert_int_equal(c.prune.n_sparsity, 3);
    assert_float_equal(c.prune.sparsity[0], 0.3, 0);
    assert_float_equal(c.prune.sparsity[1], 0.5, 0);
    assert_float_equal(c.prune.sparsity[2], 0.6, 0);
    assert_int_equal(c.prune.scope.kind, GP_SCOPE_NM);
    assert_int_equal(c.prune.scope.n, 2);
    assert_int_equal(c.prune.scope.m, 4);
    assert_true(c.prune.save_scores);
    assert_float_equal(c.prune.alpha, 0.25, 0);
    /* defaults (docs/DESIGN.md §3.3) */
    assert_int_equal(c.model.max_length, 512);
    assert_int_equal(c.stats.fisher_batch, 1);
    assert_int_equal(c.stats.checkpoint_every, 100);
    assert_int_equal(c.stats.alignment, GP_ALIGN_TENSOR);
    assert_int_equal(c.prune.layers, GP_LAYERS_MLP);
    assert_int_equal(c.sample.method, GP_SAMPLE_NONE);
    assert_int_equal(c.prune.methods.n, 1);
    assert_ptr_equal(c.prune.methods.v[0], gp_criterion_find("gaprune"));
    assert_int_equal(c.eval.retrieval.n, 0);
    assert_true(c.prune.n_beta == 1 && c.prune.n_gamma == 1);
    assert_float_equal(c.prune.beta[0], 1.0, 0);
    assert_float_equal(c.prune.gamma[0], 0.5, 0);
    assert_float_equal(c.retrain.lr, 2e-5, 0);
    assert_int_equal(c.retrain.batch, 16);
    assert_string_equal(c.out_dir, "out/my-job");
    char *v = gp_job_get(&c, "data", "on_bad_record");
    assert_string_equal(v, "skip");
    free(v);
    v = gp_job_get(&c, "prune", "sparsity"); /* lists read back as given */
    assert_string_equal(v, "0.3, 0.5,0.6");
    free(v);
    snprintf(want, sizeof want, "%s:6", g_path);
    assert_string_equal(gp_job_origin(&c, "data", "domain"), want);
    assert_string_equal(gp_job_origin(&c, "stats", "fisher_batch"), "default");
    gp_job_free(&c);
}

static void test_overrides(void **state) {
    (void)state;
    write_job("[stats]\nfisher_batch = 4\n");
    const char *sets[] = {"stats.fisher_batch=2", "output.dir=elsewhere", "model.query_instruction=a\\tb"};
    gp_job c;
    gp_err err = {0};
    assert_int_equal(gp_job_load(&c, g_path, sets, NULL, 3, &err), GP_OK);
    assert_int_equal(c.stats.fisher_batch, 2);
    assert_string_equal(c.out_dir, "elsewhere");
    assert_string_equal(c.model.query_instruction, "a\tb");
    gp_job_free(&c);
    const char *bad[] = {"stats.fisherbatch=2"};
    assert_int_equal(gp_job_load(&c, g_path, bad, NULL, 1, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "--set"));
    assert_non_null(strstr(err.msg, "fisherbatch"));
    gp_job_free(&c);
    /* a bad value from an override names the override, not the job file */
    const char *bad_scope[] = {"prune.scope=2:5x"};
    assert_int_equal(gp_job_load(&c, g_path, bad_scope, NULL, 1, &err), GP_EINPUT);
    assert_string_equal(err.msg, "--set prune.scope=2:5x: [prune] scope: \"2:5x\" is not one of global|layer|row|n:m|neurons|neurons-global|heads "
                                 "(0 <= n < m <= 64, e.g. 2:4)");
    gp_job_free(&c);
    const char *bad_sparsity[] = {"prune.sparsity=1"};
    assert_int_equal(gp_job_load(&c, g_path, bad_sparsity, NULL, 1, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "--set prune.sparsity=1: [prune] sparsity: \"1\" is not a number in [0, 1)"));
    assert_null(strstr(err.msg, g_path));
    gp_job_free(&c);
    /* an option that stands for a key (gaprune score --method) names itself */
    const char *method[] = {"prune.methods=gaprun"}, *origin[] = {"--method gaprun"};
    assert_int_equal(gp_job_load(&c, g_path, method, origin, 1, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "--method gaprun: [prune] methods: \"gaprun\" is not a criterion; one of gaprune|"));
    gp_job_free(&c);
    const char *bad2[] = {"nodot=3"};
    assert_int_equal(gp_job_load(&c, g_path, bad2, NULL, 1, &err), GP_EINPUT);
    gp_job_free(&c);
    /* query_task becomes Qwen3-Embedding's own prompt form, with the query right after "Query:" */
    const char *task[] = {"model.query_task=Given a question, find answers"};
    assert_int_equal(gp_job_load(&c, g_path, task, NULL, 1, &err), GP_OK);
    assert_string_equal(c.model.query_instruction, "Instruct: Given a question, find answers\nQuery:");
    gp_job_free(&c);
    const char *both[] = {"model.query_task=t", "model.query_instruction=q: "};
    assert_int_equal(gp_job_load(&c, g_path, both, NULL, 2, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "query_task and query_instruction"));
    gp_job_free(&c);
}

static void expect_error(const char *text, const char *needle) {
    write_job(text);
    gp_job c;
    gp_err err = {0};
    assert_int_equal(gp_job_load(&c, g_path, NULL, NULL, 0, &err), GP_EINPUT);
    if (gp_rank() == 0) printf("    %s\n", err.msg);
    if (!strstr(err.msg, needle)) fail_msg("expected \"%s\" in \"%s\"", needle, err.msg);
    gp_job_free(&c);
}

static void test_errors_name_file_and_line(void **state) {
    (void)state;
    char want[4300];
    snprintf(want, sizeof want, "%s:3: unknown key \"fisherbatch\" in [stats]", g_path);
    expect_error("[stats]\n\nfisherbatch = 1\n", want);
    snprintf(want, sizeof want, "%s:3: unknown section [statz]", g_path); /* the first key line in it */
    expect_error("\n[statz]\nx = 1\n", want);
    snprintf(want, sizeof want, "%s:2: [stats] fisher_batch: expected an integer", g_path);
    expect_error("[stats]\nfisher_batch = four\n", want);
    expect_error("[stats]\nfisher_batch = 0\n", "out of range");
    expect_error("[data]\non_bad_record = ignore\n", "not one of fail|skip");
    expect_error("[prune]\nsparsity = 0.5, 1.5\n", "sparsity");
    expect_error("[prune]\nscope = 4:2\n", "scope");
    expect_error("[prune]\nsave_scores = maybe\n", "true or false");
    expect_error("key_outside = 1\n", "outside any [section]");
    expect_error("[model\n", ":1:");
    /* typed values: each names its line and, for a choice, the valid values */
    snprintf(want, sizeof want, "%s:2: [prune] scope: \"2:5x\" is not one of global|layer|row|n:m", g_path);
    expect_error("[prune]\nscope = 2:5x\n", want);
    snprintf(want, sizeof want, "%s:3: [prune] methods: \"gaprun\" is not a criterion; one of gaprune|gaprune-ref|magnitude|",
             g_path);
    expect_error("[prune]\n\nmethods = gaprune, gaprun\n", want);
    snprintf(want, sizeof want, "%s:2: [retrain] methods: \"x\" is not a criterion", g_path);
    expect_error("[retrain]\nmethods = x\n", want);
    snprintf(want, sizeof want, "%s:2: [prune] sparsity: \"1\" is not a number in [0, 1) (in \"0.5, 1\")", g_path);
    expect_error("[prune]\nsparsity = 0.5, 1\n", want);
    snprintf(want, sizeof want, "%s:2: [prune] sparsity: \"a\" is not a number", g_path);
    expect_error("[prune]\nsparsity = 0.5,a\n", want);
    snprintf(want, sizeof want, "%s:2: [prune] layers: \"mpl\" is not one of mlp|attention|linear", g_path);
    expect_error("[prune]\nlayers = mpl\n", want);
    snprintf(want, sizeof want, "%s:4: [stats] alignment: \"paper\" is not one of tensor|refcode", g_path);
    expect_error("[stats]\nfisher_batch = 2\n; a comment\nalignment = paper\n", want);
    snprintf(want, sizeof want, "%s:2: [sample] method: \"kmean\" is not one of none|kmeans|random", g_path);
    expect_error("[sample]\nmethod = kmean\n", want);
    snprintf(want, sizeof want, "%s:2: [retrain] lr = 2 is out of range [0, 1]", g_path);
    expect_error("[retrain]\nlr = 2\n", want);
    gp_job c;
    gp_err err = {0};
    assert_int_equal(gp_job_load(&c, "/no/such/job.ini", NULL, NULL, 0, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "/no/such/job.ini"));
    gp_job_free(&c);
}

/* Every rank parsed the same bytes: the printed configurations are identical. */
static void test_same_on_every_rank(void **state) {
    (void)state;
    write_job("[model]\npath = m\n[prune]\nmethods = gaprune, magnitude\n");
    gp_job c;
    gp_err err = {0};
    assert_int_equal(gp_job_load(&c, g_path, NULL, NULL, 0, &err), GP_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    gp_job_print(&c, f);
    fclose(f);
    unsigned long h = 5381, h0;
    for (size_t i = 0; i < len; i++) h = h * 33 + (unsigned char)buf[i];
    h0 = h;
    MPI_Bcast(&h0, 1, MPI_UNSIGNED_LONG, 0, MPI_COMM_WORLD);
    assert_true(h == h0);
    assert_non_null(strstr(buf, "methods = gaprune, magnitude"));
    free(buf);
    gp_job_free(&c);
}

static char *printed(const gp_job *c) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    gp_job_print(c, f);
    fclose(f);
    return buf;
}

/* issue 14 (fuzz_job): the printed configuration is a job file with the same values. It did
 * not load: its keys were indented (INI reads an indented line as the continuation of the key
 * before it), a query_task job printed query_instruction too, and blanks at either end of a
 * string, ';' and backslashes in lists (a list starting with ';') did not survive. */
static void test_print_loads_back(void **state) {
    (void)state;
    write_job("[model]\npath = a\\\\b;c d \\; e\\s\nquery_task = find;\\tit\\s\n[data]\ndomain = \\s\\sx \\;y\\n\n"
              "[eval]\nretrieval = c:\\beir\\one, two\\s\nsts =;a.jsonl ;b\n[prune]\nsparsity = 0.25 , 0.5\n[output]\ndir = o\n");
    gp_job c, d;
    gp_err err = {0};
    assert_int_equal(gp_job_load(&c, g_path, NULL, NULL, 0, &err), GP_OK);
    assert_string_equal(c.model.path, "a\\b;c d ; e ");
    assert_string_equal(c.data.domain, "  x ;y\n");
    char *once = printed(&c);
    MPI_Barrier(MPI_COMM_WORLD);
    write_job(once);
    assert_int_equal(gp_job_load(&d, g_path, NULL, NULL, 0, &err), GP_OK);
    char *twice = printed(&d);
    assert_string_equal(once, twice);
    assert_string_equal(d.model.path, c.model.path);
    assert_string_equal(d.model.query_instruction, c.model.query_instruction);
    assert_string_equal(d.data.domain, c.data.domain);
    assert_int_equal(d.eval.retrieval.n, 2);
    assert_string_equal(d.eval.retrieval.v[0], "c:\\beir\\one");
    assert_string_equal(d.eval.retrieval.v[1], "two\\s");
    assert_int_equal(d.eval.sts.n, 1); /* a ';' right after '=' is no comment; one after a blank is */
    assert_string_equal(d.eval.sts.v[0], ";a.jsonl");
    free(once);
    free(twice);
    gp_job_free(&c);
    gp_job_free(&d);
    /* fuzz_job, crashes/fuzz_job/leading-form-feed: a value that starts with a form feed (written
     * after a backslash) was printed raw, and INI trims it as white space on reload; \r, \f and
     * \v are escapes now, at either end of a value as anywhere */
    write_job("[model]\npath =\\\f d \\; e\\s\n[data]\ndomain = \\v\\rx\\f\n[output]\ndir = o\n");
    assert_int_equal(gp_job_load(&c, g_path, NULL, NULL, 0, &err), GP_OK);
    assert_string_equal(c.model.path, "\f d ; e ");
    assert_string_equal(c.data.domain, "\v\rx\f");
    once = printed(&c);
    MPI_Barrier(MPI_COMM_WORLD);
    write_job(once);
    assert_int_equal(gp_job_load(&d, g_path, NULL, NULL, 0, &err), GP_OK);
    twice = printed(&d);
    assert_string_equal(once, twice);
    assert_string_equal(d.model.path, c.model.path);
    assert_string_equal(d.data.domain, c.data.domain);
    free(once);
    free(twice);
    gp_job_free(&c);
    gp_job_free(&d);
}

/* issue 14 (fuzz_job): inih reads a line longer than its buffer as several, so the rest of a
 * long value was parsed as a line of its own: a key inside it was set, or an error named
 * another line. Such a line is refused, naming its line and length. */
static void test_long_lines(void **state) {
    (void)state;
    char text[1024], want[4400];
    memset(text, 0, sizeof text);
    snprintf(text, sizeof text, "[model]\npath = %0190d max_length = 99\n", 0);
    snprintf(want, sizeof want, "%s:2: the line is 213 characters long; a job-file line holds at most 199", g_path);
    expect_error(text, want);
    snprintf(text, sizeof text, "[model]\r\npath = %0250d\r\nmax_length = 64\r\n", 0);
    snprintf(want, sizeof want, "%s:2: the line is 257 characters long", g_path);
    expect_error(text, want);
    /* 199 characters and the line end: still one line */
    snprintf(text, sizeof text, "[model]\npath = %0192d\r\nmax_length = 64\n", 0);
    write_job(text);
    gp_job c;
    gp_err err = {0};
    assert_int_equal(gp_job_load(&c, g_path, NULL, NULL, 0, &err), GP_OK);
    assert_int_equal(strlen(c.model.path), 192);
    assert_int_equal(c.model.max_length, 64);
    gp_job_free(&c);
}

/* issue 14 (fuzz_job, tests/fuzz/crashes/fuzz_job/indented-line-continues-value): inih reads a
 * line that starts with a blank as the rest of the value above it, so an indented key line
 * became the previous key's value (a path "max_length = 64"). It is refused, naming its line;
 * indented comments and blank lines are fine. */
static void test_indented_lines(void **state) {
    (void)state;
    char want[4400];
    snprintf(want, sizeof want, "%s:3: an indented line (INI would read it as the rest of the value above it)", g_path);
    expect_error("[model]\npath = m\n  max_length = 64\n", want);
    snprintf(want, sizeof want, "%s:2: an indented line", g_path);
    expect_error("[model]\n\t[data]\n", want);
    write_job("[model]\n  ; an indented comment\npath = m\n \t \n\t# another\nmax_length = 64\n");
    gp_job c;
    gp_err err = {0};
    assert_int_equal(gp_job_load(&c, g_path, NULL, NULL, 0, &err), GP_OK);
    assert_string_equal(c.model.path, "m");
    assert_int_equal(c.model.max_length, 64);
    gp_job_free(&c);
}

/* The registries are the lists: every criterion is a valid method, every criterion and every
 * architecture is in `gaprune help-job`. */
static void test_registries(void **state) {
    (void)state;
    write_job("[model]\npath = m\n");
    int n = 0;
    for (const gp_criterion *const *c = gp_criteria(); *c; c++, n++) {
        char set[128];
        snprintf(set, sizeof set, "retrain.methods=%s", (*c)->name);
        const bool structured = (*c)->needs & GP_NEED_NEURONS;
        const char *sets[] = {set, "prune.scope=neurons"};
        gp_job j;
        gp_err err = {0};
        if (structured) { /* whole neurons only: without scope neurons, exit 2 naming both keys */
            assert_int_equal(gp_job_load(&j, g_path, sets, NULL, 1, &err), GP_EINPUT);
            assert_non_null(strstr(err.msg, "--set retrain.methods"));
            assert_non_null(strstr(err.msg, "scope = neurons"));
            gp_job_free(&j);
        }
        assert_int_equal(gp_job_load(&j, g_path, sets, NULL, structured ? 2 : 1, &err), GP_OK);
        assert_int_equal(j.retrain.methods.n, 1);
        assert_ptr_equal(j.retrain.methods.v[0], *c);
        assert_ptr_equal(gp_criterion_find((*c)->name), *c);
        gp_job_free(&j);
    }
    assert_true(n >= 7);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    gp_job_help(f);
    fclose(f);
    for (const gp_criterion *const *c = gp_criteria(); *c; c++) {
        char line[128];
        snprintf(line, sizeof line, "\n  %-18s %s\n", (*c)->name, (*c)->description);
        assert_non_null(strstr(buf, line));
    }
    int na = 0;
    for (const gp_arch_info *const *a = gp_architectures(); *a; a++, na++) {
        char line[128];
        snprintf(line, sizeof line, "\n  %-18s %s (model_type ", (*a)->name, (*a)->description);
        assert_non_null(strstr(buf, line));
    }
    assert_int_equal(na, 2);
    free(buf);
    if (gp_rank() == 0) printf("    %d criteria accepted and listed, %d architectures listed\n", n, na);
}

int main(int argc, char **argv) {
    tu_mpi_init(&argc, &argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_same_on_every_rank),
        cmocka_unit_test(test_print_loads_back),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_indented_lines),
        cmocka_unit_test(test_registries),
    };
    return tu_mpi_finish(cmocka_run_group_tests_name("job", tests, setup, teardown));
}
