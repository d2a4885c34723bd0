/*
 * score.h — the scoring stage: rank 0 scores the selected weights of a model with one
 * criterion (prune.h) from the model and stats.h5, selects the lowest exactly, writes
 * mask-<method>-<sparsity>.h5 and fills a gp_mask (mask.h) to broadcast and apply.
 *
 * Which weights: prune.layers = mlp | attention | linear (2-D weights of those kinds, named per
 * architecture). Scope (prune.scope): global (exactly floor(p·N) of all selected weights),
 * layer (floor(p·N_l) in every transformer block), row (floor(p·cols) in every output row),
 * n:m (the m−n lowest of every m consecutive inputs; p is then 1 − n/m). wanda compares within
 * rows by definition, so its global scope means row.
 *
 * mask-<method>-<sparsity>.h5 holds /mask/<param> (1 = keep), optionally /score/<param>, a
 * /summary row per tensor and the settings as attributes: mask_file.h names them all.
 *
 * Usage:
 *     gp_prune_opts o; gp_prune_opts_from_job(&o, &job);
 *     gp_mask mask;
 *     if (rank == 0) rc = gp_mask_build(&o, model, &req, &mask, &err);
 *     if ((rc = gp_agree(rc, &err))) ...;
 *     gp_mask_bcast(&mask, model);
 */
#pragma once

#include "gaprune/check.h"
#include "gaprune/job.h"
#include "gaprune/mask.h"
#include "gaprune/model.h"

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
    const char *stats_path; /* may be NULL for criteria that need no statistics */
    const char *mask_path;  /* file to write */
    const char *settings_hash;
} gp_mask_request;

/* Whether prune.layers = layers selects parameter i of m (and its transformer block): the
 * tensors that are scored, and the only ones the statistics are gathered for. */
bool gp_prune_selects(gp_layers layers, const gp_model *m, int i, int *layer);

/* The checks of the settings against the model that need no statistics (the layers select some
 * weights; an n:m scope divides every selected width), so that a job fails before its long
 * stages rather than after them. Rank-local. */
gp_status gp_prune_check(const gp_prune_opts *o, const gp_model *m, gp_err *err);

/* Rank 0: scores, selects, writes the mask file (via .tmp) and fills mask. */
gp_status gp_mask_build(const gp_prune_opts *cfg, const gp_model *m, const gp_mask_request *req, gp_mask *mask, gp_err *err);
