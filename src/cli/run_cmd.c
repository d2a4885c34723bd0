/* run_cmd.c — `gaprune run JOB.ini`: every stage, resumable, and the report.
 *
 *   [calibration sample] -> stats -> dense evaluation -> for each method x sparsity: mask, pruned model, evaluation
 *         -> for each retrain method x sparsity: retraining, retrained model, evaluation
 *         -> OUT/report.md, OUT/report.json, one JSON line on stdout.
 * Every stage whose output is complete and made from the same inputs and settings is skipped
 * (its results are read back), so rerunning a killed job continues where it stopped.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/cli.h"
#include "gaprune/config.h"
#include "gaprune/dist.h"
#include "gaprune/eval.h"
#include "gaprune/export.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/hash.h"
#include "gaprune/log.h"
#include "gaprune/pipeline.h"
#include "gaprune/prune.h"
#include "gaprune/retrain.h"
#include "gaprune/retrain_file.h"
#include "gaprune/sample.h"
#include "gaprune/stats.h"

typedef struct {
    char method[48];
    double sparsity;
    double achieved, zero_fraction, fisher_ratio;
    cJSON *one_shot, *retrained; /* eval documents (rank 0), retrained may be NULL */
    double first_loss, last_loss;
} row;

static void hash_of(const char *a, const char *b, char out[65]) {
    gp_sha256 *h = gp_sha256_init();
    gp_sha256_update(h, a, strlen(a));
    gp_sha256_update(h, "|", 1);
    gp_sha256_update(h, b, strlen(b));
    gp_sha256_final(h, out);
}

/* Evaluates the model as it is in memory unless OUT/eval-<tag>.json is current; rank 0 gets
 * the document. */
static gp_status evaluate(const gp_config *cfg, gp_model *m, const char *tag, const char *hash, bool have_sets,
                          cJSON **doc, gp_err *err) {
    *doc = NULL;
    if (!have_sets) return GP_OK;
    char name[256];
    snprintf(name, sizeof name, "eval-%s.json", tag);
    char *path = gp_path_join(cfg->out_dir, name);
    int current = 0;
    if (gp_rank() == 0) {
        *doc = gp_eval_load_current(path, hash);
        current = *doc != NULL;
    }
    gp_status rc = GP_OK;
    if (gp_allreduce_max_int(current)) gp_log0("eval %s: %s is up to date", tag, path);
    else rc = gp_eval_model(cfg, m, tag, path, hash, doc, err);
    free(path);
    return rc;
}

static double main_score(const cJSON *doc, const char *kind, const char *set) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, kind), set),
                                                      "main_score");
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static double mean_score(const cJSON *doc) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(doc, "main_score_mean");
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void pct(char *buf, size_t n, double v, double base) {
    if (isnan(v) || isnan(base) || base == 0) buf[0] = '\0';
    else snprintf(buf, n, "%+.2f%%", 100.0 * (v - base) / base);
}

