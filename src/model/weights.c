/* weights.c — the weights in memory: float32, or 16-bit as the checkpoint stores them, with the
 * float32 views the forward and backward compute with (see model.h, "the weights in memory"). */
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "gaprune/bf16.h"
#include "gaprune/kernels.h"
#include "gaprune/model.h"

/* The float32 views of 16-bit weights. A block's parameters lie contiguous in the table, so one
 * block is one range [lo[l], hi[l]) widened into blk; the parameters outside the blocks (norms,
 * position and type embeddings) but the token embedding are widened once into outer, the
 * token embedding's rows per batch into rows. */
struct gp_wview {
    int *layer;        /* [table.n] block of each parameter, -1 outside */
    size_t *outer_at;  /* [table.n] offset in outer of a parameter outside the blocks */
    size_t *lo, *hi;   /* [layers] the flat range of each block */
    float *outer;      /* the parameters outside the blocks but the token embedding */
    bool outer_valid;
    float *blk;        /* [largest block] */
    int blk_layer;     /* the block blk holds, -1: none */
    float *rows;       /* [cap_rows · C] token-embedding rows of a batch */
    int32_t *iota;     /* [cap_rows] 0, 1, ... */
    int cap_rows;
};

static void widen(gp_dtype dt, const uint16_t *x, size_t n, float *out) {
    if (dt == GP_DT_BF16) {
        gp_bf16_to_f32(out, x, (int64_t)n);
        return;
    }
#pragma omp parallel for if ((int64_t)n >= gp_par_min()) schedule(static)
    for (size_t k = 0; k < n; k++) out[k] = gp_f16_to_f32(x[k]);
}

/* Each parameter's block (-1 outside) and each block's flat range, of these shapes. */
static void block_ranges(const gp_model_config *c, const gp_param_table *t, int *layer, size_t *lo, size_t *hi) {
    gp_model shape = {0}; /* gp_model_param_kind reads the config and the table only */
    shape.cfg = *c;
    shape.table = *t;
    for (int l = 0; l < c->layers; l++) lo[l] = t->total, hi[l] = 0;
    for (int i = 0; i < t->n; i++) {
        int l = -1;
        gp_model_param_kind(&shape, i, &l);
        layer[i] = l >= 0 && l < c->layers ? l : -1;
        if (layer[i] < 0) continue;
        const size_t a = t->p[i].offset, e = a + t->p[i].numel;
        if (a < lo[l]) lo[l] = a;
        if (e > hi[l]) hi[l] = e;
    }
}

size_t gp_model_view_floats(const gp_model_config *c, const gp_param_table *t) {
    int *layer = gp_malloc((size_t)t->n * sizeof(int) + 1);
    size_t *lo = gp_malloc((size_t)(c->layers + 1) * sizeof(size_t)), *hi = gp_malloc((size_t)(c->layers + 1) * sizeof(size_t));
    block_ranges(c, t, layer, lo, hi);
    const int tok = gp_param_table_find(t, gp_arch_ops_get(c->arch)->token_embedding);
    size_t outer = 0, most = 0;
    for (int i = 0; i < t->n; i++) outer += layer[i] < 0 && i != tok ? t->p[i].numel : 0;
    for (int l = 0; l < c->layers; l++) most = hi[l] > lo[l] && hi[l] - lo[l] > most ? hi[l] - lo[l] : most;
    free(layer), free(lo), free(hi);
    return outer + most;
}

void gp_model_wview_init(gp_model *m) {
    gp_model_wview_free(m);
    if (m->wdtype == GP_DT_F32) return;
    gp_wview *v = gp_calloc(1, sizeof *v);
    const gp_param_table *t = &m->table;
    const int L = m->cfg.layers;
    v->layer = gp_malloc((size_t)t->n * sizeof(int) + 1);
    v->outer_at = gp_malloc((size_t)t->n * sizeof(size_t) + 1);
    v->lo = gp_malloc((size_t)(L + 1) * sizeof(size_t));
    v->hi = gp_malloc((size_t)(L + 1) * sizeof(size_t));
    block_ranges(&m->cfg, t, v->layer, v->lo, v->hi);
    size_t outer = 0, most = 0;
    for (int i = 0; i < t->n; i++) {
        v->outer_at[i] = outer;
        if (v->layer[i] < 0 && i != m->tok_emb) outer += t->p[i].numel;
    }
    for (int l = 0; l < L; l++) {
        size_t inside = 0; /* a block is one range of the table: the layout gp_model_build_table makes */
        for (int i = 0; i < t->n; i++) inside += v->layer[i] == l ? t->p[i].numel : 0;
        GP_CHECK(inside == v->hi[l] - v->lo[l], "block %d's parameters are not contiguous in the table", l);
        if (inside > most) most = inside;
    }
    v->outer = gp_malloc((outer + 1) * sizeof(float));
    v->blk = gp_malloc((most + 1) * sizeof(float));
    v->blk_layer = -1;
    m->wv = v;
}

