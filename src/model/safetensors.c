/* safetensors.c — validated mmap reader and streaming writer (see safetensors.h). */
#include "gaprune/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gaprune/bf16.h"
#include "gaprune/fs.h"
#include "gaprune/json.h"
#include "gaprune/strmap.h"

/* The reference reader's cap; a larger header is certainly garbage. */
#define ST_MAX_HEADER (100u << 20)

static const struct {
    const char *name;
    size_t size;
} k_dtypes[GP_DT_COUNT] = {
    [GP_DT_BOOL] = {"BOOL", 1}, [GP_DT_U8] = {"U8", 1},           [GP_DT_I8] = {"I8", 1},
    [GP_DT_U16] = {"U16", 2},   [GP_DT_I16] = {"I16", 2},         [GP_DT_F16] = {"F16", 2},
    [GP_DT_BF16] = {"BF16", 2}, [GP_DT_U32] = {"U32", 4},         [GP_DT_I32] = {"I32", 4},
    [GP_DT_F32] = {"F32", 4},   [GP_DT_F64] = {"F64", 8},         [GP_DT_U64] = {"U64", 8},
    [GP_DT_I64] = {"I64", 8},   [GP_DT_F8_E4M3] = {"F8_E4M3", 1}, [GP_DT_F8_E5M2] = {"F8_E5M2", 1},
};

const char *gp_dtype_name(gp_dtype t) { return (unsigned)t < GP_DT_COUNT ? k_dtypes[t].name : "?"; }
size_t gp_dtype_size(gp_dtype t) { return (unsigned)t < GP_DT_COUNT ? k_dtypes[t].size : 0; }

int gp_dtype_parse(const char *name) {
    for (int i = 0; i < GP_DT_COUNT; i++)
        if (strcmp(name, k_dtypes[i].name) == 0) return i;
    return -1;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float gp_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) {
        float v = (float)m * 5.9604644775390625e-08f; /* subnormal: m * 2^-24 */
        return sign ? -v : v;
    }
    if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t gp_f32_to_f16(float f) {
    uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000;
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((x >> 13) & 0x3ff)); /* NaN stays NaN */
    if (x >= 0x47800000u) return (uint16_t)(sign | 0x7c00);                     /* overflow: inf */
    if (x < 0x38800000u) {                                                        /* half subnormal */
        uint32_t e = x >> 23;
        if (e < 102) return (uint16_t)sign; /* below 2^-25: rounds to zero */
        uint32_t m = (x & 0x7fffffu) | 0x800000u, shift = 126 - e;
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (((x >> 23) - 112) << 10) | ((x & 0x7fffffu) >> 13), rem = x & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry may round up to inf: correct */
    return (uint16_t)(sign | h);
}

/* ------------------------------------------------------------------------------------------ */
/* reader */

struct gp_st_file {
    char *path;
    uint8_t *map;
    size_t map_size;
    const uint8_t *data; /* start of the data buffer */
    uint64_t data_size;
    int n;
    gp_st_tensor *t;
    int nmeta;
    char **meta_keys, **meta_vals;
    gp_strmap *index; /* tensor name → position in t: duplicates found and names looked up in O(1) */
};

static int cmp_begin(const void *a, const void *b) {
    const gp_st_tensor *x = *(const gp_st_tensor *const *)a, *y = *(const gp_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0) || d != floor(d) || d > 9007199254740992.0) return 0;
    *out = (uint64_t)d;
    return 1;
}

