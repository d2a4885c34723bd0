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

static const fz_tok_target k_targets[] = {
    {"tokenizer.json", "tokenizer_config.json", "bpe-tiny/tokenizer_config.json"},
    {"tokenizer_config.json", "tokenizer.json", "bpe-tiny/tokenizer.json"},
    {"tokenizer.json", NULL, NULL},
};
enum { N_TARGETS = sizeof k_targets / sizeof k_targets[0] };

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_tok_init("bpe", k_targets, N_TARGETS);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_tok_one(k_targets, N_TARGETS, data, size); }
