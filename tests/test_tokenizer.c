/* test_tokenizer.c — WordPiece cases with hand-checked ids (a 34-token vocabulary written by
 * the test), in the behaviour of BertTokenizerFast. */
#include "test_util.h"

#include "gaprune/tokenizer.h"
#include "gaprune/vocab.h"

static const char *k_vocab =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n" /* 0-4 */
    "hello\nworld\nh\n##é\n##llo\n"        /* 5-9 */
    "don\n'\nt\n!\n123\n"                  /* 10-14 */
    "##45\n##4\n##5\n日\n本\n"             /* 15-19 */
    "a\n##a\nab\ncd\nb\n"                  /* 20-24 */
    "c\n,\n##d\ncaf\nH\n"                  /* 25-29 */
    "é\nd\n##b\n##cd\n";                   /* 30-33 */

typedef struct {
    char *dir_lower, *dir_cased;
    gp_tokenizer *lower, *cased;
} fixture;

static char *make_dir(int lower) {
    char *d = tu_mkdtemp(), p[4200];
    snprintf(p, sizeof p, "%s/vocab.txt", d);
    tu_write(p, k_vocab);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", d);
    tu_write(p, lower ? "{\"do_lower_case\": true}" : "{\"do_lower_case\": false, \"strip_accents\": null}");
    return d;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    gp_err err = {0};
    f->dir_lower = make_dir(1);
    f->dir_cased = make_dir(0);
    if (gp_tokenizer_load(f->dir_lower, &f->lower, &err) || gp_tokenizer_load(f->dir_cased, &f->cased, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    gp_tokenizer_free(f->lower);
    gp_tokenizer_free(f->cased);
    tu_rmtree(f->dir_lower);
    tu_rmtree(f->dir_cased);
    free(f->dir_lower);
    free(f->dir_cased);
    free(f);
    return 0;
}

#define EXPECT(tok, text, ...)                                                                                  \
    do {                                                                                                        \
        const int32_t w_[] = {__VA_ARGS__};                                                                     \
        tu_expect_ids(tok, text, sizeof(text) - 1, 512, w_, (int)(sizeof w_ / sizeof w_[0]));                          \
    } while (0)

static void test_case_and_accents(void **state) {
    fixture *f = *state;
    EXPECT(f->lower, "Héllo WÖRLD", 2, 5, 6, 3);      /* lower case, NFD, Mn marks dropped */
    EXPECT(f->lower, "He\xcc\x81llo", 2, 5, 3);       /* decomposed é: the same word */
    EXPECT(f->cased, "Héllo", 2, 29, 8, 9, 3);        /* cased: H ##é ##llo */
    EXPECT(f->cased, "hello World", 2, 5, 1, 3);      /* "World" is not in the vocabulary */
    EXPECT(f->cased, "é", 2, 30, 3);
}

static void test_cjk_and_punctuation(void **state) {
    fixture *f = *state;
    EXPECT(f->lower, "日本語", 2, 18, 19, 1, 3);        /* each ideograph is a word; 語 is unknown */
    EXPECT(f->lower, "don't!!", 2, 10, 11, 12, 13, 13, 3);
    EXPECT(f->lower, "hello,world", 2, 5, 26, 6, 3);
}

static void test_numbers_and_unknown(void **state) {
    fixture *f = *state;
    EXPECT(f->lower, "12345", 2, 14, 15, 3);          /* longest match first: 123 ##45 */
    EXPECT(f->lower, "1234", 2, 14, 16, 3);           /* 123 ##4 */
    EXPECT(f->lower, "qqq", 2, 1, 3);                 /* no piece matches */
    EXPECT(f->lower, "abx", 2, 1, 3);                 /* a prefix matches but the rest does not: whole word [UNK] */
}

static void test_long_words(void **state) {
    fixture *f = *state;
    char w[102];
    memset(w, 'a', 101);
    w[101] = '\0';
    const int32_t unk[] = {2, 1, 3};
    tu_expect_ids(f->lower, w, 101, 512, unk, 3); /* over 100 characters: [UNK] */
    int32_t want[102];
    want[0] = 2, want[1] = 20;
    for (int i = 2; i <= 100; i++) want[i] = 21;
    want[101] = 3;
    tu_expect_ids(f->lower, w, 100, 512, want, 102); /* exactly 100: a ##a × 99 */
}

static void test_empty_and_truncation(void **state) {
    fixture *f = *state;
    EXPECT(f->lower, "", 2, 3);
    EXPECT(f->lower, "   \t\n ", 2, 3);
    const int32_t want[] = {2, 5, 6, 3};
    tu_expect_ids(f->lower, "hello world hello world", 23, 4, want, 4); /* max_length 4 keeps room for [CLS] [SEP] */
    const int32_t two[] = {2, 3};
    tu_expect_ids(f->lower, "hello", 5, 2, two, 2);
}

static void test_invalid_utf8_and_controls(void **state) {
    fixture *f = *state;
    EXPECT(f->lower, "ab\xff\xfe" "cd", 2, 22, 33, 3);  /* invalid bytes -> U+FFFD -> dropped */
    EXPECT(f->lower, "caf\xc3", 2, 28, 3);               /* truncated sequence at the end */
    EXPECT(f->lower, "\xe0\x80\xaf", 2, 3);              /* overlong encoding */
    EXPECT(f->lower, "a\x01" "b\tc\xe2\x80\x8b" "d", 2, 22, 23, 3); /* control removed, tab is a space, ZWSP removed */
    EXPECT(f->lower, "a\xe3\x80\x80" "b\xc2\xa0" "c", 2, 20, 24, 25, 3); /* ideographic and no-break spaces */
}

static void test_special_tokens_in_text(void **state) {
    fixture *f = *state;
    EXPECT(f->lower, "[SEP]hello", 2, 3, 5, 3);
    EXPECT(f->lower, "hello [MASK] world", 2, 5, 4, 6, 3);
    EXPECT(f->lower, "[sep]", 2, 1, 1, 1, 3); /* case matters: "[", "sep", "]" are three (unknown) words */
}

static void test_batch_padding(void **state) {
    fixture *f = *state;
    const char *texts[] = {"hello", "hello world"};
    gp_batch b;
    gp_tokenizer_batch(f->lower, texts, 2, 512, &b);
    assert_int_equal(b.B, 2);
    assert_int_equal(b.T, 4);
    const int32_t ids[] = {2, 5, 3, 0, 2, 5, 6, 3};
    const uint8_t mask[] = {1, 1, 1, 0, 1, 1, 1, 1};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(b.ids[i], ids[i]);
        assert_int_equal(b.mask[i], mask[i]);
    }
    gp_batch_free(&b);
}

static void test_vocab_from_tokenizer_json(void **state) {
    (void)state;
    char *d = tu_mkdtemp(), p[4200];
    snprintf(p, sizeof p, "%s/tokenizer.json", d);
    tu_write(p, "{\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": false, \"strip_accents\": null,"
                " \"clean_text\": true, \"handle_chinese_chars\": true},"
                " \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[PAD]\": 0, \"[UNK]\": 1, \"[CLS]\": 2,"
                " \"[SEP]\": 3, \"Hi\": 4, \"hi\": 5}}}");
    gp_tokenizer *t;
    gp_err err = {0};
    assert_int_equal(gp_tokenizer_load(d, &t, &err), GP_OK);
    EXPECT(t, "Hi hi", 2, 4, 5, 3); /* normalizer lowercase false, no tokenizer_config to override it */
    gp_tokenizer_free(t);
    /* A special token missing from the vocabulary is an input error naming it. */
    tu_write(p, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"[CLS]\": 1, \"[SEP]\": 2}}}");
    assert_int_equal(gp_tokenizer_load(d, &t, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "[PAD]"));
    /* issue 14: one id of 99,999,999 sized a table of 100 million tokens (800 MB); ids are
     * bounded by the entries the file holds */
    tu_write(p, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[PAD]\": 0, \"[UNK]\": 1, \"[CLS]\": 2,"
                " \"[SEP]\": 3, \"hi\": 99999999}}}");
    assert_int_equal(gp_tokenizer_load(d, &t, &err), GP_EINPUT);
    printf("    %s\n", err.msg);
    assert_non_null(strstr(err.msg, "tokenizer.json: model.vocab[\"hi\"] is not a token id (an integer in [0, 5)"));
    tu_write(p, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[PAD]\": 0, \"[UNK]\": 1, \"[CLS]\": 2,"
                " \"[SEP]\": 3, \"hi\": 4.5}}}");
    assert_int_equal(gp_tokenizer_load(d, &t, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "model.vocab[\"hi\"]"));
    tu_rmtree(d);
    free(d);
}

/* Worked by hand: "aaab" x3 and "ab" start as a ##a ##a ##b and a ##b (ids 5..7); the pairs
 * (a,##a), (##a,##a), (##a,##b) tie at 3 and the lowest ids win: "aa" (8); then (##a,##b) beats
 * (aa,##a): "##ab" (9); then "aaab" (10); (a,##b) occurs once and is not merged. */
static void test_vocab_learn(void **state) {
    (void)state;
    char *d = tu_mkdtemp(), p[4200];
    snprintf(p, sizeof p, "%s/vocab.txt", d);
    const char *texts[] = {"aaab AAAB", "aaab ab"};
    gp_err err = {0};
    assert_int_equal(gp_wordpiece_learn(texts, 2, 12, true, p, &err), GP_OK);
    FILE *f = fopen(p, "r");
    char got[4096] = "", line[64];
    while (fgets(line, sizeof line, f)) strcat(got, line);
    fclose(f);
    assert_string_equal(got, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n##a\n##b\naa\n##ab\naaab\n[unused0]\n");
    /* and the tokenizer reads it back */
    snprintf(p, sizeof p, "%s/tokenizer_config.json", d);
    tu_write(p, "{\"do_lower_case\": true}");
    gp_tokenizer *t;
    assert_int_equal(gp_tokenizer_load(d, &t, &err), GP_OK);
    EXPECT(t, "AAAB ab aab", 2, 10, 5, 7, 8, 7, 3);
    gp_tokenizer_free(t);
    tu_rmtree(d);
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_case_and_accents),
        cmocka_unit_test(test_cjk_and_punctuation),
        cmocka_unit_test(test_numbers_and_unknown),
        cmocka_unit_test(test_long_words),
        cmocka_unit_test(test_empty_and_truncation),
        cmocka_unit_test(test_invalid_utf8_and_controls),
        cmocka_unit_test(test_special_tokens_in_text),
        cmocka_unit_test(test_batch_padding),
        cmocka_unit_test(test_vocab_from_tokenizer_json),
        cmocka_unit_test(test_vocab_learn),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, setup, teardown);
}
