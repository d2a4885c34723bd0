/* test_util.h — shared helpers for the cmocka tests (header-only, test code only). */
#pragma once

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "gaprune/tokenizer.h"

/* Fixture folder; tests run from the repository root. */
#define FIXTURES "tests/fixtures"

/* A fresh scratch directory under $TMPDIR (or /tmp); removed by tu_rmtree. */
static inline char *tu_mkdtemp(void) {
    const char *base = getenv("TMPDIR");
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/gaprune-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(p)) {
        perror("mkdtemp");
        abort();
    }
    return p;
}

static inline void tu_rmtree(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static inline void tu_sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0) fail_msg("command failed (%d): %s", rc, cmd);
}

/* The environment for running gaprune under mpirun from a test: leak reports off (Open MPI's
 * allocations at exit are not ours), root and more ranks than cores allowed, one thread per rank
 * (gaprune holds OpenBLAS at one thread anyway; OMP_NUM_THREADS reaches ranks through the
 * environment mpirun starts them with). */
static inline void tu_mpi_env(void) {
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
}

/* Every fault hook of gaprune's test hooks off (main.c reads them; the tests that set one set
 * it on the command line of that run only), so that nothing left in the environment fires. */
static inline void tu_testhooks_off(void) {
    setenv("GAPRUNE_TEST_KILL_AFTER_CHECKPOINT", "0", 1);
    setenv("GAPRUNE_TEST_SIGNAL_AT_STEP", "-1", 1);
    setenv("GAPRUNE_TEST_UNIT_DELAY_MS", "0", 1);
    setenv("GAPRUNE_TEST_FAIL_WRITE", "", 1);
    setenv("GAPRUNE_TEST_FAIL_WRITE_AFTER", "0", 1);
    setenv("GAPRUNE_TEST_FAIL_WRITE_ERRNO", "0", 1);
}

/* The scratch directory of a program that runs jobs: tu_mkdtemp, the MPI environment, the test
 * hooks off, and the fixtures' calibration corpora copied in (domain.json, general.jsonl). */
static inline char *tu_job_scratch(void) {
    char *dir = tu_mkdtemp();
    tu_mpi_env();
    tu_testhooks_off();
    tu_sh("cp " FIXTURES "/corpora/domain.json " FIXTURES "/corpora/general.jsonl '%s'", dir);
    return dir;
}

