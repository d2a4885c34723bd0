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
int gp_allreduce_max_int(int v);
double gp_allreduce_max_f64(double v);
/* Sums over ranks the rows of mat [nrows, ncols] that some rank lists in rows[0..nr) (any
 * order); every other row must be zero on every rank, and stays zero. A token-embedding
 * gradient is non-zero only in the rows of the batch's tokens: this moves those rows alone, a
 * bitmap of the union first. Falls back to the whole matrix when most rows are in use. */
void gp_allreduce_sum_rows_f32(float *mat, int64_t nrows, int64_t ncols, const int32_t *rows, int nr);
/* Sums send[0, bounds[P]) over the ranks and adds to mine, on rank r, only its block: elements
 * [bounds[r], bounds[r+1]) (mine[k] += Σ_ranks send[bounds[r] + k]). What an owner of a slice
 * of the statistics needs from every rank's gradient, without anyone holding the sum of the
 * whole. Any sizes (64-bit); messages and buffers stay bounded. */
void gp_reduce_scatter_add_f32(const float *send, const int64_t *bounds, float *mine);
/* The same sum, in place: on rank r, buf[bounds[r], bounds[r+1]) becomes Σ_ranks of those
 * elements of buf; the rest of buf is left as it was. What a ZeRO-2 owner needs of a gradient. */
void gp_reduce_scatter_f32(float *buf, const int64_t *bounds);
/* The inverse: every rank's block [bounds[r], bounds[r+1]) of buf is copied to the same place
 * on every rank (MPI_Allgatherv in rounds: 64-bit sizes, bounded buffers). */
void gp_allgather_blocks_f32(float *buf, const int64_t *bounds);
/* Floats a gp_reduce_scatter_add_f32 (or _f32, gp_allgather_blocks_f32) round moves in all: each owner gets at most
 * GP_DIST_RS_ROUND / P of them a round, and the round's buffers are that big. */
#define GP_DIST_RS_ROUND ((int64_t)1 << 22)
void gp_bcast_bytes(void *buf, size_t n, int root);
/* *s on root is sent; on the other ranks it is replaced by a malloc'd copy. */
void gp_bcast_string(char **s, int root);
void gp_barrier(void);
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
