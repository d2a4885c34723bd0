/*
 * taskmetrics.c — MTEB's main scores beyond retrieval and STS (see taskmetrics.h).
 *
 * What MTEB (1.x, mteb/abstasks and mteb/evaluation/evaluators) does, and where we differ:
 *
 * Classification (AbsTaskClassification + logRegClassificationEvaluator)
 *   - n_experiments 10 and samples_per_label 8 unless the task's metadata names others; method
 *     "logReg" (kNN variants exist, not used by the main score).
 *   - Undersampling: idxs = arange(n_train) once, then for every experiment np.random.shuffle(idxs)
 *     (numpy's global RNG, which AbsTask.__init__ seeds with the task's seed, default 42; the
 *     shuffle is cumulative: the next experiment shuffles the previous order again) and the first
 *     samples_per_label indices of each label in that order, kept in that order.
 *     Ours: experiment e shuffles 0 .. ntr-1 afresh with Fisher–Yates drawn from
 *     gp_rng_seed(seed, e) (splitmix64, rng.h). Each experiment's subset is again a uniformly
 *     random one of the same kind, so the scores have the same distribution but come from other
 *     subsets than numpy's: not MTEB's numbers digit for digit; in exchange an experiment can be
 *     recomputed on its own, and the experiments run in parallel.
 *   - Classifier: scikit-learn LogisticRegression(random_state=seed, n_jobs=-1, max_iter=100), so
 *     C = 1, penalty l2, solver lbfgs, tol 1e-4, an intercept that is NOT regularised, and for
 *     more than two labels one multinomial (softmax) model.
 *     Ours: liblinear 2.3's L2R_LR (Debian liblinear-dev), the primal trust-region Newton solver
 *     of min_w 0.5·wᵀw + C·Σ log(1 + exp(−y_i wᵀx_i)) with C = 1, the bias as an extra feature of
 *     value 1 (liblinear's -B 1) whose weight IS regularised (liblinear < 2.40 has no other
 *     choice; 2.40's default is the same), eps GP_LOGREG_EPS = 1e-6 instead of liblinear's 0.01, and
 *     for k > 2 labels k one-vs-rest binary models, the prediction the label of the largest
 *     decision value. What that changes: one-vs-rest boundaries are not the softmax ones (for
 *     k = 2 scikit-learn fits one binary model too, and the objectives differ only in the bias's
 *     penalty); the regularised bias pulls the intercept toward 0, which matters most for
 *     one-vs-rest's 1-against-(k−1) imbalance; and we solve to the optimum where lbfgs stops at
 *     tol 1e-4 or 100 iterations. How far that moves the accuracies from MTEB's is not measured
 *     here (scikit-learn is not installed).
 *     A training set with one label predicts that label everywhere (scikit-learn refuses it).
 *     The eps: on tests/reference's four problems (8 per label, d 8..64) the largest distance of
 *     the weights from the exact optimum (Newton to |∇| < 1e-12) is 1.3e-2 at eps 0.01 (2 of 780
 *     test predictions flip), 1.2e-4 at 1e-4, 1.9e-5 at 1e-5 and 1.1e-6 at 1e-6 (decision values
 *     within 1e-5); on 77 labels × 8 of d 768 (random unit vectors), 1e-6 took 1.3–1.8× the
 *     ~2 s of 1e-4 and of 0.01 (the tolerance scales with min(pos, neg) / l, already small
 *     one-vs-rest); the experiments run on the OpenMP threads, which offsets it.
 *   - Scores per experiment: accuracy_score, f1_score(average="macro") (labels of y_true ∪ y_pred),
 *     f1_weighted, and for two labels ap on the hard predictions; the means over experiments;
 *     main score accuracy. We give accuracy and macro F1.
 *
 * Clustering (ClusteringEvaluator): MiniBatchKMeans(n_clusters = number of labels, batch 500),
 *   then sklearn.metrics.v_measure_score(labels, assignment), the main score. Our k-means is
 *   kmeans.h's; gp_v_measure is scikit-learn's homogeneity_completeness_v_measure with β = 1:
 *   natural logs, entropy 0 for a single class or cluster, homogeneity = MI / H(C) (1 when
 *   H(C) = 0), completeness = MI / H(K) (1 when H(K) = 0), V = 0 when both are 0, and 1.0 for
 *   n = 0. So one class and one cluster give 1; one class split over several clusters gives 0
 *   (h = 1, c = 0), several classes in one cluster give 0 (h = 0, c = 1).
 *
 * Pair classification (PairClassificationEvaluator): for cosine, Manhattan, Euclidean and dot
 *   scores, accuracy / F1 at the best threshold and ap = average_precision_score(labels, score ·
 *   ±1); the main score is the largest AP over the four ("max_ap"; older versions: cos_sim ap).
 *   Ours: the cosine AP only. average_precision_score = Σ over distinct thresholds (highest
 *   first, tied scores one threshold) of (R_k − R_{k−1}) · P_k. Without a positive label recent
 *   scikit-learn warns, sets recall to 1 at every threshold and so returns 0 (older versions
 *   divided 0 by 0: NaN); we return NaN (header).
 *
 * Reranking (RerankingEvaluator of MTEB 1.x; later versions score reranking sets with the
 *   retrieval evaluator): queries with no
 *   positive or no negative candidate are dropped; per query ap = average_precision_score over
 *   the candidates' cosines and mrr = 1 / (rank + 1) of the first relevant candidate among the
 *   first mrr_at_k = 10 of torch.argsort(−scores), else 0; main score map (the mean AP), also
 *   mrr (MRR@10). torch.argsort is not stable, so MTEB's order among tied scores is unspecified;
 *   ours puts the lower index first. AP is unaffected by ties' order (tied scores are one
 *   threshold), MRR@10 is.
 *
 * Summarization (SummarizationEvaluator): per text, for each machine summary the largest cosine
 *   to the text's human summaries (torch.max over cos_sim), then scipy.stats.spearmanr (average
 *   ranks) against the human relevance scores; a text whose relevance scores, best cosines or
 *   best dot products are all equal is skipped; the main score cosine_spearman is the mean over
 *   the rest. Ours: the cosine side (the dot side differs only for embeddings that are not
 *   normalised); NaN marks a text to skip.
 *
 * Bitext mining (BitextMiningEvaluator): cosine nearest neighbour (top_k = 1, torch.topk, ties
 *   unspecified) of every sentence1 among the sentence2s, gold pairs (i, i); it reports
 *   accuracy, and weighted precision, recall and F1 (sklearn, zero_division 0) of the predicted
 *   indices; the main score is f1, not accuracy. With one gold pair per index, weighted recall
 *   equals accuracy, but F1 does not: label j's F1 is 2·tp_j / (1 + tp_j + fp_j), so
 *   F1 = (1/n) Σ_{j found} 2 / (2 + fp_j) ≤ accuracy, equal only when no other sentence's
 *   nearest neighbour is a b_j that was found correctly (e.g. every prediction distinct).
 *   We compute accuracy, as the header says. Ours takes cosine = dot product of the normalised
 *   inputs; scores come from sgemm and every candidate within sgemm's rounding bound of the
 *   row's best is scored again in double, so ties (and near-ties) are decided exactly, to the
 *   lower index.
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <linear.h>

#include "gaprune/check.h"
#include "gaprune/rng.h"
#include "gaprune/taskmetrics.h"

/* ---- V-measure -------------------------------------------------------------------------------- */

