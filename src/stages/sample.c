/* sample.c — the representative calibration sample stage (see sample.h). */
#include "gaprune/sample.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/provenance.h"
#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/hash.h"
#include "gaprune/json.h"
#include "gaprune/kernels.h"
#include "gaprune/kmeans.h"
#include "gaprune/log.h"
#include "gaprune/rng.h"
#include "gaprune/sample_file.h"
#include "gaprune/triplets.h"

static const char *k_corpus[2] = {"domain", "general"};

/* ---- pure helpers ------------------------------------------------------------------------------- */

typedef struct {
    uint64_t key;
    int64_t i;
} keyed;

static int by_key(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int by_value(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t gp_sample_random(int64_t n, int64_t k, uint64_t seed, int64_t *out) {
    if (k >= n) {
        for (int64_t i = 0; i < n; i++) out[i] = i;
        return n;
    }
    keyed *a = gp_malloc((size_t)(n ? n : 1) * sizeof *a);
    for (int64_t i = 0; i < n; i++) a[i] = (keyed){gp_record_key(seed, i), i};
    qsort(a, (size_t)n, sizeof *a, by_key);
    for (int64_t j = 0; j < k; j++) out[j] = a[j].i;
    free(a);
    qsort(out, (size_t)k, sizeof *out, by_value);
    return k;
}

/* ---- the stage ---------------------------------------------------------------------------------- */

typedef struct {
    const gp_sample_opts *o;
    bool kmeans;
    const char *model_dir; /* kmeans: the folder that embeds the queries */
    char model_sha[65];
    gp_model *job_model, *own_model;
} sample_ctx;

static void settings_hash(const sample_ctx *x, const gp_corpus *c, char out[65]) {
    const gp_sample_opts *o = x->o;
    char buf[1024];
    if (x->kmeans)
        snprintf(buf, sizeof buf,
                 "gaprune-sample v%d; corpus %s; on_bad_record %d; method kmeans; k %lld; iterations %d; seed %lld; "
                 "model %s; max_length %d; batch %d; queries as written; L2-normalised%s",
                 GP_SAMPLE_FORMAT_VERSION, c->sha256, (int)o->skip_bad, (long long)o->k, o->iterations,
                 (long long)o->seed, x->model_sha, o->max_length, GP_SAMPLE_ENCODE_BATCH, gp_compute_tag());
    else
        snprintf(buf, sizeof buf, "gaprune-sample v%d; corpus %s; on_bad_record %d; method random; k %lld; seed %lld",
                 GP_SAMPLE_FORMAT_VERSION, c->sha256, (int)o->skip_bad, (long long)o->k, (long long)o->seed);
    gp_sha256 *h = gp_sha256_init();
    gp_sha256_update(h, buf, strlen(buf));
    gp_sha256_final(h, out);
}

/* Rank 0: the .h5 is complete for these settings and the .jsonl is the one it describes. */
static bool sample_current(const char *h5, const char *jsonl, const char *hash, int64_t *n_selected) {
    if (!gp_file_exists(h5) || !gp_file_exists(jsonl)) return false;
    hid_t f = gp_h5_open_quiet(h5);
    if (f < 0) return false;
    int64_t complete = 0;
    char *h = gp_h5_read_attr_str(f, GP_SAMPLE_ATTR_SETTINGS_HASH);
    char *js = gp_h5_read_attr_str(f, GP_SAMPLE_ATTR_SAMPLE_SHA256);
    bool ok = !gp_h5_read_attr_int(f, GP_H5_ATTR_COMPLETE, &complete) && complete == 1 && h && !strcmp(h, hash) && js &&
              !gp_h5_read_attr_int(f, GP_SAMPLE_ATTR_N_SELECTED, n_selected);
    H5Fclose(f);
    char now[65];
    gp_err e;
    ok = ok && !gp_sha256_file(jsonl, now, &e) && !strcmp(now, js);
    free(h);
    free(js);
    return ok;
}

/* The sampling model: the job's when it is the same folder, else loaded once. Collective. */
static gp_status sampling_model(sample_ctx *x, gp_model **m, gp_err *err) {
    if (x->job_model && !strcmp(x->model_dir, x->o->job_model_path)) {
        *m = x->job_model;
        return GP_OK;
    }
    if (!x->own_model) {
        gp_status rc = gp_model_load(x->model_dir, &x->own_model, err);
        if (rc) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            gp_errf(err, rc, "%s: [sample] model: %s", x->o->job_path, msg);
        }
        if ((rc = gp_agree(rc, err))) {
            gp_model_free(x->own_model);
            x->own_model = NULL;
            return rc;
        }
    }
    *m = x->own_model;
    return GP_OK;
}

/* This rank's queries, embedded and L2-normalised: rows [*lo, *lo + *nl) of the candidates. */
static gp_status embed_queries(gp_model *m, gp_corpus *c, int max_len, const char *label, float **out, int64_t *lo_out,
                               int64_t *nl_out, gp_err *err) {
    const int rank = gp_rank(), P = gp_nranks(), D = gp_model_dim(m);
    const int64_t n = c->n_selected, nb = (n + GP_SAMPLE_ENCODE_BATCH - 1) / GP_SAMPLE_ENCODE_BATCH;
    int64_t lo = nb * rank / P * GP_SAMPLE_ENCODE_BATCH, hi = nb * (rank + 1) / P * GP_SAMPLE_ENCODE_BATCH;
    if (lo > n) lo = n;
    if (hi > n) hi = n;
    const int64_t nl = hi - lo;
    char **q = gp_calloc((size_t)(nl ? nl : 1), sizeof(char *));
    gp_status rc = GP_OK;
    for (int64_t i = 0; i < nl && !rc; i++) {
        gp_triplet t;
        rc = gp_corpus_read(c, lo + i, &t, err);
        if (rc) break;
        q[i] = t.query; /* the query is kept, the documents are not needed */
        t.query = NULL;
        gp_triplet_free(&t);
    }
    float *emb = gp_malloc((size_t)(nl ? nl : 1) * D * sizeof(float));
    if ((rc = gp_agree(rc, err)) == GP_OK) {
        char plabel[96];
        snprintf(plabel, sizeof plabel, "%s: embedding", label);
        gp_progress prog;
        gp_progress_init(&prog, plabel, n, "queries");
        for (int64_t i = 0; i < nl; i += GP_SAMPLE_ENCODE_BATCH) {
            int k = (int)(nl - i < GP_SAMPLE_ENCODE_BATCH ? nl - i : GP_SAMPLE_ENCODE_BATCH);
            gp_model_encode(m, (const char *const *)q + i, k, GP_SAMPLE_ENCODE_BATCH, max_len, NULL, emb + (size_t)i * D);
            gp_progress_update(&prog, (i + k) * P < n ? (i + k) * P : n); /* equal shares: rank 0 speaks for all */
        }
        gp_barrier();
        gp_progress_done(&prog);
        float *norm = gp_malloc((size_t)(nl ? nl : 1) * sizeof(float));
        gp_l2norm_forward(emb, norm, emb, (int)nl, D);
        free(norm);
    }
    for (int64_t i = 0; i < nl; i++) free(q[i]);
    free(q);
    if (rc) {
        free(emb);
        return rc;
    }
    *out = emb;
    *lo_out = lo;
    *nl_out = nl;
    return GP_OK;
}

/* Rank 0: the selected records, unchanged and in corpus order, one per line. */
static gp_status write_jsonl(gp_corpus *c, const int64_t *sel, int64_t ns, const char *path, char sha[65], gp_err *err) {
    FILE *f = gp_file_create(path, err);
    gp_status rc = f ? GP_OK : GP_EINPUT;
    gp_sha256 *h = gp_sha256_init();
    for (int64_t j = 0; j < ns && !rc; j++) {
        char *text;
        if ((rc = gp_corpus_read_raw(c, sel[j], &text, err))) break;
        size_t len;
        char *line = gp_json_one_line(text, (size_t)c->sel[sel[j]].length, &len);
        line[len] = '\n';
        fwrite(line, 1, len + 1, f); /* a failure shows in gp_file_commit */
        gp_sha256_update(h, line, len + 1);
        free(line);
        free(text);
    }
    gp_sha256_final(h, sha);
    if (f && !rc) {
        rc = gp_file_commit(f, path, err);
    } else if (f) { /* a bad record: the partial file goes */
        fclose(f);
        char *tmp = gp_tmp_path(path);
        remove(tmp);
        free(tmp);
    }
    return rc;
}

static void dataset_i64(hid_t f, const char *name, const int64_t *v, hsize_t n, const char *description) {
    hid_t ds = gp_h5_dataset(f, name, H5T_STD_I64LE, 1, &n, description, "1");
    gp_h5_write_rows(ds, H5T_NATIVE_INT64, 0, n, 1, v);
    H5Dclose(ds);
}

typedef struct {
    const gp_kmeans_result *km; /* NULL: random, or kept whole */
    const int64_t *sel;
    int64_t n_sel;
    const char *hash, *sample_sha, *jsonl;
    int c;
} h5_out;

/* Rank 0: the self-describing record of one sample; `complete` last. */
static gp_status write_h5(const sample_ctx *x, const gp_corpus *corp, const h5_out *o, const char *path, gp_err *err) {
    const gp_sample_opts *so = x->o;
    const gp_kmeans_result *km = o->km;
    hid_t f = gp_h5_create_tmp(path);
    gp_provenance_write(f, GP_SAMPLE_FORMAT, GP_SAMPLE_FORMAT_VERSION);
    gp_h5_attr_str(f, GP_SAMPLE_ATTR_CORPUS, k_corpus[o->c]);
    gp_h5_attr_str(f, GP_SAMPLE_ATTR_CORPUS_PATH, corp->path);
    gp_h5_attr_str(f, GP_SAMPLE_ATTR_CORPUS_SHA256, corp->sha256);
    gp_h5_attr_int(f, GP_SAMPLE_ATTR_N_RECORDS, corp->n_records);
    gp_h5_attr_int(f, GP_SAMPLE_ATTR_N_SKIPPED, corp->n_skipped);
    gp_h5_attr_int(f, GP_SAMPLE_ATTR_N_CANDIDATES, corp->n_selected);
    gp_h5_attr_str(f, GP_SAMPLE_ATTR_METHOD, gp_sample_method_name(so->method));
    gp_h5_attr_int(f, GP_SAMPLE_ATTR_K, so->k);
    gp_h5_attr_int(f, GP_SAMPLE_ATTR_SEED, so->seed);
    if (x->kmeans) {
        gp_h5_attr_int(f, GP_SAMPLE_ATTR_ITERATIONS, so->iterations);
        gp_h5_attr_str(f, GP_SAMPLE_ATTR_MODEL_PATH, x->model_dir);
        gp_h5_attr_str(f, GP_SAMPLE_ATTR_MODEL_SHA256, x->model_sha);
        gp_h5_attr_int(f, GP_SAMPLE_ATTR_MAX_LENGTH, so->max_length);
        gp_h5_attr_int(f, GP_SAMPLE_ATTR_BATCH, GP_SAMPLE_ENCODE_BATCH);
        gp_h5_attr_str(f, GP_SAMPLE_ATTR_QUERIES,
                       "embedded as written in the corpus (no instruction added), then L2-normalised");
    }
    if (km) {
        gp_h5_attr_int(f, GP_SAMPLE_ATTR_K_EFFECTIVE, km->k);
        gp_h5_attr_int(f, GP_SAMPLE_ATTR_ITERATIONS_RUN, km->iterations_run);
        gp_h5_attr_double(f, GP_SAMPLE_ATTR_INERTIA_FINAL, km->inertia[km->iterations_run]);
        gp_h5_attr_double(f, GP_SAMPLE_ATTR_SECONDS_SEEDING, km->seconds_seed);
        gp_h5_attr_double(f, GP_SAMPLE_ATTR_SECONDS_ITERATIONS, km->seconds_iter);
    }
    gp_h5_attr_str(f, GP_SAMPLE_ATTR_SETTINGS_HASH, o->hash);
    gp_h5_attr_str(f, GP_SAMPLE_ATTR_SAMPLE_PATH, o->jsonl);
    gp_h5_attr_str(f, GP_SAMPLE_ATTR_SAMPLE_SHA256, o->sample_sha);
    gp_h5_attr_int(f, GP_SAMPLE_ATTR_N_SELECTED, o->n_sel);
    gp_h5_attr_str(f, GP_H5_ATTR_DESCRIPTION,
                   km ? "representative calibration sample: k-means over the L2-normalised query embeddings of every "
                        "candidate triplet; the triplet nearest each centroid is kept (docs/DESIGN.md §4.6)"
                      : corp->n_selected <= so->k ? "calibration sample: the corpus has no more than k triplets, "
                                                            "all are kept"
                                                          : "calibration sample: k triplets drawn uniformly with the seed");
    if (km) {
        hsize_t dims[2] = {(hsize_t)km->k, (hsize_t)km->d};
        hid_t ds = gp_h5_dataset_f32(f, GP_SAMPLE_CENTROIDS, 2, dims,
                                     "final k-means centroids (one row per cluster) in the space of the L2-normalised "
                                     "query embeddings; row j is cluster j of /assignment",
                                     "1 (embedding space)");
        gp_h5_write_rows_f32(ds, 0, dims[0], dims[1], km->centroids);
        H5Dclose(ds);
        hsize_t n = (hsize_t)km->n;
        ds = gp_h5_dataset(f, GP_SAMPLE_ASSIGNMENT, H5T_STD_I32LE, 1, &n,
                           "nearest final centroid of every candidate triplet (row i: the i-th valid record of the "
                           "corpus, in file order)",
                           "1");
        gp_h5_write_rows(ds, H5T_NATIVE_INT32, 0, n, 1, km->assign);
        H5Dclose(ds);
        dataset_i64(f, GP_SAMPLE_NEAREST, km->nearest, (hsize_t)km->k,
                    "candidate index (row of /assignment) of the triplet nearest each final centroid; ties go to the "
                    "lower index");
        hsize_t it = (hsize_t)km->iterations_run + 1;
        ds = gp_h5_dataset(f, GP_SAMPLE_INERTIA, H5T_IEEE_F64LE, 1, &it,
                           "sum over the candidates of the squared Euclidean distance to the nearest centroid after i "
                           "Lloyd updates (row 0: the k-means++ seeds)",
                           "1 (squared distance between unit vectors)");
        gp_h5_write_rows(ds, H5T_NATIVE_DOUBLE, 0, it, 1, km->inertia);
        H5Dclose(ds);
        dataset_i64(f, GP_SAMPLE_MOVED, km->moved, it,
                    "candidates whose nearest centroid changed after i Lloyd updates (row 0: all, the first assignment)");
        dataset_i64(f, GP_SAMPLE_RESEEDED, km->reseeded, it,
                    "empty clusters re-seeded with the candidate farthest from its centroid by update i (row 0: none)");
    }
    dataset_i64(f, GP_SAMPLE_SELECTED, o->sel, (hsize_t)o->n_sel,
                "candidate index of each triplet in sample_path, in that order (ascending: corpus order)");
    int64_t *lines = gp_malloc((size_t)o->n_sel * sizeof(int64_t));
    for (int64_t j = 0; j < o->n_sel; j++) lines[j] = corp->sel[o->sel[j]].line;
    dataset_i64(f, GP_SAMPLE_SELECTED_LINE, lines, (hsize_t)o->n_sel,
                "1-based line of corpus_path where each selected record starts");
    free(lines);
    gp_h5_attr_int(f, GP_H5_ATTR_COMPLETE, 1);
    return gp_h5_close_commit(f, path, err);
}

/* One corpus: index, skip when current, select, write. Collective. */
static gp_status sample_corpus(sample_ctx *x, int c, gp_sample_report *rep, gp_err *err) {
    const gp_sample_opts *o = x->o;
    const char *path = c == 0 ? o->corpus[0] : o->corpus[1];
    const int rank = gp_rank();
    char label[64];
    snprintf(label, sizeof label, "sample %s", k_corpus[c]);
    gp_corpus corp;
    memset(&corp, 0, sizeof corp);
    corp.fd = -1;
    gp_status rc = GP_OK;
    if (!*path) rc = gp_errf(err, GP_EINPUT, "%s: [data] %s must name a triplet file", o->job_path, k_corpus[c]);
    else if (rank == 0)
        rc = gp_corpus_index(path, INT64_MAX, (uint64_t)o->data_seed, o->skip_bad, &corp, err);
    if ((rc = gp_agree(rc, err))) {
        gp_corpus_free(&corp);
        return rc;
    }
    gp_corpus_bcast(&corp, 0);
    const int64_t n = corp.n_selected;
    rep->candidates[c] = n;
    settings_hash(x, &corp, rep->settings_hash[c]);
    char name[64];
    snprintf(name, sizeof name, GP_SAMPLE_JSONL_FMT, k_corpus[c]);
    rep->jsonl[c] = gp_path_join(o->out_dir, name);
    snprintf(name, sizeof name, GP_SAMPLE_FILE_FMT, k_corpus[c]);
    rep->h5[c] = gp_path_join(o->out_dir, name);
    int64_t nsel = 0;
    int current = rank == 0 && sample_current(rep->h5[c], rep->jsonl[c], rep->settings_hash[c], &nsel);
    if (gp_allreduce_max_int(current)) {
        gp_bcast_bytes(&nsel, sizeof nsel, 0);
        rep->selected[c] = nsel;
        rep->up_to_date[c] = true;
        gp_log0("%s: %s is complete for these settings (%.16s...): %lld of %lld triplets; nothing to do", label,
                rep->jsonl[c], rep->settings_hash[c], (long long)nsel, (long long)n);
        gp_corpus_free(&corp);
        return GP_OK;
    }
    gp_log0("%s: %lld candidate triplets in %s (%lld records, %lld skipped); %s, k %lld", label, (long long)n, path,
            (long long)corp.n_records, (long long)corp.n_skipped, gp_sample_method_name(o->method), (long long)o->k);

    gp_kmeans_result km;
    memset(&km, 0, sizeof km);
    bool have_km = false;
    int64_t *sel = NULL;
    if (n <= o->k) {
        gp_log0("%s: no more than k = %lld triplets: all are kept", label, (long long)o->k);
        sel = gp_malloc((size_t)n * sizeof(int64_t));
        nsel = gp_sample_random(n, n, 0, sel);
    } else if (!x->kmeans) {
        sel = gp_malloc((size_t)o->k * sizeof(int64_t));
        nsel = gp_sample_random(n, o->k, (uint64_t)o->seed, sel);
    } else {
        gp_model *m = NULL;
        float *emb = NULL;
        int64_t lo = 0, nl = 0;
        double t0 = gp_now();
        if ((rc = sampling_model(x, &m, err))) {
            gp_corpus_free(&corp);
            return rc;
        }
        if ((rc = embed_queries(m, &corp, o->max_length, label, &emb, &lo, &nl, err))) {
            gp_corpus_free(&corp);
            return rc;
        }
        gp_log0("%s: %lld queries embedded by %s (dimension %d, L2-normalised) in %.1f s", label, (long long)n,
                x->model_dir, gp_model_dim(m), gp_now() - t0);
        gp_kmeans_opts ko = {.k = o->k, .iterations = o->iterations, .seed = (uint64_t)o->seed, .label = label};
        rc = gp_kmeans_run(emb, nl, gp_model_dim(m), &ko, MPI_COMM_WORLD, &km, err);
        free(emb);
        if ((rc = gp_agree(rc, err))) {
            gp_corpus_free(&corp);
            return rc;
        }
        have_km = true;
        sel = km.selected;
        nsel = km.n_selected;
        gp_log0("%s: %lld centroids after %d iterations (inertia %.6g); their nearest triplets, %lld distinct, are kept",
                label, (long long)km.k, km.iterations_run, km.inertia[km.iterations_run], (long long)nsel);
    }
    if (rank == 0) {
        char sha[65];
        rc = write_jsonl(&corp, sel, nsel, rep->jsonl[c], sha, err);
        if (!rc) {
            h5_out out = {have_km ? &km : NULL, sel, nsel, rep->settings_hash[c], sha, rep->jsonl[c], c};
            rc = write_h5(x, &corp, &out, rep->h5[c], err);
        }
    }
    rc = gp_agree(rc, err);
    if (!rc) {
        rep->selected[c] = nsel;
        gp_log0("%s: wrote %s (%lld triplets) and %s", label, rep->jsonl[c], (long long)nsel, rep->h5[c]);
    }
    if (have_km) gp_kmeans_result_free(&km);
    else free(sel);
    gp_corpus_free(&corp);
    return rc;
}

void gp_sample_opts_from_job(gp_sample_opts *o, const gp_job *job) {
    *o = (gp_sample_opts){.corpus = {job->data.domain, job->data.general},
                          .data_seed = job->data.seed,
                          .skip_bad = job->data.on_bad_record == GP_BAD_SKIP,
                          .method = job->sample.method,
                          .k = job->sample.k,
                          .iterations = job->sample.iterations,
                          .seed = job->sample.seed,
                          .model = job->sample.model,
                          .job_model_path = job->model.path,
                          .max_length = job->model.max_length,
                          .out_dir = job->out_dir,
                          .job_path = job->path};
}

gp_status gp_sample_run(const gp_sample_opts *o, gp_model *model, gp_sample_report *rep, gp_err *err) {
    memset(rep, 0, sizeof *rep);
    double t0 = gp_now();
    sample_ctx x = {.o = o, .kmeans = o->method == GP_SAMPLE_KMEANS, .job_model = model};
    x.model_dir = *o->model ? o->model : o->job_model_path;
    gp_status rc = GP_OK;
    if (o->method == GP_SAMPLE_NONE)
        rc = gp_errf(err, GP_EINPUT, "%s: [sample] method is none: nothing to sample (set kmeans or random, e.g. --set "
                                     "sample.method=kmeans)", o->job_path);
    else if (x.kmeans && !*x.model_dir)
        rc = gp_errf(err, GP_EINPUT, "%s: [sample] model and [model] path are both empty: no model to embed the queries",
                     o->job_path);
    else if (x.kmeans && !gp_dir_exists(x.model_dir))
        rc = gp_errf(err, GP_EINPUT, "%s: [sample] model: %s is not a model folder (no such directory)", o->job_path,
                     x.model_dir);
    if (!rc && gp_rank() == 0) rc = gp_mkdir_p(o->out_dir, err);
    if (!rc && x.kmeans && gp_rank() == 0) {
        rc = gp_model_sha256(x.model_dir, x.model_sha, err);
        if (rc) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            gp_errf(err, rc, "%s: [sample] model: %s", o->job_path, msg);
        }
    }
    if ((rc = gp_agree(rc, err))) return rc;
    gp_bcast_bytes(x.model_sha, sizeof x.model_sha, 0);
    for (int c = 0; c < 2 && !rc; c++) rc = sample_corpus(&x, c, rep, err);
    gp_model_free(x.own_model);
    rep->seconds = gp_now() - t0;
    return rc;
}

void gp_sample_report_free(gp_sample_report *rep) {
    for (int c = 0; c < 2; c++) {
        free(rep->jsonl[c]);
        free(rep->h5[c]);
    }
    memset(rep, 0, sizeof *rep);
}
