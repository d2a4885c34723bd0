/*
 * strmap.h — a string → int32 hash map (open addressing, FNV-1a).
 *
 * Written here because the C standard library has no reentrant map (hsearch is one global
 * table) and the vocabularies we look up are read once and queried millions of times; a
 * 60-line table beats pulling in GLib for one container.
 *
 * Usage:
 *     gp_strmap *m = gp_strmap_init(1024);
 *     gp_strmap_put(m, "hello", 5, 42);            // keys are copied
 *     int32_t id; if (gp_strmap_get(m, "hello", 5, &id)) ...
 *     gp_strmap_free(m);
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gp_strmap gp_strmap;

gp_strmap *gp_strmap_init(size_t expected);
void gp_strmap_free(gp_strmap *m);
/* Inserts or overwrites; returns true when the key was new. */
bool gp_strmap_put(gp_strmap *m, const char *key, size_t len, int32_t value);
bool gp_strmap_get(const gp_strmap *m, const char *key, size_t len, int32_t *value);
size_t gp_strmap_size(const gp_strmap *m);
