/* score.c — scoring the selected weights with one criterion, selecting, and writing the mask
 * file, every rank its slice (see score.h). */
#include "gaprune/score.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/provenance.h"
#include "gaprune/dist.h"
#include "gaprune/h5.h"
#include "gaprune/log.h"
#include "gaprune/mask_file.h"
#include "gaprune/prune.h"
#include "gaprune/stats_file.h"

/* ---- this rank's slice ------------------------------------------------------------------------- */

/* Rows [row0, row0 + rows) of selected tensor `item`, the part of it in this rank's block; its
 * scores are at `at` in the slice's. */
typedef struct {
    int item;
    int64_t row0, rows;
    int64_t at;
} piece;

/* The running values of the summary, carried through each tensor in element order. */
enum { SUM_MIN, SUM_MAX, SUM_SCORES, SUM_FISHER, SUM_MAGNITUDE, SUM_NEGATIVE, N_SUM };

/* Message tags of the values passed from rank to rank and of the scores gathered to rank 0. */
enum { TAG_SQ = 11, TAG_SUMMARY = 12, TAG_SCORES = 13, TAG_NEURONS = 14, TAG_SCALES = 15 };

typedef struct {
    const gp_prune_opts *cfg;
    const gp_model *m;
    const gp_criterion *crit;
    hid_t stats; /* -1 when there is no statistics file */
    const char *stats_path;
    unsigned needs;                 /* statistics the scores read (GP_NEED_*; refcode adds the gradients) */
    bool refcode;                   /* the element-wise alignment of the authors' code */
    int n, *items;                  /* selected tensors (table indices), in table order */
    int64_t *numel, *off;           /* of each: elements, offset in the vector of all selected elements */
    int *layer_of;                  /* transformer block of each item, -1 outside */
    int64_t maxn;                   /* largest numel of an item */
    int64_t *bounds;                /* [P + 1] the ranks' blocks of that vector (gp_stats_blocks) */
    piece *pc;                      /* this rank's pieces, in global order */
    int npc;
    int64_t slice_n;                /* elements in them */
    float *scores;                  /* [slice_n] */
    float *fd, *fg, *gd, *gg, *act; /* one piece's statistics (gd, gg with a row above and below) */
    float *wb;                      /* one piece's weights widened to float32 (16-bit weights) */
    double *cosine;                 /* per table index */
    double *sq;                     /* [n][2] Σ G_dom², Σ G_gen² of each item (refcode) */
    double *sum;                    /* [n][N_SUM] the summary values of each item */
    int *map, map_n;                /* a subset of the pieces (layer scope), or NULL */
    /* scopes neurons and heads: the kind, each item's axis (gp_model_struct_axis), the structures
     * of a block (units) and the rows or columns each spans (group: 1 for a neuron, head_dim for a
     * head), and every block's structure scores and kept structures [layers][units] */
    gp_struct_kind kind;
    int *axis;
    int layers;
    int64_t units, group;
    double *nscore;
    uint8_t *nkeep;
    double neuron_ratio; /* gaprune-neurons: Σ|Φ_dom − βΦ_gen| / Σ γ·m over every neuron */
    /* gaprune-scaled: the mean of |(F_dom − βF_gen)|θ|| and of √|θ| over every selected weight
     * (term_means) and their inverses (0 for another criterion), gp_score_in's scales */
    double mean_fisher, mean_magnitude, fisher_scale, magnitude_scale;
} score_ctx;

static int64_t cols_of(const score_ctx *c, int item) { return c->m->table.p[c->items[item]].shape[1]; }
static int64_t rows_of(const score_ctx *c, int item) { return c->m->table.p[c->items[item]].shape[0]; }

/* The rows of item that rank q's block holds; false when none. */
static bool piece_on(const score_ctx *c, int item, int q, int64_t *row0, int64_t *rows) {
    const int64_t a = c->off[item], b = a + c->numel[item], cols = cols_of(c, item);
    const int64_t s = a > c->bounds[q] ? a : c->bounds[q], e = b < c->bounds[q + 1] ? b : c->bounds[q + 1];
    if (s >= e) return false;
    *row0 = (s - a) / cols, *rows = (e - s) / cols; /* blocks are whole rows */
    return true;
}

/* The rank whose block holds element e of the selected vector. */
static int owner_of(const score_ctx *c, int64_t e) {
    int q = 0;
    while (q + 1 < gp_nranks() && !(e >= c->bounds[q] && e < c->bounds[q + 1])) q++;
    return q;
}

/* ---- scoring this rank's pieces from the model and stats.h5 ------------------------------------- */

static gp_status read_stat(score_ctx *c, const char *group, int item, int64_t row0, int64_t rows, float *buf,
                           gp_err *err) {
    const int p = c->items[item];
    char name[320];
    gp_stats_tensor(name, sizeof name, group, c->m->src_names[p]);
    if (!gp_h5_read_rows_f32(c->stats, name, rows_of(c, item), cols_of(c, item), row0, rows, buf)) return GP_OK;
    /* statistics exist only for the tensors of the layers they were gathered for */
    char *layers = gp_h5_read_attr_str(c->stats, GP_STATS_ATTR_LAYERS);
    gp_status rc = gp_errf(err, GP_EINPUT,
                           "%s: no dataset %s of %zu values (statistics of another model, or of other layers: the file "
                           "has prune.layers = %s, this job %s; rerun gaprune stats with the job's layers)",
                           c->stats_path, name, (size_t)c->numel[item], layers ? layers : "?",
                           gp_layers_name(c->cfg->layers));
    free(layers);
    return rc;
}

static gp_status read_act(score_ctx *c, int item, gp_err *err) {
    char name[320];
    gp_stats_tensor(name, sizeof name, GP_STATS_ACTIVATIONS, c->m->src_names[c->items[item]]);
    if (!gp_h5_read_f32(c->stats, name, c->act, (size_t)cols_of(c, item))) return GP_OK;
    return gp_errf(err, GP_EINPUT, "%s: no dataset %s of %lld values (statistics of another model?)", c->stats_path,
                   name, (long long)cols_of(c, item));
}

/* Piece j's part of Σ G² (refcode), added to acc[0..2) in element order. */
static gp_status sq_piece(score_ctx *c, int j, double *acc, gp_err *err) {
    const piece *q = &c->pc[j];
    gp_status rc;
    if ((rc = read_stat(c, GP_STATS_DOMAIN_GRAD_MEAN, q->item, q->row0, q->rows, c->gd, err)) ||
        (rc = read_stat(c, GP_STATS_GENERAL_GRAD_MEAN, q->item, q->row0, q->rows, c->gg, err)))
        return rc;
    gp_alignment_sq_sums(c->gd, c->gg, q->rows * cols_of(c, q->item), &acc[0], &acc[1]);
    return GP_OK;
}

/* Piece q's weights as float32: where they are when held so, else widened into c->wb. */
static const float *piece_weights(score_ctx *c, const piece *q) {
    const int64_t cols = cols_of(c, q->item);
    const size_t a = c->m->table.p[c->items[q->item]].offset + (size_t)(q->row0 * cols), n = (size_t)(q->rows * cols);
    if (c->m->wdtype == GP_DT_F32) return c->m->params + a;
    gp_model_weights_get(c->m, a, n, c->wb);
    return c->wb;
}

/* Piece j's Σ |(F_dom − βF_gen)|θ|| and Σ √|θ| added to acc[0..2) in element order (the DAI
 * terms with γ 1, unscaled). */
