/* test_eval.c — retrieval metrics and correlations against hand-computed values, and
 * `gaprune eval` on 1 and 2 ranks against a brute-force ranking computed here. */
#include "test_util.h"
#include "eval_ref.h"
#include "compare_ref.h"

#include <cJSON.h>
#include <sys/wait.h>

#include "gaprune/compare.h"
#include "gaprune/job.h"
#include "gaprune/eval.h"
#include "gaprune/kernels.h"
#include "gaprune/log.h"
#include "gaprune/model.h"
#include "gaprune/textfile.h"

static void test_query_metrics(void **state) {
    (void)state;
    /* ranked: 5, 2, 9, 1, 7 (only five: k is larger than the list); relevant: 2 (grade 2),
     * 1 (grade 1), 8 (grade 3, not retrieved); 9 is judged but not relevant (grade 0).
     * DCG = 2/log2(3) + 1/log2(5); IDCG = 3/log2(2) + 2/log2(3) + 1/log2(4)
     * MRR = 1/2; recall = 2/3; AP = (1/2 + 2/4) / 3 */
    const int64_t ranked[5] = {5, 2, 9, 1, 7};
    const gp_qrel q[4] = {{2, 2}, {1, 1}, {8, 3}, {9, 0}};
    gp_retrieval_metrics m;
    gp_query_metrics(ranked, 5, q, 4, &m);
    assert_true(fabs(m.ndcg_at_10 - 0.35543595158098623) < 1e-12);
    assert_true(fabs(m.mrr_at_10 - 0.5) < 1e-12);
    assert_true(fabs(m.recall_at_10 - 2.0 / 3) < 1e-12);
    assert_true(fabs(m.recall_at_100 - 2.0 / 3) < 1e-12);
    assert_true(fabs(m.map_at_100 - 1.0 / 3) < 1e-12);
    /* a perfect ranking of graded documents */
    const int64_t perfect[3] = {8, 2, 1};
    gp_query_metrics(perfect, 3, q, 4, &m);
    assert_true(fabs(m.ndcg_at_10 - 1.0) < 1e-12 && m.mrr_at_10 == 1.0 && m.map_at_100 == 1.0);
    /* no relevant document: zeros */
    const gp_qrel none[1] = {{5, 0}};
    gp_query_metrics(ranked, 5, none, 1, &m);
    assert_true(m.ndcg_at_10 == 0 && m.mrr_at_10 == 0 && m.recall_at_100 == 0 && m.map_at_100 == 0);
    /* the first relevant document beyond rank 10 counts for recall@100 and MAP, not for MRR@10 */
    int64_t long_list[20];
    for (int i = 0; i < 20; i++) long_list[i] = 100 + i;
    long_list[14] = 1;
    const gp_qrel one[1] = {{1, 1}};
    gp_query_metrics(long_list, 20, one, 1, &m);
    assert_true(m.mrr_at_10 == 0 && m.ndcg_at_10 == 0 && m.recall_at_10 == 0);
    assert_true(m.recall_at_100 == 1.0 && fabs(m.map_at_100 - 1.0 / 15) < 1e-12);
}

static void test_correlations(void **state) {
    (void)state;
    const double x[4] = {1, 2, 2, 3}, y[4] = {1, 3, 2, 4};
    /* ranks of x with the tie averaged: 1, 2.5, 2.5, 4 */
    assert_true(fabs(gp_spearman(x, y, 4) - 0.9486832980505139) < 1e-12);
    const double a[3] = {1, 2, 3}, b[3] = {2, 4, 6}, c[3] = {3, 1, 2};
    assert_true(fabs(gp_pearson(a, b, 3) - 1.0) < 1e-12);
    assert_true(fabs(gp_spearman(a, c, 3) - (-0.5)) < 1e-12);
    const double monotone[4] = {1, 10, 100, 1000}, lin[4] = {1, 2, 3, 4};
    assert_true(fabs(gp_spearman(monotone, lin, 4) - 1.0) < 1e-12); /* ranks, not values */
    assert_true(gp_pearson(monotone, lin, 4) < 0.99);
}

