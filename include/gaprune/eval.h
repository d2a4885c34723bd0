/*
 * eval.h — retrieval and STS evaluation, with MTEB's metric names.
 *
 * Retrieval (BEIR folders: corpus.jsonl, queries.jsonl, qrels/test.tsv with a header row,
 * graded scores and string ids): every rank embeds a contiguous share of the corpus and of the
 * queries (queries with model.query_instruction in front), the query embeddings are gathered
 * everywhere, each rank ranks its corpus share for every query by exact cosine and keeps its
 * best 100, and rank 0 merges them and scores:
 *   ndcg_at_10   Σ_{i≤10} rel_i / log2(i+1), divided by the same sum over the ideal order
 *                (linear gains, as pytrec_eval's ndcg_cut)
 *   mrr_at_10    1 / rank of the first relevant document in the top 10 (0 if none)
 *   recall_at_k  relevant documents in the top k / all relevant documents
 *   map_at_100   Σ over relevant documents in the top 100 of precision at their rank,
 *                divided by the number of relevant documents (pytrec_eval's map_cut)
 * A document is relevant when its grade is > 0. Equal scores rank the lower corpus index first.
 * Queries with qrels but no relevant document count as 0. main_score = ndcg_at_10.
 * STS (JSONL {sentence1, sentence2, score}): Spearman (average ranks for ties) and Pearson of
 * the cosine similarity with the gold score; main_score = cosine_spearman.
 *
 * Usage (collective):
 *     gp_eval_opts o; gp_eval_opts_from_job(&o, &job);
 *     cJSON *res; gp_eval_model(&o, model, "dense", "out/job/eval-dense.json", &res, &err);
 */
#pragma once

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"
#include "gaprune/job.h"
#include "gaprune/model.h"
#include "gaprune/tasks.h"

/* Documents each rank keeps per query before rank 0 merges the lists (the metrics read the top
 * 100); gaprune plan sizes the lists by it. */
#define GP_EVAL_TOPK 100
/* Queries embedded everywhere and ranked at once: what bounds a rank's query embeddings and
 * lists, whatever the number of queries; gaprune plan sizes them by it. */
#define GP_EVAL_QUERY_BLOCK 4096

typedef struct {
    double ndcg_at_10, mrr_at_10, recall_at_10, recall_at_100, map_at_100;
} gp_retrieval_metrics;

typedef struct {
    int64_t doc;
    int grade;
} gp_qrel;

/* Metrics of one query: ranked = corpus indices, best first (n of them); qrels of that query. */
void gp_query_metrics(const int64_t *ranked, int n, const gp_qrel *qrels, int nq, gp_retrieval_metrics *out);

double gp_pearson(const double *x, const double *y, int64_t n);
/* Pearson of the ranks, ties sharing their average rank. */
double gp_spearman(const double *x, const double *y, int64_t n);

/* What evaluation reads of the job. */
typedef struct {
    const char *const *retrieval; /* eval.retrieval: BEIR folders */
    int n_retrieval;
    const char *const *sts; /* eval.sts: STS JSONL files */
    int n_sts;
    const char *const *tasks[GP_TASK_NTYPES]; /* eval.classification, .clustering, ...: tasks.h */
    int n_tasks[GP_TASK_NTYPES];
    int batch;                     /* eval.batch */
    int max_length;                /* model.max_length */
    const char *query_instruction; /* model.query_instruction ("" = the model's own prompt) */
    const char *job_path;          /* for messages */
} gp_eval_opts;

void gp_eval_opts_from_job(gp_eval_opts *o, const gp_job *job);
/* Whether [eval] names any set at all. */
bool gp_eval_has_sets(const gp_eval_opts *o);

/* The units of one set's score, for paired comparisons of two evaluations (compare.h): for
 * retrieval the judged queries in queries.jsonl order, their ids and metrics (the set's are their
 * means); for STS every pair's cosine and gold score, in file order. */
