/*
 * arch.c — the architecture registry and config.json: one row per architecture, the lookups
 * model.c and the help texts go through, and the parser that picks an architecture by
 * model_type and hands the file to its own parser (see arch.h, model.h).
 *
 * Usage:
 *     for (const gp_arch_info *const *a = gp_architectures(); *a; a++) printf("%s\n", (*a)->name);
 *     gp_model_config cfg; gp_err err = {0};
 *     if (gp_model_config_load(dir, &cfg, &err)) fprintf(stderr, "%s\n", err.msg);
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "gaprune/fs.h"
#include "gaprune/json.h"
#include "gaprune/model.h"

/* The registry: one row per architecture, at its gp_arch index. */
static const gp_arch_info *const registry[] = {
    &gp_bert_ops.info,
    &gp_qwen3_ops.info,
    NULL,
};

enum { N_ARCH = sizeof registry / sizeof registry[0] - 1 };

const gp_arch_info *const *gp_architectures(void) { return registry; }

const gp_arch_info *gp_arch_get(gp_arch a) {
    GP_CHECK((int)a >= 0 && (int)a < N_ARCH, "architecture %d is not in the registry", (int)a);
    GP_CHECK(registry[a]->arch == a, "registry row %d is architecture %d", (int)a, (int)registry[a]->arch);
    return registry[a];
}

/* info is the first member of gp_arch_ops, so a row's address is its ops' address. */
const gp_arch_ops *gp_arch_ops_get(gp_arch a) { return (const gp_arch_ops *)gp_arch_get(a); }

const gp_arch_info *gp_arch_for_model_type(const char *model_type) {
    for (const gp_arch_info *const *a = registry; *a; a++)
        for (const char *const *t = (*a)->model_types; *t; t++)
            if (strcmp(*t, model_type) == 0) return *a;
    return NULL;
}

/* ---- config.json ------------------------------------------------------------------------ */

gp_status gp_config_int(const cJSON *j, const char *key, int *out, const char *path, gp_err *err) {
    int64_t v;
    if (gp_json_int(j, key, &v, path, err)) return GP_EINPUT;
    if (v <= 0 || v > (1 << 30)) return gp_errf(err, GP_EINPUT, "%s: key \"%s\" = %lld is out of range", path, key, (long long)v);
    *out = (int)v;
    return GP_OK;
}

gp_status gp_config_eps(const cJSON *j, const char *key, float *out, const char *path, gp_err *err) {
    double eps;
    if (gp_json_double(j, key, &eps, path, err)) return GP_EINPUT;
    if (!(eps > 0 && eps < 1)) return gp_errf(err, GP_EINPUT, "%s: key \"%s\" = %g is out of range", path, key, eps);
    *out = (float)eps;
    return GP_OK;
}

/* GP_CONFIG_INTER_SIZES, a folder of blocks with different intermediate sizes (written by
 * prune.scope = neurons-global): one positive size per block, the largest of them
 * intermediate_size (what transformers reads, so that it refuses the folder's shapes rather than
 * building a model of another size). Absent or null: every block has intermediate_size. */
static gp_status config_inter_sizes(const cJSON *j, const char *path, gp_model_config *cfg, gp_err *err) {
    cfg->ragged = false;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, GP_CONFIG_INTER_SIZES);
    if (!a || cJSON_IsNull(a)) return GP_OK;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != cfg->layers)
        return gp_errf(err, GP_EINPUT, "%s: key \"%s\" is not a list of num_hidden_layers = %d sizes", path,
                       GP_CONFIG_INTER_SIZES, cfg->layers);
    if (cfg->layers > GP_MAX_RAGGED_LAYERS)
        return gp_errf(err, GP_EINPUT, "%s: key \"%s\": gaprune reads per-block sizes of at most %d blocks, not %d", path,
                       GP_CONFIG_INTER_SIZES, GP_MAX_RAGGED_LAYERS, cfg->layers);
    int l = 0, most = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        const double v = cJSON_IsNumber(e) ? e->valuedouble : 0;
        /* the range first: converting a double outside int's range is undefined */
        if (!(v >= 1 && v <= cfg->intermediate) || v != (int)v)
            return gp_errf(err, GP_EINPUT, "%s: key \"%s\"[%d] is not a size in [1, intermediate_size = %d]", path,
                           GP_CONFIG_INTER_SIZES, l, cfg->intermediate);
        cfg->inter_of[l++] = (int)v;
        most = (int)v > most ? (int)v : most;
    }
    if (most != cfg->intermediate)
        return gp_errf(err, GP_EINPUT, "%s: intermediate_size %d is not the largest of \"%s\" (%d)", path, cfg->intermediate,
                       GP_CONFIG_INTER_SIZES, most);
    cfg->ragged = true;
    return GP_OK;
}

