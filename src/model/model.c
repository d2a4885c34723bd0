/* model.c — loading a model folder, packing batches, pooling and normalisation (see model.h). */
#include "gaprune/model.h"

#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "gaprune/bf16.h"
#include "gaprune/fs.h"
#include "gaprune/hash.h"
#include "gaprune/json.h"
#include "gaprune/log.h"

struct gp_model_state {
    gp_packed pk;
    int capB, capN;
    void *arch;       /* architecture activations */
    float *pooled;    /* [B, C] */
    float *emb;       /* [B, C] output (normalized when the model normalizes) */
    float *norm;      /* [B] */
    float *dpooled;   /* [B, C] */
    float *dhidden;   /* [N, C] */
    int capDH;
    bool have_train_forward;
    int32_t *touched; /* sorted unique ids of the last forward */
    int ntouched, cap_touched;
    int32_t *dirty;   /* token-embedding gradient rows written since the last zero_grad */
    int ndirty, cap_dirty;
    bool dirty_valid; /* grads is zero outside the dirty rows of the token embedding */
};

/* ---- parameter table -------------------------------------------------------------------- */

void gp_param_table_add(gp_param_table *t, const char *name, int ndim, int64_t d0, int64_t d1) {
    t->p = gp_realloc(t->p, (size_t)(t->n + 1) * sizeof *t->p);
    gp_param *p = &t->p[t->n++];
    memset(p, 0, sizeof *p);
    GP_CHECK(strlen(name) < sizeof p->name, "parameter name too long: %s", name);
    strcpy(p->name, name);
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = ndim > 1 ? d1 : 1;
    /* the sizes come from config.json: a product past size_t is flagged, never wrapped */
    t->overflow |= d0 < 0 || d1 < 0 || __builtin_mul_overflow((size_t)d0, (size_t)(ndim > 1 ? d1 : 1), &p->numel);
    p->offset = t->total;
    t->overflow |= __builtin_add_overflow(t->total, p->numel, &t->total);
}

int gp_param_table_find(const gp_param_table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->p[i].name, name) == 0) return i;
    return -1;
}

void gp_param_table_free(gp_param_table *t) {
    free(t->p);
    memset(t, 0, sizeof *t);
}

void gp_model_build_table(const gp_model_config *cfg, gp_param_table *t) {
    memset(t, 0, sizeof *t);
    gp_arch_ops_get(cfg->arch)->build_table(cfg, t);
}

/* Parameters cfg implies, without building the table of every block (a corrupt layer count
 * grew one for minutes): the tables of one and of two blocks give the embeddings' share and one
 * block's (*block, when not NULL). UINT64_MAX when the count does not fit. */
static uint64_t implied_params_block(const gp_model_config *cfg, uint64_t *block) {
    gp_model_config c = *cfg;
    c.ragged = false; /* every block at the largest size: a bound for a ragged folder */
    gp_param_table t[2];
    for (int k = 0; k < 2; k++) {
        c.layers = k + 1;
        gp_model_build_table(&c, &t[k]);
    }
    bool over = t[0].overflow || t[1].overflow;
    uint64_t one = t[1].total - t[0].total, base = t[0].total - one, all = 0;
    gp_param_table_free(&t[0]);
    gp_param_table_free(&t[1]);
    if (block) *block = over ? UINT64_MAX : one;
    if (over || __builtin_mul_overflow(one, (uint64_t)cfg->layers, &all) || __builtin_add_overflow(all, base, &all))
        return UINT64_MAX;
    return all;
}

static uint64_t implied_params(const gp_model_config *cfg) { return implied_params_block(cfg, NULL); }

gp_status gp_config_check_params(const gp_model_config *cfg, const char *path, gp_err *err) {
    uint64_t n = implied_params(cfg);
    if (n <= GP_MAX_PARAMS) return GP_OK;
    /* blame the size whose reduction to 1 shrinks the count most: an absurd value does */
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        {"num_hidden_layers", offsetof(gp_model_config, layers)},
        {"hidden_size", offsetof(gp_model_config, hidden)},
        {"intermediate_size", offsetof(gp_model_config, intermediate)},
        {"vocab_size", offsetof(gp_model_config, vocab_size)},
        {"max_position_embeddings", offsetof(gp_model_config, max_positions)},
        {"type_vocab_size", offsetof(gp_model_config, type_vocab)},
        {"num_attention_heads", offsetof(gp_model_config, heads)},
        {"num_key_value_heads", offsetof(gp_model_config, kv_heads)},
        {"head_dim", offsetof(gp_model_config, head_dim)},
    };
    size_t worst = 0;
    uint64_t best = UINT64_MAX;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        gp_model_config c = *cfg;
        int *v = (int *)((char *)&c + keys[k].off);
        if (*v <= 1) continue;
        *v = 1;
        uint64_t m = implied_params(&c);
        if (m < best) best = m, worst = k;
    }
    const int value = *(const int *)((const char *)cfg + keys[worst].off);
    if (n == UINT64_MAX)
        return gp_errf(err, GP_EINPUT, "%s: key \"%s\" = %d: the sizes imply more than 2^64 parameters", path, keys[worst].key,
                       value);
    return gp_errf(err, GP_EINPUT, "%s: key \"%s\" = %d: the sizes imply %llu parameters, more than gaprune's limit of 2^40",
                   path, keys[worst].key, value, (unsigned long long)n);
}

static void set_tok_emb(gp_model *m) {
    m->tok_emb = gp_param_table_find(&m->table, gp_arch_ops_get(m->cfg.arch)->token_embedding);
    GP_CHECK(m->tok_emb >= 0, "architecture %s has no token embedding", gp_arch_get(m->cfg.arch)->name);
}

/* ---- sentence-transformers modules ------------------------------------------------------ */

