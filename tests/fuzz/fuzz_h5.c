/* fuzz_h5.c — the HDF5 files gaprune reads back: stats.h5 (scoring, `gaprune inspect`), mask
 * files (gp_mask_read, inspect), the statistics' checkpoints (a resumed `gaprune stats`), the
 * retraining log (a resumed retraining) and calibration samples (a rerun of the sample stage).
 * A damaged, truncated or foreign file is refused with a gp_err or not used (the stage starts
 * over), never a crash, a fatal check or a read past a buffer.
 *
 * The reference files are made in LLVMFuzzerInitialize by the stages themselves on bert-tiny and
 * the fixture corpora (a statistics pass and a retraining each stopped after one step by the
 * test hook leave a checkpoint), so they always have the current layouts.
 *
 * Input: byte 0 picks the file (T_*), byte 1 the reader's settings (criterion, scope,
 * alignment, which checkpoint file is damaged: see each run_* below; unused by the retraining and
 * the sample); the rest is a program of
 * edits applied to a copy of the reference file with the HDF5 library, so that the readers face
 * well-formed HDF5 with the wrong content: an attribute or dataset of another type, shape or
 * size, missing, another dataset's copy or a group in a dataset's place, or the file cut short.
 *
 * Bytes overwritten inside HDF5's own structures are not among the edits: libhdf5 1.10 itself
 * crashes on some of them (H5HG_read on a damaged global heap, reading a variable-length
 * string), which no check of gaprune's can prevent. A file cut short is refused by H5Fopen.
 */
#include "fuzz_util.h"

#include <hdf5.h>
#include <mpi.h>

#include "gaprune/checkpoint.h"
#include "gaprune/cli.h"
#include "gaprune/h5.h"
#include "gaprune/kernels.h"
#include "gaprune/log.h"
#include "gaprune/mask.h"
#include "gaprune/model.h"
#include "gaprune/pipeline.h"
#include "gaprune/retrain.h"
#include "gaprune/sample.h"
#include "gaprune/score.h"
#include "gaprune/stats.h"
#include "gaprune/testhook.h"

enum { T_STATS, T_MASK, T_CHECKPOINT, T_RETRAIN_PARTIAL, T_RETRAIN_DONE, T_SAMPLE, N_TARGETS };

/* A reference file and the names in it the edits pick from. */
typedef struct {
    const char *name; /* in the reference folder */
    char path[PATH_MAX];
    char **objects; /* "/" and every group and dataset */
    int nobj;
    char **dsets;
    int ndset;
    char **attrs; /* every attribute name, on any object */
    int nattr;
} reference;

static reference g_ref[N_TARGETS] = {
    {.name = "stats.h5"},          {.name = "mask.h5"},          {.name = "stats.ranks/rank-0.h5"},
    {.name = "retrain-partial.h5"}, {.name = "retrain-done.h5"}, {.name = "sample-domain.h5"},
};

/* Open MPI's libraries keep allocations for the life of the process, as files are opened too
 * (tests/fuzz/lsan.supp names them). The replay build (make test, GP_FUZZ_REPLAY) unwinds every
 * allocation fully so that their frames are seen and suppressed at exit, and leaks of gaprune's
 * code are reported; under libFuzzer, whose speed needs the fast unwinder that cannot see
 * those frames, leaks are not checked (the replay of the corpus checks them). */
const char *__lsan_default_options(void) { return "suppressions=tests/fuzz/lsan.supp:print_suppressions=0"; }
#ifdef GP_FUZZ_REPLAY
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }
#else
const char *__asan_default_options(void) { return "detect_leaks=0"; }
#endif

/* A fatal check (gp_fatal) ends the job through MPI_Abort, which Open MPI carries out without a
 * signal or an exit that libFuzzer or the replay would notice: here it aborts, so that the input
 * that fired it is kept and named. */
int MPI_Abort(MPI_Comm comm, int code) {
    (void)comm;
    fprintf(stderr, "fuzz: MPI_Abort(%d): a fatal check fired\n", code);
    abort();
}