static gp_status terms_piece(score_ctx *c, int j, double *acc, gp_err *err) {
    const piece *q = &c->pc[j];
    const int64_t cols = cols_of(c, q->item);
    gp_status rc;
    if ((rc = read_stat(c, GP_STATS_DOMAIN_FISHER, q->item, q->row0, q->rows, c->fd, err)) ||
        (rc = read_stat(c, GP_STATS_GENERAL_FISHER, q->item, q->row0, q->rows, c->fg, err)))
        return rc;
    const gp_score_in in = {.rows = q->rows, .cols = cols, .w = piece_weights(c, q),
                            .fisher_dom = c->fd, .fisher_gen = c->fg, .beta = c->cfg->beta, .gamma = 1.0};
    gp_dai_terms(&in, &acc[0], &acc[1]);
    return GP_OK;
}

/* Scores piece j into its place in c->scores, checks them, and adds its part of the summary
 * (min, max, sum, and with statistics DAI's two terms) to acc in element order. */
static gp_status score_piece(score_ctx *c, int j, double *acc, gp_err *err) {
    const piece *q = &c->pc[j];
    const int p = c->items[q->item];
    const int64_t cols = cols_of(c, q->item), R = rows_of(c, q->item), n = q->rows * cols;
    float *out = c->scores + q->at;
    gp_score_in in = {.index = p,
                      .rows = q->rows,
                      .cols = cols,
                      .row0 = q->row0,
                      .tensor_rows = R,
                      .w = piece_weights(c, q),
                      .cosine = c->cosine ? c->cosine[p] : 0.0,
                      .alpha = c->cfg->alpha,
                      .beta = c->cfg->beta,
                      .gamma = c->cfg->gamma,
                      .fisher_scale = c->fisher_scale,
                      .magnitude_scale = c->magnitude_scale,
                      .seed = (uint64_t)c->cfg->prune_seed};
    gp_status rc = GP_OK;
    const bool fisher = (c->needs & GP_NEED_FISHER) || c->stats >= 0; /* the summary's DAI terms read it too */
    if (fisher && ((rc = read_stat(c, GP_STATS_DOMAIN_FISHER, q->item, q->row0, q->rows, c->fd, err)) ||
                   (rc = read_stat(c, GP_STATS_GENERAL_FISHER, q->item, q->row0, q->rows, c->fg, err))))
        return rc;
    in.fisher_dom = c->fd, in.fisher_gen = c->fg;
    if (c->needs & GP_NEED_GRAD) {
        /* the 3×3 box needs the rows just above and below the piece */
        const int64_t h0 = q->row0 > 0 ? q->row0 - 1 : 0, h1 = q->row0 + q->rows < R ? q->row0 + q->rows + 1 : R;
        if ((rc = read_stat(c, GP_STATS_DOMAIN_GRAD_MEAN, q->item, h0, h1 - h0, c->gd, err)) ||
            (rc = read_stat(c, GP_STATS_GENERAL_GRAD_MEAN, q->item, h0, h1 - h0, c->gg, err)))
            return rc;
        in.grad_dom = c->gd + (q->row0 - h0) * cols;
        in.grad_gen = c->gg + (q->row0 - h0) * cols;
        in.grad_sq_dom = c->sq[2 * q->item], in.grad_sq_gen = c->sq[2 * q->item + 1];
        in.refcode_alignment = c->refcode;
    }
    if ((c->needs & GP_NEED_ACT) && (rc = read_act(c, q->item, err))) return rc;
    in.act = c->act;
    c->crit->score(&in, out);
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(out[k]))
            return gp_errf(err, GP_EINPUT, "tensor \"%s\": %s score is %g at element %lld (check %s)", c->m->src_names[p],
                           c->crit->name, (double)out[k], (long long)(q->row0 * cols + k),
                           c->stats_path ? c->stats_path : "the weights");
    double smin = acc[SUM_MIN], smax = acc[SUM_MAX], ssum = acc[SUM_SCORES];
    for (int64_t k = 0; k < n; k++) smin = fmin(smin, out[k]), smax = fmax(smax, out[k]), ssum += out[k];
    acc[SUM_MIN] = smin, acc[SUM_MAX] = smax, acc[SUM_SCORES] = ssum;
    if (c->stats >= 0) {
        gp_dai_terms(&in, &acc[SUM_FISHER], &acc[SUM_MAGNITUDE]);
        acc[SUM_NEGATIVE] += (double)gp_fisher_negative(&in);
    }
    return GP_OK;
}

typedef gp_status (*piece_fn)(score_ctx *c, int j, double *acc, gp_err *err);

/* Runs fn over this rank's pieces with nv running values that go through each tensor in element
 * order, from the rank that holds its earlier rows to the one that holds the next: every sum,
 * minimum and maximum is then the one a single process makes, bitwise, on any number of ranks
 * (docs/DESIGN.md §4.3). Only a rank's first piece can continue a tensor and only its last can
 * be continued elsewhere, so the others run first and a rank waits only for a tensor it shares.
 * totals[item·nv ..] gets every item's final values on every rank. After an error the values
 * are still passed on (no rank waits forever); the error is agreed at the end. */
static gp_status chain(score_ctx *c, int nv, const double *init, piece_fn fn, int tag, double *totals, gp_err *err) {
    int64_t *bits = gp_calloc((size_t)(c->n > 0 ? c->n * nv : 1), sizeof(int64_t));
    const bool first_waits = c->npc > 0 && c->pc[0].row0 > 0;
    double *acc = gp_malloc((size_t)nv * sizeof(double));
    gp_status rc = GP_OK;
    for (int step = 0; step < c->npc; step++) {
        const int j = first_waits ? (step + 1) % c->npc : step;
        const piece *q = &c->pc[j];
        const int64_t cols = cols_of(c, q->item), start = c->off[q->item] + q->row0 * cols;
        if (j == 0 && first_waits) gp_recv_bytes(acc, (size_t)nv * sizeof(double), owner_of(c, start - 1), tag);
        else memcpy(acc, init, (size_t)nv * sizeof(double));
        gp_status r = rc ? GP_OK : fn(c, j, acc, err);
        if (!rc) rc = r;
        if (q->row0 + q->rows < rows_of(c, q->item))
            gp_send_bytes(acc, (size_t)nv * sizeof(double), owner_of(c, start + q->rows * cols), tag);
        else
            memcpy(bits + (size_t)q->item * nv, acc, (size_t)nv * sizeof(double));
    }
    /* one rank ends each item, the others hold zero bits: an integer sum moves the values exactly */
    gp_allreduce_sum_i64(bits, (size_t)(c->n * nv));
    memcpy(totals, bits, (size_t)(c->n * nv) * sizeof(double));
    free(bits);
    free(acc);
    return gp_agree(rc, err);
}

/* gaprune-scaled (collective): the two DAI terms' mean magnitudes over every selected weight,
 * summed tensor by tensor in element order through chain() and then over the tensors in order,
 * so bitwise the same on any number of ranks. A term that is 0 everywhere (no Fisher
 * information) keeps scale 0: it drops out. */
static gp_status term_means(score_ctx *c, gp_err *err) {
    const double zero[2] = {0, 0};
    double *tot = gp_malloc((size_t)(2 * (c->n ? c->n : 1)) * sizeof(double));
    gp_status rc = chain(c, 2, zero, terms_piece, TAG_SCALES, tot, err);
    double sf = 0, sm = 0, count = 0;
    for (int i = 0; i < c->n; i++) sf += tot[2 * i], sm += tot[2 * i + 1], count += (double)c->numel[i];
    free(tot);
    c->mean_fisher = count > 0 ? sf / count : 0, c->mean_magnitude = count > 0 ? sm / count : 0;
    c->fisher_scale = c->mean_fisher > 0 ? 1.0 / c->mean_fisher : 0;
    c->magnitude_scale = c->mean_magnitude > 0 ? 1.0 / c->mean_magnitude : 0;
    if (!rc)
        gp_log0("score: %s: mean |(F_dom - beta F_gen)|w|| %.4g, mean sqrt|w| %.4g over %.0f weights: gamma %g on "
                "these scales is gamma %.4g in the paper's DAI",
                c->crit->name, c->mean_fisher, c->mean_magnitude, count, c->cfg->gamma,
                c->mean_magnitude > 0 ? c->cfg->gamma * c->mean_fisher / c->mean_magnitude : NAN);
    return rc;
}

