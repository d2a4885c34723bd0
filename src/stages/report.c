/* report.c — report.md and report.json of `gaprune run` (see report.h). */
#include "gaprune/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/compare.h"
#include "gaprune/export.h"
#include "gaprune/dist.h"
#include "gaprune/figures.h"
#include "gaprune/fs.h"
#include "gaprune/hash.h"
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

/* The comparisons of one rendering of the report. The report is rendered twice on every rank: once
 * counting its comparisons (none computed), then computing them, every rank taking its share of
 * each one's resamples (compare.h) and rank 0 printing progress (count, rate, ETA). */
typedef struct {
    const cJSON *a, *b; /* the two documents */
    int kind;
    const char *set;
    gp_paired d;
} memo;

typedef struct {
    const gp_job *job;
    bool counting;
    int64_t planned, done;
    gp_progress prog;
    /* every comparison of one set made so far: a task type of one set compares exactly it again
     * (the same weight and streams), so it is looked up rather than made twice */
    memo *made;
    int nmade;
} reporter;

/* One comparison of the sets (gp_paired_combined); while counting (the first pass, for the progress
 * line's total) only counted, and *out all NaN. */
static void compare_sets(reporter *rp, const gp_paired_set *sets, int nsets, gp_paired *out) {
    if (rp->counting) {
        rp->planned++;
        *out = (gp_paired){.delta = NAN, .lo = NAN, .hi = NAN, .se = NAN, .p = NAN, .n_needed = NAN};
        return;
    }
    gp_paired_combined(sets, nsets, rp->job->eval.resamples, (uint64_t)rp->job->eval.seed, out);
    gp_progress_update(&rp->prog, ++rp->done);
}

/* The statistic a set of kind k is compared by: the mean of its units, STS's Spearman correlation,
 * pair classification's average precision. */
static gp_paired_kind paired_kind(int k) {
    return k == K_STS ? GP_PAIRED_SPEARMAN : k == K_TASKS + GP_TASK_PAIR ? GP_PAIRED_AP : GP_PAIRED_MEAN;
}

/* b's main score on the set against a's, paired by unit: false when either document lacks the
 * units or they are not the same ones. */
static bool compare_docs(reporter *rp, const cJSON *a, const cJSON *b, int kind, const char *set, gp_paired *out) {
    if (!a || !b) return false;
    for (int i = 0; i < rp->nmade; i++)
        if (rp->made[i].a == a && rp->made[i].b == b && rp->made[i].kind == kind && !strcmp(rp->made[i].set, set)) {
            *out = rp->made[i].d;
            return true;
        }
    set_units ua, ub;
    const bool have_a = set_units_of(a, kind, set, &ua), have_b = set_units_of(b, kind, set, &ub);
    const bool ok = have_a && have_b && same_units(&ua, &ub);
    if (ok) {
        const gp_paired_set one = {paired_kind(kind), ua.v, ub.v, ua.gold, ua.n, 1.0};
        compare_sets(rp, &one, 1, out);
        rp->made = gp_realloc(rp->made, (size_t)(rp->nmade + 1) * sizeof *rp->made);
        rp->made[rp->nmade++] = (memo){a, b, kind, set, *out};
    }
    set_units_free(&ua), set_units_free(&ub);
    return ok;
}

/* doc's mean over task types (or over the sets of one type, kind only >= 0; retrieval and STS are
 * types too, as in the eval file's type_means) against base's, every set
 * resampled on its own units (gp_paired_combined), each type weighing the same and each set the
 * same within its type: false when a set lacks its units in either document. The sets are base's
 * with a main score. */
