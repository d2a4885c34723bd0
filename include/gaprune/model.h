/*
 * model.h — a sentence-embedding model loaded from a Hugging Face / sentence-transformers
 * folder: config, weights, tokenizer, pooling; forward to embeddings and backward to the
 * gradient of every parameter.
 *
 * Parameters live in one contiguous float buffer described by a table {name, shape, offset,
 * numel} (llm.c's habit); the gradient buffer, the statistics accumulators and the masks of
 * later stages use the same table, so each of them is one loop or one MPI call over a flat
 * array. Names in the table are canonical (BERT without a "bert." prefix); src_names keeps the
 * names as the file spells them, for writing the model back.
 *
 * A padded batch (gp_batch: ids and attention mask) is packed to its real tokens before the
 * encoder runs: position ids are the column indices of the padded batch and attention only
 * sees real keys, which is exactly what transformers computes for every real token; pooling
 * reads real tokens only, so the embeddings are the same while padding costs nothing.
 *
 * Usage:
 *     gp_model *m; gp_err err = {0};
 *     if (gp_model_load(dir, &m, &err)) { fprintf(stderr, "%s\n", err.msg); exit(2); }
 *     gp_batch b; gp_tokenizer_batch(m->tok, texts, n, m->max_length, &b);
 *     float *emb = malloc(n * gp_model_dim(m) * sizeof(float));
 *     gp_model_forward(m, &b, emb);           // [n, dim]
 *     gp_model_zero_grad(m);
 *     gp_model_backward(m, demb);              // adds into m->grads
 *     gp_batch_free(&b); gp_model_free(m);
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gaprune/check.h"
#include "gaprune/kernels.h"
#include "gaprune/safetensors.h"
#include "gaprune/tokenizer.h"

/* An architecture's place in the registry (gp_architectures()[a]); the names exist for code
 * that must single one out, which registry fields should make rare. */
typedef enum { GP_ARCH_BERT = 0, GP_ARCH_QWEN3 = 1 } gp_arch;

/* One supported architecture as the registry describes it, for help texts, checks and tests.
 * Each is defined in its own file under src/model and listed by one row of the registry. */
typedef struct {
    gp_arch arch;                   /* its gp_model_config.arch value (= its registry index) */
    const char *name;               /* "bert" */
    const char *const *model_types; /* config.json "model_type" values it reads; NULL-terminated */
    const char *description;        /* one line */
    gp_pool_mode default_pool;      /* pooling of a folder without modules.json */
    const char *block_prefix;       /* canonical names of a block's parameters: prefix, block number, "." */
    /* The weight matrices prune.layers selects, by their names inside a block (after the
     * block number): "mlp" the first list, "attention" the second, "linear" both. NULL-terminated. */
    const char *const *mlp;
    const char *const *attention;
    /* An MLP neuron j (prune.scope = neurons) is index j along the first axis of the tensors
     * neuron_rows names inside a block (the up projections and their biases) and along the
     * second axis of those neuron_cols names (the down projection); config.json's
     * intermediate_size counts them. NULL-terminated. */
    const char *const *neuron_rows;
    const char *const *neuron_cols;
    /* An attention head h (prune.scope = heads) is rows [h·hs, (h+1)·hs) of the tensors
     * head_rows names (query, key, value and their biases) and those columns of the ones
     * head_cols names (the attention output); NULL where the architecture has no heads scope. */
    const char *const *head_rows;
    const char *const *head_cols;
    /* The linear weights of a block in forward order (names inside a block, NULL-terminated), and
     * the group of each (linear_groups[k]): weights of one group read the same input, groups in
     * forward order (the attention projections, the attention output, the MLP's up and gate
     * projections, its down projection). One-shot reconstruction solves a group on one Hessian. */
    const char *const *linears;
    const int *linear_groups;
} gp_arch_info;

/* The registry, NULL-terminated, in gp_arch order. */
const gp_arch_info *const *gp_architectures(void);
/* The architecture that reads config.json's model_type, or NULL. */
const gp_arch_info *gp_arch_for_model_type(const char *model_type);
/* The registry row of a gp_model_config.arch value (aborts on one outside the registry). */
const gp_arch_info *gp_arch_get(gp_arch a);

