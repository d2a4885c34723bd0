/* eval_cmd.c — `gaprune eval JOB.ini --model DIR`: the [eval] sets for one model folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/job.h"
#include "gaprune/eval.h"
#include "gaprune/fs.h"
#include "gaprune/hash.h"
#include "gaprune/json.h"
#include "gaprune/lock.h"
#include "gaprune/log.h"
#include "gaprune/model.h"
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
    const char *dir = model_dir ? model_dir : job.model.path;
    gp_model *m = NULL;
    rc = gp_model_load(dir, &m, &err);
    if (!rc) gp_job_model_settings(&job, m);
    rc = gp_agree(rc, &err);
    if (!rc) rc = gp_lock_take(job.out_dir, NULL, &err);
    if (!rc) {
        char tag[256];
        snprintf(tag, sizeof tag, "%s", dir);
        size_t l = strlen(tag);
        while (l > 1 && tag[l - 1] == '/') tag[--l] = '\0';
        const char *base = strrchr(tag, '/') ? strrchr(tag, '/') + 1 : tag;
        char name[300];
        snprintf(name, sizeof name, "eval-%s.json", base);
        char *out = gp_path_join(job.out_dir, name);
        /* two folders of the same name (a/model, b/model) would share eval-model.json: a file that
         * names another folder is kept, and this one's name gets a short hash of the path */
        int other = 0;
        if (gp_rank() == 0 && gp_file_exists(out)) {
            cJSON *prev = NULL;
            gp_err ignored = {0};
            if (!gp_json_load(out, &prev, &ignored)) {
                const cJSON *pm = cJSON_GetObjectItemCaseSensitive(prev, "model");
                other = cJSON_IsString(pm) && strcmp(pm->valuestring, dir) != 0;
            }
            cJSON_Delete(prev);
        }
        if (gp_allreduce_max_int(other)) {
            char hex[65];
            gp_sha256 *h = gp_sha256_init();
            gp_sha256_update(h, dir, strlen(dir));
            gp_sha256_final(h, hex);
            snprintf(name, sizeof name, "eval-%s-%.8s.json", base, hex);
            char *unique = gp_path_join(job.out_dir, name);
            gp_warn("%s holds the evaluation of another folder called %s; writing %s instead", out, base, unique);
            free(out);
            out = unique;
        }
        cJSON *res = NULL;
        gp_eval_opts o;
        gp_eval_opts_from_job(&o, &job);
        rc = gp_eval_model(&o, m, base, NULL, NULL, out, NULL, &res, &err);
        if (!rc && res) {
            const cJSON *ms = cJSON_GetObjectItemCaseSensitive(res, "main_score_mean");
            char score[32] = "null"; /* JSON has no NaN */
            if (cJSON_IsNumber(ms)) snprintf(score, sizeof score, "%.6f", ms->valuedouble);
            gp_log0("{\"command\":\"eval\",\"model\":\"%s\",\"main_score_mean\":%s,\"output\":\"%s\"}", base, score,
                    out);
        }
        cJSON_Delete(res);
        free(out);
    }
    gp_model_free(m);
    gp_job_free(&job);
    return rc;
}
