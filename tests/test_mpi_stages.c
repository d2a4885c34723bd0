/* test_mpi_stages.c — stages called directly with options made here, no job file and no binary,
 * on 1, 2 and 4 ranks: the evaluation stage against the brute-force ranking of eval_ref.h, the
 * paired comparisons, their resamples split over the ranks, against numpy (compare_ref.h). */
#include "compare_ref.h"
#include "eval_ref.h"
#include "test_mpi.h"

#include <mpi.h>

#include "gaprune/log.h"

static void test_eval_stage(void **state) {
    (void)state;
    gp_retrieval_metrics want, got;
    brute_force(&want);
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(FIXTURES "/bert-f32", &m, &err), GP_OK);
    const char *sets[] = {FIXTURES "/beir-tiny"};
    gp_eval_opts o = {.retrieval = sets, .n_retrieval = 1, .batch = 3, .max_length = 512, .query_instruction = "",
                      .job_path = "test_mpi_stages"};
    int64_t nq = 0;
    assert_int_equal(gp_eval_retrieval(&o, m, sets[0], &got, &nq, NULL, &err), GP_OK);
    if (gp_rank() == 0) { /* the merged ranking is rank 0's */
        assert_int_equal(nq, 4);
        assert_true(fabs(got.ndcg_at_10 - want.ndcg_at_10) < 1e-6);
        assert_true(fabs(got.mrr_at_10 - want.mrr_at_10) < 1e-6);
        assert_true(fabs(got.map_at_100 - want.map_at_100) < 1e-6);
        assert_true(fabs(got.recall_at_10 - 0.75) < 1e-12); /* q4 has no relevant doc */
        printf("    gp_eval_retrieval on %d rank%s: nDCG@10 %.4f (brute force %.4f)\n", gp_nranks(), gp_nranks() > 1 ? "s" : "",
               got.ndcg_at_10, want.ndcg_at_10);
    }
    /* a missing folder is bad input, named, on every rank */
    assert_int_equal(gp_eval_retrieval(&o, m, "/no/such/beir", &got, &nq, NULL, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "/no/such/beir"));
    gp_model_free(m);
}

/* The report's comparisons split their resamples over the ranks (and threads): every rank gets
 * numpy's results, whatever the number of ranks. */
static void test_paired_comparisons_ranks(void **state) {
    (void)state;
    assert_int_equal(tu_check_compare_fixture(2), 7);
    printf("    the paired comparisons on %d rank%s: numpy's results\n", gp_nranks(), gp_nranks() > 1 ? "s" : "");
}

int main(int argc, char **argv) {
    tu_mpi_init(&argc, &argv, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_stage),
        cmocka_unit_test(test_paired_comparisons_ranks),
    };
    return tu_mpi_finish(cmocka_run_group_tests_name("stages", tests, NULL, NULL));
}
