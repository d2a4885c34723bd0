/*
 * stats_file.h — the layout of OUT/stats.h5, the statistics file: every group, dataset and
 * attribute name, in one place for its writer (stats.c) and its readers (score.c, pipeline.c,
 * `gaprune inspect`). A name changed here changes the file; raise GP_STATS_FORMAT_VERSION then.
 *
 *   /                      provenance (format = "gaprune-stats", format_version, gaprune_version,
 *                          command, created_utc, n_ranks) and the GP_STATS_ATTR_* below;
 *                          `complete` (h5.h) last
 *   /domain, /general      one group per corpus, attributes GP_STATS_CORPUS_*
 *   /<corpus>/fisher/<tensor>     float32, the tensor's shape: diagonal empirical Fisher,
 *                                 Σ_units g² / n_triplets, in (loss / parameter)²
 *   /<corpus>/grad_mean/<tensor>  float32, the tensor's shape: Σ_units g / n_units, in
 *                                 loss / parameter
 *   /activations/<tensor>  float32 [inputs], linear weights only: Σ over the domain corpus's
 *                          tokens of x_k² per input feature k (Wanda's |x_k|²), in activation²
 *   /alignment/cosine      float64 [tensors]: cosine of the mean gradients G_general and G_domain
 *   /alignment/names       UTF-8 strings [tensors]: the tensor of each row of cosine
 * When prune.layers selects the MLP (every block's down projection), per MLP neuron j of block l:
 *   /<corpus>/neuron_fisher     float64 [layers, intermediate_size]: Fisher of a gate on the
 *                               neuron's output, Σ_units (∂L/∂gate_j)² / n_triplets, in loss²,
 *                               with ∂L/∂gate_j = Σ_o W_down[o,j] ∂L/∂W_down[o,j] at gate 1
 *   /<corpus>/neuron_grad_mean  float64 [layers, intermediate_size]: Σ_units ∂L/∂gate_j / n_units
 *   /alignment/neuron_cosine    float64 [layers, intermediate_size]: cosine of G_general and
 *                               G_domain over the neuron's weights
 * <tensor> is the name the model files use (gp_model.src_names). Every dataset carries
 * `description` and `units`.
 *
 * Usage:
 *     char name[320];
 *     gp_stats_tensor(name, sizeof name, GP_STATS_DOMAIN_FISHER, m->src_names[p]); // "domain/fisher/<p>"
 *     gp_h5_read_f32(f, name, buf, numel);
 *     char *hash = gp_h5_read_attr_str(f, GP_STATS_ATTR_SETTINGS_HASH);
 */
#pragma once

#include <stddef.h>
#include <stdio.h>

#define GP_STATS_FILE "stats.h5" /* in the job's output folder */
#define GP_STATS_FORMAT "gaprune-stats"
#define GP_STATS_FORMAT_VERSION 2

/* ---- root attributes (besides provenance, description and complete) ---- */
#define GP_STATS_ATTR_MODEL_PATH "model_path"       /* string: the model folder the statistics are of */
#define GP_STATS_ATTR_MODEL_SHA256 "model_sha256"   /* string: SHA-256 of its files (gp_model_sha256) */
#define GP_STATS_ATTR_SETTINGS_HASH "settings_hash" /* string: SHA-256 of every setting the numbers depend on */
#define GP_STATS_ATTR_LOSS "loss"                   /* string: the loss whose gradients are accumulated */
#define GP_STATS_ATTR_SCALE "scale"                 /* float: InfoNCE logit scale (1 / temperature) */
#define GP_STATS_ATTR_MAX_LENGTH "max_length"       /* integer: tokens per text, at most */
#define GP_STATS_ATTR_FISHER_BATCH "fisher_batch"   /* integer: triplets per gradient unit */
#define GP_STATS_ATTR_MAX_SAMPLES "max_samples"     /* integer: data.max_samples (triplets per corpus) */
#define GP_STATS_ATTR_SEED "seed"                   /* integer: data.seed of the triplet selection */
#define GP_STATS_ATTR_SAMPLE_METHOD "sample_method" /* string: sample.method, "none" for whole corpora */
#define GP_STATS_ATTR_ALIGNMENT "alignment"         /* string: stats.alignment, tensor (cosine) or refcode */
#define GP_STATS_ATTR_LAYERS "layers"               /* string: prune.layers, the tensors that have statistics */
#define GP_STATS_ATTR_COMPUTE "compute"             /* string: model.compute, the matmuls' arithmetic (f32, bf16) */