/* Scores this rank's slice: c->scores, and every item's summary values in c->sum (collective). */
static gp_status score_slice(score_ctx *c, gp_err *err) {
    gp_status rc = GP_OK;
    if (c->needs & GP_NEED_GRAD) {
        const double zero[2] = {0, 0};
        c->sq = gp_malloc((size_t)(2 * c->n) * sizeof(double));
        if ((rc = chain(c, 2, zero, sq_piece, TAG_SQ, c->sq, err))) return rc;
    }
    if ((c->needs & GP_NEED_SCALES) && (rc = term_means(c, err))) return rc;
    const double init[N_SUM] = {INFINITY, -INFINITY, 0, 0, 0, 0};
    c->sum = gp_malloc((size_t)(N_SUM * c->n) * sizeof(double));
    return chain(c, N_SUM, init, score_piece, TAG_SUMMARY, c->sum, err);
}

static int64_t floor_frac(double p, int64_t n) {
    double k = floor(p * (double)n + 1e-9); /* 0.3 * 10 must give 3 */
    return k < 0 ? 0 : (int64_t)k > n ? n : (int64_t)k;
}

/* ---- structures: whole MLP neurons ------------------------------------------------------------- */

/* Piece j's part of the structure score of every structure of its block, added to acc[0..units):
 * a structure's score is the sum of its weights' scores (a neuron: row j of the up projections and
 * column j of the down projection; a head: its group of rows of q, k, v and of columns of the
 * output). A row is summed within the piece that holds it; a column passes down the rows in
 * order through chain(), so every sum is the one a single process makes. */
static gp_status neuron_piece(score_ctx *c, int j, double *acc, gp_err *err) {
    (void)err;
    const piece *q = &c->pc[j];
    const int64_t cols = cols_of(c, q->item);
    const float *s = c->scores + q->at;
    if (c->axis[q->item] == GP_NEURON_ROWS) {
        for (int64_t r = 0; r < q->rows; r++) {
            double t = 0;
            for (int64_t k = 0; k < cols; k++) t += s[r * cols + k];
            acc[(q->row0 + r) / c->group] += t;
        }
    } else {
        for (int64_t r = 0; r < q->rows; r++)
            for (int64_t k = 0; k < cols; k++) acc[k / c->group] += s[r * cols + k];
    }
    return GP_OK;
}

typedef struct {
    double s;
    int64_t j;
} ranked;

