/* replay.c — main() of the replay build of a fuzz harness (`make test`): runs the harness's
 * LLVMFuzzerTestOneInput on every committed input, under AddressSanitizer and UBSan, without
 * libFuzzer (so the replay needs no clang).
 *
 *   build/san/fuzz/fuzz_X              replays tests/fuzz/corpus/fuzz_X/ and tests/fuzz/crashes/fuzz_X/
 *   build/san/fuzz/fuzz_X FILE|DIR...  replays those (a crash file found by `make fuzz`, say)
 *
 * Inputs run in name order, each once; a crash, a sanitizer report, a failed invariant or an
 * exit inside the harness (a GP_CHECK that fired) ends the program with the input named on
 * stderr. Run from the repository root.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a harness, as in libFuzzer. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The sanitizers' hook for a report (weak: a build without them has none). */
__attribute__((weak)) void __sanitizer_set_death_callback(void (*callback)(void));

/* The input being run, for the message of a run that does not come back. */
static const char *volatile g_current;

static void name_current(void) {
    const char *p = g_current;
    if (!p) return;
    static const char pre[] = "replay: the input that failed: ";
    ssize_t w = write(2, pre, sizeof pre - 1);
    w = write(2, p, strlen(p));
    w = write(2, "\n", 1);
    (void)w;
}

static void on_signal(int sig) {
    name_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    size_t cap = 1 << 16, n = 0, k;
    uint8_t *buf = malloc(cap);
    while ((k = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += k) == cap) buf = realloc(buf, cap *= 2);
    fclose(f);
    /* an exact-size copy, so that reading one byte past the input is an ASan report as under libFuzzer */
    uint8_t *in = malloc(n ? n : 1);
    memcpy(in, buf, n);
    free(buf);
    g_current = path;
    LLVMFuzzerTestOneInput(in, n);
    g_current = NULL;
    free(in);
    return 0;
}

/* A file, or every file of a folder in name order (a missing folder holds none). Returns the
 * inputs run in *count and the number that could not be read. */
static int run_path(const char *path, int *count) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    DIR *d = opendir(path);
    if (!d) return 1;
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n] = malloc(strlen(path) + strlen(e->d_name) + 2);
        sprintf(names[n++], "%s/%s", path, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        bad += run_path(names[i], count);
        free(names[i]);
    }
    free(names);
    return bad;
}

int main(int argc, char **argv) {
    /* the harness is the program's name: build/san/fuzz/fuzz_X replays fuzz_X's inputs */
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    atexit(name_current);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(name_current);
    signal(SIGABRT, on_signal); /* a failed FZ_ASSERT; the sanitizers catch the faults and call back */
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int count = 0, bad = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) bad += run_path(argv[i], &count);
    } else {
        char dir[4096];
        snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
        bad += run_path(dir, &count);
        snprintf(dir, sizeof dir, "tests/fuzz/crashes/%s", name);
        bad += run_path(dir, &count);
        if (count == 0) {
            fprintf(stderr, "replay: no inputs for %s (run from the repository root)\n", name);
            return 1;
        }
    }
    fprintf(stderr, "%s: %d inputs replayed%s\n", name, count, bad ? ", some could not be read" : "");
    return bad ? 1 : 0;
}
