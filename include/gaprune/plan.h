/*
 * plan.h — memory per rank a job's stages will need, computed from config.json's shapes and the
 * job's settings without loading any weights (`gaprune plan`). One function per stage; for now
 * the statistics (docs/DESIGN.md §4.1). The sample, score, retrain and eval stages are not
 * covered yet.
 *
 * Every component is a formula over the buffers the code allocates (the numbers say why):
 *   weights        4·P                       m->params, P = every parameter (model.c)
 *   gradients      4·W·n/L                   m->grads: the selected gradients of one block per
 *                                            window (gp_model_need_grads), L blocks, n selected
 *                                            elements, W = 1 window replicated, 2 sharded
 *   accumulators   16·n replicated           F and G of both corpora, float32 (stats.c)
 *                  16·max block sharded      the largest owner block (gp_stats_blocks)
 *                  + 4·W·n/L                 the squares of the blocks' gradients being sent
 *   act. sums      8·Σ inputs of the linear layers (Wanda's Σx², doubles)
 *   activations    of the largest unit: B = 3·fisher_batch texts of T = min(model.max_length,
 *                  the model's max_length) tokens, N = B·T tokens, kept for backward
 *                  (bert.c / qwen3.c: per layer N·(...) + heads·B·T² attention
 *                  probabilities), the backward scratch, model.c's packed batch, pooled
 *                  rows and dhidden, the padded batch and the stage's emb/demb
 *   tokenizer      2 × the tokenizer files' size (an approximation: the parsed vocabulary
 *                  and its hash tables)
 *   runtime        a fixed allowance for MPI, HDF5, OpenBLAS and libc (GP_PLAN_RUNTIME_BYTES,
 *                  + GP_PLAN_RUNTIME_MPI_BYTES on more than one rank; measured, not derived)
 *
 * Every buffer above only grows (the model keeps its activation buffers' capacity), so the
 * peak is their sum during the backward of the largest unit.
 *
 * Usage:
 *     gp_model_config cfg; gp_param_table t = {0};
 *     gp_model_config_load(dir, &cfg, &err); gp_model_build_table(&cfg, &t);
 *     gp_stats_opts o; gp_stats_opts_from_job(&o, &job);
 *     gp_plan_model pm = {&cfg, &t, model_max_length, tokenizer_bytes};
 *     gp_plan_stats_out p; gp_plan_stats(&pm, &o, ranks, threads, share, &p);
 *     p.total ... p.part[k].bytes, p.part[k].name
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gaprune/model.h"
#include "gaprune/stats.h"

/* MPI + HDF5 + OpenBLAS + libc of a release build, measured (RSS of a stats pass minus every
 * derived component): ~33 MiB for bert-tiny and qwen3-f32 as a singleton; under mpirun with
 * more than one rank Open MPI's shared-memory transport adds ~16 MiB (tests/bench/plan_bench.sh
 * on MiniLM shapes). The sanitizer build needs ~15 MiB more. */
#define GP_PLAN_RUNTIME_BYTES (36.0 * 1048576.0)
#define GP_PLAN_RUNTIME_MPI_BYTES (16.0 * 1048576.0)

typedef struct {
    const gp_model_config *cfg;
    const gp_param_table *table;
    int max_length;        /* the model's own limit: min(max_positions, sentence_bert_config) */
    double tokenizer_bytes; /* size of the tokenizer files in the folder */
} gp_plan_model;

enum { GP_PLAN_MAX_PARTS = 10 };

typedef struct {
    const char *name;    /* "weights", "gradients", ... */
    double bytes;
    const char *formula; /* how, in one line */
} gp_plan_part;

typedef struct {
    int ranks, threads;
    int seq_len;     /* T: tokens per text */
    int texts;       /* B: texts per unit (3·fisher_batch) */
    int64_t params;  /* P */
    int64_t selected; /* n */
    int64_t block;   /* the largest owner block (= n replicated) */
    bool sharded;
    int nparts;
    gp_plan_part part[GP_PLAN_MAX_PARTS];
    double total; /* bytes per rank at the peak */
} gp_plan_stats_out;

/* The statistics stage's memory per rank on `ranks` ranks of `threads` threads. share: this
 * rank's share of its node's memory, for stats.accumulators = auto (<= 0: unknown, then
 * replicated as on one rank). */
void gp_plan_stats(const gp_plan_model *pm, const gp_stats_opts *o, int ranks, int threads, double share,
                   gp_plan_stats_out *out);

/* The activations of one train-mode forward + backward of B texts of T tokens (bytes), the
 * part of gp_plan_stats that depends on the unit's shape; exposed for tests. */
double gp_plan_unit_activations(const gp_model_config *cfg, int B, int T, int threads);

/* "24G", "512M", "1.5T", "4096K" or bytes (binary units) -> bytes; false when unreadable. */
bool gp_plan_parse_size(const char *s, double *bytes);
