/* bpe.c — byte-level BPE as Hugging Face `tokenizers` runs Qwen2/Qwen3 tokenizer.json files
 * (see tokenizer.h).
 *
 * One text goes through HF's pipeline in HF's order: invalid UTF-8 becomes U+FFFD (one per bad
 * byte); added tokens are found in the raw text, leftmost then longest; the text between them
 * is NFC-normalised (utf8proc) and cut into pieces by the pre-tokenizer's regexes (PCRE2 with
 * UTF + UCP where HF uses Oniguruma; see onig_to_pcre2 for the one place they differ); each
 * piece's bytes become GPT-2's byte characters and BPE merges them; the post-processor's
 * special tokens go around the truncated result.
 *
 * Written here because no Debian library runs tokenizer.json files (HF's `tokenizers` is a Rust
 * crate, and Debian's C libraries do not do GPT-2 byte-level BPE); PCRE2 and utf8proc do the parts
 * a library does well. The merge loop is HF's (models/bpe/word.rs): a min-heap of candidate pairs ordered by (rank,
 * position), stale candidates skipped when popped. A word of n bytes costs O(n log n), so a
 * long text without spaces (one \p{L}+ piece) does not go quadratic as the textbook loop
 * "find the best pair, rescan" does. There is no word cache: encoding reads the tokenizer and
 * writes only its own buffers, so several threads may encode with one tokenizer.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "gaprune/json.h"
#include "gaprune/strmap.h"
#include "tokenizer_impl.h"

/* Ids above this are rejected: the id -> token table is allocated up to the largest id. */
#define MAX_ID (1 << 24)
#define MAX_SPLITS 4

/* GPT-2's pattern, which a ByteLevel pre-tokenizer with use_regex applies. */
static const char k_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
    char *s;
    size_t len;
    int32_t id;
    bool lstrip, rstrip;
    int order; /* position in added_tokens, for a stable sort */
} added_tok;

typedef struct {
    uint64_t key; /* (left id << 32) | right id; MERGE_EMPTY when free */
    int32_t rank, id;
} merge_slot;

#define MERGE_EMPTY UINT64_MAX

typedef struct {
    char **tokens;    /* id -> token (byte-level form for the model vocabulary); NULL where unused */
    int ntokens;      /* largest id + 1 */
    gp_strmap *vocab; /* model.vocab */
    int32_t byte_id[256];
    char byte_str[256][3]; /* UTF-8 of each byte's character (U+0021..U+0143: 1 or 2 bytes) */
    uint8_t byte_len[256];
    merge_slot *merges;
    size_t merge_mask; /* table size - 1 (a power of two, at most half full) */
    bool ignore_merges, nfc, trunc_left;
    pcre2_code *split[MAX_SPLITS];
    int nsplit;
    added_tok *added; /* longest first */
    int nadded;
    bool added_first[256]; /* bytes that start some added token */
    int32_t *pre, *post;   /* post-processor ids before and after the text */
    int npre, npost;
    char desc[256];
} bpe;

/* ---- merge table: (left, right) -> (rank, merged id) ---------------------------------------- */

static size_t merge_hash(uint64_t key, size_t mask) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask; }

static void merge_put(bpe *b, int32_t l, int32_t r, int32_t rank, int32_t id) {
    uint64_t key = (uint64_t)l << 32 | (uint32_t)r;
    size_t i = merge_hash(key, b->merge_mask);
    while (b->merges[i].key != MERGE_EMPTY && b->merges[i].key != key) i = (i + 1) & b->merge_mask;
    /* a repeated pair keeps its last rank, as HF's map built from the list does */
    b->merges[i] = (merge_slot){key, rank, id};
}

static inline const merge_slot *merge_get(const bpe *b, int32_t l, int32_t r) {
    uint64_t key = (uint64_t)l << 32 | (uint32_t)r;
    size_t i = merge_hash(key, b->merge_mask);
    for (;;) {
        const merge_slot *s = &b->merges[i];
        if (s->key == key) return s;
        if (s->key == MERGE_EMPTY) return NULL;
        i = (i + 1) & b->merge_mask;
    }
}

/* ---- per-call encoder state ------------------------------------------------------------------ */

typedef struct {
    int32_t id; /* -1 once merged into its left neighbour */
    int prev, next;
} sym;

typedef struct {
    int32_t rank, pos, id;
} cand;

typedef struct {
    const bpe *b;
    pcre2_match_data *md;
    int32_t *ids;
    size_t nids, idcap;
    sym *syms;
    cand *heap;
    size_t wcap; /* symbols the two word buffers hold (heap: 3x) */
    char *word;  /* byte-level form of a piece, for ignore_merges */
    size_t wordcap;
    char **pieces; /* test hook: pieces are collected instead of encoded */
    int npieces, piececap;
    bool collect;
} enc;

static void push_id(enc *e, int32_t id) {
    if (e->nids == e->idcap) {
        e->idcap = e->idcap ? 2 * e->idcap : 256;
        e->ids = gp_realloc(e->ids, e->idcap * sizeof(int32_t));
    }
    e->ids[e->nids++] = id;
}

static inline bool cand_less(cand a, cand b) { return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos; }

