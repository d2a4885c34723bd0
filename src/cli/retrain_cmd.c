/* retrain_cmd.c — `gaprune retrain JOB.ini --mask FILE`: masked retraining of the job's model
 * with the mask of FILE, written to OUT/retrained-<tag>/ (tag: FILE without mask- and .h5). */
#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/job.h"
#include "gaprune/lock.h"
#include "gaprune/log.h"
#include "gaprune/pipeline.h"
#include "gaprune/retrain.h"

int gp_cmd_retrain(int argc, char **argv) {
    const char *mask_path = NULL;
    const gp_opt extra[] = {
        {"mask", GP_OPT_STR, &mask_path, "FILE", "mask file written by gaprune score (required)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    gp_job job;
    gp_status rc = gp_cli_job("retrain", "JOB.ini --mask FILE [--set section.key=value ...]", extra, argc, argv, &job);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_job_free(&job);
        return rc;
    }
    gp_err err = {0};
    if (!mask_path) rc = gp_errf(&err, GP_EINPUT, "gaprune retrain: --mask FILE is required (see --help)");
    gp_mask_retrain mr = {0};
    if (!(rc = gp_agree(rc, &err))) rc = gp_mask_retrain_open(&job, mask_path, &mr, &err);
    if (!rc) rc = gp_lock_take(job.out_dir, NULL, &err);
    if (!rc) {
        gp_retrained rt;
        rc = gp_mask_retrain_run(&mr, &job, &rt, &err);
        if (!rc)
            gp_log0("{\"command\":\"retrain\",\"tag\":\"%s\",\"steps\":%d,\"first_loss\":%.6f,\"last_loss\":%.6f,"
                    "\"ranks\":%d,\"seconds\":%.3f,\"loop_s\":%.3f,\"allreduce_s\":%.3f,\"update_s\":%.3f,\"optimizer_sharding\":\"%s\","
                    "\"peak_rss_mb\":%.1f,\"activations\":\"%s\",\"output\":\"%s\"}",
                    mr.tag, rt.report.steps, rt.report.first_loss, rt.report.last_loss, gp_nranks(), rt.report.seconds,
                    rt.report.loop_seconds, rt.report.allreduce_seconds, rt.report.update_seconds,
                    gp_optimizer_sharding_name(rt.report.sharding), rt.report.peak_rss_mb,
                    rt.report.lean ? "lean" : "all", rt.model_dir);
        gp_retrained_free(&rt);
    }
    gp_mask_retrain_free(&mr);
    gp_job_free(&job);
    return rc;
}
