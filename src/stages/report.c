/* report.c — report.md and report.json of `gaprune run` (see report.h). */
#include "gaprune/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/compare.h"
#include "gaprune/export.h"
#include "gaprune/figures.h"
#include "gaprune/fs.h"
#include "gaprune/kernels.h"
#include "gaprune/log.h"
#include "gaprune/tasks.h"

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

/* ---- paired comparisons (compare.h) --------------------------------------------------------- */

/* The kinds of evaluation set: retrieval, STS, then MTEB's other task types in gp_task_type order. */
enum { K_RETRIEVAL, K_STS, K_TASKS, NKINDS = K_TASKS + GP_TASK_NTYPES };

/* The eval file's object of kind k, its main metric's name in tables, and the unit of its comparisons. */
static const char *kind_key(int k) { return k == K_RETRIEVAL ? "retrieval" : k == K_STS ? "sts" : gp_task_info_of((gp_task_type)(k - K_TASKS))->key; }
static const char *kind_metric(int k) { return k == K_RETRIEVAL ? "nDCG@10" : k == K_STS ? "Spearman" : gp_task_info_of((gp_task_type)(k - K_TASKS))->main; }
static const char *kind_unit(int k) { return k == K_RETRIEVAL ? "queries" : k == K_STS ? "pairs" : gp_task_info_of((gp_task_type)(k - K_TASKS))->unit; }

/* A set's units in an eval document: retrieval, every judged query's nDCG@10 (v) and the ids
 * array; STS, every pair's cosine (v) and gold score. */
typedef struct {
    int64_t n;
    double *v, *gold;
    const cJSON *ids;
} set_units;

static void set_units_free(set_units *u) {
    free(u->v), free(u->gold);
    memset(u, 0, sizeof *u);
}

/* The numbers of a JSON array of n (malloc'd), or NULL when it is not one of n finite numbers. */
static double *numbers(const cJSON *a, int64_t n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n || n < 1) return NULL;
    double *v = gp_malloc((size_t)n * sizeof(double));
    int64_t i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
            free(v);
            return NULL;
        }
        v[i++] = x->valuedouble;
    }
    return v;
}

/* False when the document has no usable units for the set (an edited or foreign file). */
static bool set_units_of(const cJSON *doc, int kind, const char *set, set_units *u) {
    memset(u, 0, sizeof *u);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, kind_key(kind)), set);
    if (kind == K_RETRIEVAL) {
        const cJSON *pq = cJSON_GetObjectItemCaseSensitive(s, "per_query");
        u->ids = cJSON_GetObjectItemCaseSensitive(pq, "ids");
        u->n = cJSON_IsArray(u->ids) ? cJSON_GetArraySize(u->ids) : 0;
        u->v = numbers(cJSON_GetObjectItemCaseSensitive(pq, "ndcg_at_10"), u->n);
        return u->v != NULL;
    }
    if (kind >= K_TASKS && kind != K_TASKS + GP_TASK_PAIR) { /* a value per unit, the main score their mean */
        const cJSON *vals = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "per_unit"), "values");
        u->n = cJSON_IsArray(vals) ? cJSON_GetArraySize(vals) : 0;
        u->v = numbers(vals, u->n);
        return u->v != NULL;
    }
    /* STS: cosines and gold scores; pair classification: cosines and 0/1 labels */
    const bool pair = kind == K_TASKS + GP_TASK_PAIR;
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(s, "per_pair"), *cos = cJSON_GetObjectItemCaseSensitive(pp, "cosine");
    u->n = cJSON_IsArray(cos) ? cJSON_GetArraySize(cos) : 0;
    u->v = numbers(cos, u->n);
    u->gold = numbers(cJSON_GetObjectItemCaseSensitive(pp, pair ? "label" : "gold"), u->n);
    if (u->v && u->gold && u->n >= 2) return true;
    set_units_free(u);
    return false;
}