static char g_root[PATH_MAX], g_refdir[PATH_MAX], g_out[PATH_MAX], g_latest[PATH_MAX];
static char g_domain[PATH_MAX], g_general[PATH_MAX];
static gp_model *g_model;
static float *g_params; /* the model's weights, restored after a retraining changed them */
static gp_mask g_mask;  /* the mask retraining runs with */

/* ---- the stages' options (the same for the references and the runs: the settings hashes match) */

static gp_stats_opts stats_opts(const char *out) {
    return (gp_stats_opts){.corpus = {g_domain, g_general}, .max_samples = 2, .seed = 42, .max_length = 16,
                           .fisher_batch = 1, .checkpoint_every = 1000, .alignment = GP_ALIGN_TENSOR,
                           .layers = GP_LAYERS_MLP, .accumulators = GP_ACC_REPLICATED,
                           .sample_method = GP_SAMPLE_NONE, .out_dir = out, .job_path = "job.ini"};
}

static gp_train_opts train_opts(void) {
    return (gp_train_opts){.corpus = g_domain, .max_samples = 4, .seed = 42, .steps = 2, .warmup = 0, .batch = 2,
                           .checkpoint_every = 1, .max_length = 16, .lr = 1e-3, .weight_decay = 0.01,
                           .grad_clip = 1.0, .sharding = GP_SHARD_NONE, .query_instruction = "",
                           .what = "[data] domain", .job_path = "job.ini"};
}

static gp_sample_opts sample_opts(const char *out) {
    return (gp_sample_opts){.corpus = {g_domain, g_general}, .data_seed = 42, .method = GP_SAMPLE_RANDOM, .k = 2,
                            .iterations = 1, .seed = 7, .model = "", .job_model_path = FZ_FIXTURES "/bert-tiny",
                            .max_length = 16, .out_dir = out, .job_path = "job.ini"};
}

static gp_prune_opts prune_opts(const char *out, uint8_t flags) {
    static const char *const scopes[4] = {"global", "layer", "row", "2:4"};
    gp_prune_opts o = {.layers = GP_LAYERS_MLP, .alignment = flags & 4 ? GP_ALIGN_REFCODE : GP_ALIGN_TENSOR,
                       .alpha = 0.2, .beta = 1.0, .gamma = 0.5, .prune_seed = 42, .save_scores = flags & 8,
                       .out_dir = out, .job_path = "job.ini", .layers_origin = "job.ini:1", .scope_origin = "job.ini:2"};
    gp_err err = {0};
    FZ_ASSERT(gp_scope_parse(scopes[flags >> 4 & 3], &o.scope, &err) == GP_OK);
    return o;
}

/* ---- the references ------------------------------------------------------------------------ */

static void must(gp_status rc, gp_status want, const char *what, const gp_err *err) {
    if (rc == want) return;
    fprintf(stderr, "fuzz: making the reference %s: %s\n", what, err->msg);
    abort();
}

static void copy(const char *from, const char *to) {
    gp_err err = {0};
    must(gp_copy_file(from, to, &err), GP_OK, to, &err);
}

