/*
 * encode.h — the encoding stage of `gaprune encode`: the texts of a .txt or .jsonl file embedded
 * by a model folder into an HDF5 file (/embeddings, one row per text, /ids, and attributes naming
 * the model, the input, the pooling, max_length, the prefix and the compute mode), shared across
 * ranks (encode.c says how). It logs its start line and progress; the front end prints the
 * summary from the report.
 *
 * Usage (collective):
 *     gp_encode_opts o = {.model_dir = dir, .input = "texts.txt", .output = "emb.h5", .batch = 32,
 *                         .compute = "f32"};
 *     gp_err err = {0};
 *     gp_status rc = gp_agree(gp_encode_check(&o, &err), &err);
 *     gp_encode_report rep;
 *     if (!rc) rc = gp_encode_run(&o, &rep, &err);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"

typedef struct {
    const char *model_dir;   /* model folder (Hugging Face / sentence-transformers) */
    const char *input;       /* .txt (one text per line) or .jsonl ({"_id", "title", "text"}) */
    const char *output;      /* HDF5 file to write (.tmp + rename) */
    int batch;               /* texts per forward pass, at least 1 */
    int max_length;          /* truncate to this many tokens; 0 or more than the model's: the model's */
    bool query;              /* prefix the texts with a query instruction: */
    const char *instruction; /*   this one, */
    const char *task;        /*   or Qwen3-Embedding's "Instruct: TASK\nQuery:", else the model's own */
    const char *compute;     /* "f32" or "bf16", as the job key model.compute */
    const char *weights;     /* "checkpoint" (or NULL) or "f32", as the job key model.weights */
} gp_encode_opts;

typedef struct {
    int64_t texts;
    int dim;
    double seconds;        /* from the model's loading to the file written */
    double encode_seconds; /* of which the slowest rank's encoding */
} gp_encode_report;

/* Local: what the stage refuses in *o before any work (an unknown compute mode); GP_EINPUT with
 * a message naming the option. Agree on it (gp_agree). */
gp_status gp_encode_check(const gp_encode_opts *o, gp_err *err);
/* Collective, after gp_encode_check: sets the compute mode, encodes and writes o->output. Returns
 * the same status on every rank; *rep is zeroed first. */
gp_status gp_encode_run(const gp_encode_opts *o, gp_encode_report *rep, gp_err *err);
