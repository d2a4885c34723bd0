/* test_outdir.c — the output folder under stress (issue 14): `gaprune` end to end (the sanitizer
 * build, under mpirun) on 1 and 2 ranks.
 *
 *  - A full disk. When the test may mount a tmpfs (root), the output folder is on one, filled
 *    up to a chosen number of free bytes, and a real write fails with ENOSPC: a statistics
 *    checkpoint midway (written serially by each rank), stats.h5 (written in parallel: refused
 *    before anything is written), a mask file, a pruned folder, a retraining checkpoint (written
 *    in parallel), an evaluation file and the report. Where no tmpfs can be mounted, the test
 *    hook GAPRUNE_TEST_FAIL_WRITE refuses the same files as a full disk would (ENOSPC at their
 *    commit); with one, the hook runs too in two scenarios (a checkpoint, the stdio files). Each failure: exit 2 (not 1, no crash), a message naming the file and "No space
 *    left on device", no .tmp left behind, every file that was there before unchanged, the last
 *    complete checkpoint kept (`latest` still names it), the lock released; then, with the room
 *    back, the rerun resumes and its output equals an uninterrupted run's bit for bit.
 *  - The lock: a second run on a folder in use exits 2 naming the folder, the host and the pid
 *    (a real concurrent run, and a lock naming a live process); a lock left by a dead process is
 *    taken over with a warning; a lock from another host is refused with how to remove it,
 *    unless it names this Slurm job (a requeued job); `run --only` pair locks let a sweep's tasks
 *    share the folder but not with a whole-folder run; exit 3 releases the lock too.
 */
#include "h5_edit.h"
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "gaprune/fs.h"
#include "gaprune/h5par.h"
#include "gaprune/model.h"

static char *g_dir;       /* the scratch folder; jobs and references live here */
static char g_disk[2048]; /* <g_dir>/disk: the output folders under test; a tmpfs when g_tmpfs */
static bool g_tmpfs;
static char g_bin[4096];

/* How a run is kept from writing: free bytes left on the tmpfs, or the test hook's path pattern
 * and the matching commits that still succeed. */
typedef enum { MODE_TMPFS, MODE_HOOK } mode;
static const char *const k_mode_name[2] = {"tmpfs", "hook"};

/* ---- helpers ----------------------------------------------------------------------------------- */

/* <g_dir>/<name>.ini writing into disk/<out>; extra appended. */
static void write_job(const char *name, const char *out, const char *extra) {
    char p[4400], cwd[2048], text[8192];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(p, sizeof p, "%s/%s.ini", g_dir, name);
    snprintf(text, sizeof text,
             "[model]\npath = %s/" FIXTURES "/bert-tiny\n[data]\ndomain = %s/" FIXTURES "/corpora/domain.json\n"
             "general = %s/" FIXTURES "/corpora/general.jsonl\n[retrain]\nlr = 1e-3\nwarmup = 2\n[output]\ndir = %s\n%s",
             cwd, cwd, cwd, out, extra ? extra : "");
    tu_write(p, text);
}

/* `gaprune ARGS` on np ranks in g_dir with env ("VAR=value ...", or NULL) set for it. */
static int gp(int np, const char *env, const char *fmt, ...) {
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return tu_run_in(g_dir,
                     "%s mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS -x GAPRUNE_TEST_KILL_AFTER_CHECKPOINT "
                     "-x GAPRUNE_TEST_FAIL_WRITE -x GAPRUNE_TEST_FAIL_WRITE_AFTER -x GAPRUNE_TEST_FAIL_WRITE_ERRNO "
                     "-x GAPRUNE_TEST_SIGNAL_AT_STEP "
                     "-x GAPRUNE_TEST_UNIT_DELAY_MS %s %s",
                     env ? env : "", np, g_bin, args);
}

static char *slurp(const char *name) {
    char *b = tu_read_in(g_dir, name);
    assert_non_null(b);
    return b;
}

/* stderr of the last run holds every one of the texts (NULL-terminated), and no sanitizer report */
static void err_has(const char *const *want) {
    char *e = slurp("err.txt");
    tu_assert_no_sanitizer(e);
    for (int i = 0; want[i]; i++)
        if (!strstr(e, want[i])) fail_msg("expected \"%s\" in stderr:\n%s", want[i], e);
    free(e);
}

static void out_has(const char *want) {
    char *o = slurp("out.txt");
    if (!strstr(o, want)) fail_msg("expected \"%s\" in stdout:\n%s", want, o);
    free(o);
}