static int by_score_then_index(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

/* One [layers, neurons] float64 dataset of the neuron statistics (every rank reads it). */
static gp_status read_neuron_stat(score_ctx *c, const char *group, const char *name, double *v, gp_err *err) {
    char path[160];
    snprintf(path, sizeof path, "%s/%s", group, name);
    if (!gp_h5_read_f64(c->stats, path, v, (size_t)(c->layers * c->units))) return GP_OK;
    return gp_errf(err, GP_EINPUT, "%s: no dataset %s of %d x %lld values (the MLP neuron statistics, written since stats "
                   "format 2 when prune.layers = mlp: rerun gaprune stats)", c->stats_path, path, c->layers,
                   (long long)c->units);
}

/* gaprune-neurons: c->nscore holds every neuron's Σ√|θ| over its weights (the element score);
 * it becomes the structured DAI
 *     S_j = [(Φ_dom,j − β Φ_gen,j) + γ · m_j] · (1 + α · s_j)
 * with Φ the Fisher of a gate on the neuron's output (stats.h5 neuron_fisher), m_j = the mean of
 * √|θ| over the neuron's weights (its sum over their count: the same count for every neuron of a
 * block) and s_j the cosine of G_gen and G_dom over its weights (neuron_cosine). Removing the
 * neuron sets its gate from 1 to 0, so ½Φ is the diagonal-Fisher estimate of the loss increase
 * that removal costs, the same quantity that (F_dom − βF_gen)|θ| stands for per weight in the
 * paper's DAI; m_j and s_j are the paper's magnitude and alignment terms per neuron. */
static gp_status structural_dai(score_ctx *c, gp_err *err) {
    const int64_t I = c->units, nn = (int64_t)c->layers * I;
    double *fd = gp_malloc((size_t)nn * sizeof(double)), *fg = gp_malloc((size_t)nn * sizeof(double)),
           *cs = gp_malloc((size_t)nn * sizeof(double));
    gp_status rc = read_neuron_stat(c, GP_STATS_DOMAIN, GP_STATS_NEURON_FISHER, fd, err);
    if (!rc) rc = read_neuron_stat(c, GP_STATS_GENERAL, GP_STATS_NEURON_FISHER, fg, err);
    if (!rc) rc = read_neuron_stat(c, GP_STATS_ALIGNMENT, GP_STATS_NEURON_COSINE, cs, err);
    int64_t weights = 0; /* of one neuron: a row of each up projection and a column of the down one */
    for (int i = 0; i < c->n; i++)
        if (c->layer_of[i] == c->layer_of[0]) weights += c->axis[i] == GP_NEURON_ROWS ? cols_of(c, i) : rows_of(c, i);
    double tf = 0, tm = 0;
    for (int64_t k = 0; k < nn && !rc; k++) {
        const double fisher = fd[k] - c->cfg->beta * fg[k], mag = c->cfg->gamma * c->nscore[k] / (double)weights;
        if (!isfinite(fisher) || !isfinite(cs[k]))
            rc = gp_errf(err, GP_EINPUT, "%s: neuron %lld of block %lld: neuron statistics are not finite (%g, %g, %g)",
                         c->stats_path, (long long)(k % I), (long long)(k / I), fd[k], fg[k], cs[k]);
        c->nscore[k] = (fisher + mag) * (1.0 + c->cfg->alpha * cs[k]);
        tf += fabs(fisher), tm += mag;
    }
    c->neuron_ratio = tm > 0 ? tf / tm : NAN;
    free(fd), free(fg), free(cs);
    return rc;
}

/* neurons-global: the floor(p·L·I) lowest structure scores of all blocks together removed (ties:
 * lower block, then lower index, first), each block keeping at least one neuron (a block whose
 * last one comes up keeps it, and the next lowest elsewhere goes instead). Every block's neurons
 * count the same weights, so their sums compare across blocks as they do within one. */
static void drop_global(score_ctx *c, double p) {
    const int64_t I = c->units, nn = (int64_t)c->layers * I;
    ranked *order = gp_malloc((size_t)nn * sizeof(ranked));
    for (int64_t k = 0; k < nn; k++) order[k] = (ranked){c->nscore[k], k};
    qsort(order, (size_t)nn, sizeof(ranked), by_score_then_index);
    int64_t *left = gp_malloc((size_t)c->layers * sizeof(int64_t));
    for (int l = 0; l < c->layers; l++) left[l] = I;
    int64_t drop = floor_frac(p, nn);
    if (drop > nn - c->layers) drop = nn - c->layers;
    for (int64_t k = 0; k < nn && drop > 0; k++) {
        const int64_t l = order[k].j / I;
        if (left[l] == 1) continue;
        c->nkeep[order[k].j] = 0;
        left[l]--, drop--;
    }
    free(left), free(order);
}

/* scopes neurons, neurons-global and heads (collective): every block's structure scores
 * (c->nscore, the sum over the block's tensors in table order of neuron_piece's sums), the
 * floor(p·units) lowest of every block removed (ties: lower index first) or, neurons-global,
 * the lowest of all blocks (drop_global), and the mask of the whole model from them on every
 * rank: a removed structure's rows and columns are zeros, everything else is kept. */
static gp_status select_structures(score_ctx *c, const gp_scope *scope, double p, gp_mask *mk, gp_err *err) {
    const int64_t I = c->units;
    double *zero = gp_calloc((size_t)I, sizeof(double)), *tot = gp_malloc((size_t)(c->n * I) * sizeof(double));
    gp_status rc = chain(c, (int)I, zero, neuron_piece, TAG_NEURONS, tot, err);
    free(zero);
    if (rc) {
        free(tot);
        return rc;
    }
    c->nscore = gp_calloc((size_t)(c->layers * I), sizeof(double));
    c->nkeep = gp_malloc((size_t)(c->layers * I));
    memset(c->nkeep, 1, (size_t)(c->layers * I));
    for (int i = 0; i < c->n; i++)
        for (int64_t k = 0; k < I; k++) c->nscore[(int64_t)c->layer_of[i] * I + k] += tot[(int64_t)i * I + k];
    free(tot);
    /* the same statistics file on every rank: the same scores, or the same error */
    if ((c->crit->needs & GP_NEED_NEURONS) && (rc = structural_dai(c, err))) return rc;
    if (c->crit->needs & GP_NEED_NEURONS)
        gp_log0("score: %s: structured DAI, fisher/magnitude term ratio %.3g over %lld neurons", c->crit->name,
                c->neuron_ratio, (long long)(c->layers * I));
    if (scope->kind == GP_SCOPE_NEURONS_GLOBAL) {
        drop_global(c, p);
    } else {
        const int64_t drop = floor_frac(p, I);
        ranked *order = gp_malloc((size_t)I * sizeof(ranked));
        for (int l = 0; l < c->layers; l++) {
            for (int64_t k = 0; k < I; k++) order[k] = (ranked){c->nscore[l * I + k], k};
            qsort(order, (size_t)I, sizeof(ranked), by_score_then_index);
            for (int64_t k = 0; k < drop; k++) c->nkeep[l * I + order[k].j] = 0;
        }
        free(order);
    }
    for (int i = 0; i < c->n; i++) {
        const int64_t R = rows_of(c, i), C = cols_of(c, i);
        const uint8_t *keep = c->nkeep + (int64_t)c->layer_of[i] * I;
        for (int64_t r = 0; r < R; r++)
            for (int64_t k = 0; k < C; k++)
                gp_bit_set(mk->keep[i], r * C + k, keep[(c->axis[i] == GP_NEURON_ROWS ? r : k) / c->group]);
    }
    return GP_OK;
}

/* ---- setup: the scope and the statistics ------------------------------------------------- */

/* prune.scope, except that a criterion comparing within rows turns global into row. */
static gp_scope effective_scope(const gp_prune_opts *cfg, const gp_criterion *crit) {
    gp_scope scope = cfg->scope;
    if ((crit->needs & GP_NEED_OBS) && scope.kind == GP_SCOPE_GLOBAL) {
        gp_log0("score: %s compares weights within one layer's Hessian: scope global means layer (each tensor's column "
                "blocks) here", crit->name);
        scope.kind = GP_SCOPE_LAYER;
    }
    if (crit->rowwise && scope.kind == GP_SCOPE_GLOBAL) {
        gp_log0("score: %s compares weights within output rows: scope global means row here", crit->name);
        scope.kind = GP_SCOPE_ROW;
    }
    return scope;
}

static gp_status load_cosines(score_ctx *c, gp_err *err) {
    const gp_model *m = c->m;
    c->cosine = gp_malloc((size_t)m->table.n * sizeof(double));
    for (int i = 0; i < m->table.n; i++) c->cosine[i] = NAN;
    hid_t d = H5Dopen2(c->stats, GP_STATS_ALIGNMENT_COSINE, H5P_DEFAULT),
          dn = H5Dopen2(c->stats, GP_STATS_ALIGNMENT_NAMES, H5P_DEFAULT);
    if (d < 0 || dn < 0) {
        if (d >= 0) H5Dclose(d);
        if (dn >= 0) H5Dclose(dn);
        return gp_errf(err, GP_EINPUT, "%s: no /" GP_STATS_ALIGNMENT_COSINE " and /" GP_STATS_ALIGNMENT_NAMES,
                       c->stats_path);
    }
    /* one name per value: names were read into a buffer sized by the values */
    const hssize_t np = gp_h5_stored_points(d);
    if (np < 0 || gp_h5_stored_points(dn) != np) {
        H5Dclose(d);
        H5Dclose(dn);
        return gp_errf(err, GP_EINPUT, "%s: /" GP_STATS_ALIGNMENT_COSINE " and /" GP_STATS_ALIGNMENT_NAMES
                       " are damaged (not one stored name per value)", c->stats_path);
    }
    const size_t n = (size_t)np;
    double *v = gp_malloc((n ? n : 1) * sizeof(double));
    char **names = gp_calloc(n ? n : 1, sizeof(char *));
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8);
    gp_status rc = GP_OK;
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0 ||
        H5Dread(dn, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) < 0)
        rc = gp_errf(err, GP_EINPUT, "%s: cannot read /" GP_STATS_ALIGNMENT, c->stats_path);
    for (size_t k = 0; k < n && !rc; k++)
        for (int i = 0; i < m->table.n; i++)
            if (names[k] && !strcmp(names[k], m->src_names[i])) c->cosine[i] = v[k];
    for (size_t k = 0; k < n; k++) free(names[k]);
    free(names);
    free(v);
    H5Tclose(st);
    H5Dclose(d);
    H5Dclose(dn);
    return rc;
}

/* Opens the statistics file (when there is one) and reads the alignment cosines; a criterion
 * that needs statistics fails without. */
static gp_status open_stats(score_ctx *c, gp_err *err) {
    if (!c->stats_path) {
        if (c->crit->needs & ~(unsigned)GP_NEED_OBS) /* sparsegpt reads the calibration corpora, not the statistics */
            return gp_errf(err, GP_EINPUT, "%s: criterion %s needs statistics: run gaprune stats first", c->cfg->job_path,
                           c->crit->name);
        return GP_OK;
    }
    c->stats = gp_h5_open_quiet(c->stats_path);
    if (c->stats < 0) return gp_errf(err, GP_EINPUT, "%s: cannot open (run gaprune stats first)", c->stats_path);
    int64_t complete = 0;
    gp_status rc = GP_OK;
    char *fmt = gp_h5_read_attr_str(c->stats, GP_H5_ATTR_FORMAT);
    if (!fmt || strcmp(fmt, GP_STATS_FORMAT) || gp_h5_read_attr_int(c->stats, GP_H5_ATTR_COMPLETE, &complete) ||
        complete != 1)
        rc = gp_errf(err, GP_EINPUT, "%s: not a complete gaprune statistics file", c->stats_path);
    free(fmt);
    return rc ? rc : load_cosines(c, err);
}

/* ---- the selected tensors and the slices ----------------------------------------------------------- */

/* An n:m scope groups m consecutive inputs: every selected tensor's width must divide. */
static gp_status check_width(const gp_prune_opts *cfg, const gp_scope *scope, const gp_model *m, int i, gp_err *err) {
    const gp_param *t = &m->table.p[i];
    if (scope->kind == GP_SCOPE_NM && t->shape[1] % scope->m)
        return gp_errf(err, GP_EINPUT, "%s: [prune] scope %d:%d: tensor \"%s\" has %lld inputs, not a multiple of m = %d",
                       cfg->scope_origin, scope->n, scope->m, m->src_names[i], (long long)t->shape[1], scope->m);
    return GP_OK;
}

