/*
 * prune.h — pruning criteria (one registry, one interface), scopes, and exact selection of the
 * lowest scores.
 *
 * Criteria (docs/DESIGN.md §5.4; the defaults are the paper's):
 *   gaprune         DAI = [(F_dom − β F_gen)|θ| + γ √|θ|] · (1 + α s)
 *   gaprune-ref     softplus((F_dom − β F_gen)|θ| · clamp(1 + α s, 0.8, 1.2) + γ √(|θ| + 1e-8))
 *                   (the authors' code)
 *   magnitude       |θ|
 *   fisher-domain   F_dom
 *   fisher-general  F_gen
 *   random          a uniform number from (seed, tensor, element): reproducible
 *   wanda           |θ_kj| · ‖x_j‖ (input activation norm; compared within each output row)
 *   fisher-domain-obd, fisher-general-obd
 *                   ½ F θ²: the diagonal-Fisher (Optimal Brain Damage) estimate of the loss a
 *                   weight's removal costs, the usual Fisher saliency
 *   gaprune-scaled  [(F_dom − β F_gen)|θ| / M_F + γ √|θ| / M_m] · (1 + α s), M_F and M_m the mean
 *                   of |(F_dom − β F_gen)|θ|| and of √|θ| over every selected weight: γ weighs
 *                   terms of one scale (the paper's DAI with γ·M_F/M_m, up to a positive factor)
 * s is the per-tensor cosine of the mean gradients (stats.alignment = tensor) or the authors'
 * element-wise product of the Frobenius-normalised mean gradients, smoothed by a zero-padded
 * 3×3 box mean (stats.alignment = refcode).
 *
 * Selection: the k lowest scores of a set of tensors, streamed tensor by tensor, over every rank
 * (collective): each rank passes its own items, which follow those of the ranks below it in the
 * global order. Scores map to ordered 32-bit keys; a histogram of the top 16 bits (summed over
 * ranks) finds the bucket holding the k-th key, a histogram of the low 16 bits inside it the key
 * itself; a third pass marks the mask. Ties at the threshold are pruned lowest global index
 * first (a rank learns how many ties the ranks below hold by a prefix sum), so a mask is
 * reproducible and the same on any number of ranks. O(N/P) time per rank, 65536 counters of
 * extra memory, two allreduces of 512 KiB, and exactly k pruned.
 *
 * Usage:
 *     const gp_criterion *c = gp_criterion_find("gaprune");
 *     c->score(&in, scores);                                   // one tensor
 *     gp_select_smallest(&source, k, keep_bits, &threshold, &err);   // many tensors
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gaprune/check.h"
#include "gaprune/model.h"

/* ---- criteria ------------------------------------------------------------------------------ */

/* GP_NEED_NEURONS: a structured criterion (prune.scope = neurons only): its element score is the
 * magnitude part of a neuron's score, and the scoring combines the neurons' sums of it with the
 * neuron statistics of stats.h5 (score.h, docs/DESIGN.md §5.5). GP_NEED_SCALES: the score reads
 * fisher_scale and magnitude_scale, which the scoring measures over every selected weight first. */
/* GP_NEED_OBS: the mask is chosen during one-shot reconstruction (reconstruct.h) from the layers'
 * input Hessians, not from a score of each weight alone: such a criterion has no score function. */
enum { GP_NEED_FISHER = 1, GP_NEED_GRAD = 2, GP_NEED_ACT = 4, GP_NEED_NEURONS = 8, GP_NEED_SCALES = 16, GP_NEED_OBS = 32 };

/* Everything a criterion may read for one weight matrix, or for a slice of its rows: rows
 * [row0, row0 + rows) of a tensor of tensor_rows rows (tensor_rows 0: the slice is the whole
 * tensor, row0 0). Every array but act holds the slice's rows × cols. */