static void make_references(void) {
    char path[PATH_MAX], tmp[PATH_MAX];
    gp_err err = {0};
    gp_testhooks hooks = GP_TESTHOOKS_OFF;
    /* statistics: stopped before step 1 (a checkpoint of step 1 and `latest`), then completed */
    gp_stats_opts so = stats_opts(g_refdir);
    gp_stats_report srep;
    hooks.signal_at_step = 1;
    gp_testhook_set(&hooks);
    must(gp_stats_run(&so, g_model, NULL, &srep, &err), GP_ESTOPPED, "checkpoint", &err);
    fz_path(path, g_refdir, "stats.ranks/rank-0.h5");
    copy(path, fz_path(tmp, g_refdir, "rank-0.h5"));
    copy(fz_path(path, g_refdir, "stats.ranks/latest"), fz_path(g_latest, g_refdir, "latest"));
    hooks.signal_at_step = -1;
    gp_testhook_set(&hooks);
    must(gp_stats_run(&so, g_model, NULL, &srep, &err), GP_OK, "stats.h5", &err);
    fz_mkdir(fz_path(path, g_refdir, "stats.ranks"));
    copy(tmp, fz_path(path, g_refdir, "stats.ranks/rank-0.h5"));

    /* a mask with every dataset (scores saved) from those statistics */
    gp_prune_opts po = prune_opts(g_refdir, 8);
    gp_mask_request req = {.method = gp_criterion_find("gaprune"), .sparsity = 0.5,
                           .stats_path = fz_path(path, g_refdir, "stats.h5"),
                           .mask_path = fz_path(tmp, g_refdir, "mask.h5"), .settings_hash = "fuzz"};
    must(gp_mask_build(&po, g_model, &req, &g_mask, &err), GP_OK, "mask.h5", &err);

    /* retraining: stopped after its first step (the signal comes before step 0, the stop is
     * agreed after it), then completed */
    gp_train_opts to = train_opts();
    gp_retrain_report rrep;
    fz_path(path, g_refdir, "retrain.h5");
    hooks.signal_at_step = 0;
    gp_testhook_set(&hooks);
    must(gp_retrain(&to, g_model, &g_mask, "fz", path, "fuzz", &rrep, &err), GP_ESTOPPED, "retrain log", &err);
    copy(path, fz_path(tmp, g_refdir, "retrain-partial.h5"));
    hooks.signal_at_step = -1;
    gp_testhook_set(&hooks);
    must(gp_retrain(&to, g_model, &g_mask, "fz", path, "fuzz", &rrep, &err), GP_OK, "retrain log", &err);
    copy(path, fz_path(tmp, g_refdir, "retrain-done.h5"));
    memcpy(g_model->params, g_params, g_model->table.total * sizeof(float));

    /* a random calibration sample of each corpus */
    gp_sample_opts sa = sample_opts(g_refdir);
    gp_sample_report rep;
    must(gp_sample_run(&sa, g_model, &rep, &err), GP_OK, "sample", &err);
    gp_sample_report_free(&rep);
}

/* ---- the names the edits choose from ------------------------------------------------------- */

static void push(char ***v, int *n, const char *s) {
    for (int i = 0; i < *n; i++)
        if (!strcmp((*v)[i], s)) return;
    *v = realloc(*v, (size_t)(*n + 1) * sizeof **v);
    (*v)[(*n)++] = strdup(s);
}

static herr_t on_attr(hid_t loc, const char *name, const H5A_info_t *info, void *ref) {
    (void)loc, (void)info;
    reference *r = ref;
    push(&r->attrs, &r->nattr, name);
    return 0;
}

static herr_t on_link(hid_t group, const char *name, const H5L_info_t *info, void *ref) {
    (void)info;
    reference *r = ref;
    hid_t o = H5Oopen(group, name, H5P_DEFAULT);
    if (o < 0) return 0;
    push(&r->objects, &r->nobj, name);
    if (H5Iget_type(o) == H5I_DATASET) push(&r->dsets, &r->ndset, name);
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, on_attr, r);
    H5Oclose(o);
    return 0;
}

static void harvest(reference *r) {
    hid_t f = H5Fopen(r->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    FZ_ASSERT(f >= 0);
    push(&r->objects, &r->nobj, "/");
    H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, on_attr, r);
    H5Lvisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, on_link, r);
    H5Fclose(f);
    FZ_ASSERT(r->ndset > 0 && r->nattr > 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    /* h5par writes stats.h5 and the retraining log through MPI-IO: one rank, no mpirun. Never
     * finalized: MPI_Finalize unloads Open MPI's plugins, and LeakSanitizer could then no longer
     * name (and tests/fuzz/lsan.supp no longer suppress) what they keep at exit */
    MPI_Init(NULL, NULL);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    gp_set_threads(1);
    gp_log_set_level(0);
    /* `gaprune inspect` prints its tables on stdout; libFuzzer reports on stderr */
    if (!freopen("/dev/null", "w", stdout)) abort();
    snprintf(g_root, sizeof g_root, "%s", fz_scratch("h5"));
    fz_mkdir(fz_path(g_refdir, g_root, "ref"));
    fz_path(g_out, g_root, "out");
    FZ_ASSERT(realpath(FZ_FIXTURES "/corpora/domain.json", g_domain) && realpath(FZ_FIXTURES "/corpora/general.jsonl", g_general));
    gp_err err = {0};
    must(gp_model_load(FZ_FIXTURES "/bert-tiny", &g_model, &err), GP_OK, "model", &err);
    g_params = malloc(g_model->table.total * sizeof(float));
    memcpy(g_params, g_model->params, g_model->table.total * sizeof(float));
    make_references();
    /* GP_FUZZ_H5_NAMES=1 lists the names an edit's index bytes pick, for writing inputs by hand */
    const bool list = getenv("GP_FUZZ_H5_NAMES") != NULL;
    for (int i = 0; i < N_TARGETS; i++) {
        fz_path(g_ref[i].path, g_refdir, g_ref[i].name);
        harvest(&g_ref[i]);
        for (int k = 0; list && k < g_ref[i].nobj; k++) fprintf(stderr, "target %d object %d: %s\n", i, k, g_ref[i].objects[k]);
        for (int k = 0; list && k < g_ref[i].ndset; k++) fprintf(stderr, "target %d dataset %d: %s\n", i, k, g_ref[i].dsets[k]);
        for (int k = 0; list && k < g_ref[i].nattr; k++) fprintf(stderr, "target %d attribute %d: %s\n", i, k, g_ref[i].attrs[k]);
    }
    return 0;
}

