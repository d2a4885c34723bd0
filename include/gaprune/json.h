/*
 * json.h — cJSON helpers that report missing keys and wrong types as input errors naming the
 * file and the key.
 *
 * Usage:
 *     cJSON *cfg; gp_err err = {0};
 *     if (gp_json_load(path, &cfg, &err)) return err.code;
 *     int64_t h; if (gp_json_int(cfg, "hidden_size", &h, path, &err)) ...
 *     double eps = 1e-12; gp_json_opt_double(cfg, "layer_norm_eps", &eps, path, &err);
 *     cJSON_Delete(cfg);
 */
#pragma once

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"

gp_status gp_json_load(const char *path, cJSON **out, gp_err *err);
/* Parses an in-memory text; `what` names it in messages. */
gp_status gp_json_parse(const char *text, size_t len, const char *what, cJSON **out, gp_err *err);

/* Required keys: absent or of the wrong type is GP_EINPUT naming `what` and the key. */
gp_status gp_json_int(const cJSON *obj, const char *key, int64_t *out, const char *what, gp_err *err);
gp_status gp_json_double(const cJSON *obj, const char *key, double *out, const char *what, gp_err *err);
gp_status gp_json_string(const cJSON *obj, const char *key, const char **out, const char *what,
                         gp_err *err);

/* Optional keys: absent or JSON null leaves *out unchanged; a wrong type is still an error. */
gp_status gp_json_opt_int(const cJSON *obj, const char *key, int64_t *out, const char *what, gp_err *err);
gp_status gp_json_opt_double(const cJSON *obj, const char *key, double *out, const char *what,
                             gp_err *err);
gp_status gp_json_opt_bool(const cJSON *obj, const char *key, bool *out, const char *what, gp_err *err);
gp_status gp_json_opt_string(const cJSON *obj, const char *key, const char **out, const char *what,
                             gp_err *err);

/* A JSON text on one line (malloc'd, NUL-terminated, *out_len bytes): returned unchanged when it
 * has no line break; otherwise whitespace between tokens is dropped and line breaks or other
 * control characters inside strings (which JSON does not allow raw) become \u00XX escapes. */
char *gp_json_one_line(const char *text, size_t len, size_t *out_len);