static double disk_used(void) {
    struct statvfs v;
    assert_int_equal(statvfs(g_disk, &v), 0);
    return (double)(v.f_blocks - v.f_bfree) * (double)v.f_frsize;
}

/* Fills the tmpfs until `leave` bytes are free (the filler takes the rest). */
static void fill_disk(double leave) {
    char p[4400];
    snprintf(p, sizeof p, "%s/filler", g_disk);
    remove(p);
    struct statvfs v;
    assert_int_equal(statvfs(g_disk, &v), 0);
    const double avail = (double)v.f_bavail * (double)v.f_frsize;
    assert_true(avail > leave);
    const off_t n = (off_t)((avail - leave) / 4096) * 4096;
    const int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    if (n > 0 && fallocate(fd, 0, 0, n) != 0) fail_msg("fallocate %s: %s", p, strerror(errno));
    close(fd);
}

static void unfill_disk(void) {
    char p[4400];
    snprintf(p, sizeof p, "%s/filler", g_disk);
    remove(p);
}

/* The size of a file under disk/ */
static double size_of(const char *rel) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", g_disk, rel);
    struct stat st;
    if (stat(p, &st) != 0) fail_msg("no %s", p);
    return (double)st.st_size;
}

/* sha256sum of every file under disk/<out> (the lock aside), sorted: malloc'd */
static char *snapshot(const char *out) {
    return tu_output("cd '%s/%s' 2>/dev/null && find . -type f ! -name .gaprune.lock -exec sha256sum {} + | sort", g_disk, out);
}

/* After a refused write: every file of `before` unchanged, no .tmp anywhere, no lock left. */
static void check_kept(const char *out, const char *before) {
    char *now = snapshot(out);
    for (const char *l = before; *l;) {
        const size_t n = strcspn(l, "\n");
        char line[8192];
        snprintf(line, sizeof line, "%.*s\n", (int)n, l);
        if (!strstr(now, line)) fail_msg("%s: changed or gone after the refused write: %s", out, line);
        l += n + (l[n] == '\n');
    }
    free(now);
    char *tmp = tu_output("find '%s/%s' -name '*.tmp' -o -name '.gaprune*.lock'", g_disk, out);
    if (*tmp) fail_msg("left behind after the refused write:\n%s", tmp);
    free(tmp);
}

/* Keeps the next run from writing: in tmpfs mode `leave` bytes free, in hook mode the commits of
 * paths containing `hook` fail after `after` of them succeeded. */
static const char *limit_env(mode md, double leave, const char *hook, int after) {
    static char env[512];
    if (md == MODE_TMPFS) {
        fill_disk(leave);
        return NULL;
    }
    snprintf(env, sizeof env, "GAPRUNE_TEST_FAIL_WRITE='%s' GAPRUNE_TEST_FAIL_WRITE_AFTER=%d", hook, after);
    return env;
}

/* The weights of two model folders, bitwise (their metadata name the paths they came from). */
static bool same_weights(const char *a, const char *b) {
    gp_model *x, *y;
    gp_err err = {0};
    if (gp_model_load(a, &x, &err) || gp_model_load(b, &y, &err)) fail_msg("%s", err.msg);
    const bool same = x->table.total == y->table.total && !memcmp(x->params, y->params, x->table.total * sizeof(float));
    gp_model_free(x);
    gp_model_free(y);
    return same;
}

