/* export.c — pruned (or retrained) model folders (see export.h). */
#include "gaprune/export.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gaprune/fs.h"
#include "gaprune/json.h"
#include "gaprune/log.h"
#include "gaprune/safetensors.h"

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Weights in formats we do not rewrite: copying them would ship the dense model along. */
static bool other_weights(const char *name, bool is_dir) {
    if (is_dir) return !strcmp(name, "onnx") || !strcmp(name, "openvino");
    static const char *suf[] = {".bin", ".h5", ".msgpack", ".onnx", ".pt", ".pth", ".ckpt", ".ot", ".gguf", ".bin.index.json"};
    for (size_t i = 0; i < sizeof suf / sizeof suf[0]; i++)
        if (has_suffix(name, suf[i])) return true;
    return false;
}

static gp_status copy_tree(const char *src, const char *dst, gp_err *err) {
    DIR *d = opendir(src);
    if (!d) return gp_errf(err, GP_EINPUT, "%s: cannot list the folder", src);
    gp_status rc = gp_mkdir_p(dst, err);
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *s = gp_path_join(src, e->d_name), *t = gp_path_join(dst, e->d_name);
        struct stat st;
        if (stat(s, &st) == 0) {
            bool dir = S_ISDIR(st.st_mode);
            if (other_weights(e->d_name, dir)) gp_log0("export: leaving out %s (dense weights in another format)", s);
            else if (dir) rc = copy_tree(s, t, err);
            else if (S_ISREG(st.st_mode) && !has_suffix(e->d_name, ".safetensors") && strcmp(e->d_name, GP_INIT_MARKER))
                rc = gp_copy_file(s, t, err);
        }
        free(s);
        free(t);
    }
    closedir(d);
    return rc;
}

/* Rows (axis rows) or columns (axis cols) `index` of a [R, C] tensor (1-D: R values, C = 1):
 * a malloc'd [kept, C] or [R, kept] (a neuron is one row or column, a head head_dim of them). */
static float *gather_neurons(const float *w, int64_t R, int64_t C, gp_neuron_axis axis, const int32_t *index,
                             int64_t kept) {
    float *out;
    if (axis == GP_NEURON_ROWS) {
        out = gp_malloc((size_t)(kept * C + 1) * sizeof(float));
        for (int64_t j = 0; j < kept; j++) memcpy(out + j * C, w + (int64_t)index[j] * C, (size_t)C * sizeof(float));
    } else {
        out = gp_malloc((size_t)(R * kept + 1) * sizeof(float));
        for (int64_t r = 0; r < R; r++)
            for (int64_t j = 0; j < kept; j++) out[r * kept + j] = w[r * C + index[j]];
    }
    return out;
}

/* The source's text with the number after its first "<name>": replaced by kept (the rest byte
 * for byte), or NULL when the text has no such number. */
static char *replace_number(const char *text, const char *name, int64_t kept) {
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", name);
    const char *key = strstr(text, quoted);
    if (!key) return NULL;
    const char *v = key + strlen(quoted);
    while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') v++;
    if (*v++ != ':') return NULL;
    while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') v++;
    const char *e = v;
    while (*e >= '0' && *e <= '9') e++;
    if (e == v) return NULL;
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)kept);
    char *out = gp_malloc(strlen(text) + sizeof num);
    snprintf(out, strlen(text) + sizeof num, "%.*s%s%s", (int)(v - text), text, num, e);
    return out;
}

/* The text with member ("\n  \"key\": value,") inserted right after its first '{', or NULL. */
static char *insert_member(const char *text, const char *member) {
    const char *brace = strchr(text, '{');
    if (!brace) return NULL;
    const size_t head = (size_t)(brace - text) + 1, len = strlen(text), add = strlen(member);
    char *out = gp_malloc(len + add + 1);
    memcpy(out, text, head);
    memcpy(out + head, member, add);
    memcpy(out + head + add, text + head, len - head + 1);
    return out;
}

static bool uneven_counts(const gp_export_structs *st) {
    for (int l = 1; l < st->layers; l++)
        if (st->counts[l] != st->counts[0]) return true;
    return false;
}

/* The member a structured export adds to config.json, or NULL: heads, transformers'
 * "pruned_heads": {"layer": [removed heads]} (original indices, every layer); neurons kept in
 * different numbers by the blocks, GP_CONFIG_INTER_SIZES: [every block's]. */
