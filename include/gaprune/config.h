/*
 * config.h — the job: an INI file plus `--set section.key=value` overrides.
 *
 * One table (config.c) lists every key with its type, default and help; it drives parsing of
 * the job file, the overrides, validation, `gaprune help-job` and the dump of the effective
 * configuration at start-up, so they never disagree. Unknown sections or keys are errors
 * (exit 2) naming the file and line, not ignored. Relative paths are relative to the directory
 * gaprune is started in. String values understand \n, \t, \\ and \s (a space, which INI would
 * otherwise trim at the end of a value) escapes, for instructions.
 *
 * Rank 0 reads the file and broadcasts its bytes; every rank parses the same text, so all
 * ranks hold the same configuration.
 *
 * Usage:
 *     gp_config cfg; gp_err err = {0};
 *     gp_status rc = gp_config_load(&cfg, "jobs/demo.ini", sets, nsets, &err);   // collective
 *     if (gp_agree(rc, &err)) ...;
 *     gp_config_print(&cfg);                      // rank 0
 *     gp_config_free(&cfg);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gaprune/check.h"

typedef enum { GP_BAD_FAIL = 0, GP_BAD_SKIP = 1 } gp_on_bad;

typedef struct gp_config {
    char *job_path; /* as given */
    char *job_name; /* basename without .ini */

    /* [model] */
    char *model_path;
    int max_length;
    char *query_instruction; /* the query prefix; query_task, when set, has been turned into it */
    char *query_task;
    /* [data] */
    char *domain, *general;
    int64_t max_samples;
    int64_t data_seed;
    int on_bad_record; /* gp_on_bad */
    /* [sample] */
    char *sample_method;
    int64_t sample_k;
    int sample_iterations;
    char *sample_model;
    int64_t sample_seed;
    /* [stats] */
    int fisher_batch;
    int checkpoint_every;
    char *alignment;
    /* [prune] */
    char *prune_methods;
    char *sparsity; /* a list makes a sweep */
    char *layers;
    char *scope;
    double alpha, beta, gamma;
    int64_t prune_seed;
    bool save_scores;
    /* [retrain] */
    char *retrain_methods;
    int retrain_steps;
    double lr;
    int warmup;
    double weight_decay;
    int retrain_batch;
    double grad_clip;
    int retrain_checkpoint_every;
    /* [eval] */
    char *eval_retrieval;
    char *eval_sts;
    int eval_batch;
    /* [train] */
    char *train_init;
    char *train_corpus;
    int train_steps;
    double train_lr;
    int train_batch;
    /* [output] */
    char *out_dir;
} gp_config;

/* Collective. sets: "section.key=value" strings (from --set). */
gp_status gp_config_load(gp_config *cfg, const char *path, const char *const *sets, int nsets, gp_err *err);
/* Defaults only (no file), for tests and tools. */
void gp_config_defaults(gp_config *cfg);
/* Applies one "section.key=value"; `where` names the origin in messages. */
gp_status gp_config_set(gp_config *cfg, const char *section, const char *key, const char *value, const char *where,
                        gp_err *err);
void gp_config_free(gp_config *cfg);

/* "[section] key = value" lines of every key, on f. */
void gp_config_print(const gp_config *cfg, FILE *f);
/* The value of one key as text (malloc'd), or NULL for an unknown key. */
char *gp_config_get(const gp_config *cfg, const char *section, const char *key);
/* Documentation of every key (gaprune help-job). */
void gp_config_help(FILE *f);