/* ---- end to end ------------------------------------------------------------------------------- */

static char *g_dir;

static cJSON *load_json(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return cJSON_Parse(buf);
}

static double get(const cJSON *j, const char *a, const char *b, const char *c) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, a), b), c);
    assert_non_null(x);
    return x->valuedouble;
}

static void test_eval_command(void **state) {
    (void)state;
    g_dir = tu_mkdtemp();
    tu_mpi_env();
    char cwd[2048], bin[4096], job[4400], text[8192];
    assert_non_null(getcwd(cwd, sizeof cwd));
    const char *b = getenv("GAPRUNE_BIN");
    assert_non_null(realpath(b ? b : "build/san/gaprune", bin));
    snprintf(job, sizeof job, "%s/e.ini", g_dir);
    snprintf(text, sizeof text,
             "[model]\npath = %s/" FIXTURES "/bert-f32\n[eval]\nretrieval = %s/" FIXTURES "/beir-tiny\n"
             "sts = %s/" FIXTURES "/sts-tiny.jsonl\nbatch = 3\n[output]\ndir = out\n",
             cwd, cwd, cwd);
    tu_write(job, text);
    gp_retrieval_metrics want;
    brute_force(&want);
    for (int np = 1; np <= 4; np *= 2) {
        assert_int_equal(tu_run_in(g_dir, "mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s eval e.ini", np, bin), 0);
        char p[4400];
        snprintf(p, sizeof p, "%s/out/eval-bert-f32.json", g_dir);
        cJSON *j = load_json(p);
        assert_non_null(j);
        double nd = get(j, "retrieval", "beir-tiny", "ndcg_at_10");
        assert_true(fabs(nd - want.ndcg_at_10) < 1e-6);
        assert_true(fabs(get(j, "retrieval", "beir-tiny", "mrr_at_10") - want.mrr_at_10) < 1e-6);
        assert_true(fabs(get(j, "retrieval", "beir-tiny", "map_at_100") - want.map_at_100) < 1e-6);
        assert_true(fabs(get(j, "retrieval", "beir-tiny", "recall_at_10") - 0.75) < 1e-12); /* q4 has no relevant doc */
        assert_int_equal((int)get(j, "retrieval", "beir-tiny", "n_queries"), 4);
        double sp = get(j, "sts", "sts-tiny.jsonl", "cosine_spearman");
        assert_true(sp >= -1 && sp <= 1);
        printf("    %d rank%s: nDCG@10 %.4f (brute force %.4f), Spearman %.4f\n", np, np > 1 ? "s" : "", nd, want.ndcg_at_10, sp);
        cJSON_Delete(j);
    }
    tu_rmtree(g_dir);
    free(g_dir);
}

/* Evaluation embeds at the job's model.max_length: two STS files whose sentences agree in their
 * first max_length tokens and differ after them (b.jsonl appends a long tail) give the same
 * metrics bitwise at max_length 8 on 1 and 2 ranks, and different ones at the model's 40. */
