/* fuzz_job.c — INI job files and --set overrides (job.h).
 *
 * Input: the job file's text, then optionally a NUL and up to 8 NUL-separated overrides
 * ("section.key=value", as --set gives them); an override that starts with '@' is given an
 * origin of its own ("--method ...", as the command options that stand for a key are named).
 * The job is loaded as every command loads it (gp_job_load), and a job that loads is printed
 * (gp_job_print: every key's effective value, the start-up dump). A job from the file alone
 * must load again from that print with the same values (or, when escaping made a line longer
 * than the reader takes, be refused for that line); an override can hold what no line of a file
 * can (a newline in a list), so the print of a job with overrides is only made.
 */
#include "fuzz_util.h"

#include "gaprune/job.h"
#include "gaprune/log.h"

static char g_path[PATH_MAX], g_print[PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = fz_scratch("job");
    fz_path(g_path, dir, "job.ini");
    fz_path(g_print, dir, "printed.ini");
    return 0;
}

static char *print_to(const gp_job *job, const char *path) {
    FILE *f = fopen(path, "w");
    FZ_ASSERT(f);
    gp_job_print(job, f);
    fclose(f);
    char *text = NULL;
    size_t n;
    gp_err err = {0};
    FZ_ASSERT(gp_read_file(path, &text, &n, &err) == GP_OK);
    return text;
}

/* The print of a loaded job is a job file that loads to the same values: printed again, it is
 * the same text. */
static void print_round_trip(const gp_job *job) {
    char *once = print_to(job, g_print);
    gp_job again;
    gp_err err = {0};
    if (gp_job_load(&again, g_print, NULL, NULL, 0, &err) != GP_OK) {
        gp_job_free(&again);
        free(once);
        /* escaping lengthens a value: a line past the reader's limit is refused as such */
        if (strstr(err.msg, "characters long; a job-file line holds at most")) return;
        fprintf(stderr, "fuzz: the printed job does not load: %s\n", err.msg);
        FZ_ASSERT(0);
    }
    char *twice = print_to(&again, g_print);
    FZ_ASSERT(!strcmp(once, twice));
    free(once);
    free(twice);
    gp_job_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[9];
    size_t len[9];
    const int n = fz_split(data, size, 0, part, len, 9);
    fz_write(g_path, part[0], len[0]);
    char *sets[8], *origins[8];
    bool any_origin = false;
    for (int i = 1; i < n; i++) {
        sets[i - 1] = fz_strndup(part[i], len[i]);
        origins[i - 1] = NULL;
        if (sets[i - 1][0] == '@') {
            origins[i - 1] = sets[i - 1];
            sets[i - 1] = strdup(sets[i - 1] + 1);
            any_origin = true;
        }
    }
    gp_log_set_level(0); /* convert's warnings; the loader prints nothing else */
    gp_job job;
    gp_err err = {0};
    if (gp_job_load(&job, g_path, (const char *const *)sets, any_origin ? (const char *const *)origins : NULL, n - 1,
                    &err) == GP_OK) {
        if (n == 1) print_round_trip(&job);
        else free(print_to(&job, g_print));
    } else {
        FZ_ASSERT(err.code == GP_EINPUT && err.msg[0]);
    }
    gp_job_free(&job);
    for (int i = 0; i < n - 1; i++) free(sets[i]), free(origins[i]);
    return 0;
}
