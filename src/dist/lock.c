/* lock.c — the output folder's lock (see lock.h). */
#include "gaprune/lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/log.h"
#include "gaprune/provenance.h"

static char *g_held; /* rank 0: the lock file this process holds, or NULL */

/* Who holds a lock: what the file says, or what this process would write. */
typedef struct {
    char host[256], job[64];
    long pid;
} holder;

static void this_process(holder *h) {
    memset(h, 0, sizeof *h);
    if (gethostname(h->host, sizeof h->host - 1) != 0) snprintf(h->host, sizeof h->host, "unknown");
    h->pid = (long)getpid();
    const char *job = getenv("SLURM_JOB_ID");
    snprintf(h->job, sizeof h->job, "%.63s", job ? job : "");
}

/* Parses "host H\npid P\nslurm_job J\n..." (the lines written by write_holder); false when the
 * file cannot be read or names no host and pid. */
static bool read_holder(const char *path, holder *h) {
    memset(h, 0, sizeof *h);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "host ", 5)) snprintf(h->host, sizeof h->host, "%.255s", line + 5);
        else if (!strncmp(line, "pid ", 4)) h->pid = strtol(line + 4, NULL, 10);
        else if (!strncmp(line, "slurm_job ", 10)) snprintf(h->job, sizeof h->job, "%.63s", line + 10);
    }
    fclose(f);
    return *h->host && h->pid > 0;
}

/* Whether the lock file at path keeps this process out of dir: GP_OK when it is gone, this
 * process's own, or left by a run that has ended (removed, with a warning); else GP_EINPUT with
 * the message. */
static gp_status check_holder(const char *path, const char *dir, gp_err *err) {
    holder h, me;
    this_process(&me);
    if (!read_holder(path, &h)) {
        if (!gp_file_exists(path)) return GP_OK; /* released meanwhile */
        return gp_errf(err, GP_EINPUT,
                       "%s: in use by another gaprune run (its lock %s does not say which); if no gaprune run uses "
                       "this folder any more, remove %s and rerun",
                       dir, path, path);
    }
    if (!strcmp(h.host, me.host)) {
        if (h.pid == me.pid) return GP_OK;
        if (kill((pid_t)h.pid, 0) == 0 || errno == EPERM)
            return gp_errf(err, GP_EINPUT,
                           "%s: in use by another gaprune run: pid %ld on host %s holds %s; wait for it to end, or give "
                           "this run another [output] dir",
                           dir, h.pid, h.host, path);
        gp_warn("%s: left by pid %ld on host %s, which is no longer running; taking it over", path, h.pid, h.host);
        remove(path);
        return GP_OK;
    }
    if (*h.job && !strcmp(h.job, me.job)) { /* Slurm starts a requeued job once its earlier run ended */
        gp_warn("%s: left by an earlier run of this Slurm job %s (pid %ld on host %s); taking it over", path, h.job,
                h.pid, h.host);
        remove(path);
        return GP_OK;
    }
    return gp_errf(err, GP_EINPUT,
                   "%s: in use by gaprune pid %ld on host %s (lock %s), which cannot be checked from host %s; if no "
                   "gaprune run uses this folder any more, remove %s and rerun",
                   dir, h.pid, h.host, path, me.host, path);
}

/* Rank 0: creates path with O_EXCL and this process's holder lines. 1: taken; 0: taken by
 * someone else (errno EEXIST); -1: the folder cannot take files (EACCES, EROFS); or an error. */
static int create_lock(const char *path, gp_err *err, gp_status *rc) {
    const int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        if (errno == EEXIST) return 0;
        if (errno == EACCES || errno == EROFS) return -1;
        *rc = gp_write_error(err, path, strerror(errno));
        return -1;
    }
    holder me;
    this_process(&me);
    char utc[32];
    gp_utc_now(utc, sizeof utc);
    const int ok = dprintf(fd, "host %s\npid %ld\nslurm_job %s\nstarted %s\ncommand %s\n", me.host, me.pid, me.job, utc,
                           gp_provenance_command()) > 0;
    if (close(fd) != 0 || !ok) {
        const int e = errno;
        remove(path);
        *rc = gp_write_error(err, path, strerror(e));
        return -1;
    }
    return 1;
}

/* Rank 0: whether a lock of the other kind keeps this one out: pair locks for the whole folder,
 * the whole folder's for a pair. */
static gp_status check_others(const char *dir, const char *pair, gp_err *err) {
    if (pair) {
        char *whole = gp_path_join(dir, GP_LOCK_FILE);
        gp_status rc = gp_file_exists(whole) ? check_holder(whole, dir, err) : GP_OK;
        free(whole);
        return rc;
    }
    DIR *d = opendir(dir);
    gp_status rc = GP_OK;
    struct dirent *e;
    while (!rc && d && (e = readdir(d))) {
        const size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, ".gaprune-", 9) || n < 14 || strcmp(e->d_name + n - 5, ".lock")) continue;
        char *p = gp_path_join(dir, e->d_name);
        rc = check_holder(p, dir, err);
        free(p);
    }
    if (d) closedir(d);
    return rc;
}

static gp_status take(const char *dir, const char *pair, gp_err *err) {
    gp_status rc = gp_mkdir_p(dir, err);
    if (rc) return rc;
    char name[256];
    if (pair) snprintf(name, sizeof name, ".gaprune-%s.lock", pair);
    else snprintf(name, sizeof name, "%s", GP_LOCK_FILE);
    char *path = gp_path_join(dir, name);
    /* twice at most: once more after a stale lock was removed */
    for (int tries = 0; tries < 2 && !rc && !g_held; tries++) {
        const int got = create_lock(path, err, &rc);
        if (got > 0) g_held = path;
        else if (got < 0 && !rc) gp_debug0("lock: %s cannot take files; not locked", dir);
        if (got != 0) break;
        rc = check_holder(path, dir, err);
    }
    if (!rc && g_held) {
        rc = check_others(dir, pair, err);
        if (rc) {
            remove(g_held);
            g_held = NULL;
        }
    }
    if (!rc && !g_held && gp_file_exists(path)) rc = check_holder(path, dir, err); /* taken again meanwhile */
    if (g_held != path) free(path);
    return rc;
}

gp_status gp_lock_take(const char *dir, const char *pair, gp_err *err) {
    gp_status rc = gp_rank() == 0 && !g_held ? take(dir, pair, err) : GP_OK;
    return gp_agree(rc, err);
}

void gp_lock_release(void) {
    gp_barrier(); /* every rank has stopped writing */
    if (!g_held) return;
    holder h, me;
    this_process(&me);
    if (read_holder(g_held, &h) && h.pid == me.pid && !strcmp(h.host, me.host)) remove(g_held);
    free(g_held);
    g_held = NULL;
}
