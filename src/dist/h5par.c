/* h5par.c — one HDF5 file written by every rank with parallel HDF5 (see h5par.h). */
#include "gaprune/h5par.h"

#include <mpi.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gaprune/check.h"
#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/lock.h"
#include "gaprune/log.h"
#include "gaprune/provenance.h"
#include "gaprune/testhook.h"

#define CHUNK_ELEMS ((hsize_t)1 << 18) /* 1 MiB of floats per chunk, whole rows */
#define DEFLATE_LEVEL 1                /* deflate is the slow part of the write: its cheapest level */
/* Elements one rank hands to one H5Dwrite. HDF5 keeps a buffer per chunk the write touches
 * and describes the whole write as one MPI datatype, whose size is an int: a bounded piece
 * keeps both small whatever the slice. */
#define PIECE_ELEMS ((hsize_t)1 << 26)

/* Room for the metadata: object headers, chunk indexes, attributes; and for deflate, which can
 * grow data that does not compress by a few bytes per block. */
#define META_BYTES ((uint64_t)256 << 10)
#define DATASET_META_BYTES ((uint64_t)8 << 10)

uint64_t gp_h5par_bytes(const gp_h5par_item *items, int n) {
    uint64_t b = META_BYTES;
    for (int i = 0; i < n; i++) {
        const uint64_t elems = (uint64_t)items[i].dims[0] * (items[i].ndim == 2 ? items[i].dims[1] : 1);
        b += 4 * elems + 4 * elems / 512 + DATASET_META_BYTES;
    }
    return b;
}

gp_status gp_h5par_create_tmp(const char *path, uint64_t bytes, hid_t *file, gp_err *err) {
    *file = -1;
    gp_h5_watch_writes();
    gp_status rc = gp_rank() == 0 ? gp_check_room(path, bytes, err) : GP_OK;
    if ((rc = gp_agree(rc, err))) return rc;
    char *tmp = gp_tmp_path(path);
    /* a lone rank writes through gaprune's POSIX driver (h5.h): its chunks then go in whole,
     * deflated by its threads (write_direct) */
    hid_t fapl = GP_H5(gp_nranks() > 1 ? H5Pcreate(H5P_FILE_ACCESS) : H5Pcopy(gp_h5_write_fapl()), "fapl");
    if (gp_nranks() > 1) {
        GP_H5(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL), "MPI-IO driver");
        /* metadata read once and broadcast, written collectively: at many ranks this keeps
         * every rank from reading the same object headers from the file */
        GP_H5(H5Pset_all_coll_metadata_ops(fapl, 1), "collective metadata reads");
        GP_H5(H5Pset_coll_metadata_write(fapl, 1), "collective metadata writes");
    }
    hid_t f = GP_H5(H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "creating %s", tmp);
    H5Pclose(fapl);
    /* MPI_File_open is collective and fails on every rank alike; were it not so, the ranks that
     * hold the file would wait for the others in its collective close: nothing to agree on then */
    const int some = gp_allreduce_max_int(f < 0), all = !gp_allreduce_max_int(f >= 0);
    if (some && !all) gp_fatal(2, __FILE__, __LINE__, __func__, "%s: created on some ranks only", tmp);
    free(tmp);
    *file = f;
    return gp_agree(gp_h5_io_status(path, err), err);
}

/* After a refused write (agreed, reported): the .tmp goes, the output folder's lock is given
 * back, and the job ends (h5par.h). */
_Noreturn static void end_after_refused_write(const char *path) {
    if (gp_rank() == 0) {
        char *tmp = gp_tmp_path(path);
        remove(tmp);
        free(tmp);
    }
    gp_lock_release(); /* collective: every rank is here */
    gp_abort(GP_EINPUT);
}

void gp_h5par_close(hid_t file, const char *path, gp_err *err) {
    /* a file in which a rank failed to write cannot be closed without risking a hang */
    if (gp_agree(gp_h5_io_status(path, err), err)) end_after_refused_write(path);
    GP_H5(H5Fclose(file), "closing %s.tmp", path); /* the metadata are written here */
    /* MPI_File_close need not wait for the other ranks: after the agreement every rank's part
     * is on disk, so one rank may reopen the file */
    if (gp_agree(gp_h5_io_status(path, err), err)) end_after_refused_write(path);
}

/* rank 0's copy of value, malloc'd, on every rank */
static char *bcast_str(const char *value) {
    char *v = gp_rank() == 0 ? gp_strdup(value) : NULL;
    gp_bcast_string(&v, 0);
    return v;
}