/* The same units in the same order: the same query ids, or the same gold scores. */
static bool same_units(const set_units *a, const set_units *b) {
    if (a->n != b->n) return false;
    if (a->gold) return memcmp(a->gold, b->gold, (size_t)a->n * sizeof(double)) == 0;
    const cJSON *x = a->ids ? a->ids->child : NULL, *y = b->ids ? b->ids->child : NULL;
    for (; x && y; x = x->next, y = y->next)
        if (!cJSON_IsString(x) || !cJSON_IsString(y) || strcmp(x->valuestring, y->valuestring)) return false;
    return !x && !y;
}

/* The statistic a set of kind k is compared by: the mean of its units, STS's Spearman correlation,
 * pair classification's average precision. */
static gp_paired_kind paired_kind(int k) {
    return k == K_STS ? GP_PAIRED_SPEARMAN : k == K_TASKS + GP_TASK_PAIR ? GP_PAIRED_AP : GP_PAIRED_MEAN;
}

/* b's main score on the set against a's, paired by unit: false when either document lacks the
 * units or they are not the same ones. */
static bool compare_docs(const gp_job *job, const cJSON *a, const cJSON *b, int kind, const char *set, gp_paired *out) {
    if (!a || !b) return false;
    set_units ua, ub;
    const bool have_a = set_units_of(a, kind, set, &ua), have_b = set_units_of(b, kind, set, &ub);
    const bool ok = have_a && have_b && same_units(&ua, &ub);
    if (ok) {
        const gp_paired_set one = {paired_kind(kind), ua.v, ub.v, ua.gold, ua.n, 1.0};
        gp_paired_combined(&one, 1, job->eval.resamples, (uint64_t)job->eval.seed, out);
    }
    set_units_free(&ua), set_units_free(&ub);
    return ok;
}

/* doc's mean over task types (or over the sets of one type, kind only >= 0; retrieval and STS are
 * types too, as in the eval file's type_means) against base's, every set
 * resampled on its own units (gp_paired_combined), each type weighing the same and each set the
 * same within its type: false when a set lacks its units in either document. The sets are base's
 * with a main score. */
static bool compare_type_mean(const gp_job *job, const cJSON *base, const cJSON *doc, int only, gp_paired *out) {
    if (!base || !doc) return false;
    int per_type[NKINDS] = {0}, ntypes = 0, nsets = 0;
    for (int k = 0; k < NKINDS; k++) {
        if (only >= 0 && k != only) continue;
        const cJSON *sets = cJSON_GetObjectItemCaseSensitive(base, kind_key(k));
        for (const cJSON *x = sets ? sets->child : NULL; x; x = x->next)
            if (!isnan(main_score(base, kind_key(k), x->string))) per_type[k]++, nsets++;
    }
    for (int t = 0; t < NKINDS; t++) ntypes += per_type[t] > 0;
    if (!nsets) return false;
    gp_paired_set *ps = gp_calloc((size_t)nsets, sizeof *ps);
    set_units *ua = gp_calloc((size_t)nsets, sizeof *ua), *ub = gp_calloc((size_t)nsets, sizeof *ub);
    int n = 0;
    bool ok = true;
    for (int k = 0; k < NKINDS && ok; k++) {
        if (only >= 0 && k != only) continue;
        const cJSON *sets = cJSON_GetObjectItemCaseSensitive(base, kind_key(k));
        for (const cJSON *x = sets ? sets->child : NULL; x && ok; x = x->next) {
            if (isnan(main_score(base, kind_key(k), x->string))) continue;
            const bool ha = set_units_of(base, k, x->string, &ua[n]), hb = set_units_of(doc, k, x->string, &ub[n]);
            ok = ha && hb && same_units(&ua[n], &ub[n]);
            ps[n] = (gp_paired_set){paired_kind(k), ua[n].v, ub[n].v, ua[n].gold, ua[n].n,
                                    1.0 / ((double)ntypes * (double)per_type[k])};
            n++;
        }
    }
    if (ok) gp_paired_combined(ps, n, job->eval.resamples, (uint64_t)job->eval.seed, out);
    for (int i = 0; i < n; i++) set_units_free(&ua[i]), set_units_free(&ub[i]);
    free(ua), free(ub), free(ps);
    return ok;
}