static gp_status parse_header(gp_st_file *f, const char *hdr, size_t n, gp_err *err) {
    const char *P = f->path;
    cJSON *root = NULL;
    if (gp_json_parse(hdr, n, P, &root, err)) return gp_errf(err, GP_EINPUT, "%s: header is not valid JSON", P);
    gp_status rc = GP_OK;
    if (!cJSON_IsObject(root)) {
        rc = gp_errf(err, GP_EINPUT, "%s: header is not a JSON object", P);
        goto done;
    }
    int cap = cJSON_GetArraySize(root);
    f->t = gp_calloc((size_t)(cap ? cap : 1), sizeof *f->t);
    f->index = gp_strmap_init((size_t)cap);
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        const char *name = it->string;
        if (strcmp(name, "__metadata__") == 0) {
            if (f->meta_keys) { /* a second one would be appended to arrays sized for the first */
                rc = gp_errf(err, GP_EINPUT, "%s: key \"__metadata__\" appears twice in the header", P);
                goto done;
            }
            if (!cJSON_IsObject(it)) {
                rc = gp_errf(err, GP_EINPUT, "%s: __metadata__ is not an object", P);
                goto done;
            }
            int nm = cJSON_GetArraySize(it);
            f->meta_keys = gp_calloc((size_t)nm, sizeof(char *));
            f->meta_vals = gp_calloc((size_t)nm, sizeof(char *));
            /* a repeated key has two values: gp_st_meta would read the first and a folder written
             * back (export.c) the last, so settings_hash and the like could differ between them */
            gp_strmap *keys = gp_strmap_init((size_t)nm);
            const cJSON *m;
            cJSON_ArrayForEach(m, it) {
                if (!cJSON_IsString(m)) {
                    rc = gp_errf(err, GP_EINPUT, "%s: __metadata__ value \"%s\" is not a string", P, m->string);
                    break;
                }
                if (!gp_strmap_put(keys, m->string, strlen(m->string), f->nmeta)) {
                    rc = gp_errf(err, GP_EINPUT, "%s: __metadata__ key \"%s\" appears twice", P, m->string);
                    break;
                }
                f->meta_keys[f->nmeta] = gp_strdup(m->string);
                f->meta_vals[f->nmeta] = gp_strdup(m->valuestring);
                f->nmeta++;
            }
            gp_strmap_free(keys);
            if (rc) goto done;
            continue;
        }
        gp_st_tensor *t = &f->t[f->n];
        t->name = gp_strdup(name);
        t->path = f->path;
        f->n++;
        if (!gp_strmap_put(f->index, name, strlen(name), f->n - 1)) {
            rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\" appears twice", P, name);
            goto done;
        }
        if (!cJSON_IsObject(it)) {
            rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\": entry is not an object", P, name);
            goto done;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2) {
            rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\": needs dtype, shape and data_offsets [begin, end]", P, name);
            goto done;
        }
        int d = gp_dtype_parse(dt->valuestring);
        if (d < 0) {
            rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\": unknown dtype \"%s\"", P, name, dt->valuestring);
            goto done;
        }
        t->dtype = (gp_dtype)d;
        t->ndim = cJSON_GetArraySize(sh);
        if (t->ndim > GP_ST_MAX_DIMS) {
            rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\": %d dimensions (at most %d)", P, name, t->ndim, GP_ST_MAX_DIMS);
            goto done;
        }
        t->numel = 1;
        for (int k = 0; k < t->ndim; k++) {
            uint64_t v;
            if (!json_u64(cJSON_GetArrayItem(sh, k), &v) || v > (1ull << 40)) {
                rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\": bad shape", P, name);
                goto done;
            }
            t->shape[k] = (int64_t)v;
            if (v && (uint64_t)t->numel > (1ull << 50) / v) {
                rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\": shape too large", P, name);
                goto done;
            }
            t->numel *= (int64_t)v;
        }
        if (!json_u64(cJSON_GetArrayItem(off, 0), &t->begin) || !json_u64(cJSON_GetArrayItem(off, 1), &t->end) ||
            t->end < t->begin) {
            rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\": bad data_offsets", P, name);
            goto done;
        }
        if (t->end > f->data_size) {
            rc = gp_errf(err, GP_EINPUT,
                         "%s: tensor \"%s\": data_offsets [%llu, %llu] past the end of the data (%llu bytes; "
                         "truncated file?)",
                         P, name, (unsigned long long)t->begin, (unsigned long long)t->end,
                         (unsigned long long)f->data_size);
            goto done;
        }
        uint64_t want = (uint64_t)t->numel * gp_dtype_size(t->dtype);
        if (t->end - t->begin != want) {
            rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\": %llu bytes for shape and dtype %s that need %llu", P,
                         name, (unsigned long long)(t->end - t->begin), gp_dtype_name(t->dtype),
                         (unsigned long long)want);
            goto done;
        }
        t->data = f->data + t->begin;
    }
    /* Overlapping byte ranges (duplicate names were refused above). */
    if (f->n > 1) {
        const gp_st_tensor **s = gp_malloc((size_t)f->n * sizeof *s);
        for (int i = 0; i < f->n; i++) s[i] = &f->t[i];
        qsort(s, (size_t)f->n, sizeof *s, cmp_begin);
        for (int i = 1; i < f->n; i++)
            if (s[i]->begin < s[i - 1]->end) {
                rc = gp_errf(err, GP_EINPUT, "%s: tensors \"%s\" and \"%s\" overlap", P, s[i - 1]->name, s[i]->name);
                break;
            }
        free(s);
    }