/* Fails unless t encodes text[0..len) with max_len into exactly want[0..n); prints both. */
static inline void tu_expect_ids(const gp_tokenizer *t, const char *text, size_t len, int max_len, const int32_t *want,
                                 int n) {
    int32_t *ids;
    int got = gp_tokenizer_encode(t, text, len, max_len, &ids);
    int ok = got == n;
    for (int i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    if (!ok) {
        fprintf(stderr, "text \"%.*s\": got", (int)(len > 60 ? 60 : len), text);
        for (int i = 0; i < got; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, ", want");
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    assert_true(ok);
}

/* Runs a command line with sh in dir, stdout to dir/out.txt and stderr to dir/err.txt; returns
 * its exit status (128 when it did not exit). */
static inline int tu_run_in(const char *dir, const char *fmt, ...) {
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s >out.txt 2>err.txt", dir, args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* The gaprune binary under test: $GAPRUNE_BIN (the sanitizer build, set by tests/run_tests.sh). */
static inline const char *tu_bin(void) {
    const char *b = getenv("GAPRUNE_BIN");
    return b ? b : "build/san/gaprune";
}

/* The same as an absolute path, for commands run from a test's own folder (tu_run_in cds there). */
static inline const char *tu_bin_abs(void) {
    static char abs[4096];
    if (!realpath(tu_bin(), abs)) fail_msg("no gaprune binary at %s", tu_bin());
    return abs;
}

/* Runs a command line (from the current folder) with stdout to dir/out and stderr to dir/err;
 * returns its exit status (128 when it did not exit). */
static inline int tu_run_to(const char *dir, const char *fmt, ...) {
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s >'%s/out' 2>'%s/err'", args, dir, dir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* Fails when a program's stderr holds a sanitizer report. */
/* The standard output of a shell command (malloc'd); the command must exit 0. */
static inline char *tu_output(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0, k;
    char *out = malloc(cap);
    while ((k = fread(out + len, 1, cap - len - 1, p)) > 0)
        if ((len += k) + 1 >= cap) out = realloc(out, cap *= 2);
    out[len] = '\0';
    assert_int_equal(pclose(p), 0);
    return out;
}

/* `h5dump ARGS` (ARGS from fmt) without its first line (it names the file) and without the
 * attributes named in skip (NULL-terminated: those that record the run, such as command or
 * created_utc), for comparing two files' contents; malloc'd. */
static inline char *tu_h5dump_without(const char *const *skip, const char *fmt, ...) {
    char args[4096], cmd[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "h5dump %s", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap), line[8192], skip_to[256] = "";
    out[0] = '\0';
    for (int first = 1; fgets(line, sizeof line, p); first = 0) {
        if (first) continue; /* HDF5 "<path>" { */
        if (*skip_to) { /* inside a skipped attribute until its closing brace at its indent */
            if (!strcmp(line, skip_to)) *skip_to = '\0';
            continue;
        }
        const char *a = strstr(line, "ATTRIBUTE \"");
        bool skipped = false;
        for (int k = 0; a && skip[k] && !skipped; k++) {
            const size_t n = strlen(skip[k]);
            skipped = !strncmp(a + 11, skip[k], n) && a[11 + n] == '"';
        }
        if (skipped) {
            snprintf(skip_to, sizeof skip_to, "%.*s}\n", (int)(a - line), line);
            continue;
        }
        size_t k = strlen(line);
        while (len + k + 1 > cap) out = realloc(out, cap *= 2);
        memcpy(out + len, line, k + 1);
        len += k;
    }
    assert_int_equal(pclose(p), 0);
    return out;
}

static inline void tu_assert_no_sanitizer(const char *err) {
    if (strstr(err, "AddressSanitizer") || strstr(err, "runtime error") || strstr(err, "LeakSanitizer"))
        fail_msg("sanitizer report:\n%s", err);
}

/* The whole file, NUL-terminated and malloc'd (*len its size when len is not NULL), or NULL
 * when it cannot be opened. */
static inline char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = '\0';
    fclose(f);
    if (len) *len = got;
    return b;
}

/* dir/name, as tu_read_file. */
static inline char *tu_read_in(const char *dir, const char *name) {
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return tu_read_file(p, NULL);
}

/* Flips byte `at` of dataset name's stored data in the HDF5 file at path (of its first chunk when
 * it is chunked): the damage on disk a checkpoint's checksums must catch. */
static inline void tu_flip_data_byte(const char *path, const char *name, long at) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) fail_msg("cannot open %s", path);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) fail_msg("%s: no dataset %s", path, name);
    haddr_t addr = H5Dget_offset(d);
    if (addr == HADDR_UNDEF) {
        hid_t sp = H5Dget_space(d);
        hsize_t off[H5S_MAX_RANK], size = 0;
        unsigned filters = 0;
        assert_true(H5Dget_chunk_info(d, sp, 0, off, &filters, &addr, &size) >= 0 && size > (hsize_t)at);
        H5Sclose(sp);
    }
    H5Dclose(d);
    H5Fclose(f);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, (long)addr + at, SEEK_SET), 0);
    const int c = fgetc(fp);
    assert_true(c != EOF);
    assert_int_equal(fseek(fp, (long)addr + at, SEEK_SET), 0);
    fputc(c ^ 0xff, fp);
    fclose(fp);
}

