/* vocab.c — WordPiece vocabulary learning by pair merges (see vocab.h). */
#include "gaprune/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "gaprune/fs.h"
#include "gaprune/log.h"
#include "gaprune/strmap.h"
#include "tokenizer_impl.h"

#define MAX_WORDS 40000 /* the most frequent distinct words drive the merges */

typedef struct {
    gp_strmap *counts; /* word -> index into words */
    char **words;
    int64_t *freq;
    int n, cap;
} word_table;

static void add_word(void *vctx, const int32_t *cp, int n) {
    word_table *t = vctx;
    char buf[1024];
    int len = 0;
    for (int i = 0; i < n && len < (int)sizeof buf - 4; i++) len += (int)utf8proc_encode_char(cp[i], (utf8proc_uint8_t *)buf + len);
    int32_t idx;
    if (gp_strmap_get(t->counts, buf, (size_t)len, &idx)) {
        t->freq[idx]++;
        return;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 4096;
        t->words = gp_realloc(t->words, (size_t)t->cap * sizeof(char *));
        t->freq = gp_realloc(t->freq, (size_t)t->cap * sizeof(int64_t));
    }
    t->words[t->n] = gp_malloc((size_t)len + 1);
    memcpy(t->words[t->n], buf, (size_t)len);
    t->words[t->n][len] = '\0';
    t->freq[t->n] = 1;
    gp_strmap_put(t->counts, buf, (size_t)len, t->n);
    t->n++;
}

typedef struct {
    char **s;
    int n, cap;
    gp_strmap *ids;
} tokens;

static int token_id(tokens *t, const char *s) {
    int32_t id;
    if (gp_strmap_get(t->ids, s, strlen(s), &id)) return id;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 1024;
        t->s = gp_realloc(t->s, (size_t)t->cap * sizeof(char *));
    }
    t->s[t->n] = gp_strdup(s);
    gp_strmap_put(t->ids, s, strlen(s), t->n);
    return t->n++;
}

/* pair counts: open addressing on (a, b) */
typedef struct {
    uint64_t key; /* a << 32 | b, or ~0 for empty */
    int64_t count;
} pair_slot;

static uint64_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static int cmp_freq(const void *a, const void *b, void *ctx) {
    const word_table *t = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    if (t->freq[x] != t->freq[y]) return t->freq[x] > t->freq[y] ? -1 : 1;
    return strcmp(t->words[x], t->words[y]);
}

gp_status gp_wordpiece_learn(const char *const *texts, int64_t n, int vocab_size, bool lower, const char *vocab_path,
                             gp_err *err) {
    word_table wt = {.counts = gp_strmap_init(1 << 16)};
    for (int64_t i = 0; i < n; i++) gp_bert_words(texts[i], strlen(texts[i]), lower, add_word, &wt);
    int *order = gp_malloc((size_t)(wt.n ? wt.n : 1) * sizeof(int));
    for (int i = 0; i < wt.n; i++) order[i] = i;
    qsort_r(order, (size_t)wt.n, sizeof(int), cmp_freq, &wt);
    int nw = wt.n < MAX_WORDS ? wt.n : MAX_WORDS;

    tokens tk = {.ids = gp_strmap_init(2 * (size_t)vocab_size)};
    static const char *specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; i < 5; i++) token_id(&tk, specials[i]);
    /* every word as its characters: alphabet first, in order of first appearance among the words */
    int **sym = gp_malloc((size_t)(nw ? nw : 1) * sizeof(int *));
    int *len = gp_malloc((size_t)(nw ? nw : 1) * sizeof(int));
    int64_t *freq = gp_malloc((size_t)(nw ? nw : 1) * sizeof(int64_t));
    int64_t total_syms = 0;
    for (int w = 0; w < nw; w++) {
        const char *s = wt.words[order[w]];
        int32_t *cp;
        int m;
        gp_utf8_decode(s, strlen(s), &cp, &m);
        sym[w] = gp_malloc((size_t)(m ? m : 1) * sizeof(int));
        for (int k = 0; k < m; k++) {
            char piece[16] = "##";
            int off = k ? 2 : 0, l = (int)utf8proc_encode_char(cp[k], (utf8proc_uint8_t *)piece + off);
            piece[off + l] = '\0';
            sym[w][k] = token_id(&tk, piece);
        }
        len[w] = m;
        freq[w] = wt.freq[order[w]];
        total_syms += m;
        free(cp);
    }
    if (tk.n > vocab_size)
        gp_warn("vocabulary: %d characters alone exceed %d tokens; the rarest become [UNK]", tk.n - 5, vocab_size);
    size_t cap = 16;
    while (cap < 2 * (size_t)total_syms) cap *= 2;
    pair_slot *tab = gp_malloc(cap * sizeof(pair_slot));
    while (tk.n < vocab_size) {
        memset(tab, 0xff, cap * sizeof(pair_slot));
        for (int w = 0; w < nw; w++)
            for (int k = 0; k + 1 < len[w]; k++) {
                uint64_t key = (uint64_t)sym[w][k] << 32 | (uint32_t)sym[w][k + 1];
                size_t h = pair_hash(key) & (cap - 1);
                while (tab[h].key != key && tab[h].key != ~0ull) h = (h + 1) & (cap - 1);
                if (tab[h].key == ~0ull) tab[h].key = key, tab[h].count = 0;
                tab[h].count += freq[w];
            }
        uint64_t best = ~0ull;
        int64_t best_n = 0;
        for (size_t h = 0; h < cap; h++)
            if (tab[h].key != ~0ull && (tab[h].count > best_n || (tab[h].count == best_n && tab[h].key < best)))
                best = tab[h].key, best_n = tab[h].count;
        if (best_n < 2) break; /* nothing left worth a token */
        int a = (int)(best >> 32), b = (int)(best & 0xffffffffu);
        const char *sb = tk.s[b][0] == '#' && tk.s[b][1] == '#' ? tk.s[b] + 2 : tk.s[b];
        char *merged = gp_malloc(strlen(tk.s[a]) + strlen(sb) + 1);
        strcpy(merged, tk.s[a]);
        strcat(merged, sb);
        int id = token_id(&tk, merged);
        free(merged);
        for (int w = 0; w < nw; w++) {
            int o = 0;
            for (int k = 0; k < len[w]; k++) {
                if (k + 1 < len[w] && sym[w][k] == a && sym[w][k + 1] == b) {
                    sym[w][o++] = id;
                    k++;
                } else {
                    sym[w][o++] = sym[w][k];
                }
            }
            len[w] = o;
        }
    }
    free(tab);
    FILE *f = gp_file_create(vocab_path, err);
    gp_status rc = GP_EINPUT;
    if (f) {
        int learned = tk.n < vocab_size ? tk.n : vocab_size;
        for (int i = 0; i < learned; i++) fprintf(f, "%s\n", tk.s[i]);
        for (int i = learned; i < vocab_size; i++) fprintf(f, "[unused%d]\n", i - learned);
        rc = gp_file_commit(f, vocab_path, err);
        gp_log0("vocabulary: %d tokens learned from %d distinct words (%lld texts)%s", learned, wt.n, (long long)n,
                learned < vocab_size ? ", the rest [unusedN]" : "");
    }
    for (int w = 0; w < nw; w++) free(sym[w]);
    free(sym), free(len), free(freq), free(order);
    for (int i = 0; i < tk.n; i++) free(tk.s[i]);
    free(tk.s);
    gp_strmap_free(tk.ids);
    for (int i = 0; i < wt.n; i++) free(wt.words[i]);
    free(wt.words), free(wt.freq);
    gp_strmap_free(wt.counts);
    return rc;
}
