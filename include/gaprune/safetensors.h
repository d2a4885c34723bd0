/*
 * safetensors.h — reading and writing Hugging Face safetensors files.
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value"}}
 * then the data buffer; offsets are relative to the buffer, end exclusive, row-major,
 * little-endian. A file is mapped read-only and its header fully validated before any offset is
 * trusted: header inside the file, every dtype known, every byte range inside the buffer and of
 * the size shape×dtype implies, no two ranges overlapping. Each failure is GP_EINPUT naming
 * the file and the tensor.
 *
 * A model folder holds either model.safetensors or shards listed by
 * model.safetensors.index.json ({"weight_map": {name: file}}); gp_st_set opens either.
 *
 * Usage:
 *     gp_st_set *s; gp_err err = {0};
 *     if (gp_st_set_open(dir, &s, &err)) ...;
 *     const gp_st_tensor *t = gp_st_set_find(s, "embeddings.word_embeddings.weight");
 *     if (t && gp_st_tensor_to_f32(t, dst, &err) == GP_OK) ...;
 *     gp_st_set_close(s);
 *
 *     gp_st_writer *w = gp_st_writer_init();
 *     gp_st_writer_meta(w, "format", "pt");
 *     gp_st_writer_add_f32(w, "w", GP_DT_BF16, 2, shape, data);   // converts on write
 *     gp_st_writer_write(w, "out/model.safetensors", &err);        // via .tmp + rename
 *     gp_st_writer_free(w);
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gaprune/check.h"

typedef enum {
    GP_DT_BOOL,
    GP_DT_U8,
    GP_DT_I8,
    GP_DT_U16,
    GP_DT_I16,
    GP_DT_F16,
    GP_DT_BF16,
    GP_DT_U32,
    GP_DT_I32,
    GP_DT_F32,
    GP_DT_F64,
    GP_DT_U64,
    GP_DT_I64,
    GP_DT_F8_E4M3,
    GP_DT_F8_E5M2,
    GP_DT_COUNT
} gp_dtype;

#define GP_ST_MAX_DIMS 8

typedef struct {
    const char *name;
    gp_dtype dtype;
    int ndim;
    int64_t shape[GP_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;  /* byte range within the data buffer */
    const uint8_t *data;  /* mapped bytes [end - begin] */
    const char *path;     /* file it lives in */
} gp_st_tensor;

const char *gp_dtype_name(gp_dtype t);
/* Returns -1 for an unknown name. */
int gp_dtype_parse(const char *name);
size_t gp_dtype_size(gp_dtype t);

/* IEEE half and bfloat16 conversions (round to nearest even on the way down). */
float gp_f16_to_f32(uint16_t h);
uint16_t gp_f32_to_f16(float f);

/* One file. */
typedef struct gp_st_file gp_st_file;
gp_status gp_st_open(const char *path, gp_st_file **out, gp_err *err);
void gp_st_close(gp_st_file *f);
int gp_st_count(const gp_st_file *f);
const gp_st_tensor *gp_st_at(const gp_st_file *f, int i);
const gp_st_tensor *gp_st_find(const gp_st_file *f, const char *name);
/* __metadata__ value, or NULL. */
const char *gp_st_meta(const gp_st_file *f, const char *key);
int gp_st_meta_count(const gp_st_file *f);
void gp_st_meta_at(const gp_st_file *f, int i, const char **key, const char **value);

/* Converts F32, F16 or BF16 data to float32 (dst holds t->numel floats); any other dtype is
 * GP_EINPUT naming the tensor. The tensor's mapped pages are then released (read again from
 * the file if touched), so a model being loaded costs its float32 copy and one tensor. */
gp_status gp_st_tensor_to_f32(const gp_st_tensor *t, float *dst, gp_err *err);
/* Copies F16 or BF16 data as it is (dst holds t->numel values; any other dtype is GP_EINPUT
 * naming the tensor) and releases the mapped pages the same way. */
gp_status gp_st_tensor_to_u16(const gp_st_tensor *t, uint16_t *dst, gp_err *err);

/* A model folder: one file or the shards of model.safetensors.index.json. */
typedef struct gp_st_set gp_st_set;
gp_status gp_st_set_open(const char *dir, gp_st_set **out, gp_err *err);
void gp_st_set_close(gp_st_set *s);
const gp_st_tensor *gp_st_set_find(const gp_st_set *s, const char *name);
int gp_st_set_nfiles(const gp_st_set *s);
const gp_st_file *gp_st_set_file(const gp_st_set *s, int i);
/* File name (relative to the folder) of shard i. */
const char *gp_st_set_file_name(const gp_st_set *s, int i);

/* Writer. Data pointers are borrowed until gp_st_writer_write returns. */
typedef struct gp_st_writer gp_st_writer;
gp_st_writer *gp_st_writer_init(void);
void gp_st_writer_free(gp_st_writer *w);
void gp_st_writer_meta(gp_st_writer *w, const char *key, const char *value);
/* Float32 data, stored as dtype (F32, F16 or BF16). */
void gp_st_writer_add_f32(gp_st_writer *w, const char *name, gp_dtype dtype, int ndim,
                          const int64_t *shape, const float *data);
/* Raw bytes in the file's dtype (nbytes must equal numel * size). */
void gp_st_writer_add_raw(gp_st_writer *w, const char *name, gp_dtype dtype, int ndim,
                          const int64_t *shape, const void *bytes);
gp_status gp_st_writer_write(gp_st_writer *w, const char *path, gp_err *err);
