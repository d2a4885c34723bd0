/* check.c — error records, fatal exits and checked allocation (see check.h). */
#include "gaprune/check.h"

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* Resident pages of this process, from /proc/self/statm; -1 when it cannot be read. */
static long resident_pages(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = -1, res = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
        fclose(f);
    }
    return res;
}

bool gp_zero_reads_resident(void) {
    static int known = -1;
    if (known >= 0) return known;
    const long page = sysconf(_SC_PAGESIZE), n = 256;
    /* an anonymous mapping of its own, as calloc gives for large buffers */
    volatile unsigned char *p = mmap(NULL, (size_t)(n * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        known = 0;
        return false;
    }
    const long before = resident_pages();
    unsigned sum = 0;
    for (long i = 0; i < n; i++) sum += p[i * page];
    const long after = resident_pages();
    munmap((void *)p, (size_t)(n * page));
    /* half the pages at least: other threads' allocations meanwhile are far fewer */
    known = sum == 0 && before >= 0 && after >= 0 && after - before >= n / 2;
    return known == 1;
}

