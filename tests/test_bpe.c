/* test_bpe.c — the byte-level BPE tokenizer on tests/fixtures/bpe-tiny (Qwen2's pre-tokenizer,
 * 220 merges, see tests/reference/make_bpe_fixture.py): pre-tokenizer pieces checked by hand,
 * ids against expected.jsonl (written by tests/reference/bpe_ref.py, a second implementation),
 * the tokenizer.json variants that Qwen-style files use, malformed files, long texts, and the
 * `gaprune tokenize` command on the folder. */
#include "test_util.h"

#include <cJSON.h>
#include <sys/wait.h>
#include <time.h>

#include "../src/text/tokenizer_impl.h"
#include "gaprune/tokenizer.h"

#define BPE_DIR FIXTURES "/bpe-tiny"
#define EOT 476 /* <|endoftext|> */
#define IM_START 477
#define IM_END 478

static gp_tokenizer *g_tok;

static int setup(void **state) {
    (void)state;
    gp_err err = {0};
    if (gp_tokenizer_load(BPE_DIR, &g_tok, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    gp_tokenizer_free(g_tok);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len) {
    char *b = tu_read_file(path, len);
    assert_non_null(b);
    return b;
}

static void check_pieces(const gp_tokenizer *t, const char *text, size_t len, const char *const *want, int n) {
    char **got;
    int ng = gp_bpe_pieces(t, text, len, &got);
    int ok = ng == n;
    for (int i = 0; ok && i < n; i++) ok = strcmp(got[i], want[i]) == 0;
    if (!ok) {
        fprintf(stderr, "text \"%.*s\": got", (int)(len > 60 ? 60 : len), text);
        for (int i = 0; i < ng; i++) fprintf(stderr, " [%s]", got[i]);
        fprintf(stderr, ", want");
        for (int i = 0; i < n; i++) fprintf(stderr, " [%s]", want[i]);
        fprintf(stderr, "\n");
    }
    for (int i = 0; i < ng; i++) free(got[i]);
    free(got);
    assert_true(ok);
}

#define PIECES(t, text, ...)                                                                                           \
    do {                                                                                                               \
        const char *const w_[] = {__VA_ARGS__};                                                                        \
        check_pieces(t, text, sizeof(text) - 1, w_, (int)(sizeof w_ / sizeof w_[0]));                                  \
    } while (0)

#define IDS(t, text, max_len, ...)                                                                                     \
    do {                                                                                                               \
        const int32_t w_[] = {__VA_ARGS__};                                                                            \
        tu_expect_ids(t, text, sizeof(text) - 1, max_len, w_, (int)(sizeof w_ / sizeof w_[0]));                            \
    } while (0)

/* The byte-level form of a text, written out independently of the library: GPT-2's table. */
static size_t byte_level(const uint8_t *s, size_t n, char *out) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int b = s[i], c = b, extra = 0;
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (!printable) {
            for (int x = 0; x < b; x++) extra += !((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE));
            c = 0x100 + extra;
        }
        if (c < 0x80) {
            out[m++] = (char)c;
        } else {
            out[m++] = (char)(0xC0 | (c >> 6));
            out[m++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[m] = '\0';
    return m;
}

/* The tokens of an encoding (without the appended <|endoftext|>) spell the text's bytes: nothing
 * is lost or repeated, whatever merges applied. Returns the number of ids. */
static int assert_spells(const gp_tokenizer *t, const char *text, size_t len) {
    int32_t *ids;
    int n = gp_tokenizer_encode(t, text, len, 1 << 30, &ids);
    assert_true(n >= 1);
    assert_int_equal(ids[n - 1], EOT);
    char *want = malloc(2 * len + 1), *got = malloc(2 * len + 1);
    size_t wl = byte_level((const uint8_t *)text, len, want), gl = 0;
    for (int i = 0; i + 1 < n; i++) {
        const char *s = gp_tokenizer_token(t, ids[i]);
        assert_non_null(s);
        size_t sl = strlen(s);
        assert_true(gl + sl <= wl);
        memcpy(got + gl, s, sl);
        gl += sl;
    }
    assert_int_equal(gl, wl);
    assert_memory_equal(got, want, wl);
    free(want);
    free(got);
    free(ids);
    return n - 1;
}

static cJSON *fixture_json(void) {
    char *text = slurp(BPE_DIR "/tokenizer.json", NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

/* Loads a tokenizer.json (and a tokenizer_config.json text, or none) from a scratch folder. */
static gp_status load_json(const cJSON *tj, const char *cfg, gp_tokenizer **t, gp_err *err) {
    char *d = tu_mkdtemp(), p[4200];
    char *text = cJSON_PrintUnformatted(tj);
    snprintf(p, sizeof p, "%s/tokenizer.json", d);
    tu_write(p, text);
    free(text);
    if (cfg) {
        snprintf(p, sizeof p, "%s/tokenizer_config.json", d);
        tu_write(p, cfg);
    }
    *t = NULL;
    gp_status rc = gp_tokenizer_load(d, t, err);
    tu_rmtree(d);
    free(d);
    return rc;
}

static cJSON *obj_path(cJSON *root, const char *a, const char *b) {
    cJSON *o = cJSON_GetObjectItemCaseSensitive(root, a);
    return b ? cJSON_GetObjectItemCaseSensitive(o, b) : o;
}

/* Replaces root[key] by the JSON text. */
static void set_json(cJSON *root, const char *key, const char *json) {
    cJSON *v = cJSON_Parse(json);
    assert_non_null(v);
    if (cJSON_GetObjectItemCaseSensitive(root, key)) cJSON_ReplaceItemInObjectCaseSensitive(root, key, v);
    else cJSON_AddItemToObject(root, key, v);
}

/* ---- the fixture as shipped ------------------------------------------------------------------ */

static void test_load(void **state) {
    (void)state;
    assert_string_equal(gp_tokenizer_describe(g_tok), "byte-level BPE, 479 tokens, NFC, appends <|endoftext|>");
    assert_int_equal(gp_tokenizer_vocab_size(g_tok), 479);
    assert_int_equal(gp_tokenizer_max_id(g_tok), 479);
    assert_int_equal(gp_tokenizer_pad_id(g_tok), EOT);
    assert_string_equal(gp_tokenizer_token(g_tok, EOT), "<|endoftext|>");
    assert_string_equal(gp_tokenizer_token(g_tok, IM_END), "<|im_end|>");
    assert_string_equal(gp_tokenizer_token(g_tok, 0), "!");
    assert_string_equal(gp_tokenizer_token(g_tok, 64), "a"); /* bytes 0x21.. are ids 0.. */
    assert_string_equal(gp_tokenizer_token(g_tok, 188),
                        "\xc4\x80"); /* byte 0x00 is U+0100, after the 188 printable ones */
    assert_string_equal(gp_tokenizer_token(g_tok, 220), "\xc4\xa0"); /* space is U+0120 "Ġ" */
    assert_null(gp_tokenizer_token(g_tok, 479));
    assert_null(gp_tokenizer_token(g_tok, -1));
}

/* The Qwen2 split pattern, rule by rule. */
static void test_pieces_english(void **state) {
    (void)state;
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d): contractions, in any case */
    PIECES(g_tok, "I'm they'LL WE'VE it'S", "I", "'m", " they", "'LL", " WE", "'VE", " it", "'S");
    PIECES(g_tok, "don't", "don", "'t");
    /* an apostrophe without a known suffix is punctuation: ' ?[^\s\p{L}\p{N}]+' */
    PIECES(g_tok, "rock'n'roll", "rock", "'n", "'roll");
    /* \p{N}: one digit per piece */
    PIECES(g_tok, "2025", "2", "0", "2", "5");
    PIECES(g_tok, "in 1,234.75", "in", " ", "1", ",", "2", "3", "4", ".", "7", "5");
    /* [^\r\n\p{L}\p{N}]?\p{L}+: one non-letter glued to the word after it */
    PIECES(g_tok, "Hello world", "Hello", " world");
    PIECES(g_tok, "(x)", "(x", ")");
    /* punctuation runs stay whole, newlines after them join */
    PIECES(g_tok, "wow!!! ok?!\n\nyes", "wow", "!!!", " ok", "?!\n\n", "yes");
}

static void test_pieces_whitespace(void **state) {
    (void)state;
    /* \s+(?!\S) stops one space before a word, so the word keeps its leading space */
    PIECES(g_tok, "a   b\n\n c", "a", "  ", " b", "\n\n", " c");
    /* \s*[\r\n]+ takes the spaces before a newline along */
    PIECES(g_tok, "a  \n  b", "a", "  \n", " ", " b");
    /* at the end of the text \s+(?!\S) takes every space */
    PIECES(g_tok, "end   ", "end", "   ");
    PIECES(g_tok, "\t\tx", "\t", "\tx");
    PIECES(g_tok, "x\r\ny", "x", "\r\n", "y");
    PIECES(g_tok, "   ", "   ");
    /* \s is Unicode White_Space, as in Oniguruma (HF's engine): U+180E (a format character since
     * Unicode 6.3, still in PCRE2's \s) joins the apostrophe as punctuation, so "'d" is no
     * contraction here */
    PIECES(g_tok, "x\xe1\xa0\x8e'd", "x", "\xe1\xa0\x8e'", "d");
    PIECES(g_tok,
           "a\xe3\x80\x80\xe3\x80\x80"
           "b",
           "a", "\xe3\x80\x80",
           "\xe3\x80\x80"
           "b"); /* U+3000 is white space */
}

static void test_pieces_scripts(void **state) {
    (void)state;
    PIECES(g_tok, "机器学习是人工智能。", "机器学习是人工智能", "。");
    PIECES(g_tok, "Привет, мир!", "Привет", ",", " мир", "!");
    PIECES(g_tok, "Größe über", "Größe", " über");
    PIECES(g_tok, "x 🙂🚀 y", "x", " 🙂🚀", " y"); /* emoji are not letters: a symbol run */
    /* the emoji's four bytes are four byte-level symbols; here no merge joins them all */
    assert_true(assert_spells(g_tok, "🙂", 4) >= 2);
    assert_spells(g_tok, "机器学习是人工智能。", strlen("机器学习是人工智能。"));
    assert_spells(g_tok, "Привет, мир!", strlen("Привет, мир!"));
}

static void test_added_tokens(void **state) {
    (void)state;
    PIECES(g_tok, "a<|im_start|>b", "a", "<|im_start|>", "b");
    IDS(g_tok, "a<|im_start|>b", 512, 64, IM_START, 65, EOT); /* a, b: bytes 0x61, 0x62 -> ids 64, 65 */
    IDS(g_tok, "<|endoftext|><|endoftext|>", 512, EOT, EOT, EOT);
    /* the text on each side is tokenized alone: the space before a token is a piece of its own */
    PIECES(g_tok, "hi <|im_end|>\n", "hi", " ", "<|im_end|>", "\n");
    /* incomplete tokens are plain text */
    PIECES(g_tok, "<|im_start <|im_end|", "<|", "im", "_start", " <|", "im", "_end", "|");
}

static void test_nfc(void **state) {
    (void)state;
    int32_t *a, *b;
    int na = gp_tokenizer_encode(g_tok, "e\xcc\x81l\xc3\xa8ve", strlen("e\xcc\x81l\xc3\xa8ve"), 512, &a);
    int nb = gp_tokenizer_encode(g_tok, "\xc3\xa9l\xc3\xa8ve", strlen("\xc3\xa9l\xc3\xa8ve"), 512, &b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na * sizeof(int32_t));
    free(a);
    free(b);
    PIECES(g_tok, "e\xcc\x81", "\xc3\xa9");
}

static void test_invalid_utf8(void **state) {
    (void)state;
    /* each bad byte is U+FFFD (EF BF BD), then tokenized as text */
    const char bad[] = "a\xff"
                       "b\xe2\x82"
                       "c\xc3";
    const char fixed[] = "a\xef\xbf\xbd"
                         "b\xef\xbf\xbd\xef\xbf\xbd"
                         "c\xef\xbf\xbd";
    int32_t *x, *y, *z;
    int nx = gp_tokenizer_encode(g_tok, bad, sizeof bad - 1, 512, &x);
    int ny = gp_tokenizer_encode(g_tok, bad, sizeof bad - 1, 512, &y);
    int nz = gp_tokenizer_encode(g_tok, fixed, sizeof fixed - 1, 512, &z);
    assert_int_equal(nx, ny);
    assert_int_equal(nx, nz);
    assert_memory_equal(x, y, (size_t)nx * sizeof(int32_t));
    assert_memory_equal(x, z, (size_t)nx * sizeof(int32_t));
    free(x);
    free(y);
    free(z);
    /* overlong, surrogate, lone continuation and NUL bytes: no crash, every byte accounted for */
    const char odd[] = "\xe0\x80\xaf\xed\xa0\x80\x80\x00z";
    int32_t *ids;
    int n = gp_tokenizer_encode(g_tok, odd, sizeof odd - 1, 512, &ids);
    assert_true(n > 1);
    assert_int_equal(ids[n - 1], EOT);
    free(ids);
    assert_spells(g_tok, "\x00\x01\x7f", 3); /* valid control bytes map to U+0100 onwards */
}

static void test_truncation_and_empty(void **state) {
    (void)state;
    IDS(g_tok, "", 512, EOT);
    /* issue 14: no tokens left e.ids NULL, and the copy computed NULL + 0 (clang's UBSan) */
    int32_t *none;
    assert_int_equal(gp_tokenizer_encode(g_tok, NULL, 0, 512, &none), 1);
    assert_int_equal(none[0], EOT);
    free(none);
    /* "a b c d" is a, Ġb (merges[38] "Ġ b", id 256 + 38), Ġ c (no merge), Ġd (merges[10]): three
     * of them, then room for <|endoftext|> */
    IDS(g_tok, "a b c d", 512, 64, 294, 220, 66, 266, EOT);
    IDS(g_tok, "a b c d", 4, 64, 294, 220, EOT);
    IDS(g_tok, "a b c d", 1, EOT);
    IDS(g_tok, "a b c d", 0, EOT); /* as HF: the special token even when max_len leaves no room */
    IDS(g_tok, "a<|im_start|>b", 2, 64, EOT);
    const char *texts[] = {"a", "a b"};
    gp_batch b;
    gp_tokenizer_batch(g_tok, texts, 2, 512, &b);
    assert_int_equal(b.T, 3);
    const int32_t ids[] = {64, EOT, EOT, 64, 294, EOT};
    const uint8_t mask[] = {1, 1, 0, 1, 1, 1};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(b.ids[i], ids[i]);
        assert_int_equal(b.mask[i], mask[i]);
    }
    gp_batch_free(&b);
}

static void hex_decode(const char *hex, char *out, size_t *n) {
    size_t m = strlen(hex) / 2;
    for (size_t i = 0; i < m; i++) {
        char two[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        out[i] = (char)strtoul(two, NULL, 16);
    }
    *n = m;
}

/* Every line of expected.jsonl: {"text" or "hex", "max_len"?, "pieces", "ids"}; expected ids
 * from `shift` on are one higher in t (0: none). */
static int check_reference(const gp_tokenizer *t, bool pieces, int32_t shift) {
    char *all = slurp(BPE_DIR "/expected.jsonl", NULL);
    int count = 0;
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *r = cJSON_Parse(line);
        assert_non_null(r);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(r, "text");
        const cJSON *hex = cJSON_GetObjectItemCaseSensitive(r, "hex");
        const cJSON *ml = cJSON_GetObjectItemCaseSensitive(r, "max_len");
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(r, "ids");
        const cJSON *wp = cJSON_GetObjectItemCaseSensitive(r, "pieces");
        char buf[4096];
        size_t len;
        if (cJSON_IsString(hex)) hex_decode(hex->valuestring, buf, &len);
        else {
            len = strlen(text->valuestring);
            assert_true(len < sizeof buf);
            memcpy(buf, text->valuestring, len);
        }
        int n = cJSON_GetArraySize(want);
        int32_t *w = malloc((size_t)n * sizeof(int32_t));
        for (int i = 0; i < n; i++) {
            w[i] = (int32_t)cJSON_GetArrayItem(want, i)->valuedouble;
            if (shift && w[i] >= shift) w[i]++;
        }
        tu_expect_ids(t, buf, len, cJSON_IsNumber(ml) ? (int)ml->valuedouble : 1 << 30, w, n);
        free(w);
        if (pieces) {
            int np = cJSON_GetArraySize(wp);
            const char **p = malloc((size_t)(np ? np : 1) * sizeof(char *));
            for (int i = 0; i < np; i++) p[i] = cJSON_GetArrayItem(wp, i)->valuestring;
            check_pieces(t, buf, len, p, np);
            free(p);
        }
        cJSON_Delete(r);
        count++;
    }
    free(all);
    return count;
}

static void test_reference(void **state) {
    (void)state;
    assert_int_equal(check_reference(g_tok, true, 0), 31);
}

/* ---- variants of tokenizer.json ------------------------------------------------------------- */

/* Newer files write merges as [a, b] pairs. */
static void test_merges_as_pairs(void **state) {
    (void)state;
    cJSON *tj = fixture_json();
    cJSON *merges = obj_path(tj, "model", "merges"), *pairs = cJSON_CreateArray();
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        char *s = strdup(m->valuestring), *sp = strchr(s, ' ');
        *sp = '\0';
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(s));
        cJSON_AddItemToArray(pair, cJSON_CreateString(sp + 1));
        cJSON_AddItemToArray(pairs, pair);
        free(s);
    }
    cJSON_ReplaceItemInObjectCaseSensitive(obj_path(tj, "model", NULL), "merges", pairs);
    gp_tokenizer *t;
    gp_err err = {0};
    assert_int_equal(load_json(tj, NULL, &t, &err), GP_OK);
    assert_int_equal(check_reference(t, false, 0), 31);
    gp_tokenizer_free(t);
    /* a pair listed twice takes its last rank: "e n" (merges[3]) again at the end lets "n d"
     * (merges[21], id 277) go first, so " end" is no longer "Ġend" (merges[27], id 283) */
    IDS(g_tok, " end", 512, 283, EOT);
    cJSON_AddItemToArray(pairs, cJSON_Parse("[\"e\", \"n\"]"));
    assert_int_equal(load_json(tj, NULL, &t, &err), GP_OK);
    IDS(t, " end", 512, 220, 68, 277, EOT);
    gp_tokenizer_free(t);
    cJSON_Delete(tj);
}

static void test_processor_and_normalizer_forms(void **state) {
    (void)state;
    cJSON *tj = fixture_json();
    gp_tokenizer *t;
    gp_err err = {0};
    /* Sequence [ByteLevel, TemplateProcessing] with a prefix, and a Sequence normalizer */
    set_json(tj, "post_processor",
             "{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
             " \"trim_offsets\": false, \"use_regex\": false}, {\"type\": \"TemplateProcessing\", \"single\":"
             " [{\"SpecialToken\": {\"id\": \"<|im_start|>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", "
             "\"type_id\": 0}},"
             " {\"SpecialToken\": {\"id\": \"<|im_end|>\", \"type_id\": 0}}], \"special_tokens\": {"
             "\"<|im_start|>\": {\"id\": \"<|im_start|>\", \"ids\": [477], \"tokens\": [\"<|im_start|>\"]},"
             "\"<|im_end|>\": {\"id\": \"<|im_end|>\", \"ids\": [478], \"tokens\": [\"<|im_end|>\"]}}}]}");
    set_json(tj, "normalizer", "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}]}");
    assert_int_equal(load_json(tj, NULL, &t, &err), GP_OK);
    assert_string_equal(gp_tokenizer_describe(t),
                        "byte-level BPE, 479 tokens, NFC, prepends <|im_start|>, appends <|im_end|>");
    IDS(t, "a b", 512, IM_START, 64, 294, IM_END);
    IDS(t, "a b", 3, IM_START, 64, IM_END);
    IDS(t, "e\xcc\x81", 512, IM_START, 289, IM_END); /* NFC é = C3 A9 = "Ã©", merges[33] */
    gp_tokenizer_free(t);
    /* no normalizer, ByteLevel post-processor only: nothing appended, e + U+0301 stays two characters */
    set_json(tj, "normalizer", "null");
    set_json(tj, "post_processor", "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false}");
    assert_int_equal(load_json(tj, "{}", &t, &err), GP_OK);
    assert_string_equal(gp_tokenizer_describe(t), "byte-level BPE, 479 tokens");
    int32_t *none;
    assert_int_equal(gp_tokenizer_encode(t, "", 0, 512, &none), 0); /* nothing at all, in a freeable array */
    free(none);
    /* U+0301 is a mark, not a letter: a piece of its own, bytes CC 81 -> "Ì" (106 + 0xCC - 0xAE) and
     * U+0121 (188 + 35: the 36th unprintable byte) */
    PIECES(t, "e\xcc\x81", "e", "\xcc\x81");
    IDS(t, "e\xcc\x81", 512, 68, 136, 223);
    assert_int_equal(gp_tokenizer_pad_id(t), EOT); /* no pad_token: <|endoftext|> */
    gp_tokenizer_free(t);
    cJSON_Delete(tj);
}

/* A lone ByteLevel pre-tokenizer with use_regex: GPT-2's pattern (no case folding, digit runs). */
static void test_gpt2_pre_tokenizer(void **state) {
    (void)state;
    cJSON *tj = fixture_json();
    set_json(tj, "pre_tokenizer",
             "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true,"
             " \"use_regex\": true}");
    gp_tokenizer *t;
    gp_err err = {0};
    assert_int_equal(load_json(tj, NULL, &t, &err), GP_OK);
    PIECES(t, "I'm they'LL 2025 a   b", "I", "'m", " they", "'", "LL", " 2025", " a", "  ", " b");
    gp_tokenizer_free(t);
    /* a Split before a use_regex ByteLevel: both apply, the second to each piece of the first */
    set_json(tj, "pre_tokenizer",
             "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"-\"},"
             " \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
             " \"use_regex\": true}]}");
    assert_int_equal(load_json(tj, NULL, &t, &err), GP_OK);
    PIECES(t, "ab cd-ef", "ab", " cd", "-", "ef");
    gp_tokenizer_free(t);
    cJSON_Delete(tj);
}

/* A vocabulary token that no merge path makes: "Ġxyz" at id 476, the added tokens one id up. */
static cJSON *with_xyz(void) {
    cJSON *tj = fixture_json();
    cJSON_AddNumberToObject(obj_path(tj, "model", "vocab"), "\xc4\xa0xyz", 476);
    cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    for (int k = 0; k < 3; k++)
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(added, k), "id"), 477 + k);
    cJSON *eot = obj_path(obj_path(tj, "post_processor", "special_tokens"), "<|endoftext|>", NULL);
    set_json(eot, "ids", "[477]");
    return tj;
}

