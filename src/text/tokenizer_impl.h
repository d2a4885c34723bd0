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

/* tok_json must have model.type "BPE"; see bpe.c. */
gp_status gp_bpe_load(const char *dir, const cJSON *tok_json, const char *tok_json_path, const cJSON *tok_cfg,
                      const char *tok_cfg_path, gp_tokenizer_impl *out, gp_err *err);

/* The kind behind a loaded tokenizer (for the test hooks below). */
const gp_tokenizer_impl *gp_tokenizer_impl_of(const gp_tokenizer *t);

/* Test hook: the pieces a byte-level BPE tokenizer hands to the merge step for a text, as UTF-8
 * before the byte mapping (after added-token matching, where an added token is a piece of its
 * own, NFC and the pre-tokenizer's regexes). Returns the count and a malloc'd array of malloc'd
 * strings in *pieces, or -1 (and *pieces NULL) when t is not byte-level BPE. */
int gp_bpe_pieces(const gp_tokenizer *t, const char *text, size_t len, char ***pieces);

/* Unicode White_Space, which is Rust's char::is_whitespace (what HF's normalisers and added-token
 * stripping test). */
bool gp_is_white_space(int32_t c);

/* UTF-8 to codepoints; each invalid byte becomes U+FFFD. *out is malloc'd. */
void gp_utf8_decode(const char *s, size_t len, int32_t **out, int *n);

/* BERT normalisation and pre-tokenisation of a text: fn(ctx, codepoints, n) for each word. */
void gp_bert_words(const char *text, size_t len, bool lower, void (*fn)(void *ctx, const int32_t *cp, int n), void *ctx);
