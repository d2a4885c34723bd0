/* qwen3.c — the Qwen3 decoder as an embedding model (Qwen3-Embedding): its config.json,
 * parameters, forward and backward, and its registry row (arch.h).
 *
 * Pre-norm blocks, as transformers' Qwen3Model in eval mode:
 *   x0 = wte[id]
 *   per layer:  a   = RMSNorm(x) w_in
 *               qkv = a Wqkv^T               (q_proj, k_proj, v_proj are adjacent in the parameter
 *                                             buffer: one [(NH + 2 NKV) hs, C] matrix)
 *               q, k = RoPE(RMSNorm_head(q) w_qn), RoPE(RMSNorm_head(k) w_kn)
 *               ctx = causal softmax(q k^T / √hs) v, query head h reading key/value head h / (NH/NKV)
 *               r1  = x + ctx Wo^T
 *               m   = RMSNorm(r1) w_post
 *               x'  = r1 + (silu(m Wg^T) ⊙ (m Wu^T)) Wd^T   (gate_proj, up_proj adjacent: [2F, C])
 *   out = RMSNorm(x_L) w_norm; pooling (last token) and normalisation are model.c's.
 * Shapes: N tokens, C hidden, F intermediate (block l's own in a ragged folder, model.h), NH query heads, NKV key/value heads, hs head_dim
 * (Qwen3 sets it apart from C / NH: 0.6B has C 1024, NH 16, hs 128).
 *
 * Positions are the columns of the padded batch. With left padding these start after the pads,
 * as in transformers (which does not shift them either); RoPE only sees differences of
 * positions, so the embeddings do not depend on the padding side.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "gaprune/json.h"
#include "gaprune/kernels.h"

/* ---- config.json ------------------------------------------------------------------------ */

static gp_status qwen3_config(const cJSON *j, const char *path, gp_model_config *cfg, gp_err *err) {
    gp_status rc;
    if ((rc = gp_config_common_sizes(j, path, cfg, err)) ||
        (rc = gp_config_eps(j, "rms_norm_eps", &cfg->norm_eps, path, err)))
        return rc;
    /* the optional keys, with transformers' Qwen3Config defaults */
    cfg->kv_heads = cfg->heads;
    if (cJSON_GetObjectItemCaseSensitive(j, "num_key_value_heads") &&
        (rc = gp_config_int(j, "num_key_value_heads", &cfg->kv_heads, path, err)))
        return rc;
    cfg->head_dim = cfg->hidden / cfg->heads;
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(j, "head_dim");
    if (hd && !cJSON_IsNull(hd) && (rc = gp_config_int(j, "head_dim", &cfg->head_dim, path, err))) return rc;
    cfg->rope_theta = 10000.0;
    if ((rc = gp_json_opt_double(j, "rope_theta", &cfg->rope_theta, path, err))) return rc;
    if (!(cfg->rope_theta > 1)) return gp_errf(err, GP_EINPUT, "%s: key \"rope_theta\" = %g is out of range", path, cfg->rope_theta);
    const char *act = NULL;
    if ((rc = gp_json_string(j, "hidden_act", &act, path, err))) return rc;
    if (strcmp(act, "silu") != 0)
        return gp_errf(err, GP_EINPUT, "%s: key \"hidden_act\" = \"%s\" is not supported (silu)", path, act);
    bool flag = false;
    if ((rc = gp_json_opt_bool(j, "attention_bias", &flag, path, err))) return rc;
    if (flag) return gp_errf(err, GP_EINPUT, "%s: key \"attention_bias\" = true is not supported", path);
    flag = false;
    if ((rc = gp_json_opt_bool(j, "use_sliding_window", &flag, path, err))) return rc;
    if (flag) return gp_errf(err, GP_EINPUT, "%s: key \"use_sliding_window\" = true is not supported", path);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    if (rs && !cJSON_IsNull(rs))
        return gp_errf(err, GP_EINPUT, "%s: key \"rope_scaling\" is not supported (must be null)", path);
    if ((rc = gp_json_opt_bool(j, "tie_word_embeddings", &cfg->tie_embeddings, path, err))) return rc;
    if (cfg->kv_heads > cfg->heads || cfg->heads % cfg->kv_heads)
        return gp_errf(err, GP_EINPUT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path,
                       cfg->heads, cfg->kv_heads);
    if (cfg->head_dim % 2)
        return gp_errf(err, GP_EINPUT, "%s: key \"head_dim\" = %d must be even (rotary embeddings)", path, cfg->head_dim);
    return GP_OK;
}

