/* test_mpi_dist.c — gp_allreduce_sum_rows_f32, the sparse sum of a token-embedding gradient:
 * every rank writes values into its own rows (overlapping between ranks, unsorted, repeated in
 * the list), and every rank must end with the exact sums in those rows and zeros elsewhere, on
 * the packed path (few rows in use) and the dense fallback (most rows in use); the reduce-scatters
 * and the block gather over uneven blocks. Run on 1, 2 and 4 ranks. */
#include "test_util.h"
#include "test_mpi.h"

#include <mpi.h>

#include "gaprune/check.h"
#include "gaprune/dist.h"
#include "gaprune/testhook.h"
#include "gaprune/log.h"

enum { NROWS = 1000, NCOLS = 7 };

/* Rank r uses every stride-th row (shared by all ranks) and every stride-th from its own offset. */
static int uses(int rank, int row, int stride) { return row % stride == 0 || (row + 3 * rank) % stride == 0; }

/* A small integer, so every sum is exact whatever the order over ranks. */
static float value(int rank, int row, int col) { return (float)((rank + 1) * 100 + (row % 17) * 3 + col); }

static void check(int stride) {
    const int rank = gp_rank(), P = gp_nranks();
    float *mat = calloc((size_t)NROWS * NCOLS, sizeof(float));
    int32_t *rows = malloc(2 * NROWS * sizeof(int32_t));
    int nr = 0;
    for (int r = NROWS - 1; r >= 0; r--) /* descending, and each listed twice */
        if (uses(rank, r, stride)) {
            rows[nr++] = r;
            rows[nr++] = r;
            for (int c = 0; c < NCOLS; c++) mat[(size_t)r * NCOLS + c] = value(rank, r, c);
        }
    gp_allreduce_sum_rows_f32(mat, NROWS, NCOLS, rows, nr);
    int used = 0;
    for (int r = 0; r < NROWS; r++) {
        int any = 0;
        for (int c = 0; c < NCOLS; c++) {
            float want = 0;
            for (int q = 0; q < P; q++)
                if (uses(q, r, stride)) want += value(q, r, c), any = 1;
            if (mat[(size_t)r * NCOLS + c] != want)
                fail_msg("rank %d, row %d col %d: %g, want %g", rank, r, c, mat[(size_t)r * NCOLS + c], want);
        }
        used += any;
    }
    if (rank == 0) printf("    %d ranks, %d of %d rows in use: every row exact\n", P, used, NROWS);
    free(mat);
    free(rows);
}

static void test_few_rows(void **state) {
    (void)state;
    check(13); /* the packed path */
}

static void test_most_rows(void **state) {
    (void)state;
    check(1); /* every row: the dense fallback */
}

static void test_no_rows_here(void **state) {
    (void)state;
    /* rank 1 has no triplets this step (an empty list), the others have rows */
    const int rank = gp_rank();
    float *mat = calloc((size_t)NROWS * NCOLS, sizeof(float));
    int32_t row = 5 + rank;
    if (rank != 1) mat[(size_t)row * NCOLS] = 1.0f;
    gp_allreduce_sum_rows_f32(mat, NROWS, NCOLS, &row, rank != 1);
    for (int r = 0; r < NROWS; r++) {
        float want = r >= 5 && r < 5 + gp_nranks() && r != 6 ? 1.0f : 0.0f;
        assert_true(mat[(size_t)r * NCOLS] == want);
    }
    free(mat);
}

/* Non-blocking reductions of segments into owner blocks over uneven blocks (one empty, one
 * longer than a piece of GP_DIST_RS_ROUND), the segments cutting blocks anywhere, several in
 * flight at once, equal the sums exactly (added to what the block held). */