static void heap_push(cand *h, int *n, cand c) {
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!cand_less(c, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, int *n) {
    cand top = h[0], last = h[--*n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(h[c + 1], h[c])) c++;
        if (!cand_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

static int utf8_put(char *dst, int32_t c) { return (int)utf8proc_encode_char(c, (utf8proc_uint8_t *)dst); }

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the 68 others (controls,
 * space, DEL, NBSP, soft hyphen) map to U+0100 onwards in byte order, so every byte-level token is
 * printable text. */
static int32_t byte_char(int b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    int n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) n++;
    return 0x100 + n;
}

/* BPE over one piece of n bytes: HF's merge loop (see the file comment). */
static void bpe_word(enc *e, const uint8_t *p, size_t n) {
    const bpe *b = e->b;
    if (n == 0) return;
    if (b->ignore_merges && n > 1) {
        if (e->wordcap < 2 * n) {
            e->wordcap = 2 * n;
            e->word = gp_realloc(e->word, e->wordcap);
        }
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(e->word + len, b->byte_str[p[i]], b->byte_len[p[i]]);
            len += b->byte_len[p[i]];
        }
        int32_t id;
        if (gp_strmap_get(b->vocab, e->word, len, &id)) {
            push_id(e, id);
            return;
        }
    }
    if (n == 1) {
        push_id(e, b->byte_id[p[0]]);
        return;
    }
    GP_CHECK(n < INT_MAX / 3, "a piece of %zu bytes", n);
    if (e->wcap < n) {
        e->wcap = n;
        e->syms = gp_realloc(e->syms, n * sizeof(sym));
        e->heap = gp_realloc(e->heap, 3 * n * sizeof(cand)); /* n-1 initial pairs + 2 per merge */
    }
    sym *s = e->syms;
    int m = (int)n, hn = 0;
    for (int i = 0; i < m; i++) s[i] = (sym){b->byte_id[p[i]], i - 1, i + 1 < m ? i + 1 : -1};
    for (int i = 0; i + 1 < m; i++) {
        const merge_slot *ms = merge_get(b, s[i].id, s[i + 1].id);
        if (ms) heap_push(e->heap, &hn, (cand){ms->rank, i, ms->id});
    }
    while (hn > 0) {
        cand c = heap_pop(e->heap, &hn);
        sym *l = &s[c.pos];
        if (l->id < 0 || l->next < 0) continue;
        sym *r = &s[l->next];
        /* stale: one side has changed since this candidate was pushed */
        const merge_slot *ms = merge_get(b, l->id, r->id);
        if (!ms || ms->id != c.id) continue;
        l->id = c.id;
        r->id = -1;
        l->next = r->next;
        if (l->next >= 0) s[l->next].prev = c.pos;
        if (l->prev >= 0 && (ms = merge_get(b, s[l->prev].id, l->id)))
            heap_push(e->heap, &hn, (cand){ms->rank, l->prev, ms->id});
        if (l->next >= 0 && (ms = merge_get(b, l->id, s[l->next].id)))
            heap_push(e->heap, &hn, (cand){ms->rank, c.pos, ms->id});
    }
    for (int i = 0; i >= 0; i = s[i].next) push_id(e, s[i].id);
}

static void emit_piece(enc *e, const char *s, size_t n) {
    if (!e->collect) {
        bpe_word(e, (const uint8_t *)s, n);
        return;
    }
    if (e->npieces == e->piececap) {
        e->piececap = e->piececap ? 2 * e->piececap : 32;
        e->pieces = gp_realloc(e->pieces, (size_t)e->piececap * sizeof(char *));
    }
    e->pieces[e->npieces++] = gp_strndup(s, n);
}

/* Split with behaviour "Isolated": every match is a piece and so is the text between matches;
 * each piece goes through the next stage on its own (a lookahead sees the piece's end, not the
 * text after it). */
static void split_stage(enc *e, int stage, const char *s, size_t n) {
    if (n == 0) return;
    if (stage == e->b->nsplit) {
        emit_piece(e, s, n);
        return;
    }
    const pcre2_code *re = e->b->split[stage];
    size_t prev = 0;
    while (prev < n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, prev, PCRE2_NO_UTF_CHECK, e->md, NULL);
        /* an error (a match or stack limit, out of reach for the Qwen and GPT-2 patterns, which
         * backtrack at most linearly) leaves the rest as one piece rather than failing */
        if (rc < 0) break;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t ms = ov[0], me = ov[1];    /* copied: the stages below reuse the match data */
        if (me <= ms || ms < prev) break; /* no empty matches: the pattern's minimum length is checked at load */
        if (ms > prev) split_stage(e, stage + 1, s + prev, ms - prev);
        split_stage(e, stage + 1, s + ms, me - ms);
        prev = me;
    }
    if (prev < n) split_stage(e, stage + 1, s + prev, n - prev);
}

