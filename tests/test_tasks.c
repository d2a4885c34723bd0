/* test_tasks.c — MTEB's other task types end to end (tasks.h, eval.h), the sanitizer build:
 *  - every layout of tests/fixtures/tasks reads with the counts it has;
 *  - bad records (a missing label, a label only in test, a clustering set of one label, an empty
 *    summary list, a pair label of 2, a missing list) are GP_EINPUT naming file:line, and in a job
 *    exit 2 before any stage (no statistics written);
 *  - `gaprune eval` of one set of each type on 1, 2 and 4 ranks: the same scores, bitwise, and
 *    every main score the mean of its per-unit values (pair classification: the AP of its pairs);
 *  - `gaprune run` on the fixture writes each set's table, the task-type table and their
 *    comparisons to report.md and report.json.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include <cmocka.h>

#include "gaprune/json.h"
#include "gaprune/taskmetrics.h"
#include "gaprune/tasks.h"

static char *g_dir;
static char g_bin[4096], g_cwd[2048];

static const char *const k_sets[GP_TASK_NTYPES] = {"classification", "clustering.jsonl", "pairs.jsonl",
                                                   "reranking.jsonl", "summarization.jsonl", "bitext.jsonl"};

static int setup(void **state) {
    (void)state;
    g_dir = tu_mkdtemp();
    tu_mpi_env();
    tu_testhooks_off();
    if (!getcwd(g_cwd, sizeof g_cwd) || !realpath(tu_bin(), g_bin)) return -1;
    char p[4400], text[16384];
    snprintf(p, sizeof p, "%s/job.ini", g_dir);
    int at = snprintf(text, sizeof text,
                      "[model]\npath = %s/" FIXTURES "/bert-f32\n[data]\ndomain = %s/" FIXTURES "/corpora/domain.json\n"
                      "general = %s/" FIXTURES "/corpora/general.jsonl\n[prune]\nmethods = magnitude\n[retrain]\nmethods =\n"
                      "[eval]\nbatch = 4\nresamples = 1000\n",
                      g_cwd, g_cwd, g_cwd);
    for (int t = 0; t < GP_TASK_NTYPES; t++)
        at += snprintf(text + at, sizeof text - (size_t)at, "%s = %s/" FIXTURES "/tasks/%s\n",
                       gp_task_info_of((gp_task_type)t)->key, g_cwd, k_sets[t]);
    snprintf(text + at, sizeof text - (size_t)at, "[output]\ndir = out\n");
    tu_write(p, text);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static void test_loaders(void **state) {
    (void)state;
    /* texts and units of each fixture set */
    const int64_t texts[GP_TASK_NTYPES] = {45, 24, 32, 36, 27, 20}, units[GP_TASK_NTYPES] = {15, 2, 16, 6, 5, 10};
    for (int t = 0; t < GP_TASK_NTYPES; t++) {
        char p[4400];
        snprintf(p, sizeof p, FIXTURES "/tasks/%s", k_sets[t]);
        gp_task_set s;
        gp_err err = {0};
        assert_int_equal(gp_task_load((gp_task_type)t, p, &s, &err), GP_OK);
        assert_int_equal(s.n_texts, texts[t]);
        assert_int_equal(s.n_units, units[t]);
        assert_int_equal(s.unit_off[s.n_units], s.n_texts);
        if (t == GP_TASK_CLASSIFICATION) {
            assert_int_equal(s.n_train, 30);
            assert_int_equal(s.n_labels, 3);
            assert_string_equal(s.label_names[0], "animal");
        }
        if (t == GP_TASK_RERANKING) /* the query, 2 positives, 3 negatives */
            for (int64_t u = 0; u < s.n_units; u++) {
                assert_int_equal(s.role[s.unit_off[u]], GP_ROLE_QUERY);
                assert_int_equal(s.role[s.unit_off[u] + 1], GP_ROLE_POSITIVE);
                assert_int_equal(s.role[s.unit_off[u + 1] - 1], GP_ROLE_NEGATIVE);
            }
        gp_task_set_free(&s);
    }
}

/* One bad file of a type: GP_EINPUT whose message holds `want`. */
static void bad(gp_task_type t, const char *name, const char *train, const char *content, const char *want) {
    char p[4400], q[4500];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    if (t == GP_TASK_CLASSIFICATION) {
        tu_sh("mkdir -p '%s'", p);
        snprintf(q, sizeof q, "%s/train.jsonl", p);
        tu_write(q, train);
        snprintf(q, sizeof q, "%s/test.jsonl", p);
        tu_write(q, content);
    } else {
        tu_write(p, content);
    }
    gp_task_set s;
    gp_err err = {0};
    assert_int_equal(gp_task_load(t, p, &s, &err), GP_EINPUT);
    if (!strstr(err.msg, want)) fail_msg("%s: \"%s\" lacks \"%s\"", name, err.msg, want);
}

