/* fuzz_util.h — shared helpers of the libFuzzer harnesses in tests/fuzz (header-only, test code).
 *
 * A harness defines LLVMFuzzerTestOneInput (and usually LLVMFuzzerInitialize). It is built two
 * ways from the same source: with clang and -fsanitize=fuzzer for `make fuzz` (libFuzzer's
 * main), and with the project's compiler, AddressSanitizer and UBSan and tests/fuzz/replay.c's
 * main for `make test`, which replays the committed corpus and crash inputs (that build defines
 * GP_FUZZ_REPLAY). So a harness must be deterministic, free everything it allocates (leaks are
 * reported) and must not depend on libFuzzer's runtime.
 *
 * Inputs reach the parsers as files: each harness writes them into its scratch folder
 * (fz_scratch: under $TMPDIR, else /dev/shm, else /tmp; removed at exit), the way gaprune reads
 * them. Every harness runs from the repository root (FZ_FIXTURES is relative to it).
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gaprune/fs.h"

#define FZ_FIXTURES "tests/fixtures"

/* An invariant the code under test promises: a broken one is a finding, like a crash. */
#define FZ_ASSERT(cond)                                                                                         \
    do {                                                                                                        \
        if (!(cond)) {                                                                                          \
            fprintf(stderr, "fuzz: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                                            \
        }                                                                                                       \
    } while (0)

static char fz_scratch_dir[PATH_MAX];

static inline void fz_cleanup(void) {
    if (fz_scratch_dir[0]) gp_rmtree(fz_scratch_dir);
}

/* The harness's scratch folder, made once per process. */
static inline const char *fz_scratch(const char *name) {
    if (fz_scratch_dir[0]) return fz_scratch_dir;
    const char *base = getenv("TMPDIR");
    if (!base || access(base, W_OK) != 0) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    if (snprintf(fz_scratch_dir, sizeof fz_scratch_dir, "%s/gaprune-%s-XXXXXX", base, name) >= PATH_MAX ||
        !mkdtemp(fz_scratch_dir)) {
        fprintf(stderr, "fuzz: mkdtemp %s: %s\n", fz_scratch_dir, strerror(errno));
        abort();
    }
    atexit(fz_cleanup);
    return fz_scratch_dir;
}

/* dir/name into a caller's buffer of PATH_MAX bytes. */
static inline const char *fz_path(char *buf, const char *dir, const char *name) {
    if (snprintf(buf, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX) abort();
    return buf;
}

/* Replaces the file at path (a link or a file) with n bytes. */
static inline void fz_write(const char *path, const void *p, size_t n) {
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
}

static inline void fz_mkdir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz: mkdir %s: %s\n", path, strerror(errno));
        abort();
    }
}

/* path becomes a symbolic link to the fixture file FZ_FIXTURES/rel (absolute, so that the link
 * works from any folder). */
static inline void fz_link_fixture(const char *rel, const char *path) {
    char src[PATH_MAX], abs[PATH_MAX];
    if (snprintf(src, sizeof src, "%s/%s", FZ_FIXTURES, rel) >= PATH_MAX || !realpath(src, abs)) {
        fprintf(stderr, "fuzz: fixture %s: %s (run from the repository root)\n", src, strerror(errno));
        abort();
    }
    unlink(path);
    if (symlink(abs, path) != 0) {
        fprintf(stderr, "fuzz: symlink %s: %s\n", path, strerror(errno));
        abort();
    }
}

/* A model folder at dir whose files are links to those of the fixture folder FZ_FIXTURES/fixture
 * (the names listed, NULL-terminated; "a/b" makes folder a first). */
static inline void fz_fixture_folder(const char *fixture, const char *const *names, const char *dir) {
    fz_mkdir(dir);
    for (const char *const *n = names; *n; n++) {
        char rel[PATH_MAX], path[PATH_MAX];
        const char *slash = strchr(*n, '/');
        if (slash) {
            if (snprintf(path, sizeof path, "%s/%.*s", dir, (int)(slash - *n), *n) >= PATH_MAX) abort();
            fz_mkdir(path);
        }
        if (snprintf(rel, sizeof rel, "%s/%s", fixture, *n) >= PATH_MAX) abort();
        fz_link_fixture(rel, fz_path(path, dir, *n));
    }
}

/* Cuts data at each byte sep into at most max parts (the last part keeps any further seps);
 * returns the count. */
static inline int fz_split(const uint8_t *data, size_t size, uint8_t sep, const uint8_t **part, size_t *len, int max) {
    int n = 0;
    size_t at = 0;
    while (n < max - 1) {
        const uint8_t *s = memchr(data + at, sep, size - at);
        if (!s) break;
        part[n] = data + at;
        len[n++] = (size_t)(s - (data + at));
        at = (size_t)(s - data) + 1;
    }
    part[n] = data + at;
    len[n++] = size - at;
    return n;
}

/* A NUL-terminated malloc'd copy of n bytes. */
static inline char *fz_strndup(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}