void gp_h5par_attr_str(hid_t obj, const char *name, const char *value) {
    char *v = bcast_str(value);
    gp_h5_attr_str(obj, name, v);
    free(v);
}

void gp_h5par_attr_int(hid_t obj, const char *name, int64_t value) {
    gp_bcast_bytes(&value, sizeof value, 0);
    gp_h5_attr_int(obj, name, value);
}

void gp_h5par_attr_double(hid_t obj, const char *name, double value) {
    gp_bcast_bytes(&value, sizeof value, 0);
    gp_h5_attr_double(obj, name, value);
}

void gp_h5par_provenance(hid_t file, const char *format, int format_version) {
    char utc[32];
    gp_utc_now(utc, sizeof utc);
    gp_bcast_bytes(utc, sizeof utc, 0);
    char *cmd = bcast_str(gp_provenance_command());
    gp_provenance_write_as(file, format, format_version, cmd, utc);
    free(cmd);
}

void gp_h5par_share(hsize_t n, hsize_t *row0, hsize_t *nrows) {
    const hsize_t r = (hsize_t)gp_rank(), P = (hsize_t)gp_nranks();
    /* n·r/P without forming n·r, which could overflow for huge n */
    hsize_t a = n / P * r + n % P * r / P, b = n / P * (r + 1) + n % P * (r + 1) / P;
    *row0 = a;
    *nrows = b - a;
}

static hsize_t cols_of(const gp_h5par_item *it) { return it->ndim == 2 ? it->dims[1] : 1; }

static hsize_t rows_per_chunk(const gp_h5par_item *it) {
    hsize_t cols = cols_of(it);
    hsize_t r = cols ? CHUNK_ELEMS / cols : 1;
    if (r < 1) r = 1;
    if (r > it->dims[0]) r = it->dims[0];
    return r ? r : 1;
}

/* Rows per H5Dwrite: whole chunks where a piece holds several, so that no chunk is written by
 * two writes (each would decompress, merge and recompress it). */
static hsize_t rows_per_piece(const gp_h5par_item *it) {
    const int64_t hook = gp_testhook_get()->h5par_piece_elems;
    hsize_t limit = hook > 0 ? (hsize_t)hook : PIECE_ELEMS, cols = cols_of(it), rpc = rows_per_chunk(it);
    hsize_t r = cols ? limit / cols : limit;
    if (r < 1) r = 1;
    if (r >= rpc) r -= r % rpc;
    return r;
}

/* Pieces are the blocks [k·rpp, (k+1)·rpp) of the dataset that this rank's rows touch. */
static int64_t pieces_of(const gp_h5par_item *it) {
    if (!it->nrows) return 0;
    hsize_t rpp = rows_per_piece(it);
    return (int64_t)((it->row0 + it->nrows - 1) / rpp - it->row0 / rpp + 1);
}

static hid_t create_dataset(hid_t file, hid_t lcpl, const gp_h5par_item *it) {
    GP_CHECK(it->ndim == 1 || it->ndim == 2, "dataset %s: rank %d", it->name, it->ndim);
    /* HDF5 limits a chunk to 4 GiB, and a chunk holds at least one row */
    GP_CHECK(cols_of(it) < ((hsize_t)1 << 30), "dataset %s: rows of %llu floats", it->name,
             (unsigned long long)cols_of(it));
    hid_t sp = GP_H5(H5Screate_simple(it->ndim, it->dims, NULL), "space %s", it->name);
    hid_t dcpl = GP_H5(H5Pcreate(H5P_DATASET_CREATE), "dcpl");
    hsize_t ch[2] = {rows_per_chunk(it), cols_of(it)};
    GP_H5(H5Pset_chunk(dcpl, it->ndim, ch), "chunk %s", it->name);
    if (!it->raw) {
        GP_H5(H5Pset_shuffle(dcpl), "shuffle");
        GP_H5(H5Pset_deflate(dcpl, DEFLATE_LEVEL), "deflate");
    }
    hid_t ds = GP_H5(H5Dcreate2(file, it->name, H5T_IEEE_F32LE, sp, lcpl, dcpl, H5P_DEFAULT), "creating %s", it->name);
    gp_h5_describe(ds, it->description, it->units);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return ds;
}

/* Piece k of this rank's rows, or nothing when it has fewer: every rank makes the same number
 * of collective H5Dwrite calls. */