/* Text between added tokens: NFC, then the pre-tokenizer. */
static void encode_segment(enc *e, const char *s, size_t n) {
    if (n == 0) return;
    bool ascii = true;
    for (size_t i = 0; i < n && ascii; i++) ascii = (uint8_t)s[i] < 0x80;
    utf8proc_uint8_t *norm = NULL;
    if (e->b->nfc && !ascii) {
        utf8proc_ssize_t m =
            utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &norm, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        GP_CHECK(m >= 0, "utf8proc NFC failed on valid UTF-8: %s", utf8proc_errmsg(m));
        s = (const char *)norm;
        n = (size_t)m;
    }
    split_stage(e, 0, s, n);
    free(norm);
}

static bool utf8_valid(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if ((uint8_t)s[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) return false;
        i += (size_t)k;
    }
    return true;
}

/* The codepoint that ends just before s[at] (at > lo), and where it starts. */
static int32_t char_before(const char *s, size_t lo, size_t at, size_t *start) {
    size_t j = at - 1;
    while (j > lo && ((uint8_t)s[j] & 0xC0) == 0x80) j--;
    utf8proc_int32_t c = -1;
    utf8proc_iterate((const utf8proc_uint8_t *)s + j, (utf8proc_ssize_t)(at - j), &c);
    *start = j;
    return c;
}

/* Runs the pipeline up to the merge step: added tokens go to e->ids (or the piece list), the
 * rest through encode_segment. */
static void run(enc *e, const char *text, size_t len) {
    const bpe *b = e->b;
    if (len == 0) return; /* text may be NULL, and NULL + 0 is undefined */
    char *fixed = NULL;
    if (!utf8_valid(text, len)) {
        int32_t *cp;
        int n;
        gp_utf8_decode(text, len, &cp, &n);
        fixed = gp_malloc(4 * (size_t)n + 1);
        size_t m = 0;
        for (int i = 0; i < n; i++) m += (size_t)utf8_put(fixed + m, cp[i]);
        free(cp);
        text = fixed;
        len = m;
    }
    size_t seg = 0, i = 0;
    while (i < len) {
        const added_tok *hit = NULL;
        if (b->added_first[(uint8_t)text[i]])
            for (int k = 0; k < b->nadded && !hit; k++) {
                const added_tok *a = &b->added[k];
                if (a->len <= len - i && memcmp(text + i, a->s, a->len) == 0) hit = a;
            }
        if (!hit) {
            i++;
            continue;
        }
        size_t start = i, end = i + hit->len;
        if (hit->lstrip)
            while (start > seg) {
                size_t j;
                if (!gp_is_white_space(char_before(text, seg, start, &j))) break;
                start = j;
            }
        if (hit->rstrip)
            while (end < len) {
                utf8proc_int32_t c;
                utf8proc_ssize_t k =
                    utf8proc_iterate((const utf8proc_uint8_t *)text + end, (utf8proc_ssize_t)(len - end), &c);
                if (k <= 0 || !gp_is_white_space(c)) break;
                end += (size_t)k;
            }
        encode_segment(e, text + seg, start - seg);
        if (e->collect) emit_piece(e, hit->s, hit->len);
        else push_id(e, hit->id);
        seg = i = end;
    }
    encode_segment(e, text + seg, len - seg);
    free(fixed);
}

static void enc_init(enc *e, const bpe *b) {
    memset(e, 0, sizeof *e);
    e->b = b;
    e->md = pcre2_match_data_create(1, NULL);
    GP_CHECK(e->md, "out of memory (PCRE2 match data)");
}

static void enc_free(enc *e) {
    pcre2_match_data_free(e->md);
    free(e->ids);
    free(e->syms);
    free(e->heap);
    free(e->word);
    for (int i = 0; i < e->npieces; i++) free(e->pieces[i]);
    free(e->pieces);
}

static int bpe_encode(const void *impl, const char *text, size_t len, int max_len, int32_t **out) {
    const bpe *b = impl;
    enc e;
    enc_init(&e, b);
    run(&e, text, len);
    /* HF truncates the text's tokens so that the post-processor's fit in max_len */
    int keep = max_len - b->npre - b->npost;
    if (keep < 0) keep = 0;
    if ((size_t)keep > e.nids) keep = (int)e.nids;
    /* no tokens (an empty text): e.ids is NULL, and NULL + 0 is undefined */
    const int32_t *from = keep ? e.ids + (b->trunc_left ? e.nids - (size_t)keep : 0) : NULL;
    int total = b->npre + keep + b->npost;
    int32_t *r = gp_malloc((size_t)total * sizeof(int32_t));
    if (b->npre) memcpy(r, b->pre, (size_t)b->npre * sizeof(int32_t));
    if (keep) memcpy(r + b->npre, from, (size_t)keep * sizeof(int32_t));
    if (b->npost) memcpy(r + b->npre + keep, b->post, (size_t)b->npost * sizeof(int32_t));
    enc_free(&e);
    *out = r;
    return total;
}

static void bpe_free(void *impl) {
    bpe *b = impl;
    if (!b) return;
    for (int i = 0; i < b->ntokens; i++) free(b->tokens[i]);
    free(b->tokens);
    gp_strmap_free(b->vocab);
    free(b->merges);
    for (int i = 0; i < b->nsplit; i++) pcre2_code_free(b->split[i]);
    for (int i = 0; i < b->nadded; i++) free(b->added[i].s);
    free(b->added);
    free(b->pre);
    free(b->post);
    free(b);
}

