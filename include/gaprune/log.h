/*
 * log.h — rank-aware, line-based logging and progress lines.
 *
 * Everything long-running reports on rank 0, one flushed line at a time, so a Slurm log shows
 * it live (no carriage-return bars). Other ranks stay quiet unless something is wrong.
 *
 * Usage:
 *     gp_log_init(rank, nranks);                       // once, after MPI_Init
 *     gp_log0("loaded %s: %zu parameters", dir, n);   // rank 0, stdout
 *     gp_warn("pooling config missing, using mean");   // rank 0, stderr
 *     gp_progress p; gp_progress_init(&p, "encode", total, "texts");
 *     for (...) gp_progress_update(&p, done);          // prints at most every few seconds
 *     gp_progress_done(&p);
 */
#pragma once

#include <stdint.h>

void gp_log_init(int rank, int nranks);
int gp_nranks(void);
/* 0 = quiet, 1 = normal (default), 2 = debug. GAPRUNE_VERBOSE in the environment sets it. */
void gp_log_set_level(int level);
int gp_log_level(void);

void gp_log0(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gp_debug0(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gp_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A warning from whichever rank calls it (gp_warn speaks for all ranks from rank 0): about this
 * rank's own files, say; "[rank R]" names the rank when there are several. */
void gp_warn_here(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic wall clock in seconds. */
double gp_now(void);
/* "2026-11-26T03:44:21Z" into buf (at least 21 bytes). */
void gp_utc_now(char *buf, int n);

typedef struct {
    const char *label; /* stage name, e.g. "encode" */
    const char *unit;  /* "texts", "triplets" */
    int64_t total;
    int64_t last_done;
    int64_t first_done; /* done when this run started (a resumed stage): the rate counts this run's work only */
    double t_start, t_last;
    double every_s; /* minimum seconds between lines (default 5) */
} gp_progress;

void gp_progress_init(gp_progress *p, const char *label, int64_t total, const char *unit);
/* A stage resumed with `done` already done: the lines count from there, the rate and ETA from
 * this run's work alone. */
void gp_progress_resume(gp_progress *p, int64_t done);
/* `done` is the global count (rank 0's estimate is fine when shards are equal). */
void gp_progress_update(gp_progress *p, int64_t done);
void gp_progress_done(gp_progress *p);