static char *structs_member(const gp_model *m, const gp_export_structs *st) {
    if (st->kind == GP_STRUCT_NEURONS && !uneven_counts(st)) return NULL;
    const int64_t H = gp_model_struct_count(m, st->kind);
    /* at most 12 characters a number, 16 a layer */
    const bool heads = st->kind == GP_STRUCT_HEADS;
    char *list = gp_malloc((size_t)(st->layers * ((heads ? H : 1) * 12 + 16) + 96));
    size_t at = 0;
    if (!heads) {
        at += (size_t)sprintf(list + at, "\n  \"%s\": [", GP_CONFIG_INTER_SIZES);
        for (int l = 0; l < st->layers; l++) at += (size_t)sprintf(list + at, "%s%lld", l ? ", " : "", (long long)st->counts[l]);
        sprintf(list + at, "],");
        return list;
    }
    at += (size_t)sprintf(list + at, "\n  \"pruned_heads\": {");
    const int32_t *kept = st->index;
    for (int l = 0; l < st->layers; l++) {
        at += (size_t)sprintf(list + at, "%s\"%d\": [", l ? ", " : "", l);
        int64_t j = 0, n = 0;
        for (int64_t h = 0; h < H; h++) {
            if (j < st->counts[l] && kept[j] == h) {
                j++;
                continue;
            }
            at += (size_t)sprintf(list + at, "%s%lld", n++ ? ", " : "", (long long)h);
        }
        kept += st->counts[l];
        at += (size_t)sprintf(list + at, "]");
    }
    sprintf(list + at, "},");
    return list;
}

/* <tmp>/config.json of a structured export, every byte as the source has it but what the export
 * changes: neurons, intermediate_size = the kept count (the largest block's when the blocks keep
 * different numbers, each block's then in GP_CONFIG_INTER_SIZES); heads, transformers'
 * "pruned_heads" added. The text is edited and parsed back to check that it says so (a number
 * that cannot be replaced in the text: cJSON prints the whole object again). */
static gp_status write_config(const gp_model *m, const char *tmp, const gp_export_structs *st, gp_err *err) {
    char *src = gp_path_join(m->dir, "config.json"), *dst = gp_path_join(tmp, "config.json");
    char *orig = NULL, *text = NULL;
    size_t len = 0;
    cJSON *cfg = NULL;
    gp_status rc = gp_read_file(src, &orig, &len, err);
    if (!rc && st->kind == GP_STRUCT_HEADS && m->cfg.heads_pruned)
        rc = gp_errf(err, GP_EINPUT, "%s: has pruned_heads already", src);
    if (!rc && st->kind == GP_STRUCT_NEURONS && m->cfg.ragged)
        rc = gp_errf(err, GP_EINPUT, "%s: has %s already", src, GP_CONFIG_INTER_SIZES);
    int64_t kept = 0; /* intermediate_size to write */
    for (int l = 0; l < st->layers; l++) kept = st->counts[l] > kept ? st->counts[l] : kept;
    int64_t got = -1;
    if (rc || st->kind != GP_STRUCT_NEURONS) {
        text = orig, orig = NULL;
    } else if ((text = replace_number(orig, "intermediate_size", kept)) && !gp_json_parse(text, strlen(text), src, &cfg, err) &&
               !gp_json_int(cfg, "intermediate_size", &got, src, err) && got == kept) {
        /* the textual replacement holds */
    } else {
        free(text);
        cJSON_Delete(cfg);
        text = NULL, cfg = NULL;
        rc = gp_json_load(src, &cfg, err);
        if (!rc && !cJSON_ReplaceItemInObjectCaseSensitive(cfg, "intermediate_size", cJSON_CreateNumber((double)kept)))
            rc = gp_errf(err, GP_EINPUT, "%s: no key \"intermediate_size\" to set", src);
        char *printed = rc ? NULL : cJSON_Print(cfg);
        if (printed) {
            text = gp_malloc(strlen(printed) + 2);
            sprintf(text, "%s\n", printed);
            free(printed);
        }
    }
    free(orig);
    cJSON_Delete(cfg);
    cfg = NULL;
    char *member = rc ? NULL : structs_member(m, st);
    if (member) {
        const char *key = st->kind == GP_STRUCT_HEADS ? "pruned_heads" : GP_CONFIG_INTER_SIZES;
        char *with = insert_member(text, member);
        free(text);
        text = with;
        /* the result must parse, with the key where transformers (or gaprune) reads it */
        if (!text) rc = gp_errf(err, GP_EINPUT, "%s: not a JSON object", src);
        else rc = gp_json_parse(text, strlen(text), dst, &cfg, err);
        if (!rc && !cJSON_GetObjectItemCaseSensitive(cfg, key))
            rc = gp_errf(err, GP_EINPUT, "%s: %s did not land in the object", dst, key);
        cJSON_Delete(cfg);
    }
    free(member);
    if (!rc) {
        FILE *f = gp_file_create(dst, err);
        if (!f) rc = GP_EINPUT;
        else {
            fputs(text, f);
            rc = gp_file_commit(f, dst, err);
        }
    }
    free(text);
    free(src), free(dst);
    return rc;
}

