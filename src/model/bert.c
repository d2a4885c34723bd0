/* bert.c — the BERT encoder (BERT, MiniLM, bge, e5, gte): its config.json, parameters, forward
 * and backward, and its registry row (arch.h).
 *
 * Post-LN blocks, as transformers' BertModel in eval mode (no dropout):
 *   x0  = LN(wte[id] + wpe[pos] + wtt[0])
 *   per layer:  qkv = x Wqkv^T + b        (query, key and value weights are adjacent in the
 *                                          parameter buffer, so they form one [3C, C] matrix)
 *               ctx = softmax(q k^T / √hs) v   per head, keys of the same sequence only
 *               x1  = LN(x + ctx Wo^T + bo)
 *               x'  = LN(x1 + gelu(x1 Wi^T + bi) Wout^T + bout)
 * Shapes: N tokens, C hidden, I intermediate (block l's own in a ragged folder, model.h), NH heads, hs = C / num_attention_heads, A = NH·hs
 * the attention's width (C, or less in a folder whose config.json lists pruned_heads: transformers'
 * prune_heads removes the same heads' rows of q, k, v and columns of the output dense).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "gaprune/json.h"
#include "gaprune/kernels.h"

/* ---- config.json ------------------------------------------------------------------------ */

static gp_status bert_config(const cJSON *j, const char *path, gp_model_config *cfg, gp_err *err) {
    gp_status rc;
    if ((rc = gp_config_common_sizes(j, path, cfg, err)) ||
        (rc = gp_config_int(j, "type_vocab_size", &cfg->type_vocab, path, err)) ||
        (rc = gp_config_eps(j, "layer_norm_eps", &cfg->norm_eps, path, err)))
        return rc;
    const char *act = NULL;
    if ((rc = gp_json_string(j, "hidden_act", &act, path, err))) return rc;
    if (strcmp(act, "gelu") != 0)
        return gp_errf(err, GP_EINPUT, "%s: key \"hidden_act\" = \"%s\" is not supported (gelu, the erf form)", path, act);
    const char *pet = NULL;
    if ((rc = gp_json_opt_string(j, "position_embedding_type", &pet, path, err))) return rc;
    if (pet && strcmp(pet, "absolute") != 0)
        return gp_errf(err, GP_EINPUT, "%s: key \"position_embedding_type\" = \"%s\" is not supported (absolute)", path, pet);
    if (cfg->hidden % cfg->heads)
        return gp_errf(err, GP_EINPUT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, cfg->hidden,
                       cfg->heads);
    cfg->head_dim = cfg->hidden / cfg->heads;
    int removed = 0;
    if ((rc = gp_config_pruned_heads(j, path, cfg->layers, cfg->heads, &removed, err))) return rc;
    cfg->heads -= removed;
    cfg->heads_pruned = removed;
    cfg->kv_heads = cfg->heads;
    return GP_OK;
}

/* ---- parameter table ---------------------------------------------------------------------- */

/* Canonical names of block l's parameters start with BLOCK "l." */
#define BLOCK "encoder.layer."

/* Index layout of the parameter table built below. */
enum { E_WTE, E_WPE, E_WTT, E_LNW, E_LNB, E_COUNT };
enum {
    L_QW, L_KW, L_VW, L_QB, L_KB, L_VB, /* q, k, v adjacent: one [3C, C] matrix and one [3C] bias */
    L_AOW, L_AOB, L_ALNW, L_ALNB,       /* attention output dense + LayerNorm */
    L_IW, L_IB, L_OW, L_OB, L_OLNW, L_OLNB,
    L_COUNT
};

