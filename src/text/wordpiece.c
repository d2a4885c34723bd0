/* wordpiece.c — BERT WordPiece tokenizer matching BertTokenizerFast (see tokenizer.h).
 *
 * Unicode properties (general category, canonical decomposition, case mapping) come from
 * utf8proc. The property tests below are spelled out because they are HF's definitions, not
 * Unicode's: "control" is any C* category except \t \n \r, "whitespace" is Rust's
 * char::is_whitespace, "punctuation" is ASCII punctuation or any P* category.
 */
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "gaprune/fs.h"
#include "gaprune/json.h"
#include "gaprune/strmap.h"
#include "tokenizer_impl.h"

#define MAX_WORD_CHARS 100

enum { SP_CLS, SP_SEP, SP_PAD, SP_UNK, SP_MASK, SP_COUNT };

typedef struct {
    char **tokens; /* id -> token */
    int ntokens;
    gp_strmap *map;
    bool lower, strip_accents, chinese, clean;
    char *special[SP_COUNT]; /* token strings; NULL when absent */
    int32_t special_id[SP_COUNT];
    char desc[160];
} wordpiece;

/* ---- character classes ---------------------------------------------------------------- */

bool gp_is_white_space(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static bool is_control(int32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CS ||
           k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CN;
}

static bool is_punct(int32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

static bool is_cjk(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* ---- a growable codepoint / id buffer ------------------------------------------------- */

typedef struct {
    int32_t *v;
    int n, cap;
} ibuf;

static void ipush(ibuf *b, int32_t x) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->v = gp_realloc(b->v, (size_t)b->cap * sizeof(int32_t));
    }
    b->v[b->n++] = x;
}

/* Decodes UTF-8; each invalid byte becomes U+FFFD. */
void gp_utf8_decode(const char *s, size_t len, int32_t **out, int *n) {
    ibuf b = {0};
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
        if (k <= 0) {
            ipush(&b, 0xFFFD);
            i++;
        } else {
            ipush(&b, c);
            i += (size_t)k;
        }
    }
    *out = b.v;
    *n = b.n;
}

/* BertNormalizer: clean, CJK spacing, strip accents, lower case — in that order. */
static void normalize(const wordpiece *w, const int32_t *in, int n, ibuf *out) {
    for (int i = 0; i < n; i++) {
        int32_t c = in[i];
        if (w->clean) {
            if (c == 0 || c == 0xFFFD || is_control(c)) continue;
            if (gp_is_white_space(c)) c = ' ';
        }
        if (w->chinese && is_cjk(c)) {
            ipush(out, ' ');
            ipush(out, c);
            ipush(out, ' ');
            continue;
        }
        int32_t dec[32];
        int nd = 1;
        dec[0] = c;
        if (w->strip_accents) {
            int bc = 0;
            utf8proc_ssize_t r = utf8proc_decompose_char(c, dec, 32, UTF8PROC_DECOMPOSE, &bc);
            nd = r > 0 && r <= 32 ? (int)r : 1;
            if (r <= 0 || r > 32) dec[0] = c;
        }
        for (int k = 0; k < nd; k++) {
            int32_t d = dec[k];
            if (w->strip_accents && utf8proc_category(d) == UTF8PROC_CATEGORY_MN) continue;
            if (w->lower) {
                if (d == 0x130) { /* the one lower-case mapping to two characters: İ -> i + U+0307 */
                    ipush(out, 'i');
                    ipush(out, 0x307);
                    continue;
                }
                d = utf8proc_tolower(d);
            }
            ipush(out, d);
        }
    }
}

static int utf8_put(char *dst, int32_t c) { return (int)utf8proc_encode_char(c, (utf8proc_uint8_t *)dst); }

