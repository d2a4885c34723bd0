/* score_cmd.c — `gaprune score JOB.ini [--method M] [--sparsity P]`: masks and pruned models.
 *
 * For every method of prune.methods (or --method) and every sparsity of prune.sparsity (or
 * --sparsity): rank 0 scores and selects (mask.h) and writes OUT/mask-<method>-<p>.h5, the mask
 * reaches every rank bit-packed, every rank applies it, and rank 0 writes the pruned model to
 * OUT/pruned-<method>-<p>/. A mask and model made with the same settings are kept.
 */
#include <math.h>
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
#include "gaprune/prune.h"
#include "gaprune/safetensors.h"
#include "gaprune/stats.h"

/* Splits a comma-separated list in place; returns the count. */
static int split_list(char *s, char **out, int max) {
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ",")) {
        while (*tok == ' ' || *tok == '\t') tok++;
        char *e = tok + strlen(tok);
        while (e > tok && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
        if (*tok) out[n++] = tok;
    }
    return n;
}

static bool pruned_up_to_date(const char *dir, const char *hash) {
    gp_st_set *set;
    gp_err err;
    if (!gp_dir_exists(dir) || gp_st_set_open(dir, &set, &err)) return false;
    const char *h = gp_st_meta(gp_st_set_file(set, 0), "gaprune.settings_hash");
    bool ok = h && !strcmp(h, hash);
    gp_st_set_close(set);
    return ok;
}

static bool mask_up_to_date(const char *path, const char *hash) {
    hid_t f = gp_h5_open_quiet(path);
    if (f < 0) return false;
    int64_t complete = 0;
    char *h = gp_h5_read_attr_str(f, "settings_hash");
    bool ok = !gp_h5_read_attr_int(f, "complete", &complete) && complete == 1 && h && !strcmp(h, hash);
    free(h);
    H5Fclose(f);
    return ok;
}

