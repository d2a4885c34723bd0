/* textfile.c — .txt / .jsonl text readers (see textfile.h). */
#include "gaprune/textfile.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_jsonl(const char *path) {
    size_t n = strlen(path);
    return n >= 6 && strcmp(path + n - 6, ".jsonl") == 0;
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return false;
    return true;
}

/* Calls fn for each record: its index, physical line number and bytes (newline stripped). */
typedef gp_status (*record_fn)(void *ctx, int64_t idx, int64_t line, char *s, size_t n, gp_err *err);

static gp_status each_record(const char *path, record_fn fn, void *ctx, gp_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return gp_errf(err, GP_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    bool jl = is_jsonl(path);
    char *buf = NULL;
    size_t cap = 0;
    ssize_t got;
    int64_t line = 0, idx = 0;
    gp_status rc = GP_OK;
    while ((got = getline(&buf, &cap, f)) >= 0) {
        line++;
        size_t n = (size_t)got;
        if (n && buf[n - 1] == '\n') n--;
        if (n && buf[n - 1] == '\r') n--;
        buf[n] = '\0';
        if (jl && blank(buf, n)) continue;
        if ((rc = fn(ctx, idx++, line, buf, n, err))) break;
    }
    if (!rc && ferror(f)) rc = gp_errf(err, GP_EINPUT, "%s: read error", path);
    free(buf);
    fclose(f);
    return rc;
}

static gp_status count_fn(void *ctx, int64_t idx, int64_t line, char *s, size_t n, gp_err *err) {
    (void)idx, (void)line, (void)s, (void)n, (void)err;
    (*(int64_t *)ctx)++;
    return GP_OK;
}

gp_status gp_texts_count(const char *path, int64_t *n, gp_err *err) {
    *n = 0;
    return each_record(path, count_fn, n, err);
}

typedef struct {
    const char *path;
    int64_t start, count;
    bool want_text, want_ids;
    gp_texts *out;
} read_ctx;

static gp_status read_fn(void *vctx, int64_t idx, int64_t line, char *s, size_t n, gp_err *err) {
    read_ctx *c = vctx;
    if (idx < c->start || idx >= c->start + c->count) return GP_OK;
    int64_t k = idx - c->start;
    gp_texts *t = c->out;
    if (!is_jsonl(c->path)) {
        if (c->want_text) t->text[k] = gp_strdup(s);
        if (c->want_ids) {
            char num[32];
            snprintf(num, sizeof num, "%lld", (long long)line);
            t->id[k] = gp_strdup(num);
        }
        t->n = k + 1;
        return GP_OK;
    }
    cJSON *j = cJSON_ParseWithLength(s, n);
    gp_status rc = GP_OK;
    if (!cJSON_IsObject(j)) {
        rc = gp_errf(err, GP_EINPUT, "%s:%lld: not a JSON object", c->path, (long long)line);
        goto done;
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text");
    const cJSON *title = cJSON_GetObjectItemCaseSensitive(j, "title");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "_id");
    if (!cJSON_IsString(text)) {
        rc = gp_errf(err, GP_EINPUT, "%s:%lld: %s \"text\"", c->path, (long long)line,
                     text ? "non-string" : "missing field");
        goto done;
    }
    if (title && !cJSON_IsString(title) && !cJSON_IsNull(title)) {
        rc = gp_errf(err, GP_EINPUT, "%s:%lld: \"title\" must be a string", c->path, (long long)line);
        goto done;
    }
    if (id && !cJSON_IsString(id) && !cJSON_IsNumber(id)) {
        rc = gp_errf(err, GP_EINPUT, "%s:%lld: \"_id\" must be a string or a number", c->path, (long long)line);
        goto done;
    }
    if (c->want_text) {
        const char *ti = cJSON_IsString(title) ? title->valuestring : "";
        if (*ti) {
            size_t a = strlen(ti), b = strlen(text->valuestring);
            char *x = gp_malloc(a + b + 2);
            memcpy(x, ti, a);
            x[a] = ' ';
            memcpy(x + a + 1, text->valuestring, b + 1);
            t->text[k] = x;
        } else {
            t->text[k] = gp_strdup(text->valuestring);
        }
    }
    if (c->want_ids) {
        char num[64];
        if (cJSON_IsString(id)) {
            t->id[k] = gp_strdup(id->valuestring);
        } else {
            if (cJSON_IsNumber(id)) snprintf(num, sizeof num, "%.17g", id->valuedouble);
            else snprintf(num, sizeof num, "%lld", (long long)line);
            t->id[k] = gp_strdup(num);
        }
    }
    t->n = k + 1;
done:
    cJSON_Delete(j);
    return rc;
}

gp_status gp_texts_read(const char *path, int64_t start, int64_t count, bool want_text, bool want_ids,
                        gp_texts *out, gp_err *err) {
    memset(out, 0, sizeof *out);
    if (count < 0) count = 0;
    if (want_text) out->text = gp_calloc((size_t)count + 1, sizeof(char *));
    if (want_ids) out->id = gp_calloc((size_t)count + 1, sizeof(char *));
    read_ctx c = {path, start, count, want_text, want_ids, out};
    gp_status rc = each_record(path, read_fn, &c, err);
    if (!rc && out->n != count)
        rc = gp_errf(err, GP_EINPUT, "%s: expected %lld records from %lld, found %lld (file changed?)", path,
                     (long long)count, (long long)start, (long long)out->n);
    if (rc) {
        out->n = count; /* free every slot that may have been filled */
        gp_texts_free(out);
    }
    return rc;
}

void gp_texts_free(gp_texts *t) {
    for (int64_t i = 0; i < t->n; i++) {
        if (t->text) free(t->text[i]);
        if (t->id) free(t->id[i]);
    }
    free(t->text);
    free(t->id);
    memset(t, 0, sizeof *t);
}