static gp_status load_pooling(gp_model *m, gp_err *err) {
    /* the defaults when the folder has no modules.json: sentence-transformers then builds
     * Transformer + mean Pooling and no Normalize, so the embeddings are not normalised here
     * either; the pooling is each family's own (BERT-style encoders the mean, as
     * sentence-transformers; Qwen3-Embedding the last token it was trained with, where
     * sentence-transformers would take the mean of a bare Qwen3 folder) */
    m->pool.mode = gp_arch_get(m->cfg.arch)->default_pool;
    m->pool.normalize = false;
    char *mpath = gp_path_join(m->dir, "modules.json");
    cJSON *mods = NULL, *pc = NULL;
    char *ppath = NULL;
    gp_status rc = GP_OK;
    if (!gp_file_exists(mpath)) {
        gp_debug0("%s: no modules.json, using %s pooling without normalization", m->dir,
                  m->pool.mode == GP_POOL_LAST ? "last-token" : "mean");
        goto done;
    }
    if ((rc = gp_json_load(mpath, &mods, err))) goto done;
    if (!cJSON_IsArray(mods)) {
        rc = gp_errf(err, GP_EINPUT, "%s: expected a JSON array of modules", mpath);
        goto done;
    }
    m->pool.normalize = false;
    const char *pool_dir = NULL;
    const cJSON *e;
    cJSON_ArrayForEach(e, mods) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(e, "path");
        if (!cJSON_IsString(type)) {
            rc = gp_errf(err, GP_EINPUT, "%s: a module has no \"type\"", mpath);
            goto done;
        }
        const char *t = type->valuestring;
        size_t tl = strlen(t);
        if (strstr(t, "models.Transformer")) continue;
        if (strstr(t, "models.Pooling")) {
            if (!cJSON_IsString(path)) {
                rc = gp_errf(err, GP_EINPUT, "%s: the Pooling module has no \"path\"", mpath);
                goto done;
            }
            pool_dir = path->valuestring;
        } else if (tl >= 9 && strcmp(t + tl - 9, "Normalize") == 0) {
            m->pool.normalize = true;
        } else {
            rc = gp_errf(err, GP_EINPUT, "%s: module type \"%s\" is not supported (Transformer, Pooling, Normalize)",
                         mpath, t);
            goto done;
        }
    }
    if (!pool_dir) goto done;
    char *pd = gp_path_join(m->dir, pool_dir);
    ppath = gp_path_join(pd, "config.json");
    free(pd);
    if ((rc = gp_json_load(ppath, &pc, err))) goto done;
    static const struct {
        const char *key;
        int mode; /* -1: not supported */
    } modes[] = {{"pooling_mode_mean_tokens", GP_POOL_MEAN},       {"pooling_mode_cls_token", GP_POOL_CLS},
                 {"pooling_mode_lasttoken", GP_POOL_LAST},         {"pooling_mode_max_tokens", -1},
                 {"pooling_mode_mean_sqrt_len_tokens", -1},        {"pooling_mode_weightedmean_tokens", -1}};
    int chosen = -1, count = 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        bool on = false;
        if ((rc = gp_json_opt_bool(pc, modes[i].key, &on, ppath, err))) goto done;
        if (!on) continue;
        if (modes[i].mode < 0) {
            rc = gp_errf(err, GP_EINPUT, "%s: \"%s\" is not supported (mean, cls or lasttoken)", ppath, modes[i].key);
            goto done;
        }
        chosen = modes[i].mode;
        count++;
    }
    if (count != 1) {
        rc = gp_errf(err, GP_EINPUT, "%s: exactly one pooling mode must be true (found %d)", ppath, count);
        goto done;
    }
    m->pool.mode = (gp_pool_mode)chosen;
done:
    cJSON_Delete(mods);
    cJSON_Delete(pc);
    free(mpath);
    free(ppath);
    return rc;
}

gp_status gp_model_default_max_length(const char *dir, int max_positions, int *out, gp_err *err) {
    char *p = gp_path_join(dir, "sentence_bert_config.json");
    cJSON *j = NULL;
    gp_status rc = GP_OK;
    *out = max_positions;
    if (gp_file_exists(p) && !(rc = gp_json_load(p, &j, err))) {
        int64_t msl = max_positions;
        rc = gp_json_opt_int(j, "max_seq_length", &msl, p, err);
        if (!rc && msl > 0 && msl < max_positions) *out = (int)msl;
    }
    cJSON_Delete(j);
    free(p);
    return rc;
}

static gp_status load_st_configs(gp_model *m, gp_err *err) {
    gp_status rc = gp_model_default_max_length(m->dir, m->cfg.max_positions, &m->max_length, err);
    if (rc) return rc;
    char *p = gp_path_join(m->dir, "config_sentence_transformers.json");
    cJSON *j = NULL;
    if (gp_file_exists(p)) {
        if ((rc = gp_json_load(p, &j, err))) goto done;
        const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(j, "prompts");
        const char *q = NULL;
        if (cJSON_IsObject(prompts) && (rc = gp_json_opt_string(prompts, "query", &q, p, err))) goto done;
        if (q) m->query_prompt = gp_strdup(q);
    }
done:
    cJSON_Delete(j);
    free(p);
    return rc;
}

/* ---- weights ------------------------------------------------------------------------------ */