static void bert_build_table(const gp_model_config *c, gp_param_table *t) {
    const int64_t C = c->hidden, A = (int64_t)c->heads * c->head_dim;
    gp_param_table_add(t, "embeddings.word_embeddings.weight", 2, c->vocab_size, C);
    gp_param_table_add(t, "embeddings.position_embeddings.weight", 2, c->max_positions, C);
    gp_param_table_add(t, "embeddings.token_type_embeddings.weight", 2, c->type_vocab, C);
    gp_param_table_add(t, "embeddings.LayerNorm.weight", 1, C, 0);
    gp_param_table_add(t, "embeddings.LayerNorm.bias", 1, C, 0);
    char n[128];
#define ADD(suffix, nd, d0, d1)                                                                                 \
    do {                                                                                                        \
        snprintf(n, sizeof n, "%s%d.%s", BLOCK, l, suffix);                                                     \
        gp_param_table_add(t, n, nd, d0, d1);                                                                   \
    } while (0)
    for (int l = 0; l < c->layers; l++) {
        const int64_t I = gp_config_inter(c, l);
        ADD("attention.self.query.weight", 2, A, C);
        ADD("attention.self.key.weight", 2, A, C);
        ADD("attention.self.value.weight", 2, A, C);
        ADD("attention.self.query.bias", 1, A, 0);
        ADD("attention.self.key.bias", 1, A, 0);
        ADD("attention.self.value.bias", 1, A, 0);
        ADD("attention.output.dense.weight", 2, C, A);
        ADD("attention.output.dense.bias", 1, C, 0);
        ADD("attention.output.LayerNorm.weight", 1, C, 0);
        ADD("attention.output.LayerNorm.bias", 1, C, 0);
        ADD("intermediate.dense.weight", 2, I, C);
        ADD("intermediate.dense.bias", 1, I, 0);
        ADD("output.dense.weight", 2, C, I);
        ADD("output.dense.bias", 1, C, 0);
        ADD("output.LayerNorm.weight", 1, C, 0);
        ADD("output.LayerNorm.bias", 1, C, 0);
    }
#undef ADD
}

/* A block's activations, all kept per block by a training forward. With lean activations
 * (gp_model_set_lean) h is made again from pre by GELU before the block's backward (bitwise), in
 * one buffer all blocks share, and att is not kept (kernels.c makes the probabilities again). An
 * inference forward keeps one block's, no att. */
typedef struct {
    float *qkv;                /* [N, 3A] */
    float *ctx;                /* [N, A] attention output before the dense layer */
    float *res1;               /* [N, C] x + attention dense output (LN input) */
    float *x1, *mean1, *rstd1; /* [N, C], [N], [N] */
    float *pre;                /* [N, I] before GELU */
    float *res2;               /* [N, C] x1 + MLP output (LN input) */
    float *xo, *mean2, *rstd2; /* [N, C] layer output, [N], [N] */
    float *h;                  /* [N, I] after GELU (lean: shared) */
    float *att;                /* [Σ NH len²] softmax probabilities; lean and inference: NULL */
} layer_acts;

typedef struct {
    size_t cap; /* floats in mem */
    float *mem;
    float *emb, *x0, *mean0, *rstd0; /* embeddings sum [N, C], its LN [N, C], [N], [N] */
    layer_acts *la;                  /* [L], or all layers share la[0] after an inference forward (and,
                                      * recomputing, all but their own xo) */
    bool trained;                    /* the last forward kept what backward needs */
    bool recompute;                  /* ... as block inputs only (gp_model_set_recompute) */
    bool lean;                       /* ... without h and the probabilities (gp_model_set_lean) */
    size_t dcap;                     /* backward scratch */
    float *dmem;
} bert_state;

#define W(m, l, k) gp_model_w((m), E_COUNT + (l) * L_COUNT + (k))
#define G(m, l, k) gp_model_grad((m), E_COUNT + (l) * L_COUNT + (k)) /* NULL: not formed */
#define EW(m, k) gp_model_w((m), (k))
#define EG(m, k) gp_model_grad((m), (k))

/* The floats bert_alloc lays out: the embeddings and their norm; per block (every block in train
 * mode, one recomputing or in inference) its buffers, unless lean h and att floats of
 * probabilities too; lean, one h; recomputing, every block's output but the first's. Every
 * block's slots at the largest intermediate size (a ragged folder's blocks differ). */
static double bert_act_floats(const gp_model_config *c, double n, double att, bool train, bool recompute, bool lean) {
    const double C = c->hidden, I = c->intermediate, A = (double)c->heads * c->head_dim;
    const double nl = train && !recompute ? c->layers : 1;
    const double own_xo = train && recompute ? (c->layers - 1) * n * C : 0;
    const double per_layer = n * (3 * A + A + C + C + 2 + I + C + C + 2) + (lean ? 0 : n * I + att);
    return n * (2 * C + 2) + (lean ? n * I : 0) + nl * per_layer + own_xo;
}