static void write_piece(hid_t ds, hid_t dxpl, const gp_h5par_item *it, int64_t k) {
    const hsize_t cols = cols_of(it), rpp = rows_per_piece(it), end = it->row0 + it->nrows;
    hsize_t start = 0, count = 0;
    if (k < pieces_of(it)) {
        start = (it->row0 / rpp + (hsize_t)k) * rpp;
        if (start < it->row0) start = it->row0;
        hsize_t stop = (start / rpp + 1) * rpp;
        count = (stop < end ? stop : end) - start;
    }
    hid_t fs = GP_H5(H5Dget_space(ds), "space %s", it->name), ms;
    const float *buf = it->data;
    if (count) {
        hsize_t off[2] = {start, 0}, cnt[2] = {count, cols};
        GP_H5(H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL), "hyperslab %s", it->name);
        ms = GP_H5(H5Screate_simple(it->ndim, cnt, NULL), "memspace");
        buf += (start - it->row0) * cols;
    } else {
        hsize_t one = 1;
        GP_H5(H5Sselect_none(fs), "empty selection");
        ms = GP_H5(H5Screate_simple(1, &one, NULL), "memspace");
        GP_H5(H5Sselect_none(ms), "empty selection");
        static const float dummy = 0; /* HDF5 wants a buffer even for nothing */
        buf = &dummy;
    }
    GP_H5(H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, buf), "writing rows %llu..%llu of %s",
          (unsigned long long)start, (unsigned long long)(start + count), it->name);
    H5Sclose(ms);
    H5Sclose(fs);
}

/* The byte shuffle of HDF5's shuffle filter for 4-byte elements: byte j of element i goes to
 * j·n + i, so that the exponent bytes of similar floats sit together for deflate. */
static void shuffle4(const unsigned char *src, size_t n, unsigned char *dst) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < 4; j++) dst[j * n + i] = src[4 * i + j];
}

/* Rows [r0, r0 + nr) of a lone rank's item, through HDF5's own filter pipeline. */
static void write_rows(hid_t ds, const gp_h5par_item *it, hsize_t r0, hsize_t nr) {
    if (!nr) return;
    const hsize_t cols = cols_of(it), off[2] = {r0, 0}, cnt[2] = {nr, cols};
    hid_t fs = GP_H5(H5Dget_space(ds), "space %s", it->name);
    GP_H5(H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL), "hyperslab %s", it->name);
    hid_t ms = GP_H5(H5Screate_simple(it->ndim, cnt, NULL), "memspace");
    GP_H5(H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, it->data + (r0 - it->row0) * cols),
          "writing rows %llu..%llu of %s", (unsigned long long)r0, (unsigned long long)(r0 + nr), it->name);
    H5Sclose(ms);
    H5Sclose(fs);
}

/* A lone rank writes a shuffled, deflated dataset. HDF5's filter pipeline deflates one chunk at
 * a time on one thread (and Debian's HDF5 is not thread-safe): that was 14% of a small
 * statistics pass on 1 rank × 2 threads. So the rank's threads shuffle and deflate batches of
 * the chunks its rows cover side by side — the bytes HDF5's shuffle and deflate filters make
 * (compress2 at the same level) — and the calling thread hands the finished chunks to
 * H5Dwrite_chunk in order. Rows that fill no whole chunk (a slice that starts or ends inside
 * one) go through H5Dwrite. Direct chunk writes are not supported by parallel HDF5 (the chunks'
 * file space is allocated collectively), so with several ranks the ranks themselves deflate
 * side by side through the collective write. */
