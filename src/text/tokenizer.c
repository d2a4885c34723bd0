/* tokenizer.c — picks the tokenizer kind of a model folder and pads batches (see tokenizer.h). */
#include "gaprune/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "gaprune/fs.h"
#include "gaprune/json.h"
#include "tokenizer_impl.h"

struct gp_tokenizer {
    gp_tokenizer_impl k;
};

gp_status gp_tokenizer_load(const char *dir, gp_tokenizer **out, gp_err *err) {
    *out = NULL;
    char *tj_path = gp_path_join(dir, "tokenizer.json");
    char *tc_path = gp_path_join(dir, "tokenizer_config.json");
    cJSON *tj = NULL, *tc = NULL;
    gp_status rc = GP_OK;
    if (gp_file_exists(tj_path) && (rc = gp_json_load(tj_path, &tj, err))) goto done;
    if (gp_file_exists(tc_path) && (rc = gp_json_load(tc_path, &tc, err))) goto done;

    const cJSON *model = tj ? cJSON_GetObjectItemCaseSensitive(tj, "model") : NULL;
    const cJSON *type = model ? cJSON_GetObjectItemCaseSensitive(model, "type") : NULL;
    const char *kind = cJSON_IsString(type) ? type->valuestring : "WordPiece";
    gp_tokenizer *t = gp_calloc(1, sizeof *t);
    if (strcmp(kind, "WordPiece") == 0) {
        rc = gp_wordpiece_load(dir, tj, tj_path, tc, tc_path, &t->k, err);
    } else if (strcmp(kind, "BPE") == 0) {
        rc = gp_bpe_load(dir, tj, tj_path, tc, tc_path, &t->k, err);
    } else {
        rc = gp_errf(err, GP_EINPUT, "%s: tokenizer model type \"%s\" is not supported (WordPiece or BPE)", tj_path,
                     kind);
    }
    if (rc) free(t);
    else *out = t;
done:
    cJSON_Delete(tj);
    cJSON_Delete(tc);
    free(tj_path);
    free(tc_path);
    return rc;
}

void gp_tokenizer_free(gp_tokenizer *t) {
    if (!t) return;
    t->k.free(t->k.impl);
    free(t);
}

int gp_tokenizer_encode(const gp_tokenizer *t, const char *text, size_t len, int max_len, int32_t **ids) {
    return t->k.encode(t->k.impl, text, len, max_len, ids);
}

void gp_tokenizer_batch(const gp_tokenizer *t, const char *const *texts, int n, int max_len, gp_batch *b) {
    int32_t **seq = gp_malloc((size_t)(n ? n : 1) * sizeof *seq);
    int *len = gp_malloc((size_t)(n ? n : 1) * sizeof *len);
    int T = 0;
    for (int i = 0; i < n; i++) {
        len[i] = gp_tokenizer_encode(t, texts[i], strlen(texts[i]), max_len, &seq[i]);
        T = len[i] > T ? len[i] : T;
    }
    b->B = n;
    b->T = T;
    b->ids = gp_malloc((size_t)n * T * sizeof(int32_t) + 1);
    b->mask = gp_calloc((size_t)n * T + 1, 1);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < T; j++) b->ids[(size_t)i * T + j] = j < len[i] ? seq[i][j] : t->k.pad_id;
        memset(b->mask + (size_t)i * T, 1, (size_t)len[i]);
        free(seq[i]);
    }
    free(seq);
    free(len);
}

void gp_batch_free(gp_batch *b) {
    free(b->ids);
    free(b->mask);
    b->ids = NULL;
    b->mask = NULL;
}

int gp_tokenizer_vocab_size(const gp_tokenizer *t) { return t->k.vocab_size; }
int gp_tokenizer_max_id(const gp_tokenizer *t) { return t->k.max_id; }
const char *gp_tokenizer_token(const gp_tokenizer *t, int32_t id) { return t->k.token(t->k.impl, id); }
int32_t gp_tokenizer_pad_id(const gp_tokenizer *t) { return t->k.pad_id; }
const char *gp_tokenizer_describe(const gp_tokenizer *t) { return t->k.desc; }
const gp_tokenizer_impl *gp_tokenizer_impl_of(const gp_tokenizer *t) { return &t->k; }
