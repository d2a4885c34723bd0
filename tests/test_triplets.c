/* test_triplets.c — corpus formats, the seeded selection (the max_samples smallest keys, in file
 * order), reading records back, and the SHA-256 of the bytes. */
#include "test_util.h"

#include "gaprune/hash.h"
#include "gaprune/rng.h"
#include "gaprune/triplets.h"

static char *g_dir;

static int setup(void **state) {
    (void)state;
    g_dir = tu_mkdtemp();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static char *write_file(const char *name, const char *text) {
    char *p = malloc(4200);
    snprintf(p, 4200, "%s/%s", g_dir, name);
    tu_write(p, text);
    return p;
}

static void test_formats(void **state) {
    (void)state;
    char *p = write_file("mixed.jsonl",
                         "{\"query\": \"q1\", \"positive\": \"p1\", \"negative\": \"n1\"}\r\n"
                         "\n"
                         "  {\"query\": \"q2\", \"pos\": [\"p2\", \"p2b\"], \"neg\": [\"n2\", \"n2b\"]}\n"
                         "{\"query\": \"q3 \\u00e9\", \"positive\": [\"p3\"], \"neg\": \"n3\", \"extra\": 1}");
    gp_corpus c;
    gp_err err = {0};
    assert_int_equal(gp_corpus_index(p, 100, 42, false, &c, &err), GP_OK);
    assert_int_equal(c.n_records, 3);
    assert_int_equal(c.n_selected, 3);
    assert_int_equal(c.sel[1].line, 3);
    const char *want[3][3] = {{"q1", "p1", "n1"}, {"q2", "p2", "n2"}, {"q3 é", "p3", "n3"}};
    for (int i = 0; i < 3; i++) {
        gp_triplet t;
        assert_int_equal(gp_corpus_read(&c, i, &t, &err), GP_OK);
        assert_string_equal(t.query, want[i][0]);
        assert_string_equal(t.positive, want[i][1]);
        assert_string_equal(t.negative, want[i][2]);
        gp_triplet_free(&t);
    }
    char hex[65];
    assert_int_equal(gp_sha256_file(p, hex, &err), GP_OK);
    assert_string_equal(hex, c.sha256);
    gp_corpus_free(&c);
    free(p);

    p = write_file("array.json", "\n [ {\"query\": \"a\", \"positive\": \"b [x]\", \"negative\": \"c}\\\"\"},\n"
                                 "{\"query\": \"d\", \"positive\": \"e\", \"negative\": \"f\"} ]\n");
    assert_int_equal(gp_corpus_index(p, 100, 42, false, &c, &err), GP_OK);
    assert_int_equal(c.n_selected, 2);
    gp_triplet t;
    assert_int_equal(gp_corpus_read(&c, 0, &t, &err), GP_OK);
    assert_string_equal(t.negative, "c}\""); /* braces and quotes inside strings do not end a record */
    gp_triplet_free(&t);
    assert_int_equal(c.sel[1].line, 3);
    gp_corpus_free(&c);
    free(p);

    p = write_file("empty-array.json", "[ ]");
    assert_int_equal(gp_corpus_index(p, 100, 42, false, &c, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "no valid triplets"));
    gp_corpus_free(&c);
    free(p);
    p = write_file("trailing.json", "[{\"query\": \"a\", \"positive\": \"b\", \"negative\": \"c\"}] x");
    assert_int_equal(gp_corpus_index(p, 100, 42, false, &c, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "after the JSON array"));
    gp_corpus_free(&c);
    free(p);
}

static void test_selection(void **state) {
    (void)state;
    char text[8192] = "[\n";
    for (int i = 0; i < 20; i++) {
        char rec[128];
        snprintf(rec, sizeof rec, "{\"query\": \"q%d\", \"positive\": \"p\", \"negative\": \"n\"}%s\n", i, i < 19 ? "," : "");
        strcat(text, rec);
    }
    strcat(text, "]\n");
    char *p = write_file("twenty.json", text);
    gp_corpus a, b, c;
    gp_err err = {0};
    assert_int_equal(gp_corpus_index(p, 5, 7, false, &a, &err), GP_OK);
    assert_int_equal(gp_corpus_index(p, 5, 7, false, &b, &err), GP_OK);
    assert_int_equal(gp_corpus_index(p, 5, 8, false, &c, &err), GP_OK);
    assert_int_equal(a.n_selected, 5);
    /* the 5 records with the smallest keys, in file order (record i is on line i + 2) */
    uint64_t keys[20];
    for (int i = 0; i < 20; i++) keys[i] = gp_record_key(7, i);
    int chosen = 0;
    for (int i = 0; i < 20; i++) {
        int smaller = 0;
        for (int j = 0; j < 20; j++) smaller += keys[j] < keys[i];
        if (smaller < 5) {
            assert_int_equal(a.sel[chosen].line, i + 2);
            chosen++;
        }
    }
    assert_int_equal(chosen, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(a.sel[i].offset, b.sel[i].offset); /* same seed, same selection */
        if (i) assert_true(a.sel[i].offset > a.sel[i - 1].offset);
    }
    int same = 1;
    for (int i = 0; i < 5; i++) same &= a.sel[i].offset == c.sel[i].offset;
    assert_false(same); /* another seed, another sample */
    gp_corpus_free(&a), gp_corpus_free(&b), gp_corpus_free(&c);
    assert_int_equal(gp_corpus_index(p, 20, 7, false, &a, &err), GP_OK);
    assert_int_equal(a.n_selected, 20); /* max_samples >= n: everything */
    gp_corpus_free(&a);
    free(p);
}

static void test_skip_counts(void **state) {
    (void)state;
    char *p = write_file("some-bad.jsonl",
                         "{\"query\": \"a\", \"positive\": \"b\", \"negative\": \"c\"}\n"
                         "{\"query\": \"a\", \"positive\": \"b\"}\n"
                         "not json\n"
                         "[1, 2]\n"
                         "{\"query\": \"a\", \"positive\": [], \"negative\": \"c\"}\n"
                         "{\"query\": \"d\", \"positive\": \"e\", \"negative\": \"f\"}\n");
    gp_corpus c;
    gp_err err = {0};
    assert_int_equal(gp_corpus_index(p, 100, 1, false, &c, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "some-bad.jsonl:2: missing field \"negative\""));
    gp_corpus_free(&c);
    assert_int_equal(gp_corpus_index(p, 100, 1, true, &c, &err), GP_OK);
    assert_int_equal(c.n_records, 6);
    assert_int_equal(c.n_skipped, 4);
    assert_int_equal(c.n_selected, 2);
    assert_int_equal(c.sel[1].line, 6);
    gp_corpus_free(&c);
    free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_skip_counts),
    };
    return cmocka_run_group_tests_name("triplets", tests, setup, teardown);
}
