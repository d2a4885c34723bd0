/* tokenize.c — the stage of `gaprune tokenize` (see tokenize.h): token ids of texts, one line
 * per text, printed by rank 0. */
#include "gaprune/tokenize.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/json.h"
#include "gaprune/log.h"
#include "gaprune/model.h"

/* The default truncation of a folder: the model's (config.json and sentence_bert_config.json);
 * a folder with tokenizer files only has no model limit, so tokenizer_config.json's
 * model_max_length applies, else none (HF writes 1e30 for "unset"). */
static gp_status default_max_length(const char *dir, int *out, gp_err *err) {
    char *cpath = gp_path_join(dir, "config.json");
    bool model = gp_file_exists(cpath);
    free(cpath);
    if (model) {
        gp_model_config cfg;
        gp_status rc = gp_model_config_load(dir, &cfg, err);
        return rc ? rc : gp_model_default_max_length(dir, cfg.max_positions, out, err);
    }
    *out = INT_MAX;
    char *tpath = gp_path_join(dir, "tokenizer_config.json");
    cJSON *tc = NULL;
    gp_status rc = gp_file_exists(tpath) ? gp_json_load(tpath, &tc, err) : GP_OK;
    const cJSON *v = tc ? cJSON_GetObjectItemCaseSensitive(tc, "model_max_length") : NULL;
    if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble < (1 << 30)) *out = (int)v->valuedouble;
    cJSON_Delete(tc);
    free(tpath);
    return rc;
}

static void print_ids(const gp_tokenizer *tok, const char *text, size_t len, int max_len, bool tokens) {
    int32_t *ids;
    int n = gp_tokenizer_encode(tok, text, len, max_len, &ids);
    for (int i = 0; i < n; i++) {
        if (tokens) {
            const char *t = gp_tokenizer_token(tok, ids[i]);
            printf("%s%s", i ? " " : "", t ? t : "?");
        } else {
            printf("%s%d", i ? " " : "", ids[i]);
        }
    }
    putchar('\n');
    free(ids);
}

gp_status gp_tokenize_run(const gp_tokenize_opts *o, gp_err *err) {
    gp_tokenizer *tok = NULL;
    int default_len = 0;
    gp_status rc = default_max_length(o->model_dir, &default_len, err);
    if (!rc) rc = gp_tokenizer_load(o->model_dir, &tok, err);
    if ((rc = gp_agree(rc, err)) || gp_rank() != 0) {
        gp_tokenizer_free(tok);
        return rc;
    }
    /* a --max-length beyond what the folder takes is capped, and said once (stdout stays the ids) */
    int max_length = o->max_length;
    if (max_length > default_len)
        gp_warn("--max-length %d is more than the %d tokens %s takes; using %d", max_length, default_len, o->model_dir,
                default_len);
    if (max_length <= 0 || max_length > default_len) max_length = default_len;
    if (o->ntexts > 0) {
        for (int i = 0; i < o->ntexts; i++) print_ids(tok, o->texts[i], strlen(o->texts[i]), max_length, o->tokens);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while ((got = getline(&line, &cap, stdin)) >= 0) {
            size_t n = (size_t)got;
            if (n && line[n - 1] == '\n') n--;
            if (n && line[n - 1] == '\r') n--;
            print_ids(tok, line, n, max_length, o->tokens);
        }
        free(line);
    }
    gp_tokenizer_free(tok);
    return GP_OK;
}
