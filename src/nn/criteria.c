/* criteria.c — the pruning criteria of prune.h, each scoring one weight matrix. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/prune.h"
#include "gaprune/rng.h"

/* Per-element alignment: the tensor's cosine, or the authors' smoothed element-wise product
 * (of the whole tensor, or of a slice given the whole tensor's sums). */
static float *alignment(const gp_score_in *in) {
    size_t n = (size_t)(in->rows * in->cols);
    float *s = gp_malloc(n * sizeof(float));
    if (in->refcode_alignment && in->tensor_rows == 0) {
        gp_alignment_refcode(in->grad_dom, in->grad_gen, in->rows, in->cols, s);
    } else if (in->refcode_alignment) {
        gp_alignment_refcode_rows(in->grad_dom, in->grad_gen, in->row0, in->rows, in->tensor_rows, in->cols,
                                  in->grad_sq_dom, in->grad_sq_gen, s);
    } else {
        for (size_t k = 0; k < n; k++) s[k] = (float)in->cosine;
    }
    return s;
}

static void score_gaprune(const gp_score_in *in, float *out) {
    size_t n = (size_t)(in->rows * in->cols);
    float *s = alignment(in);
    for (size_t k = 0; k < n; k++) {
        double a = fabs((double)in->w[k]);
        double fisher = ((double)in->fisher_dom[k] - in->beta * in->fisher_gen[k]) * a;
        out[k] = (float)((fisher + in->gamma * sqrt(a)) * (1.0 + in->alpha * s[k]));
    }
    free(s);
}

static double softplus(double x) { return x > 30 ? x : log1p(exp(x)); }

static void score_gaprune_ref(const gp_score_in *in, float *out) {
    size_t n = (size_t)(in->rows * in->cols);
    float *s = alignment(in);
    for (size_t k = 0; k < n; k++) {
        double a = fabs((double)in->w[k]);
        double f = 1.0 + in->alpha * s[k];
        f = f < 0.8 ? 0.8 : f > 1.2 ? 1.2 : f;
        double ib = ((double)in->fisher_dom[k] - in->beta * in->fisher_gen[k]) * a;
        out[k] = (float)softplus(ib * f + in->gamma * sqrt(a + 1e-8));
    }
    free(s);
}

/* DAI with each term divided by its mean magnitude over the selected weights (fisher_scale and
 * magnitude_scale are the inverses): γ then weighs terms of one scale. */
static void score_gaprune_scaled(const gp_score_in *in, float *out) {
    size_t n = (size_t)(in->rows * in->cols);
    float *s = alignment(in);
    for (size_t k = 0; k < n; k++) {
        double a = fabs((double)in->w[k]);
        double fisher = ((double)in->fisher_dom[k] - in->beta * in->fisher_gen[k]) * a * in->fisher_scale;
        out[k] = (float)((fisher + in->gamma * sqrt(a) * in->magnitude_scale) * (1.0 + in->alpha * s[k]));
    }
    free(s);
}

static void score_magnitude(const gp_score_in *in, float *out) {
    size_t n = (size_t)(in->rows * in->cols);
    for (size_t k = 0; k < n; k++) out[k] = fabsf(in->w[k]);
}

/* gaprune-neurons' element score: √|θ|, the magnitude term of DAI without γ; a neuron's sum of
 * it is combined with its gate Fisher and alignment by the scoring (score.c, structural_dai). */
static void score_sqrt_magnitude(const gp_score_in *in, float *out) {
    size_t n = (size_t)(in->rows * in->cols);
    for (size_t k = 0; k < n; k++) out[k] = (float)sqrt(fabs((double)in->w[k]));
}

static void score_fisher_domain(const gp_score_in *in, float *out) {
    memcpy(out, in->fisher_dom, (size_t)(in->rows * in->cols) * sizeof(float));
}

static void score_fisher_general(const gp_score_in *in, float *out) {
    memcpy(out, in->fisher_gen, (size_t)(in->rows * in->cols) * sizeof(float));
}

/* ½ F θ², in double: a squared small weight times a small Fisher stays well inside float's range
 * once rounded, not before. */
static void obd(const float *fisher, const float *w, size_t n, float *out) {
    for (size_t k = 0; k < n; k++) out[k] = (float)(0.5 * (double)fisher[k] * (double)w[k] * (double)w[k]);
}

static void score_fisher_domain_obd(const gp_score_in *in, float *out) {
    obd(in->fisher_dom, in->w, (size_t)(in->rows * in->cols), out);
}

static void score_fisher_general_obd(const gp_score_in *in, float *out) {
    obd(in->fisher_gen, in->w, (size_t)(in->rows * in->cols), out);
}