done:
    cJSON_Delete(root);
    return rc;
}

gp_status gp_st_open(const char *path, gp_st_file **out, gp_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return gp_errf(err, GP_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return gp_errf(err, GP_EINPUT, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        return gp_errf(err, GP_EINPUT, "%s: truncated safetensors file (%zu bytes)", path, size);
    }
    uint8_t *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return gp_errf(err, GP_EINPUT, "%s: cannot map: %s", path, strerror(errno));

    gp_st_file *f = gp_calloc(1, sizeof *f);
    f->path = gp_strdup(path);
    f->map = map;
    f->map_size = size;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | map[i];
    gp_status rc;
    if (n > size - 8) {
        rc = gp_errf(err, GP_EINPUT, "%s: header length %llu exceeds the file (%zu bytes; truncated file?)", path,
                     (unsigned long long)n, size);
    } else if (n > ST_MAX_HEADER) {
        rc = gp_errf(err, GP_EINPUT, "%s: header length %llu is over the 100 MB limit", path, (unsigned long long)n);
    } else if (n < 2 || map[8] != '{') {
        rc = gp_errf(err, GP_EINPUT, "%s: header does not start with '{' (not a safetensors file?)", path);
    } else {
        f->data = map + 8 + n;
        f->data_size = size - 8 - n;
        rc = parse_header(f, (const char *)map + 8, (size_t)n, err);
    }
    if (rc) {
        gp_st_close(f);
        return rc;
    }
    *out = f;
    return GP_OK;
}

void gp_st_close(gp_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free((char *)f->t[i].name);
    free(f->t);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    if (f->index) gp_strmap_free(f->index);
    if (f->map) munmap(f->map, f->map_size);
    free(f->path);
    free(f);
}

int gp_st_count(const gp_st_file *f) { return f->n; }
const gp_st_tensor *gp_st_at(const gp_st_file *f, int i) { return &f->t[i]; }

const gp_st_tensor *gp_st_find(const gp_st_file *f, const char *name) {
    int32_t i;
    return gp_strmap_get(f->index, name, strlen(name), &i) ? &f->t[i] : NULL;
}

const char *gp_st_meta(const gp_st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

int gp_st_meta_count(const gp_st_file *f) { return f->nmeta; }

void gp_st_meta_at(const gp_st_file *f, int i, const char **key, const char **value) {
    *key = f->meta_keys[i];
    *value = f->meta_vals[i];
}

/* The mapped pages of a tensor already converted: dropped, so that loading a model holds the
 * float32 copy and one tensor's pages rather than the copy and every file (8·P bytes at the
 * peak for a float32 model, 32 GB for a 4B one). The mapping is private and never written, so
 * a later read of these bytes (a neighbour sharing a page, the header) faults them back in from
 * the file: dropping is always safe, only the RSS changes. */
static void release_pages(const uint8_t *p, size_t bytes) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + bytes) & ~(page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

gp_status gp_st_tensor_to_f32(const gp_st_tensor *t, float *dst, gp_err *err) {
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case GP_DT_F32:
        memcpy(dst, p, n * 4); /* the format is little-endian, as is every host we build for */
        release_pages(p, n * 4);
        return GP_OK;
    case GP_DT_F16:
        for (size_t i = 0; i < n; i++) dst[i] = gp_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        release_pages(p, n * 2);
        return GP_OK;
    case GP_DT_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = gp_bf16_value((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        release_pages(p, n * 2);
        return GP_OK;
    default:
        return gp_errf(err, GP_EINPUT, "%s: tensor \"%s\": dtype %s is not a float type (F32, F16 or BF16)",
                       t->path, t->name, gp_dtype_name(t->dtype));
    }
}

gp_status gp_st_tensor_to_u16(const gp_st_tensor *t, uint16_t *dst, gp_err *err) {
    if (t->dtype != GP_DT_F16 && t->dtype != GP_DT_BF16)
        return gp_errf(err, GP_EINPUT, "%s: tensor \"%s\": dtype %s is not F16 or BF16", t->path, t->name,
                       gp_dtype_name(t->dtype));
    const size_t n = (size_t)t->numel;
    memcpy(dst, t->data, n * 2); /* little-endian, as gp_st_tensor_to_f32 */
    release_pages(t->data, n * 2);
    return GP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* folder: single file or shards */

struct gp_st_set {
    int n;
    gp_st_file **files;
    char **names;
};

static void set_add(gp_st_set *s, gp_st_file *f, const char *name) {
    s->files = gp_realloc(s->files, (size_t)(s->n + 1) * sizeof *s->files);
    s->names = gp_realloc(s->names, (size_t)(s->n + 1) * sizeof *s->names);
    s->files[s->n] = f;
    s->names[s->n] = gp_strdup(name);
    s->n++;
}

static gp_status open_shard(gp_st_set *s, const char *dir, const char *idx_path, const char *file, gp_err *err) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], file) == 0) return GP_OK;
    if (strchr(file, '/') || strcmp(file, "..") == 0 || file[0] == '\0')
        return gp_errf(err, GP_EINPUT, "%s: shard name \"%s\" is not a plain file name", idx_path, file);
    char *p = gp_path_join(dir, file);
    gp_st_file *f;
    gp_status rc = gp_st_open(p, &f, err);
    free(p);
    if (rc) return rc;
    set_add(s, f, file);
    return GP_OK;
}