static bool compare_type_mean(reporter *rp, const cJSON *base, const cJSON *doc, int only, gp_paired *out) {
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
    if (only >= 0 && nsets == 1) /* the set's own comparison: weight 1, the same streams */
        for (const cJSON *x = cJSON_GetObjectItemCaseSensitive(base, kind_key(only))->child; x; x = x->next)
            if (!isnan(main_score(base, kind_key(only), x->string))) return compare_docs(rp, base, doc, only, x->string, out);
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
    if (ok) compare_sets(rp, ps, n, out);
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
static void score_cells(FILE *f, reporter *rp, const cJSON *base, double base_score, const cJSON *doc, int k,
                        const char *set, cJSON *comparisons, const char *stage, const char *a, const char *b,
                        bool *unpaired) {
    const double v = doc ? main_score(doc, kind_key(k), set) : NAN;
    gp_paired d;
    char rel[32];
    pct(rel, sizeof rel, v, base_score);
    if (isnan(v)) {
        fprintf(f, " | | | |");
    } else if (compare_docs(rp, base, doc, k, set, &d)) {
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

static double num(const cJSON *c, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static int cmp_double_asc(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The median of v (sorted here). */
static double median(double *v, int n) {
    if (n == 0) return NAN;
    qsort(v, (size_t)n, sizeof(double), cmp_double_asc);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void fisher_sign_notice(FILE *f, const gp_report_row *rows, int nrows, const double *disagreement);

/* The tables of report.md into f, every comparison into comparisons (while rp is counting, their
 * values are NaN: that pass only counts the comparisons). */
static void render_tables(reporter *rp, FILE *f, const gp_report_model *m, const cJSON *dense, const gp_report_row *dense_rt,
                          const gp_report_row *rows, int nrows, const double *disagreement, cJSON *comparisons) {
    const gp_job *job = rp->job;
    /* the dense model retrained alike (retrain.methods names dense): its evaluation, when there is one */
    const cJSON *drt = dense_rt ? dense_rt->retrained : NULL;
    /* one table per evaluation set, each difference with its interval, then the mean */
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
            score_cells(f, rp, dense, base, drt, k, sname, comparisons, "dense_retrained", "dense", "retrained-dense", &unpaired);
            fprintf(f, "\n");
            for (int i = 0; i < nrows; i++) {
                char tag[128];
                snprintf(tag, sizeof tag, "%s-%g", rows[i].method, rows[i].sparsity);
                fprintf(f, "| %s | %g | %.1f%% |", rows[i].method, rows[i].sparsity, 100 * rows[i].zero_fraction);
                for (int st = 0; st < 2; st++)
                    score_cells(f, rp, dense, base, st ? rows[i].retrained : rows[i].one_shot, k, sname, comparisons,
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
                        have[st] = compare_docs(rp, st ? rows[i].retrained : rows[i].one_shot,
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
                score_cells(f, rp, drt, dbase, rows[i].retrained, k, sname, comparisons, "retrained_vs_dense_retrained",
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
                    if (!is_dense && compare_type_mean(rp, dense, doc, q == nt ? -1 : types[q], &d)) {
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
               "encode texts/s (one timing) | fisher/magnitude term ratio | output error, mask alone → written | "
               "retraining loss (first → last step) |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n");
    /* the encode timings: one per model, so their noise shows only as the spread of the models that
     * compute alike (dense and every mask, whose zeros are still multiplied) */
    const double dense_rate = encode_rate(dense);
    double *same = gp_malloc((size_t)(nrows + 1) * sizeof(double));
    int nsame = 0;
    if (!isnan(dense_rate)) same[nsame++] = dense_rate;
    for (int i = 0; i < nrows; i++)
        if (rows[i].params == (int64_t)m->n_params && !isnan(encode_rate(rows[i].one_shot)))
            same[nsame++] = encode_rate(rows[i].one_shot);
    const double band_med = median(same, nsame); /* sorts same */
    const double band_lo = nsame ? same[0] : NAN, band_hi = nsame ? same[nsame - 1] : NAN;
    char rate[96] = "", ratio[64] = "";
    if (!isnan(dense_rate)) snprintf(rate, sizeof rate, "%.1f", dense_rate);
    char dloss[64] = "";
    if (dense_rt && dense_rt->did_retrain)
        snprintf(dloss, sizeof dloss, "%.4f → %.4f", dense_rt->first_loss, dense_rt->last_loss);
    fprintf(f, "| dense | 0 | | | %zu | %.2f | %s | | | %s |\n", m->n_params, (double)m->disk_bytes / 1e6, rate, dloss);
    for (int i = 0; i < nrows; i++) {
        char loss[64] = "";
        if (rows[i].did_retrain) snprintf(loss, sizeof loss, "%.4f → %.4f", rows[i].first_loss, rows[i].last_loss);
        const double r = encode_rate(rows[i].one_shot);
        const bool smaller = rows[i].params < (int64_t)m->n_params;
        rate[0] = ratio[0] = '\0';
        if (!isnan(r) && !smaller) snprintf(rate, sizeof rate, "%.1f (computes as dense)", r);
        else if (!isnan(r) && !isnan(dense_rate))
            snprintf(rate, sizeof rate, "%.1f (%.2f× dense%s)", r, r / dense_rate,
                     nsame > 1 && r >= band_lo && r <= band_hi ? ", within the timing spread" : "");
        else if (!isnan(r)) snprintf(rate, sizeof rate, "%.1f", r);
        if (!isnan(rows[i].fisher_ratio) && !isnan(rows[i].fisher_negative))
            snprintf(ratio, sizeof ratio, "%.3g (F term < 0: %.0f%%)", rows[i].fisher_ratio, 100 * rows[i].fisher_negative);
        else if (!isnan(rows[i].fisher_ratio)) snprintf(ratio, sizeof ratio, "%.3g", rows[i].fisher_ratio);
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
    const cJSON *threads = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(dense, "encode"), "threads");
    const int nt = cJSON_IsNumber(threads) ? (int)threads->valuedouble : 1;
    fprintf(f, "\nEncode texts/s: one timing per model, every text of its one-shot evaluation (all ranks, %d thread%s each) "
               "over the slowest rank's encoding time. A masked model computes exactly as the dense one does (its zeros "
               "are still multiplied), so it runs at the dense speed",
            nt, nt > 1 ? "s" : "");
    if (nsame > 1)
        fprintf(f, ": the %d models that compute alike (dense and the masks) timed %.1f to %.1f texts/s (median %.1f, "
                   "%.2f× to %.2f× of it), and that spread is this machine's timing noise, not a difference between them",
                nsame, band_lo, band_hi, band_med, band_lo / band_med, band_hi / band_med);
    fprintf(f, ". A smaller model (scopes neurons, heads) is faster only where its ratio to dense lies outside that "
               "spread.\n");
    free(same);
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
               "neurons). \"F term < 0\" is the share of the selected weights whose Fisher term F_dom − βF_gen is "
               "negative: weights the general corpus needs more than the domain, which DAI ranks below every weight of "
               "the same magnitude.\n");
    fisher_sign_notice(f, rows, nrows, disagreement);
}

/* Masks of the DAI family whose Fisher term is negative on most selected weights: the term then
 * pulls against magnitude nearly everywhere (with gaprune-scaled's terms of one scale, by as much
 * as magnitude itself), so the mask can depart from magnitude's by more than a random mask does.
 * What it means, and what a user can check, said where the numbers are. */
static void fisher_sign_notice(FILE *f, const gp_report_row *rows, int nrows, const double *disagreement) {
    for (int i = 0; i < nrows; i++) {
        if (isnan(rows[i].fisher_negative) || rows[i].fisher_negative <= 0.5) continue;
        const double p = rows[i].sparsity;
        fprintf(f, "\n**%s at %g: β times the general Fisher exceeds the domain Fisher on %.0f%% of the selected "
                   "weights.** Their Fisher term is negative, so DAI ranks them below every weight of the same magnitude "
                   "and prunes them first; that is its design (weights the domain needs less than general text go), but "
                   "when it holds for most weights the criterion works against magnitude nearly everywhere",
                rows[i].method, p, 100 * rows[i].fisher_negative);
        for (int j = 0; disagreement && j < nrows; j++)
            if (!strcmp(rows[j].method, "magnitude") && rows[j].sparsity == p) {
                fprintf(f, ": this mask and magnitude's disagree on %.1f%% of the weights, against %.1f%% for a random "
                           "mask of this sparsity (2p(1 − p))",
                        100 * disagreement[i * nrows + j], 100 * 2 * p * (1 - p));
                break;
            }
        fprintf(f, ". Check that the domain corpus differs from the general one as intended (a domain corpus close to "
                   "the general one makes the two Fisher estimates noise around each other), or weigh the general "
                   "Fisher less (`prune.beta`).\n");
    }
}

/* report.json but the comparisons and what wrote it (ranks, times): what the report shows of the
 * run's results, and so the content of its inputs hash. */
static cJSON *report_json(const gp_job *job, const gp_report_model *m, const cJSON *dense, const gp_report_row *dense_rt,
                          const gp_report_row *rows, int nrows, const double *disagreement, const gp_sample_report *samples,
                          const char *stats_settings_hash) {
    const cJSON *drt = dense_rt ? dense_rt->retrained : NULL;
    const double dense_rate = encode_rate(dense);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "job", job->path);
    cJSON_AddStringToObject(j, "model", m->dir);
    cJSON_AddNumberToObject(j, "model_params", (double)m->n_params);
    cJSON_AddNumberToObject(j, "model_weights_bytes", (double)m->disk_bytes);
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
        if (!isnan(rows[i].fisher_negative))
            cJSON_AddNumberToObject(r, "fisher_term_negative_fraction", rows[i].fisher_negative);
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
    return j;
}

/* The head of report.md: the job's settings. */
static void write_head(FILE *f, const gp_job *job, const gp_report_model *m, const gp_sample_report *samples) {
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
}

/* report.json's comparisons: how they were made, and every one (comparisons, taken). */
static void add_comparisons(cJSON *j, const gp_job *job, cJSON *comparisons) {
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
}

/* The comparisons of set (kind: kind_key or "type_mean") with a = "dense" in stage one_shot or
 * retrained (a pruned model against dense), up to max of them into out; how many there are. */
static int against_dense(const cJSON *comparisons, const char *set, const char *kind, const cJSON **out, int max) {
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, comparisons) {
        const char *cs = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "set")),
                   *ck = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "kind")),
                   *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "stage")),
                   *a = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "a"));
        if (!cs || !ck || !st || !a || strcmp(cs, set) || strcmp(ck, kind) || strcmp(a, "dense")) continue;
        if (strcmp(st, "one_shot") && strcmp(st, "retrained")) continue;
        if (n < max) out[n] = c;
        n++;
    }
    return n < max ? n : max;
}

