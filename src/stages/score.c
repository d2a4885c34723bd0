/* score.c — scoring the selected weights with one criterion, selecting, and writing the mask file (see score.h). */
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

/* ---- scoring one selected tensor from the model and stats.h5 --------------------------------- */

typedef struct {
    const gp_prune_opts *cfg;
    const gp_model *m;
    const gp_criterion *crit;
    hid_t stats; /* -1 when there is no statistics file */
    const char *stats_path;
    int n, *items;       /* selected tensors (table indices) */
    int64_t *numel;
    int *layer_of;                  /* transformer block of each item, -1 outside */
    int64_t maxn;                   /* largest numel of an item */
    float *fd, *fg, *gd, *gg, *act; /* one tensor's statistics */
    float *scores;                  /* one tensor's scores */
    double *cosine;                 /* per table index */
    int *map, map_n;                /* a subset of items (layer scope), or NULL */
} score_ctx;

static gp_status read_stat(score_ctx *c, const char *group, int p, float *buf, size_t n, gp_err *err) {
    char name[320];
    gp_stats_tensor(name, sizeof name, group, c->m->src_names[p]);
    if (!gp_h5_read_f32(c->stats, name, buf, n)) return GP_OK;
    /* statistics exist only for the tensors of the layers they were gathered for */
    char *layers = gp_h5_read_attr_str(c->stats, GP_STATS_ATTR_LAYERS);
    gp_status rc = gp_errf(err, GP_EINPUT,
                           "%s: no dataset %s of %zu values (statistics of another model, or of other layers: the file "
                           "has prune.layers = %s, this job %s; rerun gaprune stats with the job's layers)",
                           c->stats_path, name, n, layers ? layers : "?", gp_layers_name(c->cfg->layers));
    free(layers);
    return rc;
}

static gp_status load_fisher(score_ctx *c, int p, gp_err *err) {
    size_t n = c->m->table.p[p].numel;
    gp_status rc = read_stat(c, GP_STATS_DOMAIN_FISHER, p, c->fd, n, err);
    if (!rc) rc = read_stat(c, GP_STATS_GENERAL_FISHER, p, c->fg, n, err);
    return rc;
}

static gp_status score_item(void *vctx, int item, float *out, gp_err *err) {
    score_ctx *c = vctx;
    if (c->map) item = c->map[item];
    const int p = c->items[item];
    const gp_param *t = &c->m->table.p[p];
    gp_score_in in = {.index = p,
                      .rows = t->shape[0],
                      .cols = t->shape[1],
                      .w = gp_model_param(c->m, p),
                      .cosine = c->cosine ? c->cosine[p] : 0.0,
                      .alpha = c->cfg->alpha,
                      .beta = c->cfg->beta,
                      .gamma = c->cfg->gamma,
                      .seed = (uint64_t)c->cfg->prune_seed};
    gp_status rc = GP_OK;
    unsigned needs = c->crit->needs;
    bool refcode = c->cfg->alignment == GP_ALIGN_REFCODE && (needs & GP_NEED_FISHER);
    if (refcode) needs |= GP_NEED_GRAD;
    if (needs & GP_NEED_FISHER) {
        if ((rc = load_fisher(c, p, err))) return rc;
        in.fisher_dom = c->fd;
        in.fisher_gen = c->fg;
    }
    if (needs & GP_NEED_GRAD) {
        if ((rc = read_stat(c, GP_STATS_DOMAIN_GRAD_MEAN, p, c->gd, t->numel, err)) ||
            (rc = read_stat(c, GP_STATS_GENERAL_GRAD_MEAN, p, c->gg, t->numel, err)))
            return rc;
        in.grad_dom = c->gd;
        in.grad_gen = c->gg;
        in.refcode_alignment = refcode;
    }
    if (needs & GP_NEED_ACT) {
        if ((rc = read_stat(c, GP_STATS_ACTIVATIONS, p, c->act, (size_t)t->shape[1], err))) return rc;
        in.act = c->act;
    }
    c->crit->score(&in, out);
    for (size_t k = 0; k < t->numel; k++)
        if (!isfinite(out[k]))
            return gp_errf(err, GP_EINPUT, "tensor \"%s\": %s score is %g at element %zu (check %s)", c->m->src_names[p],
                           c->crit->name, (double)out[k], k, c->stats_path ? c->stats_path : "the weights");
    return GP_OK;
}

/* ---- setup: the scope and the statistics ------------------------------------------------- */

