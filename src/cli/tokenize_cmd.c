/* tokenize_cmd.c — `gaprune tokenize`: token ids of texts, one line per text (the stage is
 * tokenize.h); this file parses the options. */
#include <stdlib.h>

#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/tokenize.h"

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
    if ((rc = gp_agree(rc, &err))) {
        free(pos);
        return rc;
    }
    const gp_tokenize_opts o = {.model_dir = model_dir, .max_length = max_length, .tokens = tokens, .texts = pos, .ntexts = npos};
    rc = gp_tokenize_run(&o, &err);
    free(pos);
    return rc;
}