/* Neurons (and neurons-global): MLP weights only (prune.layers = mlp), every one indexing its
 * block's neurons along one axis, intermediate_size of them, in a folder whose blocks all have
 * that size. Heads: attention weights only (layers = attention) of an
 * architecture with a heads scope, every one indexing its block's heads in groups of head_dim,
 * in a folder without pruned_heads yet (transformers records original head indices, which a
 * second pruning would have to map back). */
static gp_status check_structures(const gp_prune_opts *cfg, const gp_scope *scope, const gp_model *m, int i, gp_err *err) {
    if (!gp_scope_structured(scope)) return GP_OK;
    const gp_struct_kind k = gp_scope_struct(scope);
    const gp_layers want = k == GP_STRUCT_HEADS ? GP_LAYERS_ATTENTION : GP_LAYERS_MLP;
    char buf[32];
    const char *sname = gp_scope_name(scope, buf, sizeof buf);
    if (cfg->layers != want)
        return gp_errf(err, GP_EINPUT, "%s: [prune] scope = %s removes whole %s: it needs layers = %s, not %s (%s)",
                       cfg->scope_origin, sname, gp_struct_title(k), gp_layers_name(want), gp_layers_name(cfg->layers),
                       cfg->layers_origin);
    if (k == GP_STRUCT_HEADS && !gp_arch_get(m->cfg.arch)->head_rows)
        return gp_errf(err, GP_EINPUT, "%s: [prune] scope = heads: %s (%s) has no heads scope (BERT-family models have)",
                       cfg->scope_origin, m->dir, gp_arch_get(m->cfg.arch)->name);
    if (k == GP_STRUCT_NEURONS && m->cfg.ragged)
        return gp_errf(err, GP_EINPUT, "%s: [prune] scope = %s: the blocks of %s have different intermediate sizes (%s in "
                       "its config.json): prune the neurons of the folder it was made from",
                       cfg->scope_origin, sname, m->dir, GP_CONFIG_INTER_SIZES);
    if (k == GP_STRUCT_HEADS && m->cfg.heads_pruned)
        return gp_errf(err, GP_EINPUT, "%s: [prune] scope = heads: %s already has pruned_heads in its config.json; prune "
                       "the heads of the folder it was made from", cfg->scope_origin, m->dir);
    int layer;
    const gp_neuron_axis ax = gp_model_struct_axis(m, k, i, &layer);
    const gp_param *t = &m->table.p[i];
    const int64_t n = gp_model_struct_count(m, k) * gp_model_struct_width(m, k);
    if (ax == GP_NEURON_NONE || layer < 0 || t->shape[ax == GP_NEURON_ROWS ? 0 : 1] != n)
        return gp_errf(err, GP_EINPUT, "%s: [prune] scope = %s: tensor \"%s\" of %s does not index %lld %s along an axis",
                       cfg->scope_origin, sname, m->src_names[i], m->dir, (long long)gp_model_struct_count(m, k),
                       gp_struct_name(k));
    return GP_OK;
}

static gp_status selects_nothing(const gp_prune_opts *cfg, const gp_model *m, gp_err *err) {
    return gp_errf(err, GP_EINPUT, "%s: [prune] layers = %s selects no weights of %s", cfg->layers_origin,
                   gp_layers_name(cfg->layers), m->dir);
}

gp_status gp_prune_check(const gp_prune_opts *cfg, const gp_model *m, gp_err *err) {
    int n = 0, layer;
    for (int i = 0; i < m->table.n; i++) {
        if (!gp_prune_selects(cfg->layers, m, i, &layer)) continue;
        gp_status rc = check_width(cfg, &cfg->scope, m, i, err);
        if (!rc) rc = check_structures(cfg, &cfg->scope, m, i, err);
        if (rc) return rc;
        n++;
    }
    return n ? GP_OK : selects_nothing(cfg, m, err);
}

/* The tensors prune.layers selects (c->items, numel, off, layer_of; mk->total), an all-zero keep
 * bitmap of each (every rank assembles the whole mask), this rank's pieces of them and the
 * buffers to score the largest piece. */
static gp_status select_tensors(score_ctx *c, const gp_scope *scope, gp_mask *mk, gp_err *err) {
    const gp_model *m = c->m;
    const int P = gp_nranks();
    int64_t *off = gp_malloc((size_t)m->table.n * sizeof(int64_t));
    const int64_t total = gp_stats_layout(m, c->cfg->layers, off);
    c->items = gp_malloc((size_t)m->table.n * sizeof(int));
    c->numel = gp_malloc((size_t)m->table.n * sizeof(int64_t));
    c->off = gp_malloc((size_t)m->table.n * sizeof(int64_t));
    c->layer_of = gp_malloc((size_t)m->table.n * sizeof(int));
    c->axis = gp_malloc((size_t)m->table.n * sizeof(int));
    c->kind = gp_scope_struct(scope);
    c->units = gp_model_struct_count(m, c->kind);
    c->group = gp_model_struct_width(m, c->kind);
    int64_t maxn = 1;
    gp_status rc = GP_OK;
    for (int i = 0; i < m->table.n && !rc; i++) {
        int layer;
        if (off[i] < 0) continue;
        gp_prune_selects(c->cfg->layers, m, i, &layer);
        const gp_param *t = &m->table.p[i];
        rc = check_width(c->cfg, scope, m, i, err);
        if (!rc) rc = check_structures(c->cfg, scope, m, i, err);
        c->axis[c->n] = gp_model_struct_axis(m, c->kind, i, NULL);
        c->layers = layer + 1 > c->layers ? layer + 1 : c->layers;
        c->layer_of[c->n] = layer;
        c->numel[c->n] = (int64_t)t->numel;
        c->off[c->n] = off[i];
        c->items[c->n++] = i;
        maxn = (int64_t)t->numel > maxn ? (int64_t)t->numel : maxn;
        mk->total += (int64_t)t->numel;
    }
    if (!rc && c->n == 0) rc = selects_nothing(c->cfg, m, err);
    c->maxn = maxn;
    c->bounds = gp_malloc((size_t)(P + 1) * sizeof(int64_t));
    gp_stats_blocks(&m->table, off, total, P, c->bounds);
    free(off);
    c->pc = gp_malloc((size_t)(c->n ? c->n : 1) * sizeof(piece));
    int64_t maxp = 1, maxh = 1, maxc = 1;
    for (int i = 0; i < c->n; i++) {
        int64_t row0, rows;
        if (!piece_on(c, i, gp_rank(), &row0, &rows)) continue;
        const int64_t cols = cols_of(c, i);
        c->pc[c->npc++] = (piece){i, row0, rows, c->slice_n};
        c->slice_n += rows * cols;
        maxp = rows * cols > maxp ? rows * cols : maxp;
        maxh = (rows + 2) * cols > maxh ? (rows + 2) * cols : maxh;
        maxc = cols > maxc ? cols : maxc;
    }
    c->scores = gp_malloc((size_t)(c->slice_n ? c->slice_n : 1) * sizeof(float));
    if ((c->needs & GP_NEED_FISHER) || c->stats >= 0) {
        c->fd = gp_malloc((size_t)maxp * sizeof(float));
        c->fg = gp_malloc((size_t)maxp * sizeof(float));
    }
    if (c->needs & GP_NEED_GRAD) {
        c->gd = gp_malloc((size_t)maxh * sizeof(float));
        c->gg = gp_malloc((size_t)maxh * sizeof(float));
    }
    if (c->needs & GP_NEED_ACT) c->act = gp_malloc((size_t)maxc * sizeof(float));
    if (c->m->wdtype != GP_DT_F32) c->wb = gp_malloc((size_t)(maxp + 1) * sizeof(float));
    mk->n = c->n;
    mk->param = gp_malloc((size_t)(c->n ? c->n : 1) * sizeof(int));
    mk->numel = gp_malloc((size_t)(c->n ? c->n : 1) * sizeof(int64_t));
    mk->keep = gp_calloc((size_t)(c->n ? c->n : 1), sizeof(uint8_t *));
    for (int i = 0; i < c->n; i++) {
        mk->param[i] = c->items[i];
        mk->numel[i] = c->numel[i];
        mk->keep[i] = gp_calloc((size_t)(c->numel[i] + 7) / 8, 1);
    }
    return rc;
}

