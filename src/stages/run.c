/* run.c — the stages of `gaprune run JOB.ini` in order (see run.h): every stage, resumable, and the report.
 *
 *   [calibration sample] -> stats -> dense evaluation -> [the dense model retrained alike, its evaluation]
 *         -> for each method x sparsity: mask, pruned model, evaluation
 *         -> for each retrain method x sparsity: retraining, retrained model, evaluation
 *         -> OUT/report.md, OUT/report.json (report.h), one JSON line on stdout.
 * Every stage whose output is complete and made from the same inputs and settings is skipped
 * (its results are read back), so rerunning a killed job continues where it stopped.
 */
#include "gaprune/run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/eval.h"
#include "gaprune/fs.h"
#include "gaprune/hash.h"
#include "gaprune/job.h"
#include "gaprune/lock.h"
#include "gaprune/mask.h"
#include "gaprune/mask_file.h"
#include "gaprune/log.h"
#include "gaprune/model.h"
#include "gaprune/pipeline.h"
#include "gaprune/plan.h"
#include "gaprune/report.h"
#include "gaprune/sample.h"
#include "gaprune/stats.h"

static void hash_of(const char *a, const char *b, char out[65]) {
    gp_sha256 *h = gp_sha256_init();
    gp_sha256_update(h, a, strlen(a));
    gp_sha256_update(h, "|", 1);
    gp_sha256_update(h, b, strlen(b));
    gp_sha256_final(h, out);
}

/* Evaluates the model as it is in memory unless OUT/eval-<tag>.json is current; rank 0 gets
 * the document. source: the dense model's folder, whatever m was reopened from. */
static gp_status evaluate(const gp_eval_opts *eo, const char *out_dir, gp_model *m, const char *tag, const char *folder,
                          const char *source, const char *hash, cJSON **doc, gp_err *err) {
    *doc = NULL;
    if (!gp_eval_has_sets(eo)) return GP_OK;
    char name[256];
    snprintf(name, sizeof name, "eval-%s.json", tag);
    char *path = gp_path_join(out_dir, name);
    int current = 0;
    if (gp_rank() == 0) {
        *doc = gp_eval_load_current(path, hash);
        current = *doc != NULL;
    }
    gp_status rc = GP_OK;
    if (gp_allreduce_max_int(current)) gp_log0("eval %s: %s is up to date", tag, path);
    else rc = gp_eval_model(eo, m, tag, folder, source, path, hash, doc, err);
    free(path);
    return rc;
}

/* What to prune and retrain: the variants (gp_prune_variants) of the methods of prune.methods,
 * then those of retrain.methods that are not pruned one-shot too (they still get a row), each
 * once, at every sparsity. */
typedef struct {
    gp_prune_variant *variant; /* [n] */
    bool *retrain;             /* [n] */
    int n;
    const double *sparsity;
    int n_sparsity;
    double only_sparsity; /* --only */
} plan;

static bool in_list(const gp_criteria_list *l, const gp_criterion *c) {
    for (int i = 0; i < l->n; i++)
        if (l->v[i] == c) return true;
    return false;
}

/* Every variant of c, once; when `only` is set, only the variant of that label. */
static void plan_add(plan *p, const gp_job *job, const gp_criterion *c, bool retrain, const char *only) {
    gp_prune_variant *v;
    const int k = gp_prune_variants(job, c, &v);
    for (int j = 0; j < k; j++) {
        bool have = only && strcmp(v[j].label, only);
        for (int i = 0; i < p->n && !have; i++) have = !strcmp(p->variant[i].label, v[j].label);
        if (have) continue;
        p->variant = gp_realloc(p->variant, (size_t)(p->n + 1) * sizeof *p->variant);
        p->retrain = gp_realloc(p->retrain, (size_t)(p->n + 1) * sizeof *p->retrain);
        p->variant[p->n] = v[j];
        p->retrain[p->n++] = retrain;
    }
    free(v);
}

/* --only LABEL:SPARSITY: that pair replaces the lists (retrained when retrain.methods has its
 * criterion). LABEL is a criterion, or one of the variants `gaprune run --list` names. */