/* Greedy longest-match-first over one word of n codepoints. */
static void wordpiece_word(const wordpiece *w, const int32_t *cp, int n, ibuf *ids) {
    if (n > MAX_WORD_CHARS) {
        ipush(ids, w->special_id[SP_UNK]);
        return;
    }
    char buf[2 + 4 * MAX_WORD_CHARS + 1];
    int boff[MAX_WORD_CHARS + 1]; /* byte offset of each char in buf after the "##" */
    boff[0] = 0;
    for (int i = 0; i < n; i++) boff[i + 1] = boff[i] + utf8_put(buf + 2 + boff[i], cp[i]);
    int start_n = ids->n;
    int start = 0;
    while (start < n) {
        int end = n, found = -1;
        int32_t id = 0;
        while (start < end) {
            const char *sub;
            size_t len = (size_t)(boff[end] - boff[start]);
            char tmp[2 + 4 * MAX_WORD_CHARS + 1];
            if (start > 0) {
                tmp[0] = '#';
                tmp[1] = '#';
                memcpy(tmp + 2, buf + 2 + boff[start], len);
                sub = tmp;
                len += 2;
            } else {
                sub = buf + 2;
            }
            if (gp_strmap_get(w->map, sub, len, &id)) {
                found = end;
                break;
            }
            end--;
        }
        if (found < 0) { /* no piece matches: the whole word is unknown */
            ids->n = start_n;
            ipush(ids, w->special_id[SP_UNK]);
            return;
        }
        ipush(ids, id);
        start = found;
    }
}

/* BertPreTokenizer: calls fn for each word of a normalized run (whitespace separates words,
 * every punctuation character is a word of its own). */
static void split_words(const int32_t *cp, int n, void (*fn)(void *ctx, const int32_t *cp, int n), void *ctx) {
    int i = 0;
    while (i < n) {
        if (gp_is_white_space(cp[i])) {
            i++;
            continue;
        }
        int j = i + 1;
        if (!is_punct(cp[i]))
            while (j < n && !gp_is_white_space(cp[j]) && !is_punct(cp[j])) j++;
        fn(ctx, cp + i, j - i);
        i = j;
    }
}

typedef struct {
    const wordpiece *w;
    ibuf *ids;
} wp_ctx;

static void word_ids(void *vctx, const int32_t *cp, int n) {
    wp_ctx *c = vctx;
    wordpiece_word(c->w, cp, n, c->ids);
}

/* Pre-tokenizes a normalized run and appends WordPiece ids. */
static void encode_run(const wordpiece *w, const int32_t *cp, int n, ibuf *ids) {
    wp_ctx c = {w, ids};
    split_words(cp, n, word_ids, &c);
}

void gp_bert_words(const char *text, size_t len, bool lower, void (*fn)(void *ctx, const int32_t *cp, int n), void *ctx) {
    wordpiece w = {.lower = lower, .strip_accents = lower, .chinese = true, .clean = true};
    int32_t *cp;
    int n;
    gp_utf8_decode(text, len, &cp, &n);
    ibuf norm = {0};
    normalize(&w, cp, n, &norm);
    split_words(norm.v, norm.n, fn, ctx);
    free(norm.v);
    free(cp);
}

static void encode_plain(const wordpiece *w, const char *s, size_t len, ibuf *ids) {
    int32_t *cp;
    int n;
    gp_utf8_decode(s, len, &cp, &n);
    ibuf norm = {0};
    normalize(w, cp, n, &norm);
    encode_run(w, norm.v, norm.n, ids);
    free(norm.v);
    free(cp);
}

