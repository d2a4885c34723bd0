/* triplets.c — streaming triplet corpora: validation, seeded selection, reading (see triplets.h). */
#include "gaprune/triplets.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

#include "gaprune/dist.h"
#include "gaprune/hash.h"
#include "gaprune/log.h"
#include "gaprune/rng.h"

/* ---- one record ------------------------------------------------------------------------- */

static bool valid_utf8(const char *s) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t n = (utf8proc_ssize_t)strlen(s);
    while (n > 0) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(p, n, &c);
        if (k <= 0) return false;
        p += k;
        n -= k;
    }
    return true;
}

/* A string, or the first string of a non-empty list, under either of two names. */
static gp_status text_field(const cJSON *j, const char *name, const char *alt, const char **out, const char *path,
                            int64_t line, gp_err *err) {
    const char *used = name;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!v && alt) {
        v = cJSON_GetObjectItemCaseSensitive(j, alt);
        used = alt;
    }
    if (!v) return gp_errf(err, GP_EINPUT, "%s:%lld: missing field \"%s\"", path, (long long)line, name);
    if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) == 0)
            return gp_errf(err, GP_EINPUT, "%s:%lld: field \"%s\" is an empty list", path, (long long)line, used);
        v = cJSON_GetArrayItem(v, 0);
    }
    if (!cJSON_IsString(v))
        return gp_errf(err, GP_EINPUT, "%s:%lld: field \"%s\" must be a string or a list of strings", path,
                       (long long)line, used);
    if (!valid_utf8(v->valuestring))
        return gp_errf(err, GP_EINPUT, "%s:%lld: field \"%s\" is not valid UTF-8", path, (long long)line, used);
    *out = v->valuestring;
    return GP_OK;
}

gp_status gp_triplet_parse(const char *text, size_t len, const char *path, int64_t line, gp_triplet *t, gp_err *err) {
    memset(t, 0, sizeof *t);
    cJSON *j = cJSON_ParseWithLength(text, len);
    gp_status rc = GP_OK;
    const char *q = NULL, *p = NULL, *n = NULL;
    if (!j) {
        rc = gp_errf(err, GP_EINPUT, "%s:%lld: not valid JSON", path, (long long)line);
    } else if (!cJSON_IsObject(j)) {
        rc = gp_errf(err, GP_EINPUT, "%s:%lld: the record is not a JSON object", path, (long long)line);
    } else if (!(rc = text_field(j, "query", NULL, &q, path, line, err)) &&
               !(rc = text_field(j, "positive", "pos", &p, path, line, err)) &&
               !(rc = text_field(j, "negative", "neg", &n, path, line, err))) {
        t->query = gp_strdup(q);
        t->positive = gp_strdup(p);
        t->negative = gp_strdup(n);
    }
    cJSON_Delete(j);
    return rc;
}

void gp_triplet_free(gp_triplet *t) {
    free(t->query);
    free(t->positive);
    free(t->negative);
    memset(t, 0, sizeof *t);
}

/* ---- selection: the k smallest keys (a max-heap) ----------------------------------------- */

typedef struct {
    uint64_t key;
    int64_t index;
    gp_record_ref ref;
} entry;

typedef struct {
    int64_t k, n;
    entry *e;
} heap;

static int entry_less(const entry *a, const entry *b) { return a->key < b->key || (a->key == b->key && a->index < b->index); }

static void heap_push(heap *h, entry x) {
    if (h->n < h->k) {
        int64_t i = h->n++;
        h->e[i] = x;
        while (i > 0 && entry_less(&h->e[(i - 1) / 2], &h->e[i])) {
            entry t = h->e[i];
            h->e[i] = h->e[(i - 1) / 2];
            h->e[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
        return;
    }
    if (!entry_less(&x, &h->e[0])) return;
    h->e[0] = x; /* replace the largest and sift down */
    int64_t i = 0;
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && entry_less(&h->e[m], &h->e[l])) m = l;
        if (r < h->n && entry_less(&h->e[m], &h->e[r])) m = r;
        if (m == i) break;
        entry t = h->e[i];
        h->e[i] = h->e[m];
        h->e[m] = t;
        i = m;
    }
}

