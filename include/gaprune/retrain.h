/*
 * retrain.h — masked, data-parallel retraining of a pruned model (docs/DESIGN.md §4.4, §5.6).
 *
 * Every step takes the next retrain.batch domain triplets of a seeded per-epoch shuffle of the
 * selected domain corpus (the same selection as the statistics); rank r embeds its contiguous
 * share of them (queries with model.query_instruction, or else the model's own query prompt, in
 * front). The embeddings are gathered on every rank, so the InfoNCE loss sees all positives and hard negatives of the whole batch and
 * equals a single process's; each rank back-propagates the gradient of its own embeddings, the
 * gradients are summed over ranks, pruned weights' gradients are zeroed (so their AdamW moments
 * stay zero), the global gradient norm is clipped to retrain.grad_clip, and the AdamW update
 * (β = 0.9, 0.999, ε = 1e-8; decoupled weight decay on weight matrices, not on biases and
 * LayerNorm, as transformers' Trainer) with linear warm-up over retrain.warmup steps and linear
 * decay to 0 at retrain.steps is applied: by every rank to all weights (optimizer_sharding none),
 * or by each rank to its slice, whose moments only it keeps, followed by an all-gather of the
 * weights (states: the gradient allreduced, bitwise the replicated result; gradients: the
 * gradient reduce-scattered to the slices' owners, within rounding). Pruned weights are exact
 * zeros after every step. AdamW, the mask and the norm run threaded, bitwise the same on any
 * thread count.
 *
 * OUT/retrain-<tag>.h5 holds the loss, learning rate and gradient norm of every step and, every
 * retrain.checkpoint_every steps, the weights and AdamW moments (every rank its slice with
 * parallel HDF5, then rank 0 the rest, via .tmp); a rerun with any sharding or rank count resumes
 * from it (retrain_file.h names its datasets and attributes). SIGUSR1 / SIGTERM:
 * checkpoint, then GP_ESTOPPED (exit 3).
 *
 * Usage (collective):
 *     gp_mask_apply(&mask, model);
 *     gp_train_opts o; gp_train_opts_retrain(&job, &o);
 *     gp_retrain(&o, model, &mask, "gaprune-0.5", "out/job/retrain-gaprune-0.5.h5", hash, &rep, &err);
 */
#pragma once

#include "gaprune/check.h"
#include "gaprune/job.h"
#include "gaprune/mask.h"
#include "gaprune/model.h"

/* What a training run reads: [retrain] and [data] for retraining, [train] for training. */
typedef struct {
    const char *corpus; /* triplets */
    int64_t max_samples, seed;
    bool skip_bad;
    int steps, warmup, batch, checkpoint_every, max_length;
    int micro_batch; /* triplets per forward/backward on a rank; 0: the rank's whole share */
    double lr, weight_decay, grad_clip;
    gp_optimizer_sharding sharding; /* retrain.optimizer_sharding; auto for [train] */
    gp_activations activations;     /* model.activations */
    const char *query_instruction;
    const char *what;     /* the key that names the corpus, for messages */
    const char *job_path;
    const char *batch_origin; /* where the batch came from, for messages (NULL: the job file) */
} gp_train_opts;

void gp_train_opts_retrain(const gp_job *job, gp_train_opts *o);
/* [train]: warm-up over the first 10% of the steps, weight decay 0.01, clip 1. */
void gp_train_opts_train(const gp_job *job, gp_train_opts *o);

typedef struct {
    int steps;            /* steps done in this call */
    double seconds;
    double loop_seconds; /* the training steps alone: no corpus indexing, no final checkpoint */
    double allreduce_seconds; /* of which in the gradient sum (and, sharded, the weights' gather) */
    double update_seconds;    /* of which in the update: mask, gradient norm and AdamW (the gather not) */
    double first_loss;    /* loss of step 1 */
    double last_loss;     /* loss of the last step */
    bool up_to_date;      /* the log file was already complete for these settings */
    gp_optimizer_sharding sharding; /* the mode in effect */
    bool lean;            /* the forwards kept lean activations (model.activations) */
    double peak_rss_mb;   /* largest over ranks (0 when up to date) */
} gp_retrain_report;

/* mask may be NULL (plain training). */
gp_status gp_retrain(const gp_train_opts *o, gp_model *m, const gp_mask *mask, const char *tag, const char *log_path,
                     const char *settings_hash, gp_retrain_report *rep, gp_err *err);

/* The optimizer's sharding, one rule for gp_retrain and gaprune plan:
 *   gp_retrain_sharding     the mode in effect: mode itself unless auto; auto shards the states
 *                           when P > 1 and the moments (8 bytes per parameter) would take over a
 *                           quarter of a rank's share of the node's memory (share, bytes; 0:
 *                           unknown, none), and the gradient too when the weights, the gradient
 *                           and the sharded moments (8n + 8n/P) would take over half of it.
 *   gp_retrain_bounds       bounds[P + 1]: rank q owns elements [bounds[q], bounds[q+1]) of the
 *                           flat parameter vector (table order), an even split in whole blocks of
 *                           the gradient norm's sums (256 elements or more; 64-bit).
 *   gp_retrain_state_bytes  bytes per rank of weights, gradient and AdamW state in a mode in
 *                           effect, slice = n for none, the largest rank's slice (about n/P)
 *                           otherwise: none and states 8n + 8·slice (+ 32 MiB of round buffers
 *                           when sharded); gradients 4n + 4·(outer + 2·window) + 12·slice +
 *                           32 MiB + the reductions in flight (4·2·min(4·2^22, window, slice)), outer
 *                           the parameters outside the transformer blocks and window one
 *                           block's; the activations of the step come on top. */
gp_optimizer_sharding gp_retrain_sharding(gp_optimizer_sharding mode, int P, int64_t n, double share);
void gp_retrain_bounds(int64_t n, int P, int64_t *bounds);
double gp_retrain_state_bytes(gp_optimizer_sharding mode, int P, int64_t n, int64_t outer, int64_t window);

/* The learning rate of step t (1-based) of n with w warm-up steps and peak lr. */
double gp_lr_at(int t, int n, int w, double lr);
