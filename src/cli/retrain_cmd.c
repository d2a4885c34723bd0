/* retrain_cmd.c — `gaprune retrain JOB.ini --mask FILE`: masked retraining of the job's model
 * with the mask of FILE, written to OUT/retrained-<tag>/ (tag: FILE without mask- and .h5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/cli.h"
#include "gaprune/config.h"
#include "gaprune/dist.h"
#include "gaprune/export.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/hash.h"
#include "gaprune/log.h"
#include "gaprune/mask.h"
#include "gaprune/mask_file.h"
#include "gaprune/model.h"
#include "gaprune/pipeline.h"
#include "gaprune/retrain.h"
#include "gaprune/retrain_file.h"
#include "gaprune/safetensors.h"

int gp_cmd_retrain(int argc, char **argv) {
    const char *mask_path = NULL;
    const gp_opt extra[] = {
        {"mask", GP_OPT_STR, &mask_path, "FILE", "mask file written by gaprune score (required)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    gp_config cfg;
    gp_status rc = gp_cli_job("retrain", "JOB.ini --mask FILE [--set section.key=value ...]", extra, argc, argv, &cfg);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_config_free(&cfg);
        return rc;
    }
    gp_err err = {0};
    if (!mask_path) rc = gp_errf(&err, GP_EINPUT, "gaprune retrain: --mask FILE is required (see --help)");
    gp_model *m = NULL;
    gp_mask mask = {0};
    char mask_hash[80] = "";
    if (!rc) rc = gp_model_load(cfg.model_path, &m, &err);
    if (!rc && gp_rank() == 0) {
        rc = gp_mask_read(mask_path, m, &mask, &err);
        hid_t f = rc ? -1 : gp_h5_open_quiet(mask_path);
        char *h = f >= 0 ? gp_h5_read_attr_str(f, GP_MASK_ATTR_SETTINGS_HASH) : NULL;
        if (h && *h) snprintf(mask_hash, sizeof mask_hash, "%s", h);
        else if (!rc) rc = gp_sha256_file(mask_path, mask_hash, &err);
        free(h);
        if (f >= 0) H5Fclose(f);
        if (!rc) rc = gp_mkdir_p(cfg.out_dir, &err);
    }
    if ((rc = gp_agree(rc, &err))) goto done;
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
        char name[320];
        snprintf(name, sizeof name, GP_RETRAIN_FILE_FMT, tag);
        char *log_path = gp_path_join(cfg.out_dir, name);
        snprintf(name, sizeof name, "retrained-%s", tag);
        char *out = gp_path_join(cfg.out_dir, name);
        gp_retrain_report rep;
        gp_train_opts o;
        gp_train_opts_retrain(&cfg, &o);
        rc = gp_retrain(&o, m, &mask, tag, log_path, mask_hash, &rep, &err);
        if (!rc) {
            /* the folder's hash: the log's (settings and data) */
            char hash[65] = "";
            if (gp_rank() == 0) {
                hid_t f = gp_h5_open_quiet(log_path);
                char *h = f >= 0 ? gp_h5_read_attr_str(f, GP_RETRAIN_ATTR_SETTINGS_HASH) : NULL;
                snprintf(hash, sizeof hash, "%s", h ? h : "");
                free(h);
                if (f >= 0) H5Fclose(f);
                if (!gp_folder_current(out, hash)) {
                    char steps[32];
                    snprintf(steps, sizeof steps, "%d", cfg.retrain_steps);
                    const char *meta[] = {"gaprune.retrained_from_mask", mask_path, "gaprune.retrain_steps", steps,
                                          "gaprune.retrain_log", log_path, "gaprune.source_model", m->dir,
                                          "gaprune.settings_hash", hash, "gaprune.version", GP_VERSION};
                    rc = gp_export_model(m, out, meta, 6, &err);
                }
            }
            rc = gp_agree(rc, &err);
            if (!rc)
                gp_log0("{\"command\":\"retrain\",\"tag\":\"%s\",\"steps\":%d,\"first_loss\":%.6f,\"last_loss\":%.6f,"
                        "\"ranks\":%d,\"seconds\":%.3f,\"loop_s\":%.3f,\"allreduce_s\":%.3f,\"output\":\"%s\"}",
                        tag, rep.steps, rep.first_loss, rep.last_loss, gp_nranks(), rep.seconds, rep.loop_seconds,
                        rep.allreduce_seconds, out);
        }
        free(log_path);
        free(out);
    }
done:
    gp_mask_free(&mask);
    gp_model_free(m);
    gp_config_free(&cfg);
    return rc;
}