typedef struct {
    int32_t t, p;
} pair32;

static int by_pair(const void *a, const void *b) {
    const pair32 *x = a, *y = b;
    if (x->t != y->t) return (x->t > y->t) - (x->t < y->t);
    return (x->p > y->p) - (x->p < y->p);
}

/* Entropy (nats) of the label counts c[0..n); 0 for a single non-empty label (scikit-learn). */
static double entropy_of(const int64_t *c, int64_t n, int64_t total, int64_t *nonempty) {
    int64_t ne = 0;
    for (int64_t i = 0; i < n; i++) ne += c[i] > 0;
    *nonempty = ne;
    if (ne <= 1) return 0.0;
    const double lt = log((double)total);
    double h = 0;
    for (int64_t i = 0; i < n; i++)
        if (c[i] > 0) h += ((double)c[i] / (double)total) * (log((double)c[i]) - lt);
    return -h;
}

double gp_v_measure(const int32_t *truth, const int32_t *pred, int64_t n) {
    if (n <= 0) return 1.0;
    int64_t *a = gp_calloc((size_t)n, sizeof(int64_t)), *b = gp_calloc((size_t)n, sizeof(int64_t));
    pair32 *pr = gp_malloc((size_t)n * sizeof(pair32));
    for (int64_t i = 0; i < n; i++) {
        GP_CHECK(truth[i] >= 0 && truth[i] < n && pred[i] >= 0 && pred[i] < n,
                 "label out of [0, %lld) at %lld: %d, %d", (long long)n, (long long)i, truth[i], pred[i]);
        a[truth[i]]++, b[pred[i]]++;
        pr[i] = (pair32){truth[i], pred[i]};
    }
    int64_t nc, nk;
    const double hc = entropy_of(a, n, n, &nc), hk = entropy_of(b, n, n, &nk);
    double mi = 0;
    if (nc > 1 && nk > 1) {
        /* the contingency table's non-zero cells, as runs of equal (class, cluster) pairs */
        qsort(pr, (size_t)n, sizeof(pair32), by_pair);
        const double ln = log((double)n);
        for (int64_t i = 0; i < n;) {
            int64_t j = i;
            while (j < n && pr[j].t == pr[i].t && pr[j].p == pr[i].p) j++;
            const double nij = (double)(j - i), p = nij / (double)n;
            const double outer = (double)a[pr[i].t] * (double)b[pr[i].p];
            double term = p * (log(nij) - ln) + p * (-log(outer) + ln + ln);
            if (fabs(term) < DBL_EPSILON) term = 0; /* as scikit-learn: rounding noise of empty terms */
            mi += term;
            i = j;
        }
        if (mi < 0) mi = 0;
    }
    free(a), free(b), free(pr);
    const double h = hc != 0 ? mi / hc : 1.0, c = hk != 0 ? mi / hk : 1.0;
    return h + c == 0 ? 0.0 : 2.0 * h * c / (h + c);
}

