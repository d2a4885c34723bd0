/*
 * score.h — the scoring stage: every rank scores its slice of the selected weights of a model
 * with one criterion (prune.h) from the model and its rows of stats.h5, the ranks select the
 * lowest exactly together, every rank assembles the whole mask (a gp_mask, mask.h, to apply)
 * and rank 0 writes mask-<method>-<sparsity>.h5. The mask and the file are bitwise the same on
 * any number of ranks (docs/DESIGN.md §4.3).
 *
 * A rank's slice is its block of gp_stats_blocks (stats.h): whole rows of the selected tensors
 * in table order, about N/P elements, the rows a sharded statistics pass owns. Sums over a
 * tensor that a single process makes in element order (the refcode alignment's norms, the
 * summary's mean and DAI terms) pass from rank to rank in that order, so they are bitwise equal.
 *
 * Memory per rank, beyond the model (4 bytes per parameter): with s the elements of its slice,
 * q ≤ min(s, T) its largest piece (T the largest selected tensor), c its widest input and N all
 * selected elements,
 *     4·s (scores) + s/8 (its bits) + N/8 (the whole mask) + 4·q (the selection's buffer)
 *     + 8·q (F_dom, F_gen: criteria reading the Fisher, or any criterion when stats.h5 exists)
 *     + 8·(q + 2c) (G_dom, G_gen with a row above and below: stats.alignment = refcode)
 *     + 4·c (activation sums: wanda) + 1.25 MiB (histograms)
 * and on rank 0, which writes the file, T bytes (a tensor's mask bytes) + 4·T with
 * prune.save_scores (a tensor's scores, gathered one tensor at a time). Scope neurons adds
 * 16·n·I (the n selected tensors' sums over I neurons and their exchange) + 9·L·I (every
 * block's structure scores and flags) + 8·I (the running column sums).
 *
 * Which weights: prune.layers = mlp | attention | linear (2-D weights of those kinds, named per
 * architecture). Scope (prune.scope): global (exactly floor(p·N) of all selected weights),
 * layer (floor(p·N_l) in every transformer block), row (floor(p·cols) in every output row),
 * n:m (the m−n lowest of every m consecutive inputs; p is then 1 − n/m), neurons (whole MLP
 * neurons, floor(p·I) of every block's I, by the sum of their weights' scores: docs/DESIGN.md
 * §5.5; the mask file adds /neurons). wanda compares within rows by definition, so its global
 * scope means row.
 *
 * mask-<method>-<sparsity>.h5 holds /mask/<param> (1 = keep), optionally /score/<param>, a
 * /summary row per tensor and the settings as attributes: mask_file.h names them all.
 *
 * Usage (collective):
 *     gp_prune_opts o; gp_prune_opts_from_job(&o, &job);
 *     gp_mask mask;
 *     if ((rc = gp_mask_build(&o, model, &req, &mask, &err))) return rc;   // agreed, reported
 *     gp_mask_apply(&mask, model);
 */
#pragma once

#include "gaprune/check.h"
#include "gaprune/job.h"
#include "gaprune/mask.h"
#include "gaprune/model.h"
#include "gaprune/stats.h"

/* What the scoring reads of the job ([prune] and stats.alignment). */
typedef struct {
    gp_layers layers;
    gp_scope scope;
    gp_alignment alignment;
    double alpha, beta, gamma;
    int64_t prune_seed;
    bool save_scores;
    const char *out_dir;
    const char *job_path;
    const char *layers_origin, *scope_origin; /* where prune.layers and prune.scope were set, for messages */
} gp_prune_opts;

void gp_prune_opts_from_job(gp_prune_opts *o, const gp_job *job);

typedef struct {
    const gp_criterion *method;
    double sparsity;
    const char *stats_path; /* may be NULL for criteria that need no statistics; every rank reads it */
    const char *mask_path;  /* file to write (rank 0's) */
    const char *settings_hash;
    /* One-shot reconstruction (reconstruct.h), or NULL: called on every rank once the mask is
     * chosen, before the file is written; it may solve the model's weights again (through its ctx)
     * and, for a criterion with GP_NEED_OBS, choose the mask's bits itself (they arrive all set).
     * write_extra adds what it found to the mask file (rank 0). */
    gp_status (*after_select)(void *ctx, gp_mask *mk, gp_err *err);
    void (*write_extra)(void *ctx, int64_t h5_file);
    void *ctx;
} gp_mask_request;

/* The checks of the settings against the model that need no statistics (the layers select some
 * weights; an n:m scope divides every selected width), so that a job fails before its long
 * stages rather than after them. Rank-local. */
gp_status gp_prune_check(const gp_prune_opts *o, const gp_model *m, gp_err *err);

/* Collective: scores, selects, fills mask on every rank (rows included) and writes the mask
 * file (rank 0, via .tmp). Returns the same status on every rank, any error already reported
 * (gp_agree): a non-finite score names the tensor and its element. */
gp_status gp_mask_build(const gp_prune_opts *cfg, const gp_model *m, const gp_mask_request *req, gp_mask *mask, gp_err *err);