/* Lays out the activations in one allocation; grows it when the batch is larger. lean: one h for
 * all blocks and no probabilities (inference forwards always); else every block its own, and att
 * floats of probabilities. */
static void bert_alloc(const gp_model_config *c, bert_state *s, int N, int64_t att, bool train, bool recompute,
                       bool lean) {
    const size_t C = (size_t)c->hidden, I = (size_t)c->intermediate, n = (size_t)N;
    const size_t A = (size_t)c->heads * (size_t)c->head_dim;
    const int nl = train && !recompute ? c->layers : 1;
    const bool own_xo = train && recompute; /* every block but the first keeps its own output */
    const size_t need = (size_t)bert_act_floats(c, (double)N, (double)att, train, recompute, lean);
    if (need > s->cap) {
        free(s->mem);
        s->mem = gp_malloc(need * sizeof(float));
        s->cap = need;
    }
    float *p = s->mem;
#define TAKE(ptr, k)                                                                                            \
    do {                                                                                                        \
        ptr = p;                                                                                                \
        p += (k);                                                                                               \
    } while (0)
    TAKE(s->emb, n * C);
    TAKE(s->x0, n * C);
    TAKE(s->mean0, n);
    TAKE(s->rstd0, n);
    float *h = NULL;
    if (lean) TAKE(h, n * I);
    for (int l = 0; l < c->layers; l++) {
        layer_acts *a = &s->la[l];
        if (l >= nl) {
            *a = s->la[0];
            if (own_xo) TAKE(a->xo, n * C);
            continue;
        }
        TAKE(a->qkv, 3 * n * A);
        TAKE(a->ctx, n * A);
        TAKE(a->res1, n * C);
        TAKE(a->x1, n * C);
        TAKE(a->mean1, n);
        TAKE(a->rstd1, n);
        TAKE(a->pre, n * I);
        TAKE(a->res2, n * C);
        TAKE(a->xo, n * C);
        TAKE(a->mean2, n);
        TAKE(a->rstd2, n);
        if (lean) {
            a->h = h, a->att = NULL;
            continue;
        }
        TAKE(a->h, n * I);
        TAKE(a->att, (size_t)att);
    }
#undef TAKE
    GP_CHECK((size_t)(p - s->mem) == need, "the layout took %zu floats, act_floats says %zu", (size_t)(p - s->mem), need);
    s->lean = lean;
}

static void bert_layer_forward(gp_model *m, bert_state *s, const gp_packed *pk, int l, const float *x);

static const float *bert_forward(gp_model *m, void **state, const gp_packed *pk, bool train) {
    const gp_model_config *c = &m->cfg;
    bert_state *s = *state;
    if (!s) {
        s = gp_calloc(1, sizeof *s);
        s->la = gp_calloc((size_t)c->layers, sizeof *s->la);
        *state = s;
    }
    const int N = pk->N, C = c->hidden;
    bert_alloc(c, s, N, gp_attention_cache_size(pk->offsets, pk->B, c->heads), train, m->recompute, !train || m->lean);
    s->trained = train;
    s->recompute = train && m->recompute;

    const int32_t *ids;
    const float *wte = gp_model_token_rows(m, pk->ids, N, &ids);
    gp_embedding_forward(s->emb, ids, pk->pos, wte, EW(m, E_WPE), EW(m, E_WTT), N, C);
    gp_layernorm_forward(s->x0, s->mean0, s->rstd0, s->emb, EW(m, E_LNW), EW(m, E_LNB), N, C, c->norm_eps);
    const float *x = s->x0;
    for (int l = 0; l < c->layers; l++) {
        bert_layer_forward(m, s, pk, l, x);
        x = s->la[l].xo;
    }
    return x;
}

/* Block l on its input x [N, C] into s->la[l] (for the forward, and again before its backward
 * when recomputing). */
