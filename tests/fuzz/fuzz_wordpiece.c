/* fuzz_wordpiece.c — WordPiece tokenizer files (tokenizer.h): vocab.txt, a WordPiece
 * tokenizer.json (its model.vocab and normalizer) and tokenizer_config.json.
 *
 * Input: byte 0 picks the file, the rest is its text:
 *   0  vocab.txt, beside bert-tiny's tokenizer_config.json;
 *   1  tokenizer.json (no vocab.txt), beside bert-tiny's tokenizer_config.json;
 *   2  tokenizer_config.json, beside bert-tiny's vocab.txt;
 *   3  tokenizer.json, beside bert-f32's tokenizer_config.json (every special token named).
 * A tokenizer that loads must encode awkward texts within its promises (fuzz_tokenizer.h); one
 * that does not gives GP_EINPUT.
 */
#include "fuzz_tokenizer.h"

typedef struct {
    const char *file;                /* the input */
    const char *other, *other_fixture; /* the file beside it, from tests/fixtures */
} target;

static const target k_targets[] = {
    {"vocab.txt", "tokenizer_config.json", "bert-tiny/tokenizer_config.json"},
    {"tokenizer.json", "tokenizer_config.json", "bert-tiny/tokenizer_config.json"},
    {"tokenizer_config.json", "vocab.txt", "bert-tiny/vocab.txt"},
    {"tokenizer.json", "tokenizer_config.json", "bert-f32/tokenizer_config.json"},
};
enum { N_TARGETS = sizeof k_targets / sizeof k_targets[0] };

static char g_dir[N_TARGETS][PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *root = fz_scratch("wordpiece");
    for (int i = 0; i < N_TARGETS; i++) {
        char name[32], path[PATH_MAX];
        snprintf(name, sizeof name, "t%d", i);
        fz_mkdir(fz_path(g_dir[i], root, name));
        fz_link_fixture(k_targets[i].other_fixture, fz_path(path, g_dir[i], k_targets[i].other));
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int k = data[0] % N_TARGETS;
    char path[PATH_MAX];
    fz_write(fz_path(path, g_dir[k], k_targets[k].file), data + 1, size - 1);
    gp_tokenizer *t = NULL;
    gp_err err = {0};
    if (gp_tokenizer_load(g_dir[k], &t, &err) == GP_OK) {
        fz_check_tokenizer(t);
        gp_tokenizer_free(t);
    } else {
        FZ_ASSERT(t == NULL && err.code == GP_EINPUT && err.msg[0]);
    }
    return 0;
}