/* ---- the edit program ---------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, at;
} bytes;

static unsigned next(bytes *b) { return b->at < b->n ? b->p[b->at++] : 0; }
static bool more(const bytes *b) { return b->at < b->n; }

enum { TY_I64, TY_F64, TY_F32, TY_U8, TY_STR, TY_VSTR, N_TY };

static hid_t file_type(int ty) {
    switch (ty) {
    case TY_I64: return H5Tcopy(H5T_STD_I64LE);
    case TY_F64: return H5Tcopy(H5T_IEEE_F64LE);
    case TY_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case TY_U8: return H5Tcopy(H5T_STD_U8LE);
    default: {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, ty == TY_VSTR ? H5T_VARIABLE : 8);
        return t;
    }
    }
}

/* count values of type ty from the input (cycled; a string is a few of its bytes) */
static void *values(int ty, hsize_t count, bytes *b, char ***strings) {
    static const char *const texts[] = {"gaprune-stats", "gaprune-mask", "x", "", "encoder.layer.0.output.dense.weight"};
    *strings = NULL;
    if (ty == TY_VSTR) {
        char **s = malloc((size_t)(count ? count : 1) * sizeof *s);
        for (hsize_t i = 0; i < count; i++) s[i] = strdup(texts[next(b) % 5]);
        *strings = s;
        return s;
    }
    const size_t size = ty == TY_STR ? 8 : ty == TY_U8 ? 1 : ty == TY_F32 ? 4 : 8;
    uint8_t *v = calloc((size_t)(count ? count : 1), size);
    for (hsize_t i = 0; i < count * size; i++) v[i] = (uint8_t)(more(b) ? next(b) : i * 131);
    if (ty == TY_I64 && count) {
        /* small integers too: steps, ranks, counts and flags that pass the first checks */
        int64_t x = (int8_t)v[0];
        memcpy(v, &x, 8);
    }
    return v;
}

static void free_values(void *v, char **strings, hsize_t count) {
    if (strings)
        for (hsize_t i = 0; i < count; i++) free(strings[i]);
    free(v);
}

static hid_t space(bytes *b, hsize_t *count) {
    const unsigned k = next(b) % 4;
    hsize_t dims[2]; /* one byte after the other (the elements of an initializer are unsequenced) */
    dims[0] = 1 + next(b) % 6;
    dims[1] = 1 + next(b) % 3;
    *count = k == 0 ? 1 : k == 1 ? dims[0] : k == 2 ? dims[0] * dims[1] : 0;
    if (k == 0) return H5Screate(H5S_SCALAR);
    if (k == 3) return H5Screate(H5S_NULL);
    return H5Screate_simple((int)k, dims, NULL);
}

