/* score_cmd.c — `gaprune score JOB.ini [--method M] [--sparsity P]`: masks and pruned models.
 *
 * For every method of prune.methods (or --method) and every sparsity of prune.sparsity (or
 * --sparsity): every rank scores its slice, the ranks select together and every rank ends with
 * the whole mask (score.h), rank 0 writes OUT/mask-<method>-<p>.h5, every rank applies the mask,
 * and rank 0 writes the pruned model to OUT/pruned-<method>-<p>/ (pipeline.h). Outputs made with the same settings are kept.
 * --method and --sparsity set prune.methods and prune.sparsity, checked as the job is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/job.h"
#include "gaprune/lock.h"
#include "gaprune/log.h"
#include "gaprune/pipeline.h"
#include "gaprune/plan.h"

int gp_cmd_score(int argc, char **argv) {
    const gp_opt extra[] = {
        {"method", GP_OPT_KEY, "prune.methods", "M", "criteria, comma-separated (default: prune.methods)"},
        {"sparsity", GP_OPT_KEY, "prune.sparsity", "P", "sparsities, comma-separated (default: prune.sparsity)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    gp_job job;
    gp_status rc = gp_cli_job("score", "JOB.ini [--method M] [--sparsity P] [--set section.key=value ...]", extra, argc,
                              argv, &job);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_job_free(&job);
        return rc;
    }
    gp_err err = {0};
    const gp_criteria_list *methods = &job.prune.methods;
    if (!methods->n) rc = gp_errf(&err, GP_EINPUT, "%s: [prune] methods is empty: no method to score",
                                  gp_job_origin(&job, "prune", "methods"));
    gp_prune_opts o;
    gp_prune_opts_from_job(&o, &job);
    gp_model *m = NULL;
    gp_prune_inputs in = {0};
    if (!rc) rc = gp_plan_guard(&job, "score", GP_PLAN_BIT(GP_PLAN_SCORE), &err);
    if (!rc) rc = gp_model_load(job.model.path, &m, &err);
    if (!rc) gp_job_model_settings(&job, m);
    if (!rc) rc = gp_prune_check(&o, m, &err);
    if (!(rc = gp_agree(rc, &err))) rc = gp_lock_take(job.out_dir, NULL, &err);
    if (!rc) rc = gp_prune_inputs_init(&o, m, &in, &err);
    if (!rc) gp_prune_inputs_recon(&in, &job, NULL);
    if (!rc && !in.stats_path)
        gp_warn("%s/stats.h5 does not exist: only criteria without statistics can run (magnitude, random, sparsegpt)", job.out_dir);
    /* every variant of every method (prune.beta and prune.gamma lists), at every sparsity */
    gp_prune_variant *vs = NULL;
    int nv = 0;
    for (int a = 0; a < methods->n; a++) {
        gp_prune_variant *v;
        const int k = gp_prune_variants(&job, methods->v[a], &v);
        vs = gp_realloc(vs, (size_t)(nv + k) * sizeof *vs);
        memcpy(vs + nv, v, (size_t)k * sizeof *v);
        nv += k;
        free(v);
    }
    for (int a = 0; a < nv && !rc; a++)
        for (int b = 0; b < job.prune.n_sparsity && !rc; b++) {
            double t0 = gp_now(), p = job.prune.sparsity[b];
            gp_pruned pr;
            rc = gp_prune_step(&o, m, &in, &vs[a], p, &pr, &err);
            if (!rc)
                gp_log0("{\"command\":\"score\",\"method\":\"%s\",\"sparsity_target\":%g,\"sparsity_achieved\":%.6f,"
                        "\"n_selected\":%lld,\"n_pruned\":%lld,\"model_zero_fraction\":%.6f,\"reused\":%s,\"seconds\":%.3f}",
                        vs[a].label, p, pr.sparsity, (long long)pr.mask.total, (long long)pr.mask.pruned,
                        pr.zero_fraction, pr.reused ? "true" : "false", gp_now() - t0);
            gp_pruned_free(&pr);
            /* the dense weights again for the next mask, reread rather than kept: one model in memory */
            const bool more = a < nv - 1 || b < job.prune.n_sparsity - 1;
            if (!rc && more) rc = gp_agree(gp_model_reload_weights(m, &err), &err);
        }
    free(vs);
    gp_prune_inputs_free(&in);
    gp_model_free(m);
    gp_job_free(&job);
    return rc;
}
