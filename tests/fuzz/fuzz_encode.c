/* fuzz_encode.c — arbitrary bytes through fixed tokenizers (tokenizer.h), and the WordPiece
 * vocabulary learner (vocab.h) on arbitrary texts.
 *
 * Input: byte 0 picks the tokenizer (its value mod 4) and the use (its value / 4 mod 4), byte 1
 * a length limit (255: 512) or a vocabulary size; the rest is text (any bytes: invalid UTF-8
 * and NULs included).
 *   tokenizers: 0 bert-tiny (lower case, accents stripped, CJK split), 1 the same vocabulary
 *               cased without stripping or CJK splitting, 2 bpe-tiny (NFC, Qwen's split regex,
 *               an appended <|endoftext|>), 3 bpe-tiny's vocabulary with GPT-2's ByteLevel
 *               regex, no normalizer, added tokens that strip white space, ignore_merges, a
 *               prepended and an appended token, left truncation and another pad token;
 *   uses:       0 one text (fz_check_encode), 1 the texts between NULs as one padded batch,
 *               2 the pre-tokenizer's pieces (BPE) or BERT's words (WordPiece), 3 a vocabulary
 *               learned from the lines of the text, then loaded and checked as a tokenizer.
 */
#include "fuzz_tokenizer.h"

#include <cJSON.h>

#include "../../src/text/tokenizer_impl.h"
#include "gaprune/log.h"
#include "gaprune/vocab.h"

enum { N_TOK = 4 };
static gp_tokenizer *g_tok[N_TOK];
static bool g_lower[N_TOK] = {true, false, false, false};
static char g_learn_dir[PATH_MAX];

static void write_json(const char *path, const cJSON *j) {
    char *s = cJSON_Print(j);
    fz_write(path, s, strlen(s));
    cJSON_free(s);
}

/* bpe-tiny's tokenizer.json with the other settings of tokenizer 3 (see the file comment). */
static void make_bpe_variant(const char *dir) {
    char *text = NULL, path[PATH_MAX];
    size_t n;
    gp_err err = {0};
    FZ_ASSERT(gp_read_file(FZ_FIXTURES "/bpe-tiny/tokenizer.json", &text, &n, &err) == GP_OK);
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    FZ_ASSERT(j);
    cJSON_ReplaceItemInObject(j, "normalizer", cJSON_CreateNull());
    cJSON_ReplaceItemInObject(j, "pre_tokenizer",
                              cJSON_Parse("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}"));
    cJSON *model = cJSON_GetObjectItem(j, "model");
    cJSON_DeleteItemFromObject(model, "ignore_merges");
    cJSON_AddTrueToObject(model, "ignore_merges");
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(j, "added_tokens")) {
        const char *c = cJSON_GetObjectItem(a, "content")->valuestring;
        if (!strcmp(c, "<|im_start|>")) cJSON_ReplaceItemInObject((cJSON *)a, "lstrip", cJSON_CreateTrue());
        if (!strcmp(c, "<|im_end|>")) cJSON_ReplaceItemInObject((cJSON *)a, "rstrip", cJSON_CreateTrue());
    }
    cJSON_ReplaceItemInObject(
        j, "post_processor",
        cJSON_Parse("{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"}, {\"type\": "
                    "\"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<|im_start|>\", \"type_id\": "
                    "0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": "
                    "\"<|endoftext|>\", \"type_id\": 0}}], \"special_tokens\": {\"<|im_start|>\": {\"id\": "
                    "\"<|im_start|>\", \"ids\": [477]}, \"<|endoftext|>\": {\"id\": \"<|endoftext|>\", \"ids\": "
                    "[476]}}}]}"));
    write_json(fz_path(path, dir, "tokenizer.json"), j);
    cJSON_Delete(j);
    static const char cfg[] = "{\"pad_token\": \"<|im_end|>\", \"truncation_side\": \"left\"}";
    fz_write(fz_path(path, dir, "tokenizer_config.json"), cfg, sizeof cfg - 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *root = fz_scratch("encode");
    char dir[N_TOK][PATH_MAX], path[PATH_MAX];
    for (int i = 0; i < N_TOK; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        fz_mkdir(fz_path(dir[i], root, name));
    }
    fz_link_fixture("bert-tiny/vocab.txt", fz_path(path, dir[0], "vocab.txt"));
    fz_link_fixture("bert-tiny/tokenizer_config.json", fz_path(path, dir[0], "tokenizer_config.json"));
    fz_link_fixture("bert-tiny/vocab.txt", fz_path(path, dir[1], "vocab.txt"));
    static const char cased[] = "{\"do_lower_case\": false, \"strip_accents\": false, \"tokenize_chinese_chars\": false}";
    fz_write(fz_path(path, dir[1], "tokenizer_config.json"), cased, sizeof cased - 1);
    fz_link_fixture("bpe-tiny/tokenizer.json", fz_path(path, dir[2], "tokenizer.json"));
    fz_link_fixture("bpe-tiny/tokenizer_config.json", fz_path(path, dir[2], "tokenizer_config.json"));
    make_bpe_variant(dir[3]);
    for (int i = 0; i < N_TOK; i++) {
        gp_err err = {0};
        if (gp_tokenizer_load(dir[i], &g_tok[i], &err) != GP_OK) {
            fprintf(stderr, "fuzz: tokenizer %d: %s\n", i, err.msg);
            abort();
        }
    }
    fz_mkdir(fz_path(g_learn_dir, root, "learned"));
    gp_log_set_level(0);
    return 0;
}