/* ---- average precision, reranking ------------------------------------------------------------- */

/* Indices in descending score, ties by ascending index (a total order; NaN compares as a tie). */
static int by_score_desc(const void *a, const void *b, void *key) {
    const double *s = key;
    const int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (s[i] > s[j]) return -1;
    if (s[i] < s[j]) return 1;
    return (i > j) - (i < j);
}

static int64_t *order_desc(const double *score, int64_t n) {
    int64_t *idx = gp_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, (size_t)n, sizeof(int64_t), by_score_desc, (void *)score);
    return idx;
}

/* AP over an order of descending score: one threshold per run of equal scores. */
static double ap_of_order(const double *score, const uint8_t *label, const int64_t *idx, int64_t n) {
    int64_t npos = 0;
    for (int64_t i = 0; i < n; i++) npos += label[i] != 0;
    if (npos == 0) return NAN;
    int64_t tp = 0, fp = 0;
    double ap = 0, prev_recall = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && score[idx[j]] == score[idx[i]]) {
            if (label[idx[j]]) tp++;
            else fp++;
            j++;
        }
        if (j == i) { /* a NaN score: its own threshold */
            if (label[idx[j]]) tp++;
            else fp++;
            j++;
        }
        const double recall = (double)tp / (double)npos, precision = (double)tp / (double)(tp + fp);
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j;
    }
    return ap;
}

double gp_average_precision(const double *score, const uint8_t *label, int64_t n) {
    int64_t *idx = order_desc(score, n);
    const double ap = ap_of_order(score, label, idx, n);
    free(idx);
    return ap;
}

void gp_rerank_query(const double *score, const uint8_t *relevant, int64_t n, double *ap, double *rr10) {
    int64_t *idx = order_desc(score, n);
    *ap = ap_of_order(score, relevant, idx, n);
    *rr10 = 0;
    for (int64_t r = 0; r < n && r < 10; r++)
        if (relevant[idx[r]]) {
            *rr10 = 1.0 / (double)(r + 1);
            break;
        }
    free(idx);
}

/* ---- summarization ---------------------------------------------------------------------------- */

