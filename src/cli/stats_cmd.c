/* stats_cmd.c — `gaprune stats JOB.ini`: the statistics pass as its own command (with
 * sample.method set, the calibration sample first, skipped when complete). Refuses first, with exit
 * 2, when gaprune plan's numbers say a stage will not fit the memory per rank (gp_plan_guard). */
#include <stdbool.h>
#include <string.h>

#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/job.h"
#include "gaprune/lock.h"
#include "gaprune/log.h"
#include "gaprune/model.h"
#include "gaprune/pipeline.h"
#include "gaprune/plan.h"
#include "gaprune/sample.h"
#include "gaprune/score.h"
#include "gaprune/stats.h"

int gp_cmd_stats(int argc, char **argv) {
    gp_job job;
    gp_status rc = gp_cli_job("stats", "JOB.ini [--set section.key=value ...]", NULL, argc, argv, &job);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_job_free(&job);
        return rc;
    }
    gp_err err = {0};
    gp_model *m = NULL;
    /* a stage that will not fit the memory per rank stops now, not hours in */
    const unsigned stages = GP_PLAN_BIT(GP_PLAN_STATS) | (job.sample.method != GP_SAMPLE_NONE ? GP_PLAN_BIT(GP_PLAN_SAMPLE) : 0);
    rc = gp_plan_guard(&job, "stats", stages, &err);
    if (!rc) rc = gp_model_load(job.model.path, &m, &err);
    if (!rc) gp_job_model_settings(&job, m);
    if (!rc) { /* a scope or layers the model cannot take fail now, not after the statistics */
        gp_prune_opts po;
        gp_prune_opts_from_job(&po, &job);
        rc = gp_prune_check(&po, m, &err);
        gp_stats_opts so;
        gp_stats_opts_from_job(&so, &job);
        if (!rc) rc = gp_stats_check(&so, m, &err); /* before the sample too */
    }
    rc = gp_agree(rc, &err);
    if (!rc) rc = gp_lock_take(job.out_dir, NULL, &err);
    gp_sample_report samples = {0};
    const bool sampled = job.sample.method != GP_SAMPLE_NONE;
    if (!rc && sampled) {
        gp_sample_opts so;
        gp_sample_opts_from_job(&so, &job);
        rc = gp_sample_run(&so, m, &samples, &err);
    }
    if (!rc) {
        gp_stats_opts o;
        gp_stats_opts_from_job(&o, &job);
        gp_stats_report rep;
        rc = gp_stats_run(&o, m, sampled ? &samples : NULL, &rep, &err);
        if (!rc)
            gp_log0("{\"command\":\"stats\",\"up_to_date\":%s,\"triplets\":%lld,\"ranks\":%d,\"seconds\":%.3f,"
                    "\"triplets_per_s\":%.2f,\"loop_s\":%.3f,\"allreduce_s\":%.3f,\"reduce_s\":%.3f,\"checkpoint_s\":%.3f,\"write_s\":%.3f,"
                    "\"peak_rss_mb\":%.1f,\"accumulators\":\"%s\",\"settings_hash\":\"%s\"}",
                    rep.up_to_date ? "true" : "false", (long long)rep.triplets, gp_nranks(), rep.seconds,
                    rep.seconds > 0 ? (double)rep.triplets / rep.seconds : 0.0, rep.loop_s, rep.allreduce_s, rep.reduce_s, rep.checkpoint_s,
                    rep.write_s, rep.peak_rss_mb, rep.up_to_date ? "none" : rep.sharded ? "sharded" : "replicated",
                    rep.settings_hash);
    }
    gp_sample_report_free(&samples);
    gp_model_free(m);
    gp_job_free(&job);
    return rc;
}
