/* fuzz_eval.c — evaluation sets (eval.h, textfile.h): BEIR folders (corpus.jsonl, queries.jsonl,
 * qrels/test.tsv), STS files, and the text files `gaprune encode` reads (.txt, .jsonl).
 *
 * Input: byte 0 picks the set (its value mod 3), the rest is its files:
 *   0  a BEIR folder: corpus.jsonl, queries.jsonl and qrels/test.tsv separated by NULs (a file
 *      whose part is absent is absent), evaluated with bert-tiny (gp_eval_retrieval) and
 *      hashed as the evaluation stage hashes its inputs (gp_eval_hash);
 *   1  an STS file (gp_eval_sts);
 *   2  a text file, read as .jsonl and as .txt: counted, then read whole and in a slice.
 * A set that evaluates gives metrics in their ranges; one that does not gives GP_EINPUT naming
 * the file. One process is one rank: the code paths of several ranks are test_eval's.
 */
#include "fuzz_util.h"

#include <math.h>

#include "gaprune/eval.h"
#include "gaprune/kernels.h"
#include "gaprune/log.h"
#include "gaprune/model.h"
#include "gaprune/textfile.h"

static gp_model *g_model;
static char g_beir[PATH_MAX], g_sts[PATH_MAX], g_txt[PATH_MAX], g_jsonl[PATH_MAX];
static const char *const k_beir_files[3] = {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = fz_scratch("eval");
    char path[PATH_MAX];
    fz_mkdir(fz_path(g_beir, dir, "beir"));
    fz_mkdir(fz_path(path, g_beir, "qrels"));
    fz_path(g_sts, dir, "sts.jsonl");
    fz_path(g_txt, dir, "texts.txt");
    fz_path(g_jsonl, dir, "texts.jsonl");
    gp_set_threads(1);
    gp_log_set_level(0);
    gp_err err = {0};
    if (gp_model_load(FZ_FIXTURES "/bert-tiny", &g_model, &err) != GP_OK) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    return 0;
}

static bool unit(double x) { return x >= 0 && x <= 1 + 1e-12; }

static void beir(const gp_eval_opts *o, const uint8_t *data, size_t size) {
    const uint8_t *part[3];
    size_t len[3];
    const int n = fz_split(data, size, 0, part, len, 3);
    char path[PATH_MAX];
    for (int i = 0; i < 3; i++) {
        fz_path(path, g_beir, k_beir_files[i]);
        if (i < n) fz_write(path, part[i], len[i]);
        else unlink(path);
    }
    gp_retrieval_metrics r;
    int64_t nq = 0;
    gp_err err = {0};
    gp_eval_units u;
    if (gp_eval_retrieval(o, g_model, g_beir, &r, &nq, &u, &err) == GP_OK) {
        FZ_ASSERT(nq >= 1);
        FZ_ASSERT(unit(r.ndcg_at_10) && unit(r.mrr_at_10) && unit(r.recall_at_10) && unit(r.recall_at_100) &&
                  unit(r.map_at_100));
        FZ_ASSERT(r.recall_at_10 <= r.recall_at_100 + 1e-12);
        /* the per-query vectors the report's comparisons read: one per judged query, means as the set's */
        FZ_ASSERT(u.n == nq);
        double sum = 0;
        for (int64_t j = 0; j < u.n; j++) {
            FZ_ASSERT(u.ids[j] && unit(u.metrics[j].ndcg_at_10));
            sum += u.metrics[j].ndcg_at_10;
        }
        FZ_ASSERT(fabs(sum / (double)u.n - r.ndcg_at_10) < 1e-12);
        gp_eval_units_free(&u);
    } else {
        FZ_ASSERT(err.code == GP_EINPUT && strstr(err.msg, g_beir));
    }
    char hex[65];
    gp_eval_hash(o, hex, &err);
}

static void sts(const gp_eval_opts *o, const uint8_t *data, size_t size) {
    fz_write(g_sts, data, size);
    double sp = NAN, pe = NAN;
    int64_t n = 0;
    gp_err err = {0};
    gp_eval_units u;
    if (gp_eval_sts(o, g_model, g_sts, &sp, &pe, &n, &u, &err) == GP_OK) {
        FZ_ASSERT(n >= 2 && u.n == n && u.cosine && u.gold);
        gp_eval_units_free(&u);
        FZ_ASSERT(isnan(sp) || fabs(sp) <= 1 + 1e-9);
        FZ_ASSERT(isnan(pe) || fabs(pe) <= 1 + 1e-9);
    } else {
        FZ_ASSERT(err.code == GP_EINPUT && strstr(err.msg, g_sts));
    }
}

static void texts(const char *path, const uint8_t *data, size_t size) {
    fz_write(path, data, size);
    int64_t n = 0;
    gp_err err = {0};
    if (gp_texts_count(path, &n, &err) != GP_OK) return;
    gp_texts t;
    if (gp_texts_read(path, 0, n, true, true, &t, &err) == GP_OK) {
        FZ_ASSERT(t.n == n);
        for (int64_t i = 0; i < n; i++) FZ_ASSERT(t.text[i] && t.id[i]);
        gp_texts_free(&t);
        /* a rank's slice: the middle third */
        gp_texts s;
        FZ_ASSERT(gp_texts_read(path, n / 3, n / 3, true, false, &s, &err) == GP_OK && s.n == n / 3);
        gp_texts_free(&s);
    } else {
        FZ_ASSERT(err.code == GP_EINPUT && strstr(err.msg, path));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *sets[1] = {g_beir}, *sts_sets[1] = {g_sts};
    const gp_eval_opts o = {.retrieval = sets, .n_retrieval = 1, .sts = sts_sets, .n_sts = 1, .batch = 8,
                            .max_length = 16, .query_instruction = "", .job_path = "job.ini"};
    switch (data[0] % 3) {
    case 0: beir(&o, data + 1, size - 1); break;
    case 1: sts(&o, data + 1, size - 1); break;
    default:
        texts(g_jsonl, data + 1, size - 1);
        texts(g_txt, data + 1, size - 1);
    }
    return 0;
}
