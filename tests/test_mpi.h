/* test_mpi.h — the start and end of the test_mpi_* programs (run on 1, 2 and 4 ranks by
 * tests/run_tests.sh): MPI and logging up, one report (rank 0's), the worst result over ranks.
 *
 * Usage:
 *     int main(int argc, char **argv) {
 *         tu_mpi_init(&argc, &argv, 1);
 *         const struct CMUnitTest tests[] = {...};
 *         return tu_mpi_finish(cmocka_run_group_tests_name("name", tests, NULL, NULL));
 *     }
 */
#pragma once

#include <mpi.h>
#include <stdio.h>

#include "gaprune/log.h"

/* Returns this rank; log_level as gp_log_set_level (0 keeps the library quiet). */
static inline int tu_mpi_init(int *argc, char ***argv, int log_level) {
    MPI_Init(argc, argv);
    int rank, n;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    gp_log_init(rank, n);
    gp_log_set_level(log_level);
    if (rank != 0 && !freopen("/dev/null", "w", stdout)) perror("freopen"); /* one report, from rank 0 */
    return rank;
}

/* failed: this rank's cmocka result. Returns the largest over ranks, after MPI_Finalize. */
static inline int tu_mpi_finish(int failed) {
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any;
}