/* A folder whose blocks keep different numbers of neurons says so in a file of its own, beside
 * the config.json key that gaprune reads: transformers would refuse its shapes. */
static gp_status write_notice(const gp_model *m, const char *tmp, const gp_export_structs *st, gp_err *err) {
    char *path = gp_path_join(tmp, GP_EXPORT_NOTICE);
    FILE *f = gp_file_create(path, err);
    gp_status rc = f ? GP_OK : GP_EINPUT;
    if (f) {
        fprintf(f, "# A model folder that only gaprune reads\n\n"
                   "gaprune removed whole MLP neurons ranked over all blocks at once (prune.scope = neurons-global),\n"
                   "so the blocks of this model keep different numbers of neurons:\n\n");
        for (int l = 0; l < st->layers; l++)
            fprintf(f, "- block %d: %lld of %d\n", l, (long long)st->counts[l], m->cfg.intermediate);
        fprintf(f, "\nconfig.json lists them as \"%s\" and sets intermediate_size to the largest.\n"
                   "transformers and sentence-transformers have one intermediate_size for every block: they do not\n"
                   "load this folder (the tensors' shapes do not match). gaprune loads, encodes, evaluates and\n"
                   "retrains it. For a folder that every library reads, use prune.scope = neurons (the same count in\n"
                   "every block).\n",
                GP_CONFIG_INTER_SIZES);
        rc = gp_file_commit(f, path, err);
    }
    free(path);
    return rc;
}

/* A sharded folder's <tmp>/model.safetensors.index.json with metadata.total_size = total (the
 * bytes of every tensor, what transformers records), the rest byte for byte; nothing to do for
 * a single-file model. The number is replaced textually and checked by parsing it back. */
static gp_status write_index_total(const char *tmp, uint64_t total, gp_err *err) {
    char *path = gp_path_join(tmp, "model.safetensors.index.json"), *orig = NULL, *text = NULL;
    size_t len = 0;
    gp_status rc = GP_OK;
    if (gp_file_exists(path)) {
        cJSON *doc = NULL;
        rc = gp_read_file(path, &orig, &len, err);
        if (!rc && !(text = replace_number(orig, "total_size", (int64_t)total)))
            rc = gp_errf(err, GP_EINPUT, "%s: no \"total_size\" number in its metadata", path);
        if (!rc) rc = gp_json_parse(text, strlen(text), path, &doc, err);
        const cJSON *t = rc ? NULL : cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "metadata"), "total_size");
        if (!rc && !(cJSON_IsNumber(t) && t->valuedouble == (double)total))
            rc = gp_errf(err, GP_EINPUT, "%s: its first \"total_size\" is not metadata.total_size", path);
        cJSON_Delete(doc);
        FILE *f = rc ? NULL : gp_file_create(path, err);
        if (!rc && !f) rc = GP_EINPUT;
        if (f) {
            fputs(text, f);
            rc = gp_file_commit(f, path, err);
        }
    }
    free(orig), free(text), free(path);
    return rc;
}