int gp_cmd_score(int argc, char **argv) {
    const char *method_opt = NULL, *sparsity_opt = NULL;
    const gp_opt extra[] = {
        {"method", GP_OPT_STR, &method_opt, "M", "criteria, comma-separated (default: prune.methods)"},
        {"sparsity", GP_OPT_STR, &sparsity_opt, "P", "sparsities, comma-separated (default: prune.sparsity)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    gp_config cfg;
    gp_status rc = gp_cli_job("score", "JOB.ini [--method M] [--sparsity P] [--set section.key=value ...]", extra, argc,
                              argv, &cfg);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_config_free(&cfg);
        return rc;
    }
    gp_err err = {0};
    char *mlist = gp_strdup(method_opt ? method_opt : cfg.prune_methods);
    char *plist = gp_strdup(sparsity_opt ? sparsity_opt : cfg.sparsity);
    char *methods[32], *sp_text[32];
    int nm = split_list(mlist, methods, 32), np = split_list(plist, sp_text, 32);
    double sp[32];
    for (int i = 0; i < np && !rc; i++) {
        char *end;
        sp[i] = strtod(sp_text[i], &end);
        if (*end || !(sp[i] >= 0 && sp[i] < 1)) rc = gp_errf(&err, GP_EINPUT, "sparsity \"%s\" is not in [0, 1)", sp_text[i]);
    }
    if (!rc && (!nm || !np)) rc = gp_errf(&err, GP_EINPUT, "no method or no sparsity to score");
    for (int i = 0; i < nm && !rc; i++)
        if (!gp_criterion_find(methods[i])) rc = gp_errf(&err, GP_EINPUT, "unknown method \"%s\" (see gaprune help-job)", methods[i]);
    gp_model *m = NULL;
    if (!rc) rc = gp_model_load(cfg.model_path, &m, &err);
    if ((rc = gp_cli_agree(rc, &err))) goto done;

    /* the statistics, when there are any, must be of this model */
    char *stats_path = gp_path_join(cfg.out_dir, "stats.h5");
    char model_sha[65] = "", stats_hash[80] = "none";
    bool have_stats = false;
    if (gp_rank() == 0) {
        have_stats = gp_file_exists(stats_path);
        if (!(rc = gp_model_sha256(m->dir, model_sha, &err)) && have_stats) {
            hid_t f = gp_h5_open_quiet(stats_path);
            char *ms = f >= 0 ? gp_h5_read_attr_str(f, "model_sha256") : NULL;
            char *sh = f >= 0 ? gp_h5_read_attr_str(f, "settings_hash") : NULL;
            if (!ms || strcmp(ms, model_sha))
                rc = gp_errf(&err, GP_EINPUT, "%s was computed for another model (or is damaged): rerun gaprune stats",
                             stats_path);
            if (sh) snprintf(stats_hash, sizeof stats_hash, "%s", sh);
            free(ms), free(sh);
            if (f >= 0) H5Fclose(f);
        }
    }
    if ((rc = gp_cli_agree(rc, &err))) {
        free(stats_path);
        goto done;
    }
    if (gp_rank() == 0 && (rc = gp_mkdir_p(cfg.out_dir, &err)) == GP_OK && !have_stats)
        gp_warn("%s does not exist: only criteria without statistics can run (magnitude, random)", stats_path);
    if ((rc = gp_cli_agree(rc, &err))) {
        free(stats_path);
        goto done;
    }
    float *orig = gp_malloc(m->table.total * sizeof(float));
    memcpy(orig, m->params, m->table.total * sizeof(float));
    for (int a = 0; a < nm && !rc; a++)
        for (int b = 0; b < np && !rc; b++) {
            double t0 = gp_now();
            char tag[96], name[160], settings[2048], hash[65];
            snprintf(tag, sizeof tag, "%s-%g", methods[a], sp[b]);
            snprintf(name, sizeof name, "mask-%s.h5", tag);
            char *mask_path = gp_path_join(cfg.out_dir, name);
            snprintf(name, sizeof name, "pruned-%s", tag);
            char *pruned_dir = gp_path_join(cfg.out_dir, name);
            snprintf(settings, sizeof settings,
                     "gaprune-mask v1; model %s; stats %s; method %s; sparsity %.17g; scope %s; layers %s; alpha %.17g; "
                     "beta %.17g; gamma %.17g; alignment %s; seed %lld; save_scores %d",
                     model_sha, stats_hash, methods[a], sp[b], cfg.scope, cfg.layers, cfg.alpha, cfg.beta, cfg.gamma,
                     cfg.alignment, (long long)cfg.prune_seed, cfg.save_scores);
            gp_sha256 *h = gp_sha256_init();
            gp_sha256_update(h, settings, strlen(settings));
            gp_sha256_final(h, hash);
            int fresh = gp_rank() == 0 && mask_up_to_date(mask_path, hash) && pruned_up_to_date(pruned_dir, hash);
            if (gp_allreduce_max_int(fresh)) {
                gp_log0("score: %s and %s are up to date", mask_path, pruned_dir);
                free(mask_path), free(pruned_dir);
                continue;
            }
            gp_mask mask = {0};
            gp_mask_request req = {methods[a], sp[b], have_stats ? stats_path : NULL, mask_path, hash};
            if (gp_rank() == 0) rc = gp_mask_build(&cfg, m, &req, &mask, &err);
            if (!(rc = gp_cli_agree(rc, &err))) {
                gp_mask_bcast(&mask, m);
                gp_mask_apply(&mask, m);
                if (gp_rank() == 0) {
                    char sparsity[32], zero[32];
                    snprintf(sparsity, sizeof sparsity, "%.6f", (double)mask.pruned / (double)mask.total);
                    snprintf(zero, sizeof zero, "%.6f", mask.model_zero_fraction);
                    const char *meta[] = {"gaprune.method", methods[a], "gaprune.sparsity", sparsity,
                                          "gaprune.scope", cfg.scope, "gaprune.layers", cfg.layers,
                                          "gaprune.mask_file", mask_path, "gaprune.model_zero_fraction", zero,
                                          "gaprune.source_model", m->dir, "gaprune.source_model_sha256", model_sha,
                                          "gaprune.settings_hash", hash, "gaprune.version", GP_VERSION};
                    rc = gp_export_model(m, pruned_dir, meta, 10, &err);
                }
                rc = gp_cli_agree(rc, &err);
            }
            if (!rc) {
                double ratio_sum = 0;
                int ratio_n = 0;
                for (int i = 0; gp_rank() == 0 && i < mask.n; i++)
                    if (!isnan(mask.rows[i].fisher_vs_magnitude)) ratio_sum += mask.rows[i].fisher_vs_magnitude, ratio_n++;
                gp_log0("score: %s at %g: pruned %lld of %lld %s weights (%.2f%%), %.2f%% of all parameters are now "
                        "zero; threshold %.4g; mean fisher/magnitude term ratio %.3g -> %s, %s",
                        methods[a], sp[b], (long long)mask.pruned, (long long)mask.total, cfg.layers,
                        100.0 * (double)mask.pruned / (double)mask.total, 100.0 * mask.model_zero_fraction,
                        mask.threshold, ratio_n ? ratio_sum / ratio_n : NAN, mask_path, pruned_dir);
                gp_log0("{\"command\":\"score\",\"method\":\"%s\",\"sparsity_target\":%g,\"sparsity_achieved\":%.6f,"
                        "\"n_selected\":%lld,\"n_pruned\":%lld,\"model_zero_fraction\":%.6f,\"seconds\":%.3f}",
                        methods[a], sp[b], (double)mask.pruned / (double)mask.total, (long long)mask.total,
                        (long long)mask.pruned, mask.model_zero_fraction, gp_now() - t0);
            }
            memcpy(m->params, orig, m->table.total * sizeof(float));
            gp_mask_free(&mask);
            free(mask_path);
            free(pruned_dir);
        }
    free(orig);
    free(stats_path);
done:
    gp_model_free(m);
    free(mlist);
    free(plist);
    gp_config_free(&cfg);
    return rc;
}
