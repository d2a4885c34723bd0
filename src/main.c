/* main.c — MPI start-up, dispatch to a subcommand, shutdown. */
#include <mpi.h>

#include "gaprune/cli.h"
#include "gaprune/log.h"

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    gp_log_init(rank, nranks);
    int rc = gp_cli_main(argc, argv);
    MPI_Finalize();
    return rc;
}