static gp_status plan_make(plan *p, const gp_job *job, const char *only, gp_err *err) {
    memset(p, 0, sizeof *p);
    if (only) {
        const char *colon = strrchr(only, ':');
        char *end = NULL;
        if (colon) p->only_sparsity = strtod(colon + 1, &end);
        if (!colon || colon == only || !end || *end || !(p->only_sparsity >= 0 && p->only_sparsity < 1))
            return gp_errf(err, GP_EINPUT, "--only %s: expected METHOD:SPARSITY with a sparsity in [0, 1)", only);
        char *label = gp_strndup(only, (size_t)(colon - only));
        for (const gp_criterion *const *c = gp_criteria(); *c && !p->n; c++)
            plan_add(p, job, *c, in_list(&job->retrain.methods, *c), label);
        free(label);
        if (!p->n) {
            char valid[512];
            gp_criteria_names(valid, sizeof valid);
            return gp_errf(err, GP_EINPUT, "--only %s: \"%.*s\" is not a criterion (one of %s) or a variant that "
                           "`gaprune run --list` names", only, (int)(colon - only), only, valid);
        }
        p->sparsity = &p->only_sparsity;
        p->n_sparsity = 1;
        return GP_OK;
    }
    for (int i = 0; i < job->prune.methods.n; i++)
        plan_add(p, job, job->prune.methods.v[i], in_list(&job->retrain.methods, job->prune.methods.v[i]), NULL);
    for (int i = 0; i < job->retrain.methods.n; i++) plan_add(p, job, job->retrain.methods.v[i], true, NULL);
    p->sparsity = job->prune.sparsity;
    p->n_sparsity = job->prune.n_sparsity;
    return GP_OK;
}

static void plan_free(plan *p) {
    free(p->variant);
    free(p->retrain);
}

/* One mask: prune, evaluate, and when asked retrain and evaluate again; m->params is left
 * masked, or m is the smaller model of the pruned folder (scopes neurons, heads): the caller restores
 * the dense model. */
static gp_status run_mask(const gp_job *job, const gp_eval_opts *eo, const gp_prune_opts *po, gp_model *m,
                          const gp_prune_inputs *in, const gp_prune_variant *method, double p, bool retrain,
                          const char *eval_hash, const char *dense_dir, gp_report_row *r, gp_err *err) {
    snprintf(r->method, sizeof r->method, "%s", method->label);
    r->sparsity = p;
    gp_log0("run: stage 3/4, %s at %g", method->label, p);
    gp_pruned pr;
    gp_status rc = gp_prune_step(po, m, in, method, p, &pr, err);
    if (rc) return rc;
    r->achieved = pr.sparsity, r->zero_fraction = pr.zero_fraction, r->fisher_ratio = pr.fisher_ratio;
    r->fisher_negative = pr.fisher_negative;
    r->params = pr.params, r->disk_bytes = pr.disk_bytes;
    r->reconstructed = !isnan(pr.recon_err_before);
    r->recon_err_before = pr.recon_err_before, r->recon_err_after = pr.recon_err_after;
    char h[65], tag[160];
    hash_of(pr.hash, eval_hash, h);
    snprintf(tag, sizeof tag, "pruned-%s", pr.tag);
    /* whole neurons or heads: from here on m is the smaller model of the pruned folder (the same
     * embeddings as the masked one), so evaluation runs at its speed and retraining is a plain
     * dense retraining of it, with nothing to mask */
    const bool smaller = gp_scope_structured(&po->scope);
    if (smaller) {
        const gp_struct_kind k = gp_scope_struct(&po->scope);
        const int64_t dense_n = gp_model_struct_count(m, k);
        rc = gp_agree(gp_model_reopen(m, pr.pruned_dir, err), err);
        if (!rc && m->cfg.ragged)
            gp_log0("run: %s has per-block intermediate sizes of at most %lld of %lld MLP neurons (only gaprune reads "
                    "it): %zu parameters", pr.pruned_dir, (long long)gp_model_struct_count(m, k), (long long)dense_n,
                    m->table.total);
        else if (!rc)
            gp_log0("run: %s has %lld of %lld %s a block (%s %lld): %zu parameters", pr.pruned_dir,
                    (long long)gp_model_struct_count(m, k), (long long)dense_n, gp_struct_title(k),
                    k == GP_STRUCT_HEADS ? "heads" : "intermediate_size", (long long)gp_model_struct_count(m, k),
                    m->table.total);
    }
    if (!rc) rc = evaluate(eo, job->out_dir, m, tag, pr.pruned_dir, dense_dir, h, &r->one_shot, err);
    if (!rc && retrain && job->retrain.steps > 0) {
        gp_log0("run: stage 4/4, retraining %s", pr.tag);
        gp_train_opts o;
        gp_train_opts_retrain(job, &o);
        gp_retrained rt;
        rc = gp_retrain_step(&o, m, smaller ? NULL : &pr.mask, pr.tag, pr.mask_path, pr.hash, job->out_dir, &rt, err);
        if (!rc) {
            r->did_retrain = true;
            r->first_loss = rt.report.first_loss, r->last_loss = rt.report.last_loss;
            hash_of(rt.hash, eval_hash, h);
            snprintf(tag, sizeof tag, "retrained-%s", pr.tag);
            rc = evaluate(eo, job->out_dir, m, tag, rt.model_dir, dense_dir, h, &r->retrained, err);
        }
        gp_retrained_free(&rt);
    }
    gp_pruned_free(&pr);
    return rc;
}

