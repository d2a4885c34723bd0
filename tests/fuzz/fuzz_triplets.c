/* fuzz_triplets.c — triplet corpora (triplets.h) in their three forms: a JSON array of
 * {query, positive, negative}, JSONL of the same, FlagEmbedding's {query, pos: [...], neg: [...]}.
 *
 * Input: byte 0 sets data.on_bad_record (bit 0: skip) and max_samples (1 + bits 1-4); the rest
 * is the corpus file. The file is indexed as rank 0 indexes it (gp_corpus_index: one streaming
 * pass that validates every record), then every selected record is read back as the ranks read
 * them: it must parse (the index vouched for it), and its one-line form (gp_json_one_line,
 * what a calibration sample writes) must parse to the same texts. The rest is also parsed as
 * one record (gp_triplet_parse).
 */
#include "fuzz_util.h"

#include "gaprune/json.h"
#include "gaprune/log.h"
#include "gaprune/triplets.h"

static char g_path[PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_path(g_path, fz_scratch("triplets"), "corpus.jsonl");
    gp_log_set_level(0);
    return 0;
}

static void same_triplet(const gp_triplet *a, const gp_triplet *b) {
    FZ_ASSERT(!strcmp(a->query, b->query) && !strcmp(a->positive, b->positive) && !strcmp(a->negative, b->negative));
}

static void read_back(gp_corpus *c) {
    gp_err err = {0};
    for (int64_t i = 0; i < c->n_selected; i++) {
        if (i) FZ_ASSERT(c->sel[i].offset > c->sel[i - 1].offset && c->sel[i].line >= c->sel[i - 1].line);
        gp_triplet t, u;
        FZ_ASSERT(gp_corpus_read(c, i, &t, &err) == GP_OK);
        FZ_ASSERT(t.query && t.positive && t.negative);
        char *raw = NULL;
        FZ_ASSERT(gp_corpus_read_raw(c, i, &raw, &err) == GP_OK);
        FZ_ASSERT((int64_t)strlen(raw) <= c->sel[i].length);
        size_t n;
        char *line = gp_json_one_line(raw, (size_t)c->sel[i].length, &n);
        FZ_ASSERT(!memchr(line, '\n', n) && !memchr(line, '\r', n));
        FZ_ASSERT(gp_triplet_parse(line, n, g_path, c->sel[i].line, &u, &err) == GP_OK);
        same_triplet(&t, &u);
        gp_triplet_free(&u);
        free(line);
        free(raw);
        gp_triplet_free(&t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const bool skip_bad = data[0] & 1;
    const int64_t max_samples = 1 + (data[0] >> 1 & 15);
    fz_write(g_path, data + 1, size - 1);
    gp_corpus c;
    gp_err err = {0};
    if (gp_corpus_index(g_path, max_samples, 42, skip_bad, &c, &err) == GP_OK) {
        FZ_ASSERT(c.n_selected >= 1 && c.n_selected <= max_samples);
        FZ_ASSERT(c.n_records >= c.n_selected + c.n_skipped && (skip_bad || c.n_skipped == 0));
        read_back(&c);
    } else {
        FZ_ASSERT(err.code == GP_EINPUT && strstr(err.msg, g_path));
    }
    gp_corpus_free(&c);

    gp_triplet t;
    if (gp_triplet_parse((const char *)data + 1, size - 1, g_path, 1, &t, &err) == GP_OK) gp_triplet_free(&t);
    return 0;
}
