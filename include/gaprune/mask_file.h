/*
 * mask_file.h — the layout of OUT/mask-<method>-<sparsity>.h5, a pruning mask file: every
 * dataset and attribute name and the /summary table, in one place for its writer (score.c) and
 * its readers (gp_mask_read in mask.c, pipeline.c, `gaprune inspect`). A name changed here
 * changes the file; raise GP_MASK_FORMAT_VERSION then.
 *
 *   /                  provenance (format = "gaprune-mask", format_version, gaprune_version,
 *                      command, created_utc, n_ranks) and the GP_MASK_ATTR_* below; `complete`
 *                      (h5.h) last
 *   /mask/<tensor>     uint8, the tensor's shape: 1 = keep, 0 = pruned
 *   /score/<tensor>    float32, the tensor's shape: the criterion's score of every weight, lower is
 *                      pruned first (only with prune.save_scores = true)
 *   /summary           one gp_mask_summary_row per selected tensor, in model order
 *   /neurons/keep      uint8 [layers, intermediate_size] (prune.scope = neurons only): 1 = the
 *                      block's MLP neuron is kept
 *   /neurons/score     float64 [layers, intermediate_size]: its structure score (the sum of its
 *                      weights' scores: rows of the up projections, column of the down projection)
 * <tensor> is the name the model files use (gp_model.src_names). Every dataset carries
 * `description` and `units`.
 *
 * Usage:
 *     char name[320];
 *     gp_mask_tensor(name, sizeof name, GP_MASK_KEEP, m->src_names[p]);   // "mask/<p>"
 *     gp_mask_summary_write(f, rows, n);                                   // the writer
 *     size_t n; gp_mask_summary_row *r = gp_mask_summary_read(f, &n);      // a reader
 *     ... r[i].param, r[i].kept ...
 *     gp_mask_summary_free(r, n);
 */
#pragma once

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GP_MASK_FILE_PREFIX "mask-"                      /* then "<method>-<sparsity>.h5" */
#define GP_MASK_FILE_FMT GP_MASK_FILE_PREFIX "%s.h5"     /* printf format of the tag */
#define GP_MASK_FORMAT "gaprune-mask"
#define GP_MASK_FORMAT_VERSION 1

/* ---- root attributes (besides provenance, description and complete) ---- */
#define GP_MASK_ATTR_METHOD "method"                         /* string: the criterion (prune.h) */
#define GP_MASK_ATTR_METHOD_DESCRIPTION "method_description" /* string: its formula in words */
#define GP_MASK_ATTR_SPARSITY_TARGET "sparsity_target"       /* float: fraction of selected weights to prune */
#define GP_MASK_ATTR_SPARSITY_ACHIEVED "sparsity_achieved"   /* float: fraction pruned, n_pruned / n_selected */
#define GP_MASK_ATTR_SCOPE "scope"                           /* string: global, layer, row, n:m, neurons, neurons-global or heads */
#define GP_MASK_ATTR_LAYERS "layers"                         /* string: prune.layers, mlp | attention | linear */
#define GP_MASK_ATTR_THRESHOLD "threshold"                   /* float: score of the last pruned weight (global), else NaN */
#define GP_MASK_ATTR_ALPHA "alpha"                           /* float: DAI alignment weight */
#define GP_MASK_ATTR_BETA "beta"                             /* float: DAI general-Fisher weight */
#define GP_MASK_ATTR_GAMMA "gamma"                           /* float: DAI magnitude weight */
#define GP_MASK_ATTR_ALIGNMENT "alignment"                   /* string: stats.alignment, tensor or refcode */
#define GP_MASK_ATTR_STATS_FILE "stats_file"                 /* string: the stats.h5 read, "" without */
#define GP_MASK_ATTR_SEED "seed"                             /* integer: prune.seed (the random criterion) */
#define GP_MASK_ATTR_MODEL_PATH "model_path"                 /* string: the dense model folder */
#define GP_MASK_ATTR_N_SELECTED "n_selected"                 /* integer: weights of the selected tensors */
#define GP_MASK_ATTR_N_PRUNED "n_pruned"                     /* integer: of which pruned */
#define GP_MASK_ATTR_MODEL_PARAMS "model_params"             /* integer: every parameter of the model */
#define GP_MASK_ATTR_MODEL_ZERO_FRACTION "model_zero_fraction" /* float: zeros of all parameters once applied */
#define GP_MASK_ATTR_FISHER_VS_MAGNITUDE_MEAN "fisher_vs_magnitude_mean" /* float: mean of /summary's ratio, NaN without statistics */
#define GP_MASK_ATTR_FISHER_NEGATIVE "fisher_term_negative_fraction" /* float: share of the selected weights whose F_dom - beta F_gen < 0, NaN without statistics */
#define GP_MASK_ATTR_NEURONS_PER_LAYER "neurons_per_layer"   /* integer: intermediate_size (scope neurons) */
#define GP_MASK_ATTR_NEURONS_REMOVED "neurons_removed_per_layer" /* integer: of which each block loses (scope neurons) */
#define GP_MASK_ATTR_NEURONS_REMOVED_TOTAL "neurons_removed" /* integer: of all blocks' (scope neurons-global) */
#define GP_MASK_ATTR_HEADS_PER_LAYER "heads_per_layer"       /* integer: attention heads (scope heads) */
#define GP_MASK_ATTR_HEADS_REMOVED "heads_removed_per_layer" /* integer: of which each block loses (scope heads) */
#define GP_MASK_ATTR_NEURON_FISHER_VS_MAGNITUDE "neurons_fisher_vs_magnitude" /* float: structured DAI's term ratio (gaprune-neurons) */
#define GP_MASK_ATTR_MEAN_FISHER_TERM "mean_fisher_term"       /* float: gaprune-scaled's M_F, the mean |(F_dom - beta F_gen)|w|| */
#define GP_MASK_ATTR_MEAN_MAGNITUDE_TERM "mean_magnitude_term" /* float: gaprune-scaled's M_m, the mean sqrt|w| */
#define GP_MASK_ATTR_GAMMA_EFFECTIVE "gamma_effective"         /* float: gamma M_F / M_m, the paper's DAI gamma it equals */
#define GP_MASK_ATTR_DISAGREEMENT "disagreement_with_"   /* then another mask's tag: float, the fraction of the selected weights one keeps and the other prunes (gaprune run) */
#define GP_MASK_ATTR_SETTINGS_HASH "settings_hash"           /* string: SHA-256 of the settings (pipeline.c), "" when none */
/* one-shot reconstruction (reconstruct.h), when it ran (prune.reconstruct = obs, or sparsegpt's mask) */
#define GP_MASK_ATTR_RECONSTRUCT "reconstruct"                 /* string: obs (weights solved again) or none (sparsegpt's mask alone) */
#define GP_MASK_ATTR_RECONSTRUCT_ORDER "reconstruct_order"     /* string: sequential or parallel */
#define GP_MASK_ATTR_DAMPENING "dampening"                     /* float: times mean diag H, added to H's diagonal */
#define GP_MASK_ATTR_RECONSTRUCT_GENERAL "reconstruct_general" /* float: lambda, the general inputs' weight in H */
#define GP_MASK_ATTR_BLOCK "block"                             /* integer: columns per lazy update block */
#define GP_MASK_ATTR_CALIBRATION_DOMAIN "calibration_domain"   /* string: the domain triplets read */
#define GP_MASK_ATTR_CALIBRATION_GENERAL "calibration_general" /* string: the general triplets read */
#define GP_MASK_ATTR_CALIBRATION_TEXTS_DOMAIN "calibration_texts_domain"   /* integer: texts (3 a triplet) */
#define GP_MASK_ATTR_CALIBRATION_TEXTS_GENERAL "calibration_texts_general"
#define GP_MASK_ATTR_CALIBRATION_TOKENS_DOMAIN "calibration_tokens_domain" /* integer: tokens of those texts */
#define GP_MASK_ATTR_CALIBRATION_TOKENS_GENERAL "calibration_tokens_general"
#define GP_MASK_ATTR_RECONSTRUCT_SECONDS "reconstruct_seconds" /* float: wall seconds of the reconstruction */