/* config.json key of a folder whose blocks have different intermediate sizes (gaprune only),
 * and the most blocks such a folder may have. */
#define GP_CONFIG_INTER_SIZES "gaprune_intermediate_sizes"
#define GP_MAX_RAGGED_LAYERS 256

typedef struct {
    gp_arch arch;
    int vocab_size;
    int hidden;        /* C */
    int layers;        /* L */
    int heads;         /* NH: the heads in the weights (num_attention_heads less pruned_heads) */
    int heads_pruned;  /* heads transformers' prune_heads removed from every block (config.json pruned_heads) */
    int kv_heads;      /* NKV (= heads for BERT) */
    int head_dim;      /* hs */
    int intermediate;  /* I: every block's, or the largest of inter_of */
    /* A folder that only gaprune reads (prune.scope = neurons-global): block l has inter_of[l]
     * MLP neurons, config.json's "gaprune_intermediate_sizes" (GP_CONFIG_INTER_SIZES). transformers
     * has one intermediate_size, so such a folder does not load there (its shapes mismatch). */
    bool ragged;
    int inter_of[GP_MAX_RAGGED_LAYERS];
    int max_positions;
    int type_vocab;    /* BERT token types */
    float norm_eps;    /* layer_norm_eps / rms_norm_eps */
    double rope_theta; /* Qwen3 */
    bool tie_embeddings;
} gp_model_config;

/* Block l's MLP neurons (intermediate size). */
static inline int gp_config_inter(const gp_model_config *c, int l) { return c->ragged ? c->inter_of[l] : c->intermediate; }

/* Reads and validates config.json; missing keys and unknown architectures are GP_EINPUT
 * naming the key (an unknown model_type lists the registry's). */
gp_status gp_model_config_load(const char *dir, gp_model_config *cfg, gp_err *err);

typedef struct {
    char name[128]; /* canonical parameter name */
    int ndim;       /* 1 or 2 */
    int64_t shape[2];
    size_t offset; /* in floats from the start of the buffer */
    size_t numel;
} gp_param;

typedef struct {
    int n;
    gp_param *p;
    size_t total;  /* floats in all parameters */
    bool overflow; /* a shape or the total does not fit in size_t (sizes from a corrupt config.json) */
} gp_param_table;

void gp_param_table_add(gp_param_table *t, const char *name, int ndim, int64_t d0, int64_t d1);
/* Index of a name, or -1. */
int gp_param_table_find(const gp_param_table *t, const char *name);
void gp_param_table_free(gp_param_table *t);

typedef struct {
    gp_pool_mode mode;
    bool normalize;
} gp_pooling;

typedef struct gp_model_state gp_model_state;
typedef struct gp_wview gp_wview;

/* Per-layer events of gp_model_backward: a caller that needs each transformer block's weight
 * gradients can take them as soon as they are final (accumulate them, start sending them)
 * instead of after the whole backward, and the block's gradient memory can then be reused
 * (gp_model_need_grads with windows). begin(l) comes before block l's weight gradients are
 * written, done(l) once they are final; blocks run from the last to the first. */
typedef struct {
    void (*begin)(void *ctx, int layer);
    void (*done)(void *ctx, int layer);
    void *ctx;
} gp_grad_hooks;

