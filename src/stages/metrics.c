/* metrics.c — retrieval metrics of one query, Pearson and Spearman (see eval.h). */
#include <math.h>
#include <stdlib.h>

#include "gaprune/eval.h"

static int grade_of(int64_t doc, const gp_qrel *q, int nq) {
    int g = 0;
    for (int i = 0; i < nq; i++)
        if (q[i].doc == doc && q[i].grade > g) g = q[i].grade;
    return g;
}

static int cmp_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

void gp_query_metrics(const int64_t *ranked, int n, const gp_qrel *qrels, int nq, gp_retrieval_metrics *out) {
    *out = (gp_retrieval_metrics){0};
    int *grades = malloc((size_t)(nq ? nq : 1) * sizeof(int));
    int nrel = 0;
    /* one grade per distinct relevant document (the highest, when a qrels file repeats one) */
    for (int i = 0; i < nq; i++) {
        if (qrels[i].grade <= 0) continue;
        int dup = 0;
        for (int j = 0; j < i; j++) dup |= qrels[j].doc == qrels[i].doc && qrels[j].grade > 0;
        if (!dup) grades[nrel++] = grade_of(qrels[i].doc, qrels, nq);
    }
    if (nrel == 0) {
        free(grades);
        return;
    }
    qsort(grades, (size_t)nrel, sizeof(int), cmp_desc);
    double dcg = 0, idcg = 0, ap = 0;
    int hits10 = 0, hits100 = 0, hits = 0;
    for (int i = 0; i < n && i < 100; i++) {
        int g = grade_of(ranked[i], qrels, nq);
        if (g <= 0) continue;
        hits++;
        if (i < 10) {
            dcg += g / log2(i + 2.0);
            hits10++;
            if (out->mrr_at_10 == 0) out->mrr_at_10 = 1.0 / (i + 1);
        }
        hits100++;
        ap += (double)hits / (i + 1);
    }
    for (int i = 0; i < nrel && i < 10; i++) idcg += grades[i] / log2(i + 2.0);
    out->ndcg_at_10 = dcg / idcg;
    out->recall_at_10 = (double)hits10 / nrel;
    out->recall_at_100 = (double)hits100 / nrel;
    out->map_at_100 = ap / nrel;
    free(grades);
}

double gp_pearson(const double *x, const double *y, int64_t n) {
    if (n < 2) return NAN;
    double mx = 0, my = 0;
    for (int64_t i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= (double)n, my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

static int by_key(const void *a, const void *b, void *key) {
    const double *v = key;
    double x = v[*(const int64_t *)a], y = v[*(const int64_t *)b];
    return (x > y) - (x < y);
}

/* Ranks 1..n, ties sharing their average rank. */
static double *ranks(const double *v, int64_t n) {
    int64_t *idx = malloc((size_t)n * sizeof(int64_t));
    double *r = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, (size_t)n, sizeof(int64_t), by_key, (void *)v);
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]]) j++;
        double avg = (double)(i + j) / 2.0 + 1.0;
        for (int64_t k = i; k <= j; k++) r[idx[k]] = avg;
        i = j + 1;
    }
    free(idx);
    return r;
}

double gp_spearman(const double *x, const double *y, int64_t n) {
    if (n < 2) return NAN;
    double *rx = ranks(x, n), *ry = ranks(y, n);
    double s = gp_pearson(rx, ry, n);
    free(rx);
    free(ry);
    return s;
}
