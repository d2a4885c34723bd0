/* test_stats.c — `gaprune stats` end to end (the sanitizer build, under mpirun):
 *  - stats.h5 equals the PyTorch float64 reference (tests/reference/make_stats_fixtures.py) for
 *    fisher_batch 1 and 4: Fisher, mean gradients, alignment, activation sums;
 *  - only the tensors prune.layers selects have statistics (layers = linear: every weight matrix,
 *    which the reference covers; mlp: the MLP ones, bitwise equal to those of the linear run);
 *  - 2, 3, 4, 8 and 48 ranks agree with 1 rank within 1e-6 (activation sums bitwise), and
 *    `h5dump -A` (layout and attributes but the run's own) is identical;
 *  - stats.accumulators = sharded (each rank a block of F and G) on 2, 3 and 4 ranks equals 1 rank
 *    within 1e-6 with the same layout;
 *  - the masks scored from each of those files (on as many ranks as gathered it) equal, bit for
 *    bit, the masks of the 1-rank replicated file, for gaprune, gaprune-ref with the refcode
 *    alignment, fisher-domain and wanda;
 *  - SIGKILL after a checkpoint then a rerun, and SIGUSR1 (exit 3) then a rerun, both give a
 *    stats.h5 whose every dataset is bitwise equal to an uninterrupted run (sharded too, on 2 and
 *    4 ranks); a damaged newest checkpoint is refused and the rerun resumes from the one before
 *    (1 and 2 ranks), bitwise the same;
 *  - a checkpoint whose checksums hold but whose values do not (counts that do not add up, more
 *    loss values than two, an array for the step, a file that fails half way with a good .prev
 *    beside it) is not resumed from (or the .prev is), and the pass ends bitwise as an
 *    uninterrupted one;
 *  - broken corpora give exit 2 with file:line on every rank count; `skip` counts them.
 */
#include "test_util.h"
#include "h5_edit.h"

#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>

#include "gaprune/log.h"
#include "gaprune/model.h"

static char *g_dir;
static gp_model *g_model; /* bert-tiny: the parameter names and sizes */

static const char *bin(void) { return tu_bin_abs(); }

static char *slurp(const char *name) {
    char *b = tu_read_in(g_dir, name);
    assert_non_null(b);
    return b;
}

static void assert_clean_stderr(void) {
    char *e = slurp("err.txt");
    if (strstr(e, "AddressSanitizer") || strstr(e, "runtime error")) fail_msg("sanitizer report:\n%s", e);
    free(e);
}

/* Writes <dir>/<name>.ini; extra is appended verbatim (more keys). */
static void write_job(const char *name, const char *domain, const char *general, const char *extra) {
    char p[4200], cwd[2048], text[8192];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(p, sizeof p, "%s/%s.ini", g_dir, name);
    snprintf(text, sizeof text,
             "; written by test_stats\n[model]\npath = %s/" FIXTURES "/bert-tiny\n[data]\ndomain = %s\ngeneral = %s\n"
             "[output]\ndir = out-%s\n%s",
             cwd, domain, general, name, extra ? extra : "");
    tu_write(p, text);
}

/* env: "VAR=value" for the test hooks of this run, or NULL. */
static int stats(int np, const char *job, const char *env) {
    return tu_run_in(g_dir, "%s mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS -x GAPRUNE_TEST_KILL_AFTER_CHECKPOINT "
               "-x GAPRUNE_TEST_SIGNAL_AT_STEP %s stats %s.ini",
               env ? env : "", np, bin(), job);
}

