/* fuzz_tokenizer.h — what the tokenizer harnesses check of every tokenizer they load or hold
 * (header-only, test code): the encodings of awkward texts keep the promises of tokenizer.h. */
#pragma once

#include "fuzz_util.h"

#include "gaprune/tokenizer.h"

/* Texts that reach every branch of both kinds: special and added tokens written in the text,
 * accents, CJK, the one lower-case mapping to two characters, control characters, invalid
 * UTF-8, white space runs, a word over WordPiece's 100 characters, the empty text. */
static const char *const fz_texts[] = {
    "Hello, World! It's 2024; naïve café, ÅNGSTRÖM and İstanbul.",
    "[CLS] inside [SEP] text[UNK][MASK] [PAD]<|endoftext|> <|im_start|>user<|im_end|>",
    "你好世界，こんにちは 안녕하세요 مرحبا नमस्ते 👩‍👩‍👧 ｆｕｌｌ",
    "bad \xff\xfe utf8 \xc3 end \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80",
    "  tabs\tand\nnew lines\r\n\x01\x7f\xc2\x85 \xe2\x80\x8b  ",
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaa 12345678901234567890 !!!???..."),
    "",
};
enum { FZ_NTEXTS = sizeof fz_texts / sizeof fz_texts[0] };

/* One text at one limit: every id a token of the vocabulary, and no more ids than the limit
 * allows (the special tokens of an empty text can be more than a limit below their count). */
static void fz_check_encode(const gp_tokenizer *t, const char *text, size_t len, int max_len) {
    int32_t *ids = NULL;
    const int n = gp_tokenizer_encode(t, text, len, max_len, &ids);
    FZ_ASSERT(n >= 0 && ids != NULL);
    int32_t *empty = NULL;
    const int specials = gp_tokenizer_encode(t, "", 0, 0, &empty);
    free(empty);
    FZ_ASSERT(n <= (max_len > specials ? max_len : specials));
    for (int i = 0; i < n; i++) {
        FZ_ASSERT(ids[i] >= 0 && ids[i] < gp_tokenizer_max_id(t));
        FZ_ASSERT(gp_tokenizer_token(t, ids[i]) != NULL);
    }
    free(ids);
}

/* The fixed texts at several limits, and a padded batch of them. */
static void fz_check_tokenizer(const gp_tokenizer *t) {
    static const int limits[] = {512, 16, 3, 2, 1, 0};
    FZ_ASSERT(gp_tokenizer_describe(t) && gp_tokenizer_describe(t)[0]);
    FZ_ASSERT(gp_tokenizer_vocab_size(t) > 0 && gp_tokenizer_max_id(t) > 0);
    FZ_ASSERT(gp_tokenizer_pad_id(t) >= 0 && gp_tokenizer_pad_id(t) < gp_tokenizer_max_id(t));
    for (int i = 0; i < FZ_NTEXTS; i++)
        for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++)
            fz_check_encode(t, fz_texts[i], strlen(fz_texts[i]), limits[l]);
    gp_batch b;
    gp_tokenizer_batch(t, (const char *const *)fz_texts, FZ_NTEXTS, 16, &b);
    FZ_ASSERT(b.B == FZ_NTEXTS && b.T >= 1);
    for (int i = 0; i < b.B * b.T; i++) FZ_ASSERT(b.mask[i] <= 1 && b.ids[i] >= 0 && b.ids[i] < gp_tokenizer_max_id(t));
    gp_batch_free(&b);
}

/* ---- the tokenizer-file harnesses (fuzz_wordpiece, fuzz_bpe): one file from the input, the
 * one beside it from tests/fixtures ---------------------------------------------------------- */

typedef struct {
    const char *file;                  /* the input */
    const char *other, *other_fixture; /* the file beside it, or NULL */
} fz_tok_target;

enum { FZ_TOK_MAX_TARGETS = 8 };
static char fz_tok_dir[FZ_TOK_MAX_TARGETS][PATH_MAX];

/* A folder per target under a scratch folder named name, its fixed file linked in. */
static inline void fz_tok_init(const char *name, const fz_tok_target *targets, int n) {
    FZ_ASSERT(n <= FZ_TOK_MAX_TARGETS);
    const char *root = fz_scratch(name);
    for (int i = 0; i < n; i++) {
        char sub[32], path[PATH_MAX];
        snprintf(sub, sizeof sub, "t%d", i);
        fz_mkdir(fz_path(fz_tok_dir[i], root, sub));
        if (targets[i].other) fz_link_fixture(targets[i].other_fixture, fz_path(path, fz_tok_dir[i], targets[i].other));
    }
}

/* Byte 0 picks the target, the rest is its file: a tokenizer that loads keeps its promises
 * (fz_check_tokenizer), one that does not is GP_EINPUT with a message. */
static inline int fz_tok_one(const fz_tok_target *targets, int n, const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int k = data[0] % n;
    char path[PATH_MAX];
    fz_write(fz_path(path, fz_tok_dir[k], targets[k].file), data + 1, size - 1);
    gp_tokenizer *t = NULL;
    gp_err err = {0};
    if (gp_tokenizer_load(fz_tok_dir[k], &t, &err) == GP_OK) {
        fz_check_tokenizer(t);
        gp_tokenizer_free(t);
    } else {
        FZ_ASSERT(t == NULL && err.code == GP_EINPUT && err.msg[0]);
    }
    return 0;
}
