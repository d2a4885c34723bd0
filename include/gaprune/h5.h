/*
 * h5.h — HDF5 helpers for self-describing outputs.
 *
 * Every dataset we write carries `description` and `units` attributes; files carry provenance
 * attributes and a `complete` attribute written last. Files are created as `<path>.tmp` and
 * renamed when closed (gp_h5_close_commit), so a killed job never leaves a half-written file
 * under its final name. Float data is stored little-endian IEEE, chunked by rows (about 1 MiB
 * per chunk) and deflate-compressed.
 *
 * Every call that fails is fatal (GP_H5): the inputs were validated before we write.
 *
 * Usage:
 *     hid_t f = gp_h5_create_tmp(path);                       // serial, this rank only
 *     gp_h5_attr_str(f, "format", "gaprune-embeddings");
 *     hsize_t dims[2] = {n, d};
 *     hid_t ds = gp_h5_dataset_f32(f, "embeddings", 2, dims, "sentence embeddings", "1");
 *     gp_h5_write_rows_f32(ds, 0, n, d, data);
 *     H5Dclose(ds);
 *     gp_h5_attr_int(f, "complete", 1);
 *     gp_h5_close_commit(f, path, &err);
 */
#pragma once

#include <hdf5.h>
#include <stdint.h>

#include "gaprune/check.h"

/* Root attributes every output file carries; the schema headers (stats_file.h, mask_file.h,
 * sample_file.h, retrain_file.h) name the rest of each file. */
#define GP_H5_ATTR_FORMAT "format"                 /* the file's format name, e.g. "gaprune-mask" */
#define GP_H5_ATTR_FORMAT_VERSION "format_version" /* integer, raised when the layout changes */
#define GP_H5_ATTR_DESCRIPTION "description"       /* one sentence on what the file holds */
#define GP_H5_ATTR_COMPLETE "complete"             /* integer 1, written last: the file is whole */

hid_t gp_h5_create_tmp(const char *path);
/* Reopens <path>.tmp for writing, serially (to finish a file written in parallel, h5par.h). */
hid_t gp_h5_open_tmp(const char *path);
/* Closes the file and renames <path>.tmp to <path>. */
gp_status gp_h5_close_commit(hid_t file, const char *path, gp_err *err);

void gp_h5_attr_str(hid_t obj, const char *name, const char *value);
void gp_h5_attr_int(hid_t obj, const char *name, int64_t value);
void gp_h5_attr_double(hid_t obj, const char *name, double value);
/* Reads a scalar attribute; GP_EINPUT (not fatal) when it is missing, of another kind or holds
 * more than one value. */
gp_status gp_h5_read_attr_int(hid_t obj, const char *name, int64_t *out);
gp_status gp_h5_read_attr_double(hid_t obj, const char *name, double *out);
/* malloc'd string, or NULL when missing or not one fixed-length string. */
char *gp_h5_read_attr_str(hid_t obj, const char *name);
/* The elements of a dataset when the file stores all of them, else -1: a reader that sizes its
 * buffer by a dataset it has no expected size for (names, tables) asks this first, as a damaged
 * file can claim any extent and HDF5 reads chunks that were never written as the fill value. */
hssize_t gp_h5_stored_points(hid_t dset);
/* Opens a file read-only without HDF5's error stack printing; < 0 when it cannot. */
hid_t gp_h5_open_quiet(const char *path);
/* A whole float32 dataset into data (n elements expected); GP_EINPUT when absent or wrong size. */
gp_status gp_h5_read_f32(hid_t loc, const char *name, float *data, size_t n);
/* Rows [row0, row0 + nrows) of a float32 dataset of rows × cols elements (2-D, or 1-D of
 * rows·cols) into data: a rank's slice of a tensor, read through the chunks that hold it.
 * GP_EINPUT when absent or of another size. */
gp_status gp_h5_read_rows_f32(hid_t loc, const char *name, int64_t rows, int64_t cols, int64_t row0, int64_t nrows,
                              float *data);
/* A contiguous, uncompressed float32 dataset written at once (checkpoints: speed over size). */
void gp_h5_write_flat_f32(hid_t loc, const char *name, const float *data, size_t n, const char *description,
                          const char *units);
/* The same for float64 (accumulators kept in double). */
gp_status gp_h5_read_f64(hid_t loc, const char *name, double *data, size_t n);
/* A whole integer dataset as int64 (n elements expected), as gp_h5_read_f32. */
gp_status gp_h5_read_i64(hid_t loc, const char *name, int64_t *data, size_t n);
void gp_h5_write_flat_f64(hid_t loc, const char *name, const double *data, size_t n, const char *description,
                          const char *units);

/* Sets description and units. */
void gp_h5_describe(hid_t obj, const char *description, const char *units);

/* A chunked (about 1 MiB of whole rows), shuffled and deflated dataset of rank 1 or 2 with
 * description and units; returns the open dataset. */
hid_t gp_h5_dataset(hid_t loc, const char *name, hid_t file_type, int ndim, const hsize_t *dims,
                    const char *description, const char *units);
/* Writes rows [row0, row0 + nrows) of a 2-D (or 1-D with cols = 1) dataset from memory of mem_type. */
void gp_h5_write_rows(hid_t dset, hid_t mem_type, hsize_t row0, hsize_t nrows, hsize_t cols, const void *data);
/* The float32 forms of the two above. */
hid_t gp_h5_dataset_f32(hid_t loc, const char *name, int ndim, const hsize_t *dims, const char *description,
                        const char *units);
/* Writes rows [row0, row0 + nrows) of a 2-D (or 1-D with cols = 1) float dataset. */
void gp_h5_write_rows_f32(hid_t dset, hsize_t row0, hsize_t nrows, hsize_t cols, const float *data);
/* A 1-D dataset of UTF-8 variable-length strings. */
void gp_h5_write_strings(hid_t loc, const char *name, const char *const *s, hsize_t n, const char *description);