static void test_ignore_merges(void **state) {
    (void)state;
    cJSON *tj = with_xyz();
    gp_tokenizer *t;
    gp_err err = {0};
    assert_int_equal(load_json(tj, NULL, &t, &err), GP_OK);
    IDS(t, " xyz", 512, 220, 87, 88, 89, 477); /* merges only: four byte tokens */
    assert_int_equal(gp_tokenizer_max_id(t), 480);
    gp_tokenizer_free(t);
    cJSON_ReplaceItemInObjectCaseSensitive(obj_path(tj, "model", NULL), "ignore_merges", cJSON_CreateTrue());
    assert_int_equal(load_json(tj, NULL, &t, &err), GP_OK);
    IDS(t, " xyz", 512, 476, 477); /* the whole word is a token */
    IDS(t, "a<|im_start|>b", 512, 64, 478, 65, 477);
    assert_int_equal(check_reference(t, false, 476), 31); /* the fixture's own words come out the same */
    gp_tokenizer_free(t);
    cJSON_Delete(tj);
}

static void test_strip_and_config(void **state) {
    (void)state;
    cJSON *tj = fixture_json();
    cJSON *im_end = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tj, "added_tokens"), 2);
    cJSON_ReplaceItemInObjectCaseSensitive(im_end, "lstrip", cJSON_CreateTrue());
    cJSON_ReplaceItemInObjectCaseSensitive(im_end, "rstrip", cJSON_CreateTrue());
    gp_tokenizer *t;
    gp_err err = {0};
    /* pad_token as {"content": ...}, truncation from the left */
    assert_int_equal(
        load_json(tj, "{\"pad_token\": {\"content\": \"<|im_end|>\"}, \"truncation_side\": \"left\"}", &t, &err),
        GP_OK);
    assert_int_equal(gp_tokenizer_pad_id(t), IM_END);
    PIECES(t, "a \t<|im_end|>\n b", "a", "<|im_end|>", "b");            /* whitespace on both sides absorbed */
    PIECES(t, "<|im_start|> <|im_end|>", "<|im_start|>", "<|im_end|>"); /* not past the previous token */
    PIECES(t, "a\xe3\x80\x80<|im_end|>", "a", "<|im_end|>");            /* U+3000 is white space too */
    IDS(t, "a b c d", 3, 66, 266, EOT); /* the last two tokens kept (of a, Ġb, Ġ, c, Ġd) */
    gp_tokenizer_free(t);
    assert_int_equal(load_json(tj, "{\"pad_token\": null}", &t, &err), GP_OK);
    assert_int_equal(gp_tokenizer_pad_id(t), EOT);
    gp_tokenizer_free(t);
    cJSON_Delete(tj);
}

