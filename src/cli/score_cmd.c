/* score_cmd.c — `gaprune score JOB.ini [--method M] [--sparsity P]`: masks and pruned models.
 *
 * For every method of prune.methods (or --method) and every sparsity of prune.sparsity (or
 * --sparsity): rank 0 scores and selects (mask.h) and writes OUT/mask-<method>-<p>.h5, the mask
 * reaches every rank bit-packed, every rank applies it, and rank 0 writes the pruned model to
 * OUT/pruned-<method>-<p>/ (pipeline.h). Outputs made with the same settings are kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/config.h"
#include "gaprune/log.h"
#include "gaprune/pipeline.h"
#include "gaprune/prune.h"

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
    int nm = gp_split_list(mlist, methods, 32), np = gp_split_list(plist, sp_text, 32);
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
    gp_prune_inputs in = {0};
    if (!rc) rc = gp_model_load(cfg.model_path, &m, &err);
    if (!(rc = gp_agree(rc, &err))) rc = gp_prune_inputs_init(&cfg, m, &in, &err);
    if (!rc && !in.stats_path)
        gp_warn("%s/stats.h5 does not exist: only criteria without statistics can run (magnitude, random)", cfg.out_dir);
    float *dense = rc ? NULL : gp_malloc(m->table.total * sizeof(float));
    if (dense) memcpy(dense, m->params, m->table.total * sizeof(float));
    for (int a = 0; a < nm && !rc; a++)
        for (int b = 0; b < np && !rc; b++) {
            double t0 = gp_now();
            gp_pruned pr;
            rc = gp_prune_step(&cfg, m, &in, methods[a], sp[b], &pr, &err);
            if (!rc)
                gp_log0("{\"command\":\"score\",\"method\":\"%s\",\"sparsity_target\":%g,\"sparsity_achieved\":%.6f,"
                        "\"n_selected\":%lld,\"n_pruned\":%lld,\"model_zero_fraction\":%.6f,\"reused\":%s,\"seconds\":%.3f}",
                        methods[a], sp[b], pr.sparsity, (long long)pr.mask.total, (long long)pr.mask.pruned,
                        pr.zero_fraction, pr.reused ? "true" : "false", gp_now() - t0);
            memcpy(m->params, dense, m->table.total * sizeof(float));
            gp_pruned_free(&pr);
        }
    free(dense);
    gp_prune_inputs_free(&in);
    gp_model_free(m);
    free(mlist);
    free(plist);
    gp_config_free(&cfg);
    return rc;
}