static void set_attr(hid_t f, const reference *r, bytes *b) {
    const char *obj = r->objects[next(b) % r->nobj], *name = r->attrs[next(b) % r->nattr];
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    if (o < 0) return;
    const int ty = (int)(next(b) % N_TY);
    hsize_t count;
    hid_t t = file_type(ty), sp = space(b, &count);
    char **strings;
    void *v = values(ty, count, b, &strings);
    if (H5Aexists(o, name) > 0) H5Adelete(o, name);
    hid_t a = H5Acreate2(o, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        if (count) H5Awrite(a, t, v);
        H5Aclose(a);
    }
    free_values(v, strings, count);
    H5Sclose(sp);
    H5Tclose(t);
    H5Oclose(o);
}

static void del_attr(hid_t f, const reference *r, bytes *b) {
    const char *obj = r->objects[next(b) % r->nobj], *name = r->attrs[next(b) % r->nattr];
    if (H5Aexists_by_name(f, obj, name, H5P_DEFAULT) > 0) H5Adelete_by_name(f, obj, name, H5P_DEFAULT);
}

/* The dataset's name with another type and shape: a few values, as many as before in another
 * shape, or a huge extent with no data written (chunks that were never stored read as 0). */
static void replace_dataset(hid_t f, const reference *r, bytes *b) {
    const char *name = r->dsets[next(b) % r->ndset];
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return;
    hid_t osp = H5Dget_space(d);
    const hssize_t old = H5Sget_simple_extent_npoints(osp);
    H5Sclose(osp);
    H5Dclose(d);
    const int ty = (int)(next(b) % N_TY);
    const unsigned kind = next(b) % 4;
    hsize_t dims[3] = {1, 1, 1}, count = 1;
    int rank = 1;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    bool write = true;
    if (kind == 0) {
        rank = (int)(next(b) % 4);
        for (int i = 0; i < rank; i++) count *= dims[i] = 1 + next(b) % 9;
    } else if (kind == 1 || kind == 2) {
        count = (hsize_t)(old > 0 ? old : 1) + (next(b) % 3 == 0 ? 1 : 0);
        rank = (int)kind;
        dims[0] = count;
        if (kind == 2) dims[0] = 1, dims[1] = count;
    } else {
        dims[0] = (hsize_t)1 << (20 + next(b) % 24);
        hsize_t chunk = 1024;
        H5Pset_chunk(dcpl, 1, &chunk);
        write = false;
    }
    H5Ldelete(f, name, H5P_DEFAULT);
    hid_t t = file_type(ty), sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t nd = H5Dcreate2(f, name, t, sp, lcpl, dcpl, H5P_DEFAULT);
    if (nd >= 0) {
        if (write && count <= (1u << 20)) {
            char **strings;
            void *v = values(ty, count, b, &strings);
            H5Dwrite(nd, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
            free_values(v, strings, count);
        }
        H5Dclose(nd);
    }
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(t);
}

static void del_link(hid_t f, const reference *r, bytes *b) {
    const char *name = r->objects[next(b) % r->nobj];
    if (strcmp(name, "/")) H5Ldelete(f, name, H5P_DEFAULT);
}

/* One dataset in another's place: a tensor's mask or statistics with another tensor's shape. */
static void copy_dataset(hid_t f, const reference *r, bytes *b) {
    const char *from = r->dsets[next(b) % r->ndset], *to = r->dsets[next(b) % r->ndset];
    if (!strcmp(from, to) || H5Lexists(f, from, H5P_DEFAULT) <= 0) return;
    if (H5Lexists(f, to, H5P_DEFAULT) > 0) H5Ldelete(f, to, H5P_DEFAULT);
    H5Ocopy(f, from, f, to, H5P_DEFAULT, H5P_DEFAULT);
}

static void dataset_to_group(hid_t f, const reference *r, bytes *b) {
    const char *name = r->dsets[next(b) % r->ndset];
    if (H5Ldelete(f, name, H5P_DEFAULT) >= 0) {
        hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g >= 0) H5Gclose(g);
    }
}

/* The reference with the input's edits, at path; reseal: a checkpoint's checksums recomputed
 * after the edits (gp_checkpoint_reseal), so that the edits reach the stage's own checks of the
 * values, which the checksums would otherwise keep them from (a cut comes after it). */