/* The tensor of the weight files that holds parameter p, with the shape config.json implies. */
static gp_status find_tensor(const gp_model_config *cfg, const char *dir, const gp_st_set *set, const gp_param *p,
                             const gp_st_tensor **out, gp_err *err) {
    const char *prefixes[] = {"", gp_arch_ops_get(cfg->arch)->file_prefix};
    const gp_st_tensor *st = NULL;
    char name[160];
    for (size_t k = 0; k < 2 && !st; k++) {
        snprintf(name, sizeof name, "%s%s", prefixes[k], p->name);
        st = gp_st_set_find(set, name);
    }
    *out = st;
    if (!st) return gp_errf(err, GP_EINPUT, "%s: tensor \"%s\" is missing from the safetensors files", dir, p->name);
    if (st->ndim == p->ndim && st->shape[0] == p->shape[0] && (p->ndim < 2 || st->shape[1] == p->shape[1])) return GP_OK;
    char got[96] = "";
    for (int d = 0; d < st->ndim && d < 4; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)st->shape[d]);
    if (p->ndim == 2)
        return gp_errf(err, GP_EINPUT, "%s: tensor \"%s\" has shape [%s], config.json implies [%lld, %lld]", st->path,
                       st->name, got, (long long)p->shape[0], (long long)p->shape[1]);
    return gp_errf(err, GP_EINPUT, "%s: tensor \"%s\" has shape [%s], config.json implies [%lld]", st->path, st->name, got,
                   (long long)p->shape[0]);
}

/* Before anything is allocated: the parameters config.json implies must fit in the values the
 * weight files hold. When they do not, the first tensor missing or of another shape among the
 * blocks the files could hold (a table bounded by the files, not by config.json) says what is
 * wrong; when there is none, the number of blocks is. */
static gp_status check_against_files(const gp_model_config *cfg, const char *dir, const gp_st_set *set, gp_err *err) {
    uint64_t have = 0;
    for (int i = 0; i < gp_st_set_nfiles(set); i++) {
        const gp_st_file *f = gp_st_set_file(set, i);
        for (int k = 0; k < gp_st_count(f); k++) have += (uint64_t)gp_st_at(f, k)->numel;
    }
    uint64_t block, need = implied_params_block(cfg, &block);
    if (cfg->ragged) { /* the bound counts every block at the largest size; at most 256 blocks: the table's own */
        gp_param_table t;
        gp_model_build_table(cfg, &t);
        if (!t.overflow) need = t.total;
        gp_param_table_free(&t);
    }
    if (need <= have) return GP_OK;
    gp_model_config fits = *cfg;
    if (block && (uint64_t)fits.layers > have / block + 1) fits.layers = (int)(have / block + 1);
    gp_param_table t;
    gp_model_build_table(&fits, &t);
    gp_status rc = GP_OK;
    int i = 0;
    for (; i < t.n && !rc; i++) {
        const gp_st_tensor *st;
        rc = find_tensor(cfg, dir, set, &t.p[i], &st, err);
        if (rc && !st) break;
    }
    /* a missing tensor of a block the files hold nothing of: config.json counts too many */
    const char *bp = gp_arch_get(cfg->arch)->block_prefix;
    bool extra_block = false;
    if (rc && i < t.n && strncmp(t.p[i].name, bp, strlen(bp)) == 0) {
        char pre[64];
        snprintf(pre, sizeof pre, "%s%ld.", bp, strtol(t.p[i].name + strlen(bp), NULL, 10));
        extra_block = true;
        for (int f = 0; f < gp_st_set_nfiles(set) && extra_block; f++)
            for (int k = 0; k < gp_st_count(gp_st_set_file(set, f)) && extra_block; k++)
                extra_block = !strstr(gp_st_at(gp_st_set_file(set, f), k)->name, pre);
    }
    gp_param_table_free(&t);
    if (rc && !extra_block) return rc;
    char *path = gp_path_join(dir, "config.json");
    rc = gp_errf(err, GP_EINPUT, "%s: key \"num_hidden_layers\" = %d: the sizes imply %llu parameters, more than the %llu "
                 "values in the weight files%s",
                 path, cfg->layers, (unsigned long long)need, (unsigned long long)have,
                 extra_block ? ", which hold fewer blocks" : "");
    free(path);
    return rc;
}

/* The dtype the weights of set are held in (model.h): their one 16-bit dtype, else float32. */
static gp_status held_dtype(const gp_model *m, const gp_st_set *set, gp_dtype *out, gp_err *err) {
    gp_dtype common = GP_DT_COUNT;
    for (int i = 0; i < m->table.n; i++) {
        const gp_st_tensor *st;
        gp_status rc = find_tensor(&m->cfg, m->dir, set, &m->table.p[i], &st, err);
        if (rc) return rc;
        common = i == 0 || st->dtype == common ? st->dtype : GP_DT_F32;
    }
    *out = !m->hold_f32 && (common == GP_DT_BF16 || common == GP_DT_F16) ? common : GP_DT_F32;
    return GP_OK;
}

/* Buffers for m's table in dtype dt (those there kept when they are already of it). */
static void hold(gp_model *m, gp_dtype dt) {
    if (dt == m->wdtype && (m->params || m->w16)) return;
    free(m->params), free(m->w16);
    m->params = NULL, m->w16 = NULL;
    if (dt == GP_DT_F32) m->params = gp_malloc((m->table.total + 1) * sizeof(float));
    else m->w16 = gp_malloc((m->table.total + 1) * sizeof(uint16_t));
    m->wdtype = dt;
    gp_model_wview_init(m);
}

/* A 16-bit value's bits say whether it is finite: an all-ones exponent is an Inf or a NaN. */
static bool finite16(gp_dtype dt, uint16_t h) { return dt == GP_DT_BF16 ? (h & 0x7f80u) != 0x7f80u : (h & 0x7c00u) != 0x7c00u; }

