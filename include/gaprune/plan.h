/*
 * plan.h — memory per rank every stage of a job will need, computed from config.json's shapes,
 * the job's settings and the sizes of its data files, without loading any weights (`gaprune
 * plan`); and the refusal that `gaprune stats`, `run`, `score`, `retrain` and `eval` make
 * before their first long step when a stage will not fit (gp_plan_guard, the same numbers).
 *
 * Every component is a formula over the buffers the code allocates (plan.c names each one).
 * The stages, in the order `gaprune run` meets them in one process:
 *   load      the model being read: 4·P floats + the largest tensor's mapped bytes (safetensors.c
 *             releases each tensor's pages once converted)
 *   sample    (sample.method = kmeans) the sampling model, the corpus index, this rank's query
 *             embeddings [~n/R, D], k-means (kmeans.c), 32-text inference batches
 *   stats     weights 4·P; gradients 4·W·n/L: one transformer block's selected gradients per
 *             window (W = 1 replicated, 2 sharded; L blocks, n selected elements); accumulators
 *             16·n replicated or 16·(largest owner block) sharded + the squares being sent
 *             4·W·n/L and MPI's temporaries of the pieces in flight 4·W·GP_DIST_INFLIGHT·piece; Wanda's sums 8·Σ inputs; one unit of 3·fisher_batch texts kept for
 *             backward (bert.c/qwen3.c)
 *   score     the masks of prune.methods and retrain.methods: weights 4·P (reread from the folder
 *             between masks, no dense copy); every rank's slice (its owner block): scores, bits
 *             and piece buffers (score.c, gp_select_smallest), and the whole mask's bits n/8;
 *             rank 0 one tensor's mask bytes (and scores with prune.save_scores) while it writes
 *             the file. With one-shot reconstruction (prune.reconstruct lists obs, or sparsegpt is
 *             among prune.methods / retrain.methods; reconstruct.h) the "reconstruction" parts
 *             too: this rank's calibration hidden states 4·C·T·(2·3·S)/R (S =
 *             prune.reconstruct_samples triplets per corpus, T = min(model.max_length, the
 *             model's own), every text full); one block's inference buffers of eval.batch texts
 *             of T tokens (gp_model_block; the eval stage's forward-only model) where they exceed
 *             the model's buffers carried from the earlier stages (one allocation, kept at the
 *             larger, and carried on into the later stages), the padded batch and the block's
 *             output 4·B·T·C; H, its float32 batch product and U,
 *             16·n² for n the widest input of a selected weight; this rank's rows of the largest
 *             selected weight three times, 3·4·ceil(rows/R)·n (dense copy, errors, keep bits);
 *             with prune.reconstruct_order = parallel one block's dense selected weights twice
 *   retrain   weights, gradients and both AdamW moments 16·P; the activations of this rank's
 *             ceil(batch/R) triplets; the gathered embeddings and InfoNCE of the whole batch;
 *             the mask bits
 *   eval      weights; inference of eval.batch texts truncated at model.max_length (capped by
 *             the model's own), bounded by the longest line of the eval files; this rank's
 *             corpus texts and embeddings, one block of queries' embeddings and top-100 lists
 * The model's activation buffers only grow and are kept (bert.c, qwen3.c, model.c), so in one
 * process a stage also holds the largest forward and backward buffers of the stages before it:
 * the plan carries them (sample -> stats -> eval -> score's reconstruction -> retrain, as
 * `gaprune run`).
 * Every sequence is taken as full (the worst case); the tokenizer is 2 × its files; a measured
 * constant stands for MPI, HDF5, OpenBLAS and libc.
 *
 * Usage:
 *     gp_plan p; gp_err err = {0};
 *     gp_plan_job(&job, ranks, threads, share, &p, &err);   // share: for stats.accumulators = auto
 *     p.stage[GP_PLAN_STATS].total, p.stage[k].part[i].name, .bytes, .formula; p.peak
 *     gp_plan_limit(NULL, true, ranks, &limit, &from, &err); // Slurm's or the physical share
 *     gp_plan_refusal(&p, limit, from, "stats", stages, &err);  // GP_EINPUT when one will not fit
 *     gp_plan_guard(&job, "stats", GP_PLAN_BIT(GP_PLAN_STATS), &err);  // all of it, collective
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gaprune/check.h"
#include "gaprune/job.h"
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
    bool recompute;         /* model.recompute: one block's activations kept, and the blocks' outputs */
    bool bf16;              /* model.compute = bf16: the BF16 copies of the largest matmul's operands */
    bool w16;               /* weights held in 16 bits (model.weights = checkpoint, a BF16 or F16 folder) */
} gp_plan_model;