typedef struct {
    char *dir;
    gp_model_config cfg;
    gp_pooling pool;
    gp_param_table table;
    char **src_names;     /* [table.n] tensor name in the safetensors files */
    gp_dtype *src_dtypes; /* [table.n] dtype on disk */
    /* The weights, held as the checkpoint stores them when every parameter has one 16-bit dtype
     * (wdtype GP_DT_BF16 or GP_DT_F16: w16, params NULL), else in float32 (wdtype GP_DT_F32:
     * params, w16 NULL); see "the weights in memory" below. Code that reads or writes weights
     * outside the forward and backward goes through gp_model_weights_get/set. */
    gp_dtype wdtype;
    float *params;        /* [table.total] */
    uint16_t *w16;        /* [table.total] */
    bool hold_f32;        /* gp_model_hold_f32(m, true): later reloads hold float32 too */
    gp_wview *wv;         /* float32 views of 16-bit weights (private) */
    float *grads;         /* [grad_total], allocated by the first gp_model_zero_grad */
    int64_t *grad_off;    /* [table.n] offset of each parameter's gradient in grads, -1 when it is
                           * not formed (gp_model_need_grads); NULL: every parameter's, at its
                           * offset in params */
    size_t grad_total;
    int grad_windows;     /* > 0: block l's gradients live in window l % grad_windows (need_grads) */
    size_t grad_outer;    /* with windows: floats of the prefix of grads that holds the needed
                           * parameters outside the blocks (embeddings, final norm), before the windows */
    gp_grad_hooks hooks;  /* all NULL: no events */
    bool recompute;       /* train-mode forwards keep each block's input only (gp_model_set_recompute) */
    bool lean;            /* train-mode forwards keep what blocks cannot cheaply make again (gp_model_set_lean) */
    gp_tokenizer *tok;
    int max_length;     /* default truncation: min(sentence_bert_config max_seq_length, positions) */
    char *query_prompt; /* config_sentence_transformers.json prompts.query, or NULL */
    int tok_emb;        /* table index of the token-embedding matrix */
    /* What gp_model_encode did since its user last zeroed these: texts embedded and the wall
     * seconds it took, tokenizing included (evaluation reports encode throughput from them). */
    int64_t encoded;
    double encode_s;
    gp_model_state *st; /* activations of the last forward (private) */
} gp_model;

/* Loads everything from the folder. Any problem is GP_EINPUT naming the file and key or tensor. */
gp_status gp_model_load(const char *dir, gp_model **out, gp_err *err);
void gp_model_free(gp_model *m);
/* Reads the weights of m's folder into m->params again (after pruning or retraining changed
 * them): what keeps a second copy of the weights out of memory. Every check of gp_model_load
 * applies, so a folder changed meanwhile is an input error, not a silent mix. */
gp_status gp_model_reload_weights(gp_model *m, gp_err *err);
/* The same from another folder of m's shapes (a pruned folder written from m, its weights solved
 * again by the reconstruction); m->dir stays. */
gp_status gp_model_read_weights(gp_model *m, const char *dir, gp_err *err);
/* Makes m the model of another folder of the same architecture and shapes but for
 * intermediate_size and pruned_heads (a folder with whole MLP neurons or heads removed, or the dense one again): config,
 * parameter table and weights from dir, m->dir = dir; the tokenizer, pooling and max_length stay
 * (the folders share them). The activations and gradient buffers are dropped (a
 * gp_model_need_grads layout with them). Peak memory: the larger of the two models. GP_EINPUT
 * naming the folder when it differs in more (m unchanged) or its weights cannot be read (m is
 * then unusable: free it). */
gp_status gp_model_reopen(gp_model *m, const char *dir, gp_err *err);
/* A model with zeroed parameters and no tokenizer, for benchmarks, tests and training from
 * scratch; the caller fills m->params. */
gp_model *gp_model_create(const gp_model_config *cfg, gp_pooling pool);

/* min(max_positions, sentence_bert_config.json max_seq_length) without loading weights. */
gp_status gp_model_default_max_length(const char *dir, int max_positions, int *out, gp_err *err);

/* The parameter table an architecture implies (used by the loader and by tests). */
void gp_model_build_table(const gp_model_config *cfg, gp_param_table *t);

typedef enum { GP_PARAM_OTHER = 0, GP_PARAM_MLP = 1, GP_PARAM_ATTENTION = 2 } gp_param_kind;

/* Whether parameter i is an MLP or attention weight matrix (what prune.layers selects), and
 * its transformer block (-1 for the embeddings and anything outside the blocks). */
gp_param_kind gp_model_param_kind(const gp_model *m, int i, int *layer);

/* Along which axis parameter i indexes its block's MLP neurons: GP_NEURON_ROWS (row j is
 * neuron j: the up projections and their biases), GP_NEURON_COLS (column j: the down
 * projection) or GP_NEURON_NONE; *layer as gp_model_param_kind. */
