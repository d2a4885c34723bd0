/* tokenize.c — `gaprune tokenize`: token ids of texts, one line per text (rank 0 only). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/cli.h"
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

static void print_ids(const gp_tokenizer *tok, const char *text, size_t len, int max_len, int tokens) {
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

int gp_cmd_tokenize(int argc, char **argv) {
    const char *model_dir = NULL;
    int max_length = 0, tokens = 0;
    const gp_opt opts[] = {
        {"model", GP_OPT_STR, &model_dir, "DIR", "model folder, or a folder with tokenizer files only"},
        {"max-length", GP_OPT_INT, &max_length, "N",
         "truncate to N tokens (default: the model's, else tokenizer_config.json model_max_length)"},
        {"tokens", GP_OPT_FLAG, &tokens, NULL, "print token strings instead of ids"},
        {NULL, 0, NULL, NULL, NULL},
    };
    static const char *usage = "--model DIR [--max-length N] [--tokens] [TEXT ...]   (stdin, one text per line, when no TEXT)";
    gp_err err = {0};
    const char **pos = gp_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0;
    gp_status rc = gp_opts_parse("tokenize", usage, opts, argc, argv, pos, argc, &npos, &err);
    if (rc == GP_ESTOPPED) {
        free(pos);
        return GP_OK;
    }
    if (!rc && !model_dir) rc = gp_errf(&err, GP_EINPUT, "gaprune tokenize: --model is required (see --help)");
    gp_tokenizer *tok = NULL;
    int default_len = 0;
    if (!rc) rc = default_max_length(model_dir, &default_len, &err);
    if (!rc) rc = gp_tokenizer_load(model_dir, &tok, &err);
    if ((rc = gp_agree(rc, &err)) || gp_rank() != 0) {
        gp_tokenizer_free(tok);
        free(pos);
        return rc;
    }
    /* a --max-length beyond what the folder takes is capped, and said once (stdout stays the ids) */
    if (max_length > default_len)
        gp_warn("--max-length %d is more than the %d tokens %s takes; using %d", max_length, default_len, model_dir,
                default_len);
    if (max_length <= 0 || max_length > default_len) max_length = default_len;
    if (npos > 0) {
        for (int i = 0; i < npos; i++) print_ids(tok, pos[i], strlen(pos[i]), max_length, tokens);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while ((got = getline(&line, &cap, stdin)) >= 0) {
            size_t n = (size_t)got;
            if (n && line[n - 1] == '\n') n--;
            if (n && line[n - 1] == '\r') n--;
            print_ids(tok, line, n, max_length, tokens);
        }
        free(line);
    }
    gp_tokenizer_free(tok);
    free(pos);
    return GP_OK;
}
