/* arch.h — what each encoder architecture provides to model.c (private to src/model). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gaprune/model.h"

/* A batch packed to its real tokens: sequence b owns rows offsets[b] .. offsets[b+1]-1. */
typedef struct {
    int B, N;
    int32_t *ids; /* [N] token ids */
    int32_t *pos; /* [N] position ids (column in the padded batch) */
    int *offsets; /* [B+1] */
} gp_packed;

typedef struct {
    const char *name;
    const char *token_embedding; /* parameter name of the token-embedding matrix [V, C] */
    /* The prefix some checkpoints put before every name ("bert." from BertForMaskedLM, "model."
     * from Qwen3ForCausalLM); names are looked up without it first. */
    const char *file_prefix;
    void (*build_table)(const gp_model_config *cfg, gp_param_table *t);
    /* Kind of a parameter by its canonical name (2-D weights only are MLP or attention). */
    gp_param_kind (*param_kind)(const char *name);
    /* Returns hidden states [N, C] (owned by the state). With train = false nothing is kept
     * for backward and memory does not grow with the number of layers. */
    const float *(*forward)(gp_model *m, void **state, const gp_packed *pk, bool train);
    /* Adds into m->grads given dhidden [N, C] of the last train-mode forward. */
    void (*backward)(gp_model *m, void *state, const gp_packed *pk, const float *dhidden);
    void (*state_free)(void *state);
    /* Calls fn for each linear layer's weight with its input [N, in] of the last train-mode
     * forward (the activations Wanda scores weights by). */
    void (*each_linear_input)(gp_model *m, void *state, const gp_packed *pk, gp_linear_input_fn fn, void *ctx);
} gp_arch_ops;

extern const gp_arch_ops gp_bert_ops;
extern const gp_arch_ops gp_qwen3_ops;
