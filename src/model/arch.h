/*
 * arch.h — what each encoder architecture provides to model.c, and the registry that lists
 * them (private to src/model; gp_arch_info in model.h is the public part of a row).
 *
 * An architecture is one file (bert.c, qwen3.c) defining a gp_arch_ops: its description, its
 * config.json parser, its parameter table and its forward and backward. arch.c's registry has
 * one row per architecture; model.c reaches an architecture only through gp_arch_ops_get, so
 * adding one touches its own file, the registry row and the gp_arch enum.
 *
 * Usage (inside src/model):
 *     const gp_arch_ops *ops = gp_arch_ops_get(m->cfg.arch);
 *     const float *hidden = ops->forward(m, &state, &packed, true);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gaprune/json.h"
#include "gaprune/model.h"

/* A batch packed to its real tokens: sequence b owns rows offsets[b] .. offsets[b+1]-1. */
typedef struct {
    int B, N;
    int32_t *ids; /* [N] token ids */
    int32_t *pos; /* [N] position ids (column in the padded batch) */
    int *offsets; /* [B+1] */
} gp_packed;

typedef struct {
    gp_arch_info info; /* first, so that a registry row's info leads back to its ops */
    const char *token_embedding; /* parameter name of the token-embedding matrix [V, C] */
    /* The prefix some checkpoints put before every name ("bert." from BertForMaskedLM, "model."
     * from Qwen3ForCausalLM); names are looked up without it first. */
    const char *file_prefix;
    /* Fills cfg (cfg->arch is already set) from config.json, whose path errors name. */
    gp_status (*parse_config)(const cJSON *j, const char *path, gp_model_config *cfg, gp_err *err);
    void (*build_table)(const gp_model_config *cfg, gp_param_table *t);
    /* Returns hidden states [N, C] (owned by the state). With train = false nothing is kept
     * for backward and memory does not grow with the number of layers. */
    const float *(*forward)(gp_model *m, void **state, const gp_packed *pk, bool train);
    /* Adds into m->grads given dhidden [N, C] of the last train-mode forward. */
    void (*backward)(gp_model *m, void *state, const gp_packed *pk, const float *dhidden);
    void (*state_free)(void *state);
    /* Floats of the activation allocation a forward lays out for N tokens, att of them attention
     * probabilities (Σ heads·len²), in train mode with recompute and lean or for inference (train
     * false; lean then always): what the architecture's alloc takes, one formula for both. */
    double (*act_floats)(const gp_model_config *c, double N, double att, bool train, bool recompute, bool lean);
    /* Calls fn for each linear layer's weight with its input [N, in] of the last train-mode
     * forward (the activations Wanda scores weights by). */
    void (*each_linear_input)(gp_model *m, void *state, const gp_packed *pk, gp_linear_input_fn fn, void *ctx);
    /* The block-wise forward (model.h): x [N, C] = block 0's input; y [N, C] = block l's output on
     * its input x, fn (when not NULL) called with each of the block's linear layers' inputs.
     * Inference buffers (nothing kept for backward). */
    void (*embed)(gp_model *m, void **state, const gp_packed *pk, float *x);
    void (*block)(gp_model *m, void **state, const gp_packed *pk, int l, const float *x, float *y, gp_linear_input_fn fn,
                  void *ctx);
} gp_arch_ops;

extern const gp_arch_ops gp_bert_ops;
extern const gp_arch_ops gp_qwen3_ops;

/* The ops of a gp_model_config.arch value (aborts on one outside the registry). */
const gp_arch_ops *gp_arch_ops_get(gp_arch a);

/* config.json readers the architectures' parsers share: a positive int key, an epsilon in
 * (0, 1), and the six sizes every architecture names alike (vocab_size, hidden_size,
 * num_hidden_layers, num_attention_heads, intermediate_size, max_position_embeddings). */
gp_status gp_config_int(const cJSON *j, const char *key, int *out, const char *path, gp_err *err);
gp_status gp_config_eps(const cJSON *j, const char *key, float *out, const char *path, gp_err *err);
gp_status gp_config_common_sizes(const cJSON *j, const char *path, gp_model_config *cfg, gp_err *err);
/* transformers' "pruned_heads" ({"layer": [head, ...]}, the heads prune_heads removed, indices of
 * the original num_attention_heads): *removed = the count per layer, which must be the same for
 * every layer (0 without the key); a malformed value is GP_EINPUT naming path. */
gp_status gp_config_pruned_heads(const cJSON *j, const char *path, int layers, int heads, int *removed, gp_err *err);

/* Every size in config.json is checked alone when read; the parameter count they imply
 * together is checked here against GP_MAX_PARAMS, with overflow-safe arithmetic and without
 * building a table of every block. The message names path and the size most to blame.
 * (gp_model_load then checks the count against the values the weight files hold, before it
 * allocates anything.) */
#define GP_MAX_PARAMS (1ull << 40)
gp_status gp_config_check_params(const gp_model_config *cfg, const char *path, gp_err *err);

/* The float32 views of 16-bit weights (weights.c): made for m's table and wdtype (nothing when
 * float32), and freed. model.c calls them whenever the table or the dtype changes. */
void gp_model_wview_init(gp_model *m);
void gp_model_wview_free(gp_model *m);