/* Element k of a slice is element row0·cols + k of its tensor: the draw is the tensor's. */
static void score_random(const gp_score_in *in, float *out) {
    size_t n = (size_t)(in->rows * in->cols), at = (size_t)(in->row0 * in->cols);
    uint64_t base = gp_rng_seed(in->seed, (uint64_t)in->index);
    for (size_t k = 0; k < n; k++) out[k] = (float)gp_rng_unit(gp_rng_mix(base ^ ((at + k) * GP_RNG_GOLDEN)));
}

static void score_wanda(const gp_score_in *in, float *out) {
    for (int64_t i = 0; i < in->rows; i++)
        for (int64_t j = 0; j < in->cols; j++)
            out[i * in->cols + j] = fabsf(in->w[i * in->cols + j]) * sqrtf(in->act[j]);
}

static const gp_criterion k_criteria[] = {
    {"gaprune", GP_NEED_FISHER, false, score_gaprune,
     "DAI of the paper: [(F_dom - beta F_gen)|w| + gamma sqrt|w|] (1 + alpha s)", true},
    {"gaprune-ref", GP_NEED_FISHER, false, score_gaprune_ref,
     "the authors' code: softplus((F_dom - beta F_gen)|w| clamp(1 + alpha s, 0.8, 1.2) + gamma sqrt(|w| + 1e-8))", true},
    {"magnitude", 0, false, score_magnitude, "|w|", false},
    {"fisher-domain", GP_NEED_FISHER, false, score_fisher_domain,
     "F_dom (the Fisher alone: not the usual saliency, see -obd)", false},
    {"fisher-general", GP_NEED_FISHER, false, score_fisher_general, "F_gen (the Fisher alone)", false},
    {"fisher-domain-obd", GP_NEED_FISHER, false, score_fisher_domain_obd,
     "F_dom w^2 / 2: the Optimal Brain Damage saliency (loss increase of removing w) with the domain Fisher", false},
    {"fisher-general-obd", GP_NEED_FISHER, false, score_fisher_general_obd, "F_gen w^2 / 2, with the general Fisher", false},
    {"gaprune-scaled", GP_NEED_FISHER | GP_NEED_SCALES, false, score_gaprune_scaled,
     "DAI with both terms on one scale: [(F_dom - beta F_gen)|w| / M_F + gamma sqrt|w| / M_m] (1 + alpha s), M = the "
     "term's mean magnitude over the selected weights", true},
    {"random", 0, false, score_random, "uniform random, from (seed, tensor, element)", false},
    {"wanda", GP_NEED_ACT, true, score_wanda, "|w_ij| ||x_j||, compared within each output row", false},
    {"sparsegpt", GP_NEED_OBS, false, NULL,
     "SparseGPT: OBS saliency w^2/[H^-1]_jj^2 on the layer's calibration inputs, chosen per column block of "
     "prune.block while the reconstruction sweeps (scopes layer, row, n:m; global means layer)", false},
    {"gaprune-neurons", GP_NEED_NEURONS, false, score_sqrt_magnitude,
     "structured DAI of a whole MLP neuron (scopes neurons, neurons-global): [(Phi_dom - beta Phi_gen) + gamma mean sqrt|w|] (1 + alpha "
     "s_j), Phi = Fisher of a gate on the neuron, s_j = cosine of G_gen and G_dom over its weights", true},
};

const gp_criterion *gp_criterion_find(const char *name) {
    for (size_t i = 0; i < sizeof k_criteria / sizeof k_criteria[0]; i++)
        if (strcmp(k_criteria[i].name, name) == 0) return &k_criteria[i];
    return NULL;
}

const gp_criterion *const *gp_criteria(void) {
    static const gp_criterion *list[sizeof k_criteria / sizeof k_criteria[0] + 1];
    for (size_t i = 0; i < sizeof k_criteria / sizeof k_criteria[0]; i++) list[i] = &k_criteria[i];
    return list;
}

void gp_criteria_names(char *buf, size_t n) {
    size_t at = 0;
    buf[0] = '\0';
    for (const gp_criterion *const *c = gp_criteria(); *c && at < n; c++)
        at += (size_t)snprintf(buf + at, n - at, "%s%s", c == gp_criteria() ? "" : "|", (*c)->name);
}

void gp_alignment_sq_sums(const float *gd, const float *gg, int64_t n, double *sq_dom, double *sq_gen) {
    double nd = *sq_dom, ng = *sq_gen;
    for (int64_t k = 0; k < n; k++) nd += (double)gd[k] * gd[k], ng += (double)gg[k] * gg[k];
    *sq_dom = nd, *sq_gen = ng;
}