static void free_ctx(score_ctx *c) {
    if (c->stats >= 0) H5Fclose(c->stats);
    free(c->items), free(c->numel), free(c->off), free(c->layer_of), free(c->cosine), free(c->bounds), free(c->pc);
    free(c->scores), free(c->wb), free(c->fd), free(c->fg), free(c->gd), free(c->gg), free(c->act), free(c->sq), free(c->sum);
    free(c->axis), free(c->nscore), free(c->nkeep);
}

/* ---- selection, per scope ---------------------------------------------------------------------- */

/* The source of the selection: piece j's scores (through c->map in layer scope). */
static gp_status give_piece(void *vctx, int j, float *out, gp_err *err) {
    (void)err;
    const score_ctx *c = vctx;
    const piece *q = &c->pc[c->map ? c->map[j] : j];
    memcpy(out, c->scores + q->at, (size_t)(q->rows * cols_of(c, q->item)) * sizeof(float));
    return GP_OK;
}

/* scope global: the floor(p·N) lowest scores of all selected weights, over every rank's pieces;
 * sets mk->threshold. */
static gp_status select_global(score_ctx *c, double p, int64_t *numel, uint8_t **kp, gp_mask *mk, gp_err *err) {
    float thr;
    gp_score_source src = {c->npc, numel, give_piece, c};
    gp_status rc = gp_select_smallest(&src, floor_frac(p, mk->total), kp, &thr, err);
    mk->threshold = thr;
    return rc;
}

/* scope layer: the floor(p·N_l) lowest of every transformer block (and of the tensors outside
 * them, layer -1), block after block in increasing order, each over every rank's pieces of the
 * block (a rank without one takes part with none); give_piece sees them through c->map. */
static gp_status select_per_layer(score_ctx *c, double p, const int64_t *numel, uint8_t **kp, gp_err *err) {
    c->map = gp_malloc((size_t)(c->npc ? c->npc : 1) * sizeof(int));
    int64_t *nm = gp_malloc((size_t)(c->npc ? c->npc : 1) * sizeof(int64_t));
    uint8_t **km = gp_malloc((size_t)(c->npc ? c->npc : 1) * sizeof(uint8_t *));
    gp_status rc = GP_OK;
    for (int L = -1; !rc;) {
        /* the next layer id above L present among the items */
        int next = -2;
        for (int i = 0; i < c->n; i++)
            if (c->layer_of[i] > L && (next == -2 || c->layer_of[i] < next)) next = c->layer_of[i];
        if (next == -2) break;
        int64_t nl = 0;
        for (int i = 0; i < c->n; i++)
            if (c->layer_of[i] == next) nl += c->numel[i];
        c->map_n = 0;
        for (int j = 0; j < c->npc; j++)
            if (c->layer_of[c->pc[j].item] == next) {
                nm[c->map_n] = numel[j];
                km[c->map_n] = kp[j];
                c->map[c->map_n++] = j;
            }
        float thr;
        gp_score_source src = {c->map_n, nm, give_piece, c};
        rc = gp_select_smallest(&src, floor_frac(p, nl), km, &thr, err);
        L = next;
    }
    free(c->map);
    c->map = NULL;
    free(nm);
    free(km);
    return rc;
}

/* scope row (floor(p·cols) of every output row) and n:m (m − n of every m consecutive inputs):
 * groups within one row, so within one piece: no rank needs another's scores. */
static void select_in_groups(score_ctx *c, const gp_scope *scope, double p, const int64_t *numel, uint8_t **kp) {
    for (int j = 0; j < c->npc; j++) {
        const int64_t cols = cols_of(c, c->pc[j].item);
        int64_t len = scope->kind == GP_SCOPE_ROW ? cols : scope->m;
        int64_t k = scope->kind == GP_SCOPE_ROW ? floor_frac(p, cols) : scope->m - scope->n;
        gp_select_groups(c->scores + c->pc[j].at, numel[j], len, k, kp[j], 0);
    }
}

/* ORs the n bits of src into dst from bit `at` (src's bits past n are ignored). */
static void or_bits(uint8_t *dst, int64_t at, const uint8_t *src, int64_t n) {
    const int sh = (int)(at & 7);
    uint8_t *d = dst + (at >> 3);
    for (int64_t b = 0; b < (n + 7) / 8; b++) {
        unsigned v = src[b];
        if (b == n / 8) v &= (1u << (n % 8)) - 1; /* the last, partial byte */
        d[b] |= (uint8_t)(v << sh);
        if (sh && v >> (8 - sh)) d[b + 1] |= (uint8_t)(v >> (8 - sh));
    }
}

/* Selects within this rank's pieces (global and layer scope: with every rank's), then
 * assembles the whole mask on every rank: each sets its pieces' bits in the zeroed bitmaps and
 * an OR over ranks joins them (a piece starts at a row, not always at a byte). */
static gp_status select_weights(score_ctx *c, const gp_scope *scope, double p, gp_mask *mk, gp_err *err) {
    int64_t *numel = gp_malloc((size_t)(c->npc ? c->npc : 1) * sizeof(int64_t));
    uint8_t **kp = gp_malloc((size_t)(c->npc ? c->npc : 1) * sizeof(uint8_t *));
    for (int j = 0; j < c->npc; j++) {
        numel[j] = c->pc[j].rows * cols_of(c, c->pc[j].item);
        kp[j] = gp_malloc((size_t)(numel[j] + 7) / 8);
    }
    gp_status rc = GP_OK;
    if (gp_scope_structured(scope)) {
        /* every rank forms the whole mask from the structure scores: nothing to join */
        for (int j = 0; j < c->npc; j++) free(kp[j]);
        free(kp);
        free(numel);
        return select_structures(c, scope, p, mk, err);
    }
    if (scope->kind == GP_SCOPE_GLOBAL) rc = select_global(c, p, numel, kp, mk, err);
    else if (scope->kind == GP_SCOPE_LAYER) rc = select_per_layer(c, p, numel, kp, err);
    else select_in_groups(c, scope, p, numel, kp);
    for (int j = 0; j < c->npc && !rc; j++)
        or_bits(mk->keep[c->pc[j].item], c->pc[j].row0 * cols_of(c, c->pc[j].item), kp[j], numel[j]);
    for (int i = 0; i < c->n && !rc; i++) gp_allreduce_bor_u8(mk->keep[i], (size_t)(c->numel[i] + 7) / 8);
    for (int j = 0; j < c->npc; j++) free(kp[j]);
    free(kp);
    free(numel);
    return rc;
}

/* ---- the mask file ----------------------------------------------------------------------------- */

/* Every rank: the summary rows (mk->rows) from the whole mask and the items' summary values,
 * mk->pruned and the model's zero fraction. */