static const char *bpe_token(const void *impl, int32_t id) {
    const bpe *b = impl;
    return id >= 0 && id < b->ntokens ? b->tokens[id] : NULL;
}

int gp_bpe_pieces(const gp_tokenizer *t, const char *text, size_t len, char ***pieces) {
    const gp_tokenizer_impl *k = gp_tokenizer_impl_of(t);
    *pieces = NULL;
    if (k->encode != bpe_encode) return -1;
    enc e;
    enc_init(&e, k->impl);
    e.collect = true;
    run(&e, text, len);
    *pieces = e.pieces;
    int n = e.npieces;
    e.pieces = NULL;
    e.npieces = 0;
    enc_free(&e);
    return n;
}

/* ---- loading ----------------------------------------------------------------------------- */

static void set_token(bpe *b, int32_t id, const char *s, size_t n) {
    free(b->tokens[id]);
    b->tokens[id] = gp_strndup(s, n);
}

/* A JSON number that is a usable token id. */
static bool is_id(const cJSON *v) {
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < MAX_ID &&
           v->valuedouble == (double)(int32_t)v->valuedouble;
}

/* An optional boolean key that must be false (absent and null count as false). */
static gp_status want_false(const cJSON *obj, const char *key, const char *path, const char *where, gp_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return GP_OK;
    return gp_errf(err, GP_EINPUT, "%s: key \"%s%s\" must be false (only that is supported)", path, where, key);
}

/* An optional string key that must be null or "". */
static gp_status want_empty(const cJSON *obj, const char *key, const char *path, const char *where, gp_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0])) return GP_OK;
    return gp_errf(err, GP_EINPUT, "%s: key \"%s%s\" must be null or \"\" (only that is supported)", path, where, key);
}

static const char *type_of(const cJSON *obj) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static gp_status load_model(bpe *b, const cJSON *model, const cJSON *added, const char *path, gp_err *err) {
    gp_status rc;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab))
        return gp_errf(err, GP_EINPUT, "%s: missing key \"model.vocab\" (an object token -> id)", path);
    if ((rc = want_false(model, "byte_fallback", path, "model.", err)) ||
        (rc = want_empty(model, "continuing_subword_prefix", path, "model.", err)) ||
        (rc = want_empty(model, "end_of_word_suffix", path, "model.", err)))
        return rc;
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return gp_errf(err, GP_EINPUT, "%s: key \"model.dropout\" must be null (BPE dropout is for training)", path);
    /* model.unk_token is never used: every byte has a token (checked below), so no symbol is unknown */
    bool ign = false;
    if ((rc = gp_json_opt_bool(model, "ignore_merges", &ign, path, err))) return rc;
    b->ignore_merges = ign;

    /* the id table first, sized once from the largest id */
    int32_t top = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!is_id(e))
            return gp_errf(err, GP_EINPUT, "%s: model.vocab[\"%s\"] is not a token id (an integer in [0, %d))", path,
                           e->string, MAX_ID);
        if ((int32_t)e->valuedouble > top) top = (int32_t)e->valuedouble;
    }
    if (cJSON_IsArray(added)) {
        int i = 0;
        cJSON_ArrayForEach(e, added) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
            if (!is_id(id))
                return gp_errf(err, GP_EINPUT, "%s: key \"added_tokens[%d].id\" is missing or not a token id", path, i);
            if ((int32_t)id->valuedouble > top) top = (int32_t)id->valuedouble;
            i++;
        }
    }
    if (top < 0) return gp_errf(err, GP_EINPUT, "%s: key \"model.vocab\" is empty", path);
    b->ntokens = top + 1;
    b->tokens = gp_calloc((size_t)b->ntokens, sizeof(char *));
    b->vocab = gp_strmap_init((size_t)cJSON_GetArraySize(vocab) + 16);
    cJSON_ArrayForEach(e, vocab) {
        size_t n = strlen(e->string);
        set_token(b, (int32_t)e->valuedouble, e->string, n);
        gp_strmap_put(b->vocab, e->string, n, (int32_t)e->valuedouble);
    }

    for (int x = 0; x < 256; x++) {
        char *c = b->byte_str[x];
        int n = utf8_put(c, byte_char(x));
        b->byte_len[x] = (uint8_t)n;
        if (!gp_strmap_get(b->vocab, c, (size_t)n, &b->byte_id[x]))
            return gp_errf(err, GP_EINPUT,
                           "%s: key \"model.vocab\" lacks \"%.*s\", the token of byte 0x%02X (every byte needs one)",
                           path, n, c, x);
    }

    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsArray(merges))
        return gp_errf(err, GP_EINPUT, "%s: missing key \"model.merges\" (a list of \"a b\" or [a, b])", path);
    size_t nm = (size_t)cJSON_GetArraySize(merges), cap = 16;
    while (cap < 2 * nm + 2) cap *= 2;
    b->merges = gp_malloc(cap * sizeof(merge_slot));
    for (size_t i = 0; i < cap; i++) b->merges[i].key = MERGE_EMPTY;
    b->merge_mask = cap - 1;
    int rank = 0;
    char *buf = NULL;
    size_t bufcap = 0;
    rc = GP_OK;
    cJSON_ArrayForEach(e, merges) {
        const char *l = NULL, *r = NULL;
        size_t ll = 0, rl = 0;
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (sp && sp > e->valuestring && sp[1]) {
                l = e->valuestring;
                ll = (size_t)(sp - l);
                r = sp + 1;
                rl = strlen(r);
            }
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            l = cJSON_GetArrayItem(e, 0)->valuestring;
            r = cJSON_GetArrayItem(e, 1)->valuestring;
            ll = strlen(l);
            rl = strlen(r);
        }
        if (!l || !ll || !rl) {
            rc = gp_errf(err, GP_EINPUT, "%s: key \"model.merges[%d]\" is not \"a b\" or [\"a\", \"b\"]", path, rank);
            break;
        }
        if (bufcap < ll + rl + 1) {
            bufcap = 2 * (ll + rl + 1);
            buf = gp_realloc(buf, bufcap);
        }
        memcpy(buf, l, ll);
        memcpy(buf + ll, r, rl);
        int32_t lid, rid, mid;
        const char *missing = NULL;
        size_t mlen = 0;
        if (!gp_strmap_get(b->vocab, l, ll, &lid)) missing = l, mlen = ll;
        else if (!gp_strmap_get(b->vocab, r, rl, &rid)) missing = r, mlen = rl;
        else if (!gp_strmap_get(b->vocab, buf, ll + rl, &mid)) missing = buf, mlen = ll + rl;
        if (missing) {
            rc = gp_errf(err, GP_EINPUT, "%s: key \"model.merges[%d]\": token \"%.*s\" is not in model.vocab", path,
                         rank, (int)mlen, missing);
            break;
        }
        merge_put(b, lid, rid, rank, mid);
        rank++;
    }
    free(buf);
    return rc;
}