static int setup(void **state) {
    (void)state;
    g_dir = tu_job_scratch();
    gp_err err = {0};
    if (gp_model_load(FIXTURES "/bert-tiny", &g_model, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    gp_model_free(g_model);
    tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* A whole float dataset; NULL when absent. */
static float *read_f32(hid_t f, const char *name, size_t n) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return NULL;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    assert_int_equal((size_t)H5Sget_simple_extent_npoints(sp), n);
    float *x = malloc(n * sizeof(float));
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    return x;
}

/* A whole float64 dataset of n values; NULL when absent. */
static double *read_f64(hid_t f, const char *name, size_t n) {
    if (H5Lexists(f, "alignment", H5P_DEFAULT) <= 0 || H5Lexists(f, name, H5P_DEFAULT) <= 0) return NULL;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    assert_int_equal((size_t)H5Sget_simple_extent_npoints(sp), n);
    double *x = malloc(n * sizeof(double));
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    return x;
}

/* The MLP neuron statistics of a against b ([layers, intermediate]: the gate Fisher and mean gate
 * derivative of both corpora, relative to each dataset's largest value; the neuron cosines,
 * absolute); returns the worst. */
static double compare_neurons(hid_t a, hid_t b) {
    static const char *sets[] = {"domain/neuron_fisher", "domain/neuron_grad_mean", "general/neuron_fisher",
                                 "general/neuron_grad_mean", "alignment/neuron_cosine"};
    const size_t n = (size_t)g_model->cfg.layers * (size_t)g_model->cfg.intermediate;
    double worst = 0;
    for (int k = 0; k < 5; k++) {
        double *x = read_f64(a, sets[k], n), *y = read_f64(b, sets[k], n);
        if (!x || !y) fail_msg("missing %s", sets[k]);
        double big = 0, e = 0;
        for (size_t i = 0; i < n; i++) big = fmax(big, fabs(y[i]));
        assert_true(big > 0);
        for (size_t i = 0; i < n; i++) e = fmax(e, fabs(x[i] - y[i]) / (k == 4 ? 1.0 : big));
        worst = fmax(worst, e);
        free(x), free(y);
    }
    return worst;
}

static double attr_f64(hid_t loc, const char *obj, const char *name) {
    double v = 0;
    hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Aclose(a);
    return v;
}

static hid_t open_out(const char *job) {
    char p[4200];
    snprintf(p, sizeof p, "%s/out-%s/stats.h5", g_dir, job);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) fail_msg("cannot open %s", p);
    return f;
}

/* The weight matrices prune.layers = mlp (mlp_only) or linear selects in bert-tiny, by name. */
static bool expected(int i, bool mlp_only) {
    const char *n = g_model->src_names[i];
    if (g_model->table.p[i].ndim != 2 || strstr(n, "embeddings")) return false;
    return !mlp_only || strstr(n, "intermediate.dense") || (strstr(n, "output.dense") && !strstr(n, "attention"));
}

static int n_expected(bool mlp_only) {
    int n = 0;
    for (int i = 0; i < g_model->table.n; i++) n += expected(i, mlp_only);
    return n;
}

/* Compares the per-parameter datasets of `a` with `b` (relative per tensor): exactly the
 * tensors prune.layers = linear selects are in `a`. Tensors whose
 * gradient is zero in exact arithmetic (the attention key bias) must instead be zero to within
 * 1e-6 of the group's total norm. Returns the worst relative error. */
static double compare_groups(hid_t a, hid_t b, double tol) {
    static const char *groups[] = {"domain/fisher", "domain/grad_mean", "general/fisher", "general/grad_mean"};
    double worst = 0;
    for (int gi = 0; gi < 4; gi++) {
        float **ra = calloc((size_t)g_model->table.n, sizeof(float *)), **rb = calloc((size_t)g_model->table.n, sizeof(float *));
        double total = 0;
        for (int i = 0; i < g_model->table.n; i++) {
            char name[256];
            snprintf(name, sizeof name, "%s/%s", groups[gi], g_model->src_names[i]);
            ra[i] = read_f32(a, name, g_model->table.p[i].numel);
            if (!expected(i, false)) {
                if (ra[i]) fail_msg("%s has statistics though prune.layers = linear does not select it", name);
                continue;
            }
            rb[i] = read_f32(b, name, g_model->table.p[i].numel);
            if (!ra[i] || !rb[i]) fail_msg("missing %s", name);
            for (size_t k = 0; k < g_model->table.p[i].numel; k++) total += (double)rb[i][k] * rb[i][k];
        }
        total = sqrt(total);
        for (int i = 0; i < g_model->table.n; i++) {
            if (!ra[i]) continue;
            size_t n = g_model->table.p[i].numel;
            double rn = 0, an = 0;
            for (size_t k = 0; k < n; k++) rn += (double)rb[i][k] * rb[i][k], an += (double)ra[i][k] * ra[i][k];
            if (sqrt(rn) < 1e-9 * total) {
                if (sqrt(an) > 1e-6 * total) fail_msg("%s/%s should be ~0: %.3e", groups[gi], g_model->src_names[i], sqrt(an));
            } else {
                double e = tu_rel_err(ra[i], rb[i], n);
                if (e > tol) fail_msg("%s/%s: rel err %.3e > %.1e", groups[gi], g_model->src_names[i], e, tol);
                worst = fmax(worst, e);
            }
            free(ra[i]);
            free(rb[i]);
        }
        free(ra);
        free(rb);
    }
    return worst;
}

static void check_against_reference(const char *job, int fb) {
    char p[256];
    snprintf(p, sizeof p, FIXTURES "/stats-fb%d.expected.h5", fb);
    hid_t ref = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT), out = open_out(job);
    assert_true(ref >= 0);
    double worst = compare_groups(out, ref, 1e-4);
    /* counts and losses */
    for (int c = 0; c < 2; c++) {
        const char *g = c ? "general" : "domain";
        assert_float_equal(attr_f64(out, g, "n_units"), attr_f64(ref, g, "n_units"), 0);
        assert_float_equal(attr_f64(out, g, "n_triplets"), attr_f64(ref, g, "n_triplets"), 0);
        assert_true(fabs(attr_f64(out, g, "loss_mean") / attr_f64(ref, g, "loss_mean") - 1) < 1e-5);
    }
    /* alignment: our /alignment/cosine[k] is the tensor /alignment/names[k], one per selected tensor */
    hid_t d = H5Dopen2(out, "alignment/cosine", H5P_DEFAULT), dn = H5Dopen2(out, "alignment/names", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    const int nt = (int)H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    assert_int_equal(nt, n_expected(false));
    double *cos = malloc((size_t)nt * sizeof(double));
    char **names = calloc((size_t)nt, sizeof(char *));
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8);
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, cos) >= 0);
    assert_true(H5Dread(dn, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) >= 0);
    H5Tclose(st);
    H5Dclose(d);
    H5Dclose(dn);
    double worst_cos = 0;
    for (int i = 0; i < nt; i++) {
        char name[256];
        snprintf(name, sizeof name, "alignment/%s", names[i]);
        hid_t r = H5Dopen2(ref, name, H5P_DEFAULT);
        double want;
        assert_true(H5Dread(r, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &want) >= 0);
        H5Dclose(r);
        worst_cos = fmax(worst_cos, fabs(cos[i] - want));
        free(names[i]);
    }
    free(names);
    free(cos);
    assert_true(worst_cos < 1e-4);
    /* activation sums */
    double worst_act = 0;
    int nact = 0;
    for (int i = 0; i < g_model->table.n; i++) {
        char name[256];
        snprintf(name, sizeof name, "activations/%s", g_model->src_names[i]);
        if (H5Lexists(ref, name, H5P_DEFAULT) <= 0) continue;
        size_t n = (size_t)g_model->table.p[i].shape[1];
        float *a = read_f32(out, name, n), *b = read_f32(ref, name, n);
        assert_non_null(a);
        worst_act = fmax(worst_act, tu_rel_err(a, b, n));
        nact++;
        free(a), free(b);
    }
    assert_int_equal(nact, 6);
    assert_true(worst_act < 1e-4);
    /* the neurons: the reference multiplies a gate into each neuron's output and differentiates */
    const double worst_neuron = compare_neurons(out, ref);
    assert_true(worst_neuron < 1e-4);
    printf("    fisher_batch %d: worst rel err %.2e (Fisher, mean gradient), alignment abs err %.2e, activations %.2e, "
           "neuron gate Fisher, gate gradient and cosine %.2e\n",
           fb, worst, worst_cos, worst_act, worst_neuron);
    H5Fclose(ref);
    H5Fclose(out);
}

