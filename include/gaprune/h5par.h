/*
 * h5par.h — writing one HDF5 file from every rank at once with parallel HDF5 (MPI-IO).
 *
 * Deflate is what makes a statistics file slow to write (about 45 MB/s per core here, against
 * 600 MB/s for raw bytes), and the arrays are the size of the model. So every rank opens the
 * file with the MPI-IO driver and writes its own contiguous rows of each dataset in one
 * collective H5Dwrite; HDF5 (1.10.2 and later) compresses each chunk on the rank that owns it
 * and places the chunks. No rank ever holds or receives more than its own rows. The datasets
 * are ordinary chunked, byte-shuffled, deflated float32 (whole rows, about 1 MiB per chunk,
 * deflate level 1): h5dump, h5py and gaprune read the file through the usual filter pipeline.
 * A lone rank opens the file with gaprune's POSIX driver (h5.h) instead and deflates its chunks with its
 * OpenMP threads, handing HDF5 the finished chunks (parallel HDF5 takes no such direct chunk
 * writes; with several ranks, the ranks deflate side by side). The file is the same.
 *
 * Parallel HDF5 requires every rank to make the same metadata calls (files, groups, datasets,
 * attributes) with the same arguments, in the same order. So every function here is
 * collective, and the attribute writers write rank 0's value everywhere (a clock, or a string
 * only rank 0 computed, cannot then make the ranks disagree). Row counts and offsets are 64-bit
 * throughout: datasets beyond 2^31 elements, and slices of any size, work.
 *
 * Parallel HDF5 cannot write variable-length strings; a file that has them is finished by
 * rank 0 alone after gp_h5par_close (gp_h5_open_tmp, then gp_h5_close_commit), which is also
 * where `complete` is written last.
 *
 * A write the system refuses (a full disk) is worse here than in a serial file: it fails on the
 * ranks whose MPI-IO call wrote, not on all, and parallel HDF5 then leaves the ranks in different
 * collectives (a hang in the close). So gp_h5par_create_tmp first makes sure the file fits: rank 0
 * allocates the size the caller gives (gp_h5par_bytes: the data uncompressed and the metadata)
 * and releases it (gp_check_room); a full disk is then an agreed GP_EINPUT before
 * anything is written. Should a write fail all the same (the disk filled meanwhile, an I/O
 * error), the ranks find it at their agreement after each dataset and stop writing; the close
 * then ends the job at once with exit 2 and the message naming the file (MPI_Abort: the file
 * cannot be closed safely), the .tmp removed and every other file as it was.
 *
 * Usage (every rank):
 *     hid_t f;
 *     rc = gp_h5par_create_tmp(path, gp_h5par_bytes(it, 1), &f, &err);   // <path>.tmp, agreed
 *     if (rc) return rc;                                // no room: exit 2, nothing written
 *     gp_h5par_provenance(f, "gaprune-stats", 1);
 *     gp_h5par_attr_int(f, "seed", seed);
 *     hsize_t r0, nr;
 *     gp_h5par_share(rows, &r0, &nr);                  // this rank's block of rows
 *     gp_h5par_item it[] = {{"domain/fisher/w", 2, {rows, cols}, "Fisher", "1", data + r0 * cols, r0, nr}};
 *     gp_h5par_write_f32(f, it, 1);
 *     gp_h5par_close(f, path, &err);
 *     if (rank == 0) {                                 // the serial tail, then the rename
 *         hid_t g = gp_h5_open_tmp(path);
 *         gp_h5_attr_int(g, "complete", 1);
 *         rc = gp_h5_close_commit(g, path, &err);
 *     }
 */
#pragma once

#include <hdf5.h>
#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"

typedef struct {
    const char *name;                 /* dataset path; intermediate groups are created */
    int ndim;                         /* 1 or 2 */
    hsize_t dims[2];                  /* the whole dataset's shape (dims[1] unused when 1-D) */
    const char *description, *units;  /* the dataset's attributes */
    const float *data;                /* this rank's rows only, row-major: nrows × dims[1] floats */
    hsize_t row0, nrows;              /* which rows of the dataset data holds; nrows may be 0 */
    bool raw;                         /* chunked without shuffle and deflate: for data that does
                                       * not compress (weights, AdamW moments), where deflate
                                       * would only cost the time */
} gp_h5par_item;

/* Collective: when a file of bytes (gp_h5par_bytes of everything to be written) fits at path,
 * every rank opens <path>.tmp, created or truncated, with the MPI-IO driver (a lone rank: the
 * POSIX driver of h5.h), into *file. Else,
 * or when it cannot be created, GP_EINPUT on every rank (agreed, printed once) and no file. */
gp_status gp_h5par_create_tmp(const char *path, uint64_t bytes, hid_t *file, gp_err *err);
/* The bytes a file of items[0..n) takes at most: their whole datasets uncompressed (the bound
 * when they are deflated), their metadata and the file's. */
uint64_t gp_h5par_bytes(const gp_h5par_item *items, int n);
/* Collective: closes the file (made by gp_h5par_create_tmp(path)) on every rank; when it returns,
 * <path>.tmp is whole on disk for any rank to reopen serially. When a write failed on any rank,
 * the job ends here instead, with exit 2 and err's message (see above). Every object opened in
 * the file must be closed first. */
void gp_h5par_close(hid_t file, const char *path, gp_err *err);

/* Rank 0's value, written as the attribute `name` of obj by every rank (as h5.h's forms). */
void gp_h5par_attr_str(hid_t obj, const char *name, const char *value);
void gp_h5par_attr_int(hid_t obj, const char *name, int64_t value);
void gp_h5par_attr_double(hid_t obj, const char *name, double value);
/* gp_provenance_write with rank 0's command line and clock. */
void gp_h5par_provenance(hid_t file, const char *format, int format_version);

/* This rank's contiguous block of n rows: [n·r/P, n·(r+1)/P) (DESIGN §4). */
void gp_h5par_share(hsize_t n, hsize_t *row0, hsize_t *nrows);

/* Creates items[0..n) (the same n, names, shapes and descriptions on every rank) as chunked,
 * shuffled and deflated (unless raw) float32 datasets and writes each rank's rows of each. Rows no rank
 * writes read as 0. */
void gp_h5par_write_f32(hid_t file, const gp_h5par_item *items, int n);