static int added_cmp(const void *pa, const void *pb) {
    const added_tok *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->order - b->order;
}

static gp_status load_added(bpe *b, const cJSON *added, const char *path, gp_err *err) {
    if (!added || cJSON_IsNull(added)) return GP_OK;
    if (!cJSON_IsArray(added)) return gp_errf(err, GP_EINPUT, "%s: key \"added_tokens\" must be a list", path);
    b->added = gp_calloc((size_t)cJSON_GetArraySize(added) + 1, sizeof(added_tok));
    /* HF does not take these ids from the file: it gives an added token its model vocabulary id,
     * else the next id after the vocabulary and the earlier added tokens, and only warns when the
     * file says otherwise. A file whose ids differ is refused rather than read two ways. */
    const int32_t nvocab = (int32_t)gp_strmap_size(b->vocab);
    int32_t top = -1;
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, added) {
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%d].", i);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsString(content) || !content->valuestring[0])
            return gp_errf(err, GP_EINPUT, "%s: key \"%scontent\" is missing or empty", path, where);
        gp_status rc;
        if ((rc = want_false(e, "single_word", path, where, err)) ||
            (rc = want_false(e, "normalized", path, where, err)))
            return rc;
        /* added tokens are matched in the text after invalid UTF-8 became U+FFFD: one that is not
         * UTF-8 itself would match inside a character and cut it */
        if (!utf8_valid(content->valuestring, strlen(content->valuestring))) {
            char shown[256];
            size_t at = 0;
            for (const char *c = content->valuestring; *c && at + 5 < sizeof shown; c++)
                at += (size_t)snprintf(shown + at, sizeof shown - at, (uint8_t)*c < 0x80 && *c >= 0x20 ? "%c" : "\\x%02X",
                                       (uint8_t)*c);
            return gp_errf(err, GP_EINPUT, "%s: key \"%scontent\" = \"%s\" is not valid UTF-8", path, where, shown);
        }
        added_tok *a = &b->added[b->nadded++];
        a->len = strlen(content->valuestring);
        a->s = gp_strndup(content->valuestring, a->len);
        a->id = (int32_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble; /* checked in load_model */
        a->order = i;
        int32_t want = -1;
        for (int k = 0; k + 1 < b->nadded && want < 0; k++)
            if (b->added[k].len == a->len && memcmp(b->added[k].s, a->s, a->len) == 0) want = b->added[k].id;
        if (want < 0 && !gp_strmap_get(b->vocab, a->s, a->len, &want)) want = top >= nvocab ? top + 1 : nvocab;
        if (a->id != want)
            return gp_errf(err, GP_EINPUT,
                           "%s: key \"%sid\" = %d, but Hugging Face gives \"%s\" id %d (its model.vocab id, else the "
                           "next after model.vocab and the earlier added tokens)",
                           path, where, a->id, a->s, want);
        if (want > top) top = want;
        bool strip = false;
        if ((rc = gp_json_opt_bool(e, "lstrip", &strip, path, err))) return rc;
        a->lstrip = strip;
        strip = false;
        if ((rc = gp_json_opt_bool(e, "rstrip", &strip, path, err))) return rc;
        a->rstrip = strip;
        b->added_first[(uint8_t)a->s[0]] = true;
        set_token(b, a->id, a->s, a->len);
        i++;
    }
    qsort(b->added, (size_t)b->nadded, sizeof *b->added, added_cmp);
    return GP_OK;
}