static void bert_layer_forward(gp_model *m, bert_state *s, const gp_packed *pk, int l, const float *x) {
    const gp_model_config *c = &m->cfg;
    const int N = pk->N, C = c->hidden, I = gp_config_inter(c, l), NH = c->heads, hs = c->head_dim, A = NH * hs;
    {
        layer_acts *a = &s->la[l];
        gp_matmul_forward(a->qkv, x, W(m, l, L_QW), W(m, l, L_QB), N, C, 3 * A);
        gp_attention_forward(a->ctx, A, a->att, a->qkv, 3 * A, a->qkv + A, 3 * A, a->qkv + 2 * A, 3 * A,
                             pk->offsets, pk->B, NH, NH, hs, 0);
        gp_matmul_forward(a->res1, a->ctx, W(m, l, L_AOW), W(m, l, L_AOB), N, A, C);
        gp_add(a->res1, a->res1, x, (int64_t)N * C);
        gp_layernorm_forward(a->x1, a->mean1, a->rstd1, a->res1, W(m, l, L_ALNW), W(m, l, L_ALNB), N, C,
                             c->norm_eps);
        gp_matmul_forward(a->pre, a->x1, W(m, l, L_IW), W(m, l, L_IB), N, C, I);
        gp_gelu_forward(a->h, a->pre, (int64_t)N * I);
        gp_matmul_forward(a->res2, a->h, W(m, l, L_OW), W(m, l, L_OB), N, I, C);
        gp_add(a->res2, a->res2, a->x1, (int64_t)N * C);
        gp_layernorm_forward(a->xo, a->mean2, a->rstd2, a->res2, W(m, l, L_OLNW), W(m, l, L_OLNB), N, C,
                             c->norm_eps);
    }
}

/* Block l's activations for its backward or its linear inputs: all of them again when recomputing
 * (but the last block's right after the forward, when they are still there), else with lean
 * activations h from pre. */
static void bert_layer_ready(gp_model *m, bert_state *s, const gp_packed *pk, int l, const float *x,
                             bool after_forward) {
    if (s->recompute) {
        if (!after_forward || l < m->cfg.layers - 1) bert_layer_forward(m, s, pk, l, x);
    } else if (s->lean) {
        gp_gelu_forward(s->la[l].h, s->la[l].pre, (int64_t)pk->N * gp_config_inter(&m->cfg, l));
    }
}

