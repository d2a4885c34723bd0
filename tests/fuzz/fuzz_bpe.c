/* fuzz_bpe.c — byte-level BPE tokenizer files (tokenizer.h): tokenizer.json (model.vocab,
 * merges, added tokens, normalizer, pre-tokenizer regexes, post-processor) and the
 * tokenizer_config.json beside it (pad token, truncation side).
 *
 * Input: byte 0 picks the file, the rest is its text:
 *   0  tokenizer.json, beside bpe-tiny's tokenizer_config.json;
 *   1  tokenizer_config.json, beside bpe-tiny's tokenizer.json;
 *   2  tokenizer.json alone.
 * A tokenizer that loads must encode awkward texts within its promises (fuzz_tokenizer.h); one
 * that does not gives GP_EINPUT. The texts are short, so a regex of the file that backtracks
 * badly costs time (PCRE2's match limit bounds it), not a hang.
 */
#include "fuzz_tokenizer.h"

typedef struct {
    const char *file;                  /* the input */
    const char *other, *other_fixture; /* the file beside it, or NULL */
} target;

static const target k_targets[] = {
    {"tokenizer.json", "tokenizer_config.json", "bpe-tiny/tokenizer_config.json"},
    {"tokenizer_config.json", "tokenizer.json", "bpe-tiny/tokenizer.json"},
    {"tokenizer.json", NULL, NULL},
};
enum { N_TARGETS = sizeof k_targets / sizeof k_targets[0] };

static char g_dir[N_TARGETS][PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *root = fz_scratch("bpe");
    for (int i = 0; i < N_TARGETS; i++) {
        char name[32], path[PATH_MAX];
        snprintf(name, sizeof name, "t%d", i);
        fz_mkdir(fz_path(g_dir[i], root, name));
        if (k_targets[i].other) fz_link_fixture(k_targets[i].other_fixture, fz_path(path, g_dir[i], k_targets[i].other));
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
