/* test_mpi_mask.c — every rank scores its slice and gp_mask_build assembles the whole mask on
 * every rank; gp_mask_bcast sends rank 0's copy bit-packed (as a mask read back from its file
 * is): every rank holds the identical mask and, once applied, identical weights (run on 1, 2
 * and 4 ranks). */
#include "test_util.h"
#include "test_mpi.h"

#include <mpi.h>

#include "gaprune/job.h"
#include "gaprune/log.h"
#include "gaprune/score.h"

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void check_same_everywhere(uint64_t h) {
    unsigned long long lo = h, hi = h, v = h;
    MPI_Allreduce(&v, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&v, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    assert_true(lo == hi);
}

static void run_method(const char *method, double sparsity, const char *scope) {
    gp_job job;
    gp_job_defaults(&job);
    gp_err serr = {0};
    assert_int_equal(gp_scope_parse(scope, &job.prune.scope, &serr), GP_OK);
    gp_prune_opts cfg;
    gp_prune_opts_from_job(&cfg, &job);
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(FIXTURES "/bert-f32", &m, &err), GP_OK);
    char path[4200] = "";
    char *dir = NULL;
    if (gp_rank() == 0) {
        dir = tu_mkdtemp();
        snprintf(path, sizeof path, "%s/mask.h5", dir);
    }
    gp_mask mask = {0};
    gp_mask_request req = {gp_criterion_find(method), sparsity, NULL, path, "test"};
    assert_int_equal(gp_mask_build(&cfg, m, &req, &mask, &err), GP_OK);
    int64_t pruned0 = mask.pruned;
    MPI_Bcast(&pruned0, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    assert_int_equal(mask.pruned, pruned0); /* built the same everywhere */
    gp_mask_bcast(&mask, m);
    uint64_t h = 14695981039346656037ull;
    int64_t zeros = 0;
    for (int i = 0; i < mask.n; i++) {
        h = fnv(h, &mask.param[i], sizeof(int));
        h = fnv(h, mask.keep[i], (size_t)(mask.numel[i] + 7) / 8);
        for (int64_t k = 0; k < mask.numel[i]; k++) zeros += !((mask.keep[i][k >> 3] >> (k & 7)) & 1);
    }
    assert_int_equal(zeros, pruned0);
    assert_int_equal(mask.pruned, pruned0);
    check_same_everywhere(h);
    gp_mask_apply(&mask, m);
    check_same_everywhere(fnv(14695981039346656037ull, m->params, m->table.total * sizeof(float)));
    if (gp_rank() == 0)
        printf("    %s %s: %lld of %lld pruned, identical on %d ranks\n", method, scope, (long long)mask.pruned,
               (long long)mask.total, gp_nranks());
    gp_mask_free(&mask);
    gp_model_free(m);
    gp_job_free(&job);
    if (dir) {
        tu_rmtree(dir);
        free(dir);
    }
}

static void test_bcast(void **state) {
    (void)state;
    run_method("magnitude", 0.5, "global");
    run_method("random", 0.3, "layer");
    run_method("magnitude", 0.5, "2:4");
}

int main(int argc, char **argv) {
    tu_mpi_init(&argc, &argv, 0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bcast)};
    return tu_mpi_finish(cmocka_run_group_tests_name("mask broadcast", tests, NULL, NULL));
}
