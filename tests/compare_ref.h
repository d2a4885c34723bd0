/* compare_ref.h — gaprune's paired comparisons (compare.h) against the numpy reference
 * (tests/reference/compare_ref.py, the same draws, each resample recomputed from the resampled
 * vectors): for test_eval (one process, 1 and 3 threads) and test_mpi_stages (1, 2 and 4 ranks,
 * the resamples split over them). */
#pragma once

#include "test_util.h"

#include <cJSON.h>
#include <math.h>

#include "gaprune/compare.h"
#include "gaprune/kernels.h"
#include "gaprune/log.h"

/* Every case of the fixture, by gp_paired_mean, gp_paired_spearman or gp_paired_combined (average
 * precision) with `threads` threads and then 1: the difference, its interval and standard error
 * within 1e-12 of numpy's, the p-value and the verdict exactly, both runs bitwise alike; a
 * difference built to be significant is marked so, a null one is not. Collective. Returns the
 * cases checked. */
static int tu_check_compare_fixture(int threads) {
    char *text = tu_read_file(FIXTURES "/compare.expected.json", NULL);
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    const int B = (int)cJSON_GetObjectItemCaseSensitive(doc, "resamples")->valuedouble;
    const uint64_t seed = (uint64_t)cJSON_GetObjectItemCaseSensitive(doc, "seed")->valuedouble;
    assert_true(B >= GP_COMPARE_RESAMPLES);
    const cJSON *c;
    int checked = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(doc, "cases")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const char *kind = cJSON_GetObjectItemCaseSensitive(c, "kind")->valuestring;
        const cJSON *ja = cJSON_GetObjectItemCaseSensitive(c, "a"), *jb = cJSON_GetObjectItemCaseSensitive(c, "b"),
                    *jg = cJSON_GetObjectItemCaseSensitive(c, "gold"), *e = cJSON_GetObjectItemCaseSensitive(c, "expected");
        const int n = cJSON_GetArraySize(ja);
        double *a = malloc((size_t)n * sizeof(double)), *b = malloc((size_t)n * sizeof(double)),
               *g = malloc((size_t)n * sizeof(double));
        for (int i = 0; i < n; i++) {
            a[i] = cJSON_GetArrayItem(ja, i)->valuedouble, b[i] = cJSON_GetArrayItem(jb, i)->valuedouble;
            g[i] = jg ? cJSON_GetArrayItem(jg, i)->valuedouble : 0;
        }
        gp_paired d[2];
        for (int t = 0; t < 2; t++) {
            gp_set_threads(t ? 1 : threads);
            if (!strcmp(kind, "spearman")) {
                gp_paired_spearman(a, b, g, n, B, seed, &d[t]);
            } else if (!strcmp(kind, "ap")) {
                const gp_paired_set one = {GP_PAIRED_AP, a, b, g, n, 1.0};
                gp_paired_combined(&one, 1, B, seed, &d[t]);
            } else {
                gp_paired_mean(a, b, n, B, seed, &d[t]);
            }
        }
        assert_memory_equal(&d[0], &d[1], sizeof d[0]);
        const double want[4] = {cJSON_GetObjectItemCaseSensitive(e, "delta")->valuedouble,
                                cJSON_GetObjectItemCaseSensitive(e, "lo")->valuedouble,
                                cJSON_GetObjectItemCaseSensitive(e, "hi")->valuedouble,
                                cJSON_GetObjectItemCaseSensitive(e, "se")->valuedouble};
        const double got[4] = {d[0].delta, d[0].lo, d[0].hi, d[0].se};
        for (int k = 0; k < 4; k++)
            if (fabs(got[k] - want[k]) > 1e-12) fail_msg("%s: value %d is %.17g, numpy %.17g", name, k, got[k], want[k]);
        assert_true(d[0].p == cJSON_GetObjectItemCaseSensitive(e, "p")->valuedouble);
        assert_int_equal(d[0].significant, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "significant")));
        const cJSON *nn = cJSON_GetObjectItemCaseSensitive(e, "n_needed");
        if (cJSON_IsNull(nn)) assert_true(isinf(d[0].n_needed));
        else assert_true(fabs(d[0].n_needed / nn->valuedouble - 1) < 1e-9);
        assert_int_equal(d[0].n, n);
        if (!strcmp(name, "significant") || !strcmp(name, "sts") || !strcmp(name, "ap"))
            assert_true(d[0].significant && d[0].lo > 0);
        if (strstr(name, "null")) assert_true(!d[0].significant && d[0].lo <= 0 && d[0].hi >= 0 && d[0].p == 1);
        printf("    %-13s delta %+.4f [%+.4f, %+.4f] p %.4f%s, %.0f units needed\n", name, d[0].delta, d[0].lo, d[0].hi,
               d[0].p, d[0].significant ? " (significant)" : "", d[0].n_needed);
        free(a), free(b), free(g);
        checked++;
    }
    cJSON_Delete(doc);
    free(text);
    return checked;
}