typedef struct {
    int index;                /* tensor index in the model's table */
    int64_t rows, cols;
    int64_t row0, tensor_rows;
    const float *w;           /* weights */
    const float *fisher_dom;  /* F_dom, F_gen (GP_NEED_FISHER) */
    const float *fisher_gen;
    const float *grad_dom;    /* G_dom, G_gen (GP_NEED_GRAD, refcode alignment); for a slice, */
    const float *grad_gen;    /* the rows just above and below it must be readable too */
    double grad_sq_dom;       /* for a slice with refcode alignment: Σ G_dom², Σ G_gen² over the */
    double grad_sq_gen;       /* whole tensor (gp_alignment_sq_sums, in element order) */
    const float *act;         /* Σ x² per input feature [cols] (GP_NEED_ACT) */
    double cosine;            /* per-tensor alignment */
    bool refcode_alignment;   /* use the element-wise smoothed alignment instead */
    double alpha, beta, gamma;
    /* gaprune-scaled (GP_NEED_SCALES): 1 / the mean of |(F_dom − β F_gen)·|θ|| and 1 / the mean
     * of √|θ| over every selected weight; both 0 for every other criterion */
    double fisher_scale, magnitude_scale;
    uint64_t seed;
} gp_score_in;

typedef struct {
    const char *name;
    unsigned needs;
    bool rowwise; /* compared within output rows by definition (wanda) */
    void (*score)(const gp_score_in *in, float *out); /* out: rows × cols; NULL with GP_NEED_OBS */
    const char *description;
    bool weighted; /* reads beta and gamma (the DAI family): prune.beta and prune.gamma lists make variants of it */
} gp_criterion;

const gp_criterion *gp_criterion_find(const char *name);
/* NULL-terminated list of every criterion. */
const gp_criterion *const *gp_criteria(void);
/* "gaprune|gaprune-ref|...": every criterion's name, for messages and help (into buf of n). */
void gp_criteria_names(char *buf, size_t n);

/* The authors' element-wise alignment of one tensor: e = (G_gen/‖G_gen‖)(G_dom/‖G_dom‖),
 * smoothed by a 3×3 box mean with zero padding (divided by 9 everywhere). */
void gp_alignment_refcode(const float *grad_dom, const float *grad_gen, int64_t rows, int64_t cols, float *out);
/* The same for rows [row0, row0 + rows) of a tensor of tensor_rows rows, given its Σ G² (the
 * norms are of the whole tensor): grad_dom and grad_gen point at row row0, and the rows just
 * above and below the slice (where the tensor has them) must be readable. Bitwise the whole
 * tensor's values of those rows. */
void gp_alignment_refcode_rows(const float *grad_dom, const float *grad_gen, int64_t row0, int64_t rows,
                               int64_t tensor_rows, int64_t cols, double sq_dom, double sq_gen, float *out);
/* Adds Σ grad_dom² and Σ grad_gen² of n elements, in element order, to *sq_dom and *sq_gen: a
 * sum carried from slice to slice in order equals the whole tensor's. */
void gp_alignment_sq_sums(const float *grad_dom, const float *grad_gen, int64_t n, double *sq_dom, double *sq_gen);

/* Adds Σ |(F_dom − β F_gen)|θ|| and Σ γ √|θ| of the (slice of the) tensor, in element order,
 * to *fisher_term and *magnitude_term (start them at 0 for one tensor): their ratio says how far
 * DAI is from magnitude pruning. With in->fisher_scale or in->magnitude_scale set (gaprune-scaled)
 * each term is multiplied by its scale: the terms that criterion adds. */
void gp_dai_terms(const gp_score_in *in, double *fisher_term, double *magnitude_term);
/* How many of the (slice of the) tensor's weights have a negative Fisher term, F_dom − β F_gen < 0:
 * weights the general corpus needs more than the domain, which DAI ranks below every weight of
 * equal magnitude. When most are, DAI's Fisher term pulls against magnitude everywhere (and
 * gaprune-scaled, whose terms are of one scale, then departs far from a magnitude mask). */
int64_t gp_fisher_negative(const gp_score_in *in);

