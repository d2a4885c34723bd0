/* fs.c — file helpers (see fs.h). */
#include "gaprune/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "gaprune/testhook.h"

gp_status gp_read_file(const char *path, char **out, size_t *len, gp_err *err) {
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return gp_errf(err, GP_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = gp_malloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = gp_realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return gp_errf(err, GP_EINPUT, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return GP_OK;
}

bool gp_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool gp_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *gp_path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    while (na > 1 && a[na - 1] == '/') na--;
    char *p = gp_malloc(na + nb + 2);
    memcpy(p, a, na);
    p[na] = '/';
    memcpy(p + na + 1, b, nb + 1);
    return p;
}

char *gp_tmp_path(const char *path) {
    size_t n = strlen(path);
    char *p = gp_malloc(n + 5);
    memcpy(p, path, n);
    memcpy(p + n, ".tmp", 5);
    return p;
}

int gp_write_refused(const char *path) {
    static int matched; /* commits of matching paths so far, in this process */
    const gp_testhooks *h = gp_testhook_get();
    if (!(h->fail_write && strstr(path, h->fail_write) && matched++ >= h->fail_write_after)) return 0;
    return h->fail_write_errno ? h->fail_write_errno : ENOSPC;
}

gp_status gp_commit_tmp(const char *tmp, const char *path, gp_err *err) {
    if (rename(tmp, path) != 0)
        return gp_errf(err, GP_EINPUT, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    return GP_OK;
}

gp_status gp_write_error(gp_err *err, const char *path, const char *reason) {
    return gp_errf(err, GP_EINPUT,
                   "%s: cannot write (%s); the files already complete are kept: make room (or fix the disk) and rerun "
                   "the same command to continue",
                   path, reason);
}

gp_status gp_check_room(const char *path, uint64_t bytes, gp_err *err) {
    char *tmp = gp_tmp_path(path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666), e = 0;
    if (fd < 0) {
        free(tmp);
        return gp_write_error(err, path, strerror(errno));
    }
    if (bytes > 0 && fallocate(fd, 0, 0, (off_t)bytes) != 0) e = errno;
    close(fd);
    remove(tmp);
    free(tmp);
    if (e == EOPNOTSUPP || e == ENOSYS) { /* no allocation ahead here: the free space says it */
        char *dir = gp_strdup(path), *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        struct statvfs vfs;
        e = statvfs(slash ? dir : ".", &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < bytes ? ENOSPC : 0;
        free(dir);
    }
    if (!e) return GP_OK;
    char reason[160];
    snprintf(reason, sizeof reason, "%s: it needs up to %.3g MB", strerror(e), (double)bytes / 1e6);
    return gp_write_error(err, path, reason);
}

FILE *gp_file_create(const char *path, gp_err *err) {
    char *tmp = gp_tmp_path(path);
    FILE *f = fopen(tmp, "wb");
    if (!f) gp_write_error(err, path, strerror(errno));
    free(tmp);
    return f;
}

gp_status gp_file_commit(FILE *f, const char *path, gp_err *err) {
    /* a failed fwrite sets the stream's error flag; the flush at fclose fails with errno set */
    const int bad = ferror(f), saved = errno;
    const int closed = fclose(f);
    char *tmp = gp_tmp_path(path);
    gp_status rc;
    int refused;
    if (bad || closed != 0) {
        remove(tmp);
        rc = gp_write_error(err, path, closed != 0 ? strerror(errno) : saved ? strerror(saved) : "a write failed");
    } else if ((refused = gp_write_refused(path))) {
        remove(tmp);
        rc = gp_write_error(err, path, strerror(refused));
    } else {
        rc = gp_commit_tmp(tmp, path, err);
    }
    free(tmp);
    return rc;
}

gp_status gp_mkdir_p(const char *path, gp_err *err) {
    char *p = gp_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            gp_errf(err, GP_EINPUT, "%s: cannot create directory: %s", p, strerror(errno));
            free(p);
            return GP_EINPUT;
        }
        *s = '/';
    }
    gp_status rc = GP_OK;
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        rc = gp_errf(err, GP_EINPUT, "%s: cannot create directory: %s", p, strerror(errno));
    else if (!gp_dir_exists(p))
        rc = gp_errf(err, GP_EINPUT, "%s: exists and is not a directory", p);
    free(p);
    return rc;
}

gp_status gp_copy_file(const char *src, const char *dst, gp_err *err) {
    FILE *in = fopen(src, "rb");
    if (!in) return gp_errf(err, GP_EINPUT, "%s: cannot open: %s", src, strerror(errno));
    FILE *out = gp_file_create(dst, err);
    if (!out) {
        fclose(in);
        return GP_EINPUT;
    }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0 && fwrite(buf, 1, n, out) == n) continue;
    const int bad_read = ferror(in);
    fclose(in);
    gp_status rc = gp_file_commit(out, dst, err);
    if (!rc && bad_read) {
        remove(dst);
        rc = gp_errf(err, GP_EINPUT, "%s: read error while copying it to %s", src, dst);
    }
    return rc;
}

bool gp_rmtree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = gp_path_join(path, e->d_name);
            gp_rmtree(p);
            free(p);
        }
        if (d) closedir(d);
    }
    return remove(path) == 0;
}
