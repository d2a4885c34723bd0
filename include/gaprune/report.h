/*
 * report.h — the last stage of `gaprune run`: OUT/report.md (a summary of what the run found,
 * generated from its comparisons; then one table per evaluation set and one of the mean main score:
 * dense, each mask one-shot and retrained, Δ against dense with its paired 95% interval and
 * p-value (compare.h), every pair of methods at one sparsity likewise, and with retrain.methods =
 * ..., dense every retrained model against the dense model retrained alike; then the masks:
 * sparsity achieved, zeros in the model, one encode timing each with the spread of the models that
 * compute alike, the DAI fisher/magnitude term ratio, the retraining loss, and how far every two
 * masks disagree) and OUT/report.json (the same numbers with every evaluation document), both
 * written via .tmp and renamed, report.json last; then the figures (figures.h) of report.json's
 * document, which report.md links.
 *
 * The comparisons are the stage's work (10,000 resamples each by default): every rank takes a share
 * of each one's resamples, rank 0 prints progress, and report.md says how long they took. A report
 * is rewritten only when something it shows changed: report.json records the hash of its inputs
 * (every evaluation document and row, the resamples and seed, the version of gaprune); when it
 * matches and report.md is there, neither file is opened for writing and no comparison is made.
 * The run times in the files are those of the run that wrote them.
 *
 * Usage (collective: every rank passes rank 0's documents, run_cmd.c broadcasts them):
 *     gp_report_row rows[n];   // one per method × sparsity, eval documents from eval.h
 *     gp_report_write(&job, &model_info, dense_doc, dense_retrained_row_or_NULL, rows, n, disagreement_or_NULL,
 *                     samples_or_NULL, stats_hash, seconds, &err);   // rank 0's status: gp_agree it
 *     double s = gp_report_mean(doc);   // main_score_mean of an eval document, NaN if none
 */
#pragma once

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "gaprune/check.h"
#include "gaprune/job.h"
#include "gaprune/sample.h"

typedef struct {
    char method[96]; /* the variant label (gp_prune_variant) */
    double sparsity;
    double achieved, zero_fraction, fisher_ratio; /* of the mask; fisher_ratio NaN without statistics */
    double fisher_negative; /* share of the selected weights whose Fisher term F_dom − βF_gen is negative; NaN but DAI */
    cJSON *one_shot, *retrained; /* eval documents (rank 0); NULL when not evaluated / not retrained */
    bool did_retrain;             /* retrained, evaluated or not (no [eval] sets still retrain) */
    double first_loss, last_loss; /* of the retraining */
    int64_t params, disk_bytes;   /* of the pruned folder (gp_pruned): fewer and smaller for whole neurons */
    /* reconstruction (gp_pruned): the mean relative output error on the calibration inputs of the
     * mask alone and as written; both NaN (or 0 in a zeroed row) when it did not run */
    bool reconstructed;
    double recon_err_before, recon_err_after;
} gp_report_row;

typedef struct {
    const char *dir;     /* the dense model's folder */
    size_t n_params;
    const char *arch;    /* "bert", "qwen3" */
    int64_t disk_bytes;  /* its safetensors files */
} gp_report_model;

/* Collective; rank 0 writes (its status: the other ranks return GP_OK). seconds: the run's time
 * before the report. dense_retrained: the dense model retrained alike (retrain.methods names dense; method
 * "dense", sparsity 0, its retrained evaluation and loss), else NULL: its scores fill the dense
 * row's retrained cells (against dense), and every retrained row is compared with it too (stage
 * retrained_vs_dense_retrained in report.json, a table of its own in report.md). samples: the
 * calibration sample when there was one, else NULL. disagreement: for every pair of the rows'
 * masks, the fraction of the selected weights one keeps and the other prunes ([nrows · nrows],
 * gp_mask_disagreement), or NULL. */
gp_status gp_report_write(const gp_job *job, const gp_report_model *model, const cJSON *dense,
                          const gp_report_row *dense_retrained, const gp_report_row *rows, int nrows,
                          const double *disagreement, const gp_sample_report *samples, const char *stats_settings_hash,
                          double seconds, gp_err *err);

/* main_score_mean of an evaluation document (NaN when there is none). */
double gp_report_mean(const cJSON *doc);