static void test_eval_max_length(void **state) {
    (void)state;
    g_dir = tu_mkdtemp();
    tu_mpi_env();
    char cwd[2048], bin[4096], text[8192];
    assert_non_null(getcwd(cwd, sizeof cwd));
    const char *b = getenv("GAPRUNE_BIN");
    assert_non_null(realpath(b ? b : "build/san/gaprune", bin));
    static const char *const s1[] = {"paris is the capital of france and", "berlin is big and the city is big",
                                     "hello world hello world hello world", "a naive cafe in paris is a cafe",
                                     "special tokens inside text are special"};
    static const char *const s2[] = {"the capital of france is paris and", "the city of berlin is big and big",
                                     "japan people japan people japan people", "a cafe in paris is a naive cafe",
                                     "tokens inside text are special tokens"};
    static const double gold[] = {5.0, 4.2, 0.5, 2.5, 3.0};
    static const char tail[] = " japan people hello world berlin germany large city the big world people paris";
    for (int f = 0; f < 2; f++) {
        char p[2200], line[1024];
        snprintf(p, sizeof p, "%s/%s.jsonl", g_dir, f ? "b" : "a");
        text[0] = '\0';
        for (int i = 0; i < 5; i++) {
            snprintf(line, sizeof line, "{\"sentence1\": \"%s%s\", \"sentence2\": \"%s%s\", \"score\": %.1f}\n", s1[i],
                     f ? tail : "", s2[i], f ? tail : "", gold[i]);
            strcat(text, line);
        }
        tu_write(p, text);
    }
    snprintf(text, sizeof text, "%s/m.ini", g_dir);
    char job[8192];
    snprintf(job, sizeof job, "[model]\npath = %s/" FIXTURES "/bert-f32\n[eval]\nsts = a.jsonl, b.jsonl\nbatch = 2\n[output]\ndir = out\n",
             cwd);
    tu_write(text, job);
    for (int run = 0; run < 3; run++) {
        const int np = run == 1 ? 2 : 1, len = run == 2 ? 40 : 8;
        assert_int_equal(tu_run_in(g_dir, "rm -rf out && mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s eval m.ini "
                                          "--set model.max_length=%d",
                                   np, bin, len),
                         0);
        char p[2200];
        snprintf(p, sizeof p, "%s/out/eval-bert-f32.json", g_dir);
        cJSON *j = load_json(p);
        assert_non_null(j);
        const double pa = get(j, "sts", "a.jsonl", "cosine_pearson"), pb = get(j, "sts", "b.jsonl", "cosine_pearson");
        printf("    max_length %d, %d rank%s: Pearson %.6f without the tail, %.6f with it\n", len, np, np > 1 ? "s" : "", pa, pb);
        if (len == 8) assert_true(pa == pb && get(j, "sts", "a.jsonl", "cosine_spearman") == get(j, "sts", "b.jsonl", "cosine_spearman"));
        else assert_true(fabs(pa - pb) > 1e-4);
        cJSON_Delete(j);
    }
    tu_rmtree(g_dir);
    free(g_dir);
}

/* A BEIR folder (the fixture's corpus and queries, qrels given) and an STS file in a scratch
 * folder, evaluated by `gaprune eval` on one rank; returns the exit status, stderr in err. */
static int eval_sets(const char *dir, const char *qrels, const char *sts, const char *more_corpus) {
    tu_sh("mkdir -p '%s/beir/qrels' && cp " FIXTURES "/beir-tiny/*.jsonl '%s/beir/'", dir, dir);
    if (more_corpus) tu_sh("printf '%%s\\n' '%s' >> '%s/beir/corpus.jsonl'", more_corpus, dir);
    char p[4400], text[8192], cwd[2048];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(p, sizeof p, "%s/beir/qrels/test.tsv", dir);
    tu_write(p, qrels);
    snprintf(p, sizeof p, "%s/s.jsonl", dir);
    tu_write(p, sts);
    snprintf(p, sizeof p, "%s/e.ini", dir);
    snprintf(text, sizeof text, "[model]\npath = %s/" FIXTURES "/bert-f32\n[eval]\nretrieval = %s/beir\nsts = %s/s.jsonl\n"
             "[output]\ndir = %s/res\n", cwd, dir, dir, dir);
    tu_write(p, text);
    return tu_run_to(dir, "%s eval '%s/e.ini'", tu_bin(), dir);
}

static const char *k_good_sts = "{\"sentence1\": \"paris\", \"sentence2\": \"france\", \"score\": 4}\n"
                                "{\"sentence1\": \"berlin\", \"sentence2\": \"cafe\", \"score\": 1}\n"
                                "{\"sentence1\": \"hello\", \"sentence2\": \"world\", \"score\": 2}\n";

/* The BEIR set of eval_sets with these qrels (and corpus line) is refused: exit 2, no sanitizer
 * report, and stderr names the scratch folder's file and line as `want` (after the folder). */
