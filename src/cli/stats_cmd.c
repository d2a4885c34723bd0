/* stats_cmd.c — `gaprune stats JOB.ini`: the statistics pass as its own command (with
 * sample.method set, the calibration sample first, skipped when complete). Refuses first, with exit
 * 2, when gaprune plan's numbers say a stage will not fit the memory per rank (gp_plan_guard). */
#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/job.h"
#include "gaprune/lock.h"
#include "gaprune/log.h"
#include "gaprune/pipeline.h"

int gp_cmd_stats(int argc, char **argv) {
    gp_job job;
    gp_status rc = gp_cli_job("stats", "JOB.ini [--set section.key=value ...]", NULL, argc, argv, &job);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_job_free(&job);
        return rc;
    }
    gp_err err = {0};
    gp_stats_job sj;
    rc = gp_stats_job_open(&job, "stats", &sj, &err);
    if (!rc) rc = gp_lock_take(job.out_dir, NULL, &err);
    if (!rc) {
        rc = gp_stats_job_run(&sj, &job, &err);
        const gp_stats_report rep = sj.report;
        if (!rc)
            gp_log0("{\"command\":\"stats\",\"up_to_date\":%s,\"triplets\":%lld,\"ranks\":%d,\"seconds\":%.3f,"
                    "\"triplets_per_s\":%.2f,\"loop_s\":%.3f,\"allreduce_s\":%.3f,\"reduce_s\":%.3f,\"checkpoint_s\":%.3f,\"write_s\":%.3f,"
                    "\"peak_rss_mb\":%.1f,\"accumulators\":\"%s\",\"activations\":\"%s\",\"settings_hash\":\"%s\"}",
                    rep.up_to_date ? "true" : "false", (long long)rep.triplets, gp_nranks(), rep.seconds,
                    rep.seconds > 0 ? (double)rep.triplets / rep.seconds : 0.0, rep.loop_s, rep.allreduce_s, rep.reduce_s, rep.checkpoint_s,
                    rep.write_s, rep.peak_rss_mb, rep.up_to_date ? "none" : rep.sharded ? "sharded" : "replicated",
                    rep.up_to_date ? "none" : rep.lean ? "lean" : "all", rep.settings_hash);
    }
    gp_stats_job_free(&sj);
    gp_job_free(&job);
    return rc;
}