typedef enum { GP_NEURON_NONE = 0, GP_NEURON_ROWS = 1, GP_NEURON_COLS = 2 } gp_neuron_axis;
gp_neuron_axis gp_model_neuron_axis(const gp_model *m, int i, int *layer);

/* The structures structured pruning removes whole: MLP neurons, or attention heads (BERT). */
typedef enum { GP_STRUCT_NEURONS = 0, GP_STRUCT_HEADS = 1 } gp_struct_kind;
/* gp_model_neuron_axis for either kind: the axis along which parameter i indexes its block's
 * structures of kind k, each `gp_model_struct_width` rows or columns wide. */
gp_neuron_axis gp_model_struct_axis(const gp_model *m, gp_struct_kind k, int i, int *layer);
/* Structures of kind k in a block (intermediate_size, or the heads in the weights; the largest
 * block's in a ragged folder), and the rows (or columns) each spans (1, or head_dim). */
int64_t gp_model_struct_count(const gp_model *m, gp_struct_kind k);
/* Structures of kind k in block l (its own intermediate size in a ragged folder). */
int64_t gp_model_struct_count_in(const gp_model *m, gp_struct_kind k, int l);
int64_t gp_model_struct_width(const gp_model *m, gp_struct_kind k);
/* "neurons" or "heads"; "MLP neurons" or "attention heads". */
const char *gp_struct_name(gp_struct_kind k);
const char *gp_struct_title(gp_struct_kind k);

int gp_model_dim(const gp_model *m);
/* Pointer to parameter i's float32 data; only while the weights are held in float32
 * (m->wdtype == GP_DT_F32: it aborts otherwise). */
float *gp_model_param(const gp_model *m, int i);

/* ---- the weights in memory (model.weights) -------------------------------------------------
 * A checkpoint whose parameters are all BF16, or all F16, is held as it is stored: 2 bytes a
 * weight instead of 4 (8 GB instead of 16 for a 4B model). Every BF16 and F16 number is a float32,
 * so the forward and backward widen the weights they multiply into a float32 view, one
 * transformer block at a time, and compute bitwise what float32 weights give; the view costs the
 * largest block and the parameters outside the blocks but the token embedding, whose rows are
 * gathered per batch. Written values (masks, retraining, a solved layer) are rounded to the held
 * dtype, to nearest even, as writing the folder would round them. Anything else (F32 or mixed
 * files, gp_model_create) is held in float32. Not thread-safe: one thread drives a model. */

/* Holds the weights in float32 from now on (model.weights = f32, and the stages that solve
 * weights in float32, such as the reconstruction); `always`: reloads and other folders too,
 * else the next gp_model_reload_weights/read_weights/reopen holds the checkpoint's dtype again. */
void gp_model_hold_f32(gp_model *m, bool always);
/* Bytes a weight takes in memory (4 or 2). */
size_t gp_model_weight_bytes(const gp_model *m);
/* Parameter i as float32 for computing with, neither the token embedding nor written through:
 * the weights themselves when held in float32, else the view of its block (widened now when the
 * view holds another block) or of the parameters outside the blocks. Valid until a call for
 * another block or a change of the weights. */
const float *gp_model_w(const gp_model *m, int i);
/* The token-embedding table to look ids[0..N) up in, and the ids to use (*use): the table and
 * ids themselves in float32, else the N rows widened into the view and 0..N-1. */
const float *gp_model_token_rows(const gp_model *m, const int32_t *ids, int N, const int32_t **use);
/* dst[0..n) = the weights of flat elements [a, a+n) (table order) as float32. */
void gp_model_weights_get(const gp_model *m, size_t a, size_t n, float *dst);
/* The weights of flat elements [a, a+n) = src[0..n), rounded to the held dtype. */
void gp_model_weights_set(gp_model *m, size_t a, size_t n, const float *src);
/* Floats of the float32 views of 16-bit weights of these shapes: the largest block and the
 * parameters outside the blocks but the token embedding (`gaprune plan` counts them too). */