static void test_reference_fb1(void **state) {
    (void)state;
    write_job("fb1", "domain.json", "general.jsonl", "[stats]\nfisher_batch = 1\n[prune]\nlayers = linear\n");
    assert_int_equal(stats(1, "fb1", NULL), 0);
    assert_clean_stderr();
    char *o = slurp("out.txt");
    assert_non_null(strstr(o, "[stats] 11/11 triplets"));
    assert_non_null(strstr(o, "\"command\":\"stats\""));
    free(o);
    check_against_reference("fb1", 1);
    /* a second run finds stats.h5 complete */
    assert_int_equal(stats(1, "fb1", NULL), 0);
    o = slurp("out.txt");
    assert_non_null(strstr(o, "nothing to do"));
    free(o);
}

static void test_reference_fb4(void **state) {
    (void)state;
    write_job("fb4", "domain.json", "general.jsonl", "[stats]\nfisher_batch = 4\n[prune]\nlayers = linear\n");
    assert_int_equal(stats(2, "fb4", NULL), 0);
    assert_clean_stderr();
    check_against_reference("fb4", 4);
}

/* `h5dump -A` of job's stats.h5 (the layout: groups, datasets, shapes, types, every attribute)
 * without the file name and the attributes that record the run (command, created_utc,
 * n_ranks); malloc'd. */
static char *layout(const char *job) {
    static const char *const skip[] = {"command", "created_utc", "n_ranks", NULL};
    return tu_h5dump_without(skip, "-A '%s/out-%s/stats.h5'", g_dir, job);
}

/* stats.h5 of job (np ranks) against the 1-rank run fb1: per-parameter arrays within 1e-6
 * relative, activation sums bitwise, the same layout and attributes. */
static void check_ranks_agree(const char *job, int np) {
    hid_t a = open_out(job), b = open_out("fb1");
    double worst = compare_groups(a, b, 1e-6), worst_neuron = compare_neurons(a, b);
    assert_true(worst_neuron < 1e-6);
    printf("    %d ranks vs 1 rank: worst rel err %.2e, neuron statistics %.2e\n", np, worst, worst_neuron);
    /* the activation sums are summed in double, so they do not depend on the rank count */
    int nact = 0;
    for (int i = 0; i < g_model->table.n; i++) {
        char name[256];
        snprintf(name, sizeof name, "activations/%s", g_model->src_names[i]);
        if (H5Lexists(b, name, H5P_DEFAULT) <= 0) continue;
        const size_t in = (size_t)g_model->table.p[i].shape[1];
        float *x = read_f32(a, name, in), *y = read_f32(b, name, in);
        if (!x || !y) fail_msg("missing %s", name);
        if (memcmp(x, y, in * sizeof(float))) fail_msg("%s differs between %d ranks and 1", name, np);
        free(x), free(y);
        nact++;
    }
    assert_true(nact > 0);
    H5Fclose(a);
    H5Fclose(b);
    char *la = layout(job), *lb = layout("fb1");
    if (strcmp(la, lb)) fail_msg("h5dump -A differs between %d ranks and 1:\n%s\n----\n%s", np, la, lb);
    printf("    %d ranks vs 1 rank: %d activation datasets bitwise equal; h5dump -A identical (%zu bytes)\n", np, nact,
           strlen(la));
    free(la), free(lb);
}

/* `h5dump -g /mask` of job's mask of method; malloc'd. */
static char *mask_bits(const char *job, const char *method) {
    char *out = tu_output("h5dump -g /mask '%s/out-%s/mask-%s-0.5.h5' | tail -n +2", g_dir, job, method);
    assert_true(strlen(out) > 1000);
    return out;
}

/* Scores job's stats.h5 on np ranks (and fb1's, on one, the first time) with criteria reading
 * every kind of statistic; every mask must equal fb1's bit for bit. */