static int setup(void **state) {
    (void)state;
    g_dir = tu_mkdtemp();
    tu_mpi_env();
    tu_testhooks_off();
    const char *b = getenv("GAPRUNE_BIN");
    if (!realpath(b ? b : "build/san/gaprune", g_bin)) return -1;
    snprintf(g_disk, sizeof g_disk, "%s/disk", g_dir);
    if (mkdir(g_disk, 0755) != 0) return -1;
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=16m tmpfs '%s' 2>/dev/null", g_disk);
    /* GP_TEST_NO_TMPFS=1 runs the test as where no tmpfs can be mounted: the hook everywhere */
    g_tmpfs = !getenv("GP_TEST_NO_TMPFS") && system(cmd) == 0;
    printf("    output folders on %s\n", g_tmpfs ? "a 16 MB tmpfs: a full disk for real, and the test hook"
                                                 : "the scratch folder (no tmpfs can be mounted here): the test hook only");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (g_tmpfs) {
        char cmd[4600];
        snprintf(cmd, sizeof cmd, "umount '%s'", g_disk);
        if (system(cmd) != 0) fprintf(stderr, "could not unmount %s\n", g_disk);
    }
    tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* The modes a scenario runs: the tmpfs when mounted; the hook where it is not, and in the
 * scenarios that keep the hook itself checked (hook_too) everywhere. */
static int n_modes(void) { return 2; }
static bool mode_runs(mode md, bool hook_too) { return md == MODE_TMPFS ? g_tmpfs : !g_tmpfs || hook_too; }

/* ---- a full disk in each stage ------------------------------------------------------------------- */

/* A statistics checkpoint refused midway (checkpoint_every 1: the third). */
static void test_stats_checkpoint(void **state) {
    (void)state;
    const char *extra = "[stats]\ncheckpoint_every = 1\n[prune]\nlayers = linear\n";
    for (int np = 1; np <= 2; np++) {
        char ref[2048], p[4400], q[4400];
        snprintf(ref, sizeof ref, "%s/ckref%d", g_dir, np);
        write_job("ckref", ref, extra);
        assert_int_equal(gp(np, NULL, "stats ckref.ini"), 0);
        for (int md = 0; md < n_modes(); md++) {
            if (!mode_runs((mode)md, true)) continue;
            write_job("ck", "disk/ck", extra);
            double leave = 0;
            if (md == MODE_TMPFS) { /* the room of two checkpoints, not three */
                const double u0 = disk_used();
                assert_int_not_equal(gp(np, "GAPRUNE_TEST_KILL_AFTER_CHECKPOINT=2", "stats ck.ini"), 0);
                leave = disk_used() - u0 + 16384;
                tu_sh("rm -rf '%s/ck'", g_disk);
            }
            const char *env = limit_env((mode)md, leave, np == 2 ? "rank-1.h5" : "rank-0.h5", 2);
            assert_int_equal(gp(np, env, "stats ck.ini"), 2);
            unfill_disk();
            err_has((const char *const[]){"disk/ck/stats.ranks/rank-", ".h5: cannot write (No space left on device",
                                          "rerun the same command to continue", NULL});
            check_kept("ck", "");
            snprintf(p, sizeof p, "%s/ck/stats.ranks/latest", g_disk);
            char *latest = tu_read_file(p, NULL);
            assert_non_null(latest);
            assert_int_equal(strncmp(latest, "step 2\n", 7), 0); /* the last complete checkpoint */
            free(latest);
            snprintf(p, sizeof p, "%s/ck/stats.h5", g_disk);
            assert_false(gp_file_exists(p));
            assert_int_equal(gp(np, NULL, "stats ck.ini"), 0);
            out_has("stats: resuming from step 2");
            snprintf(q, sizeof q, "%s/stats.h5", ref);
            const int n = h5e_equal_files(p, q);
            assert_true(n > 30);
            printf("    %s, %d rank(s): checkpoint 3 refused: exit 2, step 2 kept; resumed: %d datasets bitwise equal\n",
                   k_mode_name[md], np, n);
            tu_sh("rm -rf '%s/ck'", g_disk);
        }
    }
}

/* An I/O error (EIO, through the hook) is a refused write too: on 1 and 2 ranks a statistics
 * checkpoint refused with it gives exit 2 naming the file and the error, keeps the checkpoint
 * before it, and the rerun resumes and ends bitwise as an uninterrupted pass. */
static void test_io_error(void **state) {
    (void)state;
    const char *extra = "[stats]\ncheckpoint_every = 1\n[prune]\nlayers = linear\n";
    for (int np = 1; np <= 2; np++) {
        char ref[2048], p[4400], q[4400], env[256];
        snprintf(ref, sizeof ref, "%s/eioref%d", g_dir, np);
        write_job("eioref", ref, extra);
        assert_int_equal(gp(np, NULL, "stats eioref.ini"), 0);
        write_job("eio", "eio", extra);
        snprintf(env, sizeof env, "GAPRUNE_TEST_FAIL_WRITE='%s' GAPRUNE_TEST_FAIL_WRITE_AFTER=2 GAPRUNE_TEST_FAIL_WRITE_ERRNO=EIO",
                 np == 2 ? "rank-1.h5" : "rank-0.h5");
        assert_int_equal(gp(np, env, "stats eio.ini"), 2);
        err_has((const char *const[]){"eio/stats.ranks/rank-", ".h5: cannot write (Input/output error", NULL});
        snprintf(p, sizeof p, "%s/eio/stats.ranks/latest", g_dir);
        char *latest = tu_read_file(p, NULL);
        assert_non_null(latest);
        assert_int_equal(strncmp(latest, "step 2\n", 7), 0);
        free(latest);
        assert_int_equal(gp(np, NULL, "stats eio.ini"), 0);
        out_has("stats: resuming from step 2");
        snprintf(p, sizeof p, "%s/eio/stats.h5", g_dir);
        snprintf(q, sizeof q, "%s/stats.h5", ref);
        const int n = h5e_equal_files(p, q);
        assert_true(n > 30);
        printf("    EIO, %d rank(s): checkpoint 3 refused: exit 2 naming it; resumed from step 2: %d datasets bitwise equal\n",
               np, n);
        tu_sh("rm -rf '%s/eio' '%s'", g_dir, ref);
    }
}

/* stats.h5 refused after the last checkpoint (checkpoint_every 2): written in parallel, so on
 * the tmpfs it is refused before anything is written (no room for it); the rerun resumes from
 * the last checkpoint and writes it. */
static void test_stats_file(void **state) {
    (void)state;
    const char *extra = "[stats]\ncheckpoint_every = 2\n[prune]\nlayers = linear\n";
    for (int np = 1; np <= 2; np++) {
        char ref[2048], p[4400], q[4400];
        snprintf(ref, sizeof ref, "%s/sfref%d", g_dir, np);
        write_job("sfref", ref, extra);
        assert_int_equal(gp(np, NULL, "stats sfref.ini"), 0);
        const int last = np == 1 ? 5 : 2; /* checkpoints before the end: 11 units on 1 rank, 3 + 3 steps on 2 */
        for (int md = 0; md < n_modes(); md++) {
            if (!mode_runs((mode)md, false)) continue;
            write_job("sf", "disk/sf", extra);
            double leave = 0;
            if (md == MODE_TMPFS) { /* every checkpoint fits (three files a rank at the rotation), stats.h5 does not */
                char kill[64];
                snprintf(kill, sizeof kill, "GAPRUNE_TEST_KILL_AFTER_CHECKPOINT=%d", last);
                const double u0 = disk_used();
                assert_int_not_equal(gp(np, kill, "stats sf.ini"), 0);
                leave = disk_used() - u0 + np * size_of("sf/stats.ranks/rank-0.h5") + 65536;
                tu_sh("rm -rf '%s/sf'", g_disk);
            }
            const char *env = limit_env((mode)md, leave, "stats.h5", 0);
            assert_int_equal(gp(np, env, "stats sf.ini"), 2);
            unfill_disk();
            err_has((const char *const[]){"disk/sf/stats.h5: cannot write (No space left on device", NULL});
            check_kept("sf", "");
            snprintf(p, sizeof p, "%s/sf/stats.ranks/latest", g_disk);
            char *latest = tu_read_file(p, NULL), want[32];
            snprintf(want, sizeof want, "step %d\n", 2 * last);
            if (!latest || strncmp(latest, want, strlen(want))) fail_msg("latest: %s, want %s", latest, want);
            free(latest);
            assert_int_equal(gp(np, NULL, "stats sf.ini"), 0);
            snprintf(want, sizeof want, "stats: resuming from step %d", 2 * last);
            out_has(want);
            snprintf(p, sizeof p, "%s/sf/stats.h5", g_disk);
            snprintf(q, sizeof q, "%s/stats.h5", ref);
            const int n = h5e_equal_files(p, q);
            assert_true(n > 30);
            printf("    %s, %d rank(s): stats.h5 refused: exit 2, step %d kept; resumed: %d datasets bitwise equal\n",
                   k_mode_name[md], np, 2 * last, n);
            tu_sh("rm -rf '%s/sf'", g_disk);
        }
    }
}

/* The mask file, then the pruned folder, refused; stats.h5 from before stays as it was. */
static void test_score(void **state) {
    (void)state;
    char ref[2048], p[4400], q[4400];
    snprintf(ref, sizeof ref, "%s/scref", g_dir);
    write_job("scref", ref, NULL);
    assert_int_equal(gp(2, NULL, "stats scref.ini"), 0);
    assert_int_equal(gp(2, NULL, "score scref.ini --method gaprune --sparsity 0.5"), 0);
    snprintf(p, sizeof p, "%s/mask-gaprune-0.5.h5", ref);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    for (int np = 1; np <= 2; np++)
        for (int md = 0; md < n_modes(); md++) {
            if (!mode_runs((mode)md, false)) continue;
            write_job("sc", "disk/sc", NULL);
            tu_sh("mkdir -p '%s/sc' && cp '%s/stats.h5' '%s/sc/'", g_disk, ref, g_disk);
            char *before = snapshot("sc");
            /* the mask */
            const char *env = limit_env((mode)md, 8192, "mask-", 0);
            assert_int_equal(gp(np, env, "score sc.ini --method gaprune --sparsity 0.5"), 2);
            unfill_disk();
            err_has((const char *const[]){"disk/sc/mask-gaprune-0.5.h5: cannot write (No space left on device", NULL});
            check_kept("sc", before);
            snprintf(q, sizeof q, "%s/sc/mask-gaprune-0.5.h5", g_disk);
            assert_false(gp_file_exists(q));
            /* the pruned folder: the mask fits, the model does not */
            env = limit_env((mode)md, (double)st.st_size + 24576, "pruned-", 0);
            assert_int_equal(gp(np, env, "score sc.ini --method gaprune --sparsity 0.5"), 2);
            unfill_disk();
            err_has((const char *const[]){"disk/sc/pruned-gaprune-0.5.tmp/", ": cannot write (No space left on device", NULL});
            check_kept("sc", before);
            snprintf(q, sizeof q, "%s/sc/pruned-gaprune-0.5", g_disk);
            assert_false(gp_dir_exists(q));
            /* with the room back */
            assert_int_equal(gp(np, NULL, "score sc.ini --method gaprune --sparsity 0.5"), 0);
            char *a = tu_output("h5dump -g /mask '%s/sc/mask-gaprune-0.5.h5' | tail -n +2", g_disk);
            char *b = tu_output("h5dump -g /mask '%s/mask-gaprune-0.5.h5' | tail -n +2", ref);
            assert_true(strlen(b) > 1000);
            assert_string_equal(a, b);
            free(a), free(b);
            snprintf(p, sizeof p, "%s/sc/pruned-gaprune-0.5", g_disk);
            snprintf(q, sizeof q, "%s/pruned-gaprune-0.5", ref);
            assert_true(same_weights(p, q));
            free(before);
            printf("    %s, %d rank(s): the mask, then the pruned folder refused: exit 2, stats.h5 unchanged; the rerun "
                   "writes the same mask and model\n", k_mode_name[md], np);
            tu_sh("rm -rf '%s/sc'", g_disk);
        }
}

/* A retraining checkpoint refused (the third, step 6 of 7; written in parallel), then the
 * retrained folder. */
static void test_retrain(void **state) {
    (void)state;
    const char *extra = "[retrain]\nbatch = 4\nsteps = 7\ncheckpoint_every = 2\n";
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(FIXTURES "/bert-tiny", &m, &err), GP_OK);
    const hsize_t n = m->table.total;
    gp_model_free(m);
    /* the room the library asks for before writing the log (h5par.h): its three arrays */
    const gp_h5par_item it[3] = {{"params", 1, {n, 0}, "", "", NULL, 0, 0, true},
                                 {"adam_m", 1, {n, 0}, "", "", NULL, 0, 0, true},
                                 {"adam_v", 1, {n, 0}, "", "", NULL, 0, 0, true}};
    const double room = (double)gp_h5par_bytes(it, 3);
    for (int np = 1; np <= 2; np++) {
        char ref[2048], p[4400], q[4400];
        snprintf(ref, sizeof ref, "%s/rtref%d", g_dir, np);
        write_job("rtref", ref, extra);
        assert_int_equal(gp(np, NULL, "score rtref.ini --method magnitude --sparsity 0.5"), 0);
        snprintf(p, sizeof p, "retrain rtref.ini --mask %s/mask-magnitude-0.5.h5", ref);
        assert_int_equal(gp(np, NULL, "%s", p), 0);
        for (int md = 0; md < n_modes(); md++) {
            if (!mode_runs((mode)md, false)) continue;
            write_job("rt", "disk/rt", extra);
            tu_sh("mkdir -p '%s/rt' && cp -r '%s/mask-magnitude-0.5.h5' '%s/pruned-magnitude-0.5' '%s/rt/'", g_disk, ref, ref,
                  g_disk);
            char *before = snapshot("rt");
            const char *cmd = "retrain rt.ini --mask disk/rt/mask-magnitude-0.5.h5";
            double leave = 0;
            if (md == MODE_TMPFS) { /* room for the checkpoints of steps 2 and 4 (the log and its .prev), not 6 */
                assert_int_not_equal(gp(np, "GAPRUNE_TEST_KILL_AFTER_CHECKPOINT=1", cmd), 0);
                const double log = size_of("rt/retrain-magnitude-0.5.h5");
                tu_sh("rm -f '%s/rt/retrain-magnitude-0.5.h5' '%s/rt/.gaprune.lock'", g_disk, g_disk);
                leave = room + 1.5 * log;
            }
            const char *env = limit_env((mode)md, leave, "retrain-magnitude-0.5.h5", 2);
            assert_int_equal(gp(np, env, cmd), 2);
            unfill_disk();
            err_has((const char *const[]){"disk/rt/retrain-magnitude-0.5.h5: cannot write (No space left on device", NULL});
            check_kept("rt", before);
            free(before);
            snprintf(p, sizeof p, "%s/rt/retrain-magnitude-0.5.h5", g_disk);
            hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
            assert_true(f >= 0);
            int64_t step = 0;
            hid_t a = H5Aopen(f, "step", H5P_DEFAULT);
            H5Aread(a, H5T_NATIVE_INT64, &step);
            H5Aclose(a);
            H5Fclose(f);
            assert_int_equal(step, 4); /* the last complete checkpoint */
            /* with the room back: resumed, the log and the folder an uninterrupted run's */
            assert_int_equal(gp(np, NULL, cmd), 0);
            out_has("resuming from step 4");
            snprintf(q, sizeof q, "%s/retrain-magnitude-0.5.h5", ref);
            const int nd = h5e_equal_files(p, q);
            assert_int_equal(nd, 6);
            char mine[4400], theirs[4400];
            snprintf(mine, sizeof mine, "%s/rt/retrained-magnitude-0.5", g_disk);
            snprintf(theirs, sizeof theirs, "%s/retrained-magnitude-0.5", ref);
            assert_true(same_weights(mine, theirs));
            /* the retrained folder refused (the log is complete: only the folder is written) */
            tu_sh("rm -r '%s'", mine);
            before = snapshot("rt");
            env = limit_env((mode)md, 8192, "retrained-", 0);
            assert_int_equal(gp(np, env, cmd), 2);
            unfill_disk();
            err_has((const char *const[]){"disk/rt/retrained-magnitude-0.5.tmp/", ": cannot write (No space left on device", NULL});
            check_kept("rt", before);
            assert_false(gp_dir_exists(mine));
            assert_int_equal(gp(np, NULL, cmd), 0);
            assert_true(same_weights(mine, theirs));
            free(before);
            printf("    %s, %d rank(s): the checkpoint of step 6 refused: exit 2, step 4 kept; resumed: the log (%d "
                   "datasets) and the weights bitwise an uninterrupted run's; the retrained folder refused: exit 2, "
                   "the log unchanged; then written\n",
                   k_mode_name[md], np, nd);
            tu_sh("rm -rf '%s/rt'", g_disk);
        }
    }
}