enum { GP_PLAN_MAX_PARTS = 16 };

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
    bool lean;       /* model.activations in effect for the unit (gp_model_lean_for on share) */
    int nparts;
    gp_plan_part part[GP_PLAN_MAX_PARTS];
    double total; /* bytes per rank at the peak */
} gp_plan_stats_out;

typedef enum { GP_PLAN_LOAD, GP_PLAN_SAMPLE, GP_PLAN_STATS, GP_PLAN_SCORE, GP_PLAN_RETRAIN, GP_PLAN_EVAL, GP_PLAN_NSTAGES } gp_plan_stage;
#define GP_PLAN_BIT(s) (1u << (s))

typedef struct {
    const char *name;   /* "load", "sample", "stats", ... */
    bool runs;          /* the job runs this stage (gaprune run) */
    char what[256];     /* the shapes it was planned for, one line */
    char advice[384];   /* what to change when it does not fit: each job key that still lowers the need */
    int nparts;
    gp_plan_part part[GP_PLAN_MAX_PARTS];
    double total; /* bytes per rank at the stage's peak: the sum of its parts */
} gp_plan_stage_out;

typedef struct {
    int ranks, threads;
    gp_plan_stats_out stats; /* the statistics' details (accumulator mode, block, unit) */
    gp_plan_stage_out stage[GP_PLAN_NSTAGES];
    double peak;             /* max over the stages that run */
    gp_plan_stage peak_stage;
} gp_plan;

/* The statistics stage's memory per rank on `ranks` ranks of `threads` threads. share: this
 * rank's share of its node's memory, for stats.accumulators = auto (<= 0: unknown, then
 * replicated as on one rank). */
void gp_plan_stats(const gp_plan_model *pm, const gp_stats_opts *o, int ranks, int threads, double share,
                   gp_plan_stats_out *out);

/* The activations of one train-mode forward + backward of B texts of T tokens (bytes), all of
 * them kept or lean, the part of gp_plan_stats that depends on the unit's shape; exposed for tests. */
double gp_plan_unit_activations(const gp_model_config *cfg, int B, int T, int threads, bool recompute, bool lean);

/* Every stage of the job on `ranks` ranks: reads config.json (and sample.model's), the
 * tokenizer, safetensors and data files' sizes, and the eval files' line counts; no weights. */
gp_status gp_plan_job(const gp_job *job, int ranks, int threads, double share, gp_plan *out, gp_err *err);

/* The limit per rank: `mem` (a --mem-per-rank size) when given, else Slurm's
 * SLURM_MEM_PER_NODE over the ranks per node (SLURM_NTASKS_PER_NODE, else this run's ranks on
 * this node when `ranks` is this run's size, else `ranks`), else the node's physical memory over
 * its ranks when `physical` (what gaprune stats and run use), else 0 (none). *from says which.
 * GP_EINPUT when `mem` is not a size. Calls gp_ranks_on_node (collective) when ranks is this
 * run's size. */
gp_status gp_plan_limit(const char *mem, bool physical, int ranks, double *limit, const char **from, gp_err *err);

/* GP_EINPUT with the message "<cmd>: stage S needs X MiB per rank, over the limit of Y MiB
 * (from); <advice>" for the stage of `stages` (GP_PLAN_BIT set) that runs, exceeds `limit` (> 0)
 * and needs the most; GP_OK otherwise. */
gp_status gp_plan_refusal(const gp_plan *p, double limit, const char *from, const char *cmd, unsigned stages, gp_err *err);

/* What a stage command does before its first long step: plans the job for this run's ranks and
 * threads (OMP_NUM_THREADS) and refuses as gp_plan_refusal against gp_plan_limit(NULL, true).
 * A plan that cannot be made (a missing file) is not a refusal: the stage reports it itself.
 * Collective; every rank returns the same status and message, not yet printed (gp_agree does). */
gp_status gp_plan_guard(const gp_job *job, const char *cmd, unsigned stages, gp_err *err);

/* "24G", "512M", "1.5T", "4096K" or bytes (binary units) -> bytes; false when unreadable. */
bool gp_plan_parse_size(const char *s, double *bytes);