/* ---- datasets: the group, then gp_mask_tensor for "<group>/<tensor>" ---- */
#define GP_MASK_KEEP "mask"
#define GP_MASK_SCORE "score"
#define GP_MASK_SUMMARY "summary"
#define GP_MASK_NEURON_KEEP "neurons/keep"
#define GP_MASK_NEURON_SCORE "neurons/score"
#define GP_MASK_HEAD_KEEP "heads/keep"   /* scope heads: uint8 [layers, heads], 1 = kept */
#define GP_MASK_HEAD_SCORE "heads/score" /* float64 [layers, heads]: the structure scores */
#define GP_MASK_RECON_ERROR_BEFORE "reconstruction/error_before" /* float64 [/summary rows]: relative output error, mask alone */
#define GP_MASK_RECON_ERROR_AFTER "reconstruction/error_after"   /* float64 [/summary rows]: the same, written weights */

/* One row of /summary (a compound of these members, by these names). */
typedef struct {
    char *param;                /* "param": tensor name (variable-length UTF-8) */
    int32_t layer;              /* "layer": transformer block, -1 outside the blocks */
    int64_t numel, kept;        /* "numel", "kept": weights, weights kept */
    double sparsity;            /* "sparsity": 1 - kept / numel */
    double score_min, score_mean, score_max; /* "score_min" ...: the tensor's scores, criterion units */
    double fisher_vs_magnitude; /* "fisher_vs_magnitude": Σ|(F_dom − βF_gen)|θ|| / Σ γ√|θ|, NaN without
                                 * statistics (near 0: DAI ranks like magnitude pruning) */
} gp_mask_summary_row;

/* "<group>/<tensor>" into buf (truncated to size); returns buf. */
static inline const char *gp_mask_tensor(char *buf, size_t size, const char *group, const char *tensor) {
    snprintf(buf, size, "%s/%s", group, tensor);
    return buf;
}

/* Writes /summary (n rows, n may be 0) with its description. The rows' param is only read. */
void gp_mask_summary_write(hid_t file, const gp_mask_summary_row *rows, size_t n);
/* Reads /summary: malloc'd rows (*n of them), or NULL when the file has none it can read (the
 * rows are as the file has them: a damaged row has a NULL param or counts out of range). */
gp_mask_summary_row *gp_mask_summary_read(hid_t file, size_t *n);
void gp_mask_summary_free(gp_mask_summary_row *rows, size_t n);