static int wp_encode(const void *impl, const char *text, size_t len, int max_len, int32_t **out) {
    const wordpiece *w = impl;
    ibuf ids = {0};
    /* Literal special tokens split the text first; the pieces between are tokenized. */
    size_t i = 0, seg = 0;
    while (i < len) {
        int hit = -1;
        size_t hl = 0;
        if (text[i] == '[')
            for (int k = 0; k < SP_COUNT; k++) {
                const char *sp = w->special[k];
                size_t sl = sp ? strlen(sp) : 0;
                if (sl && sl > hl && len - i >= sl && memcmp(text + i, sp, sl) == 0) {
                    hit = k;
                    hl = sl;
                }
            }
        if (hit < 0) {
            i++;
            continue;
        }
        encode_plain(w, text + seg, i - seg, &ids);
        ipush(&ids, w->special_id[hit]);
        i += hl;
        seg = i;
    }
    encode_plain(w, text + seg, len - seg, &ids);

    int keep = max_len - 2 < ids.n ? max_len - 2 : ids.n;
    if (keep < 0) keep = 0;
    int32_t *r = gp_malloc((size_t)(keep + 2) * sizeof(int32_t));
    r[0] = w->special_id[SP_CLS];
    if (keep) memcpy(r + 1, ids.v, (size_t)keep * sizeof(int32_t));
    r[keep + 1] = w->special_id[SP_SEP];
    free(ids.v);
    *out = r;
    return keep + 2;
}

static void wp_free(void *impl) {
    wordpiece *w = impl;
    if (!w) return;
    for (int i = 0; i < w->ntokens; i++) free(w->tokens[i]);
    free(w->tokens);
    for (int k = 0; k < SP_COUNT; k++) free(w->special[k]);
    gp_strmap_free(w->map);
    free(w);
}

static const char *wp_token(const void *impl, int32_t id) {
    const wordpiece *w = impl;
    return id >= 0 && id < w->ntokens && w->tokens[id] ? w->tokens[id] : NULL;
}

static void add_token(wordpiece *w, const char *s, size_t n, int32_t id) {
    if (id >= w->ntokens) {
        int old = w->ntokens;
        w->ntokens = id + 1;
        w->tokens = gp_realloc(w->tokens, (size_t)w->ntokens * sizeof(char *));
        for (int i = old; i < w->ntokens; i++) w->tokens[i] = NULL;
    }
    free(w->tokens[id]);
    w->tokens[id] = gp_malloc(n + 1);
    memcpy(w->tokens[id], s, n);
    w->tokens[id][n] = '\0';
    gp_strmap_put(w->map, s, n, id);
}

static gp_status load_vocab_txt(wordpiece *w, const char *path, gp_err *err) {
    char *buf;
    size_t n;
    if (gp_read_file(path, &buf, &n, err)) return GP_EINPUT;
    w->map = gp_strmap_init(n / 6 + 16);
    int32_t id = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && buf[j] != '\n') j++;
        size_t e = j;
        if (e > i && buf[e - 1] == '\r') e--;
        add_token(w, buf + i, e - i, id++);
        i = j + 1;
    }
    free(buf);
    if (id == 0) return gp_errf(err, GP_EINPUT, "%s: empty vocabulary", path);
    return GP_OK;
}

static gp_status load_vocab_json(wordpiece *w, const cJSON *tj, const char *path, gp_err *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) return gp_errf(err, GP_EINPUT, "%s: missing key \"model.vocab\"", path);
    /* ids index a table: bounded by the entries the file holds, not by the largest id it names */
    const int n = cJSON_GetArraySize(vocab);
    w->map = gp_strmap_init((size_t)n + 16);
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0 && e->valuedouble < n) || e->valuedouble != floor(e->valuedouble))
            return gp_errf(err, GP_EINPUT,
                           "%s: model.vocab[\"%s\"] is not a token id (an integer in [0, %d), the vocabulary's entry "
                           "count)",
                           path, e->string, n);
        add_token(w, e->string, strlen(e->string), (int32_t)e->valuedouble);
    }
    return GP_OK;
}

