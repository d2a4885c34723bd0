/*
 * check.h — errors, fatal checks and checked allocation.
 *
 * Two tiers (see docs/DESIGN.md §3.1, exit codes):
 *  - Bad input (a broken config.json, a truncated safetensors file, a bad record) is a
 *    recoverable condition: the function that finds it fills a gp_err with a message naming
 *    the file, line, key or tensor and returns GP_EINPUT. The command layer turns it into
 *    exit code 2 after all ranks agree (gp_agree in dist.h).
 *  - Programmer errors and failed system/MPI/HDF5 calls are fatal: GP_CHECK and friends print
 *    rank, file, line and function, then end the whole job with MPI_Abort (or exit when MPI
 *    is not running, as in the unit tests). A write the disk refused (full, an I/O error) is
 *    not a bug: it is input-class, reported naming the file (fs.h gp_write_error; GP_H5 in
 *    h5.h lets HDF5's own write failures through to the file's commit).
 *
 * Usage:
 *     gp_err err = {0};
 *     if (gp_model_load(&m, dir, &err) != GP_OK) { fprintf(stderr, "%s\n", err.msg); ... }
 *     float *buf = gp_malloc(n * sizeof(float));      // never NULL
 *     GP_CHECK(n > 0, "empty batch (n=%d)", n);
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define GP_VERSION "0.1.0"

typedef enum {
    GP_OK = 0,
    GP_EINTERNAL = 1, /* a bug or a failed system call */
    GP_EINPUT = 2,    /* bad input or configuration: the message says where */
    GP_ESTOPPED = 3,  /* stopped early on a signal after a checkpoint */
} gp_status;

typedef struct {
    gp_status code;
    char msg[1024];
    bool reported; /* gp_agree has printed msg: agreeing on it again (a caller's check) does not print it twice */
} gp_err;

/* Sets err (when not NULL) and returns code, so callers can `return gp_errf(...)`. */
gp_status gp_errf(gp_err *err, gp_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints "gaprune: [rank R] file:line func: message" and ends the job with `code`. */
_Noreturn void gp_fatal(int code, const char *file, int line, const char *func, const char *fmt,
                        ...) __attribute__((format(printf, 5, 6)));

#define GP_FATAL(...) gp_fatal(1, __FILE__, __LINE__, __func__, __VA_ARGS__)

/* Ends every rank at once with exit status code (MPI_Abort; exit without MPI), the message
 * already printed: for a failure the ranks cannot leave together by returning (h5par.h). */
_Noreturn void gp_abort(int code);

/* Always on, independent of NDEBUG; the message is required. */
#define GP_CHECK(cond, ...)                                                                       \
    do {                                                                                          \
        if (!(cond)) gp_check_fail(__FILE__, __LINE__, __func__, #cond, __VA_ARGS__);            \
    } while (0)
_Noreturn void gp_check_fail(const char *file, int line, const char *func, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* For MPI calls: evaluates once, names the MPI error string. */
#define GP_MPI(call)                                                                              \
    do {                                                                                          \
        int gp_mpi_rc_ = (call);                                                                  \
        if (gp_mpi_rc_ != 0) gp_mpi_fail(gp_mpi_rc_, __FILE__, __LINE__, __func__, #call);        \
    } while (0)
_Noreturn void gp_mpi_fail(int rc, const char *file, int line, const char *func, const char *what);

void *gp_malloc_at(size_t n, const char *file, int line);
void *gp_calloc_at(size_t n, size_t size, const char *file, int line);
void *gp_realloc_at(void *p, size_t n, const char *file, int line);
char *gp_strdup_at(const char *s, const char *file, int line);
char *gp_strndup_at(const char *s, size_t n, const char *file, int line);
#define gp_malloc(n) gp_malloc_at((n), __FILE__, __LINE__)
#define gp_calloc(n, s) gp_calloc_at((n), (s), __FILE__, __LINE__)
#define gp_realloc(p, n) gp_realloc_at((p), (n), __FILE__, __LINE__)
#define gp_strdup(s) gp_strdup_at((s), __FILE__, __LINE__)
#define gp_strndup(s, n) gp_strndup_at((s), (n), __FILE__, __LINE__)

/* Whether reading memory gp_calloc gave and nothing wrote makes it resident on this machine.
 * Most kernels back such reads with the shared zero page (not counted in RSS); some (seen on a
 * Firecracker VM's 6.18 kernel) give every page read a page of its own, so a buffer that is
 * read whole but written in few places costs its full size. Measured once (a 1 MiB probe); the
 * memory plan uses it. */
bool gp_zero_reads_resident(void);

/* Rank used in fatal and log messages; set once by gp_log_init. */
int gp_rank(void);