gp_status gp_export_model(const gp_model *m, const char *out_dir, const char *const *meta, int nmeta,
                          const gp_export_structs *structs, gp_err *err) {
    char *tmp = gp_tmp_path(out_dir);
    gp_rmtree(tmp);
    gp_status rc = copy_tree(m->dir, tmp, err);
    if (!rc && structs) rc = write_config(m, tmp, structs, err);
    if (!rc && structs && uneven_counts(structs)) rc = write_notice(m, tmp, structs, err);
    /* the kept rows (or columns) of every block, block after block (a structure spans g of them),
     * and where block l's start */
    const int64_t g = structs ? gp_model_struct_width(m, structs->kind) : 1;
    int64_t nkept = 0;
    int64_t *first = structs ? gp_malloc((size_t)(structs->layers + 1) * sizeof(int64_t)) : NULL;
    for (int l = 0; structs && l < structs->layers; l++) first[l] = nkept * g, nkept += structs->counts[l];
    int32_t *rows = structs ? gp_malloc((size_t)(nkept * g + 1) * sizeof(int32_t)) : NULL;
    for (int64_t u = 0; structs && u < nkept; u++)
        for (int64_t d = 0; d < g; d++) rows[u * g + d] = (int32_t)(structs->index[u] * g + d);
    gp_st_set *set = NULL;
    if (!rc) rc = gp_st_set_open(m->dir, &set, err);
    uint64_t total = 0; /* bytes of every tensor written */
    for (int s = 0; !rc && s < gp_st_set_nfiles(set); s++) {
        const gp_st_file *f = gp_st_set_file(set, s);
        gp_st_writer *w = gp_st_writer_init();
        for (int k = 0; k < gp_st_meta_count(f); k++) {
            const char *key, *val;
            gp_st_meta_at(f, k, &key, &val);
            gp_st_writer_meta(w, key, val);
        }
        for (int k = 0; k < nmeta; k++) gp_st_writer_meta(w, meta[2 * k], meta[2 * k + 1]);
        /* the reduced tensors, alive until the writer has written them */
        float **owned = gp_calloc((size_t)gp_st_count(f) + 1, sizeof(float *));
        for (int k = 0; k < gp_st_count(f); k++) {
            const gp_st_tensor *t = gp_st_at(f, k);
            int p = -1;
            for (int i = 0; i < m->table.n && p < 0; i++)
                if (m->src_names[i] && !strcmp(m->src_names[i], t->name)) p = i;
            int layer = -1;
            const gp_neuron_axis ax = p >= 0 && structs ? gp_model_struct_axis(m, structs->kind, p, &layer) : GP_NEURON_NONE;
            if (ax != GP_NEURON_NONE && layer >= 0 && layer < structs->layers) {
                const gp_param *q = &m->table.p[p];
                const int64_t R = q->shape[0], C = q->ndim == 2 ? q->shape[1] : 1;
                const int64_t kept = structs->counts[layer] * g;
                int64_t shape[2] = {t->shape[0], t->ndim == 2 ? t->shape[1] : 0};
                shape[ax == GP_NEURON_ROWS ? 0 : 1] = kept;
                float *wide = m->wdtype == GP_DT_F32 ? NULL : gp_malloc((size_t)q->numel * sizeof(float));
                if (wide) gp_model_weights_get(m, q->offset, q->numel, wide);
                owned[k] = gather_neurons(wide ? wide : gp_model_param(m, p), R, C, ax, rows + first[layer], kept);
                free(wide);
                gp_st_writer_add_f32(w, t->name, t->dtype, t->ndim, shape, owned[k]);
                total += (uint64_t)(shape[0] * (t->ndim == 2 ? shape[1] : 1)) * gp_dtype_size(t->dtype);
            } else {
                const gp_param *q = p >= 0 ? &m->table.p[p] : NULL;
                if (q && m->wdtype == GP_DT_F32) {
                    gp_st_writer_add_f32(w, t->name, t->dtype, t->ndim, t->shape, gp_model_param(m, p));
                } else if (q && t->dtype == m->wdtype) { /* held as the file stores it: the bytes as they are */
                    gp_st_writer_add_raw(w, t->name, t->dtype, t->ndim, t->shape, m->w16 + q->offset);
                } else if (q) {
                    owned[k] = gp_malloc((size_t)q->numel * sizeof(float) + 1);
                    gp_model_weights_get(m, q->offset, q->numel, owned[k]);
                    gp_st_writer_add_f32(w, t->name, t->dtype, t->ndim, t->shape, owned[k]);
                } else {
                    gp_st_writer_add_raw(w, t->name, t->dtype, t->ndim, t->shape, t->data);
                }
                uint64_t numel = 1;
                for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
                total += numel * gp_dtype_size(t->dtype);
            }
        }
        char *path = gp_path_join(tmp, gp_st_set_file_name(set, s));
        rc = gp_st_writer_write(w, path, err);
        free(path);
        gp_st_writer_free(w);
        for (int k = 0; k < gp_st_count(f); k++) free(owned[k]);
        free(owned);
    }
    gp_st_set_close(set);
    free(rows), free(first);
    if (!rc && structs) rc = write_index_total(tmp, total, err);
    if (!rc) {
        gp_rmtree(out_dir);
        if (rename(tmp, out_dir) != 0) rc = gp_errf(err, GP_EINPUT, "%s: cannot rename to %s", tmp, out_dir);
    } else {
        gp_rmtree(tmp);
    }
    free(tmp);
    return rc;
}