/* tokenizer_config.json special tokens are a string or {"content": "..."}. */
static const char *special_string(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

gp_status gp_wordpiece_load(const char *dir, const cJSON *tok_json, const char *tok_json_path,
                            const cJSON *tok_cfg, const char *tok_cfg_path, gp_tokenizer_impl *out, gp_err *err) {
    wordpiece *w = gp_calloc(1, sizeof *w);
    w->lower = true;
    w->clean = true;
    w->chinese = true;
    int strip = -1; /* -1: follow lower case, as HF's strip_accents=None */
    gp_status rc = GP_OK;

    /* tokenizer.json's normalizer first; tokenizer_config.json overrides it (as BertTokenizerFast does). */
    const cJSON *norm = tok_json ? cJSON_GetObjectItemCaseSensitive(tok_json, "normalizer") : NULL;
    if (cJSON_IsObject(norm)) {
        bool b;
        b = w->lower;
        if ((rc = gp_json_opt_bool(norm, "lowercase", &b, tok_json_path, err))) goto fail;
        w->lower = b;
        b = w->clean;
        if ((rc = gp_json_opt_bool(norm, "clean_text", &b, tok_json_path, err))) goto fail;
        w->clean = b;
        b = w->chinese;
        if ((rc = gp_json_opt_bool(norm, "handle_chinese_chars", &b, tok_json_path, err))) goto fail;
        w->chinese = b;
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(norm, "strip_accents");
        if (cJSON_IsBool(sa)) strip = cJSON_IsTrue(sa);
    }
    if (tok_cfg) {
        bool b = w->lower;
        if ((rc = gp_json_opt_bool(tok_cfg, "do_lower_case", &b, tok_cfg_path, err))) goto fail;
        w->lower = b;
        b = w->chinese;
        if ((rc = gp_json_opt_bool(tok_cfg, "tokenize_chinese_chars", &b, tok_cfg_path, err))) goto fail;
        w->chinese = b;
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(tok_cfg, "strip_accents");
        if (cJSON_IsBool(sa)) strip = cJSON_IsTrue(sa);
        else if (sa && !cJSON_IsNull(sa)) {
            rc = gp_errf(err, GP_EINPUT, "%s: key \"strip_accents\" must be true, false or null", tok_cfg_path);
            goto fail;
        }
    }
    w->strip_accents = strip < 0 ? w->lower : strip;

    char *vpath = gp_path_join(dir, "vocab.txt");
    if (gp_file_exists(vpath)) rc = load_vocab_txt(w, vpath, err);
    else if (tok_json) rc = load_vocab_json(w, tok_json, tok_json_path, err);
    else rc = gp_errf(err, GP_EINPUT, "%s: no vocab.txt and no tokenizer.json", dir);
    free(vpath);
    if (rc) goto fail;

    static const char *keys[SP_COUNT] = {"cls_token", "sep_token", "pad_token", "unk_token", "mask_token"};
    static const char *defaults[SP_COUNT] = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"};
    for (int k = 0; k < SP_COUNT; k++) {
        const char *s = tok_cfg ? special_string(tok_cfg, keys[k]) : NULL;
        if (!s) s = defaults[k];
        int32_t id;
        if (!gp_strmap_get(w->map, s, strlen(s), &id)) {
            if (k == SP_MASK) continue;
            rc = gp_errf(err, GP_EINPUT, "%s: special token %s \"%s\" is not in the vocabulary", dir, keys[k], s);
            goto fail;
        }
        w->special[k] = gp_strdup(s);
        w->special_id[k] = id;
    }
    snprintf(w->desc, sizeof w->desc, "wordpiece, %d tokens%s%s%s", (int)gp_strmap_size(w->map),
             w->lower ? ", lower case" : ", cased", w->strip_accents ? ", strip accents" : "",
             w->chinese ? ", CJK split" : "");
    out->impl = w;
    out->encode = wp_encode;
    out->free = wp_free;
    out->token = wp_token;
    out->vocab_size = (int)gp_strmap_size(w->map);
    out->max_id = w->ntokens;
    out->pad_id = w->special_id[SP_PAD];
    out->desc = w->desc;
    return GP_OK;
fail:
    wp_free(w);
    return rc;
}
