/*
 * pipeline.h — the stages that `gaprune score`, `retrain`, `eval` and `run` share, each of
 * which skips its work when its output is complete and was made from the same inputs and
 * settings (a settings hash stored in the output).
 *
 * Usage (collective):
 *     gp_prune_inputs in; gp_prune_inputs_init(&cfg, m, &in, &err);   // model and stats hashes
 *     gp_pruned pr;
 *     gp_prune_step(&cfg, m, &in, "gaprune", 0.5, &pr, &err);   // m->params now masked
 *     ... retrain / evaluate ...
 *     gp_pruned_free(&pr);
 */
#pragma once

#include <stdbool.h>

#include "gaprune/check.h"
#include "gaprune/config.h"
#include "gaprune/score.h"
#include "gaprune/model.h"

typedef struct {
    char model_sha[65];  /* the dense model's files */
    char stats_hash[80]; /* settings_hash of OUT/stats.h5, or "none" */
    char *stats_path;    /* OUT/stats.h5 when it exists, else NULL */
} gp_prune_inputs;

/* Collective: hashes the model, checks that OUT/stats.h5 (when there) was made from it. */
gp_status gp_prune_inputs_init(const gp_config *cfg, const gp_model *m, gp_prune_inputs *in, gp_err *err);
void gp_prune_inputs_free(gp_prune_inputs *in);

typedef struct {
    char tag[96];        /* "<method>-<sparsity>" */
    char *mask_path;     /* OUT/mask-<tag>.h5 */
    char *pruned_dir;    /* OUT/pruned-<tag> */
    char hash[65];       /* settings hash of the mask and the pruned folder */
    gp_mask mask;        /* on every rank */
    bool reused;         /* both outputs were current */
    double sparsity, zero_fraction, fisher_ratio; /* achieved; whole model; mean DAI term ratio */
} gp_pruned;

/* Collective: builds (or reads back, when current) the mask of method at sparsity p, writes the
 * mask file and the pruned folder, and leaves m->params masked. */
gp_status gp_prune_step(const gp_config *cfg, gp_model *m, const gp_prune_inputs *in, const char *method, double p,
                        gp_pruned *out, gp_err *err);
void gp_pruned_free(gp_pruned *p);

/* True when the safetensors of the folder carry gaprune.settings_hash = hash (rank-local). */
bool gp_folder_current(const char *dir, const char *hash);

/* Splits a comma-separated list in place (spaces trimmed); returns the count. */
int gp_split_list(char *s, char **out, int max);