/* One summary line: the best pruned model of a set against dense, and how many differ from it. */
static void summary_line(FILE *f, const cJSON *comparisons, const char *set, const char *kind, const char *title, double base) {
    enum { MAX = 4096 };
    const cJSON **c = gp_malloc(MAX * sizeof *c);
    const int n = against_dense(comparisons, set, kind, c, MAX);
    if (n == 0) {
        fprintf(f, "- **%s** (dense %.4f): no paired comparison with dense (the evaluation files lack per-unit scores)\n",
                title, base);
        free(c);
        return;
    }
    int best = 0, below = 0, above = 0;
    double *half = gp_malloc((size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) {
        const double d = num(c[i], "delta");
        if (d > num(c[best], "delta")) best = i;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c[i], "significant"))) *(d < 0 ? &below : &above) += 1;
        half[i] = (num(c[i], "hi") - num(c[i], "lo")) / 2;
    }
    const cJSON *b = c[best];
    const double d = num(b, "delta");
    const bool sig = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "significant"));
    const char *stage = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "stage"));
    fprintf(f, "- **%s** (dense %.4f): the best pruned model is %s %s, %.4f: Δ %+.4f [%+.4f, %+.4f], p %.4f, %s. "
               "%d of %d pruned models score significantly below dense, %d above; the rest are within noise (a "
               "95%% interval of ±%.4f, the median half-width here, holds differences too small to tell)\n",
            title, base, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "b")),
            !strcmp(stage, "retrained") ? "retrained" : "one-shot", base + d, d, num(b, "lo"), num(b, "hi"), num(b, "p"),
            sig ? (d < 0 ? "significantly below dense" : "significantly above dense") : "within noise of dense", below, n,
            above, median(half, n));
    free(half), free(c);
}