/* retrain.methods names dense: the dense model retrained with the steps, data, schedule and
 * settings of the masks' retraining but no mask (tag "dense": OUT/retrain-dense.h5,
 * OUT/retrained-dense/, OUT/eval-retrained-dense.json; skipped when current, as every stage), the
 * baseline a pruned and retrained model is compared with in the report. The dense weights are
 * reread afterwards, so the masks start from the dense model. */
static gp_status retrain_dense(const gp_job *job, const gp_eval_opts *eo, gp_model *m, const gp_prune_inputs *in,
                               const char *eval_hash, gp_report_row *r, gp_err *err) {
    snprintf(r->method, sizeof r->method, "dense");
    r->sparsity = 0;
    gp_log0("run: stage 2/4, retraining the dense model alike (retrain.methods names dense)");
    gp_train_opts o;
    gp_train_opts_retrain(job, &o);
    gp_retrained rt;
    /* its base: the dense model's files (SHA-256), where a mask's retraining has the mask's hash */
    gp_status rc = gp_retrain_step(&o, m, NULL, "dense", NULL, in->model_sha, job->out_dir, &rt, err);
    if (!rc) {
        r->did_retrain = true;
        r->first_loss = rt.report.first_loss, r->last_loss = rt.report.last_loss;
        char h[65];
        hash_of(rt.hash, eval_hash, h);
        rc = evaluate(eo, job->out_dir, m, "retrained-dense", rt.model_dir, m->dir, h, &r->retrained, err);
    }
    gp_retrained_free(&rt);
    if (!rc) rc = gp_agree(gp_model_reload_weights(m, err), err);
    return rc;
}

/* Rank 0: how far every two masks of the run disagree (into disagree[n · n]), recorded in each
 * mask file too. */
static gp_status mask_disagreement(const gp_job *job, const gp_report_row *rows, int n, double *disagree, gp_err *err) {
    char **paths = gp_calloc((size_t)(n ? n : 1), sizeof(char *)), **tags = gp_calloc((size_t)(n ? n : 1), sizeof(char *));
    for (int i = 0; i < n; i++) {
        char tag[128], name[160];
        snprintf(tag, sizeof tag, "%s-%g", rows[i].method, rows[i].sparsity);
        snprintf(name, sizeof name, GP_MASK_FILE_FMT, tag);
        tags[i] = gp_strdup(tag);
        paths[i] = gp_path_join(job->out_dir, name);
    }
    gp_status rc = gp_mask_disagreement((const char *const *)paths, n, disagree, err);
    for (int i = 0; i < n && !rc && n > 1; i++)
        rc = gp_mask_file_set_disagreement((const char *const *)paths, (const char *const *)tags, disagree + (size_t)i * n,
                                           n, i, err);
    if (!rc && n > 1) gp_log0("run: the disagreement of every two of the %d masks is in report.md and in the mask files", n);
    for (int i = 0; i < n; i++) free(paths[i]), free(tags[i]);
    free(paths), free(tags);
    return rc;
}