static void test_bad_records(void **state) {
    (void)state;
    const char *train = "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": 2}\n";
    bad(GP_TASK_CLASSIFICATION, "c1", "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\"}\n", "{\"text\": \"a\", \"label\": \"x\"}\n",
        "train.jsonl:2: \"label\" is missing");
    bad(GP_TASK_CLASSIFICATION, "c2", train, "{\"text\": \"a\", \"label\": \"x\"}\n\n{\"text\": \"c\", \"label\": \"y\"}\n",
        "test.jsonl:3: label \"y\" does not occur in train.jsonl");
    bad(GP_TASK_CLUSTERING, "k.jsonl", NULL, "{\"sentences\": [\"a\", \"b\"], \"labels\": [1, 2]}\n{\"sentences\": [\"a\", \"b\"], \"labels\": [1, 1]}\n",
        "k.jsonl:2: the clustering set has one label only");
    bad(GP_TASK_CLUSTERING, "k2.jsonl", NULL, "{\"sentences\": [\"a\", \"b\"], \"labels\": [1]}\n", "k2.jsonl:1: \"labels\" differs in length");
    bad(GP_TASK_SUMMARIZATION, "s.jsonl", NULL,
        "{\"text\": \"t\", \"human_summaries\": [], \"machine_summaries\": [\"m\"], \"relevance\": [1]}\n",
        "s.jsonl:1: \"human_summaries\" is an empty list");
    bad(GP_TASK_SUMMARIZATION, "s2.jsonl", NULL,
        "{\"text\": \"t\", \"human_summaries\": [\"h\"], \"machine_summaries\": [\"m\", \"n\"], \"relevance\": [1]}\n",
        "s2.jsonl:1: \"relevance\" differs in length");
    bad(GP_TASK_PAIR, "p.jsonl", NULL, "{\"sentence1\": \"a\", \"sentence2\": \"b\", \"label\": 2}\n", "p.jsonl:1: \"label\" is not 0 or 1");
    bad(GP_TASK_PAIR, "p2.jsonl", NULL, "{\"sentence1\": \"a\", \"sentence2\": \"b\", \"label\": 0}\n", "no pair has label 1");
    bad(GP_TASK_RERANKING, "r.jsonl", NULL, "{\"query\": \"q\", \"positive\": [\"a\"]}\n", "r.jsonl:1: \"negative\" is missing");
    bad(GP_TASK_BITEXT, "b.jsonl", NULL, "{\"sentence1\": \"a\"}\nnot json\n", "b.jsonl:1: \"sentence2\" is missing");
    /* in a job: exit 2 before any stage, the file named, nothing computed */
    char p[4400];
    snprintf(p, sizeof p, "%s/bad.ini", g_dir);
    tu_sh("sed 's|^summarization = .*|summarization = %s/s.jsonl|; s|dir = out|dir = out-bad|' '%s/job.ini' > '%s'", g_dir, g_dir, p);
    assert_int_equal(tu_run_in(g_dir, "mpirun -np 2 -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s run bad.ini", g_bin), 2);
    char *e = tu_read_in(g_dir, "err.txt");
    assert_non_null(strstr(e, "s.jsonl:1: \"human_summaries\" is an empty list"));
    free(e);
    snprintf(p, sizeof p, "%s/out-bad/stats.h5", g_dir);
    assert_false(access(p, F_OK) == 0);
}

/* The eval file's main score of each type's set and its per-unit values. */
static void scores_of(const char *path, double *main) {
    size_t len;
    char *text = tu_read_file(path, &len);
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    for (int t = 0; t < GP_TASK_NTYPES; t++) {
        const cJSON *sets = cJSON_GetObjectItem(doc, gp_task_info_of((gp_task_type)t)->key);
        const cJSON *set = sets ? sets->child : NULL;
        assert_non_null(set);
        const cJSON *ms = cJSON_GetObjectItem(set, "main_score");
        assert_true(cJSON_IsNumber(ms));
        main[t] = ms->valuedouble;
        /* the main score is the mean of the per-unit values, or the AP of the pairs */
        if (t == GP_TASK_PAIR) {
            const cJSON *pp = cJSON_GetObjectItem(set, "per_pair");
            const int n = cJSON_GetArraySize(cJSON_GetObjectItem(pp, "cosine"));
            double *c = malloc((size_t)n * sizeof(double));
            uint8_t *l = malloc((size_t)n);
            for (int i = 0; i < n; i++) {
                c[i] = cJSON_GetArrayItem(cJSON_GetObjectItem(pp, "cosine"), i)->valuedouble;
                l[i] = cJSON_GetArrayItem(cJSON_GetObjectItem(pp, "label"), i)->valuedouble != 0;
            }
            assert_true(fabs(gp_average_precision(c, l, n) - main[t]) < 1e-12);
            free(c), free(l);
        } else {
            const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(set, "per_unit"), "values"), *x;
            double sum = 0;
            int n = 0;
            cJSON_ArrayForEach(x, v) sum += x->valuedouble, n++;
            assert_true(n > 0);
            assert_true(fabs(sum / n - main[t]) < 1e-12);
        }
        assert_true(main[t] >= -1 && main[t] <= 1);
    }
    const cJSON *tm = cJSON_GetObjectItem(doc, "main_score_type_mean");
    assert_true(cJSON_IsNumber(tm));
    double mean = 0;
    for (int t = 0; t < GP_TASK_NTYPES; t++) mean += main[t];
    assert_true(fabs(mean / GP_TASK_NTYPES - tm->valuedouble) < 1e-12);
    cJSON_Delete(doc);
    free(text);
}