static void check_masks_agree(const char *job, int np) {
    static const char *methods[] = {"gaprune", "gaprune-ref", "fisher-domain", "wanda"};
    static bool have_ref;
    const char *score = "score %s.ini --method gaprune,gaprune-ref,fisher-domain,wanda --set stats.alignment=refcode";
    char cmd[512];
    snprintf(cmd, sizeof cmd, score, "fb1");
    if (!have_ref) assert_int_equal(tu_run_in(g_dir, "%s %s", bin(), cmd), 0);
    have_ref = true;
    snprintf(cmd, sizeof cmd, score, job);
    assert_int_equal(tu_run_in(g_dir, "mpirun -np %d -x ASAN_OPTIONS %s %s", np, bin(), cmd), 0);
    assert_clean_stderr();
    for (int i = 0; i < 4; i++) {
        char *a = mask_bits(job, methods[i]), *b = mask_bits("fb1", methods[i]);
        if (strcmp(a, b)) fail_msg("%s mask from %s's statistics (%d ranks) differs from the 1-rank one", methods[i], job, np);
        free(a), free(b);
    }
    printf("    %s: 4 masks (gaprune, gaprune-ref refcode, fisher-domain, wanda) scored on %d ranks equal 1 rank's "
           "bit for bit\n", job, np);
}

static void test_ranks_agree(void **state) {
    (void)state;
    static const int nps[] = {2, 3, 4, 8}; /* 8: more ranks than either corpus has units */
    char job[16];
    for (size_t k = 0; k < sizeof nps / sizeof *nps; k++) {
        snprintf(job, sizeof job, "np%d", nps[k]);
        write_job(job, "domain.json", "general.jsonl", "[stats]\nfisher_batch = 1\n[prune]\nlayers = linear\n");
        assert_int_equal(stats(nps[k], job, NULL), 0);
        assert_clean_stderr();
        check_ranks_agree(job, nps[k]);
        check_masks_agree(job, nps[k]);
    }
}

/* prune.layers = mlp: statistics of the MLP weights only, bitwise those of the linear run (the
 * other weights' gradients are not formed, and nothing else changes). */
static void test_only_selected(void **state) {
    (void)state;
    write_job("mlp", "domain.json", "general.jsonl", "[stats]\nfisher_batch = 1\n");
    assert_int_equal(stats(1, "mlp", NULL), 0);
    assert_clean_stderr();
    hid_t a = open_out("mlp"), b = open_out("fb1");
    static const char *groups[] = {"domain/fisher", "domain/grad_mean", "general/fisher", "general/grad_mean", "activations"};
    int same = 0;
    for (int gi = 0; gi < 5; gi++)
        for (int i = 0; i < g_model->table.n; i++) {
            char name[256];
            snprintf(name, sizeof name, "%s/%s", groups[gi], g_model->src_names[i]);
            size_t n = gi == 4 ? (size_t)g_model->table.p[i].shape[1] : g_model->table.p[i].numel;
            float *x = read_f32(a, name, n);
            if (!expected(i, true)) {
                if (x) fail_msg("%s has statistics though prune.layers = mlp does not select it", name);
                continue;
            }
            float *y = read_f32(b, name, n);
            if (!x || !y) fail_msg("missing %s", name);
            if (memcmp(x, y, n * sizeof(float))) fail_msg("%s differs from the linear run", name);
            free(x), free(y);
            same++;
        }
    assert_int_equal(same, 5 * n_expected(true));
    H5Fclose(a);
    H5Fclose(b);
    /* scoring other layers than the statistics were gathered for is bad input, named */
    assert_int_equal(tu_run_in(g_dir, "%s score mlp.ini --set prune.layers=attention --method gaprune", bin()), 2);
    char *e = slurp("err.txt");
    assert_non_null(strstr(e, "--set prune.layers=attention: [prune] layers = attention, but out-mlp/stats.h5 holds the "
                              "statistics of layers = mlp only"));
    free(e);
    printf("    layers = mlp: %d datasets (%d tensors), bitwise those of layers = linear; no other tensor\n", same,
           n_expected(true));
}

/* 48 ranks (oversubscribed) on the same triplets: most ranks have no unit and most tensors
 * fewer rows than ranks; the file equals the 1-rank one. */
static void test_48_ranks(void **state) {
    (void)state;
    write_job("np48", "domain.json", "general.jsonl", "[stats]\nfisher_batch = 1\n[prune]\nlayers = linear\n");
    double t0 = gp_now();
    assert_int_equal(stats(48, "np48", NULL), 0);
    double t = gp_now() - t0;
    assert_clean_stderr();
    check_ranks_agree("np48", 48);
    printf("    48 ranks: gaprune stats took %.1f s\n", t);
}

/* stats.accumulators = sharded: each rank keeps its block of F and G, reduce-scattered after every
 * unit; the file equals the replicated 1-rank one within 1e-6, with the same layout. */
static int bitwise_equal_datasets(const char *job_a, const char *job_b);