static gp_status load_weights(gp_model *m, const gp_st_set *set, gp_err *err) {
    gp_dtype dt;
    gp_status rc = held_dtype(m, set, &dt, err);
    if (rc) return rc;
    hold(m, dt);
    const gp_param_table *t = &m->table;
    for (int i = 0; i < t->n && !rc; i++) {
        const gp_param *p = &t->p[i];
        const gp_st_tensor *st;
        if ((rc = find_tensor(&m->cfg, m->dir, set, p, &st, err))) break;
        size_t bad = SIZE_MAX;
        double value = 0;
        if (dt == GP_DT_F32) {
            float *dst = m->params + p->offset;
            if ((rc = gp_st_tensor_to_f32(st, dst, err))) break;
            for (size_t k = 0; k < p->numel && bad == SIZE_MAX; k++)
                if (!isfinite(dst[k])) bad = k, value = dst[k];
        } else {
            uint16_t *dst = m->w16 + p->offset;
            if ((rc = gp_st_tensor_to_u16(st, dst, err))) break;
            for (size_t k = 0; k < p->numel && bad == SIZE_MAX; k++)
                if (!finite16(dt, dst[k])) bad = k, value = dt == GP_DT_BF16 ? gp_bf16_value(dst[k]) : gp_f16_to_f32(dst[k]);
        }
        if (bad != SIZE_MAX) {
            rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\" has a non-finite value (%g) at element %zu", st->path, st->name,
                         value, bad);
            break;
        }
        m->src_names[i] = gp_strdup(st->name);
        m->src_dtypes[i] = st->dtype;
    }
    gp_model_weights_changed(m);
    return rc;
}

/* m->cfg's parameter table and the names load_weights fills (the weights' buffers come with it). */
static void alloc_weights(gp_model *m) {
    gp_model_build_table(&m->cfg, &m->table);
    set_tok_emb(m);
    m->src_names = gp_calloc((size_t)m->table.n, sizeof(char *));
    m->src_dtypes = gp_calloc((size_t)m->table.n, sizeof(gp_dtype));
}

gp_status gp_model_reload_weights(gp_model *m, gp_err *err) {
    for (int i = 0; i < m->table.n; i++) {
        free(m->src_names[i]);
        m->src_names[i] = NULL;
    }
    gp_st_set *set = NULL;
    gp_status rc = gp_st_set_open(m->dir, &set, err);
    if (!rc) rc = check_against_files(&m->cfg, m->dir, set, err);
    if (!rc) rc = load_weights(m, set, err);
    gp_st_set_close(set);
    return rc;
}

gp_status gp_model_read_weights(gp_model *m, const char *dir, gp_err *err) {
    char *own = m->dir;
    m->dir = (char *)dir; /* what the messages name */
    gp_status rc = gp_model_reload_weights(m, err);
    m->dir = own;
    return rc;
}

gp_status gp_model_load(const char *dir, gp_model **out, gp_err *err) {
    *out = NULL;
    if (!gp_dir_exists(dir)) return gp_errf(err, GP_EINPUT, "%s: not a model folder (no such directory)", dir);
    gp_model *m = gp_calloc(1, sizeof *m);
    m->dir = gp_strdup(dir);
    gp_status rc;
    gp_st_set *set = NULL;
    if ((rc = gp_model_config_load(dir, &m->cfg, err))) goto fail;
    if ((rc = gp_st_set_open(dir, &set, err))) goto fail;
    if ((rc = check_against_files(&m->cfg, dir, set, err))) goto fail;
    alloc_weights(m);
    rc = load_weights(m, set, err);
    gp_st_set_close(set);
    set = NULL;
    if (rc) goto fail;
    if ((rc = load_pooling(m, err))) goto fail;
    if ((rc = load_st_configs(m, err))) goto fail;
    if ((rc = gp_tokenizer_load(dir, &m->tok, err))) goto fail;
    if (gp_tokenizer_max_id(m->tok) > m->cfg.vocab_size) {
        rc = gp_errf(err, GP_EINPUT, "%s: the tokenizer has ids up to %d but config.json vocab_size is %d", dir,
                     gp_tokenizer_max_id(m->tok) - 1, m->cfg.vocab_size);
        goto fail;
    }
    *out = m;
    return GP_OK;
fail:
    gp_st_set_close(set);
    gp_model_free(m);
    return rc;
}

gp_model *gp_model_create(const gp_model_config *cfg, gp_pooling pool) {
    gp_model *m = gp_calloc(1, sizeof *m);
    m->dir = gp_strdup("(in memory)");
    m->cfg = *cfg;
    m->pool = pool;
    gp_model_build_table(cfg, &m->table);
    set_tok_emb(m);
    m->src_names = gp_calloc((size_t)m->table.n, sizeof(char *));
    m->src_dtypes = gp_calloc((size_t)m->table.n, sizeof(gp_dtype));
    for (int i = 0; i < m->table.n; i++) {
        m->src_names[i] = gp_strdup(m->table.p[i].name);
        m->src_dtypes[i] = GP_DT_F32;
    }
    m->params = gp_calloc(m->table.total + 1, sizeof(float));
    m->wdtype = GP_DT_F32;
    m->max_length = cfg->max_positions;
    return m;
}

/* The activations of the last forward and the backward scratch. */
static void free_acts(gp_model *m) {
    if (m->st) {
        gp_arch_ops_get(m->cfg.arch)->state_free(m->st->arch);
        free(m->st->pk.ids);
        free(m->st->pk.pos);
        free(m->st->pk.offsets);
        free(m->st->pooled);
        free(m->st->emb);
        free(m->st->norm);
        free(m->st->dpooled);
        free(m->st->dhidden);
        free(m->st->touched);
        free(m->st->dirty);
        free(m->st);
        m->st = NULL;
    }
}

void gp_model_release_buffers(gp_model *m) { free_acts(m); }

/* The activations and the gradient buffers: what a change of shapes voids. */
static void free_state(gp_model *m) {
    free_acts(m);
    free(m->grads);
    free(m->grad_off);
    m->grads = NULL, m->grad_off = NULL, m->grad_total = 0, m->grad_windows = 0, m->grad_outer = 0;
}

