/*
 * loss.h — the contrastive InfoNCE loss of GAPrune (docs/DESIGN.md §5.1).
 *
 * For B queries and M >= B candidate documents, where document i < B is the positive of query
 * i and the rest are hard negatives:
 *     S_ik = scale · cos(q_i, d_k),   L = (1/B) Σ_i [ logsumexp_k S_ik − S_ii ]
 * with scale 20 (τ = 0.05). Cosines use L2-normalised copies of the inputs (eps 1e-12, as
 * torch.nn.functional.normalize), so the loss is right whether or not the model normalises.
 *
 * Usage:
 *     gp_infonce L = {0};
 *     float loss = gp_infonce_forward(&L, q, d, B, M, D, 20.0f);
 *     gp_infonce_backward(&L, dq, dd);     // adds d loss / dq [B, D] and / dd [M, D]
 *     gp_infonce_free(&L);
 */
#pragma once

typedef struct {
    int B, M, D, cap_q, cap_d;
    float scale;
    float *qn, *dn;       /* normalized inputs [B, D], [M, D] */
    float *qnorm, *dnorm; /* [B], [M] */
    float *probs;         /* softmax rows [B, M] */
    double loss;
} gp_infonce;

float gp_infonce_forward(gp_infonce *s, const float *q, const float *d, int B, int M, int D, float scale);
void gp_infonce_backward(gp_infonce *s, float *dq, float *dd);
void gp_infonce_free(gp_infonce *s);