/* The NUL-separated texts of data, at most max. */
static int texts_of(const uint8_t *data, size_t size, char sep, char **texts, int max) {
    const uint8_t *part[16];
    size_t len[16];
    int n = fz_split(data, size, (uint8_t)sep, part, len, max < 16 ? max : 16);
    for (int i = 0; i < n; i++) texts[i] = fz_strndup(part[i], len[i]);
    return n;
}

static void count_word(void *ctx, const int32_t *cp, int n) {
    FZ_ASSERT(n > 0 && cp != NULL);
    (*(int *)ctx)++;
}

static void learn(const uint8_t *text, size_t len, int vocab_size, bool lower) {
    char *lines[16];
    int n = texts_of(text, len, '\n', lines, 16);
    char path[PATH_MAX];
    gp_err err = {0};
    FZ_ASSERT(gp_wordpiece_learn((const char *const *)lines, n, vocab_size, lower,
                                 fz_path(path, g_learn_dir, "vocab.txt"), &err) == GP_OK);
    for (int i = 0; i < n; i++) free(lines[i]);
    gp_tokenizer *t = NULL;
    /* the five special tokens come first, so any size from 5 up loads */
    FZ_ASSERT(gp_tokenizer_load(g_learn_dir, &t, &err) == GP_OK);
    FZ_ASSERT(gp_tokenizer_vocab_size(t) <= vocab_size);
    fz_check_tokenizer(t);
    fz_check_encode(t, (const char *)text, len, 64);
    gp_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const int k = data[0] % N_TOK, use = data[0] / N_TOK % 4;
    const int limit = data[1] == 255 ? 512 : data[1];
    const gp_tokenizer *t = g_tok[k];
    const uint8_t *text = data + 2;
    const size_t len = size - 2;
    if (use == 0) {
        fz_check_encode(t, (const char *)text, len, limit);
    } else if (use == 1) {
        char *texts[16];
        const int n = texts_of(text, len, '\0', texts, 16);
        gp_batch b;
        gp_tokenizer_batch(t, (const char *const *)texts, n, limit, &b);
        FZ_ASSERT(b.B == n);
        for (int i = 0; i < n; i++) {
            int real = 0;
            for (int j = 0; j < b.T; j++) real += b.mask[(size_t)i * b.T + j];
            int32_t *ids;
            const int want = gp_tokenizer_encode(t, texts[i], strlen(texts[i]), limit, &ids);
            FZ_ASSERT(real == want);
            FZ_ASSERT(want == 0 || memcmp(ids, b.ids + (size_t)i * b.T, (size_t)want * sizeof(int32_t)) == 0);
            free(ids);
            free(texts[i]);
        }
        gp_batch_free(&b);
    } else if (use == 2) {
        char **pieces = NULL;
        const int n = gp_bpe_pieces(t, (const char *)text, len, &pieces);
        if (n < 0) {
            int words = 0;
            gp_bert_words((const char *)text, len, g_lower[k], count_word, &words);
        }
        for (int i = 0; i < n; i++) {
            FZ_ASSERT(pieces[i] != NULL);
            free(pieces[i]);
        }
        free(pieces);
    } else {
        learn(text, len, 5 + data[1], data[0] & 0x40);
    }
    return 0;
}