/* ---- parameter table ---------------------------------------------------------------------- */

/* Canonical names of block l's parameters start with BLOCK "l." */
#define BLOCK "layers."

enum { E_WTE, E_COUNT };
enum {
    L_QW, L_KW, L_VW, /* adjacent: one [(NH + 2 NKV) hs, C] matrix */
    L_QN, L_KN,       /* per-head RMSNorm weights [hs] */
    L_OW,
    L_INW, L_PNW,     /* input_layernorm, post_attention_layernorm */
    L_GW, L_UW,       /* adjacent: one [2F, C] matrix */
    L_DW,
    L_COUNT
};

static void qwen3_build_table(const gp_model_config *c, gp_param_table *t) {
    const int64_t C = c->hidden, Q = (int64_t)c->heads * c->head_dim,
                  KV = (int64_t)c->kv_heads * c->head_dim, hs = c->head_dim;
    gp_param_table_add(t, "embed_tokens.weight", 2, c->vocab_size, C);
    char n[128];
#define ADD(suffix, nd, d0, d1)                                                                                 \
    do {                                                                                                        \
        snprintf(n, sizeof n, "%s%d.%s", BLOCK, l, suffix);                                                     \
        gp_param_table_add(t, n, nd, d0, d1);                                                                   \
    } while (0)
    for (int l = 0; l < c->layers; l++) {
        const int64_t F = gp_config_inter(c, l);
        ADD("self_attn.q_proj.weight", 2, Q, C);
        ADD("self_attn.k_proj.weight", 2, KV, C);
        ADD("self_attn.v_proj.weight", 2, KV, C);
        ADD("self_attn.q_norm.weight", 1, hs, 0);
        ADD("self_attn.k_norm.weight", 1, hs, 0);
        ADD("self_attn.o_proj.weight", 2, C, Q);
        ADD("input_layernorm.weight", 1, C, 0);
        ADD("post_attention_layernorm.weight", 1, C, 0);
        ADD("mlp.gate_proj.weight", 2, F, C);
        ADD("mlp.up_proj.weight", 2, F, C);
        ADD("mlp.down_proj.weight", 2, C, F);
    }
#undef ADD
    gp_param_table_add(t, "norm.weight", 1, C, 0);
}

/* A block's activations, all kept per block by a training forward. With lean activations
 * (gp_model_set_lean) the second group is not: elementwise work gives it back from the first (a
 * norm with its saved rstd, RoPE, SwiGLU) before the block's backward (qwen3_layer_restore,
 * bitwise the forward's values), into one set of buffers all blocks share, and att is not kept
 * (kernels.c makes the probabilities again): at Qwen3-Embedding-4B's shapes and 512 tokens a block
 * keeps 34,858 floats a token instead of 71,210. An inference forward keeps one block's, no att. */
typedef struct {
    float *rstd1;   /* [N] input_layernorm */
    float *qkv;     /* [N, QKV] projections before the q/k norms */
    float *rstd_qk; /* [N, NH + NKV] */
    float *ctx;     /* [N, Q] attention output before o_proj */
    float *r1;      /* [N, C] x + attention */
    float *rstd2;   /* [N] post_attention_layernorm */
    float *gu;      /* [N, 2F] gate | up */
    float *out;     /* [N, C] the layer's output r1 + MLP */
    /* lean: made again, shared */
    float *xn;      /* [N, C] input_layernorm output */
    float *qk;      /* [N, QK] q and k after norm and RoPE (what attention reads) */
    float *mn;      /* [N, C] post_attention_layernorm output */
    float *h;       /* [N, F] silu(gate) ⊙ up */
    float *att;     /* [Σ NH len²] softmax probabilities; lean and inference: NULL */
} layer_acts;

