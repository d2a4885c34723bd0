/*
 * job.h — the job: an INI file plus `--set section.key=value` overrides, parsed once on every
 * rank into typed values and checked completely before any stage starts.
 *
 * One table (job.c) lists every key with its type, default and help; it drives parsing of the
 * job file and of the overrides, validation, `gaprune help-job` and the dump of the effective
 * configuration at start-up, so they never disagree. Choices (prune.layers, stats.alignment,
 * sample.method, data.on_bad_record) become enums; prune.scope a parsed gp_scope; criteria
 * lists (prune.methods, retrain.methods) entries of the criteria registry (prune.h); sparsity
 * lists numbers; evaluation lists arrays of paths. Every error names where the value came from
 * — `FILE:LINE` for the job file, `--set section.key=value` for an override — and, for a choice
 * or a criterion, the valid values. Unknown sections or keys are errors, not ignored. Relative
 * paths are relative to the directory gaprune is started in. String values understand \n, \t,
 * \\ and \s (a space, which INI would otherwise trim at the end of a value) escapes.
 *
 * Rank 0 reads the file and broadcasts its bytes; every rank parses the same text, so all
 * ranks hold the same job. Stages read the typed sections (or the option structs they build
 * from them, e.g. gp_stats_opts), never the text.
 *
 * Usage:
 *     gp_job job; gp_err err = {0};
 *     gp_status rc = gp_job_load(&job, "jobs/demo.ini", sets, NULL, nsets, &err);   // collective
 *     if (gp_agree(rc, &err)) ...;
 *     for (int i = 0; i < job.prune.n_methods; i++) job.prune.methods[i]->name ...;
 *     gp_job_print(&job, stdout);                 // rank 0
 *     gp_job_free(&job);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gaprune/check.h"
#include "gaprune/kernels.h"
#include "gaprune/model.h"
#include "gaprune/prune.h"

typedef enum { GP_BAD_FAIL = 0, GP_BAD_SKIP = 1 } gp_on_bad;
/* model.weights: as the checkpoint stores them (16 bits when it is all BF16 or all F16), or float32 */
typedef enum { GP_WEIGHTS_CHECKPOINT = 0, GP_WEIGHTS_F32 = 1 } gp_weights;
extern const char *const gp_weights_names[]; /* in gp_weights order, NULL-terminated */
typedef enum { GP_SAMPLE_NONE = 0, GP_SAMPLE_KMEANS = 1, GP_SAMPLE_RANDOM = 2 } gp_sample_method;
typedef enum { GP_ALIGN_TENSOR = 0, GP_ALIGN_REFCODE = 1 } gp_alignment;
typedef enum { GP_LAYERS_MLP = 0, GP_LAYERS_ATTENTION = 1, GP_LAYERS_LINEAR = 2 } gp_layers;
typedef enum { GP_ACC_AUTO = 0, GP_ACC_REPLICATED = 1, GP_ACC_SHARDED = 2 } gp_accumulators;
/* retrain.optimizer_sharding (retrain.h): who holds the AdamW moments and the summed gradient */
typedef enum { GP_SHARD_AUTO = 0, GP_SHARD_NONE = 1, GP_SHARD_STATES = 2, GP_SHARD_GRADIENTS = 3 } gp_optimizer_sharding;

/* prune.reconstruct (reconstruct.h): none, or Optimal Brain Surgeon updates of the kept weights */
typedef enum { GP_RECON_NONE = 0, GP_RECON_OBS = 1 } gp_recon_kind;
/* prune.reconstruct_order: a block's inputs from the blocks before as reconstructed, or from the dense model */
typedef enum { GP_RECON_SEQUENTIAL = 0, GP_RECON_PARALLEL = 1 } gp_recon_order;

/* The names the job file uses for the enum values ("kmeans", "refcode", "mlp", ...). */
const char *gp_sample_method_name(gp_sample_method m);
const char *gp_alignment_name(gp_alignment a);
const char *gp_layers_name(gp_layers l);
const char *gp_optimizer_sharding_name(gp_optimizer_sharding s);
const char *gp_recon_kind_name(gp_recon_kind k);
const char *gp_recon_order_name(gp_recon_order o);