void gp_alignment_refcode(const float *gd, const float *gg, int64_t rows, int64_t cols, float *out) {
    double nd = 0, ng = 0;
    gp_alignment_sq_sums(gd, gg, rows * cols, &nd, &ng);
    gp_alignment_refcode_rows(gd, gg, 0, rows, rows, cols, nd, ng, out);
}

void gp_alignment_refcode_rows(const float *gd, const float *gg, int64_t row0, int64_t rows, int64_t tensor_rows,
                               int64_t cols, double nd, double ng, float *out) {
    const int64_t R = tensor_rows, end = row0 + rows;
    double inv = 1.0 / ((sqrt(ng) + 1e-8) * (sqrt(nd) + 1e-8));
    /* h = 3-wide horizontal sums of e for tensor rows row0 - 1 .. end (those that exist), a ring
     * of three rows by tensor row; then output row i is the 3-tall sum of h; the box is
     * zero-padded at the tensor's edges, not the slice's. gd and gg are indexed from row0. */
    double *h = gp_malloc((size_t)(3 * cols) * sizeof(double));
    for (int64_t i = row0 - 2; i < end; i++) {
        int64_t r = i + 1;
        if (r >= 0 && r < R) { /* horizontal sums of row r into slot r % 3 */
            const float *d = gd + (r - row0) * cols, *g = gg + (r - row0) * cols;
            double *hr = h + (r % 3) * cols;
            for (int64_t j = 0; j < cols; j++) {
                double s = 0;
                for (int64_t dj = -1; dj <= 1; dj++)
                    if (j + dj >= 0 && j + dj < cols) s += (double)g[j + dj] * d[j + dj];
                hr[j] = s * inv;
            }
        }
        if (i < row0) continue;
        for (int64_t j = 0; j < cols; j++) {
            double s = 0;
            for (int64_t di = -1; di <= 1; di++)
                if (i + di >= 0 && i + di < R) s += h[((i + di) % 3) * cols + j];
            out[(i - row0) * cols + j] = (float)(s / 9.0);
        }
    }
    free(h);
}

void gp_dai_terms(const gp_score_in *in, double *fisher_term, double *magnitude_term) {
    size_t n = (size_t)(in->rows * in->cols);
    const bool scaled = in->fisher_scale > 0 || in->magnitude_scale > 0;
    const double fs = scaled ? in->fisher_scale : 1.0, ms = scaled ? in->magnitude_scale : 1.0;
    double f = *fisher_term, g = *magnitude_term;
    for (size_t k = 0; k < n; k++) {
        double a = fabs((double)in->w[k]);
        f += fabs(((double)in->fisher_dom[k] - in->beta * in->fisher_gen[k]) * a) * fs;
        g += in->gamma * sqrt(a) * ms;
    }
    *fisher_term = f;
    *magnitude_term = g;
}

int64_t gp_fisher_negative(const gp_score_in *in) {
    const size_t n = (size_t)(in->rows * in->cols);
    int64_t neg = 0;
    for (size_t k = 0; k < n; k++) neg += (double)in->fisher_dom[k] - in->beta * in->fisher_gen[k] < 0;
    return neg;
}

gp_status gp_scope_parse(const char *s, gp_scope *out, gp_err *err) {
    memset(out, 0, sizeof *out);
    if (!strcmp(s, "global")) out->kind = GP_SCOPE_GLOBAL;
    else if (!strcmp(s, "layer")) out->kind = GP_SCOPE_LAYER;
    else if (!strcmp(s, "row")) out->kind = GP_SCOPE_ROW;
    else if (!strcmp(s, "neurons")) out->kind = GP_SCOPE_NEURONS;
    else if (!strcmp(s, "neurons-global")) out->kind = GP_SCOPE_NEURONS_GLOBAL;
    else if (!strcmp(s, "heads")) out->kind = GP_SCOPE_HEADS;
    else {
        char tail;
        if (sscanf(s, "%d:%d%c", &out->n, &out->m, &tail) != 2 || out->n < 0 || out->m <= out->n || out->m > 64)
            return gp_errf(err, GP_EINPUT, "scope \"%s\" is not global, layer, row, neurons, neurons-global, heads or n:m (0 <= n < m <= 64)", s);
        out->kind = GP_SCOPE_NM;
    }
    return GP_OK;
}

const char *gp_scope_name(const gp_scope *s, char *buf, int len) {
    switch (s->kind) {
    case GP_SCOPE_GLOBAL: return "global";
    case GP_SCOPE_LAYER: return "layer";
    case GP_SCOPE_ROW: return "row";
    case GP_SCOPE_NEURONS: return "neurons";
    case GP_SCOPE_NEURONS_GLOBAL: return "neurons-global";
    case GP_SCOPE_HEADS: return "heads";
    default: snprintf(buf, (size_t)len, "%d:%d", s->n, s->m); return buf;
    }
}