static void test_sharded(void **state) {
    (void)state;
    for (int np = 2; np <= 4; np++) {
        char job[16];
        snprintf(job, sizeof job, "sh%d", np);
        write_job(job, "domain.json", "general.jsonl",
                  "[stats]\nfisher_batch = 1\naccumulators = sharded\n[prune]\nlayers = linear\n");
        assert_int_equal(stats(np, job, NULL), 0);
        assert_clean_stderr();
        char *o = slurp("out.txt");
        assert_null(strstr(o, "replicated accumulators need")); /* chosen, not estimated */
        free(o);
        check_ranks_agree(job, np);
        check_masks_agree(job, np);
    }
    /* model.recompute: each block run again before its backward, its gradients taken by the
     * same hooks into the same windows: every dataset bitwise that of the stored activations */
    write_job("shrc", "domain.json", "general.jsonl",
              "[stats]\nfisher_batch = 1\naccumulators = sharded\n[prune]\nlayers = linear\n[model]\nrecompute = true\n");
    assert_int_equal(stats(2, "shrc", NULL), 0);
    assert_clean_stderr();
    const int nd = bitwise_equal_datasets("sh2", "shrc");
    assert_true(nd > 30);
    printf("    model.recompute, sharded on 2 ranks: %d datasets bitwise equal to the stored activations'\n", nd);
    /* model.activations = lean: part of each block's activations made again before its backward */
    write_job("shln", "domain.json", "general.jsonl",
              "[stats]\nfisher_batch = 1\naccumulators = sharded\n[prune]\nlayers = linear\n[model]\nactivations = lean\n");
    assert_int_equal(stats(2, "shln", NULL), 0);
    assert_clean_stderr();
    char *o = slurp("out.txt");
    assert_non_null(strstr(o, "\"activations\":\"lean\""));
    free(o);
    const int nl = bitwise_equal_datasets("sh2", "shln");
    assert_int_equal(nl, nd);
    printf("    model.activations = lean, sharded on 2 ranks: %d datasets bitwise equal to all activations'\n", nl);
}

/* Every numeric dataset of two output files bitwise equal; returns how many. */
static int bitwise_equal_datasets(const char *job_a, const char *job_b) {
    hid_t a = open_out(job_a), b = open_out(job_b);
    const int n = h5e_equal_datasets(a, b);
    H5Fclose(a);
    H5Fclose(b);
    return n;
}

