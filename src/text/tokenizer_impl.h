/* tokenizer_impl.h — the interface each tokenizer kind fills in (private to src/text). */
#pragma once

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "gaprune/tokenizer.h"

typedef struct {
    void *impl;
    int (*encode)(const void *impl, const char *text, size_t len, int max_len, int32_t **ids);
    void (*free)(void *impl);
    const char *(*token)(const void *impl, int32_t id);
    int vocab_size, max_id;
    int32_t pad_id;
    const char *desc;
} gp_tokenizer_impl;

/* tok_json / tok_cfg: parsed tokenizer.json and tokenizer_config.json, or NULL when absent. */
gp_status gp_wordpiece_load(const char *dir, const cJSON *tok_json, const char *tok_json_path,
                            const cJSON *tok_cfg, const char *tok_cfg_path, gp_tokenizer_impl *out, gp_err *err);

/* UTF-8 to codepoints; each invalid byte becomes U+FFFD. *out is malloc'd. */
void gp_utf8_decode(const char *s, size_t len, int32_t **out, int *n);

/* BERT normalisation and pre-tokenisation of a text: fn(ctx, codepoints, n) for each word. */
void gp_bert_words(const char *text, size_t len, bool lower, void (*fn)(void *ctx, const int32_t *cp, int n), void *ctx);