static gp_status write_report(const gp_config *cfg, const gp_model *m, const cJSON *dense, row *rows, int nrows,
                              const gp_sample_report *samples, const gp_stats_report *sr, double seconds, gp_err *err) {
    char *md_path = gp_path_join(cfg->out_dir, "report.md"), *js_path = gp_path_join(cfg->out_dir, "report.json");
    char *md_tmp = gp_tmp_path(md_path), *js_tmp = gp_tmp_path(js_path);
    FILE *f = fopen(md_tmp, "w");
    gp_status rc = GP_OK;
    if (!f) {
        rc = gp_errf(err, GP_EINPUT, "%s: cannot write", md_tmp);
        goto done;
    }
    fprintf(f, "# gaprune report: %s\n\n", cfg->job_name);
    fprintf(f, "- model: `%s` (%zu parameters, %s)\n", m->dir, m->table.total, m->cfg.arch == GP_ARCH_BERT ? "bert" : "qwen3");
    if (samples)
        fprintf(f, "- calibration: %s samples (k %lld) of `%s` (domain) and `%s` (general): %lld of %lld and %lld of %lld "
                   "triplets, in `%s` and `%s`; fisher_batch %d, statistics in `%s/stats.h5`\n",
                cfg->sample_method, (long long)cfg->sample_k, cfg->domain, cfg->general, (long long)samples->selected[0],
                (long long)samples->candidates[0], (long long)samples->selected[1], (long long)samples->candidates[1],
                samples->jsonl[0], samples->jsonl[1], cfg->fisher_batch, cfg->out_dir);
    else
        fprintf(f, "- calibration: `%s` (domain) and `%s` (general), at most %lld triplets each, fisher_batch %d, statistics in "
                   "`%s/stats.h5`\n",
                cfg->domain, cfg->general, (long long)cfg->max_samples, cfg->fisher_batch, cfg->out_dir);
    fprintf(f, "- pruning: %s weights, scope %s, alpha %g, beta %g, gamma %g, alignment %s\n", cfg->layers, cfg->scope,
            cfg->alpha, cfg->beta, cfg->gamma, cfg->alignment);
    fprintf(f, "- retraining: %s, %d steps, lr %g, warm-up %d, batch %d\n", *cfg->retrain_methods ? cfg->retrain_methods : "none",
            cfg->retrain_steps, cfg->lr, cfg->warmup, cfg->retrain_batch);
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
            double base = k < 2 ? main_score(dense, kinds[k], sname) : mean_score(dense);
            fprintf(f, "| method | sparsity | zeros in the model | one-shot | Δ vs dense | retrained | Δ vs dense |\n");
            fprintf(f, "|---|---|---|---|---|---|---|\n");
            fprintf(f, "| dense | 0 | | %.4f | | | |\n", base);
            for (int i = 0; i < nrows; i++) {
                double o = k < 2 ? main_score(rows[i].one_shot, kinds[k], sname) : mean_score(rows[i].one_shot);
                double r = rows[i].retrained ? (k < 2 ? main_score(rows[i].retrained, kinds[k], sname) : mean_score(rows[i].retrained))
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
    fprintf(f, "## masks\n\n| method | sparsity | achieved | zeros in the model | fisher/magnitude term ratio | retraining loss "
               "(first → last step) |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < nrows; i++) {
        char loss[64] = "";
        if (rows[i].retrained) snprintf(loss, sizeof loss, "%.4f → %.4f", rows[i].first_loss, rows[i].last_loss);
        fprintf(f, "| %s | %g | %.4f | %.2f%% | %.3g | %s |\n", rows[i].method, rows[i].sparsity, rows[i].achieved,
                100 * rows[i].zero_fraction, rows[i].fisher_ratio, loss);
    }
    fprintf(f, "\nThe fisher/magnitude ratio is Σ|(F_dom − βF_gen)|θ|| / Σ γ√|θ| per tensor, averaged: near 0, GAPrune's "
               "DAI ranks weights almost as magnitude pruning does.\n");
    if (fclose(f) != 0) rc = gp_errf(err, GP_EINPUT, "%s: write failed", md_tmp);
    if (!rc) rc = gp_commit_tmp(md_tmp, md_path, err);
    if (!rc) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "job", cfg->job_path);
        cJSON_AddStringToObject(j, "model", m->dir);
        cJSON_AddNumberToObject(j, "n_ranks", gp_nranks());
        cJSON_AddNumberToObject(j, "seconds", seconds);
        cJSON_AddStringToObject(j, "stats_settings_hash", sr->settings_hash);
        if (samples) {
            cJSON *sj = cJSON_AddObjectToObject(j, "sample");
            cJSON_AddStringToObject(sj, "method", cfg->sample_method);
            cJSON_AddNumberToObject(sj, "k", (double)cfg->sample_k);
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
            if (!isnan(rows[i].fisher_ratio)) cJSON_AddNumberToObject(r, "fisher_vs_magnitude", rows[i].fisher_ratio);
            cJSON_AddItemToObject(r, "one_shot", rows[i].one_shot ? cJSON_Duplicate(rows[i].one_shot, 1) : cJSON_CreateNull());
            cJSON_AddItemToObject(r, "retrained", rows[i].retrained ? cJSON_Duplicate(rows[i].retrained, 1) : cJSON_CreateNull());
            cJSON_AddItemToArray(arr, r);
        }
        char *txt = cJSON_Print(j);
        FILE *g = fopen(js_tmp, "w");
        if (!g || fputs(txt, g) < 0 || fclose(g) != 0) rc = gp_errf(err, GP_EINPUT, "%s: cannot write", js_tmp);
        else rc = gp_commit_tmp(js_tmp, js_path, err);
        free(txt);
        cJSON_Delete(j);
    }
done:
    free(md_path), free(js_path), free(md_tmp), free(js_tmp);
    return rc;
}