/* ---- scopes -------------------------------------------------------------------------------- */

/* GP_SCOPE_NEURONS, GP_SCOPE_HEADS: whole MLP neurons or attention heads (structured;
 * gp_model_struct_axis), the same number removed from every transformer block, so that the
 * model can be written at its reduced size. GP_SCOPE_NEURONS_GLOBAL: whole MLP neurons ranked
 * over all blocks together, so each block keeps its own number (at least one): a folder only
 * gaprune reads (model.h GP_CONFIG_INTER_SIZES). */
typedef enum {
    GP_SCOPE_GLOBAL,
    GP_SCOPE_LAYER,
    GP_SCOPE_ROW,
    GP_SCOPE_NM,
    GP_SCOPE_NEURONS,
    GP_SCOPE_HEADS,
    GP_SCOPE_NEURONS_GLOBAL
} gp_scope_kind;

typedef struct {
    gp_scope_kind kind;
    int n, m; /* n:m: keep n of every m */
} gp_scope;

gp_status gp_scope_parse(const char *s, gp_scope *out, gp_err *err);
/* "global", "layer", "row", "neurons", "neurons-global", "heads" or "2:4" into buf. */
const char *gp_scope_name(const gp_scope *s, char *buf, int len);
/* Whether the scope removes whole structures, and which kind. */
static inline bool gp_scope_structured(const gp_scope *s) {
    return s->kind == GP_SCOPE_NEURONS || s->kind == GP_SCOPE_HEADS || s->kind == GP_SCOPE_NEURONS_GLOBAL;
}
static inline gp_struct_kind gp_scope_struct(const gp_scope *s) {
    return s->kind == GP_SCOPE_HEADS ? GP_STRUCT_HEADS : GP_STRUCT_NEURONS;
}

/* ---- selection ----------------------------------------------------------------------------- */

/* Order-preserving map of a float to an unsigned key (NaN excluded by the caller). */
static inline uint32_t gp_float_key(float f) {
    union {
        float f;
        uint32_t u;
    } v = {f};
    return (v.u & 0x80000000u) ? ~v.u : v.u | 0x80000000u;
}

static inline float gp_key_float(uint32_t k) {
    union {
        uint32_t u;
        float f;
    } v = {(k & 0x80000000u) ? k & 0x7fffffffu : ~k};
    return v.f;
}

/* Scores of item i (numel[i] floats) into out; GP_EINPUT with a message stops the selection
 * (on every rank: the error is agreed after each pass, and reported by gp_agree). */
typedef gp_status (*gp_score_fn)(void *ctx, int item, float *out, gp_err *err);

typedef struct {
    int n;                /* this rank's items, in global order */
    const int64_t *numel; /* [n] */
    gp_score_fn fn;
    void *ctx;
} gp_score_source;

/* Collective: prunes exactly k of all ranks' items' elements: keep[i] gets numel[i] bits (bit j
 * of byte j/8; 1 = keep). Ties at the threshold go lowest rank, item, then element first.
 * *threshold is the score of the last pruned element (or -inf when k = 0), the same everywhere.
 * Returns the same status on every rank. Without MPI (one process) it runs alone. */
gp_status gp_select_smallest(const gp_score_source *src, int64_t k, uint8_t *const *keep, float *threshold, gp_err *err);

/* Within each run of `len` consecutive elements of scores[0..n), prunes the `k` lowest (ties:
 * lower index first); writes bits [bit0, bit0 + n) of keep. n must be a multiple of len. */
void gp_select_groups(const float *scores, int64_t n, int64_t len, int64_t k, uint8_t *keep, int64_t bit0);

static inline int gp_bit_get(const uint8_t *b, int64_t i) { return (b[i >> 3] >> (i & 7)) & 1; }
static inline void gp_bit_set(uint8_t *b, int64_t i, int v) {
    if (v) b[i >> 3] |= (uint8_t)(1u << (i & 7));
    else b[i >> 3] &= (uint8_t)~(1u << (i & 7));
}