typedef struct {
    size_t cap;
    float *mem;
    float *x0;            /* [N, C] token embeddings */
    float *cos_t, *sin_t; /* [N, hs/2] */
    float *fin, *rstd_f;  /* [N, C] final norm output, [N] */
    layer_acts *la;       /* [L]; all share la[0] after an inference forward (and, recomputing, all
                           * but their own out) */
    bool trained;
    bool recompute;       /* block inputs only were kept (gp_model_set_recompute) */
    bool lean;            /* the shared buffers were laid out, att not kept (gp_model_set_lean) */
    size_t dcap;
    float *dmem;
} qwen3_state;

#define W(m, l, k) gp_model_w((m), E_COUNT + (l) * L_COUNT + (k))
#define G(m, l, k) gp_model_grad((m), E_COUNT + (l) * L_COUNT + (k)) /* NULL: not formed */
#define FINAL_NORM(m) (E_COUNT + (m)->cfg.layers * L_COUNT)

typedef struct {
    int C, F, NH, NKV, hs, Q, KV, QK, QKV;
} dims;

static dims dims_of(const gp_model_config *c) {
    dims d = {c->hidden, c->intermediate, c->heads, c->kv_heads, c->head_dim, 0, 0, 0, 0};
    d.Q = d.NH * d.hs;
    d.KV = d.NKV * d.hs;
    d.QK = d.Q + d.KV;
    d.QKV = d.Q + 2 * d.KV;
    return d;
}

/* Block l's: F is its own intermediate size (a ragged folder's blocks differ; the buffers are
 * laid out with dims_of's, the largest). */
static dims dims_at(const gp_model_config *c, int l) {
    dims d = dims_of(c);
    d.F = gp_config_inter(c, l);
    return d;
}

/* Floats a token of a block's kept buffers, and of the ones lean activations make again (layer_acts),
 * at the largest F. */
static size_t kept_per_token(const dims d) {
    return 1 + (size_t)d.QKV + d.NH + d.NKV + d.Q + d.C + 1 + 2 * (size_t)d.F + d.C;
}
static size_t restored_per_token(const dims d) { return (size_t)d.C + d.QK + d.C + d.F; }

/* The floats qwen3_alloc lays out: the embeddings, RoPE tables and final norm; per block (every
 * block in train mode, one recomputing or in inference) its kept buffers, and unless lean its
 * restored ones and att floats of probabilities; lean, one set of restored buffers; recomputing,
 * every block's output but the first's. */
static double qwen3_act_floats(const gp_model_config *c, double n, double att, bool train, bool recompute, bool lean) {
    const dims d = dims_of(c);
    const double nl = train && !recompute ? c->layers : 1;
    const double own_out = train && recompute ? (c->layers - 1) * n * d.C : 0;
    const double per_layer = n * (double)kept_per_token(d) + (lean ? 0 : n * (double)restored_per_token(d) + att);
    return n * ((double)d.C + d.hs + d.C + 1) + (lean ? n * (double)restored_per_token(d) : 0) + nl * per_layer + own_out;
}

/* lean: one set of the restored buffers for all blocks and no probabilities (inference forwards
 * always); else every block its own, and att floats of probabilities. */
static void qwen3_alloc(const gp_model_config *c, qwen3_state *s, int N, int64_t att, bool train, bool recompute,
                        bool lean) {
    const dims d = dims_of(c);
    const size_t n = (size_t)N;
    const int nl = train && !recompute ? c->layers : 1;
    const bool own_out = train && recompute; /* every block but the first keeps its own output */
    const size_t need = (size_t)qwen3_act_floats(c, (double)N, (double)att, train, recompute, lean);
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
    TAKE(s->x0, n * d.C);
    TAKE(s->cos_t, n * (d.hs / 2));
    TAKE(s->sin_t, n * (d.hs / 2));
    TAKE(s->fin, n * d.C);
    TAKE(s->rstd_f, n);
    layer_acts shared = {0};
    if (lean) {
        TAKE(shared.xn, n * d.C);
        TAKE(shared.qk, n * d.QK);
        TAKE(shared.mn, n * d.C);
        TAKE(shared.h, n * d.F);
    }
    for (int l = 0; l < c->layers; l++) {
        layer_acts *a = &s->la[l];
        if (l >= nl) {
            *a = s->la[0];
            if (own_out) TAKE(a->out, n * d.C);
            continue;
        }
        TAKE(a->rstd1, n);
        TAKE(a->qkv, n * d.QKV);
        TAKE(a->rstd_qk, n * (d.NH + d.NKV));
        TAKE(a->ctx, n * d.Q);
        TAKE(a->r1, n * d.C);
        TAKE(a->rstd2, n);
        TAKE(a->gu, n * 2 * d.F);
        TAKE(a->out, n * d.C);
        if (lean) {
            a->xn = shared.xn, a->qk = shared.qk, a->mn = shared.mn, a->h = shared.h, a->att = NULL;
            continue;
        }
        TAKE(a->xn, n * d.C);
        TAKE(a->qk, n * d.QK);
        TAKE(a->mn, n * d.C);
        TAKE(a->h, n * d.F);
        TAKE(a->att, (size_t)att);
    }
#undef TAKE
    GP_CHECK((size_t)(p - s->mem) == need, "the layout took %zu floats, act_floats says %zu", (size_t)(p - s->mem), need);
    s->lean = lean;
}

