/* encode.c — `gaprune encode`: texts to an HDF5 file of embeddings, in shards across ranks.
 *
 * Rank r embeds the contiguous block [n·r/P, n·(r+1)/P) of the input. Rank 0 writes the file:
 * its own block, then every other rank's block received in order (in bounded messages), so no
 * rank ever holds more than its share of the embeddings.
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/h5.h"
#include "gaprune/log.h"
#include "gaprune/model.h"
#include "gaprune/provenance.h"
#include "gaprune/textfile.h"

#define SEND_FLOATS (1 << 22) /* 16 MiB per message */

static const char *k_usage = "--model DIR --input FILE --output FILE.h5 [options]";

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

int gp_cmd_encode(int argc, char **argv) {
    const char *model_dir = NULL, *input = NULL, *output = NULL, *instruction = NULL, *task = NULL, *compute = "f32";
    int batch = 32, max_length = 0, query = 0;
    const gp_opt opts[] = {
        {"model", GP_OPT_STR, &model_dir, "DIR", "model folder (Hugging Face / sentence-transformers)"},
        {"input", GP_OPT_STR, &input, "FILE", "texts: .txt (one per line) or .jsonl ({\"_id\", \"title\", \"text\"})"},
        {"output", GP_OPT_STR, &output, "FILE", "HDF5 file to write (/embeddings, /ids)"},
        {"batch", GP_OPT_INT, &batch, "N", "texts per forward pass (default 32)"},
        {"max-length", GP_OPT_INT, &max_length, "N", "truncate to N tokens (default: the model's)"},
        {"query", GP_OPT_FLAG, &query, NULL, "prepend the model's query instruction"},
        {"instruction", GP_OPT_STR, &instruction, "TEXT", "query instruction to use with --query"},
        {"task", GP_OPT_STR, &task, "TEXT", "with --query: Qwen3-Embedding's \"Instruct: TEXT\\nQuery:\" prefix"},
        {"compute", GP_OPT_STR, &compute, "f32|bf16", "the matmuls' arithmetic, as the job key model.compute (default f32)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    gp_err err = {0};
    int npos = 0;
    gp_status rc = gp_opts_parse("encode", k_usage, opts, argc, argv, NULL, 0, &npos, &err);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (!rc && (!model_dir || !input || !output))
        rc = gp_errf(&err, GP_EINPUT, "gaprune encode: --model, --input and --output are required (see --help)");
    if (!rc && instruction && task) rc = gp_errf(&err, GP_EINPUT, "gaprune encode: --instruction and --task exclude each other");
    if (!rc && batch < 1) rc = gp_errf(&err, GP_EINPUT, "gaprune encode: --batch must be at least 1");
    int mode = 0;
    while (gp_compute_names[mode] && strcmp(gp_compute_names[mode], compute)) mode++;
    if (!rc && !gp_compute_names[mode])
        rc = gp_errf(&err, GP_EINPUT, "gaprune encode: --compute %s: expected f32 or bf16", compute);
    if ((rc = gp_agree(rc, &err))) return rc;

    gp_set_compute((gp_compute)mode);
    const int rank = gp_rank(), P = gp_nranks();
    double t0 = gp_now();
    gp_model *m = NULL;
    rc = gp_model_load(model_dir, &m, &err);
    if ((rc = gp_agree(rc, &err))) {
        gp_model_free(m);
        return rc;
    }
    const char *prefix = NULL;
    char *task_prefix = task ? gp_query_instruct(task) : NULL;
    if (query) {
        prefix = task_prefix ? task_prefix : instruction ? instruction : m->query_prompt;
        if (!prefix) gp_warn("--query: %s has no query prompt (config_sentence_transformers.json); texts are not prefixed", model_dir);
    }
    int64_t n = 0;
    rc = gp_texts_count(input, &n, &err);
    if ((rc = gp_agree(rc, &err))) {
        free(task_prefix);
        gp_model_free(m);
        return rc;
    }
    int64_t lo = block_start(n, rank, P), hi = block_start(n, rank + 1, P);
    gp_texts texts = {0}, ids = {0};
    rc = gp_texts_read(input, lo, hi - lo, true, false, &texts, &err);
    if (!rc && rank == 0) rc = gp_texts_read(input, 0, n, false, true, &ids, &err);
    if ((rc = gp_agree(rc, &err))) {
        gp_texts_free(&texts);
        gp_texts_free(&ids);
        free(task_prefix);
        gp_model_free(m);
        return rc;
    }
    const int dim = gp_model_dim(m);
    /* the model takes no more than its own max_length: a longer --max-length is that, said once */
    const int eff_len = max_length > 0 && max_length < m->max_length ? max_length : m->max_length;
    if (max_length > m->max_length)
        gp_warn("--max-length %d is more than the %d tokens %s takes; using %d", max_length, m->max_length, model_dir,
                eff_len);
    gp_log0("encode: %lld texts from %s with %s (%s pooling%s, dim %d, max %d tokens) on %d rank%s", (long long)n,
            input, model_dir, m->pool.mode == GP_POOL_MEAN ? "mean" : m->pool.mode == GP_POOL_CLS ? "cls" : "last-token",
            m->pool.normalize ? ", normalized" : "", dim, eff_len, P, P > 1 ? "s" : "");

    float *emb = gp_malloc((size_t)(hi - lo) * dim * sizeof(float));
    gp_progress prog;
    gp_progress_init(&prog, "encode", n, "texts");
    for (int64_t i = 0; i < hi - lo; i += batch) {
        int k = (int)(hi - lo - i < batch ? hi - lo - i : batch);
        gp_model_encode(m, (const char *const *)texts.text + i, k, batch, eff_len, prefix, emb + i * dim);
        int64_t est = (i + k) * P < n ? (i + k) * P : n; /* shards are equal: rank 0 speaks for all */
        gp_progress_update(&prog, est);
    }
    gp_texts_free(&texts);
    /* the rate of the progress lines and of the summary: every text over the slowest rank's
     * encoding, not over the loading and the writing around it */
    const double enc_s = gp_allreduce_max_f64(gp_now() - prog.t_start);
    gp_progress_done(&prog);

    if (rank == 0) {
        hid_t f = gp_h5_create_tmp(output);
        gp_provenance_write(f, "gaprune-embeddings", 1);
        gp_h5_attr_str(f, "model_path", model_dir);
        gp_h5_attr_str(f, "input_path", input);
        gp_h5_attr_str(f, "pooling", m->pool.mode == GP_POOL_MEAN ? "mean" : m->pool.mode == GP_POOL_CLS ? "cls" : "lasttoken");
        gp_h5_attr_int(f, "normalized", m->pool.normalize);
        gp_h5_attr_int(f, "max_length", eff_len);
        gp_h5_attr_str(f, "prefix", prefix ? prefix : "");
        gp_h5_attr_str(f, "compute", compute);
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
        rc = gp_h5_close_commit(f, output, &err);
    } else {
        send_rows(emb, hi - lo, dim);
    }
    free(emb);
    gp_texts_free(&ids);
    rc = gp_agree(rc, &err);
    if (!rc) {
        double s = gp_now() - t0;
        gp_log0("{\"command\":\"encode\",\"texts\":%lld,\"dim\":%d,\"ranks\":%d,\"seconds\":%.3f,\"encode_seconds\":%.3f,"
                "\"texts_per_s\":%.2f,\"output\":\"%s\"}",
                (long long)n, dim, P, s, enc_s, enc_s > 0 ? (double)n / enc_s : 0.0, output);
    }
    free(task_prefix);
    gp_model_free(m);
    return rc;
}