/* prune.scope, except that a criterion comparing within rows turns global into row. */
static gp_scope effective_scope(const gp_prune_opts *cfg, const gp_criterion *crit) {
    gp_scope scope = cfg->scope;
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
    hid_t sp = H5Dget_space(d);
    size_t n = (size_t)H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
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
        if (c->crit->needs)
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

/* ---- the selected tensors ---------------------------------------------------------------------- */

static int64_t floor_frac(double p, int64_t n) {
    double k = floor(p * (double)n + 1e-9); /* 0.3 * 10 must give 3 */
    return k < 0 ? 0 : (int64_t)k > n ? n : (int64_t)k;
}

bool gp_prune_selects(gp_layers layers, const gp_model *m, int i, int *layer) {
    gp_param_kind k = gp_model_param_kind(m, i, layer);
    if (layers == GP_LAYERS_MLP) return k == GP_PARAM_MLP;
    if (layers == GP_LAYERS_ATTENTION) return k == GP_PARAM_ATTENTION;
    return k == GP_PARAM_MLP || k == GP_PARAM_ATTENTION;
}

/* The tensors prune.layers selects (c->items, numel, layer_of; mk->total), the buffers to score
 * the largest of them, and an all-zero keep bitmap for each. */
/* An n:m scope groups m consecutive inputs: every selected tensor's width must divide. */
static gp_status check_width(const gp_prune_opts *cfg, const gp_scope *scope, const gp_model *m, int i, gp_err *err) {
    const gp_param *t = &m->table.p[i];
    if (scope->kind == GP_SCOPE_NM && t->shape[1] % scope->m)
        return gp_errf(err, GP_EINPUT, "%s: [prune] scope %d:%d: tensor \"%s\" has %lld inputs, not a multiple of m = %d",
                       cfg->scope_origin, scope->n, scope->m, m->src_names[i], (long long)t->shape[1], scope->m);
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
        if (rc) return rc;
        n++;
    }
    return n ? GP_OK : selects_nothing(cfg, m, err);
}

static gp_status select_tensors(score_ctx *c, const gp_scope *scope, gp_mask *mk, gp_err *err) {
    const gp_model *m = c->m;
    c->items = gp_malloc((size_t)m->table.n * sizeof(int));
    c->numel = gp_malloc((size_t)m->table.n * sizeof(int64_t));
    c->layer_of = gp_malloc((size_t)m->table.n * sizeof(int));
    int64_t maxn = 1, maxc = 1;
    gp_status rc = GP_OK;
    for (int i = 0; i < m->table.n && !rc; i++) {
        int layer;
        if (!gp_prune_selects(c->cfg->layers, m, i, &layer)) continue;
        const gp_param *t = &m->table.p[i];
        rc = check_width(c->cfg, scope, m, i, err);
        c->layer_of[c->n] = layer;
        c->numel[c->n] = (int64_t)t->numel;
        c->items[c->n++] = i;
        maxn = (int64_t)t->numel > maxn ? (int64_t)t->numel : maxn;
        maxc = t->shape[1] > maxc ? t->shape[1] : maxc;
        mk->total += (int64_t)t->numel;
    }
    if (!rc && c->n == 0) rc = selects_nothing(c->cfg, m, err);
    c->maxn = maxn;
    c->fd = gp_malloc((size_t)maxn * sizeof(float));
    c->fg = gp_malloc((size_t)maxn * sizeof(float));
    c->gd = gp_malloc((size_t)maxn * sizeof(float));
    c->gg = gp_malloc((size_t)maxn * sizeof(float));
    c->act = gp_malloc((size_t)maxc * sizeof(float));
    c->scores = gp_malloc((size_t)maxn * sizeof(float));
    mk->n = c->n;
    mk->param = gp_malloc((size_t)(c->n ? c->n : 1) * sizeof(int));
    mk->numel = gp_malloc((size_t)(c->n ? c->n : 1) * sizeof(int64_t));
    mk->keep = gp_calloc((size_t)(c->n ? c->n : 1), sizeof(uint8_t *));
    for (int i = 0; i < c->n; i++) {
        mk->param[i] = c->items[i];
        mk->numel[i] = c->numel[i];
        mk->keep[i] = gp_malloc((size_t)(c->numel[i] + 7) / 8);
    }
    return rc;
}

static void free_ctx(score_ctx *c) {
    if (c->stats >= 0) H5Fclose(c->stats);
    free(c->items), free(c->numel), free(c->layer_of), free(c->cosine);
    free(c->fd), free(c->fg), free(c->gd), free(c->gg), free(c->act), free(c->scores);
}

/* ---- selection, per scope ---------------------------------------------------------------------- */