static void qwen3_layer_forward(gp_model *m, qwen3_state *s, const gp_packed *pk, int l, const float *x);

static const float *qwen3_forward(gp_model *m, void **state, const gp_packed *pk, bool train) {
    const gp_model_config *c = &m->cfg;
    qwen3_state *s = *state;
    if (!s) {
        s = gp_calloc(1, sizeof *s);
        s->la = gp_calloc((size_t)c->layers, sizeof *s->la);
        *state = s;
    }
    const dims d = dims_of(c);
    const int N = pk->N;
    qwen3_alloc(c, s, N, gp_attention_cache_size(pk->offsets, pk->B, d.NH), train, m->recompute, !train || m->lean);
    s->trained = train;
    s->recompute = train && m->recompute;
    const float eps = c->norm_eps;

    const int32_t *ids;
    const float *wte = gp_model_token_rows(m, pk->ids, N, &ids);
    gp_embedding_forward(s->x0, ids, NULL, wte, NULL, NULL, N, d.C);
    gp_rope_tables(s->cos_t, s->sin_t, pk->pos, N, d.hs, c->rope_theta);
    const float *x = s->x0;
    for (int l = 0; l < c->layers; l++) {
        qwen3_layer_forward(m, s, pk, l, x);
        x = s->la[l].out;
    }
    const float *wn = gp_model_w(m, FINAL_NORM(m));
    gp_rmsnorm_forward(s->fin, d.C, s->rstd_f, x, d.C, wn, N, 1, d.C, eps);
    return s->fin;
}

/* Block l on its input x [N, C] into s->la[l] (for the forward, and again before its backward
 * when recomputing). */
static void qwen3_layer_forward(gp_model *m, qwen3_state *s, const gp_packed *pk, int l, const float *x) {
    const dims d = dims_at(&m->cfg, l);
    const int N = pk->N;
    const float eps = m->cfg.norm_eps;
    {
        layer_acts *a = &s->la[l];
        gp_rmsnorm_forward(a->xn, d.C, a->rstd1, x, d.C, W(m, l, L_INW), N, 1, d.C, eps);
        gp_matmul_forward(a->qkv, a->xn, W(m, l, L_QW), NULL, N, d.C, d.QKV);
        gp_rmsnorm_forward(a->qk, d.QK, a->rstd_qk, a->qkv, d.QKV, W(m, l, L_QN), N, d.NH, d.hs, eps);
        gp_rmsnorm_forward(a->qk + d.Q, d.QK, a->rstd_qk + (size_t)N * d.NH, a->qkv + d.Q, d.QKV, W(m, l, L_KN), N,
                           d.NKV, d.hs, eps);
        gp_rope_forward(a->qk, d.QK, s->cos_t, s->sin_t, N, d.NH + d.NKV, d.hs);
        gp_attention_forward(a->ctx, d.Q, a->att, a->qk, d.QK, a->qk + d.Q, d.QK, a->qkv + d.QK, d.QKV, pk->offsets,
                             pk->B, d.NH, d.NKV, d.hs, 1);
        gp_matmul_forward(a->r1, a->ctx, W(m, l, L_OW), NULL, N, d.Q, d.C);
        gp_add(a->r1, a->r1, x, (int64_t)N * d.C);
        gp_rmsnorm_forward(a->mn, d.C, a->rstd2, a->r1, d.C, W(m, l, L_PNW), N, 1, d.C, eps);
        gp_matmul_forward(a->gu, a->mn, W(m, l, L_GW), NULL, N, d.C, 2 * d.F);
        gp_swiglu_forward(a->h, a->gu, N, d.F);
        /* x is read for the last time above: in inference every layer shares one set of buffers,
         * and out may be the very buffer x points to */
        gp_matmul_forward(a->out, a->h, W(m, l, L_DW), NULL, N, d.F, d.C);
        gp_add(a->out, a->out, a->r1, (int64_t)N * d.C);
    }
}