size_t gp_model_view_floats(const gp_model_config *cfg, const gp_param_table *t);
/* Tells the views that the weights changed behind them (after writing w16 or params directly). */
void gp_model_weights_changed(gp_model *m);
/* Parameter i's gradient in m->grads, or NULL when gp_model_need_grads left it out. */
float *gp_model_grad(const gp_model *m, int i);
/* Which parameters get a gradient from gp_model_backward: need[i] for every table index, or
 * NULL for all (the default; then m->grads is laid out like m->params). The input gradients
 * still flow through every layer; a parameter left out costs neither its weight-gradient
 * GEMM nor its memory. Frees m->grads; the next gp_model_zero_grad allocates what is needed.
 *
 * windows > 0 (with need): when the blocks need the same tensors, block l's gradients are laid
 * out in window l % windows of one block's length each, in table order, so m->grads holds
 * `windows` blocks instead of all of them; each window is reused by a later block of the same
 * backward, so the caller must take block l's gradients in hooks.done(l) (the model zeroes the
 * window at the next block's begin, after hooks.begin, where the caller waits for its last
 * reader). The needed parameters outside the blocks come first, in table order, in a prefix of
 * m->grad_outer floats that accumulates over backwards like the contiguous layout (cleared
 * by gp_model_zero_grad). Returns the window length in floats (one block's needed elements),
 * or 0 when the layout is the contiguous one (windows == 0, need NULL, or blocks that differ). */
size_t gp_model_need_grads(gp_model *m, const bool *need, int windows);
/* Activation recomputation (model.recompute): a train-mode forward keeps each transformer block's
 * output (the next block's input) and one block's working buffers instead of every block's, and
 * gp_model_backward runs each block's forward again from its input just before that block's
 * backward. The same kernels on the same inputs give the same activations, so the gradients are
 * bitwise those of the stored path; the price is one more forward of every block but the last,
 * and gp_model_each_linear_input runs the blocks' forwards once more. Memory: L·N·C floats plus
 * one block's buffers instead of L blocks' (N tokens, C hidden). */
void gp_model_set_recompute(gp_model *m, bool on);
/* model.activations: what training forwards keep (gp_model_set_lean): auto, all or lean. */
typedef enum { GP_ACTS_AUTO = 0, GP_ACTS_ALL = 1, GP_ACTS_LEAN = 2 } gp_activations;
extern const char *const gp_activations_names[]; /* in gp_activations order, NULL-terminated */
/* Lean activations (model.activations = lean): a train-mode forward keeps, of each block, only
 * what cannot be made again by cheap elementwise work, and the attention probabilities not at
 * all; before a block's backward (or its linear inputs) the rest is made again by the forward's
 * own arithmetic (the norms' outputs from their saved rstd, RoPE, SwiGLU or GELU; the
 * probabilities in gp_attention_backward), so the gradients are bitwise those of keeping
 * everything. Memory: at Qwen3-4B's shapes and 512 tokens 49% of the floats a block keeps; time:
 * a few % more on MiniLM-sized blocks at 128 tokens, under 1% on Qwen3-4B's (the products
 * dominate). Inference forwards never keep the probabilities (nothing reads them again). Off by
 * default; the stages set it from the job (gp_model_lean_for). */
void gp_model_set_lean(gp_model *m, bool on);
/* Bytes of the activations a forward of B texts of T tokens each lays out (the architecture's one
 * allocation; every text taken as full), in train mode with model.recompute and lean as given,
 * or for inference (train false). gaprune plan counts these, and auto chooses by them. */
double gp_model_activation_bytes(const gp_model_config *c, double B, double T, bool train, bool recompute, bool lean);
/* Whether training forwards of B texts of T tokens keep lean activations under model.activations
 * = mode: lean yes, all no; auto when keeping all of them would take more than a quarter of share
 * bytes (the memory per rank, gp_memory_per_rank; 0: unknown, all), as stats.accumulators decides. */
