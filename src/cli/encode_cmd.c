/* encode_cmd.c — `gaprune encode`: texts to an HDF5 file of embeddings (the stage is encode.h); this
 * file parses the options and prints the summary line.
 */
#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/encode.h"
#include "gaprune/log.h"

static const char *k_usage = "--model DIR --input FILE --output FILE.h5 [options]";

int gp_cmd_encode(int argc, char **argv) {
    const char *model_dir = NULL, *input = NULL, *output = NULL, *instruction = NULL, *task = NULL, *compute = "f32",
               *weights = "checkpoint";
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
        {"weights", GP_OPT_STR, &weights, "checkpoint|f32",
         "the weights in memory, as the job key model.weights (default checkpoint: 2 bytes a weight for a BF16 or F16 "
         "folder)"},
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
    gp_encode_opts o = {.model_dir = model_dir, .input = input, .output = output, .batch = batch, .max_length = max_length,
                        .query = query, .instruction = instruction, .task = task, .compute = compute,
                        .weights = weights};
    if (!rc) rc = gp_encode_check(&o, &err);
    if ((rc = gp_agree(rc, &err))) return rc;
    gp_encode_report rep;
    rc = gp_encode_run(&o, &rep, &err);
    if (!rc)
        gp_log0("{\"command\":\"encode\",\"texts\":%lld,\"dim\":%d,\"ranks\":%d,\"seconds\":%.3f,\"encode_seconds\":%.3f,"
                "\"texts_per_s\":%.2f,\"output\":\"%s\"}",
                (long long)rep.texts, rep.dim, gp_nranks(), rep.seconds, rep.encode_seconds,
                rep.encode_seconds > 0 ? (double)rep.texts / rep.encode_seconds : 0.0, output);
    return rc;
}
