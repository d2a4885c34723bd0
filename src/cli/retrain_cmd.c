/* retrain_cmd.c — `gaprune retrain JOB.ini --mask FILE`: masked retraining of the job's model
 * with the mask of FILE, written to OUT/retrained-<tag>/ (tag: FILE without mask- and .h5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/cli.h"
#include "gaprune/job.h"
#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/hash.h"
#include "gaprune/lock.h"
#include "gaprune/log.h"
#include "gaprune/mask.h"
#include "gaprune/mask_file.h"
#include "gaprune/model.h"
#include "gaprune/pipeline.h"

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
    gp_model *m = NULL;
    gp_mask mask = {0};
    char mask_hash[80] = "";
    if (!rc) rc = gp_model_load(job.model.path, &m, &err);
    if (!rc) gp_job_model_settings(&job, m);
    if (!rc && gp_rank() == 0) {
        rc = gp_mask_read(mask_path, m, &mask, &err);
        hid_t f = rc ? -1 : gp_h5_open_quiet(mask_path);
        char *h = f >= 0 ? gp_h5_read_attr_str(f, GP_MASK_ATTR_SETTINGS_HASH) : NULL;
        if (h && *h) snprintf(mask_hash, sizeof mask_hash, "%s", h);
        else if (!rc) rc = gp_sha256_file(mask_path, mask_hash, &err);
        free(h);
        if (f >= 0) H5Fclose(f);
    }
    if ((rc = gp_agree(rc, &err))) goto done;
    if ((rc = gp_lock_take(job.out_dir, NULL, &err))) goto done;
    gp_bcast_bytes(mask_hash, sizeof mask_hash, 0);
    gp_mask_bcast(&mask, m);
    gp_mask_apply(&mask, m);
    {
        char tag[256];
        const char *b = strrchr(mask_path, '/') ? strrchr(mask_path, '/') + 1 : mask_path;
        const size_t pl = strlen(GP_MASK_FILE_PREFIX);
        snprintf(tag, sizeof tag, "%s", strncmp(b, GP_MASK_FILE_PREFIX, pl) ? b : b + pl);
        size_t l = strlen(tag);
        if (l > 3 && !strcmp(tag + l - 3, ".h5")) tag[l - 3] = '\0';
        gp_train_opts o;
        gp_train_opts_retrain(&job, &o);
        gp_retrained rt;
        rc = gp_retrain_step(&o, m, &mask, tag, mask_path, mask_hash, job.out_dir, &rt, &err);
        if (!rc)
            gp_log0("{\"command\":\"retrain\",\"tag\":\"%s\",\"steps\":%d,\"first_loss\":%.6f,\"last_loss\":%.6f,"
                    "\"ranks\":%d,\"seconds\":%.3f,\"loop_s\":%.3f,\"allreduce_s\":%.3f,\"update_s\":%.3f,\"optimizer_sharding\":\"%s\","
                    "\"peak_rss_mb\":%.1f,\"output\":\"%s\"}",
                    tag, rt.report.steps, rt.report.first_loss, rt.report.last_loss, gp_nranks(), rt.report.seconds,
                    rt.report.loop_seconds, rt.report.allreduce_seconds, rt.report.update_seconds,
                    gp_optimizer_sharding_name(rt.report.sharding),
                    rt.report.peak_rss_mb, rt.model_dir);
        gp_retrained_free(&rt);
    }
done:
    gp_mask_free(&mask);
    gp_model_free(m);
    gp_job_free(&job);
    return rc;
}