gp_status gp_model_reopen(gp_model *m, const char *dir, gp_err *err) {
    gp_model_config cfg;
    gp_status rc = gp_model_config_load(dir, &cfg, err);
    if (!rc && (cfg.arch != m->cfg.arch || cfg.vocab_size != m->cfg.vocab_size || cfg.hidden != m->cfg.hidden ||
                cfg.layers != m->cfg.layers || cfg.heads + cfg.heads_pruned != m->cfg.heads + m->cfg.heads_pruned ||
                cfg.head_dim != m->cfg.head_dim))
        rc = gp_errf(err, GP_EINPUT, "%s: config.json differs from %s's beyond intermediate_size and pruned_heads", dir,
                     m->dir);
    gp_st_set *set = NULL;
    if (!rc) rc = gp_st_set_open(dir, &set, err);
    if (!rc) rc = check_against_files(&cfg, dir, set, err);
    if (rc) {
        gp_st_set_close(set);
        return rc;
    }
    free_state(m);
    for (int i = 0; i < m->table.n; i++) free(m->src_names[i]);
    free(m->src_names), free(m->src_dtypes), free(m->params), free(m->w16);
    m->params = NULL, m->w16 = NULL;
    gp_model_wview_free(m);
    gp_param_table_free(&m->table);
    m->cfg = cfg;
    free(m->dir);
    m->dir = gp_strdup(dir);
    alloc_weights(m);
    rc = load_weights(m, set, err);
    gp_st_set_close(set);
    return rc;
}

void gp_model_free(gp_model *m) {
    if (!m) return;
    free_state(m);
    if (m->src_names)
        for (int i = 0; i < m->table.n; i++) free(m->src_names[i]);
    free(m->src_names);
    free(m->src_dtypes);
    gp_param_table_free(&m->table);
    gp_tokenizer_free(m->tok);
    gp_model_wview_free(m);
    free(m->params);
    free(m->w16);
    free(m->query_prompt);
    free(m->dir);
    free(m);
}

static bool listed(const char *const *names, const char *name) {
    for (; *names; names++)
        if (strcmp(*names, name) == 0) return true;
    return false;
}

/* Parameter i's name inside its block (after "<prefix><number>."), or NULL outside the blocks;
 * *layer the block, -1 outside. */
static const char *in_block_name(const gp_model *m, int i, int *layer) {
    const gp_arch_info *a = gp_arch_get(m->cfg.arch);
    const char *name = m->table.p[i].name;
    const size_t pl = strlen(a->block_prefix);
    /* a block parameter is block_prefix, the block number, ".", its name inside the block */
    const char *in_block = NULL;
    long block = -1;
    if (strncmp(name, a->block_prefix, pl) == 0) {
        char *end;
        block = strtol(name + pl, &end, 10);
        if (end > name + pl && *end == '.') in_block = end + 1;
        else block = -1;
    }
    if (layer) *layer = (int)block;
    return in_block;
}

gp_param_kind gp_model_param_kind(const gp_model *m, int i, int *layer) {
    const gp_arch_info *a = gp_arch_get(m->cfg.arch);
    const char *in_block = in_block_name(m, i, layer);
    if (m->table.p[i].ndim != 2 || !in_block) return GP_PARAM_OTHER;
    if (listed(a->mlp, in_block)) return GP_PARAM_MLP;
    if (listed(a->attention, in_block)) return GP_PARAM_ATTENTION;
    return GP_PARAM_OTHER;
}

gp_neuron_axis gp_model_struct_axis(const gp_model *m, gp_struct_kind k, int i, int *layer) {
    const gp_arch_info *a = gp_arch_get(m->cfg.arch);
    const char *in_block = in_block_name(m, i, layer);
    const char *const *rows = k == GP_STRUCT_HEADS ? a->head_rows : a->neuron_rows;
    const char *const *cols = k == GP_STRUCT_HEADS ? a->head_cols : a->neuron_cols;
    if (!in_block || !rows) return GP_NEURON_NONE;
    if (listed(rows, in_block)) return GP_NEURON_ROWS;
    if (listed(cols, in_block)) return GP_NEURON_COLS;
    return GP_NEURON_NONE;
}

int gp_model_linear_group(const gp_model *m, int i, int *layer) {
    const gp_arch_info *a = gp_arch_get(m->cfg.arch);
    const char *in_block = in_block_name(m, i, layer);
    if (!in_block || m->table.p[i].ndim != 2) return -1;
    for (int k = 0; a->linears && a->linears[k]; k++)
        if (!strcmp(a->linears[k], in_block)) return a->linear_groups[k];
    return -1;
}

gp_neuron_axis gp_model_neuron_axis(const gp_model *m, int i, int *layer) {
    return gp_model_struct_axis(m, GP_STRUCT_NEURONS, i, layer);
}

int64_t gp_model_struct_count(const gp_model *m, gp_struct_kind k) {
    return k == GP_STRUCT_HEADS ? m->cfg.heads : m->cfg.intermediate;
}

int64_t gp_model_struct_count_in(const gp_model *m, gp_struct_kind k, int l) {
    return k == GP_STRUCT_HEADS ? m->cfg.heads : gp_config_inter(&m->cfg, l);
}

int64_t gp_model_struct_width(const gp_model *m, gp_struct_kind k) { return k == GP_STRUCT_HEADS ? m->cfg.head_dim : 1; }

const char *gp_struct_name(gp_struct_kind k) { return k == GP_STRUCT_HEADS ? "heads" : "neurons"; }
const char *gp_struct_title(gp_struct_kind k) { return k == GP_STRUCT_HEADS ? "attention heads" : "MLP neurons"; }