static void expect_eval_error(const char *qrels, const char *more_corpus, const char *want) {
    char *dir = tu_mkdtemp();
    tu_mpi_env();
    assert_int_equal(eval_sets(dir, qrels, k_good_sts, more_corpus), 2);
    char *e = tu_read_in(dir, "err"), full[4400];
    tu_assert_no_sanitizer(e);
    snprintf(full, sizeof full, "%s/%s", dir, want);
    if (!strstr(e, full)) fail_msg("expected \"%s\" in:\n%s", full, e);
    free(e);
    tu_rmtree(dir);
    free(dir);
}

/* issue 14: a judged query that is not the first, then a malformed row, was a double free */
static void test_qrels_error_after_later_query(void **state) {
    (void)state;
    expect_eval_error("q2\td1\t1\nq2\td2\tx\n", NULL, "beir/qrels/test.tsv:2: score \"x\" is not an integer");
}

/* issue 14: a corpus _id twice passed in silence (the qrels judged whichever copy was kept) */
static void test_duplicate_corpus_id(void **state) {
    (void)state;
    expect_eval_error("q1\td1\t1\n", "{\"_id\": \"d2\", \"text\": \"again\"}",
                      "beir/corpus.jsonl:11: _id \"d2\" appears twice (first on line 2)");
}

/* issue 14: two model folders of one name shared eval-<name>.json, and two [eval] sets of one
 * name shared a key; the first gets a file of its own, the second is exit 2 */
static void test_same_names(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    tu_mpi_env();
    char p[4400], text[8192], cwd[2048];
    assert_non_null(getcwd(cwd, sizeof cwd));
    tu_sh("mkdir -p '%s/a' '%s/b' '%s/x' '%s/y' && cp -r " FIXTURES "/bert-f32 '%s/a/' && cp -r " FIXTURES "/bert-f32 '%s/b/'"
          " && cp " FIXTURES "/sts-tiny.jsonl '%s/x/s.jsonl' && cp " FIXTURES "/sts-tiny.jsonl '%s/y/s.jsonl'",
          dir, dir, dir, dir, dir, dir, dir, dir);
    snprintf(p, sizeof p, "%s/n.ini", dir);
    snprintf(text, sizeof text, "[model]\npath = %s/a/bert-f32\n[eval]\nsts = %s/x/s.jsonl\n[output]\ndir = %s/res\n", dir, dir, dir);
    tu_write(p, text);
    assert_int_equal(tu_run_to(dir, "%s eval '%s'", tu_bin(), p), 0);
    assert_int_equal(tu_run_to(dir, "%s eval '%s' --model '%s/b/bert-f32'", tu_bin(), p, dir), 0);
    char *e = tu_read_in(dir, "err");
    if (!strstr(e, "holds the evaluation of another folder called bert-f32; writing")) fail_msg("no warning:\n%s", e);
    free(e);
    snprintf(p, sizeof p, "%s/res/eval-bert-f32.json", dir);
    cJSON *j = load_json(p);
    assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(j, "model")->valuestring, "/a/bert-f32"));
    cJSON_Delete(j);
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "ls '%s'/res/eval-bert-f32-*.json >/dev/null", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(p, sizeof p, "%s/n2.ini", dir);
    snprintf(text, sizeof text, "[model]\npath = %s/a/bert-f32\n[eval]\nsts = %s/x/s.jsonl, %s/y/s.jsonl\n[output]\ndir = %s/res\n",
             dir, dir, dir, dir);
    tu_write(p, text);
    assert_int_equal(tu_run_to(dir, "%s eval '%s'", tu_bin(), p), 2);
    e = tu_read_in(dir, "err");
    char want[8800];
    snprintf(want, sizeof want, "%s: [eval] sts names two sets called \"s.jsonl\"", p);
    if (!strstr(e, want)) fail_msg("want \"%s\" in:\n%s", want, e);
    free(e);
    tu_rmtree(dir);
    free(dir);
}