static void bert_backward(gp_model *m, void *state, const gp_packed *pk, const float *dhidden) {
    const gp_model_config *c = &m->cfg;
    bert_state *s = state;
    GP_CHECK(s && s->trained, "backward needs a training-mode forward first");
    const int N = pk->N, C = c->hidden, Imax = c->intermediate, NH = c->heads, hs = c->head_dim, A = NH * hs;
    const size_t n = (size_t)N;
    size_t need = n * (C + C + C + A + 3 * A + 2 * Imax);
    if (need > s->dcap) {
        free(s->dmem);
        s->dmem = gp_malloc(need * sizeof(float));
        s->dcap = need;
    }
    float *dx = s->dmem;         /* [N, C] gradient w.r.t. the current layer's output */
    float *dxin = dx + n * C;    /* [N, C] gradient w.r.t. the current layer's input */
    float *dres = dxin + n * C;  /* [N, C] */
    float *dctx = dres + n * C;  /* [N, A] */
    float *dqkv = dctx + n * A;  /* [N, 3A] */
    float *dh = dqkv + 3 * n * A; /* [N, Imax] */
    float *dpre = dh + n * Imax;     /* [N, Imax] */
    memcpy(dx, dhidden, n * C * sizeof(float));

    for (int l = c->layers - 1; l >= 0; l--) {
        const layer_acts *a = &s->la[l];
        const float *x = l ? s->la[l - 1].xo : s->x0;
        bert_layer_ready(m, s, pk, l, x, true);
        gp_model_layer_begin(m, l); /* a caller may reuse this block's gradient window */
        const int I = gp_config_inter(c, l); /* dh and dpre hold [N, Imax] */
        /* output LayerNorm; the residual carries dres2 straight to x1 */
        memset(dres, 0, n * C * sizeof(float));
        gp_layernorm_backward(dres, G(m, l, L_OLNW), G(m, l, L_OLNB), dx, a->res2, W(m, l, L_OLNW), a->mean2,
                              a->rstd2, N, C);
        memcpy(dxin, dres, n * C * sizeof(float)); /* dxin holds d x1 for now */
        memset(dh, 0, n * I * sizeof(float));
        gp_matmul_backward(dh, G(m, l, L_OW), G(m, l, L_OB), dres, a->h, W(m, l, L_OW), N, I, C);
        memset(dpre, 0, n * I * sizeof(float));
        gp_gelu_backward(dpre, a->pre, dh, (int64_t)N * I);
        gp_matmul_backward(dxin, G(m, l, L_IW), G(m, l, L_IB), dpre, a->x1, W(m, l, L_IW), N, C, I);
        /* attention LayerNorm; the residual carries dres1 straight to x */
        memset(dres, 0, n * C * sizeof(float));
        gp_layernorm_backward(dres, G(m, l, L_ALNW), G(m, l, L_ALNB), dxin, a->res1, W(m, l, L_ALNW), a->mean1,
                              a->rstd1, N, C);
        memcpy(dxin, dres, n * C * sizeof(float)); /* now d x */
        memset(dctx, 0, n * A * sizeof(float));
        gp_matmul_backward(dctx, G(m, l, L_AOW), G(m, l, L_AOB), dres, a->ctx, W(m, l, L_AOW), N, A, C);
        memset(dqkv, 0, 3 * n * A * sizeof(float));
        gp_attention_backward(dqkv, dqkv + A, dqkv + 2 * A, dctx, A, a->att, a->qkv, 3 * A, a->qkv + A, 3 * A,
                              a->qkv + 2 * A, 3 * A, pk->offsets, pk->B, NH, NH, hs, 0);
        gp_matmul_backward(dxin, G(m, l, L_QW), G(m, l, L_QB), dqkv, x, W(m, l, L_QW), N, C, 3 * A);
        gp_model_layer_done(m, l); /* block l's weight gradients are final */
        float *t = dx;
        dx = dxin;
        dxin = t;
    }
    memset(dres, 0, n * C * sizeof(float));
    gp_layernorm_backward(dres, EG(m, E_LNW), EG(m, E_LNB), dx, s->emb, EW(m, E_LNW), s->mean0, s->rstd0, N, C);
    gp_embedding_backward(EG(m, E_WTE), EG(m, E_WPE), EG(m, E_WTT), dres, pk->ids, pk->pos, N, C);
}

/* fn for block l's linear layers with their inputs: x, and what a (block l's activations) holds. */
static void bert_block_inputs(const gp_model *m, const layer_acts *a, int l, const float *x, int N, gp_linear_input_fn fn,
                              void *ctx) {
    const int C = m->cfg.hidden, A = m->cfg.heads * m->cfg.head_dim, I = gp_config_inter(&m->cfg, l);
    const int base = E_COUNT + l * L_COUNT;
    fn(ctx, base + L_QW, x, N, C);
    fn(ctx, base + L_KW, x, N, C);
    fn(ctx, base + L_VW, x, N, C);
    fn(ctx, base + L_AOW, a->ctx, N, A);
    fn(ctx, base + L_IW, a->x1, N, C);
    fn(ctx, base + L_OW, a->h, N, I);
}

static void bert_each_linear_input(gp_model *m, void *state, const gp_packed *pk, gp_linear_input_fn fn,
                                   void *ctx) {
    bert_state *s = state;
    GP_CHECK(s && s->trained, "needs a training-mode forward");
    for (int l = 0; l < m->cfg.layers; l++) {
        const float *x = l ? s->la[l - 1].xo : s->x0;
        bert_layer_ready(m, s, pk, l, x, false);
        bert_block_inputs(m, &s->la[l], l, x, pk->N, fn, ctx);
    }
}

/* The block-wise forward (model.h gp_model_embed, gp_model_block): inference buffers, one block's. */
static bert_state *bert_infer_state(gp_model *m, void **state, const gp_packed *pk) {
    bert_state *s = *state;
    if (!s) {
        s = gp_calloc(1, sizeof *s);
        s->la = gp_calloc((size_t)m->cfg.layers, sizeof *s->la);
        *state = s;
    }
    bert_alloc(&m->cfg, s, pk->N, 0, false, false, true);
    s->trained = false;
    s->recompute = false;
    return s;
}

