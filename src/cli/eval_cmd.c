/* eval_cmd.c — `gaprune eval JOB.ini --model DIR`: the [eval] sets for one model folder. */
#include "gaprune/cli.h"
#include "gaprune/job.h"
#include "gaprune/lock.h"
#include "gaprune/log.h"
#include "gaprune/pipeline.h"

int gp_cmd_eval(int argc, char **argv) {
    const char *model_dir = NULL;
    const gp_opt extra[] = {
        {"model", GP_OPT_STR, &model_dir, "DIR", "model folder to evaluate (default: model.path)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    gp_job job;
    gp_status rc = gp_cli_job("eval", "JOB.ini [--model DIR] [--set section.key=value ...]", extra, argc, argv, &job);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_job_free(&job);
        return rc;
    }
    gp_err err = {0};
    gp_eval_folder ev;
    rc = gp_eval_folder_open(&job, model_dir, &ev, &err);
    if (!rc) rc = gp_lock_take(job.out_dir, NULL, &err);
    if (!rc) rc = gp_eval_folder_run(&ev, &job, &err);
    if (!rc && ev.scored)
        gp_log0("{\"command\":\"eval\",\"model\":\"%s\",\"main_score_mean\":%s,\"output\":\"%s\"}", ev.base, ev.score,
                ev.out);
    gp_eval_folder_free(&ev);
    gp_job_free(&job);
    return rc;
}