int gp_model_dim(const gp_model *m) { return m->cfg.hidden; }
float *gp_model_grad(const gp_model *m, int i) {
    if (!m->grad_off) return m->grads + m->table.p[i].offset;
    return m->grad_off[i] < 0 ? NULL : m->grads + m->grad_off[i];
}

size_t gp_model_need_grads(gp_model *m, const bool *need, int windows) {
    free(m->grads);
    m->grads = NULL;
    free(m->grad_off);
    m->grad_off = NULL;
    m->grad_total = m->table.total;
    m->grad_windows = 0;
    m->grad_outer = 0;
    if (m->st) m->st->dirty_valid = false;
    if (!need) return 0;
    m->grad_off = gp_malloc((size_t)m->table.n * sizeof(int64_t));
    m->grad_total = 0;
    for (int i = 0; i < m->table.n; i++) {
        m->grad_off[i] = need[i] ? (int64_t)m->grad_total : -1;
        if (need[i]) m->grad_total += m->table.p[i].numel;
    }
    if (windows <= 0 || m->cfg.layers <= 0) return 0;
    /* windows only when every block needs block 0's tensors at the same places of its part of
     * the table: then a tensor's offset within its block's gradients is the same in every block */
    int64_t *within = gp_malloc((size_t)m->table.n * sizeof(int64_t));
    int *rel0 = gp_malloc((size_t)m->table.n * sizeof(int));
    int64_t len = 0, at = 0, outer = 0;
    int cur = -2, start = 0, start0 = 0, k = 0, k0 = 0, blocks = 0;
    bool ok = true;
    for (int i = 0; i <= m->table.n && ok; i++) {
        int layer = -3;
        if (i < m->table.n) gp_model_param_kind(m, i, &layer);
        if (layer != cur) { /* the end of a block (or of the parameters outside them) */
            if (cur == 0) len = at, k0 = k;
            else if (cur > 0 && (at != len || k != k0)) ok = false;
            if (layer >= 0 && layer != blocks++) ok = false; /* blocks in order, each once */
            cur = layer, start = i, at = 0, k = 0;
            if (layer == 0) start0 = i;
        }
        if (i == m->table.n || !need[i]) continue;
        if (layer < 0) { /* outside the blocks: in the prefix, in table order */
            within[i] = outer;
            outer += (int64_t)m->table.p[i].numel;
            continue;
        }
        if (layer == 0) rel0[k] = i - start;
        else if (k >= k0 || rel0[k] != i - start || m->table.p[i].numel != m->table.p[start0 + rel0[k]].numel)
            ok = false;
        within[i] = at;
        at += (int64_t)m->table.p[i].numel;
        k++;
    }
    free(rel0);
    if (!ok || len <= 0) {
        free(within);
        return 0;
    }
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        gp_model_param_kind(m, i, &layer);
        if (need[i]) m->grad_off[i] = layer < 0 ? within[i] : outer + (int64_t)(layer % windows) * len + within[i];
    }
    free(within);
    m->grad_outer = (size_t)outer;
    m->grad_total = (size_t)outer + (size_t)len * (size_t)windows;
    m->grad_windows = windows;
    return (size_t)len;
}

void gp_model_set_recompute(gp_model *m, bool on) { m->recompute = on; }

void gp_model_set_lean(gp_model *m, bool on) { m->lean = on; }

const char *const gp_activations_names[] = {"auto", "all", "lean", NULL};

double gp_model_activation_bytes(const gp_model_config *c, double B, double T, bool train, bool recompute, bool lean) {
    /* every sequence full: gp_attention_cache_size = heads · Σ len² */
    return 4.0 * gp_arch_ops_get(c->arch)->act_floats(c, B * T, (double)c->heads * B * T * T, train, recompute,
                                                      lean || !train);
}

bool gp_model_lean_for(const gp_model_config *c, gp_activations mode, double B, double T, bool recompute, double share) {
    if (mode != GP_ACTS_AUTO) return mode == GP_ACTS_LEAN;
    return share > 0 && gp_model_activation_bytes(c, B, T, true, recompute, false) > 0.25 * share;
}

void gp_model_set_grad_hooks(gp_model *m, const gp_grad_hooks *h) {
    if (h) m->hooks = *h;
    else memset(&m->hooks, 0, sizeof m->hooks);
}

void gp_model_layer_begin(gp_model *m, int layer) {
    if (m->hooks.begin) m->hooks.begin(m->hooks.ctx, layer);
    if (m->grad_windows > 0) {
        const size_t len = (m->grad_total - m->grad_outer) / (size_t)m->grad_windows;
        memset(m->grads + m->grad_outer + (size_t)(layer % m->grad_windows) * len, 0, len * sizeof(float));
    }
}

void gp_model_layer_done(gp_model *m, int layer) {
    if (m->hooks.done) m->hooks.done(m->hooks.ctx, layer);
}

void gp_model_zero_grad(gp_model *m) {
    gp_model_state *s = m->st;
    if (!m->grad_off) m->grad_total = m->table.total;
    const float *ge = m->grads ? gp_model_grad(m, m->tok_emb) : NULL;
    /* with windows only the prefix of the parameters outside the blocks is cleared here: the
     * windows are zeroed as each block begins (gp_model_layer_begin), after the caller's last
     * reader of the window is done (a reduction may still be reading one now) */
    const size_t end = m->grad_windows > 0 ? m->grad_outer : m->grad_total;
    if (!m->grads) {
        m->grads = gp_calloc(m->grad_total ? m->grad_total : 1, sizeof(float));
    } else if (s && s->dirty_valid && ge) {
        const gp_param *e = &m->table.p[m->tok_emb];
        const size_t C = (size_t)e->shape[1], at = (size_t)(ge - m->grads);
        memset(m->grads, 0, at * sizeof(float));
        memset(m->grads + at + e->numel, 0, (end - at - e->numel) * sizeof(float));
        for (int i = 0; i < s->ndirty; i++) memset(m->grads + at + (size_t)s->dirty[i] * C, 0, C * sizeof(float));
    } else {
        memset(m->grads, 0, end * sizeof(float));
    }
    if (!s) s = m->st = gp_calloc(1, sizeof *m->st);
    s->ndirty = 0;
    s->dirty_valid = true;
}