/* ---- malformed files ----------------------------------------------------------------------- */

/* Edits the fixture with `edit`, expects GP_EINPUT whose message holds `want` (and the file). */
static void expect_bad(void (*edit)(cJSON *), const char *cfg, const char *want) {
    cJSON *tj = fixture_json();
    edit(tj);
    gp_tokenizer *t;
    gp_err err = {0};
    gp_status rc = load_json(tj, cfg, &t, &err);
    if (rc != GP_EINPUT || !strstr(err.msg, want) || !strstr(err.msg, cfg ? "tokenizer" : "tokenizer.json"))
        fail_msg("want GP_EINPUT with \"%s\", got %d: %s", want, rc, err.msg);
    assert_null(t);
    cJSON_Delete(tj);
}

static void no_vocab(cJSON *tj) { cJSON_DeleteItemFromObjectCaseSensitive(obj_path(tj, "model", NULL), "vocab"); }
static void no_merges(cJSON *tj) { cJSON_DeleteItemFromObjectCaseSensitive(obj_path(tj, "model", NULL), "merges"); }
static void bad_merge(cJSON *tj) {
    cJSON_AddItemToArray(obj_path(tj, "model", "merges"), cJSON_CreateString("\xc4\xa0 zzz"));
}
static void merge_no_space(cJSON *tj) {
    cJSON_AddItemToArray(obj_path(tj, "model", "merges"), cJSON_CreateString("ab"));
}
static void merge_result_missing(cJSON *tj) {
    cJSON_AddItemToArray(obj_path(tj, "model", "merges"), cJSON_CreateString("q q"));
}
static void bad_id(cJSON *tj) {
    cJSON_ReplaceItemInObjectCaseSensitive(obj_path(tj, "model", "vocab"), "a", cJSON_CreateString("64"));
}
static void missing_byte(cJSON *tj) {
    cJSON_DeleteItemFromObjectCaseSensitive(obj_path(tj, "model", "vocab"), "\xc4\x80");
}
static void byte_fallback(cJSON *tj) {
    cJSON_ReplaceItemInObjectCaseSensitive(obj_path(tj, "model", NULL), "byte_fallback", cJSON_CreateTrue());
}
static void added_no_id(cJSON *tj) {
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tj, "added_tokens"), 1),
                                            "id");
}
static void added_single_word(cJSON *tj) {
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tj, "added_tokens"), 0),
                                           "single_word", cJSON_CreateTrue());
}
static void added_ids_swapped(cJSON *tj) {
    cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(added, 0), "id"), 478);
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(added, 2), "id"), 476);
}
static void added_gap(cJSON *tj) {
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(
                             cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tj, "added_tokens"), 2), "id"),
                         500);
}
static void added_in_vocab(cJSON *tj) {
    cJSON *im_start = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tj, "added_tokens"), 1);
    cJSON_ReplaceItemInObjectCaseSensitive(im_start, "content", cJSON_CreateString("a"));
}
static void added_not_list(cJSON *tj) { set_json(tj, "added_tokens", "{\"a\": 1}"); }
static void lowercase(cJSON *tj) { set_json(tj, "normalizer", "{\"type\": \"Lowercase\"}"); }
static void removed(cJSON *tj) {
    cJSON *split = cJSON_GetArrayItem(obj_path(tj, "pre_tokenizer", "pretokenizers"), 0);
    cJSON_ReplaceItemInObjectCaseSensitive(split, "behavior", cJSON_CreateString("Removed"));
}
static void string_pattern(cJSON *tj) {
    cJSON *split = cJSON_GetArrayItem(obj_path(tj, "pre_tokenizer", "pretokenizers"), 0);
    set_json(split, "pattern", "{\"String\": \" \"}");
}
static void bad_regex(cJSON *tj) {
    cJSON *split = cJSON_GetArrayItem(obj_path(tj, "pre_tokenizer", "pretokenizers"), 0);
    set_json(split, "pattern", "{\"Regex\": \"(\\\\p{L}\"}");
}
static void empty_regex(cJSON *tj) {
    cJSON *split = cJSON_GetArrayItem(obj_path(tj, "pre_tokenizer", "pretokenizers"), 0);
    set_json(split, "pattern", "{\"Regex\": \"\\\\s*\"}");
}
static void word_escape(cJSON *tj) {
    cJSON *split = cJSON_GetArrayItem(obj_path(tj, "pre_tokenizer", "pretokenizers"), 0);
    set_json(split, "pattern", "{\"Regex\": \"[\\\\s]+|\\\\w+\"}");
}
static void nested_class(cJSON *tj) {
    cJSON *split = cJSON_GetArrayItem(obj_path(tj, "pre_tokenizer", "pretokenizers"), 0);
    set_json(split, "pattern", "{\"Regex\": \"[a-z&&[^aeiou]]+\"}");
}
static void prefix_space(cJSON *tj) {
    cJSON *bl = cJSON_GetArrayItem(obj_path(tj, "pre_tokenizer", "pretokenizers"), 1);
    cJSON_ReplaceItemInObjectCaseSensitive(bl, "add_prefix_space", cJSON_CreateTrue());
}
static void no_byte_level(cJSON *tj) { cJSON_DeleteItemFromArray(obj_path(tj, "pre_tokenizer", "pretokenizers"), 1); }
static void roberta(cJSON *tj) { set_json(tj, "post_processor", "{\"type\": \"RobertaProcessing\"}"); }
static void template_unknown(cJSON *tj) {
    cJSON *sp = obj_path(obj_path(tj, "post_processor", "special_tokens"), "<|endoftext|>", NULL);
    set_json(sp, "ids", "[999]");
}
/* issue 14: an added token that is a raw 0xA9 byte matched inside "é" (C3 A9) and tripped a
 * fatal check in the NFC step; it is refused when the file is read */
