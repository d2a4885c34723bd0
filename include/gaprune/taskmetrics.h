/*
 * taskmetrics.h — the main scores of MTEB's task types beyond retrieval and STS, computed as
 * MTEB computes them, on embeddings already made (eval.h makes them; tasks.h reads the sets):
 *
 *   classification       logistic regression on the embeddings, trained on n_experiments
 *                        undersampled training sets (at most samples_per_label texts of each
 *                        label, drawn with the seed), scored on the whole test set: accuracy
 *                        (main) and macro F1, averaged over the experiments
 *   clustering           V-measure of a clustering against the labels (k-means: kmeans.h)
 *   pair classification  average precision of the cosine similarities against the 0/1 labels
 *                        (scikit-learn's average_precision_score: every distinct score a threshold)
 *   reranking            per query, average precision and reciprocal rank within the top 10 of the
 *                        candidates ranked by cosine; the set's are their means (MAP main, MRR@10)
 *   summarization        per text, the Spearman correlation of each machine summary's best cosine
 *                        to the human summaries with its relevance scores; the mean over texts
 *   bitext mining        the fraction of first sentences whose nearest second sentence by cosine is
 *                        their own pair
 *
 * Every function is deterministic: ties break to the lower index. The numpy reference of all of
 * them is tests/reference/taskmetrics_ref.py.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"

/* V-measure (β = 1) of predicted cluster ids against true labels, both ids in [0, n). */
double gp_v_measure(const int32_t *truth, const int32_t *pred, int64_t n);

/* Average precision of scores against 0/1 labels (scikit-learn's average_precision_score: the
 * sum over distinct thresholds, highest first, of (recall_k − recall_{k−1}) · precision_k). NaN
 * without a positive label. */
double gp_average_precision(const double *score, const uint8_t *label, int64_t n);

/* One reranking query: candidates' scores and 0/1 relevance; *ap its average precision (as
 * gp_average_precision), *rr10 1 / rank of the first relevant candidate if within the top 10 of
 * the ranking by score (ties: the lower index first), else 0. */
void gp_rerank_query(const double *score, const uint8_t *relevant, int64_t n, double *ap, double *rr10);

/* One summarization text: cos[m · h] the cosines of its m machine summaries (rows) with its h human
 * summaries; the Spearman correlation of each machine summary's largest cosine with relevance[m]
 * (average ranks for ties). NaN when either side is constant (MTEB skips such a text). */
double gp_summary_spearman(const double *cos, int64_t m, int64_t h, const double *relevance);

/* Bitext mining on L2-normalised embeddings a[n, d], b[n, d] (a_i's translation is b_i): correct[i]
 * = 1 when b_i is a_i's nearest b by cosine (ties: the lower index); returns the count. */
int64_t gp_bitext_nearest(const float *a, const float *b, int64_t n, int d, uint8_t *correct);

/* Macro F1 of predictions against truth, both labels in [0, k) (scikit-learn's f1_score with
 * average="macro"): the mean over the labels that occur in truth or pred of 2·tp / (2·tp + fp + fn).
 * NaN when n = 0. */
double gp_macro_f1(const int32_t *truth, const int32_t *pred, int64_t n, int k);

/* The stopping tolerance gp_logreg_fit_predict gives liblinear's L2R_LR solver (its README: stop
 * when |f'(w)|_2 <= eps · max(min(pos, neg), 1) / l · |f'(0)|_2; liblinear's own default is 0.01,
 * whose weights can be ~1e-2 off the optimum on 8-per-label sets). */
#define GP_LOGREG_EPS 1e-6

/* The training subset of experiment `experiment` of gp_logreg_experiments: a Fisher–Yates shuffle
 * of 0 .. ntr-1 drawn from gp_rng_seed(seed, experiment), then, in that order, every index whose
 * label (ytr, in [0, k)) has been taken fewer than samples_per_label times. Writes the indices to
 * sel (room for ntr) in that order and returns their count. */
int64_t gp_logreg_subset(const int32_t *ytr, int64_t ntr, int k, int samples_per_label, uint64_t seed,
                         int experiment, int64_t *sel);

/* One logistic regression of gp_logreg_experiments: liblinear's L2R_LR (C = 1, a bias feature of
 * value 1 that is regularised like the weights, eps GP_LOGREG_EPS; one-vs-rest for more than two
 * labels) trained on the rows sel[nsel] of xtr[., d] with labels ytr, predicting pred[nte] for
 * xte[nte, d]. GP_EINPUT when liblinear refuses the problem or nsel = 0. */
gp_status gp_logreg_fit_predict(const float *xtr, const int32_t *ytr, const int64_t *sel, int64_t nsel,
                                const float *xte, int64_t nte, int d, int32_t *pred, gp_err *err);

/* Classification: embeddings xtr[ntr, d] with labels ytr in [0, k), xte[nte, d] with yte. Each of
 * n_experiments draws a training subset of at most samples_per_label texts per label (a seeded
 * shuffle of the training texts, then the first ones of each label in that order), trains an
 * L2-regularised logistic regression (C = 1, liblinear), and predicts the test set. *accuracy and
 * *f1 (macro) are the means over experiments; correct[nte] (may be NULL) gets each test text's
 * fraction of experiments that classified it correctly, whose mean is *accuracy. The experiments
 * run on the OpenMP threads, the results the same for every thread count. GP_EINPUT for a label
 * out of [0, k), a size that is not positive, or a problem liblinear refuses. */
gp_status gp_logreg_experiments(const float *xtr, const int32_t *ytr, int64_t ntr, const float *xte, const int32_t *yte,
                                int64_t nte, int d, int k, int n_experiments, int samples_per_label, uint64_t seed,
                                double *accuracy, double *f1, double *correct, gp_err *err);