static gp_status load_normalizer(bpe *b, const cJSON *n, const char *path, const char *key, gp_err *err) {
    if (!n || cJSON_IsNull(n)) return GP_OK;
    const char *t = type_of(n);
    if (t && strcmp(t, "NFC") == 0) {
        b->nfc = true;
        return GP_OK;
    }
    if (t && strcmp(t, "Sequence") == 0 && strcmp(key, "normalizer") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list))
            return gp_errf(err, GP_EINPUT, "%s: key \"normalizer.normalizers\" must be a list", path);
        const cJSON *e;
        int i = 0;
        cJSON_ArrayForEach(e, list) {
            char k[64];
            snprintf(k, sizeof k, "normalizer.normalizers[%d]", i++);
            gp_status rc = load_normalizer(b, e, path, k, err);
            if (rc) return rc;
        }
        return GP_OK;
    }
    return gp_errf(err, GP_EINPUT,
                   "%s: key \"%s\": normalizer type \"%s\" is not supported (NFC, a Sequence of NFC, or null)", path,
                   key, t ? t : "?");
}

/* Unicode White_Space, the set Oniguruma's \s matches (as a class body). */
#define WHITE_SPACE_SET                                                                                                \
    "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

/* HF compiles the pattern with Oniguruma, whose \s is Unicode White_Space; PCRE2's \s (UCP)
 * also matches U+180E, so \s and \S are spelled out as that set. Escapes the two engines read
 * differently (\h is a hex digit in Oniguruma, \w and \b count marks there, ...) and Oniguruma's
 * nested classes are refused: NULL, with the offending text in *bad. */
static char *onig_to_pcre2(const char *p, const char **bad) {
    size_t n = strlen(p), o = 0;
    char *out = gp_malloc(n * sizeof("[^" WHITE_SPACE_SET "]") + 1);
    bool cls = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[++i];
            if (e == 's' || (e == 'S' && !cls)) {
                const char *open = cls ? "" : e == 's' ? "[" : "[^", *close = cls ? "" : "]";
                o += (size_t)sprintf(out + o, "%s" WHITE_SPACE_SET "%s", open, close);
                continue;
            }
            if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
                if (!strchr("dDpPrntfeax", e)) {
                    *bad = p + i - 1;
                    free(out);
                    return NULL;
                }
            }
            out[o++] = '\\';
            out[o++] = e;
            continue;
        }
        if (!cls && c == '[') {
            cls = true;
            out[o++] = c;
            if (i + 1 < n && p[i + 1] == '^') out[o++] = p[++i];
            if (i + 1 < n && p[i + 1] == ']') out[o++] = p[++i]; /* a leading ] is a literal */
            continue;
        }
        if (cls && ((c == '[' && !(i + 1 < n && p[i + 1] == ':')) || (c == '&' && i + 1 < n && p[i + 1] == '&'))) {
            *bad = p + i;
            free(out);
            return NULL;
        }
        if (cls && c == '[') { /* a POSIX class [:name:] */
            const char *end = strstr(p + i, ":]");
            size_t len = end ? (size_t)(end - (p + i)) + 2 : n - i;
            memcpy(out + o, p + i, len);
            o += len;
            i += len - 1;
            continue;
        }
        if (cls && c == ']') cls = false;
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

static gp_status add_split(bpe *b, const char *onig, const char *path, const char *key, gp_err *err) {
    if (b->nsplit == MAX_SPLITS)
        return gp_errf(err, GP_EINPUT, "%s: key \"%s\": more than %d regex splits are not supported", path, key,
                       MAX_SPLITS);
    const char *bad = NULL;
    char *pattern = onig_to_pcre2(onig, &bad);
    if (!pattern)
        return gp_errf(err, GP_EINPUT,
                       "%s: key \"%s\": \"%.2s\" at offset %zu is not supported (Oniguruma reads it differently)", path,
                       key, bad, (size_t)(bad - onig));
    int code;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    free(pattern);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return gp_errf(err, GP_EINPUT, "%s: key \"%s\": the regex does not compile (PCRE2: %s)", path, key,
                       (const char *)msg);
    }
    uint32_t minlen = 0;
    pcre2_pattern_info(re, PCRE2_INFO_MINLENGTH, &minlen);
    if (minlen == 0) {
        pcre2_code_free(re);
        return gp_errf(err, GP_EINPUT, "%s: key \"%s\": a regex that can match the empty string is not supported", path,
                       key);
    }
    /* without JIT (unsupported CPU) pcre2_match interprets: slower, same results */
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    b->split[b->nsplit++] = re;
    return GP_OK;
}