static void test_reduce_add(void **state) {
    (void)state;
    const int P = gp_nranks(), r = gp_rank();
    int64_t *b = calloc((size_t)P + 1, sizeof(int64_t));
    /* rank 1 owns nothing; the last block is longer than one piece */
    for (int q = 0; q < P; q++) b[q + 1] = b[q] + (q == 1 ? 0 : q == P - 1 ? GP_DIST_RS_ROUND + 5 : 1000 * (q + 1) + 7);
    const int64_t n = b[P];
    float *x = malloc((size_t)n * sizeof(float)), *mine = malloc((size_t)(b[r + 1] - b[r] + 1) * sizeof(float));
    for (int64_t i = 0; i < b[r + 1] - b[r]; i++) mine[i] = 1.0f; /* the sums are added to what is there */
    for (int64_t i = 0; i < n; i++) x[i] = (float)((i % 97) * (r + 1)) * 0.25f; /* exact in float */
    /* three segments, cut at 1/3 and 2/3 of the vector (inside blocks), all in flight */
    gp_reduce_pending p = {0};
    const int64_t cut[4] = {0, n / 3, 2 * n / 3, n};
    for (int k = 0; k < 3; k++) {
        gp_reduce_add_start(x + cut[k], cut[k], cut[k + 1], b, mine, &p);
        gp_reduce_add_progress(&p);
    }
    gp_reduce_add_wait(&p);
    gp_reduce_pending_free(&p);
    const float ranks_sum = (float)(P * (P + 1) / 2);
    for (int64_t i = b[r]; i < b[r + 1]; i++)
        if (mine[i - b[r]] != 1.0f + (float)(i % 97) * 0.25f * ranks_sum) fail_msg("element %lld: %g", (long long)i, mine[i - b[r]]);
    free(x), free(mine), free(b);
    if (r == 0) printf("    reductions of 3 segments into %d uneven blocks (one empty, one of two pieces), in flight together: exact\n", P);
}

/* The in-place reduce-scatter (ZeRO-2's gradient) leaves the sum in the owner's block and the
 * rest as it was; the block gather (the weights after a sharded update) then puts every
 * owner's block everywhere: over the same uneven blocks, exact. */
static void test_scatter_in_place_and_gather(void **state) {
    (void)state;
    const int P = gp_nranks(), r = gp_rank();
    int64_t *b = calloc((size_t)P + 1, sizeof(int64_t));
    for (int q = 0; q < P; q++)
        b[q + 1] = b[q] + (q == 1 ? 0 : q == P - 1 ? ((int64_t)1 << 22) / P + 5 : 1000 * (q + 1) + 7);
    const int64_t n = b[P];
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = (float)((i % 97) * (r + 1)) * 0.25f;
    gp_reduce_scatter_f32(x, b);
    const float ranks_sum = (float)(P * (P + 1) / 2);
    for (int64_t i = 0; i < n; i++) {
        const float want = (float)(i % 97) * 0.25f * (i >= b[r] && i < b[r + 1] ? ranks_sum : (float)(r + 1));
        if (x[i] != want) fail_msg("scattered element %lld: %g, want %g", (long long)i, x[i], want);
    }
    gp_allgather_blocks_f32(x, b);
    for (int64_t i = 0; i < n; i++)
        if (x[i] != (float)(i % 97) * 0.25f * ranks_sum) fail_msg("gathered element %lld: %g", (long long)i, x[i]);
    /* the path of blocks past an int (a broadcast per owner), on these: every rank's own block
     * marked with its rank, the others' stale */
    gp_testhooks h = *gp_testhook_get();
    h.gather_one_call_max = n - 1;
    gp_testhook_set(&h);
    for (int64_t i = 0; i < n; i++) x[i] = i >= b[r] && i < b[r + 1] ? (float)(i % 89) + 0.5f * (float)r : -1.0f;
    gp_allgather_blocks_f32(x, b);
    h.gather_one_call_max = 0;
    gp_testhook_set(&h);
    for (int q = 0; q < P; q++)
        for (int64_t i = b[q]; i < b[q + 1]; i++)
            if (x[i] != (float)(i % 89) + 0.5f * (float)q) fail_msg("gathered (per owner) element %lld of rank %d: %g", (long long)i, q, x[i]);
    free(x), free(b);
    if (r == 0) printf("    in-place reduce-scatter and block gather (one call, and per owner) over %d uneven blocks: exact\n", P);
}

int main(int argc, char **argv) {
    tu_mpi_init(&argc, &argv, 0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_few_rows), cmocka_unit_test(test_most_rows),
                                       cmocka_unit_test(test_no_rows_here), cmocka_unit_test(test_reduce_add),
                                       cmocka_unit_test(test_scatter_in_place_and_gather)};
    return tu_mpi_finish(cmocka_run_group_tests_name("sparse row allreduce", tests, NULL, NULL));
}