/* report.md's summary, from the comparisons made: for every set (and the mean over task types) the
 * best pruned model against dense and how many differ from it, what retraining changed, the limits. */
static void write_summary(FILE *f, const gp_job *job, const cJSON *dense, int nrows, const cJSON *comparisons) {
    fprintf(f, "## summary\n\nWhat this run found, from the tables below (Δ: a model's main score less dense's, its "
               "95%% interval and permutation p-value):\n\n");
    int nsets = 0;
    for (int k = 0; k < NKINDS; k++) {
        const cJSON *sets = cJSON_GetObjectItemCaseSensitive(dense, kind_key(k));
        for (const cJSON *x = sets ? sets->child : NULL; x; x = x->next) {
            const double base = main_score(dense, kind_key(k), x->string);
            if (isnan(base)) continue;
            char label[320];
            snprintf(label, sizeof label, "%s, %s", x->string, kind_metric(k));
            summary_line(f, comparisons, x->string, kind_key(k), label, base);
            nsets++;
        }
    }
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(dense, "main_score_type_mean");
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(dense, "type_means")) > 1 && cJSON_IsNumber(tm))
        summary_line(f, comparisons, "mean over types", "type_mean", "mean over task types", tm->valuedouble);
    if (!nsets) fprintf(f, "- no evaluation set: nothing was measured\n");
    /* retraining: each retrained model's Δ against its one-shot Δ, set by set */
    int cases = 0, up = 0;
    double *change = gp_malloc((size_t)(nrows * (nsets + 1) + 1) * sizeof(double));
    const cJSON *c;
    cJSON_ArrayForEach(c, comparisons) {
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "stage")),
                   *a = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "a")),
                   *b = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "b")),
                   *set = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "set")),
                   *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "kind"));
        if (!st || !a || !b || !set || !kind || strcmp(st, "retrained") || strcmp(a, "dense") || !strcmp(kind, "type_mean"))
            continue;
        const cJSON *o;
        cJSON_ArrayForEach(o, comparisons) {
            const char *ost = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "stage")),
                       *oa = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "a")),
                       *ob = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "b")),
                       *oset = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "set")),
                       *okind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "kind"));
            if (ost && oa && ob && oset && okind && !strcmp(ost, "one_shot") && !strcmp(oa, "dense") && !strcmp(ob, b) &&
                !strcmp(oset, set) && !strcmp(okind, kind) && cases < nrows * (nsets + 1)) {
                change[cases] = num(c, "delta") - num(o, "delta");
                up += change[cases] > 0;
                cases++;
                break;
            }
        }
    }
    if (cases)
        fprintf(f, "- retraining (%d steps): the retrained model scored above its one-shot model in %d of %d (set, model) "
                   "cases, by a median of %+.4f (a change without an interval of its own: each model's interval against "
                   "dense is in its set's table)\n",
                job->retrain.steps, up, cases, median(change, cases));
    free(change);
    /* the limits: how much of it is noise */
    int all = 0, noise = 0;
    cJSON_ArrayForEach(c, comparisons) {
        const char *a = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "a"));
        if (!a || strcmp(a, "dense")) continue;
        all++;
        noise += !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "significant"));
    }
    if (all)
        fprintf(f, "- limits: %d of the %d differences from dense are within noise (p ≥ 0.05 or an interval that holds 0); "
                   "an interval is of these evaluation sets (%d resamples), not of other data or seeds. A masked model "
                   "runs at the dense model's speed: the encode timings below are one measurement each.\n",
                noise, all, job->eval.resamples);
    fprintf(f, "\n");
}