static void make_file(const reference *r, const char *path, const uint8_t *data, size_t size, bool reseal) {
    gp_err err = {0};
    unlink(path);
    FZ_ASSERT(gp_copy_file(r->path, path, &err) == GP_OK);
    bytes b = {data, size, 0};
    int64_t cut = -1; /* 1/65536ths of the size to keep */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    FZ_ASSERT(f >= 0);
    for (int ops = 0; more(&b) && ops < 16; ops++) {
        switch (next(&b) % 7) {
        case 0: set_attr(f, r, &b); break;
        case 1: del_attr(f, r, &b); break;
        case 2: replace_dataset(f, r, &b); break;
        case 3: del_link(f, r, &b); break;
        case 4: dataset_to_group(f, r, &b); break;
        case 5: copy_dataset(f, r, &b); break;
        default:
            cut = next(&b) << 8;
            cut |= next(&b);
        }
    }
    if (reseal) gp_checkpoint_reseal(f);
    H5Fclose(f);
    struct stat st;
    if (cut >= 0 && stat(path, &st) == 0) FZ_ASSERT(truncate(path, (off_t)((uint64_t)st.st_size * (uint64_t)cut >> 16)) == 0);
}

/* ---- the readers --------------------------------------------------------------------------- */

static int inspect(const char *path, bool svg) {
    char svg_path[PATH_MAX];
    fz_path(svg_path, g_out, "figure.svg");
    char *argv[] = {"inspect", (char *)path, "--svg", svg_path, NULL};
    const int rc = gp_cmd_inspect(svg ? 4 : 2, argv);
    FZ_ASSERT(rc == GP_OK || rc == GP_EINPUT);
    return rc;
}

/* stats.h5 as the scoring reads it and as `gaprune inspect` shows it (flags: bit 1 an SVG too,
 * bit 2 the refcode alignment, bit 3 scores saved, bits 4-5 the scope, bits 6-7 the criterion). */
static void run_stats(const uint8_t *data, size_t size, uint8_t flags) {
    static const char *const crits[4] = {"gaprune", "gaprune-ref", "wanda", "fisher-domain"};
    char path[PATH_MAX], mask_path[PATH_MAX];
    make_file(&g_ref[T_STATS], fz_path(path, g_out, "stats.h5"), data, size, false);
    gp_prune_opts po = prune_opts(g_out, flags);
    gp_prune_inputs in;
    gp_err err = {0};
    if (gp_prune_inputs_init(&po, g_model, &in, &err) == GP_OK) {
        gp_mask_request req = {.method = gp_criterion_find(crits[flags >> 6]), .sparsity = 0.5, .stats_path = path,
                               .mask_path = fz_path(mask_path, g_out, "mask.h5"), .settings_hash = "fuzz"};
        gp_mask mk;
        if (gp_mask_build(&po, g_model, &req, &mk, &err) == GP_OK) gp_mask_free(&mk);
        else FZ_ASSERT(err.code == GP_EINPUT && strstr(err.msg, path));
        gp_prune_inputs_free(&in);
    } else {
        FZ_ASSERT(err.code == GP_EINPUT);
    }
    inspect(path, flags & 2);
}

/* A mask file as retraining reads it (gp_mask_read) and as inspect shows it (flags bit 1: an SVG). */
static void run_mask(const uint8_t *data, size_t size, uint8_t flags) {
    char path[PATH_MAX];
    make_file(&g_ref[T_MASK], fz_path(path, g_out, "mask.h5"), data, size, false);
    gp_mask mk;
    gp_err err = {0};
    if (gp_mask_read(path, g_model, &mk, &err) == GP_OK) {
        FZ_ASSERT(mk.n > 0 && mk.pruned <= mk.total);
        gp_mask_free(&mk);
    } else {
        FZ_ASSERT(err.code == GP_EINPUT && strstr(err.msg, path));
    }
    inspect(path, flags & 2);
}

/* A statistics pass that finds the checkpoint (flags bit 0: its checksums recomputed after the
 * edits; bit 1: the damaged file is rank-0.h5 with
 * a good .prev.h5 beside it, else the damaged file alone; bits 2-3: `latest` as written, naming
 * another step, or naming step 1 with another rank count): whatever it finds, it computes. */