bool gp_model_lean_for(const gp_model_config *c, gp_activations mode, double B, double T, bool recompute, double share);
/* Frees the activations and backward scratch that forwards keep at their largest (one
 * allocation grown to the biggest batch so far): a stage that trained (statistics, retraining)
 * calls it at its end, so the stages after it (scoring, evaluation) hold only the inference
 * buffers they use. The next forward allocates again; gradient buffers stay. */
void gp_model_release_buffers(gp_model *m);
/* Installs (or with NULL removes) the per-layer events of gp_model_backward. */
void gp_model_set_grad_hooks(gp_model *m, const gp_grad_hooks *hooks);
/* Called by the architectures' backward around each block's weight gradients. */
void gp_model_layer_begin(gp_model *m, int layer);
void gp_model_layer_done(gp_model *m, int layer);

/* emb[B, dim] for a padded batch; keeps the activations for gp_model_backward. */
void gp_model_forward(gp_model *m, const gp_batch *b, float *emb);
/* Adds d loss / d params into m->grads, given demb[B, dim] of the last forward. */
void gp_model_backward(gp_model *m, const float *demb);
/* Zeroes m->grads (allocating it the first time). Only the token-embedding rows that earlier
 * backward passes touched are cleared again, which for a 30k-token vocabulary is most of the
 * cost of a small batch's zero_grad. */
void gp_model_zero_grad(gp_model *m);
/* Tells the model that m->grads was written outside backward (an allreduce over ranks): the
 * next gp_model_zero_grad clears everything. */
void gp_model_grads_changed(gp_model *m);
/* Sorted, unique token ids of the last forward: the only rows of the token-embedding gradient
 * (table index m->tok_emb) that its backward makes non-zero. Returns their count. */
int gp_model_touched_rows(const gp_model *m, const int32_t **rows);

/* For each linear layer: fn(ctx, index of its weight in the table, input [N, in], N, in),
 * from the last gp_model_forward. */
typedef void (*gp_linear_input_fn)(void *ctx, int param, const float *x, int N, int in);
void gp_model_each_linear_input(gp_model *m, gp_linear_input_fn fn, void *ctx);

/* ---- block by block (one-shot reconstruction, prune.reconstruct) ------------------------------
 * A padded batch packed once (gp_seqs) goes through the embeddings, then one transformer block at
 * a time, each block's input whatever the caller hands it (the output of the block before, as
 * reconstructed so far, or of the dense one). Inference buffers: what an earlier gp_model_forward
 * kept for backward is gone, and backward refuses until the next gp_model_forward. */
typedef struct gp_seqs gp_seqs;
gp_seqs *gp_model_seqs(const gp_model *m, const gp_batch *b);
int gp_seqs_tokens(const gp_seqs *s); /* N, the batch's real tokens */
void gp_seqs_free(gp_seqs *s);
/* x [N, C]: block 0's input. */
void gp_model_embed(gp_model *m, const gp_seqs *s, float *x);
/* y [N, C]: block l's output on its input x [N, C] (y and x distinct); fn, when not NULL, gets each of
 * the block's linear layers' input [N, in] as gp_model_each_linear_input does. */
void gp_model_block(gp_model *m, const gp_seqs *s, int l, const float *x, float *y, gp_linear_input_fn fn, void *ctx);
/* The group (gp_arch_info.linear_groups) of parameter i among its block's linear weights, or -1
 * for any other parameter; *layer its block. */
int gp_model_linear_group(const gp_model *m, int i, int *layer);

/* Qwen3-Embedding's query prefix for a task description, "Instruct: {task}\nQuery:", the form of
 * the model's own sentence-transformers prompt (the query follows with no space). Caller frees. */
char *gp_query_instruct(const char *task);

/* Embeds n texts in mini-batches of `batch` without keeping activations for backward; emb is
 * [n, dim]. max_len <= 0 means the model's max_length (larger values are clamped to it);
 * prefix, when not NULL, is prepended to every text (the query instruction). */
void gp_model_encode(gp_model *m, const char *const *texts, int n, int batch, int max_len, const char *prefix,
                     float *emb);

/* SHA-256 over config.json and the safetensors files of a model folder (rank-local). */
gp_status gp_model_sha256(const char *dir, char hex[65], gp_err *err);
