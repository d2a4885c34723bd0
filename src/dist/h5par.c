/* h5par.c — chunks compressed by every rank, written by rank 0 (see h5par.h). */
#include "gaprune/h5par.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gaprune/check.h"
#include "gaprune/h5.h"
#include "gaprune/log.h"

#define CHUNK_ELEMS (1u << 18) /* 1 MiB of floats */
#define BATCH_BYTES ((size_t)64 << 20)

typedef struct {
    int item;
    hsize_t row0, rows; /* rows of this chunk inside the dataset (rows < rpc at the edge) */
} chunk;

static hsize_t rows_per_chunk(const gp_h5par_item *it) {
    hsize_t cols = it->ndim == 2 ? it->dims[1] : 1;
    hsize_t r = cols ? CHUNK_ELEMS / cols : 1;
    if (r < 1) r = 1;
    if (r > it->dims[0]) r = it->dims[0];
    return r ? r : 1;
}

/* Byte shuffle (HDF5's H5Z_SHUFFLE for 4-byte elements) of a zero-padded chunk, then deflate. */
static size_t compress_chunk(const gp_h5par_item *it, const chunk *c, uint8_t *shuf, uint8_t *out, size_t out_cap) {
    hsize_t cols = it->ndim == 2 ? it->dims[1] : 1, rpc = rows_per_chunk(it);
    size_t n = (size_t)(rpc * cols), valid = (size_t)(c->rows * cols);
    const uint8_t *src = (const uint8_t *)(it->data + c->row0 * cols);
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) shuf[(size_t)b * n + i] = i < valid ? src[4 * i + (size_t)b] : 0;
    uLongf len = (uLongf)out_cap;
    GP_CHECK(compress2(out, &len, shuf, (uLong)(4 * n), 1) == Z_OK, "zlib compress2 failed");
    return (size_t)len;
}

void gp_h5par_write_f32(hid_t file, const gp_h5par_item *items, int n) {
    const int rank = gp_rank(), P = gp_nranks();
    hid_t *ds = NULL;
    size_t nchunks = 0;
    for (int i = 0; i < n; i++) nchunks += (size_t)((items[i].dims[0] + rows_per_chunk(&items[i]) - 1) / rows_per_chunk(&items[i]));
    chunk *list = gp_malloc((nchunks ? nchunks : 1) * sizeof *list);
    size_t k = 0, max_chunk = 0;
    for (int i = 0; i < n; i++) {
        hsize_t rpc = rows_per_chunk(&items[i]), cols = items[i].ndim == 2 ? items[i].dims[1] : 1;
        if ((size_t)(rpc * cols) > max_chunk) max_chunk = (size_t)(rpc * cols);
        for (hsize_t r = 0; r < items[i].dims[0]; r += rpc)
            list[k++] = (chunk){i, r, items[i].dims[0] - r < rpc ? items[i].dims[0] - r : rpc};
    }
    if (rank == 0) {
        ds = gp_malloc((size_t)(n ? n : 1) * sizeof(hid_t));
        hid_t lcpl = GP_H5(H5Pcreate(H5P_LINK_CREATE), "lcpl");
        GP_H5(H5Pset_create_intermediate_group(lcpl, 1), "lcpl");
        for (int i = 0; i < n; i++) {
            hid_t sp = GP_H5(H5Screate_simple(items[i].ndim, items[i].dims, NULL), "space %s", items[i].name);
            hid_t dcpl = GP_H5(H5Pcreate(H5P_DATASET_CREATE), "dcpl");
            hsize_t ch[2] = {rows_per_chunk(&items[i]), items[i].ndim == 2 ? items[i].dims[1] : 1};
            GP_H5(H5Pset_chunk(dcpl, items[i].ndim, ch), "chunk %s", items[i].name);
            GP_H5(H5Pset_shuffle(dcpl), "shuffle");
            GP_H5(H5Pset_deflate(dcpl, 1), "deflate");
            ds[i] = GP_H5(H5Dcreate2(file, items[i].name, H5T_IEEE_F32LE, sp, lcpl, dcpl, H5P_DEFAULT), "creating %s",
                          items[i].name);
            gp_h5_describe(ds[i], items[i].description, items[i].units);
            H5Pclose(dcpl);
            H5Sclose(sp);
        }
        H5Pclose(lcpl);
    }
    size_t bound = (size_t)compressBound((uLong)(4 * max_chunk));
    uint8_t *shuf = gp_malloc(4 * max_chunk + 1);
    int *counts = gp_malloc((size_t)P * sizeof(int)), *displs = gp_malloc((size_t)P * sizeof(int));
    /* batches of chunks: chunk j of a batch is compressed by rank j % P */
    for (size_t b0 = 0; b0 < nchunks;) {
        size_t b1 = b0, bytes = 0;
        while (b1 < nchunks && (bytes < BATCH_BYTES * (size_t)P || b1 == b0)) bytes += 4 * max_chunk, b1++;
        size_t mine = 0;
        for (size_t j = b0; j < b1; j++) mine += (j - b0) % (size_t)P == (size_t)rank;
        uint8_t *out = gp_malloc(mine * bound + 1);
        int64_t *sizes = gp_malloc((b1 - b0) * sizeof(int64_t));
        memset(sizes, 0, (b1 - b0) * sizeof(int64_t));
        size_t used = 0;
        for (size_t j = b0; j < b1; j++) {
            if ((j - b0) % (size_t)P != (size_t)rank) continue;
            size_t len = compress_chunk(&items[list[j].item], &list[j], shuf, out + used, bound);
            sizes[j - b0] = (int64_t)len;
            used += len;
        }
        if (P > 1) GP_MPI(MPI_Allreduce(MPI_IN_PLACE, sizes, (int)(b1 - b0), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
        /* bytes per rank, then the compressed chunks (in rank order) to rank 0 */
        size_t total = 0;
        for (int r = 0; r < P; r++) {
            size_t s = 0;
            for (size_t j = b0; j < b1; j++)
                if ((j - b0) % (size_t)P == (size_t)r) s += (size_t)sizes[j - b0];
            GP_CHECK(s < (size_t)1 << 31, "batch too large for one message");
            counts[r] = (int)s;
            displs[r] = (int)total;
            total += s;
        }
        uint8_t *all = rank == 0 ? gp_malloc(total + 1) : NULL;
        if (P > 1) GP_MPI(MPI_Gatherv(out, counts[rank], MPI_BYTE, all, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD));
        else memcpy(all, out, used);
        if (rank == 0) {
            size_t *at = gp_calloc((size_t)P, sizeof(size_t));
            for (size_t j = b0; j < b1; j++) {
                int r = (int)((j - b0) % (size_t)P);
                const chunk *c = &list[j];
                hsize_t off[2] = {c->row0, 0};
                GP_H5(H5Dwrite_chunk(ds[c->item], H5P_DEFAULT, 0, off, (size_t)sizes[j - b0], all + displs[r] + at[r]),
                      "writing a chunk of %s", items[c->item].name);
                at[r] += (size_t)sizes[j - b0];
            }
            free(at);
            free(all);
        }
        free(out);
        free(sizes);
        b0 = b1;
    }
    if (rank == 0)
        for (int i = 0; i < n; i++) H5Dclose(ds[i]);
    free(ds);
    free(shuf);
    free(counts);
    free(displs);
    free(list);
}