/* Block l's shared buffers (xn, qk, mn, h) again from what it kept and its input x, by the
 * forward's own arithmetic: bitwise the values the forward had. */
static void qwen3_layer_restore(gp_model *m, qwen3_state *s, const gp_packed *pk, int l, const float *x) {
    const dims d = dims_at(&m->cfg, l);
    const int N = pk->N;
    const layer_acts *a = &s->la[l];
    gp_rmsnorm_apply(a->xn, d.C, a->rstd1, x, d.C, W(m, l, L_INW), N, 1, d.C);
    gp_rmsnorm_apply(a->qk, d.QK, a->rstd_qk, a->qkv, d.QKV, W(m, l, L_QN), N, d.NH, d.hs);
    gp_rmsnorm_apply(a->qk + d.Q, d.QK, a->rstd_qk + (size_t)N * d.NH, a->qkv + d.Q, d.QKV, W(m, l, L_KN), N, d.NKV,
                     d.hs);
    gp_rope_forward(a->qk, d.QK, s->cos_t, s->sin_t, N, d.NH + d.NKV, d.hs);
    gp_rmsnorm_apply(a->mn, d.C, a->rstd2, a->r1, d.C, W(m, l, L_PNW), N, 1, d.C);
    gp_swiglu_forward(a->h, a->gu, N, d.F);
}

/* Block l's activations for its backward or its linear inputs: all of them again when recomputing
 * (but the last block's right after the forward, when they are still there), else with lean
 * activations the shared ones. */
static void qwen3_layer_ready(gp_model *m, qwen3_state *s, const gp_packed *pk, int l, const float *x,
                              bool after_forward) {
    if (s->recompute) {
        if (!after_forward || l < m->cfg.layers - 1) qwen3_layer_forward(m, s, pk, l, x);
    } else if (s->lean) {
        qwen3_layer_restore(m, s, pk, l, x);
    }
}

