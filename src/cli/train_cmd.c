/* train_cmd.c — `gaprune train JOB.ini`: contrastive training of an embedding model (the
 * stage is train.h); this file parses the command line, takes the output folder's lock and
 * prints the summary line.
 */
#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/job.h"
#include "gaprune/lock.h"
#include "gaprune/log.h"
#include "gaprune/retrain.h"
#include "gaprune/train.h"

int gp_cmd_train(int argc, char **argv) {
    gp_job job;
    gp_status rc = gp_cli_job("train", "JOB.ini [--set section.key=value ...]", NULL, argc, argv, &job);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_job_free(&job);
        return rc;
    }
    gp_err err = {0};
    if (!(rc = gp_agree(gp_train_check(&job, &err), &err))) rc = gp_lock_take(job.out_dir, NULL, &err);
    gp_train_report rep = {0};
    if (!rc) rc = gp_train_run(&job, &rep, &err);
    if (!rc)
        gp_log0("{\"command\":\"train\",\"steps\":%d,\"first_loss\":%.6f,\"last_loss\":%.6f,\"seconds\":%.1f,"
                "\"optimizer_sharding\":\"%s\",\"peak_rss_mb\":%.1f,\"output\":\"%s\"}",
                rep.train.steps, rep.train.first_loss, rep.train.last_loss, rep.train.seconds,
                gp_optimizer_sharding_name(rep.train.sharding), rep.train.peak_rss_mb, rep.output);
    gp_train_report_free(&rep);
    gp_job_free(&job);
    return rc;
}