gp_status gp_st_set_open(const char *dir, gp_st_set **out, gp_err *err) {
    *out = NULL;
    gp_st_set *s = gp_calloc(1, sizeof *s);
    char *idx = gp_path_join(dir, "model.safetensors.index.json");
    char *single = gp_path_join(dir, "model.safetensors");
    gp_status rc = GP_OK;
    cJSON *root = NULL;
    if (gp_file_exists(idx)) {
        if ((rc = gp_json_load(idx, &root, err))) goto done;
        const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
        if (!cJSON_IsObject(wm)) {
            rc = gp_errf(err, GP_EINPUT, "%s: missing key \"weight_map\"", idx);
            goto done;
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, wm) {
            if (!cJSON_IsString(e)) {
                rc = gp_errf(err, GP_EINPUT, "%s: weight_map entry \"%s\" is not a file name", idx, e->string);
                goto done;
            }
            if ((rc = open_shard(s, dir, idx, e->valuestring, err))) goto done;
        }
        /* Every mapped tensor must be in the shard the index names. */
        cJSON_ArrayForEach(e, wm) {
            for (int i = 0; i < s->n; i++)
                if (strcmp(s->names[i], e->valuestring) == 0 && !gp_st_find(s->files[i], e->string)) {
                    rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\" is listed for %s but not in it", idx, e->string,
                                 e->valuestring);
                    goto done;
                }
        }
    } else if (gp_file_exists(single)) {
        gp_st_file *f;
        if ((rc = gp_st_open(single, &f, err))) goto done;
        set_add(s, f, "model.safetensors");
    } else {
        /* a PyTorch pickle is never read (loading one runs code): say what was found and how to convert it */
        static const char *const pickles[] = {"pytorch_model.bin", "pytorch_model.bin.index.json"};
        const char *found = NULL;
        for (size_t k = 0; k < 2 && !found; k++) {
            char *pk = gp_path_join(dir, pickles[k]);
            if (gp_file_exists(pk)) found = pickles[k];
            free(pk);
        }
        if (found)
            rc = gp_errf(err, GP_EINPUT,
                         "%s: no model.safetensors or model.safetensors.index.json, only %s (PyTorch pickle weights, "
                         "which gaprune does not read); convert the folder with: python3 -c \"from transformers import "
                         "AutoModel; d='%s'; AutoModel.from_pretrained(d).save_pretrained(d, "
                         "safe_serialization=True)\"",
                         dir, found, dir);
        else rc = gp_errf(err, GP_EINPUT, "%s: no model.safetensors or model.safetensors.index.json", dir);
        goto done;
    }
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < gp_st_count(s->files[i]); k++)
            for (int j = i + 1; j < s->n; j++)
                if (gp_st_find(s->files[j], gp_st_at(s->files[i], k)->name)) {
                    rc = gp_errf(err, GP_EINPUT, "%s: tensor \"%s\" is in both %s and %s", dir,
                                 gp_st_at(s->files[i], k)->name, s->names[i], s->names[j]);
                    goto done;
                }