static void fill_rows(const score_ctx *c, gp_mask *mk) {
    const gp_model *m = c->m;
    mk->rows = gp_calloc((size_t)(c->n ? c->n : 1), sizeof(gp_mask_row));
    for (int i = 0; i < c->n; i++) {
        gp_mask_row *r = &mk->rows[i];
        const double *s = c->sum + (size_t)i * N_SUM;
        snprintf(r->name, sizeof r->name, "%s", m->src_names[c->items[i]]);
        r->param = c->items[i];
        r->layer = c->layer_of[i];
        r->numel = c->numel[i];
        for (int64_t b = 0; b < (c->numel[i] + 7) / 8; b++) r->kept += __builtin_popcount(mk->keep[i][b]);
        r->score_min = s[SUM_MIN], r->score_max = s[SUM_MAX], r->score_mean = s[SUM_SCORES] / (double)r->numel;
        r->fisher_vs_magnitude = c->stats >= 0 && s[SUM_MAGNITUDE] > 0 ? s[SUM_FISHER] / s[SUM_MAGNITUDE] : NAN;
        mk->pruned += r->numel - r->kept;
    }
    double neg = 0, all = 0;
    for (int i = 0; i < c->n; i++) neg += c->sum[(size_t)i * N_SUM + SUM_NEGATIVE], all += (double)c->numel[i];
    mk->fisher_negative = c->stats >= 0 && all > 0 ? neg / all : NAN;
}

/* Rank 0 gets item i's scores from the ranks that hold its rows, in row order (every rank takes
 * part: the others send their piece of it, if any). */
static void gather_scores(const score_ctx *c, int i, float *all) {
    const int64_t cols = cols_of(c, i);
    if (gp_rank() != 0) {
        for (int j = 0; j < c->npc; j++)
            if (c->pc[j].item == i)
                gp_send_bytes(c->scores + c->pc[j].at, (size_t)(c->pc[j].rows * cols) * sizeof(float), 0, TAG_SCORES);
        return;
    }
    for (int q = 0; q < gp_nranks(); q++) {
        int64_t row0, rows;
        if (!piece_on(c, i, q, &row0, &rows)) continue;
        const size_t bytes = (size_t)(rows * cols) * sizeof(float);
        if (q != 0) {
            gp_recv_bytes(all + row0 * cols, bytes, q, TAG_SCORES);
            continue;
        }
        for (int j = 0; j < c->npc; j++)
            if (c->pc[j].item == i) memcpy(all + row0 * cols, c->scores + c->pc[j].at, bytes);
    }
}

static void write_summary(hid_t f, const gp_mask *mk) {
    gp_mask_summary_row *r = gp_malloc((size_t)(mk->n ? mk->n : 1) * sizeof *r);
    for (int i = 0; i < mk->n; i++) {
        const gp_mask_row *s = &mk->rows[i];
        r[i] = (gp_mask_summary_row){(char *)s->name, s->layer, s->numel, s->kept,
                                     1.0 - (double)s->kept / (double)s->numel, s->score_min, s->score_mean,
                                     s->score_max, s->fisher_vs_magnitude};
    }
    gp_mask_summary_write(f, r, (size_t)mk->n);
    free(r);
}

/* Zeros of the whole model once the mask is applied, as a fraction of its parameters. */
static double model_zero_fraction(const score_ctx *c, const gp_mask *mk) {
    const gp_model *m = c->m;
    int64_t zeros = 0;
    /* a 16-bit zero is +0 (0x0000) or -0 (0x8000), as a float32 zero is +0 or -0 */
    const bool w16 = m->wdtype != GP_DT_F32;
    for (size_t k = 0; k < m->table.total; k++) zeros += w16 ? (m->w16[k] & 0x7fffu) == 0 : m->params[k] == 0.0f;
    for (int i = 0; i < c->n; i++) {
        const size_t at = m->table.p[c->items[i]].offset;
        for (int64_t k = 0; k < c->numel[i]; k++)
            zeros += !gp_bit_get(mk->keep[i], k) &&
                     (w16 ? (m->w16[at + (size_t)k] & 0x7fffu) != 0 : m->params[at + (size_t)k] != 0.0f);
    }
    return (double)zeros / (double)m->table.total;
}

static void write_attributes(const score_ctx *c, hid_t f, const gp_mask_request *req, const gp_scope *scope, double p,
                             const gp_mask *mk) {
    const gp_prune_opts *cfg = c->cfg;
    char sc[16];
    gp_provenance_write(f, GP_MASK_FORMAT, GP_MASK_FORMAT_VERSION);
    gp_h5_attr_str(f, GP_MASK_ATTR_METHOD, c->crit->name);
    gp_h5_attr_str(f, GP_MASK_ATTR_METHOD_DESCRIPTION, c->crit->description);
    gp_h5_attr_double(f, GP_MASK_ATTR_SPARSITY_TARGET, p);
    gp_h5_attr_double(f, GP_MASK_ATTR_SPARSITY_ACHIEVED, (double)mk->pruned / (double)mk->total);
    gp_h5_attr_str(f, GP_MASK_ATTR_SCOPE, gp_scope_name(scope, sc, sizeof sc));
    gp_h5_attr_str(f, GP_MASK_ATTR_LAYERS, gp_layers_name(cfg->layers));
    gp_h5_attr_double(f, GP_MASK_ATTR_THRESHOLD, mk->threshold);
    gp_h5_attr_double(f, GP_MASK_ATTR_ALPHA, cfg->alpha);
    gp_h5_attr_double(f, GP_MASK_ATTR_BETA, cfg->beta);
    gp_h5_attr_double(f, GP_MASK_ATTR_GAMMA, cfg->gamma);
    gp_h5_attr_str(f, GP_MASK_ATTR_ALIGNMENT, gp_alignment_name(cfg->alignment));
    gp_h5_attr_str(f, GP_MASK_ATTR_STATS_FILE, req->stats_path ? req->stats_path : "");
    gp_h5_attr_int(f, GP_MASK_ATTR_SEED, cfg->prune_seed);
    gp_h5_attr_str(f, GP_MASK_ATTR_MODEL_PATH, c->m->dir);
    gp_h5_attr_int(f, GP_MASK_ATTR_N_SELECTED, mk->total);
    gp_h5_attr_int(f, GP_MASK_ATTR_N_PRUNED, mk->pruned);
    gp_h5_attr_int(f, GP_MASK_ATTR_MODEL_PARAMS, (int64_t)c->m->table.total);
    gp_h5_attr_double(f, GP_MASK_ATTR_MODEL_ZERO_FRACTION, mk->model_zero_fraction);
    double rsum = 0;
    int rn = 0;
    for (int i = 0; i < c->n; i++)
        if (!isnan(mk->rows[i].fisher_vs_magnitude)) rsum += mk->rows[i].fisher_vs_magnitude, rn++;
    gp_h5_attr_double(f, GP_MASK_ATTR_FISHER_VS_MAGNITUDE_MEAN, rn ? rsum / rn : NAN);
    gp_h5_attr_double(f, GP_MASK_ATTR_FISHER_NEGATIVE, mk->fisher_negative);
    if (c->crit->needs & GP_NEED_SCALES) {
        gp_h5_attr_double(f, GP_MASK_ATTR_MEAN_FISHER_TERM, c->mean_fisher);
        gp_h5_attr_double(f, GP_MASK_ATTR_MEAN_MAGNITUDE_TERM, c->mean_magnitude);
        gp_h5_attr_double(f, GP_MASK_ATTR_GAMMA_EFFECTIVE,
                          c->mean_magnitude > 0 ? cfg->gamma * c->mean_fisher / c->mean_magnitude : NAN);
    }
    gp_h5_attr_str(f, GP_MASK_ATTR_SETTINGS_HASH, req->settings_hash ? req->settings_hash : "");
    gp_h5_attr_str(f, GP_H5_ATTR_DESCRIPTION,
                   "GAPrune pruning mask: /mask/<param> (1 = keep), /summary per tensor, optional /score/<param>");
}

/* Rank 0 writes the mask file, via .tmp: /mask/<tensor> (and /score/<tensor>, gathered one
 * tensor at a time), the attributes, the summary, `complete` last. Collective (the scores'
 * gathering), with the status agreed. */
