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

static const fz_tok_target k_targets[] = {
    {"vocab.txt", "tokenizer_config.json", "bert-tiny/tokenizer_config.json"},
    {"tokenizer.json", "tokenizer_config.json", "bert-tiny/tokenizer_config.json"},
    {"tokenizer_config.json", "vocab.txt", "bert-tiny/vocab.txt"},
    {"tokenizer.json", "tokenizer_config.json", "bert-f32/tokenizer_config.json"},
};
enum { N_TARGETS = sizeof k_targets / sizeof k_targets[0] };

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_tok_init("wordpiece", k_targets, N_TARGETS);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_tok_one(k_targets, N_TARGETS, data, size); }