void gp_model_grads_changed(gp_model *m) {
    if (m->st) m->st->dirty_valid = false;
}

int gp_model_touched_rows(const gp_model *m, const int32_t **rows) {
    GP_CHECK(m->st, "no forward yet");
    *rows = m->st->touched;
    return m->st->ntouched;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Remembers which token-embedding rows the coming backward writes. */
static void mark_dirty(gp_model_state *s, int vocab) {
    if (!s->dirty_valid) return;
    if (s->ndirty + s->ntouched > vocab / 4) { /* cheaper to clear everything next time */
        s->dirty_valid = false;
        return;
    }
    if (s->ndirty + s->ntouched > s->cap_dirty) {
        s->cap_dirty = 2 * (s->ndirty + s->ntouched);
        s->dirty = gp_realloc(s->dirty, (size_t)s->cap_dirty * sizeof(int32_t));
    }
    memcpy(s->dirty + s->ndirty, s->touched, (size_t)s->ntouched * sizeof(int32_t));
    s->ndirty += s->ntouched;
}

/* ---- forward / backward ----------------------------------------------------------------- */

static void pack(gp_model *m, const gp_batch *b) {
    gp_model_state *s = m->st;
    int N = 0;
    for (size_t i = 0; i < (size_t)b->B * b->T; i++) N += b->mask[i] != 0;
    if (b->B > s->capB) {
        s->capB = b->B;
        s->pk.offsets = gp_realloc(s->pk.offsets, (size_t)(b->B + 1) * sizeof(int));
        size_t bc = (size_t)b->B * m->cfg.hidden * sizeof(float);
        s->pooled = gp_realloc(s->pooled, bc);
        s->emb = gp_realloc(s->emb, bc);
        s->dpooled = gp_realloc(s->dpooled, bc);
        s->norm = gp_realloc(s->norm, (size_t)b->B * sizeof(float));
    }
    if (N > s->capN) {
        s->capN = N;
        s->pk.ids = gp_realloc(s->pk.ids, (size_t)N * sizeof(int32_t));
        s->pk.pos = gp_realloc(s->pk.pos, (size_t)N * sizeof(int32_t));
    }
    int n = 0;
    for (int i = 0; i < b->B; i++) {
        s->pk.offsets[i] = n;
        for (int t = 0; t < b->T; t++) {
            if (!b->mask[(size_t)i * b->T + t]) continue;
            int32_t id = b->ids[(size_t)i * b->T + t];
            GP_CHECK(id >= 0 && id < m->cfg.vocab_size, "token id %d outside the vocabulary (%d)", id, m->cfg.vocab_size);
            GP_CHECK(t < m->cfg.max_positions, "position %d beyond max_position_embeddings %d", t, m->cfg.max_positions);
            s->pk.ids[n] = id;
            s->pk.pos[n] = t;
            n++;
        }
    }
    s->pk.offsets[b->B] = n;
    s->pk.B = b->B;
    s->pk.N = N;
    if (N > s->cap_touched) {
        s->cap_touched = N;
        s->touched = gp_realloc(s->touched, (size_t)N * sizeof(int32_t));
    }
    memcpy(s->touched, s->pk.ids, (size_t)N * sizeof(int32_t));
    qsort(s->touched, (size_t)N, sizeof(int32_t), cmp_i32);
    int u = 0;
    for (int i = 0; i < N; i++)
        if (u == 0 || s->touched[i] != s->touched[u - 1]) s->touched[u++] = s->touched[i];
    s->ntouched = u;
}

static void forward(gp_model *m, const gp_batch *b, float *emb, bool train) {
    if (!m->st) m->st = gp_calloc(1, sizeof *m->st);
    gp_model_state *s = m->st;
    pack(m, b);
    const int C = m->cfg.hidden;
    const float *hidden = gp_arch_ops_get(m->cfg.arch)->forward(m, &s->arch, &s->pk, train);
    gp_pool_forward(s->pooled, hidden, s->pk.offsets, b->B, C, m->pool.mode);
    if (m->pool.normalize) gp_l2norm_forward(s->emb, s->norm, s->pooled, b->B, C);
    else memcpy(s->emb, s->pooled, (size_t)b->B * C * sizeof(float));
    memcpy(emb, s->emb, (size_t)b->B * C * sizeof(float));
    s->have_train_forward = train;
}

void gp_model_forward(gp_model *m, const gp_batch *b, float *emb) { forward(m, b, emb, true); }

void gp_model_backward(gp_model *m, const float *demb) {
    gp_model_state *s = m->st;
    GP_CHECK(s && s->have_train_forward, "gp_model_backward needs a gp_model_forward first");
    GP_CHECK(m->grads, "call gp_model_zero_grad before the first backward");
    const int B = s->pk.B, N = s->pk.N, C = m->cfg.hidden;
    memset(s->dpooled, 0, (size_t)B * C * sizeof(float));
    if (m->pool.normalize) gp_l2norm_backward(s->dpooled, demb, s->emb, s->norm, B, C);
    else memcpy(s->dpooled, demb, (size_t)B * C * sizeof(float));
    if (N > s->capDH) {
        s->capDH = N;
        s->dhidden = gp_realloc(s->dhidden, (size_t)N * C * sizeof(float));
    }
    memset(s->dhidden, 0, (size_t)N * C * sizeof(float));
    gp_pool_backward(s->dhidden, s->dpooled, s->pk.offsets, B, C, m->pool.mode);
    mark_dirty(s, m->cfg.vocab_size);
    gp_arch_ops_get(m->cfg.arch)->backward(m, s->arch, &s->pk, s->dhidden);
}

void gp_model_each_linear_input(gp_model *m, gp_linear_input_fn fn, void *ctx) {
    GP_CHECK(m->st && m->st->have_train_forward, "needs a gp_model_forward first");
    gp_arch_ops_get(m->cfg.arch)->each_linear_input(m, m->st->arch, &m->st->pk, fn, ctx);
}

/* ---- block by block ------------------------------------------------------------------------ */

struct gp_seqs {
    gp_packed pk;
};

gp_seqs *gp_model_seqs(const gp_model *m, const gp_batch *b) {
    gp_seqs *s = gp_calloc(1, sizeof *s);
    int N = 0;
    for (size_t i = 0; i < (size_t)b->B * b->T; i++) N += b->mask[i] != 0;
    s->pk.B = b->B, s->pk.N = N;
    s->pk.ids = gp_malloc((size_t)(N ? N : 1) * sizeof(int32_t));
    s->pk.pos = gp_malloc((size_t)(N ? N : 1) * sizeof(int32_t));
    s->pk.offsets = gp_malloc((size_t)(b->B + 1) * sizeof(int));
    int n = 0;
    for (int i = 0; i < b->B; i++) {
        s->pk.offsets[i] = n;
        for (int t = 0; t < b->T; t++) {
            if (!b->mask[(size_t)i * b->T + t]) continue;
            const int32_t id = b->ids[(size_t)i * b->T + t];
            GP_CHECK(id >= 0 && id < m->cfg.vocab_size, "token id %d outside the vocabulary (%d)", id, m->cfg.vocab_size);
            GP_CHECK(t < m->cfg.max_positions, "position %d beyond max_position_embeddings %d", t, m->cfg.max_positions);
            s->pk.ids[n] = id, s->pk.pos[n] = t, n++;
        }
    }
    s->pk.offsets[b->B] = n;
    return s;
}

int gp_seqs_tokens(const gp_seqs *s) { return s->pk.N; }

void gp_seqs_free(gp_seqs *s) {
    if (!s) return;
    free(s->pk.ids), free(s->pk.pos), free(s->pk.offsets);
    free(s);
}

void gp_model_embed(gp_model *m, const gp_seqs *s, float *x) {
    if (!m->st) m->st = gp_calloc(1, sizeof *m->st);
    m->st->have_train_forward = false;
    gp_arch_ops_get(m->cfg.arch)->embed(m, &m->st->arch, &s->pk, x);
}

void gp_model_block(gp_model *m, const gp_seqs *s, int l, const float *x, float *y, gp_linear_input_fn fn, void *ctx) {
    if (!m->st) m->st = gp_calloc(1, sizeof *m->st);
    m->st->have_train_forward = false;
    gp_arch_ops_get(m->cfg.arch)->block(m, &m->st->arch, &s->pk, l, x, y, fn, ctx);
}

char *gp_query_instruct(const char *task) {
    static const char head[] = "Instruct: ", tail[] = "\nQuery:";
    char *s = gp_malloc(sizeof head + strlen(task) + sizeof tail);
    sprintf(s, "%s%s%s", head, task, tail);
    return s;
}

void gp_model_encode(gp_model *m, const char *const *texts, int n, int batch, int max_len, const char *prefix,
                     float *emb) {
    const int C = gp_model_dim(m);
    const double t0 = gp_now();
    if (max_len <= 0 || max_len > m->max_length) max_len = m->max_length;
    const char **bt = gp_malloc((size_t)(batch > 0 ? batch : 1) * sizeof(char *));
    char **owned = gp_calloc((size_t)(batch > 0 ? batch : 1), sizeof(char *));
    for (int i = 0; i < n; i += batch) {
        int k = n - i < batch ? n - i : batch;
        for (int j = 0; j < k; j++) {
            if (prefix && *prefix) {
                size_t a = strlen(prefix), c = strlen(texts[i + j]);
                owned[j] = gp_malloc(a + c + 1);
                memcpy(owned[j], prefix, a);
                memcpy(owned[j] + a, texts[i + j], c + 1);
                bt[j] = owned[j];
            } else {
                bt[j] = texts[i + j];
            }
        }
        gp_batch b;
        gp_tokenizer_batch(m->tok, bt, k, max_len, &b);
        forward(m, &b, emb + (size_t)i * C, false);
        gp_batch_free(&b);
        for (int j = 0; j < k; j++) {
            free(owned[j]);
            owned[j] = NULL;
        }
    }
    free(owned);
    free(bt);
    m->encoded += n;
    m->encode_s += gp_now() - t0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

gp_status gp_model_sha256(const char *dir, char hex[65], gp_err *err) {
    DIR *d = opendir(dir);
    if (!d) return gp_errf(err, GP_EINPUT, "%s: cannot list the folder", dir);
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 12 && strcmp(e->d_name + l - 12, ".safetensors") == 0) {
            names = gp_realloc(names, (size_t)(n + 1) * sizeof *names);
            names[n++] = gp_strdup(e->d_name);
        }
    }
    closedir(d);
    if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_name); /* names is NULL when there is none */
    gp_sha256 *h = gp_sha256_init();
    char *cfg = gp_path_join(dir, "config.json");
    gp_status rc = gp_sha256_update_file(h, cfg, err);
    free(cfg);
    for (int i = 0; i < n; i++) {
        if (!rc) {
            char *p = gp_path_join(dir, names[i]);
            gp_sha256_update(h, names[i], strlen(names[i]) + 1);
            rc = gp_sha256_update_file(h, p, err);
            free(p);
        }
        free(names[i]);
    }
    free(names);
    gp_sha256_final(h, hex);
    return rc;
}
