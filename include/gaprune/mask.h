/*
 * mask.h — a pruning mask in memory: one bit per selected weight (1 = keep), applied to a
 * model's weights (and gradients), read back from a mask file (score.h writes them;
 * mask_file.h names what is in one) and broadcast bit-packed from rank 0 to every rank.
 *
 * Usage:
 *     gp_mask mask;                      // from gp_mask_build (score.h) on every rank, or:
 *     gp_mask_read("out/job/mask-gaprune-0.5.h5", model, &mask, &err);   // rank 0
 *     gp_mask_bcast(&mask, model);       // collective
 *     gp_mask_apply(&mask, model);       // pruned weights become exact zeros
 *     gp_mask_free(&mask);
 */
#pragma once

#include <stdint.h>

#include "gaprune/check.h"
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
    double neuron_fisher_vs_magnitude; /* structured DAI: Σ|Φ_dom − βΦ_gen| / Σ γ·m over the neurons, else NaN */
    double fisher_negative;    /* share of the selected weights with F_dom − βF_gen < 0 (gp_fisher_negative), NaN without statistics */
    bool uneven_structs; /* scope neurons-global: blocks may keep different numbers of neurons */
    gp_mask_row *rows;         /* [n], after gp_mask_build only (every rank) */
} gp_mask;

/* Collective: rank 0's mask (bit-packed) to every rank. */
void gp_mask_bcast(gp_mask *mask, const gp_model *m);
/* Zeroes the pruned weights of m->params (and m->grads when allocated). */
void gp_mask_apply(const gp_mask *mask, gp_model *m);
/* Zeroes the pruned elements of x, which holds the elements [lo, hi) of a vector laid out like
 * m->params (table order; x[0] is element lo): a rank's slice of the weights or gradients when
 * retraining shards the optimizer (retrain.h). */
void gp_mask_clear_range(const gp_mask *mask, const gp_model *m, float *x, int64_t lo, int64_t hi);
/* Reads a mask file written for this model; GP_EINPUT naming the file and tensor otherwise. */
gp_status gp_mask_read(const char *path, const gp_model *m, gp_mask *mask, gp_err *err);
void gp_mask_free(gp_mask *mask);
/* Rank 0: for every pair of the n mask files (of one model, the same selected tensors), the
 * fraction of the selected weights that one keeps and the other prunes, into frac[i·n + j] (0
 * on the diagonal). Streams the files tensor by tensor (the first file's /mask datasets in name
 * order): one bit per weight of one tensor of each file in memory. GP_EINPUT naming a file that
 * is not a mask file or lacks a tensor of the first's. */
gp_status gp_mask_disagreement(const char *const *paths, int n, double *frac, gp_err *err);
/* Rank 0: records in mask file paths[self] its disagreement with the other n − 1 masks of a run
 * (GP_MASK_ATTR_DISAGREEMENT + tags[j] = frac[j]), rewriting it through <path>.tmp and a rename,
 * so that the file under its name is whole whatever happens meanwhile; a file that records these
 * values already is left alone (a complete rerun writes nothing). */
gp_status gp_mask_file_set_disagreement(const char *const *paths, const char *const *tags, const double *frac, int n,
                                        int self, gp_err *err);
/* A mask of whole structures (prune.scope = neurons, neurons-global or heads) read off its bits:
 * when every block's tensors that index structures of that kind are masked by structure (a
 * neuron's rows and column, a head's head_dim rows and columns, all kept or all pruned), each
 * block keeps at least one and, unless mask->uneven_structs, every block the same number:
 * counts[l] is block l's, kept[] block after block their indices in increasing order (block l's
 * from Σ_{l' < l} counts[l']), and the return value all blocks' together (kept: room for layers ·
 * gp_model_struct_count, counts: for layers); else -1. */
int64_t gp_mask_kept_structs(const gp_mask *mask, const gp_model *m, gp_struct_kind kind, int32_t *kept, int64_t *counts);
