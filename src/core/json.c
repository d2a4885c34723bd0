/* json.c — cJSON helpers with input-error reporting (see json.h). */
#include "gaprune/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/fs.h"

gp_status gp_json_parse(const char *text, size_t len, const char *what, cJSON **out, gp_err *err) {
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!*out) {
        size_t at = end ? (size_t)(end - text) : 0;
        int line = 1;
        for (size_t i = 0; i < at && i < len; i++) line += text[i] == '\n';
        return gp_errf(err, GP_EINPUT, "%s:%d: invalid JSON (near byte %zu)", what, line, at);
    }
    return GP_OK;
}

gp_status gp_json_load(const char *path, cJSON **out, gp_err *err) {
    char *buf;
    size_t n;
    *out = NULL;
    if (gp_read_file(path, &buf, &n, err)) return GP_EINPUT;
    gp_status rc = gp_json_parse(buf, n, path, out, err);
    free(buf);
    return rc;
}

static const cJSON *get(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

static gp_status opt_int(const cJSON *obj, const char *key, int64_t *out, const char *what,
                         gp_err *err, bool required) {
    const cJSON *v = get(obj, key);
    if (!v) return required ? gp_errf(err, GP_EINPUT, "%s: missing key \"%s\"", what, key) : GP_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 9e15)
        return gp_errf(err, GP_EINPUT, "%s: key \"%s\" must be an integer", what, key);
    *out = (int64_t)v->valuedouble;
    return GP_OK;
}

static gp_status opt_double(const cJSON *obj, const char *key, double *out, const char *what,
                            gp_err *err, bool required) {
    const cJSON *v = get(obj, key);
    if (!v) return required ? gp_errf(err, GP_EINPUT, "%s: missing key \"%s\"", what, key) : GP_OK;
    if (!cJSON_IsNumber(v)) return gp_errf(err, GP_EINPUT, "%s: key \"%s\" must be a number", what, key);
    *out = v->valuedouble;
    return GP_OK;
}

static gp_status opt_string(const cJSON *obj, const char *key, const char **out, const char *what,
                            gp_err *err, bool required) {
    const cJSON *v = get(obj, key);
    if (!v) return required ? gp_errf(err, GP_EINPUT, "%s: missing key \"%s\"", what, key) : GP_OK;
    if (!cJSON_IsString(v)) return gp_errf(err, GP_EINPUT, "%s: key \"%s\" must be a string", what, key);
    *out = v->valuestring;
    return GP_OK;
}

gp_status gp_json_int(const cJSON *obj, const char *key, int64_t *out, const char *what, gp_err *err) {
    return opt_int(obj, key, out, what, err, true);
}
gp_status gp_json_opt_int(const cJSON *obj, const char *key, int64_t *out, const char *what, gp_err *err) {
    return opt_int(obj, key, out, what, err, false);
}
gp_status gp_json_double(const cJSON *obj, const char *key, double *out, const char *what, gp_err *err) {
    return opt_double(obj, key, out, what, err, true);
}
gp_status gp_json_opt_double(const cJSON *obj, const char *key, double *out, const char *what,
                             gp_err *err) {
    return opt_double(obj, key, out, what, err, false);
}
gp_status gp_json_string(const cJSON *obj, const char *key, const char **out, const char *what,
                         gp_err *err) {
    return opt_string(obj, key, out, what, err, true);
}
gp_status gp_json_opt_string(const cJSON *obj, const char *key, const char **out, const char *what,
                             gp_err *err) {
    return opt_string(obj, key, out, what, err, false);
}

gp_status gp_json_opt_bool(const cJSON *obj, const char *key, bool *out, const char *what, gp_err *err) {
    const cJSON *v = get(obj, key);
    if (!v) return GP_OK;
    if (!cJSON_IsBool(v)) return gp_errf(err, GP_EINPUT, "%s: key \"%s\" must be true or false", what, key);
    *out = cJSON_IsTrue(v);
    return GP_OK;
}

char *gp_json_one_line(const char *t, size_t n, size_t *out_len) {
    if (!memchr(t, '\n', n) && !memchr(t, '\r', n)) {
        char *o = gp_malloc(n + 1);
        memcpy(o, t, n);
        o[n] = '\0';
        *out_len = n;
        return o;
    }
    char *o = gp_malloc(6 * n + 1);
    size_t k = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (in_str && ch < 0x20) {
            k += (size_t)sprintf(o + k, "\\u%04x", ch);
            esc = false;
        } else if (in_str) {
            o[k++] = (char)ch;
            if (esc) esc = false;
            else if (ch == '\\') esc = true;
            else if (ch == '"') in_str = false;
        } else if (ch == '"') {
            o[k++] = (char)ch;
            in_str = true;
        } else if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            o[k++] = (char)ch;
        }
    }
    o[k] = '\0';
    *out_len = k;
    return o;
}
