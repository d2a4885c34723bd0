/*
 * stats.h — the distributed statistics pass (docs/DESIGN.md §4.1, §5.2, §6.1, §7.1).
 *
 * For each corpus c (domain, then general), the selected triplets are cut into gradient units
 * of stats.fisher_batch consecutive triplets; the units are split into contiguous blocks, one
 * per rank. For each unit: forward of its queries, positives and negatives, InfoNCE, backward,
 * then on this rank's accumulators
 *     F_c += g²      G_c += g      (g: the gradient of the unit's loss)
 * and, for the domain corpus, Σ x² per input feature of every linear layer (for Wanda); when the
 * MLP is selected, per neuron j also Φ_c += d_j², Σ d_j with d_j = ∂L/∂gate_j, the derivative
 * with respect to a gate on the neuron's output (= Σ_o W_down[o,j] g_down[o,j]; stats_file.h).
 * Ranks step in lockstep and agree after every unit on whether to stop (SIGUSR1 / SIGTERM):
 * then every rank checkpoints and the pass returns GP_ESTOPPED (exit 3).
 *
 * Checkpoints: every stats.checkpoint_every steps each rank writes OUT/stats.ranks/rank-R.h5
 * (via .tmp and rename; the previous one is kept as rank-R.prev.h5) and, once all have, rank 0
 * writes OUT/stats.ranks/latest naming the step. A rerun with the same settings and the same
 * number of ranks resumes from that step and ends bitwise equal to an uninterrupted run.
 *
 * At the end the accumulators are summed over ranks (chunked in-place MPI_Allreduce) and
 *     F_c = Σ_units g² / N_c triplets      G_c = Σ_units g / U_c units
 * (with fisher_batch 1 both are the paper's per-triplet means; with 4, F is the authors' code's
 * estimator) go to OUT/stats.h5 with the per-tensor alignment cosine of G_gen and G_dom and the
 * activation sums (stats_file.h names its groups, datasets and attributes). A stats.h5 that is
 * complete for the same settings is not recomputed.
 *
 * With sample.method set, the statistics read the samples (sample.h: OUT/sample-<corpus>.jsonl,
 * whole, data.max_samples does not apply) instead of the corpora, and their settings hash names
 * the samples' settings.
 *
 * Collective; returns the same status on every rank, with any error already reported (exit
 * with it). GP_ESTOPPED means a signal stopped the pass after a checkpoint.
 *
 * Usage (collective):
 *     gp_stats_opts o; gp_stats_opts_from_job(&o, &job);
 *     gp_stats_report rep; gp_err err = {0};
 *     gp_status rc = gp_stats_run(&o, model, NULL, &rep, &err);   // or &samples (gp_sample_run)
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"
#include "gaprune/job.h"
#include "gaprune/model.h"
#include "gaprune/sample.h"

typedef struct {
    bool up_to_date;     /* stats.h5 was already complete for these settings */
    int64_t triplets;    /* processed by all ranks in this run */
    double seconds;      /* wall time of the pass */
    double loop_s;       /* of which: the gradient units (checkpoints included) */
    double allreduce_s;  /* of which: summing over ranks at the end */
    double reduce_s;     /* sharded: of the loop, posting and waiting for the per-block reductions */
    double checkpoint_s; /* of which: writing checkpoints */
    double write_s;      /* of which: writing stats.h5 */
    double peak_rss_mb;  /* largest over ranks */
    bool sharded;        /* each rank kept a block of the accumulators (stats.accumulators) */
    bool lean;           /* the units kept lean activations (model.activations) */
    char settings_hash[65];
} gp_stats_report;

/* What the statistics read of the job. */
typedef struct {
    const char *corpus[2];      /* data.domain, data.general */
    int64_t max_samples, seed;  /* data.max_samples, data.seed: the seeded selection */
    bool skip_bad;              /* data.on_bad_record = skip */
    int max_length;             /* model.max_length (the model's own limit applies too) */
    int fisher_batch;           /* stats.fisher_batch */
    int checkpoint_every;       /* stats.checkpoint_every */
    gp_alignment alignment;     /* recorded in stats.h5 for the scoring */
    gp_layers layers;           /* prune.layers: the tensors with statistics (the only ones scored) */
    gp_accumulators accumulators; /* stats.accumulators */
    gp_activations activations;   /* model.activations */
    gp_sample_method sample_method;
    const char *out_dir;
    const char *job_path;       /* for messages */
} gp_stats_opts;

void gp_stats_opts_from_job(gp_stats_opts *o, const gp_job *job);

/* Whether prune.layers = layers selects parameter i of m (and its transformer block): the
 * tensors the statistics are gathered for, and the only ones scored (score.h). */
bool gp_prune_selects(gp_layers layers, const gp_model *m, int i, int *layer);

/* The statistics' layout, which gaprune plan (plan.h) predicts with the same rules:
 *   gp_stats_layout  off[i] = offset of parameter i in the vector of the selected tensors (table
 *                    order), or -1 when prune.layers does not select it; returns its length n.
 *                    Needs only m's config and table.
 *   gp_stats_blocks  sharded owners' blocks: bounds[P + 1] element offsets, runs of whole rows,
 *                    owner q's starting at the first row boundary at or past q·n/P; also the
 *                    slices the scoring gives each rank (score.h).
 *   gp_stats_shard   stats.accumulators: auto shards when the replicated F and G of both corpora
 *                    (16 bytes per selected element) would take more than a quarter of a rank's
 *                    share of the node's memory (share, bytes). */
int64_t gp_stats_layout(const gp_model *m, gp_layers layers, int64_t *off);
void gp_stats_blocks(const gp_param_table *t, const int64_t *off, int64_t n, int P, int64_t *bounds);
bool gp_stats_shard(gp_accumulators mode, int P, int64_t n, double share);

/* The statistics gather each transformer block's selected gradients in windows of one block's
 * size, so the tensors prune.layers selects must be alike in every block: GP_EINPUT naming the
 * folder otherwise (a folder of per-block intermediate sizes with layers mlp or linear), before
 * any work (gp_stats_run checks it first; `gaprune run` before its sample). */
gp_status gp_stats_check(const gp_stats_opts *o, const gp_model *m, gp_err *err);
/* sample: the samples of gp_sample_run when sample.method is not none, else NULL. */
gp_status gp_stats_run(const gp_stats_opts *o, gp_model *m, const gp_sample_report *sample, gp_stats_report *rep,
                       gp_err *err);