typedef struct {
    const gp_criterion **v; /* entries of the criteria registry, in the order given */
    int n;
} gp_criteria_list;

typedef struct {
    char **v;
    int n;
} gp_path_list;

typedef struct gp_job {
    char *path; /* as given */
    char *name; /* basename without .ini */
    char *out_dir;

    struct {
        char *path;
        int max_length;
        char *query_instruction; /* the query prefix; query_task, when set, has been turned into it */
        char *query_task;
        bool recompute;
        gp_compute compute; /* model.compute: the matmuls' arithmetic (kernels.h) */
        gp_weights weights; /* model.weights: how the weights are held in memory */
        gp_activations activations; /* model.activations: what training forwards keep (model.h) */
    } model;
    struct {
        char *domain, *general;
        int64_t max_samples;
        int64_t seed;
        gp_on_bad on_bad_record;
    } data;
    struct {
        gp_sample_method method;
        int64_t k;
        int iterations;
        char *model; /* "" = model.path */
        int64_t seed;
    } sample;
    struct {
        int fisher_batch;
        int checkpoint_every;
        gp_alignment alignment;
        gp_accumulators accumulators;
    } stats;
    struct {
        gp_criteria_list methods;
        double *sparsity; /* [n_sparsity], each in [0, 1) */
        int n_sparsity;
        gp_layers layers;
        gp_scope scope;
        double alpha;
        double *beta, *gamma; /* [n_beta], [n_gamma]: several make variants of the weighted criteria */
        int n_beta, n_gamma;
        int64_t seed;
        bool save_scores;
        char *reconstruct_text;      /* the list as given */
        gp_recon_kind *reconstruct;  /* [n_reconstruct]: several make variants of every criterion */
        int n_reconstruct;
        double dampening;
        double reconstruct_general;
        int block;
        gp_recon_order reconstruct_order;
        int64_t reconstruct_samples;
    } prune;
    struct {
        gp_criteria_list methods;
        int steps;
        double lr;
        int warmup;
        double weight_decay;
        int batch;
        int micro_batch;
        double grad_clip;
        int checkpoint_every;
        gp_optimizer_sharding optimizer_sharding;
        bool dense; /* retrain.methods names "dense": the dense model retrained alike, the baseline */
    } retrain;
    struct {
        gp_path_list retrieval, sts;
        /* MTEB's other task types (tasks.h): folders (classification) or JSONL files, lists */
        gp_path_list classification, clustering, pair_classification, reranking, summarization, bitext;
        int resamples;        /* of the report's paired comparisons (compare.h) */
        int64_t seed;         /* of their resamples */
        int batch;
    } eval;
    struct {
        char *init;
        char *corpus;
        int steps;
        double lr;
        int batch;
    } train;

    struct gp_job_text *text; /* each key's value as given and where it came from (job.c) */
} gp_job;

/* Collective. sets: "section.key=value" strings (from --set, applied in order after the file);
 * origins[i], when origins is not NULL and origins[i] is set, names where sets[i] came from in
 * messages (e.g. "--method gaprun"; default "--set section.key=value"). Everything is checked
 * here: GP_EINPUT with a message naming FILE:LINE or the option, and the valid values of a
 * choice. */
gp_status gp_job_load(gp_job *job, const char *path, const char *const *sets, const char *const *origins, int nsets,
                      gp_err *err);
/* Defaults only (no file, job name "job"), for tests and tools. */
void gp_job_defaults(gp_job *job);
void gp_job_free(gp_job *job);

/* Where the value of section.key came from: "FILE:LINE", "--set section.key=value" or
 * "default" (a static or job-owned string). For messages of later checks, e.g. a scope that
 * does not divide a tensor's width. */
const char *gp_job_origin(const gp_job *job, const char *section, const char *key);

/* "[section]" then "  key = value" lines of every key, on f. */
void gp_job_print(const gp_job *job, FILE *f);
/* The value of one key as text (malloc'd), or NULL for an unknown key. */
char *gp_job_get(const gp_job *job, const char *section, const char *key);
/* Documentation of every key (gaprune help-job), with the criteria and architectures. */
void gp_job_help(FILE *f);
