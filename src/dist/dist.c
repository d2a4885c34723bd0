/* dist.c — chunked MPI reductions and broadcasts (see dist.h). */
#include "gaprune/dist.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/check.h"
#include "gaprune/log.h"

static void allreduce(void *buf, size_t n, size_t elem, MPI_Datatype t) {
    if (gp_nranks() == 1) return;
    char *p = buf;
    for (size_t i = 0; i < n; i += GP_DIST_CHUNK) {
        size_t k = n - i < GP_DIST_CHUNK ? n - i : GP_DIST_CHUNK;
        GP_MPI(MPI_Allreduce(MPI_IN_PLACE, p + i * elem, (int)k, t, MPI_SUM, MPI_COMM_WORLD));
    }
}

void gp_allreduce_sum_f32(float *buf, size_t n) { allreduce(buf, n, sizeof(float), MPI_FLOAT); }
void gp_allreduce_sum_f64(double *buf, size_t n) { allreduce(buf, n, sizeof(double), MPI_DOUBLE); }
void gp_allreduce_sum_i64(int64_t *buf, size_t n) { allreduce(buf, n, sizeof(int64_t), MPI_INT64_T); }

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
