/* dist.c — chunked MPI reductions and broadcasts (see dist.h). */
#include "gaprune/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gaprune/check.h"
#include "gaprune/log.h"
#include "gaprune/testhook.h"

static void allreduce(void *buf, size_t n, size_t elem, MPI_Datatype t, MPI_Op op) {
    if (gp_nranks() == 1) return;
    char *p = buf;
    for (size_t i = 0; i < n; i += GP_DIST_CHUNK) {
        size_t k = n - i < GP_DIST_CHUNK ? n - i : GP_DIST_CHUNK;
        GP_MPI(MPI_Allreduce(MPI_IN_PLACE, p + i * elem, (int)k, t, op, MPI_COMM_WORLD));
    }
}

void gp_allreduce_sum_f32(float *buf, size_t n) { allreduce(buf, n, sizeof(float), MPI_FLOAT, MPI_SUM); }
void gp_allreduce_sum_f64(double *buf, size_t n) { allreduce(buf, n, sizeof(double), MPI_DOUBLE, MPI_SUM); }
void gp_allreduce_sum_i64(int64_t *buf, size_t n) { allreduce(buf, n, sizeof(int64_t), MPI_INT64_T, MPI_SUM); }
void gp_allreduce_sum_u64(uint64_t *buf, size_t n) { allreduce(buf, n, sizeof(uint64_t), MPI_UINT64_T, MPI_SUM); }
void gp_allreduce_bor_u8(uint8_t *buf, size_t n) { allreduce(buf, n, 1, MPI_UINT8_T, MPI_BOR); }