/* issue 14: equal gold scores made Spearman NaN and stdout "main_score_mean":nan */
static void test_sts_constant_gold_is_null(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    tu_mpi_env();
    const char *flat = "{\"sentence1\": \"paris\", \"sentence2\": \"france\", \"score\": 3}\n"
                       "{\"sentence1\": \"berlin\", \"sentence2\": \"cafe\", \"score\": 3}\n"
                       "{\"sentence1\": \"hello\", \"sentence2\": \"world\", \"score\": 3}\n";
    assert_int_equal(eval_sets(dir, "q1\td1\t1\nq2\td2\t1\n", flat, NULL), 0);
    char *e = tu_read_in(dir, "err"), *o = tu_read_in(dir, "out");
    tu_assert_no_sanitizer(e);
    char want[4400];
    snprintf(want, sizeof want, "%s/s.jsonl: the gold scores (or the model's cosines) are all equal", dir);
    if (!strstr(e, want)) fail_msg("expected \"%s\" in:\n%s", want, e);
    /* the last stdout line is JSON; the mean is the retrieval set's alone */
    char *last = strrchr(o, '{');
    assert_non_null(last);
    cJSON *j = cJSON_Parse(last);
    if (!j) fail_msg("stdout's last line is not JSON: %s", last);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "main_score_mean")));
    cJSON_Delete(j);
    char p[4400];
    snprintf(p, sizeof p, "%s/res/eval-bert-f32.json", dir);
    cJSON *doc = load_json(p);
    assert_non_null(doc);
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "sts"), "s.jsonl");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(set, "main_score")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(set, "cosine_spearman")));
    double nd = get(doc, "retrieval", "beir", "ndcg_at_10");
    assert_true(fabs(cJSON_GetObjectItemCaseSensitive(doc, "main_score_mean")->valuedouble - nd) < 1e-12);
    cJSON_Delete(doc);
    free(e), free(o);
    tu_rmtree(dir);
    free(dir);
}

/* issue 14: max_length beyond the model's positions was cut in silence while the printed
 * configuration said otherwise; now a warning names the key's origin and the value used */
static void test_max_length_fitted(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    tu_mpi_env();
    char p[4400], text[8192], cwd[2048];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(p, sizeof p, "%s/m.ini", dir);
    snprintf(text, sizeof text, "[model]\npath = %s/" FIXTURES "/bert-f32\nmax_length = 512\n[eval]\nsts = %s/" FIXTURES
             "/sts-tiny.jsonl\n[output]\ndir = %s/res\n", cwd, cwd, dir);
    tu_write(p, text);
    assert_int_equal(tu_run_to(dir, "%s eval '%s'", tu_bin(), p), 0);
    char *e = tu_read_in(dir, "err"), want[8400];
    snprintf(want, sizeof want, "%s:3: [model] max_length = 512 is more than the 40 tokens", p);
    if (!strstr(e, want) || !strstr(e, "using max_length = 40")) /* sentence_bert_config.json's max_seq_length */ fail_msg("want \"%s\" in:\n%s", want, e);
    free(e);
    tu_rmtree(dir);
    free(dir);
}

/* A corpus of 400 documents, more than the 100 best each rank keeps per query on 1 to 3 ranks:
 * the per-query lists merged up the reduction tree (merge_topk) give bitwise the metrics of one
 * rank ranking everything, on 2, 3 and 4 ranks, and with the queries ranked in blocks of 2. */
