/*
 * textfile.h — texts to encode: one per line (.txt), or JSON lines (.jsonl) with "text" and
 * optional "_id" and "title" (BEIR corpus records become title + " " + text).
 *
 * A rank reads only its slice [start, start + count) of the records, so no rank holds a large
 * corpus whole. A bad JSON line is GP_EINPUT with "file:line: reason".
 *
 * Usage:
 *     int64_t n; gp_texts_count(path, &n, &err);
 *     gp_texts t; gp_texts_read(path, lo, hi - lo, true, false, &t, &err);
 *     ... t.text[i] ...; gp_texts_free(&t);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"

typedef struct {
    int64_t n;
    char **text; /* [n] or NULL when not asked for */
    char **id;   /* [n] "_id", or the 1-based line number for .txt; NULL when not asked for */
} gp_texts;

gp_status gp_texts_count(const char *path, int64_t *n, gp_err *err);
gp_status gp_texts_read(const char *path, int64_t start, int64_t count, bool want_text, bool want_ids,
                        gp_texts *out, gp_err *err);
void gp_texts_free(gp_texts *t);