static gp_wview *view_of(const gp_model *m) {
    GP_CHECK(m->wv, "16-bit weights without their views");
    return m->wv;
}

void gp_model_wview_free(gp_model *m) {
    gp_wview *v = m->wv;
    if (!v) return;
    free(v->layer), free(v->outer_at), free(v->lo), free(v->hi);
    free(v->outer), free(v->blk), free(v->rows), free(v->iota);
    free(v);
    m->wv = NULL;
}

void gp_model_weights_changed(gp_model *m) {
    if (!m->wv) return;
    m->wv->outer_valid = false;
    m->wv->blk_layer = -1;
}

size_t gp_model_weight_bytes(const gp_model *m) { return m->wdtype == GP_DT_F32 ? sizeof(float) : sizeof(uint16_t); }

float *gp_model_param(const gp_model *m, int i) {
    GP_CHECK(m->wdtype == GP_DT_F32, "%s is held in %s: no float32 pointer to it (gp_model_w, gp_model_weights_get)",
             m->table.p[i].name, gp_dtype_name(m->wdtype));
    return m->params + m->table.p[i].offset;
}

const float *gp_model_w(const gp_model *m, int i) {
    const gp_param *p = &m->table.p[i];
    if (m->wdtype == GP_DT_F32) return m->params + p->offset;
    GP_CHECK(i != m->tok_emb, "the token embedding is read by rows (gp_model_token_rows)");
    gp_wview *v = view_of(m);
    const int l = v->layer[i];
    if (l >= 0) {
        if (v->blk_layer != l) {
            widen(m->wdtype, m->w16 + v->lo[l], v->hi[l] - v->lo[l], v->blk);
            v->blk_layer = l;
        }
        return v->blk + (p->offset - v->lo[l]);
    }
    if (!v->outer_valid) {
        for (int k = 0; k < m->table.n; k++)
            if (v->layer[k] < 0 && k != m->tok_emb)
                widen(m->wdtype, m->w16 + m->table.p[k].offset, m->table.p[k].numel, v->outer + v->outer_at[k]);
        v->outer_valid = true;
    }
    return v->outer + v->outer_at[i];
}

const float *gp_model_token_rows(const gp_model *m, const int32_t *ids, int N, const int32_t **use) {
    const gp_param *p = &m->table.p[m->tok_emb];
    if (m->wdtype == GP_DT_F32) {
        *use = ids;
        return m->params + p->offset;
    }
    gp_wview *v = view_of(m);
    const size_t C = (size_t)p->shape[1];
    if (N > v->cap_rows) {
        free(v->rows), free(v->iota);
        v->cap_rows = N;
        v->rows = gp_malloc((size_t)N * C * sizeof(float));
        v->iota = gp_malloc((size_t)N * sizeof(int32_t));
        for (int t = 0; t < N; t++) v->iota[t] = t;
    }
    for (int t = 0; t < N; t++) widen(m->wdtype, m->w16 + p->offset + (size_t)ids[t] * C, C, v->rows + (size_t)t * C);
    *use = v->iota;
    return v->rows;
}

void gp_model_weights_get(const gp_model *m, size_t a, size_t n, float *dst) {
    if (m->wdtype == GP_DT_F32) memcpy(dst, m->params + a, n * sizeof(float));
    else widen(m->wdtype, m->w16 + a, n, dst);
}

void gp_model_weights_set(gp_model *m, size_t a, size_t n, const float *src) {
    if (m->wdtype == GP_DT_F32) {
        memmove(m->params + a, src, n * sizeof(float));
    } else if (m->wdtype == GP_DT_BF16) {
        gp_bf16_from_f32(m->w16 + a, src, (int64_t)n);
    } else {
        uint16_t *w = m->w16 + a;
#pragma omp parallel for if ((int64_t)n >= gp_par_min()) schedule(static)
        for (size_t k = 0; k < n; k++) w[k] = gp_f32_to_f16(src[k]);
    }
    gp_model_weights_changed(m);
}

void gp_model_hold_f32(gp_model *m, bool always) {
    m->hold_f32 |= always;
    if (m->wdtype == GP_DT_F32) return;
    float *w = gp_malloc((m->table.total + 1) * sizeof(float));
    widen(m->wdtype, m->w16, m->table.total, w);
    free(m->w16);
    m->w16 = NULL;
    m->params = w;
    m->wdtype = GP_DT_F32;
    gp_model_wview_init(m);
}
