/* fs.c — file helpers (see fs.h). */
#include "gaprune/fs.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

gp_status gp_commit_tmp(const char *tmp, const char *path, gp_err *err) {
    if (rename(tmp, path) != 0)
        return gp_errf(err, GP_EINPUT, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    return GP_OK;
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
    char *tmp = gp_tmp_path(dst);
    FILE *out = fopen(tmp, "wb");
    if (!out) {
        fclose(in);
        gp_errf(err, GP_EINPUT, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return GP_EINPUT;
    }
    char buf[1 << 16];
    size_t n;
    int bad = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) bad = 1;
    bad |= ferror(in);
    fclose(in);
    bad |= fclose(out) != 0;
    gp_status rc = GP_OK;
    if (bad) {
        rc = gp_errf(err, GP_EINPUT, "%s: copy to %s failed", src, tmp);
        remove(tmp);
    } else {
        rc = gp_commit_tmp(tmp, dst, err);
    }
    free(tmp);
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