static void test_eval_merge_many_docs(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    tu_mpi_env();
    char cwd[2048], p[4400], text[8192], bin[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_non_null(realpath(tu_bin(), bin));
    static const char *const words[] = {"paris", "france", "berlin", "city", "big", "capital", "hello", "world",
                                        "japan", "people", "cafe", "naive", "special", "tokens", "text", "large"};
    tu_sh("mkdir -p '%s/big/qrels'", dir);
    snprintf(p, sizeof p, "%s/big/corpus.jsonl", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    uint64_t seed = 3;
    for (int d = 0; d < 400; d++) {
        fprintf(f, "{\"_id\": \"d%d\", \"text\": \"", d);
        for (int w = 0; w < 6; w++) fprintf(f, "%s%s", w ? " " : "", words[(int)((tu_rand(&seed) + 1) * 8) % 16]);
        fprintf(f, "\"}\n");
    }
    fclose(f);
    snprintf(p, sizeof p, "%s/big/queries.jsonl", dir);
    tu_write(p, "{\"_id\": \"q1\", \"text\": \"paris france\"}\n{\"_id\": \"q2\", \"text\": \"big city\"}\n"
                "{\"_id\": \"q3\", \"text\": \"hello japan people\"}\n");
    snprintf(p, sizeof p, "%s/big/qrels/test.tsv", dir);
    tu_write(p, "query-id\tcorpus-id\tscore\nq1\td3\t1\nq1\td250\t2\nq2\td17\t1\nq2\td399\t1\nq3\td120\t1\n");
    snprintf(p, sizeof p, "%s/e.ini", dir);
    snprintf(text, sizeof text, "[model]\npath = %s/" FIXTURES "/bert-f32\n[eval]\nretrieval = big\nbatch = 64\n[output]\ndir = out\n", cwd);
    tu_write(p, text);
    double want[3] = {0};
    for (int np = 1; np <= 4; np++) {
        assert_int_equal(tu_run_in(dir, "rm -rf out && mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s eval e.ini", np, bin), 0);
        snprintf(p, sizeof p, "%s/out/eval-bert-f32.json", dir);
        cJSON *j = load_json(p);
        assert_non_null(j);
        const double got[3] = {get(j, "retrieval", "big", "ndcg_at_10"), get(j, "retrieval", "big", "map_at_100"),
                               get(j, "retrieval", "big", "recall_at_100")};
        cJSON_Delete(j);
        if (np == 1) memcpy(want, got, sizeof want);
        else assert_memory_equal(want, got, sizeof want);
        printf("    400 documents, %d rank%s: nDCG@10 %.6f, MAP@100 %.6f, R@100 %.6f\n", np, np > 1 ? "s" : "", got[0], got[1], got[2]);
    }
    /* the queries ranked 2 at a time (a test hook): blocks that cut the ranks' query shares */
    for (int np = 1; np <= 3; np += 2) {
        assert_int_equal(tu_run_in(dir, "rm -rf out && GAPRUNE_TEST_EVAL_QUERY_BLOCK=2 mpirun -np %d -x ASAN_OPTIONS "
                                        "-x OPENBLAS_NUM_THREADS -x GAPRUNE_TEST_EVAL_QUERY_BLOCK %s eval e.ini", np, bin), 0);
        snprintf(p, sizeof p, "%s/out/eval-bert-f32.json", dir);
        cJSON *j = load_json(p);
        assert_non_null(j);
        const double got[3] = {get(j, "retrieval", "big", "ndcg_at_10"), get(j, "retrieval", "big", "map_at_100"),
                               get(j, "retrieval", "big", "recall_at_100")};
        cJSON_Delete(j);
        assert_memory_equal(want, got, sizeof want);
        printf("    queries in blocks of 2, %d rank%s: the same bits\n", np, np > 1 ? "s" : "");
    }
    tu_rmtree(dir);
    free(dir);
}

/* gp_paired_mean, gp_paired_spearman and gp_paired_combined's average precision against the numpy
 * reference (compare_ref.h): every case, 3 threads and 1 bitwise alike. */
static void test_paired_comparisons(void **state) {
    (void)state;
    assert_int_equal(tu_check_compare_fixture(3), 7);
}

/* issue 27: `gaprune run` reads every evaluation set whole before its first stage. A corpus.jsonl
 * whose line 100 is broken, an empty queries.jsonl, an STS line with a misspelt key: each is
 * exit 2 naming the file (and line) on 1 and 2 ranks, in seconds, with no output folder made
 * (before, each stopped after the statistics and the dense evaluation). */
static void test_run_checks_eval_sets_first(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    tu_mpi_env();
    char cwd[2048], p[4400], text[8192], bin[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_non_null(realpath(tu_bin(), bin));
    /* a BEIR set of 110 documents (the fixture's 10 and 100 more), its line 100 broken */
    tu_sh("mkdir -p '%s/bad-corpus' && cp -r " FIXTURES "/beir-tiny/* '%s/bad-corpus/' && "
          "for i in $(seq 1 100); do printf '{\"_id\": \"x%%d\", \"text\": \"filler %%d\"}\\n' $i $i; done "
          ">> '%s/bad-corpus/corpus.jsonl' && sed -i '100s/.*/{\"_id\": \"x90\", \"text\": broken/' '%s/bad-corpus/corpus.jsonl'",
          dir, dir, dir, dir);
    tu_sh("mkdir -p '%s/no-queries' && cp -r " FIXTURES "/beir-tiny/* '%s/no-queries/' && : > '%s/no-queries/queries.jsonl'",
          dir, dir, dir);
    snprintf(p, sizeof p, "%s/sts.jsonl", dir);
    tu_write(p, "{\"sentence1\": \"paris\", \"sentence2\": \"france\", \"score\": 4}\n\n"
                "{\"sentence1\": \"berlin\", \"sentense2\": \"cafe\", \"score\": 1}\n"
                "{\"sentence1\": \"hello\", \"sentence2\": \"world\", \"score\": 2}\n");
    static const char *const sets[3] = {"retrieval = bad-corpus", "retrieval = no-queries", "sts = sts.jsonl"};
    static const char *const want[3] = {"/bad-corpus/corpus.jsonl:100: not a JSON object",
                                        "/no-queries/queries.jsonl: no queries (an empty file)",
                                        "/sts.jsonl:3: \"sentence2\" is missing"};
    for (int k = 0; k < 3; k++)
        for (int np = 1; np <= 2; np++) {
            snprintf(p, sizeof p, "%s/bad.ini", dir);
            snprintf(text, sizeof text,
                     "[model]\npath = %s/" FIXTURES "/bert-f32\n[data]\ndomain = %s/" FIXTURES "/corpora/domain.json\n"
                     "general = %s/" FIXTURES "/corpora/general.jsonl\n[prune]\nmethods = magnitude\nsparsity = 0.5\n"
                     "[eval]\n%s\n[output]\ndir = out\n",
                     cwd, cwd, cwd, sets[k]);
            tu_write(p, text);
            const double t0 = gp_now();
            assert_int_equal(tu_run_in(dir, "mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s run bad.ini", np, bin), 2);
            const double s = gp_now() - t0;
            char *e = tu_read_in(dir, "err.txt");
            char full[4600];
            snprintf(full, sizeof full, "gaprune: error: %s", want[k] + 1); /* as the job names it: relative */
            if (!strstr(e, full)) fail_msg("want \"%s\" in:\n%s", full, e);
            free(e);
            snprintf(p, sizeof p, "%s/out", dir);
            assert_int_equal(access(p, F_OK), -1); /* no stage ran: not even the output folder */
            assert_true(s < 30); /* seconds (sanitizer build, mpirun start-up included), not a stage */
            printf("    %s on %d rank%s: exit 2 in %.2f s\n", want[k] + 1, np, np > 1 ? "s" : "", s);
        }
    tu_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_metrics),
        cmocka_unit_test(test_correlations),
        cmocka_unit_test(test_eval_command),
        cmocka_unit_test(test_eval_max_length),
        cmocka_unit_test(test_qrels_error_after_later_query),
        cmocka_unit_test(test_sts_constant_gold_is_null),
        cmocka_unit_test(test_max_length_fitted),
        cmocka_unit_test(test_duplicate_corpus_id),
        cmocka_unit_test(test_same_names),
        cmocka_unit_test(test_eval_merge_many_docs),
        cmocka_unit_test(test_paired_comparisons),
        cmocka_unit_test(test_run_checks_eval_sets_first),
    };
    return cmocka_run_group_tests_name("eval", tests, NULL, NULL);
}