/* scope global: the floor(p·N) lowest scores of all selected weights; sets mk->threshold. */
static gp_status select_global(score_ctx *c, double p, gp_mask *mk, gp_err *err) {
    float thr;
    gp_score_source src = {c->n, c->numel, score_item, c};
    gp_status rc = gp_select_smallest(&src, floor_frac(p, mk->total), mk->keep, &thr, err);
    mk->threshold = thr;
    return rc;
}

/* scope layer: the floor(p·N_l) lowest of every transformer block (and of the tensors outside
 * them, layer -1), block after block in increasing order; score_item sees the block's tensors
 * through c->map. */
static gp_status select_per_layer(score_ctx *c, double p, gp_mask *mk, gp_err *err) {
    c->map = gp_malloc((size_t)c->n * sizeof(int));
    int64_t *nm = gp_malloc((size_t)c->n * sizeof(int64_t));
    uint8_t **kp = gp_malloc((size_t)c->n * sizeof(uint8_t *));
    gp_status rc = GP_OK;
    for (int L = -1; !rc;) {
        /* the next layer id above L present among the items */
        int next = -2;
        for (int i = 0; i < c->n; i++)
            if (c->layer_of[i] > L && (next == -2 || c->layer_of[i] < next)) next = c->layer_of[i];
        if (next == -2) break;
        c->map_n = 0;
        int64_t nl = 0;
        for (int i = 0; i < c->n; i++)
            if (c->layer_of[i] == next) {
                nm[c->map_n] = c->numel[i];
                kp[c->map_n] = mk->keep[i];
                c->map[c->map_n++] = i;
                nl += c->numel[i];
            }
        float thr;
        gp_score_source src = {c->map_n, nm, score_item, c};
        rc = gp_select_smallest(&src, floor_frac(p, nl), kp, &thr, err);
        L = next;
    }
    free(c->map);
    c->map = NULL;
    free(nm);
    free(kp);
    return rc;
}

/* scope row (floor(p·cols) of every output row) and n:m (m − n of every m consecutive inputs):
 * groups within one tensor, scored one tensor at a time. */
static gp_status select_in_groups(score_ctx *c, const gp_scope *scope, double p, gp_mask *mk, gp_err *err) {
    gp_status rc = GP_OK;
    for (int i = 0; i < c->n && !rc; i++) {
        const gp_param *t = &c->m->table.p[c->items[i]];
        if ((rc = score_item(c, i, c->scores, err))) break;
        int64_t len = scope->kind == GP_SCOPE_ROW ? t->shape[1] : scope->m;
        int64_t k = scope->kind == GP_SCOPE_ROW ? floor_frac(p, t->shape[1]) : scope->m - scope->n;
        gp_select_groups(c->scores, (int64_t)t->numel, len, k, mk->keep[i], 0);
    }
    return rc;
}

static gp_status select_weights(score_ctx *c, const gp_scope *scope, double p, gp_mask *mk, gp_err *err) {
    if (scope->kind == GP_SCOPE_GLOBAL) return select_global(c, p, mk, err);
    if (scope->kind == GP_SCOPE_LAYER) return select_per_layer(c, p, mk, err);
    return select_in_groups(c, scope, p, mk, err);
}

/* ---- the mask file ----------------------------------------------------------------------------- */

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

/* Item i: scores it again for its summary row (mk->rows[i]) and writes /mask/<tensor> (and
 * /score/<tensor>). bytes: room for the largest item. */