static void bert_embed(gp_model *m, void **state, const gp_packed *pk, float *x) {
    bert_state *s = bert_infer_state(m, state, pk);
    const int N = pk->N, C = m->cfg.hidden;
    const int32_t *ids;
    const float *wte = gp_model_token_rows(m, pk->ids, N, &ids);
    gp_embedding_forward(s->emb, ids, pk->pos, wte, EW(m, E_WPE), EW(m, E_WTT), N, C);
    gp_layernorm_forward(s->x0, s->mean0, s->rstd0, s->emb, EW(m, E_LNW), EW(m, E_LNB), N, C, m->cfg.norm_eps);
    memcpy(x, s->x0, (size_t)N * C * sizeof(float));
}

static void bert_block(gp_model *m, void **state, const gp_packed *pk, int l, const float *x, float *y,
                       gp_linear_input_fn fn, void *ctx) {
    bert_state *s = bert_infer_state(m, state, pk);
    bert_layer_forward(m, s, pk, l, x);
    if (fn) bert_block_inputs(m, &s->la[l], l, x, pk->N, fn, ctx);
    memcpy(y, s->la[l].xo, (size_t)pk->N * m->cfg.hidden * sizeof(float));
}

static void bert_state_free(void *state) {
    bert_state *s = state;
    if (!s) return;
    free(s->mem);
    free(s->dmem);
    free(s->la);
    free(s);
}

static const char *const bert_model_types[] = {"bert", NULL};
static const char *const bert_mlp[] = {"intermediate.dense.weight", "output.dense.weight", NULL};
/* an MLP neuron j: row j of the up projection and its bias, column j of the down projection */
static const char *const bert_neuron_rows[] = {"intermediate.dense.weight", "intermediate.dense.bias", NULL};
static const char *const bert_neuron_cols[] = {"output.dense.weight", NULL};
/* an attention head h: its rows of query, key, value (weights and biases), its columns of the output */
static const char *const bert_head_rows[] = {"attention.self.query.weight", "attention.self.query.bias",
                                             "attention.self.key.weight",   "attention.self.key.bias",
                                             "attention.self.value.weight", "attention.self.value.bias", NULL};
static const char *const bert_head_cols[] = {"attention.output.dense.weight", NULL};
static const char *const bert_attention[] = {"attention.self.query.weight", "attention.self.key.weight",
                                             "attention.self.value.weight", "attention.output.dense.weight", NULL};
/* the linear layers of a block in forward order, and which read the same input (one group) */
static const char *const bert_linears[] = {"attention.self.query.weight", "attention.self.key.weight",
                                           "attention.self.value.weight", "attention.output.dense.weight",
                                           "intermediate.dense.weight",   "output.dense.weight", NULL};
static const int bert_linear_groups[] = {0, 0, 0, 1, 2, 3};

const gp_arch_ops gp_bert_ops = {
    .info =
        {
            .arch = GP_ARCH_BERT,
            .name = "bert",
            .model_types = bert_model_types,
            .description = "BERT-family encoders (BERT, MiniLM, bge, e5, gte): post-LN, absolute positions, GELU",
            .default_pool = GP_POOL_MEAN,
            .block_prefix = BLOCK,
            .mlp = bert_mlp,
            .attention = bert_attention,
            .neuron_rows = bert_neuron_rows,
            .neuron_cols = bert_neuron_cols,
            .head_rows = bert_head_rows,
            .head_cols = bert_head_cols,
            .linears = bert_linears,
            .linear_groups = bert_linear_groups,
        },
    .token_embedding = "embeddings.word_embeddings.weight",
    .file_prefix = "bert.",
    .parse_config = bert_config,
    .build_table = bert_build_table,
    .forward = bert_forward,
    .backward = bert_backward,
    .state_free = bert_state_free,
    .act_floats = bert_act_floats,
    .each_linear_input = bert_each_linear_input,
    .embed = bert_embed,
    .block = bert_block,
};