static int by_value(const void *a, const void *b, void *key) {
    const double *v = key;
    const double x = v[*(const int64_t *)a], y = v[*(const int64_t *)b];
    return (x > y) - (x < y);
}

/* Ranks 1..n, ties sharing their average rank. */
static void average_ranks(const double *v, int64_t n, double *r) {
    int64_t *idx = gp_malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, (size_t)n, sizeof(int64_t), by_value, (void *)v);
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]]) j++;
        const double avg = (double)(i + j) / 2.0 + 1.0;
        for (int64_t t = i; t <= j; t++) r[idx[t]] = avg;
        i = j + 1;
    }
    free(idx);
}

static bool all_equal(const double *v, int64_t n) {
    for (int64_t i = 1; i < n; i++)
        if (v[i] != v[0]) return false;
    return true;
}

double gp_summary_spearman(const double *cos, int64_t m, int64_t h, const double *relevance) {
    if (m < 2 || h < 1) return NAN;
    double *best = gp_malloc((size_t)m * sizeof(double));
    for (int64_t i = 0; i < m; i++) {
        double b = cos[i * h];
        for (int64_t j = 1; j < h; j++)
            if (cos[i * h + j] > b) b = cos[i * h + j];
        best[i] = b;
    }
    double rho = NAN;
    if (!all_equal(best, m) && !all_equal(relevance, m)) {
        double *rx = gp_malloc((size_t)m * sizeof(double)), *ry = gp_malloc((size_t)m * sizeof(double));
        average_ranks(best, m, rx);
        average_ranks(relevance, m, ry);
        double mx = 0, my = 0;
        for (int64_t i = 0; i < m; i++) mx += rx[i], my += ry[i];
        mx /= (double)m, my /= (double)m;
        double sxy = 0, sxx = 0, syy = 0;
        for (int64_t i = 0; i < m; i++) {
            const double dx = rx[i] - mx, dy = ry[i] - my;
            sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
        }
        rho = sxy / sqrt(sxx * syy);
        free(rx), free(ry);
    }
    free(best);
    return rho;
}

/* ---- bitext mining ---------------------------------------------------------------------------- */

static double dot_exact(const float *x, const float *y, int d) {
    double s = 0; /* in index order: identical rows give identical sums */
    for (int k = 0; k < d; k++) s += (double)x[k] * (double)y[k];
    return s;
}

int64_t gp_bitext_nearest(const float *a, const float *b, int64_t n, int d, uint8_t *correct) {
    if (n <= 0) return 0;
    enum { ROWS = 64 };
    float *s = gp_malloc((size_t)ROWS * (size_t)n * sizeof(float));
    double bmax = 0;
    for (int64_t j = 0; j < n; j++) {
        const double nb = sqrt(dot_exact(b + j * d, b + j * d, d));
        if (nb > bmax) bmax = nb;
    }
    int64_t count = 0;
    for (int64_t i0 = 0; i0 < n; i0 += ROWS) {
        const int rows = (int)(n - i0 < ROWS ? n - i0 : ROWS);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)n, d, 1.0f, a + i0 * d, d, b, d, 0.0f, s,
                    (int)n);
        for (int r = 0; r < rows; r++) {
            const int64_t i = i0 + r;
            const float *row = s + (size_t)r * (size_t)n;
            float m = -INFINITY;
            for (int64_t j = 0; j < n; j++)
                if (row[j] > m) m = row[j];
            /* a float dot product of length d is within d·u·|x|·|y| of the exact one (u = 2^-24),
             * so the true nearest scores at least m − 2·d·u·|a_i|·max|b_j|; a little more slack */
            const double slack = (double)(d + 2) * FLT_EPSILON * sqrt(dot_exact(a + i * d, a + i * d, d)) * bmax;
            int64_t best = -1;
            double bestv = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                if (!((double)row[j] >= (double)m - slack)) continue;
                const double v = dot_exact(a + i * d, b + j * d, d);
                if (v > bestv) bestv = v, best = j;
            }
            correct[i] = best == i;
            count += correct[i];
        }
    }
    free(s);
    return count;
}

/* ---- classification --------------------------------------------------------------------------- */

