/*
 * reconstruct.h — one-shot reconstruction (prune.reconstruct = obs): after the mask is chosen,
 * the kept weights of every pruned linear layer are solved again, block by block, so that each
 * layer's outputs on domain and general calibration inputs stay close to the dense layer's
 * (Optimal Brain Surgeon steps as SparseGPT takes them, obs.h); and SparseGPT's own criterion,
 * whose mask is chosen during the same sweep (docs/DESIGN.md §4.10, §5.9).
 *
 * Calibration: prune.reconstruct_samples triplets of each corpus (the calibration samples when
 * sample.method is set), their query, positive and negative texts, in batches of eval.batch texts
 * that never mix the corpora. The batches are split over the ranks in contiguous blocks; each rank
 * keeps its batches' hidden states [tokens, C] (the input of the block being solved).
 *
 * Per transformer block l, in order; inside it per group of linear weights that read one input
 * (gp_model_linear_group: attention projections, attention output, up/gate, down), in order:
 *   H = Σ_dom XᵀX / N_dom + λ Σ_gen XᵀX / N_gen over every token's input of the group (each
 *       batch's XᵀX in float32, accumulated in double, summed over ranks),
 *   U = the Cholesky factor of (H + dampening · mean diag H · I)⁻¹ (LAPACK, on every rank),
 *   each weight of the group: its rows split over the ranks, OBS-swept (obs.h), all-gathered.
 * The group's input comes from the block as reconstructed so far (order = sequential, the
 * default: errors of earlier layers are compensated) or from the dense block (parallel). After the
 * block, its output on every batch becomes the next block's input, and a checkpoint file holds
 * the block's solved weights and mask bits: a killed or stopped run resumes at the next block.
 *
 * Memory per rank beyond the model: its batches' hidden states (tokens · C floats) and one
 * block's activations of its largest batch; H (8 n² bytes), its float32 batch product and U
 * (4 n² each) for the widest input n; its rows of a weight three times (dense copy, errors).
 *
 * Usage (collective):
 *     gp_recon_opts o; gp_recon_opts_from_job(&o, &job, samples_or_NULL);
 *     gp_recon_mask how = {.select = GP_OBS_FIXED, .update = true};
 *     gp_recon_report rep;
 *     rc = gp_reconstruct(&o, model, &mask, &how, ckpt_dir, settings_hash, &rep, &err);   // model's weights solved
 *     gp_recon_report_free(&rep);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"
#include "gaprune/job.h"
#include "gaprune/mask.h"
#include "gaprune/model.h"
#include "gaprune/obs.h"
#include "gaprune/sample.h"

/* What the reconstruction reads of the job. */
typedef struct {
    const char *corpus[2]; /* domain, general triplets (or the calibration samples) */
    bool sampled;          /* corpus[] are samples: every triplet of them is a candidate */
    int64_t samples;       /* prune.reconstruct_samples: triplets per corpus */
    int64_t seed;          /* data.seed: which triplets */
    bool skip_bad;
    int max_length;        /* model.max_length */
    int batch;             /* eval.batch: texts per forward */
    double dampening;      /* prune.dampening */
    double general_weight; /* prune.reconstruct_general: λ */
    int block;             /* prune.block: columns per lazy update */
    gp_recon_order order;  /* prune.reconstruct_order */
} gp_recon_opts;

void gp_recon_opts_from_job(gp_recon_opts *o, const gp_job *job, const gp_sample_report *samples);

/* How the mask comes about: FIXED (the mask's own bits) or SparseGPT's adaptive choice (ROW,
 * LAYER, NM with sparsity or nm_n:nm_m); update false writes the dense kept weights. */
typedef struct {
    gp_obs_select select;
    double sparsity;
    int nm_n, nm_m;
    bool update;
} gp_recon_mask;

typedef struct {
    int n;                  /* the mask's tensors */
    double *err_before;     /* [n] ‖X (W ⊙ M)ᵀ − X Wᵀ‖ / ‖X Wᵀ‖ on the calibration inputs (the mask alone) */
    double *err_after;      /* [n] the same for the written weights */
    int64_t texts[2], tokens[2]; /* calibration texts and tokens of each corpus */
    double seconds;         /* the whole reconstruction (this run) */
    /* rank 0's: XᵀX products and their allreduce, LAPACK, OBS sweeps, block forwards */
    double hessian_seconds, factor_seconds, update_seconds, forward_seconds;
    double update_gflop;    /* floating-point work of the OBS sweeps and their lazy updates, all ranks */
    int resumed_blocks;     /* blocks read back from checkpoints */
} gp_recon_report;

/* Collective. m holds the dense weights; mask the selected tensors (its bits are the mask with
 * FIXED, and are written otherwise, with mask->pruned and the rows' kept counts). On return the
 * mask's tensors in m hold the reconstructed weights (pruned ones exactly 0; how->update false:
 * the dense ones where kept). ckpt_dir holds a checkpoint per finished block, made with
 * settings_hash; a rerun with the same hash resumes after the last one. GP_ESTOPPED after a
 * signal (the block's checkpoint written), GP_EINPUT for bad calibration data, all agreed. */
gp_status gp_reconstruct(const gp_recon_opts *o, gp_model *m, gp_mask *mask, const gp_recon_mask *how, const char *ckpt_dir,
                         const char *settings_hash, gp_recon_report *rep, gp_err *err);
void gp_recon_report_free(gp_recon_report *rep);
/* Collective: removes the checkpoints of gp_reconstruct in ckpt_dir, and the folder. */
void gp_reconstruct_cleanup(const char *ckpt_dir, int layers);