/* The hash of what the report shows of the run (report_json's document, report.md's head) and of
 * how it compares (resamples, seed, the version of gaprune and its text). */
static void inputs_hash(const cJSON *j, const gp_job *job, const char *head, char out[65]) {
    char *txt = cJSON_PrintUnformatted(j);
    char extra[256];
    snprintf(extra, sizeof extra, "|resamples %d|seed %lld|gaprune %s", job->eval.resamples, (long long)job->eval.seed,
             GP_VERSION);
    gp_sha256 *h = gp_sha256_init();
    gp_sha256_update(h, txt, strlen(txt));
    gp_sha256_update(h, extra, strlen(extra));
    gp_sha256_update(h, head, strlen(head));
    gp_sha256_final(h, out);
    free(txt);
}

/* Rank 0: report.md exists and report.json (written last) was made from these inputs. */
static bool report_current(const char *md_path, const char *js_path, const char *hash) {
    if (!gp_file_exists(md_path)) return false;
    char *txt = NULL;
    size_t len = 0;
    gp_err e = {0};
    if (gp_read_file(js_path, &txt, &len, &e)) return false;
    cJSON *j = cJSON_Parse(txt);
    const char *h = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "inputs_hash"));
    const bool same = h && !strcmp(h, hash);
    cJSON_Delete(j);
    free(txt);
    return same;
}

/* A memory stream (open_memstream) and its buffer. */
typedef struct {
    FILE *f;
    char *buf;
    size_t len;
} memfile;

static void memfile_open(memfile *mf) {
    mf->buf = NULL, mf->len = 0;
    mf->f = open_memstream(&mf->buf, &mf->len);
    GP_CHECK(mf->f != NULL, "open_memstream failed");
}

static void memfile_close(memfile *mf) {
    fclose(mf->f);
    mf->f = NULL;
}