static void test_ranks_agree(void **state) {
    (void)state;
    double ref[GP_TASK_NTYPES];
    const int np[] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(tu_run_in(g_dir, "mpirun -np %d -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s eval job.ini --set "
                                          "output.dir=out-eval%d",
                                   np[k], g_bin, np[k]),
                         0);
        char p[4400];
        snprintf(p, sizeof p, "%s/out-eval%d/eval-bert-f32.json", g_dir, np[k]);
        double s[GP_TASK_NTYPES];
        scores_of(p, s);
        if (k == 0) memcpy(ref, s, sizeof ref);
        else assert_memory_equal(ref, s, sizeof ref);
    }
    printf("    classification %.4f, clustering %.4f, pair AP %.4f, reranking MAP %.4f, summarization %.4f, bitext %.4f: "
           "the same on 1, 2 and 4 ranks\n",
           ref[0], ref[1], ref[2], ref[3], ref[4], ref[5]);
}

static void test_run_report(void **state) {
    (void)state;
    assert_int_equal(tu_run_in(g_dir, "mpirun -np 2 -x ASAN_OPTIONS -x OPENBLAS_NUM_THREADS %s run job.ini", g_bin), 0);
    char p[4400];
    snprintf(p, sizeof p, "%s/out/report.md", g_dir);
    size_t len;
    char *md = tu_read_file(p, &len);
    const char *want[] = {"## classification (Classification, accuracy)", "## clustering.jsonl (Clustering, v_measure)",
                          "## pairs.jsonl (PairClassification, ap)", "## reranking.jsonl (Reranking, map)",
                          "## summarization.jsonl (Summarization, cosine_spearman)", "## bitext.jsonl (BitextMining, accuracy)",
                          "## task types", "| Classification | Clustering | PairClassification | Reranking | Summarization | "
                                           "BitextMining | mean over types | p |",
                          "test texts needed", "clustering sets needed"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(md, want[i])) fail_msg("report.md lacks \"%s\"", want[i]);
    free(md);
    snprintf(p, sizeof p, "%s/out/report.json", g_dir);
    char *js = tu_read_file(p, &len);
    cJSON *j = cJSON_Parse(js);
    int kinds = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(cJSON_GetObjectItem(j, "comparisons"), "pairs")) {
        const char *k = cJSON_GetObjectItem(c, "kind")->valuestring;
        for (int t = 0; t < GP_TASK_NTYPES; t++)
            if (!strcmp(k, gp_task_info_of((gp_task_type)t)->key)) kinds |= 1 << t;
    }
    assert_int_equal(kinds, (1 << GP_TASK_NTYPES) - 1);
    /* the task types' means against dense: a type of one set has that set's interval exactly (the
     * same resampling streams), and the mean over types' difference is the mean of the six */
    double set_delta[GP_TASK_NTYPES] = {0}, set_lo[GP_TASK_NTYPES] = {0}, type_delta[GP_TASK_NTYPES] = {0},
           type_lo[GP_TASK_NTYPES] = {0}, all = NAN;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(cJSON_GetObjectItem(j, "comparisons"), "pairs")) {
        if (strcmp(cJSON_GetObjectItem(c, "stage")->valuestring, "one_shot") || strcmp(cJSON_GetObjectItem(c, "a")->valuestring, "dense"))
            continue;
        const char *k = cJSON_GetObjectItem(c, "kind")->valuestring, *set = cJSON_GetObjectItem(c, "set")->valuestring;
        const double d = cJSON_GetObjectItem(c, "delta")->valuedouble, lo = cJSON_GetObjectItem(c, "lo")->valuedouble;
        if (!strcmp(k, "type_mean") && !strcmp(set, "mean over types")) all = d;
        for (int t = 0; t < GP_TASK_NTYPES; t++) {
            if (!strcmp(k, gp_task_info_of((gp_task_type)t)->key)) set_delta[t] = d, set_lo[t] = lo;
            if (!strcmp(k, "type_mean") && !strcmp(set, gp_task_info_of((gp_task_type)t)->mteb)) type_delta[t] = d, type_lo[t] = lo;
        }
    }
    double mean = 0;
    for (int t = 0; t < GP_TASK_NTYPES; t++) {
        assert_true(set_delta[t] == type_delta[t] && set_lo[t] == type_lo[t]);
        mean += set_delta[t] / GP_TASK_NTYPES;
    }
    assert_true(fabs(all - mean) < 1e-12);
    cJSON_Delete(j);
    free(js);
    printf("    gaprune run: a table and paired comparisons for each of the 6 types; the task-type means against dense "
           "with intervals (mean over types: %+.4f)\n", all);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loaders),
        cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_ranks_agree),
        cmocka_unit_test(test_run_report),
    };
    return cmocka_run_group_tests_name("tasks", tests, setup, teardown);
}