static void added_not_utf8(cJSON *tj) {
    cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    cJSON *bad = cJSON_Duplicate(cJSON_GetArrayItem(added, 2), 1);
    cJSON_ReplaceItemInObjectCaseSensitive(bad, "content", cJSON_CreateString("\xa9"));
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(bad, "id"), 479); /* the id Hugging Face would give it */
    cJSON_AddItemToArray(added, bad);
}
static void nothing(cJSON *tj) { (void)tj; }

static void test_malformed(void **state) {
    (void)state;
    expect_bad(no_vocab, NULL, "model.vocab");
    expect_bad(no_merges, NULL, "model.merges");
    expect_bad(bad_merge, NULL, "model.merges[220]\": token \"zzz\"");
    expect_bad(merge_no_space, NULL, "model.merges[220]");
    expect_bad(merge_result_missing, NULL, "token \"qq\"");
    expect_bad(bad_id, NULL, "model.vocab[\"a\"]");
    expect_bad(missing_byte, NULL, "byte 0x00");
    expect_bad(byte_fallback, NULL, "model.byte_fallback");
    expect_bad(added_no_id, NULL, "added_tokens[1].id");
    expect_bad(added_single_word, NULL, "added_tokens[0].single_word");
    expect_bad(added_ids_swapped, NULL, "added_tokens[0].id\" = 478, but Hugging Face gives \"<|endoftext|>\" id 476");
    expect_bad(added_gap, NULL, "added_tokens[2].id\" = 500");
    expect_bad(added_in_vocab, NULL, "added_tokens[1].id\" = 477, but Hugging Face gives \"a\" id 64");
    expect_bad(added_not_list, NULL, "added_tokens");
    expect_bad(added_not_utf8, NULL, "key \"added_tokens[3].content\" = \"\\xA9\" is not valid UTF-8");
    expect_bad(lowercase, NULL, "normalizer");
    expect_bad(removed, NULL, "pre_tokenizer.pretokenizers[0].behavior");
    expect_bad(string_pattern, NULL, "pre_tokenizer.pretokenizers[0].pattern");
    expect_bad(bad_regex, NULL, "pre_tokenizer.pretokenizers[0].pattern.Regex");
    expect_bad(empty_regex, NULL, "empty string");
    expect_bad(word_escape, NULL, "\"\\w\" at offset 6 is not supported");
    expect_bad(nested_class, NULL, "\"&&\" at offset 4 is not supported");
    expect_bad(prefix_space, NULL, "pre_tokenizer.pretokenizers[1].add_prefix_space");
    expect_bad(no_byte_level, NULL, "no ByteLevel");
    expect_bad(roberta, NULL, "post_processor");
    expect_bad(template_unknown, NULL, "special_tokens.<|endoftext|>.ids");
    expect_bad(nothing, "{\"pad_token\": \"<pad>\"}", "pad_token");
    expect_bad(nothing, "{\"truncation_side\": \"middle\"}", "truncation_side");
}

