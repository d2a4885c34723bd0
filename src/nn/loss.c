/* loss.c — InfoNCE over cosine similarities (see loss.h). */
#include "gaprune/loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/check.h"
#include "gaprune/kernels.h"

float gp_infonce_forward(gp_infonce *s, const float *q, const float *d, int B, int M, int D, float scale) {
    GP_CHECK(B > 0 && M >= B && D > 0, "B=%d M=%d D=%d", B, M, D);
    if (B > s->cap_q || M > s->cap_d || D != s->D) {
        free(s->qn);
        free(s->dn);
        free(s->qnorm);
        free(s->dnorm);
        free(s->probs);
        s->qn = gp_malloc((size_t)B * D * sizeof(float));
        s->dn = gp_malloc((size_t)M * D * sizeof(float));
        s->qnorm = gp_malloc((size_t)B * sizeof(float));
        s->dnorm = gp_malloc((size_t)M * sizeof(float));
        s->probs = gp_malloc((size_t)B * M * sizeof(float));
        s->cap_q = B;
        s->cap_d = M;
    }
    s->B = B;
    s->M = M;
    s->D = D;
    s->scale = scale;
    gp_l2norm_forward(s->qn, s->qnorm, q, B, D);
    gp_l2norm_forward(s->dn, s->dnorm, d, M, D);
    /* S = scale · qn dn^T, then a stable log-softmax per row */
    gp_sgemm(0, 1, B, M, D, scale, s->qn, D, s->dn, D, 0.0f, s->probs, M);
    /* rows in parallel (a retraining batch has B·M exp), each row's loss kept apart so that the
     * sum over rows runs in row order whatever the thread count */
    double *row = gp_malloc((size_t)B * sizeof(double));
#pragma omp parallel for if ((int64_t)B * M >= gp_par_min() / 2) schedule(static)
    for (int i = 0; i < B; i++) {
        float *p = s->probs + (size_t)i * M;
        float mx = p[0];
        for (int k = 1; k < M; k++) mx = p[k] > mx ? p[k] : mx;
        double z = 0.0;
        for (int k = 0; k < M; k++) z += exp((double)p[k] - mx);
        row[i] = (double)mx + log(z) - p[i];
        for (int k = 0; k < M; k++) p[k] = (float)(exp((double)p[k] - mx) / z);
    }
    double loss = 0.0;
    for (int i = 0; i < B; i++) loss += row[i];
    free(row);
    s->loss = loss / B;
    return (float)s->loss;
}

void gp_infonce_backward(gp_infonce *s, float *dq, float *dd) {
    const int B = s->B, M = s->M, D = s->D;
    /* dS = (softmax − onehot) / B, then through S = scale qn dn^T and the normalisations */
    float *dS = gp_malloc((size_t)B * M * sizeof(float));
#pragma omp parallel for if ((int64_t)B * M >= gp_par_min()) schedule(static)
    for (int i = 0; i < B; i++)
        for (int k = 0; k < M; k++) dS[(size_t)i * M + k] = (s->probs[(size_t)i * M + k] - (k == i)) / (float)B;
    float *dqn = gp_calloc((size_t)B * D, sizeof(float));
    float *ddn = gp_calloc((size_t)M * D, sizeof(float));
    gp_sgemm(0, 0, B, D, M, s->scale, dS, M, s->dn, D, 0.0f, dqn, D);
    gp_sgemm(1, 0, M, D, B, s->scale, dS, M, s->qn, D, 0.0f, ddn, D);
    gp_l2norm_backward(dq, dqn, s->qn, s->qnorm, B, D);
    gp_l2norm_backward(dd, ddn, s->dn, s->dnorm, M, D);
    free(dS);
    free(dqn);
    free(ddn);
}

void gp_infonce_free(gp_infonce *s) {
    free(s->qn);
    free(s->dn);
    free(s->qnorm);
    free(s->dnorm);
    free(s->probs);
    memset(s, 0, sizeof *s);
}
