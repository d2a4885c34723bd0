/*
 * vocab.h — learning a WordPiece vocabulary from texts, as tokenizers' WordPieceTrainer does:
 * words (after BERT normalisation and pre-tokenisation) start as characters — the first as
 * itself, the others with the "##" continuation prefix — and the most frequent adjacent pair is
 * merged, again and again, until the vocabulary is full. Ties go to the pair of lower token ids,
 * so the result is deterministic.
 *
 * Usage:
 *     gp_wordpiece_learn(texts, n, 8000, true, "out/model/vocab.txt", &err);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"

/* Writes vocab_path: [PAD] [UNK] [CLS] [SEP] [MASK], the characters, then the merges; padded
 * with [unusedN] to exactly vocab_size lines when the texts support fewer tokens. */
gp_status gp_wordpiece_learn(const char *const *texts, int64_t n, int vocab_size, bool lower, const char *vocab_path,
                             gp_err *err);