static gp_status load_pre_one(bpe *b, const cJSON *p, const char *path, const char *key, bool *byte_level,
                              gp_err *err) {
    const char *t = type_of(p);
    char k[96];
    gp_status rc;
    if (*byte_level)
        return gp_errf(err, GP_EINPUT, "%s: key \"%s\": a pre-tokenizer after ByteLevel is not supported", path, key);
    if (t && strcmp(t, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        if (!cJSON_IsString(re))
            return gp_errf(err, GP_EINPUT,
                           "%s: key \"%s.pattern\" must be {\"Regex\": \"...\"} (a String pattern is not supported)",
                           path, key);
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(p, "behavior");
        if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") != 0)
            return gp_errf(err, GP_EINPUT, "%s: key \"%s.behavior\" must be \"Isolated\" (the only one supported)",
                           path, key);
        snprintf(k, sizeof k, "%s.", key);
        if ((rc = want_false(p, "invert", path, k, err))) return rc;
        snprintf(k, sizeof k, "%s.pattern.Regex", key);
        return add_split(b, re->valuestring, path, k, err);
    }
    if (t && strcmp(t, "ByteLevel") == 0) {
        const cJSON *aps = cJSON_GetObjectItemCaseSensitive(p, "add_prefix_space");
        if (!cJSON_IsFalse(aps))
            return gp_errf(err, GP_EINPUT, "%s: key \"%s.add_prefix_space\" must be false (only that is supported)",
                           path, key);
        bool use_regex = true; /* HF's default when the key is absent */
        if ((rc = gp_json_opt_bool(p, "use_regex", &use_regex, path, err))) return rc;
        *byte_level = true;
        snprintf(k, sizeof k, "%s.use_regex", key);
        return use_regex ? add_split(b, k_gpt2_pattern, path, k, err) : GP_OK;
    }
    return gp_errf(err, GP_EINPUT, "%s: key \"%s\": pre-tokenizer type \"%s\" is not supported (Split, ByteLevel)",
                   path, key, t ? t : "?");
}

static gp_status load_pre(bpe *b, const cJSON *p, const char *path, gp_err *err) {
    bool byte_level = false;
    gp_status rc = GP_OK;
    const char *t = type_of(p);
    if (t && strcmp(t, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (!cJSON_IsArray(list))
            return gp_errf(err, GP_EINPUT, "%s: key \"pre_tokenizer.pretokenizers\" must be a list", path);
        const cJSON *e;
        int i = 0;
        cJSON_ArrayForEach(e, list) {
            char k[64];
            snprintf(k, sizeof k, "pre_tokenizer.pretokenizers[%d]", i++);
            if ((rc = load_pre_one(b, e, path, k, &byte_level, err))) return rc;
        }
    } else if (p && !cJSON_IsNull(p)) {
        if ((rc = load_pre_one(b, p, path, "pre_tokenizer", &byte_level, err))) return rc;
    }
    if (!byte_level)
        return gp_errf(err, GP_EINPUT, "%s: key \"pre_tokenizer\" has no ByteLevel step (byte-level BPE needs one)",
                       path);
    return GP_OK;
}

static bool known_id(const bpe *b, int32_t id) { return id >= 0 && id < b->ntokens && b->tokens[id]; }

/* TemplateProcessing's "single" template: special tokens before and after sequence A. */
static gp_status load_template(bpe *b, const cJSON *p, const char *path, const char *key, char *names, size_t cap,
                               gp_err *err) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    if (!cJSON_IsArray(single)) return gp_errf(err, GP_EINPUT, "%s: key \"%s.single\" must be a list", path, key);
    if (b->pre || b->post)
        return gp_errf(err, GP_EINPUT, "%s: key \"%s\": more than one TemplateProcessing is not supported", path, key);
    size_t room = (size_t)cJSON_GetArraySize(single) * 8 + 1;
    b->pre = gp_malloc(room * sizeof(int32_t));
    b->post = gp_malloc(room * sizeof(int32_t));
    int seen_a = 0, i = 0;
    const cJSON *e;
    size_t nl = 0;
    names[0] = '\0';
    cJSON_ArrayForEach(e, single) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(seq ? seq : sp, "id");
        if (!cJSON_IsString(sid))
            return gp_errf(err, GP_EINPUT,
                           "%s: key \"%s.single[%d]\" is not {\"Sequence\": ...} or {\"SpecialToken\": ...}", path, key,
                           i);
        if (seq) {
            if (strcmp(sid->valuestring, "A") != 0 || seen_a++)
                return gp_errf(err, GP_EINPUT, "%s: key \"%s.single[%d]\": a single template holds sequence A once",
                               path, key, i);
        } else {
            const cJSON *def = cJSON_GetObjectItemCaseSensitive(specials, sid->valuestring);
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
            if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) < 1 || cJSON_GetArraySize(ids) > 8)
                return gp_errf(err, GP_EINPUT, "%s: key \"%s.special_tokens\" has no ids for \"%s\"", path, key,
                               sid->valuestring);
            const cJSON *x;
            cJSON_ArrayForEach(x, ids) {
                if (!is_id(x) || !known_id(b, (int32_t)x->valuedouble))
                    return gp_errf(err, GP_EINPUT,
                                   "%s: key \"%s.special_tokens.%s.ids\": not a token id of the vocabulary", path, key,
                                   sid->valuestring);
                if (seen_a) b->post[b->npost++] = (int32_t)x->valuedouble;
                else b->pre[b->npre++] = (int32_t)x->valuedouble;
            }
            nl += (size_t)snprintf(names + nl, nl < cap ? cap - nl : 0, ", %s %s", seen_a ? "appends" : "prepends",
                                   sid->valuestring);
            if (nl >= cap) nl = cap - 1;
        }
        i++;
    }
    if (!seen_a) return gp_errf(err, GP_EINPUT, "%s: key \"%s.single\" has no sequence A", path, key);
    return GP_OK;
}

