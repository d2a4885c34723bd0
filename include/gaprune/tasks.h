/*
 * tasks.h — the evaluation sets of MTEB's task types beyond retrieval and STS: their registry
 * (job key, MTEB's name, main score, unit of the paired comparisons) and their files, read and
 * checked whole before any stage runs (a bad record is GP_EINPUT naming file:line).
 *
 * Layouts (UTF-8 JSONL, one object a line, blank lines skipped):
 *   classification       a folder with train.jsonl and test.jsonl of {"text", "label"} (label a
 *                        string or an integer); every test label must occur in train
 *   clustering           {"sentences": [...], "labels": [...]}: one clustering set a line, as long
 *                        as each other, at least 2 distinct labels
 *   pair_classification  {"sentence1", "sentence2", "label"} with label 0 or 1; some pair 1
 *   reranking            {"query", "positive": [...], "negative": [...]}, neither list empty
 *   summarization        {"text", "human_summaries": [...], "machine_summaries": [...],
 *                        "relevance": [...]}: a relevance number per machine summary
 *   bitext               {"sentence1", "sentence2"}: aligned translations
 * How an MTEB dataset converts to each: data/README.md.
 *
 * A loaded set holds every text to embed in one array and its units (what a paired comparison
 * resamples): classification the test texts (train texts first, then test), clustering the lines,
 * pair classification and bitext the pairs (texts 2u, 2u + 1), reranking the queries (the query,
 * its positives, its negatives), summarization the texts (their human, then machine summaries;
 * the text itself is not embedded, as in MTEB).
 *
 * Usage:
 *     gp_task_set s; gp_err err = {0};
 *     if (gp_task_load(GP_TASK_CLUSTERING, "sets.jsonl", &s, &err)) ...;   // every rank
 *     ... s.texts[0 .. s.n_texts), s.unit_off ...
 *     gp_task_set_free(&s);
 */
#pragma once

#include <stdint.h>

#include "gaprune/check.h"
#include "gaprune/job.h"

typedef enum {
    GP_TASK_CLASSIFICATION = 0,
    GP_TASK_CLUSTERING,
    GP_TASK_PAIR,
    GP_TASK_RERANKING,
    GP_TASK_SUMMARIZATION,
    GP_TASK_BITEXT,
    GP_TASK_NTYPES
} gp_task_type;

typedef struct {
    gp_task_type type;
    const char *key;  /* [eval] key and the eval file's object: "pair_classification" */
    const char *mteb; /* MTEB's type name: "PairClassification" */
    const char *main; /* the main score's name in the eval file */
    const char *unit; /* what the paired comparisons resample: "test texts", "queries" */
    const gp_path_list *(*paths)(const gp_job *job); /* the job's list of sets of this type */
} gp_task_info;

/* The registry, in gp_task_type order. */
const gp_task_info *gp_task_info_of(gp_task_type t);

/* Text roles (reranking, summarization). */
enum { GP_ROLE_QUERY = 0, GP_ROLE_POSITIVE = 1, GP_ROLE_NEGATIVE = 2, GP_ROLE_HUMAN = 0, GP_ROLE_MACHINE = 1 };

typedef struct {
    gp_task_type type;
    char *path;
    int64_t n_texts;
    char **texts;        /* [n_texts] */
    int64_t n_units;
    int64_t *unit_off;   /* [n_units + 1]: unit u's texts are [unit_off[u], unit_off[u + 1]) */
    int64_t *unit_line;  /* [n_units] the file line of each unit (classification: of test.jsonl) */
    int32_t *label;      /* [n_texts] classification: the label id; clustering: the label id within
                          * its line; pair classification: the pair's 0/1 on both texts; else 0 */
    uint8_t *role;       /* [n_texts] reranking, summarization (GP_ROLE_*); else 0 */
    double *relevance;   /* [n_texts] summarization: a machine summary's relevance; else 0 */
    int64_t n_train;     /* classification: texts [0, n_train) are train.jsonl's */
    int n_labels;        /* classification: distinct labels */
    char **label_names;  /* [n_labels] classification, as written (integers as text) */
} gp_task_set;

/* Reads and checks one set (rank-local; every rank may call it). */
gp_status gp_task_load(gp_task_type type, const char *path, gp_task_set *s, gp_err *err);
void gp_task_set_free(gp_task_set *s);
