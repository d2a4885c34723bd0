/*
 * dist.h — MPI helpers over MPI_COMM_WORLD: reductions and broadcasts in bounded chunks, so
 * arrays beyond 2^31 elements (a 4B-parameter model's statistics) are handled, and no single
 * message needs a huge buffer in the MPI library.
 *
 * Usage:
 *     gp_allreduce_sum_f32(fisher, n);          // in place, every rank gets the sum
 *     int stop = gp_allreduce_max_int(flag);    // ranks agree at a safe point
 *     gp_bcast_string(&text, 0);                // text malloc'd on every rank after the call
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gaprune/check.h"

/* Elements per MPI call (2^24: 64 MiB of floats). */
#define GP_DIST_CHUNK ((size_t)1 << 24)

void gp_allreduce_sum_f32(float *buf, size_t n);
void gp_allreduce_sum_f64(double *buf, size_t n);
void gp_allreduce_sum_i64(int64_t *buf, size_t n);
void gp_allreduce_sum_u64(uint64_t *buf, size_t n);
/* In place, every rank gets the bitwise OR over ranks: pieces of a bitmap set by different
 * ranks, a byte shared at a boundary included. */
void gp_allreduce_bor_u8(uint8_t *buf, size_t n);
/* The sum of v over the ranks below this one (0 on rank 0). */
int64_t gp_exscan_sum_i64(int64_t v);
int gp_allreduce_max_int(int v);
double gp_allreduce_max_f64(double v);
/* Sums over ranks the rows of mat [nrows, ncols] that some rank lists in rows[0..nr) (any
 * order); every other row must be zero on every rank, and stays zero. A token-embedding
 * gradient is non-zero only in the rows of the batch's tokens: this moves those rows alone, a
 * bitmap of the union first. Falls back to the whole matrix when most rows are in use. */
void gp_allreduce_sum_rows_f32(float *mat, int64_t nrows, int64_t ncols, const int32_t *rows, int nr);
/* Adding a segment of a vector, summed over the ranks, into the owners' blocks — what an owner
 * of a slice of the statistics needs from every rank's gradient without anyone holding the sum
 * of the whole — non-blocking, so that a block's gradients travel while the backward of the
 * blocks below it computes.
 *
 * The vector is split into owner blocks: rank q owns elements [bounds[q], bounds[q+1]).
 * gp_reduce_add_start(seg, a, b, bounds, mine, p) starts adding Σ_ranks seg[0, b - a) (the
 * vector's elements [a, b)) into mine, this rank's block (mine[k] is element bounds[r] + k).
 * Collective: every rank starts the same segments in the same order. One MPI_Ireduce per
 * owner's part of the segment, in pieces of at most GP_DIST_RS_ROUND floats (every count fits
 * an int; Open MPI's temporaries per piece stay bounded), so any sizes work (64-bit offsets).
 * The owner adds its own block into its part of seg before sending, so the sum arrives in mine
 * with no receive buffer: seg is modified, and neither seg nor mine may be touched until
 * gp_reduce_add_wait. At most GP_DIST_INFLIGHT pieces are in flight per gp_reduce_pending (the
 * oldest is finished before another starts), which bounds Open MPI's temporaries to a few
 * pieces. gp_reduce_add_progress lets MPI move data meanwhile (Open MPI's
 * non-blocking collectives advance inside MPI calls). One rank: mine += seg at once. */
typedef struct {
    int n;
    void *req; /* MPI_Request[GP_DIST_INFLIGHT]; n in flight */
} gp_reduce_pending;
/* Reductions one gp_reduce_pending keeps in flight at most (see gp_reduce_add_start). */
#define GP_DIST_INFLIGHT 4

void gp_reduce_add_start(float *seg, int64_t a, int64_t b, const int64_t *bounds, float *mine, gp_reduce_pending *p);
void gp_reduce_add_progress(gp_reduce_pending *p);
void gp_reduce_add_wait(gp_reduce_pending *p);
void gp_reduce_pending_free(gp_reduce_pending *p);
/* The blocking form, in place: on rank r, buf[bounds[r], bounds[r+1]) becomes Σ_ranks of those
 * elements of buf; the rest of buf is left as it was. What a ZeRO-2 owner needs of a gradient.
 * Bounded rounds of at most GP_DIST_RS_ROUND / P floats of every owner's block. */
void gp_reduce_scatter_f32(float *buf, const int64_t *bounds);
/* The inverse: every rank's block [bounds[r], bounds[r+1]) of buf is copied to the same place
 * on every rank, in place and without a buffer (one MPI_Allgatherv while the sizes fit an int,
 * past that a broadcast per owner). */
void gp_allgather_blocks_f32(float *buf, const int64_t *bounds);
/* The same for 16-bit values (weights held in BF16 or F16). */
void gp_allgather_blocks_u16(uint16_t *buf, const int64_t *bounds);
/* Floats one MPI_Ireduce of gp_reduce_add_start moves at most, and what a round of
 * gp_reduce_scatter_f32 moves in all. */
#define GP_DIST_RS_ROUND ((int64_t)1 << 22)
void gp_bcast_bytes(void *buf, size_t n, int root);
/* *s on root is sent; on the other ranks it is replaced by a malloc'd copy. */
void gp_bcast_string(char **s, int root);
void gp_barrier(void);
/* Point to point, in chunks of GP_DIST_CHUNK bytes: a receive must name the sender, the tag and
 * the same n. Messages between two ranks with one tag arrive in the order sent. */
void gp_send_bytes(const void *buf, size_t n, int to, int tag);
void gp_recv_bytes(void *buf, size_t n, int from, int tag);
/* Every rank's n rows of D floats, concatenated in rank order on every rank (malloc'd);
 * *total (when not NULL) gets the number of rows. */
float *gp_allgather_rows_f32(const float *mine, int64_t n, int D, int64_t *total);

/* Collective: the ranks of this run on this rank's node (shared memory). */
int gp_ranks_on_node(void);
/* Collective: this rank's share of its node's memory, in bytes: Slurm's SLURM_MEM_PER_NODE (MB)
 * when set, else the physical memory, divided by the ranks on the node. */
double gp_memory_per_rank(void);

/* Collective: every rank passes its own status; when any rank failed, the lowest failing
 * rank prints its message, every rank receives that message in *err (when not NULL) and the
 * largest code is returned everywhere. */
gp_status gp_agree(gp_status rc, gp_err *err);
