/* main.c — MPI start-up, dispatch to a subcommand, shutdown. */
#include <mpi.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/kernels.h"
#include "gaprune/lock.h"
#include "gaprune/log.h"
#include "gaprune/testhook.h"

/* The resume tests' fault hooks come through the environment of the program only: the
 * library never reads them there (testhook.h). */
static void testhooks_from_env(void) {
    gp_testhooks h = GP_TESTHOOKS_OFF;
    const char *v;
    if ((v = getenv("GAPRUNE_TEST_KILL_AFTER_CHECKPOINT"))) h.kill_after_checkpoint = atoi(v);
    if ((v = getenv("GAPRUNE_TEST_SIGNAL_AT_STEP"))) h.signal_at_step = atoll(v);
    if ((v = getenv("GAPRUNE_TEST_UNIT_DELAY_MS"))) h.unit_delay_ms = atoi(v);
    if ((v = getenv("GAPRUNE_TEST_EVAL_QUERY_BLOCK"))) h.eval_query_block = atoll(v);
    if ((v = getenv("GAPRUNE_TEST_FAIL_WRITE")) && *v) h.fail_write = v;
    if ((v = getenv("GAPRUNE_TEST_FAIL_WRITE_AFTER"))) h.fail_write_after = atoi(v);
    if ((v = getenv("GAPRUNE_TEST_FAIL_WRITE_ERRNO"))) h.fail_write_errno = strcmp(v, "EIO") ? atoi(v) : EIO;
    gp_testhook_set(&h);
    /* the thread tests run the tiny fixture models with every kernel loop threaded, with the
     * matmuls split or not */
    if ((v = getenv("GAPRUNE_TEST_PAR_MIN"))) gp_set_par_min(atoll(v));
    if ((v = getenv("GAPRUNE_TEST_SGEMM_MIN"))) gp_set_sgemm_min(atoll(v));
}

/* OMP_NUM_THREADS decides the threads of a rank. Unset, ranks that share a node take one thread
 * each: libgomp's default, every CPU the rank may run on, would put ranks × CPUs threads on the
 * node whenever mpirun binds ranks to a socket (its default beyond 2 ranks) or not at all. */
static void threads_default(void) {
    if (!getenv("OMP_NUM_THREADS") && gp_ranks_on_node() > 1) gp_set_threads(1);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    gp_log_init(rank, nranks);
    threads_default();
    testhooks_from_env();
    int rc = gp_cli_main(argc, argv);
    gp_lock_release(); /* the command's output folder, whatever it returned */
    MPI_Finalize();
    return rc;
}