done:
    cJSON_Delete(root);
    free(idx);
    free(single);
    if (rc) {
        gp_st_set_close(s);
        return rc;
    }
    *out = s;
    return GP_OK;
}

void gp_st_set_close(gp_st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        gp_st_close(s->files[i]);
        free(s->names[i]);
    }
    free(s->files);
    free(s->names);
    free(s);
}

const gp_st_tensor *gp_st_set_find(const gp_st_set *s, const char *name) {
    for (int i = 0; i < s->n; i++) {
        const gp_st_tensor *t = gp_st_find(s->files[i], name);
        if (t) return t;
    }
    return NULL;
}

int gp_st_set_nfiles(const gp_st_set *s) { return s->n; }
const gp_st_file *gp_st_set_file(const gp_st_set *s, int i) { return s->files[i]; }
const char *gp_st_set_file_name(const gp_st_set *s, int i) { return s->names[i]; }

/* ------------------------------------------------------------------------------------------ */
/* writer */

typedef struct {
    char *name;
    gp_dtype dtype;
    int ndim;
    int64_t shape[GP_ST_MAX_DIMS];
    int64_t numel;
    const float *f32; /* converted on write, or */
    const void *raw;  /* written as is */
} wtensor;

struct gp_st_writer {
    int n, nmeta;
    wtensor *t;
    char **mkeys, **mvals;
};

gp_st_writer *gp_st_writer_init(void) { return gp_calloc(1, sizeof(gp_st_writer)); }

void gp_st_writer_free(gp_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    for (int i = 0; i < w->nmeta; i++) {
        free(w->mkeys[i]);
        free(w->mvals[i]);
    }
    free(w->t);
    free(w->mkeys);
    free(w->mvals);
    free(w);
}

void gp_st_writer_meta(gp_st_writer *w, const char *key, const char *value) {
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->mkeys[i], key) == 0) {
            free(w->mvals[i]);
            w->mvals[i] = gp_strdup(value);
            return;
        }
    w->mkeys = gp_realloc(w->mkeys, (size_t)(w->nmeta + 1) * sizeof(char *));
    w->mvals = gp_realloc(w->mvals, (size_t)(w->nmeta + 1) * sizeof(char *));
    w->mkeys[w->nmeta] = gp_strdup(key);
    w->mvals[w->nmeta] = gp_strdup(value);
    w->nmeta++;
}

static wtensor *writer_add(gp_st_writer *w, const char *name, gp_dtype dtype, int ndim, const int64_t *shape) {
    GP_CHECK(ndim >= 0 && ndim <= GP_ST_MAX_DIMS, "tensor %s: %d dims", name, ndim);
    w->t = gp_realloc(w->t, (size_t)(w->n + 1) * sizeof *w->t);
    wtensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    t->name = gp_strdup(name);
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = 1;
    for (int k = 0; k < ndim; k++) {
        t->shape[k] = shape[k];
        t->numel *= shape[k];
    }
    return t;
}

void gp_st_writer_add_f32(gp_st_writer *w, const char *name, gp_dtype dtype, int ndim, const int64_t *shape,
                          const float *data) {
    GP_CHECK(dtype == GP_DT_F32 || dtype == GP_DT_F16 || dtype == GP_DT_BF16, "tensor %s: cannot store floats as %s",
             name, gp_dtype_name(dtype));
    writer_add(w, name, dtype, ndim, shape)->f32 = data;
}

