/* run_cmd.c — `gaprune run JOB.ini`: every stage, resumable, and the report (the stages are
 * run.h); this file parses the options. */
#include "gaprune/cli.h"
#include "gaprune/job.h"
#include "gaprune/log.h"
#include "gaprune/run.h"

int gp_cmd_run(int argc, char **argv) {
    double t0 = gp_now();
    const char *only = NULL;
    int list = 0; /* GP_OPT_FLAG sets an int */
    const gp_opt extra[] = {
        {"only", GP_OPT_STR, &only, "METHOD:SPARSITY",
         "just this mask (and its retraining and evaluations): no dense evaluation, no dense retraining, no report "
         "(job arrays)"},
        {"list", GP_OPT_FLAG, &list, NULL,
         "print the run's masks, one METHOD:SPARSITY a line (what --only takes), and stop; the dense retraining "
         "(retrain.methods = ..., dense) is not one: the plain run does it"},
        {NULL, 0, NULL, NULL, NULL},
    };
    gp_job job;
    gp_status rc = gp_cli_job("run", "JOB.ini [--only METHOD:SPARSITY] [--set section.key=value ...]", extra, argc, argv, &job);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_job_free(&job);
        return rc;
    }
    gp_err err = {0};
    rc = gp_run(&job, only, list, t0, &err);
    gp_job_free(&job);
    return rc;
}
