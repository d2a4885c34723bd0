/* strmap.c — open-addressing string map (see strmap.h). */
#include "gaprune/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "gaprune/check.h"

typedef struct {
    char *key; /* NULL = empty slot */
    uint32_t len;
    uint32_t hash;
    int32_t value;
} slot;

struct gp_strmap {
    size_t cap, n; /* cap is a power of two, kept at most half full */
    slot *s;
};

static uint32_t fnv1a(const char *k, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)k[i]) * 16777619u;
    return h;
}

gp_strmap *gp_strmap_init(size_t expected) {
    gp_strmap *m = gp_calloc(1, sizeof *m);
    m->cap = 16;
    while (m->cap < 2 * expected) m->cap *= 2;
    m->s = gp_calloc(m->cap, sizeof *m->s);
    return m;
}

void gp_strmap_free(gp_strmap *m) {
    if (!m) return;
    for (size_t i = 0; i < m->cap; i++) free(m->s[i].key);
    free(m->s);
    free(m);
}

static slot *find(const gp_strmap *m, const char *k, size_t n, uint32_t h) {
    size_t mask = m->cap - 1, i = h & mask;
    for (;;) {
        slot *s = &m->s[i];
        if (!s->key || (s->hash == h && s->len == n && memcmp(s->key, k, n) == 0)) return s;
        i = (i + 1) & mask;
    }
}

static void grow(gp_strmap *m) {
    slot *old = m->s;
    size_t oc = m->cap;
    m->cap *= 2;
    m->s = gp_calloc(m->cap, sizeof *m->s);
    for (size_t i = 0; i < oc; i++)
        if (old[i].key) *find(m, old[i].key, old[i].len, old[i].hash) = old[i];
    free(old);
}

bool gp_strmap_put(gp_strmap *m, const char *key, size_t len, int32_t value) {
    if (2 * (m->n + 1) > m->cap) grow(m);
    uint32_t h = fnv1a(key, len);
    slot *s = find(m, key, len, h);
    if (s->key) {
        s->value = value;
        return false;
    }
    s->key = gp_malloc(len + 1);
    memcpy(s->key, key, len);
    s->key[len] = '\0';
    s->len = (uint32_t)len;
    s->hash = h;
    s->value = value;
    m->n++;
    return true;
}

bool gp_strmap_get(const gp_strmap *m, const char *key, size_t len, int32_t *value) {
    const slot *s = find(m, key, len, fnv1a(key, len));
    if (!s->key) return false;
    if (value) *value = s->value;
    return true;
}

size_t gp_strmap_size(const gp_strmap *m) { return m->n; }
