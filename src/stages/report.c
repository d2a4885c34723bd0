/* report.c — report.md and report.json of `gaprune run` (see report.h). */
#include "gaprune/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/export.h"
#include "gaprune/fs.h"
#include "gaprune/kernels.h"
#include "gaprune/log.h"

static double main_score(const cJSON *doc, const char *kind, const char *set) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, kind), set),
                                                      "main_score");
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

double gp_report_mean(const cJSON *doc) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(doc, "main_score_mean");
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* An evaluation's encode throughput (texts/s, all ranks; NaN when the file has none). */
static double encode_rate(const cJSON *doc) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "encode"), "texts_per_s");
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void pct(char *buf, size_t n, double v, double base) {
    if (isnan(v) || isnan(base) || base == 0) buf[0] = '\0';
    else snprintf(buf, n, "%+.2f%%", 100.0 * (v - base) / base);
}

gp_status gp_report_write(const gp_job *job, const gp_report_model *m, const cJSON *dense, const gp_report_row *rows,
                          int nrows, const gp_sample_report *samples, const char *stats_settings_hash, double seconds,
                          gp_err *err) {
    char *md_path = gp_path_join(job->out_dir, "report.md"), *js_path = gp_path_join(job->out_dir, "report.json");
    FILE *f = gp_file_create(md_path, err);
    gp_status rc = GP_OK;
    if (!f) {
        rc = GP_EINPUT;
        goto done;
    }
    fprintf(f, "# gaprune report: %s\n\n", job->name);
    fprintf(f, "- model: `%s` (%zu parameters, %s)\n", m->dir, m->n_params, m->arch);
    if (samples)
        fprintf(f, "- calibration: %s samples (k %lld) of `%s` (domain) and `%s` (general): %lld of %lld and %lld of %lld "
                   "triplets, in `%s` and `%s`; fisher_batch %d, statistics in `%s/stats.h5`\n",
                gp_sample_method_name(job->sample.method), (long long)job->sample.k, job->data.domain, job->data.general,
                (long long)samples->selected[0],
                (long long)samples->candidates[0], (long long)samples->selected[1], (long long)samples->candidates[1],
                samples->jsonl[0], samples->jsonl[1], job->stats.fisher_batch, job->out_dir);
    else
        fprintf(f, "- calibration: `%s` (domain) and `%s` (general), at most %lld triplets each, fisher_batch %d, statistics in "
                   "`%s/stats.h5`\n",
                job->data.domain, job->data.general, (long long)job->data.max_samples, job->stats.fisher_batch, job->out_dir);
    char scope[32], *retrain_methods = gp_job_get(job, "retrain", "methods"); /* as the job says them */
    fprintf(f, "- pruning: %s weights, scope %s, alpha %g, beta %g, gamma %g, alignment %s\n", gp_layers_name(job->prune.layers),
            gp_scope_name(&job->prune.scope, scope, sizeof scope), job->prune.alpha, job->prune.beta, job->prune.gamma,
            gp_alignment_name(job->stats.alignment));
    fprintf(f, "- retraining: %s, %d steps, lr %g, warm-up %d, batch %d\n", job->retrain.methods.n ? retrain_methods : "none",
            job->retrain.steps, job->retrain.lr, job->retrain.warmup, job->retrain.batch);
    free(retrain_methods);
    fprintf(f, "- %d rank%s; this run took %.0f s (stages already complete are not timed again)\n\n", gp_nranks(),
            gp_nranks() > 1 ? "s" : "", seconds);
    /* one table per evaluation set, then the mean */
    const char *kinds[2] = {"retrieval", "sts"}, *metric[2] = {"nDCG@10", "Spearman"};
    int nsets = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(dense, "retrieval")) +
                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(dense, "sts"));
    for (int k = 0; k < (nsets > 1 ? 3 : 2); k++) { /* the mean only when there is more than one set */
        const cJSON *sets = k < 2 ? cJSON_GetObjectItemCaseSensitive(dense, kinds[k]) : NULL;
        const cJSON *set = sets ? sets->child : NULL;
        do {
            if (k < 2 && !set) break;
            const char *sname = k < 2 ? set->string : "mean of the main scores";
            if (k < 2) fprintf(f, "## %s (%s)\n\n", sname, metric[k]);
            else fprintf(f, "## %s\n\n", sname);
            double base = k < 2 ? main_score(dense, kinds[k], sname) : gp_report_mean(dense);
            fprintf(f, "| method | sparsity | zeros in the model | one-shot | Δ vs dense | retrained | Δ vs dense |\n");
            fprintf(f, "|---|---|---|---|---|---|---|\n");
            fprintf(f, "| dense | 0 | | %.4f | | | |\n", base);
            for (int i = 0; i < nrows; i++) {
                double o = k < 2 ? main_score(rows[i].one_shot, kinds[k], sname) : gp_report_mean(rows[i].one_shot);
                double r = rows[i].retrained ? (k < 2 ? main_score(rows[i].retrained, kinds[k], sname) : gp_report_mean(rows[i].retrained))
                                             : NAN;
                char d1[32], d2[32], rs[32] = "";
                pct(d1, sizeof d1, o, base);
                pct(d2, sizeof d2, r, base);
                if (!isnan(r)) snprintf(rs, sizeof rs, "%.4f", r);
                fprintf(f, "| %s | %g | %.1f%% | %.4f | %s | %s | %s |\n", rows[i].method, rows[i].sparsity,
                        100 * rows[i].zero_fraction, o, d1, rs, d2);
            }
            fprintf(f, "\n");
            set = set ? set->next : NULL;
        } while (k < 2 && set);
    }
    fprintf(f, "## masks\n\n| method | sparsity | achieved | zeros in the model | parameters | weights on disk (MB) | "
               "encode texts/s (× dense) | fisher/magnitude term ratio | retraining loss (first → last step) |\n"
               "|---|---|---|---|---|---|---|---|---|\n");
    const double dense_rate = encode_rate(dense);
    char rate[64] = "";
    if (!isnan(dense_rate)) snprintf(rate, sizeof rate, "%.1f", dense_rate);
    fprintf(f, "| dense | 0 | | | %zu | %.2f | %s | | |\n", m->n_params, (double)m->disk_bytes / 1e6, rate);
    for (int i = 0; i < nrows; i++) {
        char loss[64] = "";
        if (rows[i].did_retrain) snprintf(loss, sizeof loss, "%.4f → %.4f", rows[i].first_loss, rows[i].last_loss);
        const double r = encode_rate(rows[i].one_shot);
        rate[0] = '\0';
        if (!isnan(r)) snprintf(rate, sizeof rate, isnan(dense_rate) ? "%.1f" : "%.1f (%.2f×)", r, r / dense_rate);
        fprintf(f, "| %s | %g | %.4f | %.2f%% | %lld | %.2f | %s | %.3g | %s |\n", rows[i].method, rows[i].sparsity,
                rows[i].achieved, 100 * rows[i].zero_fraction, (long long)rows[i].params, (double)rows[i].disk_bytes / 1e6,
                rate, rows[i].fisher_ratio, loss);
    }
    if (job->prune.scope.kind == GP_SCOPE_NEURONS_GLOBAL)
        fprintf(f, "\n**Scope neurons-global: folders that only gaprune reads.** The MLP neurons were ranked over all "
                   "blocks at once, so each block keeps its own number (config.json's %s; %s in each folder): "
                   "transformers and sentence-transformers cannot load them. Their parameters and weights on disk are "
                   "what gaprune loads.\n",
                GP_CONFIG_INTER_SIZES, GP_EXPORT_NOTICE);
    else if (gp_scope_structured(&job->prune.scope))
        fprintf(f, "\nScope %s: the pruned and retrained folders hold only the kept %s (%s), so their parameters and "
                   "weights on disk are what a user loads.\n",
                gp_struct_name(gp_scope_struct(&job->prune.scope)), gp_struct_title(gp_scope_struct(&job->prune.scope)),
                job->prune.scope.kind == GP_SCOPE_HEADS ? "config.json lists pruned_heads" : "a smaller intermediate_size");
    fprintf(f, "\nEncode texts/s: every text of the one-shot evaluation (all ranks, %d thread%s each) over the slowest "
               "rank's encoding time; a masked model runs at the dense speed, a smaller one (scopes neurons, heads) faster.\n",
            gp_threads(), gp_threads() > 1 ? "s" : "");
    fprintf(f, "\nThe fisher/magnitude ratio is Σ|(F_dom − βF_gen)|θ|| / Σ γ√|θ| per tensor, averaged: near 0, GAPrune's "
               "DAI ranks weights almost as magnitude pruning does (gaprune-neurons: Σ|Φ_dom − βΦ_gen| / Σ γ·m_j over the "
               "neurons).\n");
    rc = gp_file_commit(f, md_path, err);
    if (!rc) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "job", job->path);
        cJSON_AddStringToObject(j, "model", m->dir);
        cJSON_AddNumberToObject(j, "model_params", (double)m->n_params);
        cJSON_AddNumberToObject(j, "model_weights_bytes", (double)m->disk_bytes);
        cJSON_AddNumberToObject(j, "n_ranks", gp_nranks());
        cJSON_AddNumberToObject(j, "seconds", seconds);
        cJSON_AddStringToObject(j, "stats_settings_hash", stats_settings_hash);
        if (samples) {
            cJSON *sj = cJSON_AddObjectToObject(j, "sample");
            cJSON_AddStringToObject(sj, "method", gp_sample_method_name(job->sample.method));
            cJSON_AddNumberToObject(sj, "k", (double)job->sample.k);
            for (int c = 0; c < 2; c++) {
                cJSON *cj = cJSON_AddObjectToObject(sj, c ? "general" : "domain");
                cJSON_AddStringToObject(cj, "file", samples->jsonl[c]);
                cJSON_AddNumberToObject(cj, "candidates", (double)samples->candidates[c]);
                cJSON_AddNumberToObject(cj, "selected", (double)samples->selected[c]);
                cJSON_AddStringToObject(cj, "settings_hash", samples->settings_hash[c]);
            }
        }
        cJSON_AddItemToObject(j, "dense", dense ? cJSON_Duplicate(dense, 1) : cJSON_CreateNull());
        cJSON *arr = cJSON_AddArrayToObject(j, "rows");
        for (int i = 0; i < nrows; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "method", rows[i].method);
            cJSON_AddNumberToObject(r, "sparsity", rows[i].sparsity);
            cJSON_AddNumberToObject(r, "sparsity_achieved", rows[i].achieved);
            cJSON_AddNumberToObject(r, "model_zero_fraction", rows[i].zero_fraction);
            cJSON_AddNumberToObject(r, "params", (double)rows[i].params);
            cJSON_AddNumberToObject(r, "weights_bytes", (double)rows[i].disk_bytes);
            if (!isnan(rows[i].fisher_ratio)) cJSON_AddNumberToObject(r, "fisher_vs_magnitude", rows[i].fisher_ratio);
            const double rate_i = encode_rate(rows[i].one_shot);
            if (!isnan(rate_i) && !isnan(dense_rate)) cJSON_AddNumberToObject(r, "encode_vs_dense", rate_i / dense_rate);
            cJSON_AddItemToObject(r, "one_shot", rows[i].one_shot ? cJSON_Duplicate(rows[i].one_shot, 1) : cJSON_CreateNull());
            cJSON_AddItemToObject(r, "retrained", rows[i].retrained ? cJSON_Duplicate(rows[i].retrained, 1) : cJSON_CreateNull());
            if (rows[i].did_retrain) { /* also without an evaluation of the retrained model */
                cJSON *t = cJSON_AddObjectToObject(r, "retraining");
                cJSON_AddNumberToObject(t, "first_loss", rows[i].first_loss);
                cJSON_AddNumberToObject(t, "last_loss", rows[i].last_loss);
            }
            cJSON_AddItemToArray(arr, r);
        }
        char *txt = cJSON_Print(j);
        FILE *g = gp_file_create(js_path, err);
        rc = GP_EINPUT;
        if (g) {
            fputs(txt, g);
            rc = gp_file_commit(g, js_path, err);
        }
        free(txt);
        cJSON_Delete(j);
    }
done:
    free(md_path), free(js_path);
    return rc;
}