double gp_macro_f1(const int32_t *truth, const int32_t *pred, int64_t n, int k) {
    if (n <= 0 || k <= 0) return NAN;
    int64_t *c = gp_calloc((size_t)k * 3, sizeof(int64_t)); /* tp, fp, fn per label */
    for (int64_t i = 0; i < n; i++) {
        GP_CHECK(truth[i] >= 0 && truth[i] < k && pred[i] >= 0 && pred[i] < k, "label out of [0, %d) at %lld", k,
                 (long long)i);
        if (truth[i] == pred[i]) c[3 * truth[i]]++;
        else c[3 * pred[i] + 1]++, c[3 * truth[i] + 2]++;
    }
    double sum = 0;
    int labels = 0;
    for (int l = 0; l < k; l++) {
        const int64_t tp = c[3 * l], fp = c[3 * l + 1], fn = c[3 * l + 2];
        if (tp + fp + fn == 0) continue;
        sum += 2.0 * (double)tp / (double)(2 * tp + fp + fn);
        labels++;
    }
    free(c);
    return sum / labels;
}

int64_t gp_logreg_subset(const int32_t *ytr, int64_t ntr, int k, int samples_per_label, uint64_t seed,
                         int experiment, int64_t *sel) {
    int64_t *perm = gp_malloc((size_t)(ntr > 0 ? ntr : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < ntr; i++) perm[i] = i;
    uint64_t s = gp_rng_seed(seed, (uint64_t)experiment);
    for (int64_t i = ntr - 1; i > 0; i--) {
        const int64_t j = (int64_t)gp_rng_below(&s, (uint64_t)i + 1);
        const int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    int *taken = gp_calloc((size_t)(k > 0 ? k : 1), sizeof(int));
    int64_t m = 0;
    for (int64_t t = 0; t < ntr; t++) {
        const int32_t y = ytr[perm[t]];
        GP_CHECK(y >= 0 && y < k, "training label %d of text %lld out of [0, %d)", y, (long long)perm[t], k);
        if (taken[y] < samples_per_label) taken[y]++, sel[m++] = perm[t];
    }
    free(taken);
    free(perm);
    return m;
}

static void liblinear_quiet(const char *s) { (void)s; }

static void liblinear_silence(void) { set_print_string_function(liblinear_quiet); }

/* x[0..d) as liblinear's nodes 1..d, then the bias node d+1 (value 1), then the end marker. */
static void fill_row(struct feature_node *nodes, const float *x, int d) {
    for (int j = 0; j < d; j++) nodes[j] = (struct feature_node){.index = j + 1, .value = (double)x[j]};
    nodes[d] = (struct feature_node){.index = d + 1, .value = 1.0};
    nodes[d + 1] = (struct feature_node){.index = -1, .value = 0.0};
}

gp_status gp_logreg_fit_predict(const float *xtr, const int32_t *ytr, const int64_t *sel, int64_t nsel,
                                const float *xte, int64_t nte, int d, int32_t *pred, gp_err *err) {
    if (nsel <= 0 || d <= 0)
        return gp_errf(err, GP_EINPUT, "logistic regression: %lld training texts of %d dimensions", (long long)nsel, d);
    if (nsel > 0x7fffffff || d >= 0x7ffffffe)
        return gp_errf(err, GP_EINPUT,
                       "logistic regression: %lld training texts of %d dimensions: more than liblinear takes",
                       (long long)nsel, d);
    const size_t w = (size_t)d + 2;
    struct feature_node *nodes = gp_malloc((size_t)nsel * w * sizeof(struct feature_node));
    struct feature_node **rows = gp_malloc((size_t)nsel * sizeof(struct feature_node *));
    double *y = gp_malloc((size_t)nsel * sizeof(double));
    for (int64_t i = 0; i < nsel; i++) {
        rows[i] = nodes + (size_t)i * w;
        fill_row(rows[i], xtr + (size_t)sel[i] * (size_t)d, d);
        y[i] = (double)ytr[sel[i]];
    }
    struct problem prob = {.l = (int)nsel, .n = d + 1, .y = y, .x = rows, .bias = 1.0};
    struct parameter param = {.solver_type = L2R_LR, .eps = GP_LOGREG_EPS, .C = 1.0, .nr_weight = 0,
                              .weight_label = NULL, .weight = NULL, .p = 0.1, .init_sol = NULL};
    gp_status st = GP_OK;
    const char *why = check_parameter(&prob, &param);
    if (why) {
        st = gp_errf(err, GP_EINPUT, "logistic regression: liblinear refuses the problem: %s", why);
    } else {
        static pthread_once_t once = PTHREAD_ONCE_INIT; /* liblinear's printer is one global */
        pthread_once(&once, liblinear_silence);
        struct model *model = train(&prob, &param);
        for (int64_t i = 0; i < nte; i++) { /* one row buffer for the test texts */
            fill_row(nodes, xte + (size_t)i * (size_t)d, d);
            pred[i] = (int32_t)predict(model, nodes);
        }
        free_and_destroy_model(&model);
    }
    free(nodes), free(rows), free(y);
    return st;
}

gp_status gp_logreg_experiments(const float *xtr, const int32_t *ytr, int64_t ntr, const float *xte, const int32_t *yte,
                                int64_t nte, int d, int k, int n_experiments, int samples_per_label, uint64_t seed,
                                double *accuracy, double *f1, double *correct, gp_err *err) {
    if (ntr <= 0 || nte <= 0 || d <= 0 || k <= 0 || n_experiments <= 0 || samples_per_label <= 0)
        return gp_errf(err, GP_EINPUT,
                       "classification: %lld training and %lld test texts, %d dimensions, %d labels, %d experiments, "
                       "%d samples per label: each must be positive",
                       (long long)ntr, (long long)nte, d, k, n_experiments, samples_per_label);
    for (int64_t i = 0; i < ntr; i++)
        if (ytr[i] < 0 || ytr[i] >= k)
            return gp_errf(err, GP_EINPUT, "classification: training label %d of text %lld is not in [0, %d)", ytr[i],
                           (long long)i, k);
    for (int64_t i = 0; i < nte; i++)
        if (yte[i] < 0 || yte[i] >= k)
            return gp_errf(err, GP_EINPUT, "classification: test label %d of text %lld is not in [0, %d)", yte[i],
                           (long long)i, k);
    /* every experiment's predictions, then the sums in experiment order: the same numbers for
     * any number of threads */
    int32_t *pred = gp_malloc((size_t)n_experiments * (size_t)nte * sizeof(int32_t));
    gp_status *sts = gp_calloc((size_t)n_experiments, sizeof(gp_status));
    gp_err *errs = gp_calloc((size_t)n_experiments, sizeof(gp_err));
#pragma omp parallel
    {
        int64_t *sel = gp_malloc((size_t)ntr * sizeof(int64_t));
#pragma omp for schedule(dynamic, 1)
        for (int e = 0; e < n_experiments; e++) {
            const int64_t m = gp_logreg_subset(ytr, ntr, k, samples_per_label, seed, e, sel);
            sts[e] = gp_logreg_fit_predict(xtr, ytr, sel, m, xte, nte, d, pred + (size_t)e * (size_t)nte, &errs[e]);
        }
        free(sel);
    }
    gp_status st = GP_OK;
    for (int e = 0; e < n_experiments && st == GP_OK; e++)
        if (sts[e] != GP_OK) st = gp_errf(err, sts[e], "%s", errs[e].msg);
    if (st == GP_OK) {
        int64_t *hits = gp_calloc((size_t)nte, sizeof(int64_t));
        int64_t total = 0;
        double f1sum = 0;
        for (int e = 0; e < n_experiments; e++) {
            const int32_t *pe = pred + (size_t)e * (size_t)nte;
            for (int64_t i = 0; i < nte; i++)
                if (pe[i] == yte[i]) hits[i]++, total++;
            f1sum += gp_macro_f1(yte, pe, nte, k);
        }
        *accuracy = (double)total / ((double)nte * n_experiments);
        *f1 = f1sum / n_experiments;
        if (correct)
            for (int64_t i = 0; i < nte; i++) correct[i] = (double)hits[i] / n_experiments;
        free(hits);
    }
    free(pred), free(sts), free(errs);
    return st;
}
