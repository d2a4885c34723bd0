/*
 * tokenize.h — the stage of `gaprune tokenize`: the token ids (or token strings) of texts with the
 * tokenizer of a model folder or of a folder with tokenizer files only, one line per text on
 * stdout, printed by rank 0; the texts are given, or read from stdin one per line.
 *
 * Usage (collective):
 *     const char *texts[] = {"a text"};
 *     gp_tokenize_opts o = {.model_dir = dir, .texts = texts, .ntexts = 1};
 *     gp_err err = {0};
 *     gp_status rc = gp_tokenize_run(&o, &err);
 */
#pragma once

#include <stdbool.h>

#include "gaprune/check.h"

typedef struct {
    const char *model_dir;
    int max_length;           /* 0: the folder's (the model's, else tokenizer_config.json's
                               * model_max_length, else none); more than that: capped, said once */
    bool tokens;              /* token strings instead of ids */
    const char *const *texts; /* ntexts texts; none: stdin, one text per line */
    int ntexts;
} gp_tokenize_opts;

/* Collective: loads the tokenizer on every rank (a bad folder is GP_EINPUT on every rank), prints
 * on rank 0. */
gp_status gp_tokenize_run(const gp_tokenize_opts *o, gp_err *err);