static void test_kill_and_resume(void **state) {
    (void)state;
    const char *extra = "[stats]\ncheckpoint_every = 1\n[prune]\nlayers = linear\n";
    write_job("ref2", "domain.json", "general.jsonl", extra);
    assert_int_equal(stats(2, "ref2", NULL), 0);
    write_job("kill", "domain.json", "general.jsonl", extra);
    int rc = stats(2, "kill", "GAPRUNE_TEST_KILL_AFTER_CHECKPOINT=3");
    assert_int_not_equal(rc, 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/out-kill/stats.ranks/latest", g_dir);
    assert_true(access(p, F_OK) == 0);
    snprintf(p, sizeof p, "%s/out-kill/stats.h5", g_dir);
    assert_false(access(p, F_OK) == 0);
    assert_int_equal(stats(2, "kill", NULL), 0);
    assert_clean_stderr();
    char *o = slurp("out.txt");
    assert_non_null(strstr(o, "resuming from step 3"));
    free(o);
    int n = bitwise_equal_datasets("kill", "ref2");
    printf("    killed after checkpoint 3 and resumed: %d datasets bitwise equal\n", n);
    assert_true(n >= 4 * n_expected(false));
    snprintf(p, sizeof p, "%s/out-kill/stats.ranks", g_dir);
    assert_false(access(p, F_OK) == 0); /* checkpoints are removed once stats.h5 is complete */
    /* issue 14: a rerun whose statistics are complete made stats.ranks/ again (and failed on a
     * read-only output folder); it writes nothing */
    assert_int_equal(stats(2, "kill", NULL), 0);
    o = slurp("out.txt");
    assert_non_null(strstr(o, "is complete for these settings"));
    free(o);
    assert_false(access(p, F_OK) == 0);

    write_job("sig", "domain.json", "general.jsonl", extra);
    assert_int_equal(stats(2, "sig", "GAPRUNE_TEST_SIGNAL_AT_STEP=4"), 3);
    o = slurp("out.txt");
    /* issue 27: in the progress lines' unit too: 3 domain steps of 2 ranks and one general step
     * (6 + 2 of the 6 + 5 triplets selected) */
    if (!strstr(o, "stopped by a signal after step 4 of 6 (8 of 11 triplets)")) fail_msg("stop message:\n%s", o);
    free(o);
    assert_int_equal(stats(2, "sig", NULL), 0);

    n = bitwise_equal_datasets("sig", "ref2");
    printf("    SIGUSR1 (exit 3) and resumed: %d datasets bitwise equal\n", n);
    /* sharded: each rank's checkpoint is its block; resumed runs end bitwise as uninterrupted ones */
    for (int np = 2; np <= 4; np += 2) {
        char ref[32], kill[32];
        snprintf(ref, sizeof ref, "shref%d", np);
        snprintf(kill, sizeof kill, "shkill%d", np);
        const char *shx = "[stats]\ncheckpoint_every = 1\naccumulators = sharded\n[prune]\nlayers = linear\n";
        write_job(ref, "domain.json", "general.jsonl", shx);
        assert_int_equal(stats(np, ref, NULL), 0);
        write_job(kill, "domain.json", "general.jsonl", shx);
        assert_int_not_equal(stats(np, kill, "GAPRUNE_TEST_KILL_AFTER_CHECKPOINT=2"), 0);
        assert_int_equal(stats(np, kill, NULL), 0);
        assert_clean_stderr();
        o = slurp("out.txt");
        assert_non_null(strstr(o, "resuming from step 2"));
        free(o);
        n = bitwise_equal_datasets(kill, ref);
        assert_true(n >= 4 * n_expected(false));
        printf("    sharded, %d ranks: killed after checkpoint 2 and resumed: %d datasets bitwise equal\n", np, n);
    }
    /* checkpoints of blocks are not taken for copies: a rerun with replicated accumulators starts
     * over, and ends bitwise as the replicated run */
    const char *shx = "[stats]\ncheckpoint_every = 1\naccumulators = sharded\n[prune]\nlayers = linear\n";
    write_job("switch", "domain.json", "general.jsonl", shx);
    assert_int_not_equal(stats(2, "switch", "GAPRUNE_TEST_KILL_AFTER_CHECKPOINT=2"), 0);
    write_job("switch", "domain.json", "general.jsonl", extra);
    assert_int_equal(stats(2, "switch", NULL), 0);
    o = slurp("err.txt");
    assert_non_null(strstr(o, "incomplete; starting over"));
    free(o);
    n = bitwise_equal_datasets("switch", "ref2");
    assert_true(n >= 4 * n_expected(false));
    printf("    killed sharded, rerun replicated: started over, %d datasets bitwise equal to the replicated run\n", n);
}

/* issue 14: a checkpoint damaged on disk is refused, not resumed from. Killed after checkpoint 3
 * on 1 and 2 ranks, a byte of rank 0's newest file is flipped: the rerun warns, resumes from
 * step 2 (every rank's .prev) and ends bitwise as an uninterrupted run. With both of rank 1's
 * files damaged no step is left: it starts over, and still ends bitwise the same. */
static void test_damaged_checkpoint(void **state) {
    (void)state;
    const char *extra = "[stats]\ncheckpoint_every = 1\n[prune]\nlayers = linear\n";
    char ref[32], job[32], p[4200];
    for (int np = 1; np <= 2; np++) {
        snprintf(ref, sizeof ref, "dmgref%d", np);
        write_job(ref, "domain.json", "general.jsonl", extra);
        assert_int_equal(stats(np, ref, NULL), 0);
        snprintf(job, sizeof job, "dmg%d", np);
        write_job(job, "domain.json", "general.jsonl", extra);
        assert_int_not_equal(stats(np, job, "GAPRUNE_TEST_KILL_AFTER_CHECKPOINT=3"), 0);
        snprintf(p, sizeof p, "%s/out-%s/stats.ranks/rank-0.h5", g_dir, job);
        tu_flip_data_byte(p, "domain_fisher_sum", 16);
        assert_int_equal(stats(np, job, NULL), 0);
        assert_clean_stderr();
        char *e = slurp("err.txt"), *o = slurp("out.txt");
        if (!strstr(e, "rank-0.h5: damaged: its data do not match their checksums; not resuming from it") ||
            !strstr(e, "resuming from step 2: not every rank has an undamaged checkpoint of step 3"))
            fail_msg("%d rank(s): no warning about the damaged checkpoint:\n%s", np, e);
        assert_non_null(strstr(o, "stats: resuming from step 2"));
        free(e), free(o);
        const int n = bitwise_equal_datasets(job, ref);
        assert_true(n >= 4 * n_expected(false));
        printf("    %d rank(s): rank 0's newest checkpoint damaged: refused, resumed from step 2, %d datasets bitwise equal\n",
               np, n);
    }
    /* rank 1's two files damaged: no step every rank has */
    write_job("dmgboth", "domain.json", "general.jsonl", extra);
    assert_int_not_equal(stats(2, "dmgboth", "GAPRUNE_TEST_KILL_AFTER_CHECKPOINT=3"), 0);
    snprintf(p, sizeof p, "%s/out-dmgboth/stats.ranks/rank-1.h5", g_dir);
    tu_flip_data_byte(p, "activation_sq_sum", 0);
    snprintf(p, sizeof p, "%s/out-dmgboth/stats.ranks/rank-1.prev.h5", g_dir);
    tu_flip_data_byte(p, "counts", 0);
    assert_int_equal(stats(2, "dmgboth", NULL), 0);
    char *e = slurp("err.txt"), *o = slurp("out.txt");
    if (!strstr(e, "[rank 1] ") || !strstr(e, "rank-1.prev.h5: damaged") || !strstr(e, "incomplete; starting over"))
        fail_msg("no start over:\n%s", e);
    assert_null(strstr(o, "resuming from step"));
    free(e), free(o);
    const int n = bitwise_equal_datasets("dmgboth", "dmgref2");
    assert_true(n >= 4 * n_expected(false));
    printf("    2 ranks, both of rank 1's checkpoints damaged: started over, %d datasets bitwise equal\n", n);
}

/* issue 14 (fuzz_h5, tests/fuzz/crashes/fuzz_h5/checkpoint-*): a checkpoint's counts were
 * trusted (the pass then ended in a fatal check), loss_sum and counts were read whole into
 * arrays of 2 and 4 (a longer dataset wrote past them), and a file refused half way left its
 * arrays in the accumulators when the .prev was read instead. The edits are resealed (their
 * checksums made to hold), so that what refuses them is the reading of the values; the step
 * given as an array cannot be (the root checksum reads it), and is refused by its checksum. */
static void test_damaged_values(void **state) {
    (void)state;
    const char *extra = "[stats]\ncheckpoint_every = 1\n";
    write_job("dref", "domain.json", "general.jsonl", extra);
    assert_int_equal(stats(1, "dref", NULL), 0);
    static const char *const what[] = {"counts that do not add up", "9 loss sums", "an array for the step",
                                       "a general corpus not started yet, wrong counts and a good .prev"};
    for (int k = 0; k < 4; k++) {
        char job[16], ck[4400], prev[4400];
        snprintf(job, sizeof job, "dmg%d", k);
        write_job(job, "domain.json", "general.jsonl", extra);
        /* step 2 is checkpointed twice (its turn, then the stop): the .prev is of step 2 too */
        assert_int_equal(stats(1, job, "GAPRUNE_TEST_SIGNAL_AT_STEP=2"), 3);
        snprintf(ck, sizeof ck, "%s/out-%s/stats.ranks/rank-0.h5", g_dir, job);
        snprintf(prev, sizeof prev, "%s/out-%s/stats.ranks/rank-0.prev.h5", g_dir, job);
        if (k < 3) assert_int_equal(unlink(prev), 0);
        const int64_t wrong[4] = {5, 72340172838076673, 5, 1}, step3[3] = {2, 2, 2};
        const double loss[9] = {0};
        if (k == 0) h5e_replace(ck, "counts", H5T_NATIVE_INT64, wrong, 4), h5e_reseal(ck);
        if (k == 1) h5e_replace(ck, "loss_sum", H5T_NATIVE_DOUBLE, loss, 9), h5e_reseal(ck);
        if (k == 2) h5e_attr_i64(ck, "/", "step", step3, 3);
        if (k == 3) {
            hid_t f = H5Fopen(ck, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, "domain_fisher_sum", H5P_DEFAULT);
            hid_t sp = H5Dget_space(d);
            const size_t na = (size_t)H5Sget_simple_extent_npoints(sp);
            H5Sclose(sp), H5Dclose(d), H5Fclose(f);
            float *junk = malloc(na * sizeof(float));
            for (size_t i = 0; i < na; i++) junk[i] = 7.0f;
            h5e_replace(ck, "general_fisher_sum", H5T_NATIVE_FLOAT, junk, na);
            h5e_replace(ck, "general_grad_sum", H5T_NATIVE_FLOAT, junk, na);
            h5e_replace(ck, "counts", H5T_NATIVE_INT64, wrong, 4);
            h5e_reseal(ck);
            free(junk);
        }
        assert_int_equal(stats(1, job, NULL), 0);
        assert_clean_stderr();
        char *e = slurp(k == 3 ? "out.txt" : "err.txt");
        if (!strstr(e, k == 3 ? "resuming from step 2" : "incomplete; starting over"))
            fail_msg("a checkpoint with %s:\n%s", what[k], e);
        free(e);
        const int n = bitwise_equal_datasets(job, "dref");
        assert_true(n >= 4 * n_expected(true));
        printf("    a checkpoint with %s: %s, %d datasets bitwise equal to an uninterrupted pass\n", what[k],
               k == 3 ? "resumed from the .prev" : "started over", n);
    }
}

typedef struct {
    const char *file, *content, *expect;
    int skipped;
} broken;

static void test_broken_corpora(void **state) {
    (void)state;
    const char *ok = "{\"query\": \"a\", \"positive\": \"b\", \"negative\": \"c\"}\n";
    static const broken cases[] = {
        {"trunc.json",
         "[\n {\"query\": \"a\", \"positive\": \"b\", \"negative\": \"c\"},\n {\"query\": \"d\", \"posi",
         "trunc.json:3: truncated JSON", 1},
        {"missing.jsonl", "%s{\"query\": \"a\", \"positive\": \"b\"}\n%s", "missing.jsonl:2: missing field \"negative\"", 1},
        {"type.jsonl", "%s%s{\"query\": 5, \"positive\": \"b\", \"negative\": \"c\"}\n", "type.jsonl:3: field \"query\" must be", 1},
        {"utf8.jsonl", "%s{\"query\": \"bad \xff byte\", \"positive\": \"b\", \"negative\": \"c\"}\n", "utf8.jsonl:2: field \"query\" is not valid UTF-8", 1},
        {"notjson.jsonl", "%s{\"query\": \"a\",,}\n%s", "notjson.jsonl:2: not valid JSON", 1},
        {"empty.jsonl", "", "empty.jsonl: empty file", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const broken *b = &cases[i];
        char path[4200], text[2048];
        snprintf(text, sizeof text, b->content, ok, ok);
        snprintf(path, sizeof path, "%s/%s", g_dir, b->file);
        tu_write(path, text);
        for (int np = 1; np <= 4; np *= 2) {
            char job[64];
            snprintf(job, sizeof job, "bad%zu", i);
            write_job(job, b->file, "general.jsonl", NULL);
            assert_int_equal(stats(np, job, NULL), 2);
            assert_clean_stderr();
            char *e = slurp("err.txt");
            if (!strstr(e, b->expect)) fail_msg("np %d: expected \"%s\" in:\n%s", np, b->expect, e);
            free(e);
        }
        if (b->skipped < 0) continue; /* nothing to skip to */
        char job[64];
        snprintf(job, sizeof job, "skip%zu", i);
        write_job(job, b->file, "general.jsonl", "[stats]\n[data]\non_bad_record = skip\n");
        assert_int_equal(stats(2, job, NULL), 0);
        hid_t f = open_out(job);
        assert_float_equal(attr_f64(f, "domain", "n_skipped"), b->skipped, 0);
        H5Fclose(f);
        printf("    %s: exit 2 on 1, 2 and 4 ranks; skip counts %d\n", b->file, b->skipped);
    }
}

/* Starts `gaprune stats JOB.ini` (under mpirun with np ranks, alone when np is 0) with one
 * second per unit, sends sig to the process started (mpirun, or gaprune) two seconds into the
 * loop, and returns its exit status. */
static int stats_interrupted(int np, const char *job, int sig) {
    char cmd[8192], out[4200];
    if (np) snprintf(cmd, sizeof cmd, "exec mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS -x GAPRUNE_TEST_UNIT_DELAY_MS %s stats %s.ini",
                     np, bin(), job);
    else snprintf(cmd, sizeof cmd, "exec %s stats %s.ini", bin(), job);
    snprintf(out, sizeof out, "%s/out.txt", g_dir);
    fflush(NULL); /* or the child's freopen writes this process's pending output a second time */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(g_dir) != 0 || !freopen("out.txt", "w", stdout) || !freopen("err.txt", "w", stderr)) _exit(127);
        setenv("GAPRUNE_TEST_UNIT_DELAY_MS", "1000", 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* until the loop has started: at most 3 minutes, for a 2-core machine loaded by other work
     * (a CI run once saw more than a minute pass under the sanitizers) */
    bool started = false;
    for (int i = 0; i < 1800 && !started; i++) {
        char *o = tu_read_file(out, NULL);
        started = o && strstr(o, "units of");
        free(o);
        if (!started) usleep(100000);
    }
    if (!started) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        char *o = tu_read_file(out, NULL), *e = tu_read_in(g_dir, "err.txt");
        fail_msg("%s: the statistics loop did not start within 3 minutes; stdout:\n%s\nstderr:\n%s", job, o ? o : "",
                 e ? e : "");
    }
    sleep(2);
    kill(pid, sig);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* issue 14: SIGINT (Ctrl-C) stops the statistics as SIGTERM does: checkpoint, the message,
 * exit 3 from gaprune; mpirun sends its ranks SIGTERM on SIGINT and itself exits 1 (Open MPI
 * 4.1, docs/guide.md "Exit codes"); either way a rerun resumes. */
static void test_sigint(void **state) {
    (void)state;
    for (int np = 0; np <= 2; np += 2) {
        char job[32], p[4200];
        snprintf(job, sizeof job, "int%d", np);
        write_job(job, "domain.json", "general.jsonl", "[stats]\ncheckpoint_every = 100\n");
        int rc = stats_interrupted(np, job, SIGINT);
        char *o = slurp("out.txt");
        if (!strstr(o, "stopped by a signal") || !strstr(o, "rerun the same job to resume"))
            fail_msg("%s: no stop message:\n%s", job, o);
        free(o);
        assert_clean_stderr();
        assert_int_equal(rc, np ? 1 : 3); /* mpirun's own code after SIGINT is 1; gaprune's is 3 */
        snprintf(p, sizeof p, "%s/out-%s/stats.ranks/latest", g_dir, job);
        assert_int_equal(access(p, F_OK), 0);
        assert_int_equal(np ? stats(np, job, NULL) : tu_run_in(g_dir, "%s stats %s.ini", bin(), job), 0);
        o = slurp("out.txt");
        assert_non_null(strstr(o, "stats: resuming from step"));
        free(o);
        snprintf(p, sizeof p, "%s/out-%s/stats.h5", g_dir, job);
        assert_int_equal(access(p, F_OK), 0);
        printf("    SIGINT to %s: exit %d, checkpoint written, rerun resumed\n", np ? "mpirun -np 2" : "gaprune alone", rc);
    }
}

/* issue 27: a resumed stage's progress rate counts this run's work only: 8 of 11 triplets done
 * before, 3 in this run's 0.3 s give at most 10 triplets/s, where 11 over the same time gave 36. */
static void test_progress_resumed_rate(void **state) {
    (void)state;
    char p[4200];
    snprintf(p, sizeof p, "%s/progress.txt", g_dir);
    fflush(stdout);
    const int saved = dup(1);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    dup2(fileno(f), 1);
    gp_progress pr;
    gp_progress_init(&pr, "stats", 11, "triplets");
    gp_progress_resume(&pr, 8);
    usleep(300000);
    gp_progress_done(&pr);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(f);
    char *o = tu_read_file(p, NULL);
    assert_non_null(o);
    const char *pl = strstr(o, "[stats] 11/11 triplets (100.0%) ");
    if (!pl) fail_msg("no progress line:\n%s", o);
    const double rate = strtod(pl + strlen("[stats] 11/11 triplets (100.0%) "), NULL);
    printf("    8 of 11 done before, 3 in 0.3 s: %.2f triplets/s\n", rate);
    assert_true(rate > 0 && rate <= 10.005); /* 3 / 0.3 s at most, printed to 0.01 */
    free(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        /* fb1 is the 1-rank file the rank counts are compared with (48 ranks too) */
        tu_long_needs(test_reference_fb1), cmocka_unit_test(test_reference_fb4),
        /* 2, 3, 4 and 8 ranks, each file's masks scored on as many */
        tu_long_test(test_ranks_agree),
        cmocka_unit_test(test_only_selected), cmocka_unit_test(test_sharded),
        /* 48 oversubscribed ranks, and the kill-and-resume matrices: minutes on 2 cores */
        tu_long_test(test_48_ranks), tu_long_test(test_kill_and_resume), tu_long_test(test_damaged_checkpoint),
        cmocka_unit_test(test_sigint), cmocka_unit_test(test_damaged_values), cmocka_unit_test(test_broken_corpora),
        cmocka_unit_test(test_progress_resumed_rate),
    };
    /* GP_TEST_FILTER=test_sharded runs one test while iterating (cmocka's pattern) */
    return tu_run_group("stats", tests, setup, teardown);
}