static int by_offset(const void *a, const void *b) {
    const gp_record_ref *x = a, *y = b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* ---- the streaming scan --------------------------------------------------------------------- */

typedef struct {
    const char *path;
    bool skip_bad;
    uint64_t seed;
    heap h;
    int64_t n_records, n_valid, n_skipped;
    char *rec; /* bytes of the record being read */
    size_t rec_len, rec_cap;
    int64_t rec_offset, rec_line;
} scan;

static void rec_put(scan *s, char c) {
    if (s->rec_len + 1 >= s->rec_cap) {
        s->rec_cap = s->rec_cap ? 2 * s->rec_cap : 4096;
        s->rec = gp_realloc(s->rec, s->rec_cap);
    }
    s->rec[s->rec_len++] = c;
}

static gp_status record_done(scan *s, gp_err *err) {
    s->n_records++;
    gp_triplet t;
    gp_err e = {0};
    if (gp_triplet_parse(s->rec, s->rec_len, s->path, s->rec_line, &t, &e)) {
        if (!s->skip_bad) {
            *err = e;
            return GP_EINPUT;
        }
        if (s->n_skipped < 5) gp_warn("skipping: %s", e.msg);
        s->n_skipped++;
        return GP_OK;
    }
    gp_triplet_free(&t);
    entry x = {gp_record_key(s->seed, s->n_valid), s->n_valid, {s->rec_offset, (int64_t)s->rec_len, s->rec_line}};
    heap_push(&s->h, x);
    s->n_valid++;
    return GP_OK;
}

static bool is_space(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

enum { S_DETECT, S_JSONL, S_ARR_BEFORE, S_ARR_ELEM, S_ARR_AFTER, S_ARR_END };

gp_status gp_corpus_index(const char *path, int64_t max_samples, uint64_t seed, bool skip_bad, gp_corpus *c,
                          gp_err *err) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->path = gp_strdup(path);
    FILE *f = fopen(path, "rb");
    if (!f) return gp_errf(err, GP_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    scan s = {.path = path, .skip_bad = skip_bad, .seed = seed};
    s.h.k = max_samples;
    s.h.e = gp_malloc((size_t)(max_samples < 1024 ? max_samples : 1024) * sizeof(entry));
    int64_t heap_cap = max_samples < 1024 ? max_samples : 1024;
    gp_sha256 *sha = gp_sha256_init();
    enum { BUF = 1 << 20 };
    char *buf = gp_malloc(BUF);
    int state = S_DETECT, depth = 0, in_str = 0, esc = 0, scalar = 0;
    int64_t off = 0, line = 1;
    gp_status rc = GP_OK;
    size_t got;
    while (!rc && (got = fread(buf, 1, BUF, f)) > 0) {
        gp_sha256_update(sha, buf, got);
        for (size_t i = 0; i < got && !rc; i++, off++) {
            char ch = buf[i];
            if (s.h.n == heap_cap && heap_cap < max_samples) { /* grow the heap lazily */
                heap_cap = heap_cap * 2 < max_samples ? heap_cap * 2 : max_samples;
                s.h.e = gp_realloc(s.h.e, (size_t)heap_cap * sizeof(entry));
            }
            switch (state) {
            case S_DETECT:
                if (is_space(ch)) break;
                if (ch == '[') {
                    state = S_ARR_BEFORE;
                    break;
                }
                state = S_JSONL;
                s.rec_len = 0;
                s.rec_offset = off;
                s.rec_line = line;
                /* fall through: this byte starts the first line */
                /* FALLTHRU */
            case S_JSONL:
                if (ch == '\n') {
                    size_t n = s.rec_len;
                    while (n && is_space((unsigned char)s.rec[n - 1])) n--;
                    size_t lead = 0;
                    while (lead < n && is_space((unsigned char)s.rec[lead])) lead++;
                    if (n > lead) {
                        s.rec_len = n; /* trailing \r and blanks are not part of the record */
                        rc = record_done(&s, err);
                    }
                    s.rec_len = 0;
                    s.rec_offset = off + 1;
                    s.rec_line = line + 1;
                } else {
                    rec_put(&s, ch);
                }
                break;
            case S_ARR_BEFORE:
            case S_ARR_AFTER:
                if (is_space(ch)) break;
                if (ch == ']') {
                    state = S_ARR_END;
                    break;
                }
                if (state == S_ARR_AFTER) {
                    if (ch == ',') {
                        state = S_ARR_BEFORE;
                        break;
                    }
                    rc = gp_errf(err, GP_EINPUT, "%s:%lld: expected ',' or ']' between records", path, (long long)line);
                    break;
                }
                state = S_ARR_ELEM;
                s.rec_len = 0;
                s.rec_offset = off;
                s.rec_line = line;
                depth = 0;
                in_str = esc = 0;
                scalar = !(ch == '{' || ch == '[' || ch == '"');
                /* FALLTHRU */
            case S_ARR_ELEM:
                if (scalar && (ch == ',' || ch == ']' || is_space(ch))) {
                    rc = record_done(&s, err);
                    state = S_ARR_AFTER;
                    if (ch == ']') state = S_ARR_END;
                    else if (ch == ',') state = S_ARR_BEFORE;
                    break;
                }
                rec_put(&s, ch);
                if (scalar) break;
                if (in_str) {
                    if (esc) esc = 0;
                    else if (ch == '\\') esc = 1;
                    else if (ch == '"') {
                        in_str = 0;
                        if (depth == 0) { /* a bare string element */
                            rc = record_done(&s, err);
                            state = S_ARR_AFTER;
                        }
                    }
                } else if (ch == '"') {
                    in_str = 1;
                } else if (ch == '{' || ch == '[') {
                    depth++;
                } else if (ch == '}' || ch == ']') {
                    if (--depth == 0) {
                        rc = record_done(&s, err);
                        state = S_ARR_AFTER;
                    }
                }
                break;
            case S_ARR_END:
                if (!is_space(ch))
                    rc = gp_errf(err, GP_EINPUT, "%s:%lld: unexpected data after the JSON array", path, (long long)line);
                break;
            }
            if (ch == '\n') line++;
        }
    }
    if (!rc && ferror(f)) rc = gp_errf(err, GP_EINPUT, "%s: read error", path);
    fclose(f);
    free(buf);
    gp_sha256_final(sha, c->sha256);
    if (!rc) {
        if (state == S_JSONL && s.rec_len) { /* last line without a newline */
            size_t n = s.rec_len;
            while (n && is_space((unsigned char)s.rec[n - 1])) n--;
            s.rec_len = n;
            if (n) rc = record_done(&s, err);
        } else if (state == S_ARR_ELEM) {
            s.n_records++;
            if (!skip_bad)
                rc = gp_errf(err, GP_EINPUT, "%s:%lld: truncated JSON (the file ends inside this record)", path,
                             (long long)s.rec_line);
            else {
                gp_warn("skipping: %s:%lld: truncated JSON (the file ends inside this record)", path,
                        (long long)s.rec_line);
                s.n_skipped++;
            }
        } else if (state == S_ARR_BEFORE || state == S_ARR_AFTER) {
            if (!skip_bad)
                rc = gp_errf(err, GP_EINPUT, "%s:%lld: truncated JSON (the array is not closed)", path, (long long)line);
            else
                gp_warn("%s:%lld: truncated JSON (the array is not closed)", path, (long long)line);
        }
    }
    if (!rc && state == S_DETECT) rc = gp_errf(err, GP_EINPUT, "%s: empty file (no triplets)", path);
    if (!rc && s.n_valid == 0)
        rc = gp_errf(err, GP_EINPUT, "%s: no valid triplets (%lld records, %lld skipped)", path, (long long)s.n_records,
                     (long long)s.n_skipped);
    free(s.rec);
    if (rc) {
        free(s.h.e);
        return rc;
    }
    c->n_records = s.n_records;
    c->n_skipped = s.n_skipped;
    c->n_selected = s.h.n;
    c->sel = gp_malloc((size_t)(s.h.n ? s.h.n : 1) * sizeof(gp_record_ref));
    for (int64_t i = 0; i < s.h.n; i++) c->sel[i] = s.h.e[i].ref;
    qsort(c->sel, (size_t)c->n_selected, sizeof(gp_record_ref), by_offset);
    free(s.h.e);
    return GP_OK;
}

void gp_corpus_bcast(gp_corpus *c, int root) {
    if (gp_nranks() == 1) return;
    int64_t hdr[3] = {c->n_records, c->n_skipped, c->n_selected};
    gp_bcast_bytes(hdr, sizeof hdr, root);
    gp_bcast_bytes(c->sha256, sizeof c->sha256, root);
    gp_bcast_string(&c->path, root);
    if (gp_rank() != root) {
        c->n_records = hdr[0];
        c->n_skipped = hdr[1];
        c->n_selected = hdr[2];
        c->sel = gp_malloc((size_t)(hdr[2] ? hdr[2] : 1) * sizeof(gp_record_ref));
        c->fd = -1;
    }
    gp_bcast_bytes(c->sel, (size_t)c->n_selected * sizeof(gp_record_ref), root);
}

gp_status gp_corpus_read_raw(gp_corpus *c, int64_t i, char **text, gp_err *err) {
    GP_CHECK(i >= 0 && i < c->n_selected, "record %lld of %lld", (long long)i, (long long)c->n_selected);
    *text = NULL;
    if (c->fd < 0) {
        c->fd = open(c->path, O_RDONLY);
        if (c->fd < 0) return gp_errf(err, GP_EINPUT, "%s: cannot open: %s", c->path, strerror(errno));
    }
    const gp_record_ref *r = &c->sel[i];
    char *buf = gp_malloc((size_t)r->length + 1);
    ssize_t got = pread(c->fd, buf, (size_t)r->length, r->offset);
    if (got != (ssize_t)r->length) {
        free(buf);
        return gp_errf(err, GP_EINPUT, "%s:%lld: cannot read the record (file changed since it was indexed?)", c->path,
                       (long long)r->line);
    }
    buf[r->length] = '\0';
    *text = buf;
    return GP_OK;
}

gp_status gp_corpus_read(gp_corpus *c, int64_t i, gp_triplet *t, gp_err *err) {
    char *buf;
    gp_status rc = gp_corpus_read_raw(c, i, &buf, err);
    if (rc) {
        memset(t, 0, sizeof *t);
        return rc;
    }
    rc = gp_triplet_parse(buf, (size_t)c->sel[i].length, c->path, c->sel[i].line, t, err);
    free(buf);
    return rc;
}

void gp_corpus_free(gp_corpus *c) {
    if (c->fd >= 0) close(c->fd);
    free(c->path);
    free(c->sel);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}
