/*
 * tokenizer.h — text to token ids, as Hugging Face tokenizes for the model folder.
 *
 * Kinds: WordPiece (BERT family), matching BertTokenizerFast: the BertNormalizer (drop
 * control characters and U+FFFD, whitespace to space, spaces around CJK ideographs, accent
 * stripping by NFD minus Mn marks, lower case), the BertPreTokenizer (split on whitespace,
 * isolate punctuation), greedy longest-match-first WordPiece with "##" continuations and
 * [UNK] for words over 100 characters, then [CLS] ... [SEP]. Special tokens written literally
 * in the text ("[SEP]") are matched before normalisation, as HF's added tokens are.
 * Invalid UTF-8 is decoded as U+FFFD (and so dropped by the normaliser); it never crashes.
 *
 * Settings come from tokenizer_config.json (do_lower_case, strip_accents,
 * tokenize_chinese_chars, special token strings; as BertTokenizerFast, these override
 * tokenizer.json), else tokenizer.json's normalizer; the vocabulary from vocab.txt, else
 * tokenizer.json's model.vocab.
 *
 * Byte-level BPE (tokenizer.json model.type "BPE": Qwen2, Qwen3, GPT-2 style), matching Hugging
 * Face `tokenizers`: added tokens (tokenizer.json added_tokens) are found in the raw text first,
 * leftmost then longest, and become their ids (lstrip / rstrip absorb the white space beside
 * them); the text between them is NFC-normalised (normalizer NFC, a Sequence of NFC, or null),
 * cut by the pre-tokenizer (Split regexes with behaviour Isolated, then ByteLevel; a ByteLevel
 * with use_regex applies GPT-2's pattern; regexes run on PCRE2 with \s read as Oniguruma reads
 * it), each piece's UTF-8 bytes are mapped through GPT-2's byte-to-unicode table and merged by
 * model.merges rank ("a b" strings or [a, b] pairs; ignore_merges honoured). The
 * post-processor's special tokens (TemplateProcessing's single template, alone or in a
 * Sequence with ByteLevel) go around the text, which truncation shortens first; Qwen3-Embedding
 * appends <|endoftext|> this way. Invalid UTF-8 is decoded as U+FFFD first. The pad id is
 * tokenizer_config.json's pad_token, else <|endoftext|>, else 0; truncation_side "left" keeps
 * the end of the text. token(id) gives the byte-level form ("Ġhello"). Settings HF would read
 * differently or that this code does not implement (byte_fallback, BPE dropout, single_word or
 * normalized added tokens, other normalizers, pre-tokenizers or post-processors, added-token
 * ids other than those HF assigns) are GP_EINPUT naming tokenizer.json and the key.
 *
 * Usage:
 *     gp_tokenizer *tok; gp_err err = {0};
 *     if (gp_tokenizer_load(dir, &tok, &err)) ...;
 *     int32_t *ids; int n = gp_tokenizer_encode(tok, "Hello!", 6, 512, &ids); free(ids);
 *     gp_batch b; gp_tokenizer_batch(tok, texts, 8, 128, &b); ... gp_batch_free(&b);
 *     gp_tokenizer_free(tok);
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gaprune/check.h"

typedef struct gp_tokenizer gp_tokenizer;

/* A padded batch: B sequences of T positions, mask 1 for real tokens. Owned by the caller. */
typedef struct {
    int B, T;
    int32_t *ids;  /* [B, T], padding = the tokenizer's pad id */
    uint8_t *mask; /* [B, T] */
} gp_batch;

gp_status gp_tokenizer_load(const char *dir, gp_tokenizer **out, gp_err *err);
void gp_tokenizer_free(gp_tokenizer *t);

/* Token ids of one text with the special tokens, truncated to max_len (which keeps room for
 * the special tokens); returns the count and a malloc'd array in *ids. */
int gp_tokenizer_encode(const gp_tokenizer *t, const char *text, size_t len, int max_len, int32_t **ids);
/* Pads to the longest sequence of the batch (right padding). */
void gp_tokenizer_batch(const gp_tokenizer *t, const char *const *texts, int n, int max_len, gp_batch *b);
void gp_batch_free(gp_batch *b);

int gp_tokenizer_vocab_size(const gp_tokenizer *t);
/* Largest id + 1 (what the embedding matrix must cover). */
int gp_tokenizer_max_id(const gp_tokenizer *t);
const char *gp_tokenizer_token(const gp_tokenizer *t, int32_t id);
int32_t gp_tokenizer_pad_id(const gp_tokenizer *t);
/* A short description for logs: "wordpiece, 30522 tokens, lower case, strip accents",
 * "byte-level BPE, 151669 tokens, NFC, appends <|endoftext|>". */
const char *gp_tokenizer_describe(const gp_tokenizer *t);