static gp_status write_tensor(score_ctx *c, hid_t f, int i, gp_mask *mk, uint8_t *bytes, gp_err *err) {
    const gp_model *m = c->m;
    const int pi = c->items[i];
    const gp_param *t = &m->table.p[pi];
    const float *scores = c->scores;
    gp_status rc = score_item(c, i, c->scores, err);
    if (rc) return rc;
    gp_mask_row *r = &mk->rows[i];
    snprintf(r->name, sizeof r->name, "%s", m->src_names[pi]);
    r->param = pi;
    r->layer = c->layer_of[i];
    r->numel = (int64_t)t->numel;
    double smin = INFINITY, smax = -INFINITY, ssum = 0;
    for (size_t k = 0; k < t->numel; k++) {
        bytes[k] = (uint8_t)gp_bit_get(mk->keep[i], (int64_t)k);
        r->kept += bytes[k];
        smin = fmin(smin, scores[k]), smax = fmax(smax, scores[k]), ssum += scores[k];
    }
    r->score_min = smin, r->score_max = smax, r->score_mean = ssum / (double)t->numel;
    r->fisher_vs_magnitude = NAN;
    if (c->stats >= 0 && !(rc = load_fisher(c, pi, err))) {
        gp_score_in in = {.rows = t->shape[0], .cols = t->shape[1], .w = gp_model_param(m, pi), .fisher_dom = c->fd,
                          .fisher_gen = c->fg, .beta = c->cfg->beta, .gamma = c->cfg->gamma};
        double ft, mt;
        gp_dai_terms(&in, &ft, &mt);
        r->fisher_vs_magnitude = mt > 0 ? ft / mt : NAN;
    }
    mk->pruned += r->numel - r->kept;
    char name[320];
    hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
    gp_mask_tensor(name, sizeof name, GP_MASK_KEEP, m->src_names[pi]);
    hid_t ds = gp_h5_dataset(f, name, H5T_STD_U8LE, 2, dims, "1 = keep, 0 = pruned", "1");
    gp_h5_write_rows(ds, H5T_NATIVE_UINT8, 0, dims[0], dims[1], bytes);
    H5Dclose(ds);
    if (c->cfg->save_scores) {
        gp_mask_tensor(name, sizeof name, GP_MASK_SCORE, m->src_names[pi]);
        ds = gp_h5_dataset_f32(f, name, 2, dims, "pruning score of each weight (lower is pruned first)", "criterion units");
        gp_h5_write_rows_f32(ds, 0, dims[0], dims[1], scores);
        H5Dclose(ds);
    }
    return rc;
}

/* Zeros of the whole model once the mask is applied, as a fraction of its parameters. */
static double model_zero_fraction(const score_ctx *c, const gp_mask *mk) {
    const gp_model *m = c->m;
    int64_t zeros = 0;
    for (size_t k = 0; k < m->table.total; k++) zeros += m->params[k] == 0.0f;
    for (int i = 0; i < c->n; i++) {
        const float *w = gp_model_param(m, c->items[i]);
        for (int64_t k = 0; k < c->numel[i]; k++) zeros += !gp_bit_get(mk->keep[i], k) && w[k] != 0.0f;
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
    gp_h5_attr_str(f, GP_MASK_ATTR_SETTINGS_HASH, req->settings_hash ? req->settings_hash : "");
    gp_h5_attr_str(f, GP_H5_ATTR_DESCRIPTION,
                   "GAPrune pruning mask: /mask/<param> (1 = keep), /summary per tensor, optional /score/<param>");
}

/* The mask file, via .tmp: one more scoring pass for the summary (and the scores), the
 * attributes, the summary, `complete` last. Fills mk->rows, pruned and model_zero_fraction. */
static gp_status write_mask_file(score_ctx *c, const gp_mask_request *req, const gp_scope *scope, double p, gp_mask *mk,
                                 gp_err *err) {
    hid_t f = gp_h5_create_tmp(req->mask_path);
    mk->rows = gp_calloc((size_t)(c->n ? c->n : 1), sizeof(gp_mask_row));
    uint8_t *bytes = gp_malloc((size_t)c->maxn);
    gp_status rc = GP_OK;
    for (int i = 0; i < c->n && !rc; i++) rc = write_tensor(c, f, i, mk, bytes, err);
    free(bytes);
    if (rc) {
        H5Fclose(f);
        return rc;
    }
    mk->model_zero_fraction = model_zero_fraction(c, mk);
    write_attributes(c, f, req, scope, p, mk);
    write_summary(f, mk);
    gp_h5_attr_int(f, GP_H5_ATTR_COMPLETE, 1);
    return gp_h5_close_commit(f, req->mask_path, err);
}

/* ---- build ------------------------------------------------------------------------------------- */

void gp_prune_opts_from_job(gp_prune_opts *o, const gp_job *job) {
    *o = (gp_prune_opts){.layers = job->prune.layers,
                         .scope = job->prune.scope,
                         .alignment = job->stats.alignment,
                         .alpha = job->prune.alpha,
                         .beta = job->prune.beta,
                         .gamma = job->prune.gamma,
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
    score_ctx c = {.cfg = cfg, .m = m, .crit = crit, .stats = -1, .stats_path = req->stats_path};
    gp_status rc = open_stats(&c, err);
    if (!rc) rc = select_tensors(&c, &scope, mk, err);
    if (!rc) rc = select_weights(&c, &scope, p, mk, err);
    if (!rc) rc = write_mask_file(&c, req, &scope, p, mk, err);
    free_ctx(&c);
    if (rc) gp_mask_free(mk);
    return rc;
}