/* An evaluation file and the report refused: `gaprune run` with every stage complete but those. */
static void test_eval_and_report(void **state) {
    (void)state;
    char cwd[2048], extra[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(extra, sizeof extra,
             "[prune]\nmethods = magnitude\n[retrain]\nmethods =\n[eval]\nsts = %s/" FIXTURES "/sts-tiny.jsonl\n", cwd);
    for (int np = 1; np <= 2; np++)
        for (int md = 0; md < n_modes(); md++) {
            if (!mode_runs((mode)md, true)) continue;
            write_job("ev", "disk/ev", extra);
            assert_int_equal(gp(np, NULL, "run ev.ini"), 0);
            tu_sh("rm '%s/ev/report.md' '%s/ev/report.json' '%s/ev/eval-dense.json'", g_disk, g_disk, g_disk);
            char *before = snapshot("ev");
            const char *env = limit_env((mode)md, 4096, "eval-", 0); /* the lock takes a page */
            assert_int_equal(gp(np, env, "run ev.ini"), 2);
            unfill_disk();
            err_has((const char *const[]){"disk/ev/eval-dense.json: cannot write (No space left on device", NULL});
            check_kept("ev", before);
            free(before);
            assert_int_equal(gp(np, NULL, "run ev.ini"), 0);
            tu_sh("rm '%s/ev/report.md' '%s/ev/report.json'", g_disk, g_disk);
            before = snapshot("ev");
            env = limit_env((mode)md, 4096, "report.md", 0);
            assert_int_equal(gp(np, env, "run ev.ini"), 2);
            unfill_disk();
            err_has((const char *const[]){"disk/ev/report.md: cannot write (No space left on device", NULL});
            check_kept("ev", before);
            free(before);
            assert_int_equal(gp(np, NULL, "run ev.ini"), 0);
            char *md1 = tu_read_in(g_disk, "ev/report.md");
            assert_non_null(md1);
            assert_non_null(strstr(md1, "| magnitude | 0.5 |"));
            free(md1);
            printf("    %s, %d rank(s): eval-dense.json and report.md refused: exit 2, every other output unchanged; the "
                   "rerun writes them\n", k_mode_name[md], np);
            tu_sh("rm -rf '%s/ev'", g_disk);
        }
}

/* ---- the lock ---------------------------------------------------------------------------------------- */

static char g_host[256];

static void write_lock(const char *out, const char *name, const char *host, long pid, const char *job) {
    char p[4400], text[512];
    snprintf(p, sizeof p, "%s/%s", out, name);
    snprintf(text, sizeof text, "host %s\npid %ld\nslurm_job %s\nstarted 2026-01-01T00:00:00Z\ncommand test\n", host, pid, job);
    tu_write(p, text);
}

/* A pid no process has: a child that has exited and been reaped. */
static long dead_pid(void) {
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) _exit(0);
    assert_int_equal(waitpid(c, NULL, 0), c);
    return (long)c;
}