void gp_st_writer_add_raw(gp_st_writer *w, const char *name, gp_dtype dtype, int ndim, const int64_t *shape,
                          const void *bytes) {
    writer_add(w, name, dtype, ndim, shape)->raw = bytes;
}

/* Appends a JSON string literal (quoted, escaped) using cJSON's printer. */
static void json_str(char **buf, size_t *len, size_t *cap, const char *s);

static void buf_put(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap) *cap = *cap ? *cap * 2 : 4096;
        *buf = gp_realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void json_str(char **buf, size_t *len, size_t *cap, const char *s) {
    cJSON *j = cJSON_CreateString(s);
    char *p = cJSON_PrintUnformatted(j);
    GP_CHECK(p != NULL, "cJSON print failed");
    buf_put(buf, len, cap, p, strlen(p));
    cJSON_free(p);
    cJSON_Delete(j);
}

static int write_tensor_data(FILE *f, const wtensor *t) {
    size_t n = (size_t)t->numel, es = gp_dtype_size(t->dtype);
    if (t->raw || t->dtype == GP_DT_F32) {
        const void *p = t->raw ? t->raw : (const void *)t->f32;
        return fwrite(p, es, n, f) == n ? 0 : -1;
    }
    enum { CHUNK = 1 << 15 };
    uint8_t tmp[2 * CHUNK];
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        for (size_t k = 0; k < m; k++) {
            uint16_t h = t->dtype == GP_DT_F16 ? gp_f32_to_f16(t->f32[i + k]) : gp_bf16_round(t->f32[i + k]);
            tmp[2 * k] = (uint8_t)(h & 0xff);
            tmp[2 * k + 1] = (uint8_t)(h >> 8);
        }
        if (fwrite(tmp, 2, m, f) != m) return -1;
    }
    return 0;
}

gp_status gp_st_writer_write(gp_st_writer *w, const char *path, gp_err *err) {
    /* transformers refuses safetensors whose metadata lacks format=pt. */
    int has_format = 0;
    for (int i = 0; i < w->nmeta; i++) has_format |= strcmp(w->mkeys[i], "format") == 0;
    if (!has_format) gp_st_writer_meta(w, "format", "pt");

    char *h = NULL;
    size_t len = 0, cap = 0;
    char num[128];
    buf_put(&h, &len, &cap, "{\"__metadata__\":{", 17);
    for (int i = 0; i < w->nmeta; i++) {
        if (i) buf_put(&h, &len, &cap, ",", 1);
        json_str(&h, &len, &cap, w->mkeys[i]);
        buf_put(&h, &len, &cap, ":", 1);
        json_str(&h, &len, &cap, w->mvals[i]);
    }
    buf_put(&h, &len, &cap, "}", 1);
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const wtensor *t = &w->t[i];
        buf_put(&h, &len, &cap, ",", 1);
        json_str(&h, &len, &cap, t->name);
        int k = snprintf(num, sizeof num, ":{\"dtype\":\"%s\",\"shape\":[", gp_dtype_name(t->dtype));
        buf_put(&h, &len, &cap, num, (size_t)k);
        for (int d = 0; d < t->ndim; d++) {
            k = snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            buf_put(&h, &len, &cap, num, (size_t)k);
        }
        uint64_t nb = (uint64_t)t->numel * gp_dtype_size(t->dtype);
        k = snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                     (unsigned long long)(off + nb));
        buf_put(&h, &len, &cap, num, (size_t)k);
        off += nb;
    }
    buf_put(&h, &len, &cap, "}", 1);
    while (len % 8) buf_put(&h, &len, &cap, " ", 1); /* keeps the data 8-byte aligned */

    gp_status rc = GP_EINPUT;
    FILE *f = gp_file_create(path, err);
    if (f) {
        uint8_t n8[8];
        for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)len >> (8 * i));
        int bad = fwrite(n8, 1, 8, f) != 8 || fwrite(h, 1, len, f) != len;
        for (int i = 0; i < w->n && !bad; i++) bad = write_tensor_data(f, &w->t[i]) != 0;
        rc = gp_file_commit(f, path, err); /* a failed fwrite left the stream's error flag set */
    }
    free(h);
    return rc;
}