/* ---- long texts ------------------------------------------------------------------------------ */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 200 kB texts that are one piece each (letters, CJK, symbols, white space) or one piece per
 * character (digits): the merge loop must stay near-linear. Timing is printed, not asserted
 * (this runs under the sanitizers); `make` builds the release library for real numbers. */
static void test_long_texts(void **state) {
    (void)state;
    const size_t n = 200000;
    char *s = malloc(n + 8);
    uint64_t seed = 7;
    const char *kinds[] = {"letters", "english", "cjk", "digits", "symbols", "spaces"};
    for (int k = 0; k < 6; k++) {
        size_t m = 0;
        while (m < n) {
            uint64_t r = (uint64_t)((tu_rand(&seed) + 1) * 1e6);
            if (k == 0) s[m++] = (char)('a' + r % 26);
            else if (k == 1) {
                static const char *words[] = {"the ",     "quick ", "brown ", "fox's ",
                                              "doesn't ", "jump ",  "2025, ", "end.\n"};
                const char *w = words[r % 8];
                size_t wl = strlen(w);
                if (m + wl > n) break;
                memcpy(s + m, w, wl);
                m += wl;
            } else if (k == 2) {
                static const char *cjk[] = {"机", "器", "学", "习", "是", "人", "工", "智", "能"};
                if (m + 3 > n) break;
                memcpy(s + m, cjk[r % 9], 3);
                m += 3;
            } else if (k == 3) s[m++] = (char)('0' + r % 10);
            else if (k == 4) s[m++] = "!?.,;:-+*/()"[r % 12];
            else s[m++] = " \t"[r % 2];
        }
        double t0 = now();
        int ntok = assert_spells(g_tok, s, m);
        double dt = now() - t0;
        char **p;
        int np = gp_bpe_pieces(g_tok, s, m, &p);
        for (int i = 0; i < np; i++) free(p[i]);
        free(p);
        if (k == 0 || k == 2 || k == 4 || k == 5) assert_int_equal(np, 1);
        if (k == 3) assert_int_equal(np, (int)m);
        printf("    %-8s %zu bytes: %d pieces, %d tokens, %.3f s (%.1f MB/s, sanitizer build)\n", kinds[k], m, np, ntok,
               dt, (double)m / dt / 1e6);
    }
    free(s);
}