static void qwen3_backward(gp_model *m, void *state, const gp_packed *pk, const float *dhidden) {
    const gp_model_config *c = &m->cfg;
    qwen3_state *s = state;
    GP_CHECK(s && s->trained, "backward needs a training-mode forward first");
    const dims d = dims_of(c);
    const int N = pk->N;
    const size_t n = (size_t)N;
    size_t need = n * (3 * (size_t)d.C + d.Q + d.QKV + d.QK + d.F + 2 * (size_t)d.F);
    if (need > s->dcap) {
        free(s->dmem);
        s->dmem = gp_malloc(need * sizeof(float));
        s->dcap = need;
    }
    float *dx = s->dmem;           /* [N, C] gradient w.r.t. the current layer's output */
    float *dxin = dx + n * d.C;    /* [N, C] gradient w.r.t. its input */
    float *dn = dxin + n * d.C;    /* [N, C] gradient w.r.t. a norm's output */
    float *dctx = dn + n * d.C;    /* [N, Q] */
    float *dqkv = dctx + n * d.Q;  /* [N, QKV] */
    float *dqk = dqkv + n * d.QKV; /* [N, QK] */
    float *dh = dqk + n * d.QK;    /* [N, F] */
    float *dgu = dh + n * d.F;     /* [N, 2F] */

    const int fi = FINAL_NORM(m);
    const float *x_last = s->la[c->layers - 1].out;
    memset(dx, 0, n * d.C * sizeof(float));
    gp_rmsnorm_backward(dx, gp_model_grad(m, fi), dhidden, d.C, x_last, d.C,
                        gp_model_w(m, fi), s->rstd_f, N, 1, d.C);
    for (int l = c->layers - 1; l >= 0; l--) {
        const layer_acts *a = &s->la[l];
        const float *x = l ? s->la[l - 1].out : s->x0;
        qwen3_layer_ready(m, s, pk, l, x, true);
        gp_model_layer_begin(m, l); /* a caller may reuse this block's gradient window */
        const int F = gp_config_inter(c, l); /* dh and dgu hold [N, the largest F] */
        /* MLP; the residual carries dx straight to r1 */
        memcpy(dxin, dx, n * d.C * sizeof(float)); /* dxin holds d r1 for now */
        memset(dh, 0, n * F * sizeof(float));
        gp_matmul_backward(dh, G(m, l, L_DW), NULL, dx, a->h, W(m, l, L_DW), N, F, d.C);
        memset(dgu, 0, n * 2 * F * sizeof(float));
        gp_swiglu_backward(dgu, dh, a->gu, N, F);
        memset(dn, 0, n * d.C * sizeof(float));
        gp_matmul_backward(dn, G(m, l, L_GW), NULL, dgu, a->mn, W(m, l, L_GW), N, d.C, 2 * F);
        gp_rmsnorm_backward(dxin, G(m, l, L_PNW), dn, d.C, a->r1, d.C, W(m, l, L_PNW), a->rstd2, N, 1, d.C);
        /* attention; the residual carries d r1 straight to x */
        memset(dctx, 0, n * d.Q * sizeof(float));
        gp_matmul_backward(dctx, G(m, l, L_OW), NULL, dxin, a->ctx, W(m, l, L_OW), N, d.Q, d.C);
        memset(dqk, 0, n * d.QK * sizeof(float));
        memset(dqkv, 0, n * d.QKV * sizeof(float));
        gp_attention_backward(dqk, dqk + d.Q, dqkv + d.QK, dctx, d.Q, a->att, a->qk, d.QK, a->qk + d.Q, d.QK,
                              a->qkv + d.QK, d.QKV, pk->offsets, pk->B, d.NH, d.NKV, d.hs, 1);
        gp_rope_backward(dqk, d.QK, s->cos_t, s->sin_t, N, d.NH + d.NKV, d.hs);
        gp_rmsnorm_backward(dqkv, G(m, l, L_QN), dqk, d.QK, a->qkv, d.QKV, W(m, l, L_QN), a->rstd_qk, N, d.NH, d.hs);
        gp_rmsnorm_backward(dqkv + d.Q, G(m, l, L_KN), dqk + d.Q, d.QK, a->qkv + d.Q, d.QKV, W(m, l, L_KN),
                            a->rstd_qk + n * d.NH, N, d.NKV, d.hs);
        memset(dn, 0, n * d.C * sizeof(float));
        gp_matmul_backward(dn, G(m, l, L_QW), NULL, dqkv, a->xn, W(m, l, L_QW), N, d.C, d.QKV);
        gp_rmsnorm_backward(dxin, G(m, l, L_INW), dn, d.C, x, d.C, W(m, l, L_INW), a->rstd1, N, 1, d.C);
        gp_model_layer_done(m, l); /* block l's weight gradients are final */
        float *t = dx;
        dx = dxin;
        dxin = t;
    }
    gp_embedding_backward(gp_model_grad(m, E_WTE), NULL, NULL, dx, pk->ids, NULL, N, d.C);
}

/* fn for block l's linear layers with their inputs, which a (block l's activations) holds. */
static void qwen3_block_inputs(const gp_model *m, const layer_acts *a, int l, int N, gp_linear_input_fn fn, void *ctx) {
    const dims d = dims_at(&m->cfg, l);
    const int base = E_COUNT + l * L_COUNT;
    fn(ctx, base + L_QW, a->xn, N, d.C);
    fn(ctx, base + L_KW, a->xn, N, d.C);
    fn(ctx, base + L_VW, a->xn, N, d.C);
    fn(ctx, base + L_OW, a->ctx, N, d.Q);
    fn(ctx, base + L_GW, a->mn, N, d.C);
    fn(ctx, base + L_UW, a->mn, N, d.C);
    fn(ctx, base + L_DW, a->h, N, d.F);
}

static void qwen3_each_linear_input(gp_model *m, void *state, const gp_packed *pk, gp_linear_input_fn fn,
                                    void *ctx) {
    qwen3_state *s = state;
    GP_CHECK(s && s->trained, "needs a training-mode forward");
    for (int l = 0; l < m->cfg.layers; l++) {
        qwen3_layer_ready(m, s, pk, l, l ? s->la[l - 1].out : s->x0, false);
        qwen3_block_inputs(m, &s->la[l], l, pk->N, fn, ctx);
    }
}