gp_status gp_report_write(const gp_job *job, const gp_report_model *m, const cJSON *dense, const gp_report_row *dense_rt,
                          const gp_report_row *rows, int nrows, const double *disagreement, const gp_sample_report *samples,
                          const char *stats_settings_hash, double seconds, gp_err *err) {
    char *md_path = gp_path_join(job->out_dir, "report.md"), *js_path = gp_path_join(job->out_dir, "report.json");
    cJSON *j = NULL;
    char hash[65] = "";
    int current = 0;
    memfile head = {0};
    if (gp_rank() == 0) {
        j = report_json(job, m, dense, dense_rt, rows, nrows, disagreement, samples, stats_settings_hash);
        memfile_open(&head);
        write_head(head.f, job, m, samples);
        memfile_close(&head);
        inputs_hash(j, job, head.buf, hash);
        current = report_current(md_path, js_path, hash);
    }
    gp_bcast_bytes(&current, sizeof current, 0);
    if (current) {
        gp_log0("report: %s and report.json are up to date (nothing they show changed): left as they are", md_path);
        free(head.buf);
        cJSON_Delete(j);
        free(md_path), free(js_path);
        return GP_OK;
    }
    /* the comparisons: counted, then made, every rank rendering alike (rank 0's text is kept) */
    const double t0 = gp_now();
    reporter rp = {.job = job, .counting = true};
    cJSON *comparisons = cJSON_CreateArray();
    memfile tables;
    memfile_open(&tables);
    render_tables(&rp, tables.f, m, dense, dense_rt, rows, nrows, disagreement, comparisons);
    memfile_close(&tables);
    free(tables.buf);
    cJSON_Delete(comparisons);
    const int64_t planned = rp.planned;
    gp_log0("report: %lld paired comparisons of %d resamples each, split over %d rank%s", (long long)planned,
            job->eval.resamples, gp_nranks(), gp_nranks() > 1 ? "s" : "");
    rp.counting = false;
    rp.nmade = 0;
    gp_progress_init(&rp.prog, "report", planned, "comparisons");
    rp.prog.every_s = 2;
    comparisons = cJSON_CreateArray();
    memfile_open(&tables);
    render_tables(&rp, tables.f, m, dense, dense_rt, rows, nrows, disagreement, comparisons);
    memfile_close(&tables);
    const double cmp_seconds = gp_now() - t0;
    free(rp.made);
    if (cmp_seconds > 2 && rp.prog.last_done != planned) gp_progress_done(&rp.prog);
    gp_status rc = GP_OK;
    if (gp_rank() == 0) {
        FILE *f = gp_file_create(md_path, err);
        if (!f) rc = GP_EINPUT;
        if (f) {
            fwrite(head.buf, 1, head.len, f);
            fprintf(f, "- written by a run on %d rank%s: %.0f s before the report (stages already complete are not "
                       "timed again), then its %lld paired comparisons in %.1f s; a rerun that changes nothing shown "
                       "here leaves this file as it is\n\n",
                    gp_nranks(), gp_nranks() > 1 ? "s" : "", seconds, (long long)planned, cmp_seconds);
            write_summary(f, job, dense, nrows, comparisons);
            fwrite(tables.buf, 1, tables.len, f);
            rc = gp_file_commit(f, md_path, err);
        }
        if (!rc) { /* report.json last: its inputs hash says that the report's files are whole */
            cJSON_AddStringToObject(j, "inputs_hash", hash);
            cJSON_AddNumberToObject(j, "n_ranks", gp_nranks());
            cJSON_AddNumberToObject(j, "seconds", seconds);
            cJSON_AddNumberToObject(j, "report_seconds", cmp_seconds);
            add_comparisons(j, job, comparisons);
            comparisons = NULL;
            /* the figures before report.json, whose commit says that everything of the report is written */
            rc = gp_figures_write(job->out_dir, j, err);
            char *txt = rc ? NULL : cJSON_Print(j);
            FILE *g = txt ? gp_file_create(js_path, err) : NULL;
            if (txt) rc = GP_EINPUT;
            if (g) {
                fputs(txt, g);
                rc = gp_file_commit(g, js_path, err);
            }
            free(txt);
        }
    }
    free(tables.buf), free(head.buf);
    cJSON_Delete(comparisons);
    cJSON_Delete(j);
    free(md_path), free(js_path);
    return rc;
}
