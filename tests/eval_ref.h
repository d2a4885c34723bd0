/* eval_ref.h — the brute-force reference of the retrieval metrics on tests/fixtures/beir-tiny
 * with the bert-f32 fixture, for the tests of the evaluation stage and of `gaprune eval`. */
#pragma once

#include "test_util.h"

#include "gaprune/eval.h"
#include "gaprune/kernels.h"
#include "gaprune/model.h"
#include "gaprune/textfile.h"

/* Brute force: every query against every document, sorted by score then corpus index. */
static inline void brute_force(gp_retrieval_metrics *out) {
    gp_model *m;
    gp_err err = {0};
    assert_int_equal(gp_model_load(FIXTURES "/bert-f32", &m, &err), GP_OK);
    gp_texts c, q;
    assert_int_equal(gp_texts_read(FIXTURES "/beir-tiny/corpus.jsonl", 0, 10, true, true, &c, &err), GP_OK);
    assert_int_equal(gp_texts_read(FIXTURES "/beir-tiny/queries.jsonl", 0, 5, true, true, &q, &err), GP_OK);
    float ce[10 * 64], qe[5 * 64], norm[10];
    gp_model_encode(m, (const char *const *)c.text, 10, 3, 0, NULL, ce);
    gp_model_encode(m, (const char *const *)q.text, 5, 3, 0, NULL, qe);
    gp_l2norm_forward(ce, norm, ce, 10, 64);
    gp_l2norm_forward(qe, norm, qe, 5, 64);
    /* qrels of the fixture, by index: q1: d1 2, d5 1; q2: d2 1, d7 2; q3: d5 1; q4: d4 0, doc 9 0 */
    const gp_qrel r1[] = {{0, 2}, {4, 1}}, r2[] = {{1, 1}, {6, 2}}, r3[] = {{4, 1}}, r4[] = {{3, 0}, {8, 0}};
    const gp_qrel *rs[4] = {r1, r2, r3, r4};
    const int rn[4] = {2, 2, 1, 2};
    *out = (gp_retrieval_metrics){0};
    for (int i = 0; i < 4; i++) {
        double s[10];
        int64_t order[10];
        for (int d = 0; d < 10; d++) {
            s[d] = 0;
            for (int k = 0; k < 64; k++) s[d] += (double)qe[i * 64 + k] * ce[d * 64 + k];
            order[d] = d;
        }
        for (int a = 1; a < 10; a++)
            for (int b = a; b > 0 && (s[order[b]] > s[order[b - 1]]); b--) {
                int64_t t = order[b];
                order[b] = order[b - 1];
                order[b - 1] = t;
            }
        gp_retrieval_metrics mq;
        gp_query_metrics(order, 10, rs[i], rn[i], &mq);
        out->ndcg_at_10 += mq.ndcg_at_10 / 4, out->mrr_at_10 += mq.mrr_at_10 / 4, out->map_at_100 += mq.map_at_100 / 4;
        out->recall_at_10 += mq.recall_at_10 / 4;
    }
    gp_texts_free(&c), gp_texts_free(&q);
    gp_model_free(m);
}
