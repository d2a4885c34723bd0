/*
 * h5.h — HDF5 helpers for self-describing outputs.
 *
 * Every dataset we write carries `description` and `units` attributes; files carry provenance
 * attributes and a `complete` attribute written last. Files are created as `<path>.tmp` and
 * renamed when closed (gp_h5_close_commit), so a killed job never leaves a half-written file
 * under its final name. Float data is stored little-endian IEEE, chunked by rows (about 1 MiB
 * per chunk) and deflate-compressed.
 *
 * A call that fails is fatal (GP_H5): the inputs were validated before we write. The exception
 * is the disk: when HDF5's file driver reports that the system refused a write (a full disk, an
 * I/O error, a file that cannot be created), the failure is recorded instead, the writer carries
 * on with the calls it would have made (so ranks that wait on it in a collective are not left
 * behind), and the file's close (gp_h5_close_commit, or gp_h5_io_status for closes done
 * elsewhere) removes the .tmp and returns GP_EINPUT naming the file: a run stopped by a full disk
 * ends with exit 2 and keeps every file it had completed.
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
#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"

/* For HDF5 calls returning hid_t or herr_t: negative means failure, fatal unless a write of the
 * file driver failed (gp_h5_io_failed): then the result is passed on for the commit to report. */
#define GP_H5(expr, ...)                                                                          \
    __extension__({                                                                               \
        __typeof__(expr) gp_h5_rc_ = (expr);                                                      \
        if (gp_h5_rc_ < 0 && !gp_h5_io_failed())                                                  \
            gp_fatal(1, __FILE__, __LINE__, __func__, "HDF5: " __VA_ARGS__);                      \
        gp_h5_rc_;                                                                                \
    })

/* Whether the system refused one of HDF5's writes (or the creation of a file) since the last
 * gp_h5_io_status; what it said is kept for that call's message. */
bool gp_h5_io_failed(void);
/* GP_EINPUT with gp_write_error's message naming path when a write failed since the last call
 * (and forgets it), else GP_OK. The caller removes its .tmp. */
gp_status gp_h5_io_status(const char *path, gp_err *err);
/* Called by the functions that create or reopen a file to write (here and in h5par.h): from then
 * on HDF5's errors come to gaprune first, which records the refused writes and prints the others
 * as HDF5 would. */
void gp_h5_watch_writes(void);
/* A file access property list with gaprune's POSIX driver, whose refused writes
 * gp_h5_io_status reports (registered once; the list is kept: do not close it). */
hid_t gp_h5_write_fapl(void);

/* Root attributes every output file carries; the schema headers (stats_file.h, mask_file.h,
 * sample_file.h, retrain_file.h) name the rest of each file. */
#define GP_H5_ATTR_FORMAT "format"                 /* the file's format name, e.g. "gaprune-mask" */
#define GP_H5_ATTR_FORMAT_VERSION "format_version" /* integer, raised when the layout changes */
#define GP_H5_ATTR_DESCRIPTION "description"       /* one sentence on what the file holds */
#define GP_H5_ATTR_COMPLETE "complete"             /* integer 1, written last: the file is whole */

/* < 0 (recorded, as a failed write) when the file cannot be created. */
hid_t gp_h5_create_tmp(const char *path);
/* Reopens <path>.tmp for writing, serially (to finish a file written in parallel, h5par.h); < 0
 * (recorded as a failed write: one of the parallel writes did not land) when it cannot. */
hid_t gp_h5_open_tmp(const char *path);
/* Closes the file and renames <path>.tmp to <path>; when a write of it failed (file < 0 after a
 * failed create included), removes <path>.tmp and returns GP_EINPUT naming path. */
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
/* The same for any type: n elements of mem_type from data, stored as file_type. */
void gp_h5_write_flat(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, const void *data, size_t n,
                      const char *description, const char *units);

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
