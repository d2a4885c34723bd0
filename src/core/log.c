/* log.c — rank-aware logging and progress lines (see log.h). */
#include "gaprune/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include "gaprune/check.h"

/* Process-wide: the rank never changes after MPI_Init, and passing it through every call
 * would only add noise to the numerical code that sometimes needs to complain. */
static int g_rank = 0, g_nranks = 1, g_level = -1;

void gp_log_init(int rank, int nranks) {
    g_rank = rank;
    g_nranks = nranks;
    /* Line buffering even when stdout is a file (Slurm logs). */
    setvbuf(stdout, NULL, _IOLBF, 0);
}

int gp_rank(void) { return g_rank; }
int gp_nranks(void) { return g_nranks; }

int gp_log_level(void) {
    if (g_level < 0) {
        const char *v = getenv("GAPRUNE_VERBOSE");
        g_level = v ? atoi(v) : 1;
    }
    return g_level;
}

void gp_log_set_level(int level) { g_level = level; }

/* One line in one write: under mpirun the ranks' stderr streams interleave by write, so a line
 * written as prefix, text and newline could be split by another rank's (or mpirun's) lines. */
static void vlog(FILE *f, const char *prefix, const char *fmt, va_list ap) {
    char small[2048], *line = small;
    const size_t pl = prefix ? strlen(prefix) : 0;
    va_list again;
    va_copy(again, ap);
    const int tl = vsnprintf(NULL, 0, fmt, ap);
    const size_t need = pl + (size_t)(tl > 0 ? tl : 0) + 2;
    if (need > sizeof small) line = malloc(need);
    if (!line) { /* no room to assemble it: the line in pieces rather than not at all */
        if (prefix) fputs(prefix, f);
        vfprintf(f, fmt, again);
        fputc('\n', f);
    } else {
        if (pl) memcpy(line, prefix, pl);
        vsnprintf(line + pl, need - pl, fmt, again);
        line[need - 2] = '\n', line[need - 1] = '\0';
        fwrite(line, 1, need - 1, f);
        if (line != small) free(line);
    }
    va_end(again);
    fflush(f);
}

void gp_log0(const char *fmt, ...) {
    if (g_rank != 0 || gp_log_level() < 1) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(stdout, NULL, fmt, ap);
    va_end(ap);
}

void gp_debug0(const char *fmt, ...) {
    if (g_rank != 0 || gp_log_level() < 2) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(stdout, "debug: ", fmt, ap);
    va_end(ap);
}

void gp_warn(const char *fmt, ...) {
    if (g_rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(stderr, "gaprune: warning: ", fmt, ap);
    va_end(ap);
}

void gp_warn_here(const char *fmt, ...) {
    char prefix[48];
    if (g_nranks > 1) snprintf(prefix, sizeof prefix, "gaprune: warning: [rank %d] ", g_rank);
    else snprintf(prefix, sizeof prefix, "gaprune: warning: ");
    va_list ap;
    va_start(ap, fmt);
    vlog(stderr, prefix, fmt, ap);
    va_end(ap);
}

double gp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void gp_utc_now(char *buf, int n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, (size_t)n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void fmt_duration(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e8) {
        snprintf(buf, n, "?");
    } else if (s < 60) {
        snprintf(buf, n, "%.0fs", s);
    } else if (s < 3600) {
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    } else {
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
    }
}

void gp_progress_init(gp_progress *p, const char *label, int64_t total, const char *unit) {
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->last_done = p->first_done = 0;
    p->t_start = p->t_last = gp_now();
    p->every_s = 5.0;
}

void gp_progress_resume(gp_progress *p, int64_t done) { p->last_done = p->first_done = done; }

static void progress_line(gp_progress *p, int64_t done, double now) {
    double el = now - p->t_start;
    double rate = el > 0 ? (double)(done - p->first_done) / el : 0.0;
    char eta[32], elapsed[32];
    fmt_duration(eta, sizeof eta, rate > 0 ? (double)(p->total - done) / rate : -1);
    fmt_duration(elapsed, sizeof elapsed, el);
    gp_log0("[%s] %lld/%lld %s (%.1f%%) %.2f %s/s elapsed %s ETA %s", p->label, (long long)done,
            (long long)p->total, p->unit, p->total ? 100.0 * (double)done / (double)p->total : 100.0,
            rate, p->unit, elapsed, eta);
}

void gp_progress_update(gp_progress *p, int64_t done) {
    double now = gp_now();
    if (now - p->t_last < p->every_s) return;
    p->t_last = now;
    p->last_done = done;
    progress_line(p, done, now);
}

void gp_progress_done(gp_progress *p) { progress_line(p, p->total, gp_now()); }