gp_status gp_config_common_sizes(const cJSON *j, const char *path, gp_model_config *cfg, gp_err *err) {
    gp_status rc;
    if ((rc = gp_config_int(j, "vocab_size", &cfg->vocab_size, path, err)) ||
        (rc = gp_config_int(j, "hidden_size", &cfg->hidden, path, err)) ||
        (rc = gp_config_int(j, "num_hidden_layers", &cfg->layers, path, err)) ||
        (rc = gp_config_int(j, "num_attention_heads", &cfg->heads, path, err)) ||
        (rc = gp_config_int(j, "intermediate_size", &cfg->intermediate, path, err)) ||
        (rc = config_inter_sizes(j, path, cfg, err)))
        return rc;
    return gp_config_int(j, "max_position_embeddings", &cfg->max_positions, path, err);
}

gp_status gp_config_pruned_heads(const cJSON *j, const char *path, int layers, int heads, int *removed, gp_err *err) {
    *removed = 0;
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(j, "pruned_heads");
    if (!ph || cJSON_IsNull(ph)) return GP_OK;
    if (!cJSON_IsObject(ph)) return gp_errf(err, GP_EINPUT, "%s: key \"pruned_heads\" is not an object", path);
    int count = -1, seen = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, ph) {
        char *end = NULL;
        const long l = strtol(e->string, &end, 10);
        if (!*e->string || *end || l < 0 || l >= layers || !cJSON_IsArray(e))
            return gp_errf(err, GP_EINPUT, "%s: pruned_heads: \"%s\" is not a layer in [0, %d) with a list of heads", path,
                           e->string, layers);
        const int n = cJSON_GetArraySize(e);
        uint64_t bits[16] = {0}; /* up to 1024 heads */
        const cJSON *h;
        cJSON_ArrayForEach(h, e) {
            const double v = cJSON_IsNumber(h) ? h->valuedouble : -1;
            /* the range first: converting a double outside int's range is undefined */
            if (!(v >= 0 && v < heads && v < 1024) || v != (int)v || (bits[(int)v / 64] >> ((int)v % 64) & 1))
                return gp_errf(err, GP_EINPUT, "%s: pruned_heads[\"%s\"]: not distinct heads in [0, %d)", path, e->string, heads);
            bits[(int)v / 64] |= 1ull << ((int)v % 64);
        }
        if (count >= 0 && n != count)
            return gp_errf(err, GP_EINPUT, "%s: pruned_heads removes %d heads from one layer and %d from another: gaprune "
                           "reads folders with the same number of heads in every layer", path, count, n);
        count = n, seen++;
    }
    if (seen && seen != layers && count > 0)
        return gp_errf(err, GP_EINPUT, "%s: pruned_heads names %d of %d layers: gaprune reads folders with the same number "
                       "of heads in every layer", path, seen, layers);
    if (count >= heads) return gp_errf(err, GP_EINPUT, "%s: pruned_heads removes every head of a layer", path);
    *removed = count > 0 ? count : 0;
    return GP_OK;
}

/* "bert, qwen3": every model_type the registry reads, for the unknown-model_type message. */
static void model_type_list(char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    for (const gp_arch_info *const *a = registry; *a; a++)
        for (const char *const *t = (*a)->model_types; *t && len < n; t++)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", *t);
}

gp_status gp_model_config_load(const char *dir, gp_model_config *cfg, gp_err *err) {
    memset(cfg, 0, sizeof *cfg);
    char *path = gp_path_join(dir, "config.json");
    cJSON *j = NULL;
    gp_status rc = gp_json_load(path, &j, err);
    if (rc) goto done;
    const char *mt = NULL;
    if ((rc = gp_json_opt_string(j, "model_type", &mt, path, err))) goto done;
    if (!mt) {
        rc = gp_errf(err, GP_EINPUT, "%s: missing key \"model_type\"", path);
        goto done;
    }
    const gp_arch_info *a = gp_arch_for_model_type(mt);
    if (!a) {
        char known[256];
        model_type_list(known, sizeof known);
        rc = gp_errf(err, GP_EINPUT, "%s: key \"model_type\" = \"%s\" is not a supported architecture (%s)", path, mt,
                     known);
        goto done;
    }
    cfg->arch = a->arch;
    rc = gp_arch_ops_get(a->arch)->parse_config(j, path, cfg, err);
    if (!rc) rc = gp_config_check_params(cfg, path, err);
done:
    cJSON_Delete(j);
    free(path);
    return rc;
}