static gp_status write_mask_file(score_ctx *c, const gp_mask_request *req, const gp_scope *scope, double p, gp_mask *mk,
                                 gp_err *err) {
    const gp_model *m = c->m;
    const bool root = gp_rank() == 0;
    hid_t f = root ? gp_h5_create_tmp(req->mask_path) : -1;
    uint8_t *bytes = root ? gp_malloc((size_t)c->maxn) : NULL;
    float *all = root && c->cfg->save_scores ? gp_malloc((size_t)c->maxn * sizeof(float)) : NULL;
    for (int i = 0; i < c->n; i++) {
        if (c->cfg->save_scores) gather_scores(c, i, all);
        if (!root) continue;
        const int pi = c->items[i];
        const gp_param *t = &m->table.p[pi];
        for (size_t k = 0; k < t->numel; k++) bytes[k] = (uint8_t)gp_bit_get(mk->keep[i], (int64_t)k);
        char name[320];
        hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
        gp_mask_tensor(name, sizeof name, GP_MASK_KEEP, m->src_names[pi]);
        hid_t ds = gp_h5_dataset(f, name, H5T_STD_U8LE, 2, dims, "1 = keep, 0 = pruned", "1");
        gp_h5_write_rows(ds, H5T_NATIVE_UINT8, 0, dims[0], dims[1], bytes);
        H5Dclose(ds);
        if (c->cfg->save_scores) {
            gp_mask_tensor(name, sizeof name, GP_MASK_SCORE, m->src_names[pi]);
            ds = gp_h5_dataset_f32(f, name, 2, dims, "pruning score of each weight (lower is pruned first)",
                                   "criterion units");
            gp_h5_write_rows_f32(ds, 0, dims[0], dims[1], all);
            H5Dclose(ds);
        }
    }
    free(bytes);
    free(all);
    gp_status rc = GP_OK;
    if (root && c->nkeep) {
        const bool heads = c->kind == GP_STRUCT_HEADS;
        const hsize_t dims[2] = {(hsize_t)c->layers, (hsize_t)c->units};
        hid_t ds = gp_h5_dataset(f, heads ? GP_MASK_HEAD_KEEP : GP_MASK_NEURON_KEEP, H5T_STD_U8LE, 2, dims,
                                 heads ? "attention heads of each transformer block: 1 = kept, 0 = removed (its head_dim "
                                         "rows of query, key and value, and columns of the attention output)"
                                       : "MLP neurons of each transformer block: 1 = kept, 0 = removed (rows of the up "
                                         "projections and column of the down projection)", "1");
        gp_h5_write_rows(ds, H5T_NATIVE_UINT8, 0, dims[0], dims[1], c->nkeep);
        H5Dclose(ds);
        const bool structural = c->crit->needs & GP_NEED_NEURONS;
        ds = gp_h5_dataset(f, heads ? GP_MASK_HEAD_SCORE : GP_MASK_NEURON_SCORE, H5T_IEEE_F64LE, 2, dims,
                           structural ? "structure score of each MLP neuron: the structured DAI [(Phi_dom - beta Phi_gen) + "
                                        "gamma mean sqrt|w|] (1 + alpha s_j) (lower is removed first)"
                                      : "structure score of each structure: the sum of its weights' scores (lower is removed first)",
                           "criterion units");
        gp_h5_write_rows(ds, H5T_NATIVE_DOUBLE, 0, dims[0], dims[1], c->nscore);
        H5Dclose(ds);
        int64_t removed = 0, total = 0;
        for (int64_t k = 0; k < c->units; k++) removed += !c->nkeep[k];
        for (int64_t k = 0; k < (int64_t)c->layers * c->units; k++) total += !c->nkeep[k];
        gp_h5_attr_int(f, heads ? GP_MASK_ATTR_HEADS_PER_LAYER : GP_MASK_ATTR_NEURONS_PER_LAYER, c->units);
        /* neurons-global: each block its own count (/neurons/keep); the total instead */
        if (scope->kind == GP_SCOPE_NEURONS_GLOBAL) gp_h5_attr_int(f, GP_MASK_ATTR_NEURONS_REMOVED_TOTAL, total);
        else gp_h5_attr_int(f, heads ? GP_MASK_ATTR_HEADS_REMOVED : GP_MASK_ATTR_NEURONS_REMOVED, removed);
        if (structural) gp_h5_attr_double(f, GP_MASK_ATTR_NEURON_FISHER_VS_MAGNITUDE, c->neuron_ratio);
    }
    if (root) {
        write_attributes(c, f, req, scope, p, mk);
        write_summary(f, mk);
        if (req->write_extra) req->write_extra(req->ctx, f);
        gp_h5_attr_int(f, GP_H5_ATTR_COMPLETE, 1);
        rc = gp_h5_close_commit(f, req->mask_path, err);
    }
    return gp_agree(rc, err);
}

/* ---- build ------------------------------------------------------------------------------------- */

void gp_prune_opts_from_job(gp_prune_opts *o, const gp_job *job) {
    *o = (gp_prune_opts){.layers = job->prune.layers,
                         .scope = job->prune.scope,
                         .alignment = job->stats.alignment,
                         .alpha = job->prune.alpha,
                         .beta = job->prune.beta[0], /* a variant (gp_prune_variants) sets its own */
                         .gamma = job->prune.gamma[0],
                         .prune_seed = job->prune.seed,
                         .save_scores = job->prune.save_scores,
                         .out_dir = job->out_dir,
                         .job_path = job->path,
                         .layers_origin = gp_job_origin(job, "prune", "layers"),
                         .scope_origin = gp_job_origin(job, "prune", "scope")};
}

gp_status gp_mask_build(const gp_prune_opts *cfg, const gp_model *m, const gp_mask_request *req, gp_mask *mk, gp_err *err) {
    memset(mk, 0, sizeof *mk);
    mk->threshold = NAN;
    const gp_criterion *crit = req->method;
    const gp_scope scope = effective_scope(cfg, crit);
    double p = scope.kind == GP_SCOPE_NM ? 1.0 - (double)scope.n / scope.m : req->sparsity;
    score_ctx c = {.cfg = cfg, .m = m, .crit = crit, .stats = -1, .stats_path = req->stats_path, .needs = crit->needs,
                   .neuron_ratio = NAN};
    c.refcode = cfg->alignment == GP_ALIGN_REFCODE && (crit->needs & GP_NEED_FISHER);
    if (c.refcode) c.needs |= GP_NEED_GRAD;
    gp_status rc = open_stats(&c, err);
    if (!rc) rc = select_tensors(&c, &scope, mk, err);
    rc = gp_agree(rc, err);
    const bool obs = crit->needs & GP_NEED_OBS;
    if (obs && !rc) { /* the mask comes from the reconstruction's sweep: every bit set until then, no scores */
        GP_CHECK(req->after_select, "%s chooses its mask in the reconstruction, which was not asked for", crit->name);
        for (int i = 0; i < mk->n; i++) memset(mk->keep[i], 0xff, (size_t)(mk->numel[i] + 7) / 8);
        c.sum = gp_malloc((size_t)(N_SUM * (c.n ? c.n : 1)) * sizeof(double));
        for (int64_t k = 0; k < (int64_t)N_SUM * c.n; k++) c.sum[k] = NAN;
    }
    if (!rc && !obs) rc = score_slice(&c, err);
    if (!rc && !obs) rc = select_weights(&c, &scope, p, mk, err);
    if (!rc && req->after_select) rc = req->after_select(req->ctx, mk, err);
    if (!rc) {
        fill_rows(&c, mk);
        mk->model_zero_fraction = model_zero_fraction(&c, mk);
        mk->neuron_fisher_vs_magnitude = c.neuron_ratio;
        mk->uneven_structs = scope.kind == GP_SCOPE_NEURONS_GLOBAL;
        rc = write_mask_file(&c, req, &scope, p, mk, err);
    }
    free_ctx(&c);
    if (rc) gp_mask_free(mk);
    return rc;
}
