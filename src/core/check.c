/* check.c — error records, fatal exits and checked allocation (see check.h). */
#include "gaprune/check.h"

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gp_status gp_errf(gp_err *err, gp_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
        err->reported = false;
    }
    return code;
}

void gp_abort(int code) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    fflush(stdout);
    fflush(stderr);
    /* MPI_Abort brings down every rank, so no rank hangs in a collective. */
    if (init && !fin) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

void gp_fatal(int code, const char *file, int line, const char *func, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "gaprune: [rank %d] %s:%d %s: %s\n", gp_rank(), file, line, func, msg);
    gp_abort(code);
}

void gp_check_fail(const char *file, int line, const char *func, const char *cond, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gp_fatal(1, file, line, func, "check failed: %s: %s", cond, msg);
}

void gp_mpi_fail(int rc, const char *file, int line, const char *func, const char *what) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", rc);
    gp_fatal(1, file, line, func, "%s failed: %s", what, s);
}

void *gp_malloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) gp_fatal(1, file, line, "gp_malloc", "out of memory allocating %zu bytes", n);
    return p;
}

void *gp_calloc_at(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) gp_fatal(1, file, line, "gp_calloc", "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *gp_realloc_at(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) gp_fatal(1, file, line, "gp_realloc", "out of memory allocating %zu bytes", n);
    return q;
}

char *gp_strdup_at(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *d = gp_malloc_at(n, file, line);
    memcpy(d, s, n);
    return d;
}

char *gp_strndup_at(const char *s, size_t n, const char *file, int line) {
    size_t l = strnlen(s, n);
    char *d = gp_malloc_at(l + 1, file, line);
    memcpy(d, s, l);
    d[l] = '\0';
    return d;
}
