/*
 * retrain_file.h — the layout of OUT/retrain-<tag>.h5 (and of OUT/train.h5, the same format), the
 * log and checkpoint of a training run (retrain.h): every dataset and attribute name, in one place
 * for its writer and reader (retrain.c, which resumes from it) and the commands that read its
 * settings hash (`gaprune run`, `gaprune retrain`). A name changed here changes the file; raise
 * GP_RETRAIN_FORMAT_VERSION then.
 *
 *   /            provenance (format = "gaprune-retrain", format_version, gaprune_version,
 *                command, created_utc, n_ranks) and the GP_RETRAIN_ATTR_* below; `complete`
 *                (h5.h) once the last step is done
 *   /loss        float64 [step]: InfoNCE loss of each step's batch, in nats
 *   /lr          float64 [step]: learning rate of each step
 *   /grad_norm   float64 [step]: global gradient norm before clipping, in loss / parameter
 *   /params      float32 [model parameters]: every weight after the last step, in table order
 *   /adam_m      float32 [model parameters]: AdamW first moment
 *   /adam_v      float32 [model parameters]: AdamW second moment
 *                (these three chunked, uncompressed, written by every rank's slice at once)
 * Every dataset carries `description`, `units` and `crc32`, the root `checksum` (checkpoint.h).
 * Until the run is complete the checkpoint before it is kept as retrain-<tag>.prev.h5.
 *
 * Usage:
 *     snprintf(name, sizeof name, GP_RETRAIN_FILE_FMT, "gaprune-0.5");  // "retrain-gaprune-0.5.h5"
 *     char *hash = gp_h5_read_attr_str(f, GP_RETRAIN_ATTR_SETTINGS_HASH);
 */
#pragma once

#include "gaprune/checkpoint.h"

#define GP_RETRAIN_FILE_FMT "retrain-%s.h5" /* printf format of the tag, "<method>-<sparsity>" */
#define GP_RETRAIN_FORMAT "gaprune-retrain"
#define GP_RETRAIN_FORMAT_VERSION 1

/* ---- root attributes (besides provenance, description and complete) ---- */
/* the file is a checkpoint (checkpoint.h): its settings hash and step are the checkpoint's */
#define GP_RETRAIN_ATTR_SETTINGS_HASH GP_CHECKPOINT_ATTR_SETTINGS /* string: SHA-256 of the settings, the data and the mask */
#define GP_RETRAIN_ATTR_STEP GP_CHECKPOINT_ATTR_STEP              /* integer: steps done (rows of the per-step datasets) */
#define GP_RETRAIN_ATTR_STEPS "steps"                 /* integer: steps of the whole run */
#define GP_RETRAIN_ATTR_BATCH "batch"                 /* integer: triplets per step, over all ranks */
#define GP_RETRAIN_ATTR_LR "lr"                       /* float: peak learning rate */
#define GP_RETRAIN_ATTR_WARMUP "warmup"               /* integer: linear warm-up steps */
#define GP_RETRAIN_ATTR_WEIGHT_DECAY "weight_decay"   /* float: AdamW decoupled weight decay */
#define GP_RETRAIN_ATTR_GRAD_CLIP "grad_clip"         /* float: gradient norm clip, 0 = off */
#define GP_RETRAIN_ATTR_CORPUS_PATH "corpus_path"     /* string: the triplets trained on */
#define GP_RETRAIN_ATTR_CORPUS_SHA256 "corpus_sha256" /* string: their SHA-256 */
#define GP_RETRAIN_ATTR_SHARDING "optimizer_sharding" /* string: none, states or gradients, of the run that
                                                        * wrote it (any run resumes from it) */

/* ---- datasets ---- */
#define GP_RETRAIN_LOSS "loss"
#define GP_RETRAIN_LR "lr"
#define GP_RETRAIN_GRAD_NORM "grad_norm"
#define GP_RETRAIN_PARAMS "params"
#define GP_RETRAIN_ADAM_M "adam_m"
#define GP_RETRAIN_ADAM_V "adam_v"