static inline void tu_write(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A statistics file of the fixture model `model` (tests/fixtures/MODEL) on the fixture corpora,
 * `lines` being the job lines that change the statistics ("[prune]\nlayers = linear\n"; "" for
 * the defaults), copied to out_dir/stats.h5: a `gaprune score` (or stats) of a job on the same
 * inputs finds it complete. The tests that score, inspect or damage statistics need them, not
 * their making (test_stats checks that), so each one is made once per run of tests/run_tests.sh,
 * by the binary under test, in the run's GAPRUNE_TEST_CACHE (without it, in out_dir). */
static inline void tu_stats_fixture(const char *model, const char *lines, const char *out_dir) {
    const char *cache = getenv("GAPRUNE_TEST_CACHE");
    char root[2048], made[4200], stats[4300], ini[4300], text[16384];
    if (!getcwd(root, sizeof root)) fail_msg("getcwd failed");
    uint64_t key = 1469598103934665603ull; /* FNV-1a of model, a separator and lines */
    for (const char *t = model; *t; t++) key = (key ^ (uint8_t)*t) * 1099511628211ull;
    key = (key ^ 0xffu) * 1099511628211ull;
    for (const char *t = lines; *t; t++) key = (key ^ (uint8_t)*t) * 1099511628211ull;
    if (cache && *cache)
        snprintf(made, sizeof made, "%s/stats-%016llx", cache, (unsigned long long)key);
    else
        snprintf(made, sizeof made, "%s", out_dir);
    snprintf(stats, sizeof stats, "%s/stats.h5", made);
    if (access(stats, F_OK) != 0) {
        snprintf(ini, sizeof ini, "%s.ini", made);
        snprintf(text, sizeof text,
                 "[model]\npath = %s/" FIXTURES "/%s\n[data]\ndomain = %s/" FIXTURES "/corpora/domain.json\n"
                 "general = %s/" FIXTURES "/corpora/general.jsonl\n%s[output]\ndir = %s\n",
                 root, model, root, root, lines, made);
        tu_write(ini, text);
        tu_sh("'%s' stats '%s' >'%s.log' 2>&1", tu_bin_abs(), ini, made);
    }
    if (strcmp(made, out_dir) != 0) tu_sh("mkdir -p '%s' && cp '%s' '%s/'", out_dir, stats, out_dir);
}

/* ‖a − b‖ / ‖b‖ in double. */
static inline double tu_rel_err(const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

static inline double tu_max_abs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Deterministic uniform [-1, 1) and normal-ish numbers. */
static inline double tu_rand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static inline void tu_fill(float *x, size_t n, double scale, uint64_t *s) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * tu_rand(s));
}

/* Long cases (issue 28): `make test` must finish within 6 minutes on 2 cores, so the costly cases
 * run in `make test-long` instead; nothing is dropped, only moved. In a program's list of cases,
 * tu_long_test(f) marks a long case and tu_long_needs(f) a short case whose output a long case
 * reads (it runs in both targets, so that a long case never depends on a case left out). They
 * are told apart by their (empty) per-case setup, so that the names stay the functions'. */
static inline int tu_long_case(void **state) {
    (void)state;
    return 0;
}
static inline int tu_needed_by_long(void **state) {
    (void)state;
    return 0;
}
#define tu_long_test(f) cmocka_unit_test_setup(f, tu_long_case)
#define tu_long_needs(f) cmocka_unit_test_setup(f, tu_needed_by_long)

/* cmocka_run_group_tests_name with the cases of this target: GAPRUNE_TEST_LONG unset or 0 (make
 * test), every case but the long ones, whose count and names are printed for run_tests.sh's
 * summary; 1 (make test-long), the long ones and those they need; all, every case.
 * GP_TEST_FILTER=PATTERN (cmocka's * and ?) narrows to the matching names, while iterating. */
#define tu_run_group(name, tests, setup, teardown) \
    tu_run_group_(name, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)
static inline int tu_run_group_(const char *name, const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
                                CMFixtureFunction teardown) {
    const char *mode = getenv("GAPRUNE_TEST_LONG");
    const bool all = mode && strcmp(mode, "all") == 0, only_long = mode && strcmp(mode, "1") == 0;
    struct CMUnitTest *pick = calloc(n, sizeof *pick);
    size_t k = 0, left = 0;
    char names[2048] = "";
    for (size_t i = 0; i < n; i++) {
        const bool is_long = tests[i].setup_func == tu_long_case;
        const bool needed = tests[i].setup_func == tu_needed_by_long;
        if (all || (only_long ? is_long || needed : !is_long)) {
            pick[k++] = tests[i];
        } else if (is_long) {
            size_t at = strlen(names);
            snprintf(names + at, sizeof names - at, "%s%s", left ? ", " : "", tests[i].name);
            left++;
        }
    }
    if (getenv("GP_TEST_FILTER")) cmocka_set_test_filter(getenv("GP_TEST_FILTER"));
    if (left) {
        printf("[   LONG   ] %zu test(s) left to make test-long: %s\n", left, names);
        /* for run_tests.sh's count; once, from mpirun's rank 0 (each rank inherits the variable) */
        const char *path = getenv("GAPRUNE_TEST_LONG_LEFT"), *rank = getenv("OMPI_COMM_WORLD_RANK");
        FILE *f = path && *path && (!rank || strcmp(rank, "0") == 0) ? fopen(path, "a") : NULL;
        if (f) {
            fprintf(f, "%zu %s\n", left, names);
            fclose(f);
        }
    }
    const int rc = _cmocka_run_group_tests(name, pick, k, setup, teardown);
    free(pick);
    return rc;
}