static void write_direct(hid_t ds, const gp_h5par_item *it) {
    const hsize_t cols = cols_of(it), rpc = rows_per_chunk(it), rows = it->dims[0];
    const hsize_t end = it->row0 + it->nrows;
    if (!it->nrows) return;
    /* the whole chunks [ca, cb): the dataset's last chunk counts as whole when the rows reach
     * the end (HDF5 stores an edge chunk padded to the full chunk) */
    const hsize_t ca = (it->row0 + rpc - 1) / rpc, cb = end == rows ? (rows + rpc - 1) / rpc : end / rpc;
    if (ca >= cb) {
        write_rows(ds, it, it->row0, it->nrows);
        return;
    }
    write_rows(ds, it, it->row0, ca * rpc - it->row0);
    if (cb * rpc < end) write_rows(ds, it, cb * rpc, end - cb * rpc);
    const size_t chunk_floats = (size_t)(rpc * cols), chunk_bytes = chunk_floats * sizeof(float);
    const uLong bound = compressBound((uLong)chunk_bytes);
    /* a batch of two chunks per thread keeps the threads busy while bounding the buffers */
    const int batch = 2 * omp_get_max_threads();
    unsigned char *out = gp_malloc((size_t)batch * bound);
    uLongf *size = gp_malloc((size_t)batch * sizeof(uLongf));
    int *zrc = gp_malloc((size_t)batch * sizeof(int));
    for (hsize_t c0 = ca; c0 < cb; c0 += (hsize_t)batch) {
        const int nb = (int)(cb - c0 < (hsize_t)batch ? cb - c0 : (hsize_t)batch);
#pragma omp parallel
        {
            /* the chunk, padded with the fill value (0) past the last row as HDF5 pads an edge
             * chunk, and its shuffle */
            float *padded = gp_malloc(chunk_bytes);
            unsigned char *shuffled = gp_malloc(chunk_bytes);
#pragma omp for schedule(dynamic, 1)
            for (int b = 0; b < nb; b++) {
                const hsize_t r0 = (c0 + (hsize_t)b) * rpc, nr = end - r0 < rpc ? end - r0 : rpc;
                memcpy(padded, it->data + (r0 - it->row0) * cols, (size_t)(nr * cols) * sizeof(float));
                memset(padded + nr * cols, 0, (size_t)((rpc - nr) * cols) * sizeof(float));
                shuffle4((const unsigned char *)padded, chunk_floats, shuffled);
                size[b] = bound;
                zrc[b] = compress2(out + (size_t)b * bound, &size[b], shuffled, (uLong)chunk_bytes, DEFLATE_LEVEL);
            }
            free(shuffled);
            free(padded);
        }
        for (int b = 0; b < nb; b++) {
            const hsize_t r0 = (c0 + (hsize_t)b) * rpc, off[2] = {r0, 0};
            GP_CHECK(zrc[b] == Z_OK, "deflating rows %llu.. of %s: zlib error %d", (unsigned long long)r0, it->name,
                     zrc[b]);
            GP_H5(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, off, (size_t)size[b], out + (size_t)b * bound),
                  "writing the chunk at row %llu of %s", (unsigned long long)r0, it->name);
        }
    }
    free(zrc);
    free(size);
    free(out);
}

void gp_h5par_write_f32(hid_t file, const gp_h5par_item *items, int n) {
    if (n <= 0) return;
    /* the most pieces any rank has, per dataset: that many collective writes for everyone */
    int64_t *pieces = gp_malloc((size_t)n * sizeof(int64_t));
    for (int i = 0; i < n; i++) {
        const gp_h5par_item *it = &items[i];
        GP_CHECK(it->row0 <= it->dims[0] && it->nrows <= it->dims[0] - it->row0 && (it->data || !it->nrows),
                 "%s: rows %llu + %llu of %llu", it->name, (unsigned long long)it->row0,
                 (unsigned long long)it->nrows, (unsigned long long)it->dims[0]);
        pieces[i] = pieces_of(it);
    }
    if (gp_nranks() > 1) GP_MPI(MPI_Allreduce(MPI_IN_PLACE, pieces, n, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD));
    hid_t lcpl = GP_H5(H5Pcreate(H5P_LINK_CREATE), "lcpl");
    GP_H5(H5Pset_create_intermediate_group(lcpl, 1), "lcpl");
    /* collective transfers: the filtered (compressed) parallel write path requires them; all
     * of a write's chunks in one MPI-IO call, without the collective vote on how */
    const bool alone = gp_nranks() == 1;
    hid_t dxpl = GP_H5(H5Pcreate(H5P_DATASET_XFER), "dxpl");
    if (!alone) {
        GP_H5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), "collective transfer");
        GP_H5(H5Pset_dxpl_mpio_chunk_opt(dxpl, H5FD_MPIO_CHUNK_ONE_IO), "one collective I/O per write");
    }
    for (int i = 0; i < n; i++) {
        hid_t ds = create_dataset(file, lcpl, &items[i]);
        if (alone && !items[i].raw)
            write_direct(ds, &items[i]);
        else
            for (int64_t k = 0; k < pieces[i]; k++) write_piece(ds, dxpl, &items[i], k);
        GP_H5(H5Dclose(ds), "closing %s", items[i].name);
        /* a refused write fails on the ranks that wrote (MPI-IO's aggregators), not on all: the
         * ranks agree after each dataset and stop writing together; gp_h5par_close then ends
         * the job (h5par.h) */
        if (gp_allreduce_max_int(gp_h5_io_failed())) break;
    }
    H5Pclose(dxpl);
    H5Pclose(lcpl);
    free(pieces);
}
