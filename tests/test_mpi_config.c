/* test_mpi_config.c — job files: defaults, types, ranges, unknown keys with file:line, --set
 * overrides, escapes, and every rank holding the same configuration (run on 1, 2 and 4 ranks). */
#include "test_util.h"

#include <mpi.h>

#include "gaprune/config.h"
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
    gp_config c;
    gp_err err = {0};
    assert_int_equal(gp_config_load(&c, g_path, NULL, 0, &err), GP_OK);
    assert_string_equal(c.model_path, "models/x");
    assert_string_equal(c.query_instruction, "Instruct: find\nQuery:");
    assert_string_equal(c.domain, "d.json");
    assert_int_equal(c.max_samples, 100);
    assert_int_equal(c.on_bad_record, GP_BAD_SKIP);
    assert_string_equal(c.sparsity, "0.3, 0.5,0.6");
    assert_string_equal(c.scope, "2:4");
    assert_true(c.save_scores);
    assert_float_equal(c.alpha, 0.25, 0);
    /* defaults of DESIGN.md §3 */
    assert_int_equal(c.max_length, 512);
    assert_int_equal(c.fisher_batch, 1);
    assert_int_equal(c.checkpoint_every, 100);
    assert_string_equal(c.alignment, "tensor");
    assert_float_equal(c.beta, 1.0, 0);
    assert_float_equal(c.gamma, 0.5, 0);
    assert_float_equal(c.lr, 2e-5, 0);
    assert_int_equal(c.retrain_batch, 16);
    assert_string_equal(c.out_dir, "out/my-job");
    char *v = gp_config_get(&c, "data", "on_bad_record");
    assert_string_equal(v, "skip");
    free(v);
    gp_config_free(&c);
}

static void test_overrides(void **state) {
    (void)state;
    write_job("[stats]\nfisher_batch = 4\n");
    const char *sets[] = {"stats.fisher_batch=2", "output.dir=elsewhere", "model.query_instruction=a\\tb"};
    gp_config c;
    gp_err err = {0};
    assert_int_equal(gp_config_load(&c, g_path, sets, 3, &err), GP_OK);
    assert_int_equal(c.fisher_batch, 2);
    assert_string_equal(c.out_dir, "elsewhere");
    assert_string_equal(c.query_instruction, "a\tb");
    gp_config_free(&c);
    const char *bad[] = {"stats.fisherbatch=2"};
    assert_int_equal(gp_config_load(&c, g_path, bad, 1, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "--set"));
    assert_non_null(strstr(err.msg, "fisherbatch"));
    gp_config_free(&c);
    const char *bad2[] = {"nodot=3"};
    assert_int_equal(gp_config_load(&c, g_path, bad2, 1, &err), GP_EINPUT);
    gp_config_free(&c);
    /* query_task becomes Qwen3-Embedding's own prompt form, with the query right after "Query:" */
    const char *task[] = {"model.query_task=Given a question, find answers"};
    assert_int_equal(gp_config_load(&c, g_path, task, 1, &err), GP_OK);
    assert_string_equal(c.query_instruction, "Instruct: Given a question, find answers\nQuery:");
    gp_config_free(&c);
    const char *both[] = {"model.query_task=t", "model.query_instruction=q: "};
    assert_int_equal(gp_config_load(&c, g_path, both, 2, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "query_task and query_instruction"));
    gp_config_free(&c);
}

static void expect_error(const char *text, const char *needle) {
    write_job(text);
    gp_config c;
    gp_err err = {0};
    assert_int_equal(gp_config_load(&c, g_path, NULL, 0, &err), GP_EINPUT);
    if (gp_rank() == 0) printf("    %s\n", err.msg);
    if (!strstr(err.msg, needle)) fail_msg("expected \"%s\" in \"%s\"", needle, err.msg);
    gp_config_free(&c);
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
    gp_config c;
    gp_err err = {0};
    assert_int_equal(gp_config_load(&c, "/no/such/job.ini", NULL, 0, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "/no/such/job.ini"));
    gp_config_free(&c);
}

/* Every rank parsed the same bytes: the printed configurations are identical. */
static void test_same_on_every_rank(void **state) {
    (void)state;
    write_job("[model]\npath = m\n[prune]\nmethods = gaprune, magnitude\n");
    gp_config c;
    gp_err err = {0};
    assert_int_equal(gp_config_load(&c, g_path, NULL, 0, &err), GP_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    gp_config_print(&c, f);
    fclose(f);
    unsigned long h = 5381, h0;
    for (size_t i = 0; i < len; i++) h = h * 33 + (unsigned char)buf[i];
    h0 = h;
    MPI_Bcast(&h0, 1, MPI_UNSIGNED_LONG, 0, MPI_COMM_WORLD);
    assert_true(h == h0);
    assert_non_null(strstr(buf, "methods = gaprune, magnitude"));
    free(buf);
    gp_config_free(&c);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, n;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    gp_log_init(rank, n);
    if (rank != 0) freopen("/dev/null", "w", stdout); /* one report, from rank 0 */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_same_on_every_rank),
    };
    int failed = cmocka_run_group_tests_name("config", tests, setup, teardown);
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any;
}