static void test_lock(void **state) {
    (void)state;
    gethostname(g_host, sizeof g_host - 1);
    char out[2048], p[4400], want[6000];
    snprintf(out, sizeof out, "%s/lk", g_dir);
    write_job("lk", out, "[stats]\ncheckpoint_every = 2\n");
    assert_int_equal(gp(1, NULL, "stats lk.ini"), 0); /* stats.h5 complete: the next runs only take the lock */
    snprintf(p, sizeof p, "%s/.gaprune.lock", out);
    assert_false(gp_file_exists(p)); /* released */
    for (int np = 1; np <= 2; np++) {
        /* held by a live process on this host: this test */
        write_lock(out, ".gaprune.lock", g_host, (long)getpid(), "");
        assert_int_equal(gp(np, NULL, "stats lk.ini"), 2);
        snprintf(want, sizeof want, "%s: in use by another gaprune run: pid %ld on host %s holds %s/.gaprune.lock", out,
                 (long)getpid(), g_host, out);
        err_has((const char *const[]){want, NULL});
        assert_true(gp_file_exists(p)); /* not ours to remove */
        /* left by a process that is gone */
        const long dead = dead_pid();
        write_lock(out, ".gaprune.lock", g_host, dead, "");
        assert_int_equal(gp(np, NULL, "stats lk.ini"), 0);
        snprintf(want, sizeof want, "%s/.gaprune.lock: left by pid %ld on host %s, which is no longer running; taking it over",
                 out, dead, g_host);
        err_has((const char *const[]){want, NULL});
        assert_false(gp_file_exists(p));
        /* another host: cannot be checked */
        write_lock(out, ".gaprune.lock", "elsewhere.example", 4242, "77");
        assert_int_equal(gp(np, NULL, "stats lk.ini"), 2);
        snprintf(want, sizeof want, "remove %s/.gaprune.lock and rerun", out);
        err_has((const char *const[]){"in use by gaprune pid 4242 on host elsewhere.example", want, NULL});
        /* ... unless it names this Slurm job: a requeued job's earlier run has ended */
        assert_int_equal(gp(np, "SLURM_JOB_ID=77", "stats lk.ini"), 0);
        err_has((const char *const[]){"left by an earlier run of this Slurm job 77", NULL});
        assert_false(gp_file_exists(p));
        printf("    %d rank(s): held by a live pid: exit 2 naming folder, host and pid; dead pid: taken over; another "
               "host: exit 2 saying how to remove it, unless the same Slurm job\n", np);
    }
    /* exit 3 releases the lock too */
    write_job("lk3", "disk/lk3", "[stats]\ncheckpoint_every = 2\n");
    assert_int_equal(gp(2, "GAPRUNE_TEST_SIGNAL_AT_STEP=2", "stats lk3.ini"), 3);
    snprintf(p, sizeof p, "%s/lk3/.gaprune.lock", g_disk);
    assert_false(gp_file_exists(p));
    tu_sh("rm -rf '%s/lk3'", g_disk);
    printf("    exit 3 (stopped by a signal) released the lock\n");
}

