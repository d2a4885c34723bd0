/* fuzz_model.c — the JSON files of a model folder (model.h): config.json, modules.json, the
 * pooling config, sentence_bert_config.json, config_sentence_transformers.json,
 * tokenizer_config.json and the shard index model.safetensors.index.json.
 *
 * Input: byte 0 picks the file (k_targets), the rest is its text. The file replaces its
 * namesake in a folder whose other files are the fixture's (tests/fixtures/bert-tiny, or the
 * sharded qwen3-bf16), and the folder is read as gaprune reads it: config.json alone
 * (gp_model_config_load, which `gaprune plan` and the guards use), the sentence-transformers
 * max_seq_length, the safetensors set, then the whole model (gp_model_load). A model that loads
 * must embed a text to finite numbers; one that does not gives GP_EINPUT.
 */
#include "fuzz_util.h"

#include <math.h>

#include "gaprune/kernels.h"
#include "gaprune/log.h"
#include "gaprune/model.h"
#include "gaprune/safetensors.h"

static const char *const k_bert_files[] = {"config.json", "model.safetensors", "modules.json",
                                           "1_Pooling/config.json", "sentence_bert_config.json",
                                           "special_tokens_map.json", "tokenizer_config.json", "vocab.txt", NULL};
static const char *const k_qwen_files[] = {"config.json", "config_sentence_transformers.json",
                                           "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                           "model.safetensors.index.json", "modules.json", "1_Pooling/config.json",
                                           "sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json", NULL};

typedef struct {
    const char *fixture; /* the folder under tests/fixtures */
    const char *const *files;
    const char *file; /* the one the input replaces */
} target;

static const target k_targets[] = {
    {"bert-tiny", k_bert_files, "config.json"},
    {"bert-tiny", k_bert_files, "modules.json"},
    {"bert-tiny", k_bert_files, "1_Pooling/config.json"},
    {"bert-tiny", k_bert_files, "sentence_bert_config.json"},
    {"bert-tiny", k_bert_files, "config_sentence_transformers.json"},
    {"bert-tiny", k_bert_files, "tokenizer_config.json"},
    {"qwen3-bf16", k_qwen_files, "config.json"},
    {"qwen3-bf16", k_qwen_files, "model.safetensors.index.json"},
    {"qwen3-bf16", k_qwen_files, "config_sentence_transformers.json"},
    {"qwen3-bf16", k_qwen_files, "modules.json"},
    {"qwen3-bf16", k_qwen_files, "1_Pooling/config.json"},
    {"qwen3-bf16", k_qwen_files, "sentence_bert_config.json"},
};
enum { N_TARGETS = sizeof k_targets / sizeof k_targets[0] };

static char g_dir[N_TARGETS][PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *root = fz_scratch("model");
    for (int i = 0; i < N_TARGETS; i++) {
        /* a folder of its own per target: restoring one file never touches another's */
        char name[32];
        snprintf(name, sizeof name, "m%d", i);
        fz_path(g_dir[i], root, name);
        fz_fixture_folder(k_targets[i].fixture, k_targets[i].files, g_dir[i]);
    }
    gp_set_threads(1);
    gp_log_set_level(0);
    return 0;
}

static bool in_list(const char *const *files, const char *f) {
    for (; *files; files++)
        if (!strcmp(*files, f)) return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int k = data[0] % N_TARGETS;
    const target *t = &k_targets[k];
    const char *dir = g_dir[k];
    char path[PATH_MAX], rel[PATH_MAX];
    fz_write(fz_path(path, dir, t->file), data + 1, size - 1);

    gp_err err = {0};
    gp_model_config cfg;
    if (gp_model_config_load(dir, &cfg, &err) == GP_OK) {
        FZ_ASSERT(cfg.vocab_size > 0 && cfg.hidden > 0 && cfg.layers > 0 && cfg.heads > 0 && cfg.intermediate > 0);
        int ml = 0;
        if (gp_model_default_max_length(dir, cfg.max_positions, &ml, &err) == GP_OK)
            FZ_ASSERT(ml >= 1 && ml <= cfg.max_positions);
    } else {
        FZ_ASSERT(err.code == GP_EINPUT);
    }
    gp_st_set *set = NULL;
    if (gp_st_set_open(dir, &set, &err) == GP_OK) gp_st_set_close(set);

    gp_model *m = NULL;
    memset(&err, 0, sizeof err);
    if (gp_model_load(dir, &m, &err) == GP_OK) {
        const char *text = "Hello, world: a test of 12 tokens or so.";
        const int D = gp_model_dim(m);
        float *emb = malloc((size_t)D * sizeof(float));
        gp_model_encode(m, &text, 1, 1, 16, m->query_prompt, emb);
        for (int i = 0; i < D; i++) FZ_ASSERT(isfinite(emb[i]));
        free(emb);
        gp_model_free(m);
    } else {
        FZ_ASSERT(m == NULL && err.code == GP_EINPUT && err.msg[0]);
    }

    /* the folder as it was, for the next input */
    if (in_list(t->files, t->file)) {
        snprintf(rel, sizeof rel, "%s/%s", t->fixture, t->file);
        fz_link_fixture(rel, path);
    } else {
        unlink(path);
    }
    return 0;
}