int64_t gp_exscan_sum_i64(int64_t v) {
    int64_t below = 0;
    if (gp_nranks() == 1) return 0;
    GP_MPI(MPI_Exscan(&v, &below, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
    return gp_rank() == 0 ? 0 : below; /* MPI leaves rank 0's result undefined */
}

void gp_allreduce_sum_rows_f32(float *mat, int64_t nrows, int64_t ncols, const int32_t *rows, int nr) {
    if (gp_nranks() == 1) return;
    const int64_t nw = (nrows + 63) / 64;
    uint64_t *bits = gp_calloc((size_t)nw, sizeof(uint64_t));
    for (int i = 0; i < nr; i++) {
        GP_CHECK(rows[i] >= 0 && rows[i] < nrows, "row %d outside [0, %lld)", rows[i], (long long)nrows);
        bits[rows[i] / 64] |= (uint64_t)1 << (rows[i] % 64);
    }
    for (int64_t i = 0; i < nw; i += (int64_t)GP_DIST_CHUNK) {
        int64_t k = nw - i < (int64_t)GP_DIST_CHUNK ? nw - i : (int64_t)GP_DIST_CHUNK;
        GP_MPI(MPI_Allreduce(MPI_IN_PLACE, bits + i, (int)k, MPI_UINT64_T, MPI_BOR, MPI_COMM_WORLD));
    }
    int64_t nu = 0;
    for (int64_t i = 0; i < nw; i++) nu += __builtin_popcountll(bits[i]);
    if (2 * nu > nrows) { /* packing would cost more than it saves */
        free(bits);
        gp_allreduce_sum_f32(mat, (size_t)(nrows * ncols));
        return;
    }
    float *pk = gp_malloc((size_t)(nu ? nu : 1) * (size_t)ncols * sizeof(float));
    int64_t j = 0;
    for (int64_t r = 0; r < nrows; r++)
        if (bits[r / 64] >> (r % 64) & 1) memcpy(pk + j++ * ncols, mat + r * ncols, (size_t)ncols * sizeof(float));
    gp_allreduce_sum_f32(pk, (size_t)(nu * ncols));
    j = 0;
    for (int64_t r = 0; r < nrows; r++)
        if (bits[r / 64] >> (r % 64) & 1) memcpy(mat + r * ncols, pk + j++ * ncols, (size_t)ncols * sizeof(float));
    free(pk);
    free(bits);
}

void gp_reduce_add_start(float *seg, int64_t a, int64_t b, const int64_t *bounds, float *mine, gp_reduce_pending *p) {
    const int P = gp_nranks(), r = gp_rank();
    if (P == 1) {
        for (int64_t k = a; k < b; k++) mine[k - bounds[0]] += seg[k - a];
        return;
    }
    for (int q = 0; q < P; q++) {
        const int64_t lo = a > bounds[q] ? a : bounds[q], hi = b < bounds[q + 1] ? b : bounds[q + 1];
        for (int64_t at = lo; at < hi; at += GP_DIST_RS_ROUND) {
            const int cnt = (int)(hi - at < GP_DIST_RS_ROUND ? hi - at : GP_DIST_RS_ROUND);
            float *send = seg + (at - a), *own = q == r ? mine + (at - bounds[r]) : NULL;
            if (own)
                for (int k = 0; k < cnt; k++) send[k] += own[k];
            /* Open MPI keeps temporaries of about a piece for each reduction in flight: past
             * GP_DIST_INFLIGHT of them the oldest is finished first, so that memory stays bounded
             * (every rank posts in the same order, so waiting on the oldest cannot deadlock) */
            if (p->n == GP_DIST_INFLIGHT) {
                GP_MPI(MPI_Wait((MPI_Request *)p->req, MPI_STATUS_IGNORE));
                memmove(p->req, (MPI_Request *)p->req + 1, (size_t)(p->n - 1) * sizeof(MPI_Request));
                p->n--;
            }
            if (!p->req) p->req = gp_malloc(GP_DIST_INFLIGHT * sizeof(MPI_Request));
            GP_MPI(MPI_Ireduce(send, own, cnt, MPI_FLOAT, MPI_SUM, q, MPI_COMM_WORLD, (MPI_Request *)p->req + p->n));
            p->n++;
        }
    }
}

void gp_reduce_add_progress(gp_reduce_pending *p) {
    int done = 0;
    if (p->n) GP_MPI(MPI_Testall(p->n, p->req, &done, MPI_STATUSES_IGNORE));
    if (done) p->n = 0;
}

void gp_reduce_add_wait(gp_reduce_pending *p) {
    if (p->n) GP_MPI(MPI_Waitall(p->n, p->req, MPI_STATUSES_IGNORE));
    p->n = 0;
}

void gp_reduce_pending_free(gp_reduce_pending *p) {
    GP_CHECK(p->n == 0, "%d reductions still in flight", p->n);
    free(p->req);
    memset(p, 0, sizeof *p);
}

/* Blocking reduce-scatter in bounded rounds: mine[k] = the sum over ranks of send's element
 * bounds[r] + k (mine may be send + bounds[r]: each round packs its part of send before it
 * writes). */
static void reduce_scatter(const float *send, const int64_t *bounds, float *mine) {
    const int P = gp_nranks(), r = gp_rank();
    if (P == 1) {
        const int64_t n = bounds[1] - bounds[0];
        if (mine != send + bounds[0])
            memmove(mine, send + bounds[0], (size_t)n * sizeof(float));
        return;
    }
    /* rounds of at most K elements of every owner's block: every count fits an int, and the
     * packed message, the result and what MPI allocates inside stay bounded (2^22 floats a
     * round in all, GP_DIST_RS_ROUND) however large the statistics are */
    const int64_t K = GP_DIST_RS_ROUND / P > 0 ? GP_DIST_RS_ROUND / P : 1;
    int64_t longest = 0;
    for (int q = 0; q < P; q++) longest = bounds[q + 1] - bounds[q] > longest ? bounds[q + 1] - bounds[q] : longest;
    const int64_t round = longest < K ? longest : K;
    float *pack = gp_malloc((size_t)(P * round + 1) * sizeof(float)), *got = gp_malloc((size_t)(round + 1) * sizeof(float));
    int *counts = gp_malloc((size_t)P * sizeof(int));
    for (int64_t off = 0; off < longest; off += K) {
        size_t at = 0;
        for (int q = 0; q < P; q++) {
            int64_t len = bounds[q + 1] - bounds[q] - off;
            len = len < 0 ? 0 : len > K ? K : len;
            counts[q] = (int)len;
            memcpy(pack + at, send + bounds[q] + off, (size_t)len * sizeof(float));
            at += (size_t)len;
        }
        /* an owner whose block is done still takes part, with a count of 0 */
        GP_MPI(MPI_Reduce_scatter(pack, got, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
        memcpy(mine + off, got, (size_t)counts[r] * sizeof(float));
    }
    free(pack);
    free(got);
    free(counts);
}

void gp_reduce_scatter_f32(float *buf, const int64_t *bounds) {
    reduce_scatter(buf, bounds, buf + bounds[gp_rank()]);
}

/* gp_allgather_blocks_f32 and _u16: elements of esize bytes, MPI type t. */
static void allgather_blocks(void *vbuf, size_t esize, MPI_Datatype t, const int64_t *bounds) {
    const int P = gp_nranks();
    if (P == 1) return;
    char *buf = vbuf;
    const int64_t one_call = gp_testhook_get()->gather_one_call_max > 0 ? gp_testhook_get()->gather_one_call_max : INT_MAX;
    /* in place, no buffer: the blocks lie in rank order, so one MPI_Allgatherv with the bounds as
     * displacements is the whole exchange where they fit an int (measured on 2 ranks, 22.7M
     * floats: 9 ms against 18 ms for rounds through a buffer and a copy back, and 15 ms for a
     * broadcast per owner); past that, each owner broadcasts its block in place, in chunks */
    if (bounds[P] - bounds[0] <= one_call) {
        int *counts = gp_malloc((size_t)P * sizeof(int)), *displs = gp_malloc((size_t)P * sizeof(int));
        for (int q = 0; q < P; q++) {
            counts[q] = (int)(bounds[q + 1] - bounds[q]);
            displs[q] = (int)(bounds[q] - bounds[0]);
        }
        GP_MPI(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf + (size_t)bounds[0] * esize, counts, displs, t,
                              MPI_COMM_WORLD));
        free(counts);
        free(displs);
        return;
    }
    for (int q = 0; q < P; q++)
        gp_bcast_bytes(buf + (size_t)bounds[q] * esize, (size_t)(bounds[q + 1] - bounds[q]) * esize, q);
}

void gp_allgather_blocks_f32(float *buf, const int64_t *bounds) { allgather_blocks(buf, sizeof(float), MPI_FLOAT, bounds); }
void gp_allgather_blocks_u16(uint16_t *buf, const int64_t *bounds) {
    allgather_blocks(buf, sizeof(uint16_t), MPI_UINT16_T, bounds);
}

int gp_allreduce_max_int(int v) {
    int out = v;
    if (gp_nranks() > 1) GP_MPI(MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    return out;
}

double gp_allreduce_max_f64(double v) {
    double out = v;
    if (gp_nranks() > 1) GP_MPI(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
    return out;
}

void gp_bcast_bytes(void *buf, size_t n, int root) {
    if (gp_nranks() == 1) return;
    char *p = buf;
    for (size_t i = 0; i < n; i += GP_DIST_CHUNK) {
        size_t k = n - i < GP_DIST_CHUNK ? n - i : GP_DIST_CHUNK;
        GP_MPI(MPI_Bcast(p + i, (int)k, MPI_BYTE, root, MPI_COMM_WORLD));
    }
}

void gp_bcast_string(char **s, int root) {
    int64_t n = gp_rank() == root ? (int64_t)strlen(*s) : 0;
    if (gp_nranks() == 1) return;
    GP_MPI(MPI_Bcast(&n, 1, MPI_INT64_T, root, MPI_COMM_WORLD));
    if (gp_rank() != root) {
        *s = gp_malloc((size_t)n + 1);
        (*s)[n] = '\0';
    }
    gp_bcast_bytes(*s, (size_t)n, root);
}

void gp_barrier(void) {
    if (gp_nranks() > 1) GP_MPI(MPI_Barrier(MPI_COMM_WORLD));
}

void gp_send_bytes(const void *buf, size_t n, int to, int tag) {
    const char *p = buf;
    for (size_t i = 0; i < n; i += GP_DIST_CHUNK) {
        size_t k = n - i < GP_DIST_CHUNK ? n - i : GP_DIST_CHUNK;
        GP_MPI(MPI_Send(p + i, (int)k, MPI_BYTE, to, tag, MPI_COMM_WORLD));
    }
}

void gp_recv_bytes(void *buf, size_t n, int from, int tag) {
    char *p = buf;
    for (size_t i = 0; i < n; i += GP_DIST_CHUNK) {
        size_t k = n - i < GP_DIST_CHUNK ? n - i : GP_DIST_CHUNK;
        GP_MPI(MPI_Recv(p + i, (int)k, MPI_BYTE, from, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    }
}

float *gp_allgather_rows_f32(const float *mine, int64_t n, int D, int64_t *total_out) {
    const int P = gp_nranks(), rank = gp_rank();
    int64_t total = n;
    gp_allreduce_sum_i64(&total, 1);
    if (total_out) *total_out = total;
    float *all = gp_malloc((size_t)(total ? total : 1) * D * sizeof(float));
    if (P == 1) {
        memcpy(all, mine, (size_t)n * D * sizeof(float));
        return all;
    }
    int *counts = gp_malloc((size_t)P * sizeof(int)), *displs = gp_malloc((size_t)P * sizeof(int));
    int64_t *ns = gp_malloc((size_t)P * sizeof(int64_t));
    GP_MPI(MPI_Allgather(&n, 1, MPI_INT64_T, ns, 1, MPI_INT64_T, MPI_COMM_WORLD));
    int64_t at = 0;
    for (int r = 0; r < P; r++) {
        GP_CHECK((at + ns[r]) * D < INT32_MAX, "too many rows to gather in one call");
        counts[r] = (int)(ns[r] * D);
        displs[r] = (int)(at * D);
        at += ns[r];
    }
    GP_MPI(MPI_Allgatherv(mine, counts[rank], MPI_FLOAT, all, counts, displs, MPI_FLOAT, MPI_COMM_WORLD));
    free(counts), free(displs), free(ns);
    return all;
}

gp_status gp_agree(gp_status rc, gp_err *err) {
    if (gp_nranks() == 1) { /* the same outcome without MPI, so rank-free callers (unit tests) may agree too */
        /* a stop (GP_ESTOPPED) has said what it is and how to go on; it leaves the message empty */
        if (rc && !(err && err->reported) && err && err->msg[0]) {
            fprintf(stderr, "gaprune: error: %s\n", err->msg);
            fflush(stderr);
        }
        if (rc && err) err->code = rc, err->reported = true;
        return rc;
    }
    int mine = rc != GP_OK ? gp_rank() : gp_nranks(), first;
    int code = (int)rc, worst;
    GP_MPI(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (first == gp_nranks()) return GP_OK;
    GP_MPI(MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    gp_err local = {0};
    if (!err) err = &local;
    if (first == gp_rank() && !err->reported && err->msg[0]) {
        if (gp_rank() == 0) fprintf(stderr, "gaprune: error: %s\n", err->msg);
        else fprintf(stderr, "gaprune: error: [rank %d] %s\n", gp_rank(), err->msg);
        fflush(stderr);
    }
    /* every rank ends with the message that was reported */
    GP_MPI(MPI_Bcast(err->msg, (int)sizeof err->msg, MPI_CHAR, first, MPI_COMM_WORLD));
    err->code = (gp_status)worst;
    err->reported = true;
    return (gp_status)worst;
}

int gp_ranks_on_node(void) {
    MPI_Comm node;
    GP_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    int local = 1;
    GP_MPI(MPI_Comm_size(node, &local));
    MPI_Comm_free(&node);
    return local;
}

double gp_memory_per_rank(void) {
    const int local = gp_ranks_on_node();
    const char *slurm = getenv("SLURM_MEM_PER_NODE");
    double total = slurm && atof(slurm) > 0 ? atof(slurm) * 1048576.0
                                             : (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
    return total / local;
}
