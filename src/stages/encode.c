/* encode.c — the encoding stage of `gaprune encode` (see encode.h): texts to an HDF5 file of
 * embeddings, in shards across ranks.
 *
 * Rank r embeds the contiguous block [n·r/P, n·(r+1)/P) of the input. Rank 0 writes the file:
 * its own block, then every other rank's block received in order (in bounded messages), so no
 * rank ever holds more than its share of the embeddings.
 */
#include "gaprune/encode.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/h5.h"
#include "gaprune/job.h"
#include "gaprune/log.h"
#include "gaprune/model.h"
#include "gaprune/provenance.h"
#include "gaprune/textfile.h"

#define SEND_FLOATS (1 << 22) /* 16 MiB per message */

static int64_t block_start(int64_t n, int r, int P) { return n * r / P; }

/* Rank 0: receives rows [lo, hi) from `src` and writes them. */
static void recv_rows(hid_t ds, int src, int64_t lo, int64_t hi, int dim, float *buf) {
    int64_t rows_per = SEND_FLOATS / dim > 0 ? SEND_FLOATS / dim : 1;
    for (int64_t r = lo; r < hi; r += rows_per) {
        int64_t k = hi - r < rows_per ? hi - r : rows_per;
        GP_MPI(MPI_Recv(buf, (int)(k * dim), MPI_FLOAT, src, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        gp_h5_write_rows_f32(ds, (hsize_t)r, (hsize_t)k, (hsize_t)dim, buf);
    }
}

static void send_rows(const float *emb, int64_t n, int dim) {
    int64_t rows_per = SEND_FLOATS / dim > 0 ? SEND_FLOATS / dim : 1;
    for (int64_t r = 0; r < n; r += rows_per) {
        int64_t k = n - r < rows_per ? n - r : rows_per;
        GP_MPI(MPI_Send(emb + r * dim, (int)(k * dim), MPI_FLOAT, 0, 7, MPI_COMM_WORLD));
    }
}

static int compute_mode(const char *name) {
    int mode = 0;
    while (gp_compute_names[mode] && strcmp(gp_compute_names[mode], name)) mode++;
    return mode;
}

static int weights_mode(const char *name) {
    int mode = 0;
    while (name && gp_weights_names[mode] && strcmp(gp_weights_names[mode], name)) mode++;
    return mode;
}

gp_status gp_encode_check(const gp_encode_opts *o, gp_err *err) {
    if (!gp_compute_names[compute_mode(o->compute)])
        return gp_errf(err, GP_EINPUT, "gaprune encode: --compute %s: expected f32 or bf16", o->compute);
    if (!gp_weights_names[weights_mode(o->weights)])
        return gp_errf(err, GP_EINPUT, "gaprune encode: --weights %s: expected checkpoint or f32", o->weights);
    return GP_OK;
}

gp_status gp_encode_run(const gp_encode_opts *o, gp_encode_report *rep, gp_err *err) {
    memset(rep, 0, sizeof *rep);
    const int mode = compute_mode(o->compute);
    gp_set_compute((gp_compute)mode);
    const int rank = gp_rank(), P = gp_nranks();
    double t0 = gp_now();
    gp_model *m = NULL;
    gp_status rc = gp_model_load(o->model_dir, &m, err);
    if ((rc = gp_agree(rc, err))) {
        gp_model_free(m);
        return rc;
    }
    if (weights_mode(o->weights) == GP_WEIGHTS_F32) gp_model_hold_f32(m, true);
    const char *prefix = NULL;
    char *task_prefix = o->task ? gp_query_instruct(o->task) : NULL;
    if (o->query) {
        prefix = task_prefix ? task_prefix : o->instruction ? o->instruction : m->query_prompt;
        if (!prefix) gp_warn("--query: %s has no query prompt (config_sentence_transformers.json); texts are not prefixed", o->model_dir);
    }
    int64_t n = 0;
    rc = gp_texts_count(o->input, &n, err);
    if ((rc = gp_agree(rc, err))) {
        free(task_prefix);
        gp_model_free(m);
        return rc;
    }
    int64_t lo = block_start(n, rank, P), hi = block_start(n, rank + 1, P);
    gp_texts texts = {0}, ids = {0};
    rc = gp_texts_read(o->input, lo, hi - lo, true, false, &texts, err);
    if (!rc && rank == 0) rc = gp_texts_read(o->input, 0, n, false, true, &ids, err);
    if ((rc = gp_agree(rc, err))) {
        gp_texts_free(&texts);
        gp_texts_free(&ids);
        free(task_prefix);
        gp_model_free(m);
        return rc;
    }
    const int dim = gp_model_dim(m);
    /* the model takes no more than its own max_length: a longer --max-length is that, said once */
    const int eff_len = o->max_length > 0 && o->max_length < m->max_length ? o->max_length : m->max_length;
    if (o->max_length > m->max_length)
        gp_warn("--max-length %d is more than the %d tokens %s takes; using %d", o->max_length, m->max_length, o->model_dir,
                eff_len);
    gp_log0("encode: %lld texts from %s with %s (%s pooling%s, dim %d, max %d tokens) on %d rank%s", (long long)n,
            o->input, o->model_dir, m->pool.mode == GP_POOL_MEAN ? "mean" : m->pool.mode == GP_POOL_CLS ? "cls" : "last-token",
            m->pool.normalize ? ", normalized" : "", dim, eff_len, P, P > 1 ? "s" : "");

    float *emb = gp_malloc((size_t)(hi - lo) * dim * sizeof(float));
    gp_progress prog;
    gp_progress_init(&prog, "encode", n, "texts");
    for (int64_t i = 0; i < hi - lo; i += o->batch) {
        int k = (int)(hi - lo - i < o->batch ? hi - lo - i : o->batch);
        gp_model_encode(m, (const char *const *)texts.text + i, k, o->batch, eff_len, prefix, emb + i * dim);
        int64_t est = (i + k) * P < n ? (i + k) * P : n; /* shards are equal: rank 0 speaks for all */
        gp_progress_update(&prog, est);
    }
    gp_texts_free(&texts);
    /* the rate of the progress lines and of the summary: every text over the slowest rank's
     * encoding, not over the loading and the writing around it */
    const double enc_s = gp_allreduce_max_f64(gp_now() - prog.t_start);
    gp_progress_done(&prog);

    if (rank == 0) {
        hid_t f = gp_h5_create_tmp(o->output);
        gp_provenance_write(f, "gaprune-embeddings", 1);
        gp_h5_attr_str(f, "model_path", o->model_dir);
        gp_h5_attr_str(f, "input_path", o->input);
        gp_h5_attr_str(f, "pooling", m->pool.mode == GP_POOL_MEAN ? "mean" : m->pool.mode == GP_POOL_CLS ? "cls" : "lasttoken");
        gp_h5_attr_int(f, "normalized", m->pool.normalize);
        gp_h5_attr_int(f, "max_length", eff_len);
        gp_h5_attr_str(f, "prefix", prefix ? prefix : "");
        gp_h5_attr_str(f, "compute", o->compute);
        hsize_t dims[2] = {(hsize_t)n, (hsize_t)dim};
        hid_t ds = gp_h5_dataset_f32(f, "embeddings", 2, dims,
                                     m->pool.normalize ? "sentence embeddings, one row per input text, L2-normalized"
                                                       : "sentence embeddings, one row per input text",
                                     "1");
        gp_h5_write_rows_f32(ds, 0, (hsize_t)(hi - lo), (hsize_t)dim, emb);
        float *buf = gp_malloc(((size_t)SEND_FLOATS + (size_t)dim) * sizeof(float));
        for (int r = 1; r < P; r++) recv_rows(ds, r, block_start(n, r, P), block_start(n, r + 1, P), dim, buf);
        free(buf);
        H5Dclose(ds);
        gp_h5_write_strings(f, "ids", (const char *const *)ids.id, (hsize_t)n,
                            "id of each row: the record's _id, or its 1-based line number in a .txt file");
        gp_h5_attr_int(f, "complete", 1);
        rc = gp_h5_close_commit(f, o->output, err);
    } else {
        send_rows(emb, hi - lo, dim);
    }
    free(emb);
    gp_texts_free(&ids);
    rc = gp_agree(rc, err);
    if (!rc) {
        rep->texts = n, rep->dim = dim;
        rep->seconds = gp_now() - t0, rep->encode_seconds = enc_s;
    }
    free(task_prefix);
    gp_model_free(m);
    return rc;
}
