/*
 * h5par.h — writing large float datasets with the compression spread over the ranks.
 *
 * Deflate is what makes a statistics file slow to write (about 45 MB/s per core here, against
 * 600 MB/s for raw bytes). Every rank already holds the data after the allreduce, so each
 * compresses its share of the chunks (byte shuffle + deflate, exactly HDF5's own filters) and
 * sends them to rank 0, which stores them with H5Dwrite_chunk. The file is an ordinary HDF5
 * file: h5dump, h5py and gaprune read it through the usual filter pipeline.
 *
 * Usage (collective; `file` is rank 0's open file, -1 elsewhere):
 *     gp_h5par_item it[] = {{"domain/fisher/w", 2, {rows, cols}, data, "Fisher", "1"}};
 *     gp_h5par_write_f32(file, it, 1);
 */
#pragma once

#include <hdf5.h>

typedef struct {
    const char *name; /* dataset path; intermediate groups are created */
    int ndim;         /* 1 or 2 */
    hsize_t dims[2];
    const float *data; /* the whole array, on every rank */
    const char *description, *units;
} gp_h5par_item;

void gp_h5par_write_f32(hid_t file, const gp_h5par_item *items, int n);
