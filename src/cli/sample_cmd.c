/* sample_cmd.c — `gaprune sample JOB.ini`: the representative calibration sample of each corpus
 * as its own command (sample.h); `gaprune stats` and `gaprune run` take it first by themselves. */
#include <stdio.h>

#include "gaprune/cli.h"
#include "gaprune/config.h"
#include "gaprune/log.h"
#include "gaprune/sample.h"

int gp_cmd_sample(int argc, char **argv) {
    gp_config cfg;
    gp_status rc = gp_cli_job("sample", "JOB.ini [--set section.key=value ...]", NULL, argc, argv, &cfg);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_config_free(&cfg);
        return rc;
    }
    gp_err err = {0};
    gp_sample_report rep;
    rc = gp_sample_run(&cfg, NULL, &rep, &err);
    if (!rc)
        gp_log0("{\"command\":\"sample\",\"method\":\"%s\",\"k\":%lld,\"ranks\":%d,\"seconds\":%.3f,"
                "\"domain\":{\"candidates\":%lld,\"selected\":%lld,\"up_to_date\":%s,\"file\":\"%s\"},"
                "\"general\":{\"candidates\":%lld,\"selected\":%lld,\"up_to_date\":%s,\"file\":\"%s\"}}",
                cfg.sample_method, (long long)cfg.sample_k, gp_nranks(), rep.seconds, (long long)rep.candidates[0],
                (long long)rep.selected[0], rep.up_to_date[0] ? "true" : "false", rep.jsonl[0],
                (long long)rep.candidates[1], (long long)rep.selected[1], rep.up_to_date[1] ? "true" : "false",
                rep.jsonl[1]);
    gp_sample_report_free(&rep);
    gp_config_free(&cfg);
    return rc;
}