/* "+0.0123 [-0.0040, +0.0290]" and "0.041*" (the p-value, * when significant) of a comparison. */
static void cells(const gp_paired *d, char *delta, size_t nd, char *p, size_t np) {
    snprintf(delta, nd, "%+.4f [%+.4f, %+.4f]", d->delta, d->lo, d->hi);
    snprintf(p, np, "%.4f%s", d->p, d->significant ? "*" : "");
}

/* Queries (pairs) a difference of this size needs: an integer, or "—" for none at all. */
static void needed(const gp_paired *d, char *buf, size_t n) {
    if (isfinite(d->n_needed) && d->n_needed < 1e12) snprintf(buf, n, "%.0f", ceil(d->n_needed));
    else snprintf(buf, n, "—");
}

static cJSON *comparison_json(const char *set, int kind, const char *stage, const char *a, const char *b, const gp_paired *d) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "set", set);
    cJSON_AddStringToObject(c, "kind", kind < 0 ? "type_mean" : kind_key(kind));
    cJSON_AddStringToObject(c, "stage", stage);
    cJSON_AddStringToObject(c, "a", a);
    cJSON_AddStringToObject(c, "b", b);
    cJSON_AddNumberToObject(c, "delta", d->delta);
    cJSON_AddNumberToObject(c, "lo", d->lo);
    cJSON_AddNumberToObject(c, "hi", d->hi);
    cJSON_AddNumberToObject(c, "se", d->se);
    cJSON_AddNumberToObject(c, "p", d->p);
    cJSON_AddBoolToObject(c, "significant", d->significant);
    cJSON_AddNumberToObject(c, "n", (double)d->n);
    if (isfinite(d->n_needed)) cJSON_AddNumberToObject(c, "n_needed", d->n_needed);
    else cJSON_AddNullToObject(c, "n_needed");
    return c;
}

static void pct(char *buf, size_t n, double v, double base) {
    if (isnan(v) || isnan(base) || base == 0) buf[0] = '\0';
    else snprintf(buf, n, "%+.2f%%", 100.0 * (v - base) / base);
}

/* The cells " score | Δ [interval] (rel) | p | needed |" of doc's score on the set against base's
 * (base_score: its score), paired when both documents have the units (the comparison is then
 * added to comparisons as stage, a → b; *unpaired set when not), or "| | | |" without a score. */
static void score_cells(FILE *f, const gp_job *job, const cJSON *base, double base_score, const cJSON *doc, int k,
                        const char *set, cJSON *comparisons, const char *stage, const char *a, const char *b,
                        bool *unpaired) {
    const double v = doc ? main_score(doc, kind_key(k), set) : NAN;
    gp_paired d;
    char rel[32];
    pct(rel, sizeof rel, v, base_score);
    if (isnan(v)) {
        fprintf(f, " | | | |");
    } else if (compare_docs(job, base, doc, k, set, &d)) {
        char dc[96], pc[32], nc[32];
        cells(&d, dc, sizeof dc, pc, sizeof pc);
        needed(&d, nc, sizeof nc);
        fprintf(f, " %.4f | %s (%s) | %s | %s |", v, dc, rel, pc, nc);
        cJSON_AddItemToArray(comparisons, comparison_json(set, k, stage, a, b, &d));
    } else {
        fprintf(f, " %.4f | %s | | |", v, rel);
        *unpaired = true;
    }
}