/* Two real runs at once: the second is refused while the first holds the folder; the first ends
 * normally and releases it. */
static void test_lock_concurrent(void **state) {
    (void)state;
    char out[2048], lock[4400];
    snprintf(out, sizeof out, "%s/cc", g_dir);
    snprintf(lock, sizeof lock, "%s/.gaprune.lock", out);
    write_job("cc", out, NULL);
    for (int np = 1; np <= 2; np++) {
        tu_sh("rm -rf '%s'", out);
        pid_t first = fork();
        assert_true(first >= 0);
        if (first == 0) {
            char cmd[8192];
            snprintf(cmd, sizeof cmd,
                     "cd '%s' && GAPRUNE_TEST_UNIT_DELAY_MS=500 exec mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS "
                     "-x GAPRUNE_TEST_UNIT_DELAY_MS %s stats cc.ini >first.out 2>first.err",
                     g_dir, np, g_bin);
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        bool started = false;
        for (int i = 0; i < 600 && !started; i++) { /* until its loop runs (a minute at most) */
            char *o = tu_read_in(g_dir, "first.out");
            started = o && strstr(o, "units of") && gp_file_exists(lock);
            free(o);
            if (!started) usleep(100000);
        }
        assert_true(started);
        char *l = tu_read_file(lock, NULL), want[6000];
        assert_non_null(l);
        const long pid = atol(strstr(l, "pid ") + 4);
        free(l);
        assert_int_equal(gp(np, NULL, "stats cc.ini"), 2);
        snprintf(want, sizeof want, "%s: in use by another gaprune run: pid %ld on host %s", out, pid, g_host);
        err_has((const char *const[]){want, NULL});
        int st;
        assert_int_equal(waitpid(first, &st, 0), first);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        assert_false(gp_file_exists(lock));
        char p[4400];
        snprintf(p, sizeof p, "%s/stats.h5", out);
        assert_true(gp_file_exists(p));
        printf("    %d rank(s): a second run while the first computes: exit 2 naming pid %ld; the first completes and "
               "releases the folder\n", np, pid);
    }
}

/* run --only: a pair lock (a sweep's array task) does not keep out another pair, but keeps out a
 * whole-folder run, and a whole-folder lock keeps out every pair. */
static void test_lock_pairs(void **state) {
    (void)state;
    char out[2048], p[4400];
    snprintf(out, sizeof out, "%s/pr", g_dir);
    write_job("pr", out, "[prune]\nmethods = magnitude, random\n[retrain]\nmethods =\n");
    assert_int_equal(gp(2, NULL, "stats pr.ini"), 0);
    write_lock(out, ".gaprune-random-0.5.lock", g_host, (long)getpid(), "");
    assert_int_equal(gp(2, NULL, "run pr.ini --only magnitude:0.5"), 0); /* another pair */
    snprintf(p, sizeof p, "%s/mask-magnitude-0.5.h5", out);
    assert_true(gp_file_exists(p));
    snprintf(p, sizeof p, "%s/.gaprune-magnitude-0.5.lock", out);
    assert_false(gp_file_exists(p)); /* released */
    assert_int_equal(gp(2, NULL, "run pr.ini --only random:0.5"), 2); /* the same pair */
    err_has((const char *const[]){"in use by another gaprune run", ".gaprune-random-0.5.lock", NULL});
    assert_int_equal(gp(2, NULL, "score pr.ini"), 2); /* the whole folder */
    err_has((const char *const[]){"in use by another gaprune run", ".gaprune-random-0.5.lock", NULL});
    snprintf(p, sizeof p, "%s/.gaprune.lock", out);
    assert_false(gp_file_exists(p)); /* given back when refused */
    tu_sh("rm '%s/.gaprune-random-0.5.lock'", out);
    write_lock(out, ".gaprune.lock", g_host, (long)getpid(), "");
    assert_int_equal(gp(2, NULL, "run pr.ini --only magnitude:0.5"), 2);
    err_has((const char *const[]){"in use by another gaprune run", "/.gaprune.lock", NULL});
    snprintf(p, sizeof p, "%s/.gaprune-magnitude-0.5.lock", out);
    assert_false(gp_file_exists(p));
    tu_sh("rm '%s/.gaprune.lock'", out);
    printf("    run --only: another pair runs beside a pair lock; the same pair and a whole-folder run are refused; a "
           "whole-folder lock refuses a pair\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_checkpoint), cmocka_unit_test(test_io_error), cmocka_unit_test(test_stats_file), cmocka_unit_test(test_score),
        /* the full disk in the retraining and in the evaluation and report: the longest scenarios */
        tu_long_test(test_retrain),              tu_long_test(test_eval_and_report),     cmocka_unit_test(test_lock),
        cmocka_unit_test(test_lock_concurrent),  cmocka_unit_test(test_lock_pairs),
    };
    /* GP_TEST_FILTER=test_lock runs one test while iterating (cmocka's pattern) */
    return tu_run_group("outdir", tests, setup, teardown);
}
