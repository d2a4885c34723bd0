/*
 * mask.h — pruning masks: computed on rank 0 from the model and stats.h5 with one criterion,
 * written to mask-<method>-<sparsity>.h5, broadcast bit-packed to every rank, applied to the
 * weights; and read back for retraining.
 *
 * Which weights: prune.layers = mlp | attention | linear (2-D weights of those kinds, named per
 * architecture). Scope (prune.scope): global (exactly floor(p·N) of all selected weights),
 * layer (floor(p·N_l) in every transformer block), row (floor(p·cols) in every output row),
 * n:m (the m−n lowest of every m consecutive inputs; p is then 1 − n/m). wanda compares within
 * rows by definition, so its global scope means row.
 *
 * mask-<method>-<sparsity>.h5:
 *   /            format="gaprune-mask", method, sparsity_target, sparsity_achieved, scope, layers,
 *                threshold, alpha, beta, gamma, alignment, stats_file, seed, model_path, n_selected,
 *                n_pruned, model_params, model_zero_fraction, fisher_vs_magnitude_mean, settings_hash,
 *                complete (last)
 *   /mask/<param>   uint8, the parameter's shape, 1 = keep, 0 = pruned
 *   /score/<param>  float32 (prune.save_scores = true)
 *   /summary        one row per tensor: param, layer, numel, kept, sparsity, score_min,
 *                   score_mean, score_max, fisher_vs_magnitude = Σ|(F_dom − βF_gen)|θ|| / Σ γ√|θ|
 *
 * Usage:
 *     gp_mask mask;
 *     if (rank == 0) rc = gp_mask_build(&cfg, model, &req, &mask, &err);
 *     if ((rc = gp_cli_agree(rc, &err))) ...;
 *     gp_mask_bcast(&mask, model);       // collective
 *     gp_mask_apply(&mask, model);       // pruned weights become exact zeros
 *     gp_mask_free(&mask);
 */
#pragma once

#include <stdint.h>

#include "gaprune/config.h"
#include "gaprune/model.h"

typedef struct {
    char name[160]; /* tensor name as the model files spell it */
    int param, layer;
    int64_t numel, kept;
    double score_min, score_mean, score_max;
    double fisher_vs_magnitude; /* NaN without statistics */
} gp_mask_row;

typedef struct {
    int n;           /* selected tensors */
    int *param;      /* [n] table index of each */
    int64_t *numel;  /* [n] */
    uint8_t **keep;  /* [n] numel bits each, 1 = keep */
    int64_t total;   /* selected weights */
    int64_t pruned;
    double threshold;          /* score of the last pruned weight (global scope), else NaN */
    double model_zero_fraction; /* zeros in all parameters once applied */
    gp_mask_row *rows;         /* [n], rank 0 after gp_mask_build only */
} gp_mask;

typedef struct {
    const char *method;
    double sparsity;
    const char *stats_path; /* may be NULL for criteria that need no statistics */
    const char *mask_path;  /* file to write */
    const char *settings_hash;
} gp_mask_request;

/* Rank 0: scores, selects, writes the mask file (via .tmp) and fills mask. */
gp_status gp_mask_build(const gp_config *cfg, const gp_model *m, const gp_mask_request *req, gp_mask *mask, gp_err *err);
/* Collective: rank 0's mask (bit-packed) to every rank. */
void gp_mask_bcast(gp_mask *mask, const gp_model *m);
/* Zeroes the pruned weights of m->params (and m->grads when allocated). */
void gp_mask_apply(const gp_mask *mask, gp_model *m);
/* Fraction of all of m's parameters that are exactly zero. */
double gp_model_zero_fraction(const gp_model *m);
/* Reads a mask file written for this model; GP_EINPUT naming the file and tensor otherwise. */
gp_status gp_mask_read(const char *path, const gp_model *m, gp_mask *mask, gp_err *err);
void gp_mask_free(gp_mask *mask);