int gp_cmd_run(int argc, char **argv) {
    double t0 = gp_now();
    const char *only = NULL;
    const gp_opt extra[] = {
        {"only", GP_OPT_STR, &only, "METHOD:SPARSITY",
         "just this mask (and its retraining and evaluations): no dense evaluation, no report (job arrays)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    gp_config cfg;
    gp_status rc = gp_cli_job("run", "JOB.ini [--only METHOD:SPARSITY] [--set section.key=value ...]", extra, argc, argv, &cfg);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (rc) {
        gp_config_free(&cfg);
        return rc;
    }
    gp_err err = {0};
    char *ml = gp_strdup(cfg.prune_methods), *pl = gp_strdup(cfg.sparsity), *rl = gp_strdup(cfg.retrain_methods);
    char *methods[32], *sp_text[32], *rmethods[32];
    int nm = gp_split_list(ml, methods, 32), np = gp_split_list(pl, sp_text, 32), nr = gp_split_list(rl, rmethods, 32);
    double sp[32];
    for (int i = 0; i < np; i++) sp[i] = strtod(sp_text[i], NULL);
    double only_p = -1;
    if (only) { /* one pair: the method and sparsity replace the lists */
        const char *colon = strrchr(only, ':');
        char *end = NULL;
        if (colon) only_p = strtod(colon + 1, &end);
        if (!colon || colon == only || !end || *end || !(only_p >= 0 && only_p < 1)) {
            rc = gp_errf(&err, GP_EINPUT, "gaprune run --only: expected METHOD:SPARSITY, got \"%s\"", only);
        } else {
            free(ml);
            ml = gp_strndup(only, (size_t)(colon - only));
            methods[0] = ml;
            nm = 1;
            np = 1;
            sp[0] = only_p;
            bool retrained = false;
            for (int i = 0; i < nr; i++) retrained |= !strcmp(rmethods[i], ml);
            if (retrained) rmethods[0] = ml;
            nr = retrained ? 1 : 0;
        }
    }
    for (int i = 0; i < nm + nr && !rc; i++) {
        const char *name = i < nm ? methods[i] : rmethods[i - nm];
        if (!gp_criterion_find(name)) rc = gp_errf(&err, GP_EINPUT, "%s: unknown method \"%s\" (see gaprune help-job)", cfg.job_path, name);
    }
    bool have_sets = *cfg.eval_retrieval || *cfg.eval_sts;
    gp_model *m = NULL;
    gp_sample_report samples = {0};
    if (!rc) rc = gp_model_load(cfg.model_path, &m, &err);
    if (!rc && gp_rank() == 0) rc = gp_mkdir_p(cfg.out_dir, &err);
    char eval_hash[65] = "";
    if (!rc && gp_rank() == 0 && have_sets) rc = gp_eval_hash(&cfg, eval_hash, &err);
    if ((rc = gp_agree(rc, &err))) goto out;
    gp_bcast_bytes(eval_hash, sizeof eval_hash, 0);
    if (!have_sets) gp_warn("%s: [eval] names no retrieval folder and no STS file: no scores in the report", cfg.job_path);

    /* 0. the calibration sample, 1. statistics (of the sample when there is one) */
    const bool sampled = strcmp(cfg.sample_method, "none") != 0;
    if (sampled) {
        gp_log0("run: stage 0/4, calibration sample (%s, k %lld)", cfg.sample_method, (long long)cfg.sample_k);
        if ((rc = gp_sample_run(&cfg, m, &samples, &err))) goto out;
    }
    gp_stats_report sr;
    gp_log0("run: stage 1/4, statistics");
    if ((rc = gp_stats_run(&cfg, m, sampled ? &samples : NULL, &sr, &err))) goto out;
    gp_prune_inputs in;
    if ((rc = gp_prune_inputs_init(&cfg, m, &in, &err))) goto out;
    float *dense_params = gp_malloc(m->table.total * sizeof(float));
    memcpy(dense_params, m->params, m->table.total * sizeof(float));

    /* 2. the dense model */
    gp_log0("run: stage 2/4, the dense model");
    cJSON *dense = NULL;
    char h[65];
    hash_of(in.model_sha, eval_hash, h);
    if (!only) rc = evaluate(&cfg, m, "dense", h, have_sets, &dense, &err);

    /* 3. one-shot pruning, 4. retraining */
    int nrows = nm * np;
    for (int i = 0; i < nr; i++) {
        bool seen = false;
        for (int j = 0; j < nm; j++) seen |= !strcmp(rmethods[i], methods[j]);
        if (!seen) nrows += np; /* retrained methods that are not pruned one-shot still get a row */
    }
    row *rows = gp_calloc((size_t)(nrows ? nrows : 1), sizeof(row));
    int k = 0;
    for (int a = 0; a < nm + nr && !rc; a++) {
        const char *method = a < nm ? methods[a] : rmethods[a - nm];
        bool dup = false;
        for (int j = 0; j < a; j++) dup |= !strcmp(method, j < nm ? methods[j] : rmethods[j - nm]);
        if (dup) continue;
        bool retrain = false;
        for (int j = 0; j < nr; j++) retrain |= !strcmp(method, rmethods[j]);
        for (int b = 0; b < np && !rc; b++) {
            row *r = &rows[k++];
            snprintf(r->method, sizeof r->method, "%s", method);
            r->sparsity = sp[b];
            gp_log0("run: stage 3/4, %s at %g", method, sp[b]);
            gp_pruned pr;
            if ((rc = gp_prune_step(&cfg, m, &in, method, sp[b], &pr, &err))) break;
            r->achieved = pr.sparsity, r->zero_fraction = pr.zero_fraction, r->fisher_ratio = pr.fisher_ratio;
            hash_of(pr.hash, eval_hash, h);
            char tag[160];
            snprintf(tag, sizeof tag, "pruned-%s", pr.tag);
            rc = evaluate(&cfg, m, tag, h, have_sets, &r->one_shot, &err);
            if (!rc && retrain && cfg.retrain_steps > 0) {
                gp_log0("run: stage 4/4, retraining %s", pr.tag);
                char name[200];
                snprintf(name, sizeof name, GP_RETRAIN_FILE_FMT, pr.tag);
                char *log_path = gp_path_join(cfg.out_dir, name);
                snprintf(name, sizeof name, "retrained-%s", pr.tag);
                char *out_dir = gp_path_join(cfg.out_dir, name);
                gp_retrain_report rep;
                gp_train_opts o;
                gp_train_opts_retrain(&cfg, &o);
                rc = gp_retrain(&o, m, &pr.mask, pr.tag, log_path, pr.hash, &rep, &err);
                char rhash[65] = "";
                if (!rc) {
                    r->first_loss = rep.first_loss, r->last_loss = rep.last_loss;
                    if (gp_rank() == 0) {
                        hid_t f = gp_h5_open_quiet(log_path);
                        char *lh = f >= 0 ? gp_h5_read_attr_str(f, GP_RETRAIN_ATTR_SETTINGS_HASH) : NULL;
                        snprintf(rhash, sizeof rhash, "%s", lh ? lh : "");
                        free(lh);
                        if (f >= 0) H5Fclose(f);
                        if (!gp_folder_current(out_dir, rhash)) {
                            char steps[32];
                            snprintf(steps, sizeof steps, "%d", cfg.retrain_steps);
                            const char *meta[] = {"gaprune.retrained_from_mask", pr.mask_path, "gaprune.retrain_steps", steps,
                                                  "gaprune.retrain_log", log_path, "gaprune.source_model", m->dir,
                                                  "gaprune.settings_hash", rhash, "gaprune.version", GP_VERSION};
                            rc = gp_export_model(m, out_dir, meta, 6, &err);
                        }
                    }
                    rc = gp_agree(rc, &err);
                    gp_bcast_bytes(rhash, sizeof rhash, 0);
                }
                if (!rc) {
                    hash_of(rhash, eval_hash, h);
                    snprintf(tag, sizeof tag, "retrained-%s", pr.tag);
                    rc = evaluate(&cfg, m, tag, h, have_sets, &r->retrained, &err);
                }
                free(log_path);
                free(out_dir);
            }
            memcpy(m->params, dense_params, m->table.total * sizeof(float));
            gp_pruned_free(&pr);
        }
    }
    if (!rc && gp_rank() == 0 && !only)
        rc = write_report(&cfg, m, dense, rows, k, sampled ? &samples : NULL, &sr, gp_now() - t0, &err);
    if (!(rc = gp_agree(rc, &err)) && gp_rank() == 0) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "command", "run");
        cJSON_AddStringToObject(s, "job", cfg.job_path);
        if (dense) cJSON_AddNumberToObject(s, "dense", mean_score(dense));
        cJSON *res = cJSON_AddObjectToObject(s, "one_shot");
        cJSON *ret = cJSON_AddObjectToObject(s, "retrained");
        for (int i = 0; i < k; i++) {
            char key[96];
            snprintf(key, sizeof key, "%s-%g", rows[i].method, rows[i].sparsity);
            if (rows[i].one_shot) cJSON_AddNumberToObject(res, key, mean_score(rows[i].one_shot));
            if (rows[i].retrained) cJSON_AddNumberToObject(ret, key, mean_score(rows[i].retrained));
        }
        char *rp = gp_path_join(cfg.out_dir, "report.md");
        if (!only) cJSON_AddStringToObject(s, "report", rp);
        cJSON_AddNumberToObject(s, "seconds", gp_now() - t0);
        char *line = cJSON_PrintUnformatted(s);
        printf("%s\n", line);
        fflush(stdout);
        free(line), free(rp);
        cJSON_Delete(s);
    }
    for (int i = 0; i < k; i++) cJSON_Delete(rows[i].one_shot), cJSON_Delete(rows[i].retrained);
    free(rows);
    cJSON_Delete(dense);
    free(dense_params);
    gp_prune_inputs_free(&in);
out:
    gp_sample_report_free(&samples);
    gp_model_free(m);
    free(ml), free(pl), free(rl);
    gp_config_free(&cfg);
    return rc;
}