/* Collective: rank 0's document (or none) on every rank. */
static void bcast_doc(cJSON **doc) {
    char *txt = gp_rank() == 0 && *doc ? cJSON_PrintUnformatted(*doc) : NULL;
    int have = txt != NULL;
    gp_bcast_bytes(&have, sizeof have, 0);
    if (!have) return;
    gp_bcast_string(&txt, 0);
    if (gp_rank() != 0) {
        cJSON_Delete(*doc);
        *doc = cJSON_Parse(txt);
    }
    free(txt);
}

/* The machine-readable summary line (rank 0). */
static void print_summary(const gp_job *job, const cJSON *dense, const cJSON *dense_retrained, const gp_report_row *rows,
                          int n, bool report, double seconds) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "command", "run");
    cJSON_AddStringToObject(s, "job", job->path);
    if (dense) cJSON_AddNumberToObject(s, "dense", gp_report_mean(dense));
    if (dense_retrained) cJSON_AddNumberToObject(s, "dense_retrained", gp_report_mean(dense_retrained));
    cJSON *res = cJSON_AddObjectToObject(s, "one_shot");
    cJSON *ret = cJSON_AddObjectToObject(s, "retrained");
    for (int i = 0; i < n; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s-%g", rows[i].method, rows[i].sparsity);
        if (rows[i].one_shot) cJSON_AddNumberToObject(res, key, gp_report_mean(rows[i].one_shot));
        if (rows[i].retrained) cJSON_AddNumberToObject(ret, key, gp_report_mean(rows[i].retrained));
    }
    char *rp = gp_path_join(job->out_dir, "report.md");
    if (report) cJSON_AddStringToObject(s, "report", rp);
    cJSON_AddNumberToObject(s, "seconds", seconds);
    char *line = cJSON_PrintUnformatted(s);
    printf("%s\n", line);
    fflush(stdout);
    free(line), free(rp);
    cJSON_Delete(s);
}