static gp_status load_post(bpe *b, const cJSON *p, const char *path, const char *key, char *names, size_t cap,
                           gp_err *err) {
    if (!p || cJSON_IsNull(p)) return GP_OK;
    const char *t = type_of(p);
    if (t && strcmp(t, "ByteLevel") == 0) return GP_OK; /* it only trims offsets, which we do not report */
    if (t && strcmp(t, "TemplateProcessing") == 0) return load_template(b, p, path, key, names, cap, err);
    if (t && strcmp(t, "Sequence") == 0 && strcmp(key, "post_processor") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors");
        if (!cJSON_IsArray(list))
            return gp_errf(err, GP_EINPUT, "%s: key \"post_processor.processors\" must be a list", path);
        const cJSON *e;
        int i = 0;
        cJSON_ArrayForEach(e, list) {
            char k[64];
            snprintf(k, sizeof k, "post_processor.processors[%d]", i++);
            gp_status rc = load_post(b, e, path, k, names, cap, err);
            if (rc) return rc;
        }
        return GP_OK;
    }
    return gp_errf(
        err, GP_EINPUT,
        "%s: key \"%s\": post-processor type \"%s\" is not supported (TemplateProcessing, ByteLevel, a Sequence "
        "of these, or null)",
        path, key, t ? t : "?");
}

/* An added token's id, else a model vocabulary id. */
static bool lookup(const bpe *b, const char *s, int32_t *id) {
    size_t n = strlen(s);
    for (int i = 0; i < b->nadded; i++)
        if (b->added[i].len == n && memcmp(b->added[i].s, s, n) == 0) {
            *id = b->added[i].id;
            return true;
        }
    return gp_strmap_get(b->vocab, s, n, id);
}

static gp_status load_config(bpe *b, const cJSON *cfg, const char *path, int32_t *pad, gp_err *err) {
    const char *name = NULL;
    const cJSON *v = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "pad_token") : NULL;
    if (cJSON_IsString(v)) name = v->valuestring;
    else if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "content")))
        name = cJSON_GetObjectItemCaseSensitive(v, "content")->valuestring;
    else if (v && !cJSON_IsNull(v))
        return gp_errf(err, GP_EINPUT, "%s: key \"pad_token\" must be a string, {\"content\": ...} or null", path);
    if (name && !lookup(b, name, pad))
        return gp_errf(err, GP_EINPUT, "%s: key \"pad_token\" = \"%s\" is not a token of tokenizer.json", path, name);
    if (!name && !lookup(b, "<|endoftext|>", pad)) *pad = 0;
    const char *side = NULL;
    if (cfg) {
        gp_status rc = gp_json_opt_string(cfg, "truncation_side", &side, path, err);
        if (rc) return rc;
    }
    if (side && strcmp(side, "left") != 0 && strcmp(side, "right") != 0)
        return gp_errf(err, GP_EINPUT, "%s: key \"truncation_side\" must be \"left\" or \"right\"", path);
    b->trunc_left = side && strcmp(side, "left") == 0;
    return GP_OK;
}

gp_status gp_bpe_load(const char *dir, const cJSON *tok_json, const char *tok_json_path, const cJSON *tok_cfg,
                      const char *tok_cfg_path, gp_tokenizer_impl *out, gp_err *err) {
    (void)dir;
    bpe *b = gp_calloc(1, sizeof *b);
    const char *path = tok_json_path;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tok_json, "model");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(tok_json, "added_tokens");
    char names[128] = "";
    int32_t pad = 0;
    gp_status rc;
    if ((rc = load_model(b, model, added, path, err)) || (rc = load_added(b, added, path, err)) ||
        (rc = load_normalizer(b, cJSON_GetObjectItemCaseSensitive(tok_json, "normalizer"), path, "normalizer", err)) ||
        (rc = load_pre(b, cJSON_GetObjectItemCaseSensitive(tok_json, "pre_tokenizer"), path, err)) ||
        (rc = load_post(b, cJSON_GetObjectItemCaseSensitive(tok_json, "post_processor"), path, "post_processor", names,
                        sizeof names, err)) ||
        (rc = load_config(b, tok_cfg, tok_cfg_path, &pad, err))) {
        bpe_free(b);
        return rc;
    }
    int distinct = 0;
    for (int i = 0; i < b->ntokens; i++) distinct += b->tokens[i] != NULL;
    snprintf(b->desc, sizeof b->desc, "byte-level BPE, %d tokens%s%s%s", distinct, b->nfc ? ", NFC" : "", names,
             b->ignore_merges ? ", ignore merges" : "");
    out->impl = b;
    out->encode = bpe_encode;
    out->free = bpe_free;
    out->token = bpe_token;
    out->vocab_size = distinct;
    out->max_id = b->ntokens;
    out->pad_id = pad;
    out->desc = b->desc;
    return GP_OK;
}