/* ---- the corpus groups and their attributes ---- */
#define GP_STATS_DOMAIN "domain"
#define GP_STATS_GENERAL "general"
#define GP_STATS_CORPUS_PATH "corpus_path"                   /* string: the triplets read (the sample, if any) */
#define GP_STATS_CORPUS_SAMPLED_FROM "sampled_from"          /* string: with a sample, the corpus it was taken from */
#define GP_STATS_CORPUS_SAMPLE_HASH "sample_settings_hash"   /* string: with a sample, its settings hash */
#define GP_STATS_CORPUS_SHA256 "corpus_sha256"               /* string: SHA-256 of corpus_path */
#define GP_STATS_CORPUS_N_RECORDS "n_records"                /* integer: records in corpus_path */
#define GP_STATS_CORPUS_N_SKIPPED "n_skipped"                /* integer: bad records skipped */
#define GP_STATS_CORPUS_N_TRIPLETS "n_triplets"              /* integer: triplets the Fisher is divided by */
#define GP_STATS_CORPUS_N_UNITS "n_units"                    /* integer: gradient units the mean gradient is over */
#define GP_STATS_CORPUS_LOSS_MEAN "loss_mean"                /* float: mean InfoNCE loss per unit, in nats */

/* ---- per-tensor datasets: the group, then gp_stats_tensor for "<group>/<tensor>" ---- */
#define GP_STATS_FISHER "fisher"
#define GP_STATS_GRAD_MEAN "grad_mean"
#define GP_STATS_DOMAIN_FISHER GP_STATS_DOMAIN "/" GP_STATS_FISHER
#define GP_STATS_GENERAL_FISHER GP_STATS_GENERAL "/" GP_STATS_FISHER
#define GP_STATS_DOMAIN_GRAD_MEAN GP_STATS_DOMAIN "/" GP_STATS_GRAD_MEAN
#define GP_STATS_GENERAL_GRAD_MEAN GP_STATS_GENERAL "/" GP_STATS_GRAD_MEAN
#define GP_STATS_ACTIVATIONS "activations"
/* per corpus, float64 [layers, intermediate_size], when prune.layers selects the MLP: */
#define GP_STATS_NEURON_FISHER "neuron_fisher"       /* Σ_units (∂L/∂gate_j)² / n_triplets, loss² */
#define GP_STATS_NEURON_GRAD_MEAN "neuron_grad_mean" /* Σ_units ∂L/∂gate_j / n_units, loss */

/* ---- the alignment group ---- */
#define GP_STATS_ALIGNMENT "alignment"
#define GP_STATS_COSINE "cosine"
#define GP_STATS_NAMES "names"
#define GP_STATS_NEURON_COSINE "neuron_cosine" /* float64 [layers, intermediate_size] */
#define GP_STATS_ALIGNMENT_COSINE GP_STATS_ALIGNMENT "/" GP_STATS_COSINE
#define GP_STATS_ALIGNMENT_NAMES GP_STATS_ALIGNMENT "/" GP_STATS_NAMES

/* "<group>/<tensor>" into buf (truncated to size); returns buf. */
static inline const char *gp_stats_tensor(char *buf, size_t size, const char *group, const char *tensor) {
    snprintf(buf, size, "%s/%s", group, tensor);
    return buf;
}
