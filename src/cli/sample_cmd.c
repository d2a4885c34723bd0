/* sample_cmd.c — `gaprune sample JOB.ini`: the representative calibration sample of each corpus
 * as its own command (sample.h); `gaprune stats` and `gaprune run` take it first by themselves. */
#include <stdio.h>

#include "gaprune/cli.h"
#include "gaprune/job.h"
#include "gaprune/lock.h"
#include "gaprune/log.h"
#include "gaprune/sample.h"

int gp_cmd_sample(int argc, char **argv) {
    gp_job job;
    gp_status rc = gp_cli_job("sample", "JOB.ini [--set section.key=value ...]", NULL, argc, argv, &job);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_job_free(&job);
        return rc;
    }
    gp_err err = {0};
    gp_sample_opts o;
    gp_sample_opts_from_job(&o, &job);
    gp_sample_report rep = {0};
    rc = gp_lock_take(job.out_dir, NULL, &err);
    if (!rc) rc = gp_sample_run(&o, NULL, &rep, &err);
    if (!rc)
        gp_log0("{\"command\":\"sample\",\"method\":\"%s\",\"k\":%lld,\"ranks\":%d,\"seconds\":%.3f,"
                "\"domain\":{\"candidates\":%lld,\"selected\":%lld,\"up_to_date\":%s,\"file\":\"%s\"},"
                "\"general\":{\"candidates\":%lld,\"selected\":%lld,\"up_to_date\":%s,\"file\":\"%s\"}}",
                gp_sample_method_name(job.sample.method), (long long)job.sample.k, gp_nranks(), rep.seconds, (long long)rep.candidates[0],
                (long long)rep.selected[0], rep.up_to_date[0] ? "true" : "false", rep.jsonl[0],
                (long long)rep.candidates[1], (long long)rep.selected[1], rep.up_to_date[1] ? "true" : "false",
                rep.jsonl[1]);
    gp_sample_report_free(&rep);
    gp_job_free(&job);
    return rc;
}
