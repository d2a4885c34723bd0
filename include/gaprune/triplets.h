/*
 * triplets.h — calibration and training corpora of {query, positive, negative} triplets.
 *
 * Formats (detected per file, then per record):
 *   - GAPrune JSON: a JSON array of {"query", "positive", "negative"} objects;
 *   - JSONL of the same objects, one per line;
 *   - FlagEmbedding JSONL: {"query", "pos": [...], "neg": [...]}.
 * "negative" / "neg" may be a string or a list; the first element is used (likewise "pos").
 * Texts are kept whole: truncation to max_length is the tokenizer's job.
 *
 * Indexing (gp_corpus_index, rank 0) streams the file once with constant memory besides the
 * selection: it validates every record (JSON, fields, types, UTF-8), counts or rejects bad ones,
 * hashes the bytes (SHA-256), and selects max_samples records: each valid record i gets the key
 * splitmix64(seed, i) and the max_samples smallest keys are kept, in file order. The selection
 * thus depends on the file, the seed and max_samples only — never on the number of ranks.
 * gp_corpus_bcast sends the selection (offsets, not texts) to every rank, and each rank reads
 * the records it is assigned with gp_corpus_read.
 *
 * Usage:
 *     gp_corpus c; gp_err err = {0};
 *     if (rank == 0) rc = gp_corpus_index(path, 5000, 42, false, &c, &err);
 *     if (gp_agree(rc, &err)) ...;
 *     gp_corpus_bcast(&c, 0);
 *     gp_triplet t; gp_corpus_read(&c, i, &t, &err); ... gp_triplet_free(&t);
 *     gp_corpus_free(&c);
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gaprune/check.h"

typedef struct {
    int64_t offset; /* byte offset of the record in the file */
    int64_t length; /* bytes */
    int64_t line;   /* 1-based line where it starts */
} gp_record_ref;

typedef struct {
    char *path;
    char sha256[65];
    int64_t n_records;  /* records in the file, good and bad */
    int64_t n_skipped;  /* bad records skipped (on_bad_record = skip) */
    int64_t n_selected; /* records in sel */
    gp_record_ref *sel; /* in file order */
    int fd;             /* opened by the first gp_corpus_read; -1 before */
} gp_corpus;

typedef struct {
    char *query, *positive, *negative;
} gp_triplet;

gp_status gp_corpus_index(const char *path, int64_t max_samples, uint64_t seed, bool skip_bad, gp_corpus *c,
                          gp_err *err);
/* Collective: every rank ends with root's gp_corpus (fd closed). */
void gp_corpus_bcast(gp_corpus *c, int root);
gp_status gp_corpus_read(gp_corpus *c, int64_t i, gp_triplet *t, gp_err *err);
/* The bytes of selected record i as they are in the file (NUL-terminated, malloc'd; length
 * c->sel[i].length): a JSONL line without its line end, or one element of a JSON array. */
gp_status gp_corpus_read_raw(gp_corpus *c, int64_t i, char **text, gp_err *err);
void gp_corpus_free(gp_corpus *c);

/* One record's text to a triplet; `path` and `line` name it in messages. */
gp_status gp_triplet_parse(const char *text, size_t len, const char *path, int64_t line, gp_triplet *t, gp_err *err);
void gp_triplet_free(gp_triplet *t);