typedef struct {
    int64_t n;
    char **ids;                    /* [n] retrieval */
    gp_retrieval_metrics *metrics; /* [n] retrieval */
    double *cosine, *gold;         /* [n] STS */
} gp_eval_units;

void gp_eval_units_free(gp_eval_units *u);

/* Collective: one BEIR folder. units (rank 0; NULL: not wanted) gets every judged query's. */
gp_status gp_eval_retrieval(const gp_eval_opts *o, gp_model *m, const char *dir, gp_retrieval_metrics *out,
                            int64_t *n_queries, gp_eval_units *units, gp_err *err);
/* Collective: one STS file. units (rank 0; NULL: not wanted) gets every pair's. */
gp_status gp_eval_sts(const gp_eval_opts *o, gp_model *m, const char *path, double *spearman, double *pearson,
                      int64_t *n_pairs, gp_eval_units *units, gp_err *err);

/* Classification as MTEB runs it (taskmetrics.h): experiments and training texts per label. */
#define GP_EVAL_CLS_EXPERIMENTS 10
#define GP_EVAL_CLS_PER_LABEL 8
/* k-means of a clustering set: Lloyd updates at most, and the seed. */
#define GP_EVAL_KMEANS_ITERATIONS 100
#define GP_EVAL_SEED 42

/* Collective: one set of an MTEB task type (tasks.h) — every text embedded (the ranks' shares
 * all-gathered), then its metrics (taskmetrics.h; clustering's k-means over the ranks, kmeans.h);
 * rank 0 fills out (when not NULL) with the set's object of the eval file: main_score, the
 * type's metrics, n_units and its per-unit values ("per_unit": {"values"}, or for pair
 * classification "per_pair": {"cosine", "label"}), and *main. */
gp_status gp_eval_task(const gp_eval_opts *o, gp_model *m, gp_task_type type, const char *path, cJSON *out, double *main,
                       gp_err *err);

/* The eval files' format: 2 added the per-unit vectors ("per_query", "per_pair") that paired
 * comparisons read; a file of another version is not current (it is evaluated again). */
#define GP_EVAL_FORMAT_VERSION 2

/* Collective: every set of [eval] (retrieval, sts) for the model as it is in memory; rank 0
 * writes json_path (via .tmp; settings_hash, when not NULL, is stored in it) and, when result
 * is not NULL, returns the document (caller frees, rank 0; NULL elsewhere). folder: the folder
 * the weights in memory were written to (a pruned or retrained model), named as "model"; NULL
 * when they are m->dir's own. source: the dense model they were made from, named as
 * "source_model" (NULL: m->dir, which is the pruned folder itself once a structured scope has
 * reopened m from it). */
gp_status gp_eval_model(const gp_eval_opts *o, gp_model *m, const char *tag, const char *folder, const char *source,
                        const char *json_path, const char *settings_hash, cJSON **result, gp_err *err);
/* Rank 0: the results in json_path when they carry settings_hash, else NULL. */
cJSON *gp_eval_load_current(const char *json_path, const char *settings_hash);
/* Rank 0: SHA-256 over the [eval] settings and the bytes of every evaluation file. */
gp_status gp_eval_hash(const gp_eval_opts *o, char hex[65], gp_err *err);
/* Collective: every evaluation file read and checked whole by the loaders the evaluation uses
 * (same file:line messages), so that a bad record stops a job before its first stage and not
 * after the statistics. Rank 0 parses every line of each retrieval set (the _ids, as it does
 * when it evaluates) and its qrels; the other ranks, which read only a share of a corpus,
 * check that they can open it; STS and the MTEB task types' sets, which every rank loads
 * whole, are loaded on every rank. Cost: one streaming pass over the files at JSON-parsing
 * speed (see DESIGN.md, "Inputs checked up front"). */
gp_status gp_eval_check(const gp_eval_opts *o, gp_err *err);