static void run_checkpoint(const uint8_t *data, size_t size, uint8_t flags) {
    char dir[PATH_MAX], path[PATH_MAX];
    fz_mkdir(fz_path(dir, g_out, "stats.ranks"));
    make_file(&g_ref[T_CHECKPOINT], fz_path(path, dir, "rank-0.h5"), data, size, flags & 1);
    gp_err err = {0};
    if (flags & 2) FZ_ASSERT(gp_copy_file(g_ref[T_CHECKPOINT].path, fz_path(path, dir, "rank-0.prev.h5"), &err) == GP_OK);
    char *latest = NULL;
    size_t n;
    FZ_ASSERT(gp_read_file(g_latest, &latest, &n, &err) == GP_OK);
    const unsigned how = flags >> 2 & 3;
    if (how == 1) latest[5] = (char)('0' + (flags >> 4) % 10);
    if (how == 2) latest[n - 2] = '7';
    fz_write(fz_path(path, dir, "latest"), latest, how == 3 ? n / 2 : n);
    free(latest);
    gp_stats_opts so = stats_opts(g_out);
    gp_stats_report rep;
    const gp_status rc = gp_stats_run(&so, g_model, NULL, &rep, &err);
    if (rc) fprintf(stderr, "fuzz: gaprune stats failed on a damaged checkpoint: %s\n", err.msg);
    FZ_ASSERT(rc == GP_OK);
}

/* A retraining that finds its log (flags bit 0: its checksums recomputed after the edits):
 * resumed, skipped or started over, it completes; only weights
 * that were read into the model and are not usable (unreadable, not finite) stop it, naming the
 * log. */
static void run_retrain(int target, const uint8_t *data, size_t size, uint8_t flags) {
    char path[PATH_MAX];
    make_file(&g_ref[target], fz_path(path, g_out, "retrain.h5"), data, size, flags & 1);
    gp_train_opts to = train_opts();
    gp_retrain_report rep;
    gp_err err = {0};
    const gp_status rc = gp_retrain(&to, g_model, &g_mask, "fz", path, "fuzz", &rep, &err);
    memcpy(g_model->params, g_params, g_model->table.total * sizeof(float));
    if (rc && !(rc == GP_EINPUT && strstr(err.msg, path) && strstr(err.msg, "not finite")))
        fprintf(stderr, "fuzz: retraining failed on a damaged log: %s\n", err.msg);
    FZ_ASSERT(rc == GP_OK || (rc == GP_EINPUT && strstr(err.msg, path) && strstr(err.msg, "not finite")));
}

/* The sample stage finding a sample file beside its .jsonl: current or redone, it completes. */
static void run_sample(const uint8_t *data, size_t size) {
    char path[PATH_MAX], ref[PATH_MAX];
    gp_err err = {0};
    static const char *const names[] = {"sample-domain.jsonl", "sample-general.jsonl", "sample-general.h5"};
    for (int i = 0; i < 3; i++)
        FZ_ASSERT(gp_copy_file(fz_path(ref, g_refdir, names[i]), fz_path(path, g_out, names[i]), &err) == GP_OK);
    make_file(&g_ref[T_SAMPLE], fz_path(path, g_out, "sample-domain.h5"), data, size, false);
    gp_sample_opts so = sample_opts(g_out);
    gp_sample_report rep;
    const gp_status rc = gp_sample_run(&so, g_model, &rep, &err);
    if (rc) fprintf(stderr, "fuzz: the sample stage failed on a damaged sample: %s\n", err.msg);
    FZ_ASSERT(rc == GP_OK);
    gp_sample_report_free(&rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const int target = data[0] % N_TARGETS;
    const uint8_t flags = data[1];
    gp_rmtree(g_out);
    fz_mkdir(g_out);
    data += 2, size -= 2;
    switch (target) {
    case T_STATS: run_stats(data, size, flags); break;
    case T_MASK: run_mask(data, size, flags); break;
    case T_CHECKPOINT: run_checkpoint(data, size, flags); break;
    case T_RETRAIN_PARTIAL:
    case T_RETRAIN_DONE: run_retrain(target, data, size, flags); break;
    default: run_sample(data, size);
    }
    return 0;
}