/* The block-wise forward (model.h gp_model_embed, gp_model_block): inference buffers, one block's;
 * the RoPE tables of the batch made again by every call (N · hs values). */
static qwen3_state *qwen3_infer_state(gp_model *m, void **state, const gp_packed *pk) {
    qwen3_state *s = *state;
    if (!s) {
        s = gp_calloc(1, sizeof *s);
        s->la = gp_calloc((size_t)m->cfg.layers, sizeof *s->la);
        *state = s;
    }
    const dims d = dims_of(&m->cfg);
    qwen3_alloc(&m->cfg, s, pk->N, 0, false, false, true);
    s->trained = false;
    s->recompute = false;
    gp_rope_tables(s->cos_t, s->sin_t, pk->pos, pk->N, d.hs, m->cfg.rope_theta);
    return s;
}

static void qwen3_embed(gp_model *m, void **state, const gp_packed *pk, float *x) {
    qwen3_infer_state(m, state, pk);
    const int32_t *ids;
    const float *wte = gp_model_token_rows(m, pk->ids, pk->N, &ids);
    gp_embedding_forward(x, ids, NULL, wte, NULL, NULL, pk->N, m->cfg.hidden);
}

static void qwen3_block(gp_model *m, void **state, const gp_packed *pk, int l, const float *x, float *y,
                        gp_linear_input_fn fn, void *ctx) {
    qwen3_state *s = qwen3_infer_state(m, state, pk);
    qwen3_layer_forward(m, s, pk, l, x);
    if (fn) qwen3_block_inputs(m, &s->la[l], l, pk->N, fn, ctx);
    memcpy(y, s->la[l].out, (size_t)pk->N * m->cfg.hidden * sizeof(float));
}

static void qwen3_state_free(void *state) {
    qwen3_state *s = state;
    if (!s) return;
    free(s->mem);
    free(s->dmem);
    free(s->la);
    free(s);
}

static const char *const qwen3_model_types[] = {"qwen3", NULL};
static const char *const qwen3_mlp[] = {"mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight", NULL};
/* an MLP neuron j: rows j of the gate and up projections, column j of the down projection */
static const char *const qwen3_neuron_rows[] = {"mlp.gate_proj.weight", "mlp.up_proj.weight", NULL};
static const char *const qwen3_neuron_cols[] = {"mlp.down_proj.weight", NULL};
static const char *const qwen3_attention[] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                              "self_attn.v_proj.weight", "self_attn.o_proj.weight", NULL};
/* the linear layers of a block in forward order, and which read the same input (one group) */
static const char *const qwen3_linears[] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                            "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                            "mlp.gate_proj.weight",    "mlp.up_proj.weight",
                                            "mlp.down_proj.weight",    NULL};
static const int qwen3_linear_groups[] = {0, 0, 0, 1, 2, 2, 3};

const gp_arch_ops gp_qwen3_ops = {
    .info =
        {
            .arch = GP_ARCH_QWEN3,
            .name = "qwen3",
            .model_types = qwen3_model_types,
            .description = "Qwen3 decoders as embedding models (Qwen3-Embedding): pre-RMSNorm, RoPE, grouped-query "
                           "causal attention, SwiGLU",
            .default_pool = GP_POOL_LAST,
            .block_prefix = BLOCK,
            .mlp = qwen3_mlp,
            .attention = qwen3_attention,
            .neuron_rows = qwen3_neuron_rows,
            .neuron_cols = qwen3_neuron_cols,
            .linears = qwen3_linears,
            .linear_groups = qwen3_linear_groups,
        },
    .token_embedding = "embed_tokens.weight",
    .file_prefix = "model.",
    .parse_config = qwen3_config,
    .build_table = qwen3_build_table,
    .forward = qwen3_forward,
    .backward = qwen3_backward,
    .state_free = qwen3_state_free,
    .act_floats = qwen3_act_floats,
    .each_linear_input = qwen3_each_linear_input,
    .embed = qwen3_embed,
    .block = qwen3_block,
};