gp_status gp_run(gp_job *job, const char *only, bool list, double t0, gp_err *err) {
    plan pl;
    gp_status rc = plan_make(&pl, job, only, err);
    if (!rc && list) { /* rank 0 prints; nothing else is read */
        for (int a = 0; a < pl.n && gp_rank() == 0; a++)
            for (int b = 0; b < pl.n_sparsity; b++) printf("%s:%g\n", pl.variant[a].label, pl.sparsity[b]);
        fflush(stdout);
        plan_free(&pl);
        return GP_OK;
    }
    gp_eval_opts eo;
    gp_eval_opts_from_job(&eo, job);
    gp_prune_opts po;
    gp_prune_opts_from_job(&po, job);
    const bool have_sets = gp_eval_has_sets(&eo);
    gp_model *m = NULL;
    gp_sample_report samples = {0};
    /* every stage is planned before the model is read: one that will not fit stops the run now */
    if (!rc) rc = gp_plan_guard(job, "run", (1u << GP_PLAN_NSTAGES) - 1, err);
    /* and every input file read whole: a bad line of an evaluation set stops the run now, not
     * after the statistics */
    if (!rc) rc = gp_inputs_check(job, err);
    if (!rc) rc = gp_model_load(job->model.path, &m, err);
    if (!rc) {
        gp_job_model_settings(job, m);
        gp_eval_opts_from_job(&eo, job); /* with the effective max_length */
    }
    if (!rc) rc = gp_prune_check(&po, m, err);
    gp_stats_opts sto;
    gp_stats_opts_from_job(&sto, job);
    if (!rc) rc = gp_stats_check(&sto, m, err);
    char eval_hash[65] = "";
    if (!rc && gp_rank() == 0 && have_sets) rc = gp_eval_hash(&eo, eval_hash, err);
    if ((rc = gp_agree(rc, err))) goto out;
    /* --only: a sweep's array tasks share the folder, each its own pair of files (lock.h) */
    char pair[128];
    if (only) snprintf(pair, sizeof pair, "%s-%g", pl.variant[0].label, pl.only_sparsity);
    if ((rc = gp_lock_take(job->out_dir, only ? pair : NULL, err))) goto out;
    gp_bcast_bytes(eval_hash, sizeof eval_hash, 0);
    if (!have_sets) gp_warn("%s: [eval] names no evaluation set: no scores in the report", job->path);

    /* 0. the calibration sample, 1. statistics (of the sample when there is one) */
    const bool sampled = job->sample.method != GP_SAMPLE_NONE;
    if (sampled) {
        gp_log0("run: stage 0/4, calibration sample (%s, k %lld)", gp_sample_method_name(job->sample.method),
                (long long)job->sample.k);
        gp_sample_opts so;
        gp_sample_opts_from_job(&so, job);
        if ((rc = gp_sample_run(&so, m, &samples, err))) goto out;
    }
    gp_stats_report sr;
    gp_log0("run: stage 1/4, statistics");
    if ((rc = gp_stats_run(&sto, m, sampled ? &samples : NULL, &sr, err))) goto out;
    gp_prune_inputs in;
    if ((rc = gp_prune_inputs_init(&po, m, &in, err))) goto out;
    gp_prune_inputs_recon(&in, job, sampled ? &samples : NULL);

    /* 2. the dense model */
    gp_log0("run: stage 2/4, the dense model");
    cJSON *dense = NULL;
    char h[65];
    hash_of(in.model_sha, eval_hash, h);
    if (!only) rc = evaluate(&eo, job->out_dir, m, "dense", NULL, m->dir, h, &dense, err);
    /* and retrained alike when retrain.methods names dense (not with --only: a plain run does it) */
    gp_report_row dense_rt = {0};
    const bool with_dense_rt = job->retrain.dense && job->retrain.steps > 0 && !only;
    if (!rc && with_dense_rt) rc = retrain_dense(job, &eo, m, &in, eval_hash, &dense_rt, err);

    /* 3. one-shot pruning, 4. retraining (m may become a smaller model on the way: the dense
     * one's description is kept for the report) */
    char *dense_dir = gp_strdup(m->dir);
    gp_report_model rm = {dense_dir, m->table.total, gp_arch_get(m->cfg.arch)->name, 0};
    const int nrows = pl.n * pl.n_sparsity;
    gp_report_row *rows = gp_calloc((size_t)(nrows ? nrows : 1), sizeof *rows);
    int k = 0;
    for (int a = 0; a < pl.n && !rc; a++)
        for (int b = 0; b < pl.n_sparsity && !rc; b++) {
            rc = run_mask(job, &eo, &po, m, &in, &pl.variant[a], pl.sparsity[b], pl.retrain[a], eval_hash, rm.dir,
                          &rows[k++], err);
            /* the dense weights again for the next mask, reread rather than kept: one model in memory */
            if (!rc && k < nrows)
                rc = gp_agree(strcmp(m->dir, rm.dir) ? gp_model_reopen(m, rm.dir, err) : gp_model_reload_weights(m, err), err);
        }
    double *disagree = gp_calloc((size_t)(k ? k * k : 1), sizeof(double));
    if (!rc && gp_rank() == 0 && !only) rc = mask_disagreement(job, rows, k, disagree, err);
    rc = gp_agree(rc, err);
    if (!rc && !only) { /* every rank makes a share of the report's comparisons, from rank 0's documents */
        if (gp_rank() == 0) rm.disk_bytes = gp_weights_bytes(rm.dir);
        bcast_doc(&dense);
        bcast_doc(&dense_rt.retrained);
        for (int i = 0; i < k; i++) bcast_doc(&rows[i].one_shot), bcast_doc(&rows[i].retrained);
        rc = gp_report_write(job, &rm, dense, with_dense_rt ? &dense_rt : NULL, rows, k, disagree,
                             sampled ? &samples : NULL, sr.settings_hash, gp_now() - t0, err);
    }
    free(disagree);
    if (!(rc = gp_agree(rc, err)) && gp_rank() == 0)
        print_summary(job, dense, dense_rt.retrained, rows, k, !only, gp_now() - t0);
    cJSON_Delete(dense_rt.retrained);
    for (int i = 0; i < k; i++) cJSON_Delete(rows[i].one_shot), cJSON_Delete(rows[i].retrained);
    free(rows);
    free(dense_dir);
    cJSON_Delete(dense);
    gp_prune_inputs_free(&in);
out:
    plan_free(&pl);
    gp_sample_report_free(&samples);
    gp_model_free(m);
    return rc;
}
