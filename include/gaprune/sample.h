/*
 * sample.h — the representative calibration sample (docs/DESIGN.md §1.2, §4.6, §6.3):
 * `gaprune sample`, and the first stage of `gaprune stats` and `gaprune run` when
 * sample.method is not none. The statistics then read the samples instead of the corpora.
 *
 * For each corpus (domain, then general), every valid triplet is a candidate (data.on_bad_record
 * applies; data.max_samples and data.seed do not: the sample replaces that selection).
 *   kmeans: the queries, exactly as the statistics read them (no model.query_instruction is
 *           added: calibration corpora carry their own prefixes), are embedded by sample.model
 *           (default: model.path) in batches of 32 consecutive candidates, rank r taking the
 *           batches [B·r/P, B·(r+1)/P) (so no embedding depends on the number of ranks), then
 *           L2-normalised; k-means (kmeans.h: k-means++ with sample.seed, at most
 *           sample.iterations Lloyd updates) runs over them, and the candidate nearest each
 *           centroid is kept, each at most once.
 *   random: sample.k candidates drawn uniformly with sample.seed (the k smallest keys
 *           splitmix64(seed, i), as data.max_samples draws with data.seed).
 * A corpus with at most sample.k candidates is kept whole.
 *
 * Outputs per corpus, each written as .tmp and renamed: OUT/sample-<corpus>.jsonl, the kept
 * records unchanged in corpus order (a JSONL line byte for byte; an element of a JSON array on
 * one line), and OUT/sample-<corpus>.h5 (centroids, the assignment of every candidate, the
 * nearest candidate of every centroid, the selection, inertia and points moved per iteration,
 * provenance, the settings hash and the .jsonl's SHA-256, `complete` last; sample_file.h names
 * them all). A corpus whose .h5 is complete for the same settings and whose .jsonl still has
 * that SHA-256 is not redone.
 *
 * Usage (collective; errors are reported and agreed, exit with the status):
 *     gp_sample_report rep; gp_err err = {0};
 *     gp_sample_opts o; gp_sample_opts_from_job(&o, &job);
 *     if (gp_sample_run(&o, model_or_NULL, &rep, &err)) ...;
 *     ... rep.jsonl[0] (domain), rep.jsonl[1] (general) ...
 *     gp_sample_report_free(&rep);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"
#include "gaprune/job.h"
#include "gaprune/model.h"

/* Queries per forward pass (the authors' batch), and the unit the candidates are shared out in:
 * a query is always embedded with the same neighbours, so its embedding, and hence the sample,
 * does not depend on the number of ranks. gaprune plan sizes the batch's activations by it. */
#define GP_SAMPLE_ENCODE_BATCH 32

typedef struct {
    char *jsonl[2], *h5[2];    /* OUT/sample-domain.*, OUT/sample-general.* */
    char settings_hash[2][65]; /* of each sample */
    int64_t candidates[2];     /* valid triplets of the corpus */
    int64_t selected[2];       /* triplets in the sample */
    bool up_to_date[2];        /* the sample was already complete */
    double seconds;
} gp_sample_report;

/* What the sample reads of the job. */
typedef struct {
    const char *corpus[2];     /* data.domain, data.general */
    int64_t data_seed;         /* data.seed */
    bool skip_bad;             /* data.on_bad_record = skip */
    gp_sample_method method;   /* sample.method */
    int64_t k;                 /* sample.k */
    int iterations;            /* sample.iterations */
    int64_t seed;              /* sample.seed */
    const char *model;         /* sample.model ("" = the job's model) */
    const char *job_model_path; /* model.path */
    int max_length;            /* model.max_length */
    const char *out_dir;
    const char *job_path;      /* for messages */
} gp_sample_opts;

void gp_sample_opts_from_job(gp_sample_opts *o, const gp_job *job);

/* Collective. model: the job's model, used when the sampling model is the same folder (may be
 * NULL: the sampling model is then loaded, only if a corpus needs embedding). GP_EINPUT for
 * sample.method = none, a missing sampling model, an empty or broken corpus. */
gp_status gp_sample_run(const gp_sample_opts *o, gp_model *model, gp_sample_report *rep, gp_err *err);
void gp_sample_report_free(gp_sample_report *rep);

/* The min(k, n) indices of [0, n) with the smallest keys gp_record_key(seed, i), ascending, into
 * out (room for min(k, n)). Returns their count. */
int64_t gp_sample_random(int64_t n, int64_t k, uint64_t seed, int64_t *out);