/* ---- the command line ------------------------------------------------------------------------ */

static void test_cli(void **state) {
    (void)state;
    const char *bin = getenv("GAPRUNE_BIN") ? getenv("GAPRUNE_BIN") : "build/san/gaprune";
    char *d = tu_mkdtemp(), cmd[8192], p[4200];
    tu_mpi_env();
    snprintf(cmd, sizeof cmd,
             "%s tokenize --model " BPE_DIR " 'a<|im_start|>b' '' > '%s/out' 2> '%s/err' &&"
             " printf 'a b c d\\n' | %s tokenize --model " BPE_DIR " --max-length 3 --tokens >> '%s/out' 2>> '%s/err'",
             bin, d, d, bin, d, d);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    snprintf(p, sizeof p, "%s/out", d);
    char *out = slurp(p, NULL);
    assert_string_equal(out, "64 477 65 476\n476\na \xc4\xa0"
                             "b <|endoftext|>\n");
    free(out);
    snprintf(p, sizeof p, "%s/err", d);
    char *e = slurp(p, NULL);
    assert_null(strstr(e, "Sanitizer"));
    assert_null(strstr(e, "runtime error"));
    free(e);
    tu_rmtree(d);
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_pieces_english),
        cmocka_unit_test(test_pieces_whitespace),
        cmocka_unit_test(test_pieces_scripts),
        cmocka_unit_test(test_added_tokens),
        cmocka_unit_test(test_nfc),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_truncation_and_empty),
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_merges_as_pairs),
        cmocka_unit_test(test_processor_and_normalizer_forms),
        cmocka_unit_test(test_gpt2_pre_tokenizer),
        cmocka_unit_test(test_ignore_merges),
        cmocka_unit_test(test_strip_and_config),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_long_texts),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests_name("bpe", tests, setup, teardown);
}