gp_status gp_report_write(const gp_job *job, const gp_report_model *m, const cJSON *dense, const gp_report_row *dense_rt,
                          const gp_report_row *rows, int nrows, const double *disagreement, const gp_sample_report *samples,
                          const char *stats_settings_hash, double seconds, gp_err *err) {
    /* the dense model retrained alike (retrain.methods names dense): its evaluation, when there is one */
    const cJSON *drt = dense_rt ? dense_rt->retrained : NULL;
    char *md_path = gp_path_join(job->out_dir, "report.md"), *js_path = gp_path_join(job->out_dir, "report.json");
    cJSON *comparisons = NULL; /* every paired comparison, for report.json */
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
    char *betas = gp_job_get(job, "prune", "beta"), *gammas = gp_job_get(job, "prune", "gamma");
    fprintf(f, "- pruning: %s weights, scope %s, alpha %g, beta %s, gamma %s, alignment %s\n", gp_layers_name(job->prune.layers),
            gp_scope_name(&job->prune.scope, scope, sizeof scope), job->prune.alpha, betas, gammas,
            gp_alignment_name(job->stats.alignment));
    free(betas), free(gammas);
    fprintf(f, "- retraining: %s, %d steps, lr %g, warm-up %d, batch %d\n",
            job->retrain.methods.n || job->retrain.dense ? retrain_methods : "none",
            job->retrain.steps, job->retrain.lr, job->retrain.warmup, job->retrain.batch);
    free(retrain_methods);
    fprintf(f, "- %d rank%s; this run took %.0f s (stages already complete are not timed again)\n\n", gp_nranks(),
            gp_nranks() > 1 ? "s" : "", seconds);
    /* one table per evaluation set, each difference with its interval, then the mean */
    comparisons = cJSON_CreateArray();
    int nsets = 0;
    for (int k = 0; k < NKINDS; k++) nsets += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(dense, kind_key(k)));
    bool unpaired = false; /* some difference had no per-unit vectors to compare */
    for (int k = 0; k < NKINDS; k++) {
        const cJSON *sets = cJSON_GetObjectItemCaseSensitive(dense, kind_key(k));
        const char *unit = kind_unit(k);
        for (const cJSON *set = sets ? sets->child : NULL; set; set = set->next) {
            const char *sname = set->string;
            if (k >= K_TASKS) fprintf(f, "## %s (%s, %s)\n\n", sname, gp_task_info_of((gp_task_type)(k - K_TASKS))->mteb, kind_metric(k));
            else fprintf(f, "## %s (%s)\n\n", sname, kind_metric(k));
            gp_figures_md_set(f, kind_key(k), sname);
            const double base = main_score(dense, kind_key(k), sname);
            fprintf(f, "| method | sparsity | zeros in the model | one-shot | Δ vs dense [95%% interval] | p | %s needed | "
                       "retrained | Δ vs dense [95%% interval] | p | %s needed |\n",
                    unit, unit);
            fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|\n");
            /* the dense row's retrained cells: the dense model retrained alike, against itself */
            fprintf(f, "| dense | 0 | | %.4f | | | |", base);
            score_cells(f, job, dense, base, drt, k, sname, comparisons, "dense_retrained", "dense", "retrained-dense", &unpaired);
            fprintf(f, "\n");
            for (int i = 0; i < nrows; i++) {
                char tag[128];
                snprintf(tag, sizeof tag, "%s-%g", rows[i].method, rows[i].sparsity);
                fprintf(f, "| %s | %g | %.1f%% |", rows[i].method, rows[i].sparsity, 100 * rows[i].zero_fraction);
                for (int st = 0; st < 2; st++)
                    score_cells(f, job, dense, base, st ? rows[i].retrained : rows[i].one_shot, k, sname, comparisons,
                                st ? "retrained" : "one_shot", "dense", tag, &unpaired);
                fprintf(f, "\n");
            }
            /* every pair of methods at the same sparsity */
            bool header = false;
            for (int i = 0; i < nrows; i++)
                for (int j = i + 1; j < nrows; j++) {
                    if (rows[i].sparsity != rows[j].sparsity) continue;
                    gp_paired d[2];
                    bool have[2];
                    for (int st = 0; st < 2; st++)
                        have[st] = compare_docs(job, st ? rows[i].retrained : rows[i].one_shot,
                                                st ? rows[j].retrained : rows[j].one_shot, k, sname, &d[st]);
                    if (!have[0] && !have[1]) continue;
                    if (!header)
                        fprintf(f, "\nPairs of methods at the same sparsity (Δ = the second's score less the first's):\n\n"
                                   "| sparsity | methods | one-shot Δ [95%% interval] | p | %s needed | retrained Δ [95%% "
                                   "interval] | p | %s needed |\n|---|---|---|---|---|---|---|---|\n",
                                unit, unit);
                    header = true;
                    fprintf(f, "| %g | %s → %s |", rows[i].sparsity, rows[i].method, rows[j].method);
                    char ta[128], tb[128];
                    snprintf(ta, sizeof ta, "%s-%g", rows[i].method, rows[i].sparsity);
                    snprintf(tb, sizeof tb, "%s-%g", rows[j].method, rows[j].sparsity);
                    for (int st = 0; st < 2; st++) {
                        if (!have[st]) {
                            fprintf(f, " | | |");
                            continue;
                        }
                        char dc[96], pc[32], nc[32];
                        cells(&d[st], dc, sizeof dc, pc, sizeof pc);
                        needed(&d[st], nc, sizeof nc);
                        fprintf(f, " %s | %s | %s |", dc, pc, nc);
                        cJSON_AddItemToArray(comparisons, comparison_json(sname, k, st ? "retrained" : "one_shot", ta, tb, &d[st]));
                    }
                    fprintf(f, "\n");
                }
            /* every retrained model against the dense model retrained alike: the fair baseline */
            const double dbase = drt ? main_score(drt, kind_key(k), sname) : NAN;
            header = false;
            for (int i = 0; i < nrows && !isnan(dbase); i++) {
                if (!rows[i].retrained) continue;
                if (!header)
                    fprintf(f, "\nRetrained models against the dense model retrained alike (the same steps, data, "
                               "schedule and settings, no mask: %.4f). Δ = the retrained model's score less the dense "
                               "retrained one's; the percentage is of the dense retrained score:\n\n"
                               "| method | sparsity | retrained | Δ vs dense retrained [95%% interval] | p | %s needed |\n"
                               "|---|---|---|---|---|---|\n",
                            dbase, unit);
                header = true;
                char tag[128];
                snprintf(tag, sizeof tag, "%s-%g", rows[i].method, rows[i].sparsity);
                fprintf(f, "| %s | %g |", rows[i].method, rows[i].sparsity);
                score_cells(f, job, drt, dbase, rows[i].retrained, k, sname, comparisons, "retrained_vs_dense_retrained",
                            "retrained-dense", tag, &unpaired);
                fprintf(f, "\n");
            }
            fprintf(f, "\n");
        }
    }
    if (nsets > 0)
        fprintf(f, "Every Δ is paired by the set's units (its table names them: queries, pairs, test texts, clustering "
                   "sets, texts): its 95%% interval is the 2.5th to 97.5th percentile of %d bootstrap resamples of them (seed "
                   "%lld; the statistic recomputed on each: a mean, a Spearman correlation, an average precision), p the "
                   "two-sided paired permutation test's (%d permutations); * marks p < 0.05 with an interval that excludes "
                   "0. \"needed\" is how many units a difference of this size and spread would need for such a test to "
                   "find it 80%% of the time (— for none). The percentages are of the dense score%s.%s\n\n",
                job->eval.resamples, (long long)job->eval.seed, job->eval.resamples,
                drt ? " (against the dense model retrained alike: of its score)" : "",
                unpaired ? " A Δ without an interval has no per-unit scores to pair (an evaluation file of gaprune "
                           "before format 2, or edited)."
                         : "");
    /* MTEB's averages: each task type's mean over its sets, and their mean (FinMTEB's and ChemTEB's
     * figure), each against dense with an interval that resamples every set's own units */
    const cJSON *dtm = cJSON_GetObjectItemCaseSensitive(dense, "type_means");
    if (cJSON_GetArraySize(dtm) > 1) {
        int types[NKINDS], nt = 0; /* the kinds with a type mean, in type_means' order */
        for (int k = 0; k < NKINDS; k++) {
            const char *name = k == K_RETRIEVAL ? "Retrieval" : k == K_STS ? "STS" : gp_task_info_of((gp_task_type)(k - K_TASKS))->mteb;
            if (cJSON_GetObjectItemCaseSensitive(dtm, name)) types[nt++] = k;
        }
        fprintf(f, "## task types\n\nEach type's mean over its sets, and the mean over types (FinMTEB's and ChemTEB's "
                   "figure), with Δ against dense [95%% interval]; the interval resamples every set's own units, each "
                   "type weighing the same:\n\n| method | sparsity | stage |");
        for (int i = 0; i < nt; i++)
            fprintf(f, " %s |", types[i] == K_RETRIEVAL ? "Retrieval" : types[i] == K_STS ? "STS" : gp_task_info_of((gp_task_type)(types[i] - K_TASKS))->mteb);
        fprintf(f, " mean over types | p |\n|---|---|---|");
        for (int i = 0; i < nt; i++) fprintf(f, "---|");
        fprintf(f, "---|---|\n");
        for (int i = -1; i < nrows; i++)
            for (int st = 0; st < 2; st++) {
                const cJSON *doc = i < 0 ? (st ? drt : dense) : st ? rows[i].retrained : rows[i].one_shot;
                if (!doc) continue;
                const bool is_dense = i < 0 && !st;
                const cJSON *tm = cJSON_GetObjectItemCaseSensitive(doc, "type_means");
                if (i < 0) fprintf(f, "| dense | 0 | %s |", st ? "retrained" : "");
                else fprintf(f, "| %s | %g | %s |", rows[i].method, rows[i].sparsity, st ? "retrained" : "one-shot");
                char tag[128];
                if (i < 0) snprintf(tag, sizeof tag, "retrained-dense");
                else snprintf(tag, sizeof tag, "%s-%g", rows[i].method, rows[i].sparsity);
                for (int q = 0; q <= nt; q++) {
                    const char *name = q == nt ? NULL
                                       : types[q] == K_RETRIEVAL ? "Retrieval"
                                       : types[q] == K_STS       ? "STS"
                                                                 : gp_task_info_of((gp_task_type)(types[q] - K_TASKS))->mteb;
                    const cJSON *v = name ? cJSON_GetObjectItemCaseSensitive(tm, name)
                                          : cJSON_GetObjectItemCaseSensitive(doc, "main_score_type_mean");
                    if (!cJSON_IsNumber(v)) {
                        fprintf(f, q == nt ? " | |" : " |");
                        continue;
                    }
                    gp_paired d;
                    if (!is_dense && compare_type_mean(job, dense, doc, q == nt ? -1 : types[q], &d)) {
                        fprintf(f, " %.4f (%+.4f [%+.4f, %+.4f]) |", v->valuedouble, d.delta, d.lo, d.hi);
                        if (q == nt) fprintf(f, " %.4f%s |", d.p, d.significant ? "*" : "");
                        cJSON_AddItemToArray(comparisons, comparison_json(name ? name : "mean over types", -1,
                                                                          st ? "retrained" : "one_shot", "dense", tag, &d));
                    } else {
                        fprintf(f, " %.4f |", v->valuedouble);
                        if (q == nt) fprintf(f, " |");
                    }
                }
                fprintf(f, "\n");
            }
        fprintf(f, "\n");
    }
    if (nsets > 1) {
        fprintf(f, "## mean of the main scores\n\n");
        const double base = gp_report_mean(dense);
        /* with the dense model retrained alike: its row's retrained cells, and a column against it */
        const double dbase = drt ? gp_report_mean(drt) : NAN;
        const bool vs_drt = !isnan(dbase);
        fprintf(f, "| method | sparsity | zeros in the model | one-shot | Δ vs dense | retrained | Δ vs dense |%s\n",
                vs_drt ? " Δ vs dense retrained |" : "");
        fprintf(f, "|---|---|---|---|---|---|---|%s\n", vs_drt ? "---|" : "");
        if (vs_drt) {
            char d2[32];
            pct(d2, sizeof d2, dbase, base);
            fprintf(f, "| dense | 0 | | %.4f | | %.4f | %s | |\n", base, dbase, d2);
        } else {
            fprintf(f, "| dense | 0 | | %.4f | | | |\n", base);
        }
        for (int i = 0; i < nrows; i++) {
            const double o = gp_report_mean(rows[i].one_shot), r = rows[i].retrained ? gp_report_mean(rows[i].retrained) : NAN;
            char d1[32], d2[32], d3[32], rs[32] = "";
            pct(d1, sizeof d1, o, base);
            pct(d2, sizeof d2, r, base);
            pct(d3, sizeof d3, r, dbase);
            if (!isnan(r)) snprintf(rs, sizeof rs, "%.4f", r);
            fprintf(f, "| %s | %g | %.1f%% | %.4f | %s | %s | %s |", rows[i].method, rows[i].sparsity,
                    100 * rows[i].zero_fraction, o, d1, rs, d2);
            fprintf(f, vs_drt ? " %s |\n" : "\n", d3);
        }
        fprintf(f, "\n(A mean over sets of different metrics has no paired interval; each set's table has them.)\n\n");
    }
    fprintf(f, "## masks\n\n| method | sparsity | achieved | zeros in the model | parameters | weights on disk (MB) | "
               "encode texts/s (× dense) | fisher/magnitude term ratio | output error, mask alone → written | "
               "retraining loss (first → last step) |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n");
    const double dense_rate = encode_rate(dense);
    char rate[64] = "", ratio[32] = "";
    if (!isnan(dense_rate)) snprintf(rate, sizeof rate, "%.1f", dense_rate);
    char dloss[64] = "";
    if (dense_rt && dense_rt->did_retrain)
        snprintf(dloss, sizeof dloss, "%.4f → %.4f", dense_rt->first_loss, dense_rt->last_loss);
    fprintf(f, "| dense | 0 | | | %zu | %.2f | %s | | | %s |\n", m->n_params, (double)m->disk_bytes / 1e6, rate, dloss);
    for (int i = 0; i < nrows; i++) {
        char loss[64] = "";
        if (rows[i].did_retrain) snprintf(loss, sizeof loss, "%.4f → %.4f", rows[i].first_loss, rows[i].last_loss);
        const double r = encode_rate(rows[i].one_shot);
        rate[0] = ratio[0] = '\0';
        if (!isnan(r)) snprintf(rate, sizeof rate, isnan(dense_rate) ? "%.1f" : "%.1f (%.2f×)", r, r / dense_rate);
        if (!isnan(rows[i].fisher_ratio)) snprintf(ratio, sizeof ratio, "%.3g", rows[i].fisher_ratio);
        char recon[64] = "";
        if (rows[i].reconstructed && !isnan(rows[i].recon_err_before))
            snprintf(recon, sizeof recon, "%.4f → %.4f", rows[i].recon_err_before, rows[i].recon_err_after);
        fprintf(f, "| %s | %g | %.4f | %.2f%% | %lld | %.2f | %s | %s | %s | %s |\n", rows[i].method, rows[i].sparsity,
                rows[i].achieved, 100 * rows[i].zero_fraction, (long long)rows[i].params, (double)rows[i].disk_bytes / 1e6,
                rate, ratio, recon, loss);
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
    bool retrained = dense_rt && dense_rt->did_retrain; /* the figures of the masks and losses (figures.h) */
    for (int i = 0; i < nrows; i++) gp_figures_md_mask(f, i, nrows, rows[i].method, rows[i].sparsity), retrained |= rows[i].did_retrain;
    if (retrained) gp_figures_md_loss(f);
    if (disagreement && nrows > 1) {
        fprintf(f, "\n## mask disagreement\n\nThe fraction of the selected weights that one mask keeps and the other "
                   "prunes (0: the same mask; two masks of one sparsity p disagree on at most 2·min(p, 1 − p) of them, two random ones on "
                   "about 2p(1 − p)):\n\n|  |");
        for (int j = 0; j < nrows; j++) fprintf(f, " %s-%g |", rows[j].method, rows[j].sparsity);
        fprintf(f, "\n|---|");
        for (int j = 0; j < nrows; j++) fprintf(f, "---|");
        fprintf(f, "\n");
        for (int i = 0; i < nrows; i++) {
            fprintf(f, "| %s-%g |", rows[i].method, rows[i].sparsity);
            for (int j = 0; j < nrows; j++)
                if (i == j) fprintf(f, " |");
                else fprintf(f, " %.4f |", disagreement[i * nrows + j]);
            fprintf(f, "\n");
        }
    }
    fprintf(f, "\nThe fisher/magnitude ratio, for the criteria that add the two terms, is Σ|(F_dom − βF_gen)|θ|| / Σ γ√|θ| "
               "per tensor, averaged: near 0, GAPrune's DAI ranks weights almost as magnitude pruning does (gaprune-scaled: "
               "the same with each term over its mean, about 1/γ; gaprune-neurons: Σ|Φ_dom − βΦ_gen| / Σ γ·m_j over the "
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
        if (dense_rt) { /* the dense model retrained alike: the baseline of the stage retrained_vs_dense_retrained */
            cJSON *dj = cJSON_AddObjectToObject(j, "dense_retrained");
            const double mean = gp_report_mean(drt);
            if (!isnan(mean)) cJSON_AddNumberToObject(dj, "main_score_mean", mean);
            else cJSON_AddNullToObject(dj, "main_score_mean");
            cJSON_AddItemToObject(dj, "eval", drt ? cJSON_Duplicate(drt, 1) : cJSON_CreateNull());
            if (dense_rt->did_retrain) {
                cJSON *t = cJSON_AddObjectToObject(dj, "retraining");
                cJSON_AddNumberToObject(t, "first_loss", dense_rt->first_loss);
                cJSON_AddNumberToObject(t, "last_loss", dense_rt->last_loss);
            }
        }
        cJSON *cmp = cJSON_AddObjectToObject(j, "comparisons");
        cJSON_AddNumberToObject(cmp, "resamples", job->eval.resamples);
        cJSON_AddNumberToObject(cmp, "seed", (double)job->eval.seed);
        cJSON_AddStringToObject(cmp, "method", "paired bootstrap 95% percentile interval; two-sided paired permutation p; "
                                               "significant = p < 0.05 and the interval excludes 0; n_needed = units for "
                                               "80% power at the 5% level");
        cJSON_AddStringToObject(cmp, "stages", "one_shot: dense -> a mask's one-shot model; retrained: dense -> its "
                                               "retrained model (a pair of methods: both one-shot, or both retrained); "
                                               "dense_retrained: dense -> retrained-dense, the dense model retrained "
                                               "alike; retrained_vs_dense_retrained: retrained-dense -> a mask's "
                                               "retrained model");
        cJSON_AddItemToObject(cmp, "pairs", comparisons);
        comparisons = NULL;
        if (disagreement) {
            cJSON *dj = cJSON_AddObjectToObject(j, "mask_disagreement"), *tags = cJSON_AddArrayToObject(dj, "masks"),
                  *fr = cJSON_AddArrayToObject(dj, "fraction");
            for (int i = 0; i < nrows; i++) {
                char tag[128];
                snprintf(tag, sizeof tag, "%s-%g", rows[i].method, rows[i].sparsity);
                cJSON_AddItemToArray(tags, cJSON_CreateString(tag));
                cJSON_AddItemToArray(fr, cJSON_CreateDoubleArray(disagreement + (size_t)i * nrows, nrows));
            }
        }
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
            if (rows[i].reconstructed && !isnan(rows[i].recon_err_before)) {
                cJSON *rec = cJSON_AddObjectToObject(r, "reconstruction");
                cJSON_AddNumberToObject(rec, "output_error_mask_alone", rows[i].recon_err_before);
                cJSON_AddNumberToObject(rec, "output_error_written", rows[i].recon_err_after);
            }
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
        if (!rc) rc = gp_figures_write(job->out_dir, j, err);
        cJSON_Delete(j);
    }
done:
    cJSON_Delete(comparisons);
    free(md_path), free(js_path);
    return rc;
}
