/* plan.c — memory per rank of a job's stages from shapes alone (see plan.h). Each formula
 * mirrors an allocation of the code it names; when that code changes its buffers, this file
 * changes with it (tests/test_plan.c compares the prediction with a measured peak). */
#include "gaprune/plan.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/score.h"

/* bert.c bert_alloc (train: every layer kept) and bert_backward's scratch, in floats. */
static double bert_floats(const gp_model_config *c, double N, double att) {
    const double C = c->hidden, I = c->intermediate;
    const double fwd = N * (2 * C + 2) + c->layers * (N * (8 * C + 2 * I + 4) + att);
    const double bwd = N * (7 * C + 2 * I);
    return fwd + bwd;
}

/* qwen3.c qwen3_alloc (train) and qwen3_backward's scratch, in floats. */
static double qwen3_floats(const gp_model_config *c, double N, double att) {
    const double C = c->hidden, F = c->intermediate, NH = c->heads, NKV = c->kv_heads, hs = c->head_dim;
    const double Q = NH * hs, KV = NKV * hs, QK = Q + KV, QKV = Q + 2 * KV;
    const double per_layer = N * (C + 1 + QKV + QK + NH + NKV + Q + C + C + 1 + 2 * F + F + C) + att;
    const double fwd = N * (C + hs + C + 1) + c->layers * per_layer;
    const double bwd = N * (3 * C + Q + QKV + QK + F + 2 * F);
    return fwd + bwd;
}

double gp_plan_unit_activations(const gp_model_config *c, int Bi, int Ti, int threads) {
    const double B = Bi, T = Ti, N = B * T, C = c->hidden;
    /* every sequence full: gp_attention_cache_size = heads · Σ len² */
    const double att = (double)c->heads * B * T * T;
    double fl = c->arch == GP_ARCH_QWEN3 ? qwen3_floats(c, N, att) : bert_floats(c, N, att);
    fl += (threads > 1 ? threads : 1) * T * T; /* gp_attention_backward's dP, one per thread */
    double bytes = 4 * fl;
    /* model.c: pooled, emb, dpooled [B, C], norm [B]; packed ids, pos, touched [N] int32;
     * offsets [B+1]; dhidden [N, C] */
    bytes += 4 * (3 * B * C + B) + 4 * 3 * N + 4 * (B + 1) + 4 * N * C;
    /* the padded batch (ids int32 + mask byte) and the tokenizer's per-text id arrays */
    bytes += 5 * N + 4 * N;
    /* stats.c run_unit: emb and demb [B, C]; InfoNCE (loss.c) of b = B/3 queries against 2b
     * documents: normalized copies and their gradients (6·b·C) and two [b, 2b] matrices */
    const double b = B / 3;
    bytes += 4 * (2 * B * C) + 4 * (6 * b * C + 4 * b * b);
    return bytes;
}

static void add(gp_plan_stats_out *o, const char *name, double bytes, const char *formula) {
    if (o->nparts >= GP_PLAN_MAX_PARTS) return;
    o->part[o->nparts++] = (gp_plan_part){name, bytes, formula};
    o->total += bytes;
}

void gp_plan_stats(const gp_plan_model *pm, const gp_stats_opts *so, int ranks, int threads, double share,
                   gp_plan_stats_out *out) {
    memset(out, 0, sizeof *out);
    const gp_model_config *c = pm->cfg;
    const gp_param_table *t = pm->table;
    const int P = ranks > 0 ? ranks : 1;
    out->ranks = P;
    out->threads = threads > 0 ? threads : 1;
    /* gp_stats_layout (gp_prune_selects) reads only the config and the table: a model without weights answers */
    gp_model shape = {0};
    shape.cfg = *c;
    shape.table = *t;
    int64_t *sel_off = malloc((size_t)(t->n ? t->n : 1) * sizeof *sel_off);
    const int64_t n = gp_stats_layout(&shape, so->layers, sel_off);
    int64_t nact = 0;
    for (int i = 0; i < t->n; i++) /* every 2-D block weight is a linear layer whose input sums stats.c keeps (Σ in) */
        if (t->p[i].ndim == 2 && gp_model_param_kind(&shape, i, NULL) != GP_PARAM_OTHER) nact += t->p[i].shape[1];
    out->params = (int64_t)t->total;
    out->selected = n;
    out->sharded = gp_stats_shard(so->accumulators, P, n, share);
    out->block = n;
    if (out->sharded) {
        int64_t *bounds = calloc((size_t)P + 1, sizeof *bounds);
        gp_stats_blocks(t, sel_off, n, P, bounds);
        out->block = 0;
        for (int k = 0; k < P; k++) out->block = bounds[k + 1] - bounds[k] > out->block ? bounds[k + 1] - bounds[k] : out->block;
        free(bounds);
    }
    free(sel_off);

    const int model_max = pm->max_length > 0 ? pm->max_length : c->max_positions;
    out->seq_len = so->max_length < model_max ? so->max_length : model_max;
    out->texts = 3 * (so->fisher_batch > 0 ? so->fisher_batch : 1);

    /* stats.c: one transformer block's selected gradients per window (gp_model_need_grads),
     * 1 window replicated, 2 sharded (one block in flight while the next is computed) */
    const int W = out->sharded ? 2 : 1;
    const double win = c->layers > 0 ? (double)n / c->layers : (double)n;
    add(out, "weights", 4.0 * (double)t->total, "4*P (float32 parameters)");
    add(out, "gradients", 4.0 * W * win, out->sharded ? "4*2*n/L (two blocks' selected gradients)"
                                                      : "4*n/L (one block's selected gradients)");
    add(out, "accumulators", 16.0 * (double)out->block,
        out->sharded ? "16*max block (F, G of 2 corpora, this rank's block)" : "16*n (F, G of 2 corpora)");
    if (out->sharded) add(out, "squared gradients", 4.0 * W * win, "4*2*n/L (g^2 of the blocks being sent)");
    add(out, "activation sums", 8.0 * (double)nact, "8*sum of linear inputs (Wanda)");
    add(out, "unit activations", gp_plan_unit_activations(c, out->texts, out->seq_len, out->threads),
        "3*fisher_batch texts x T tokens, kept for backward");
    add(out, "tokenizer", 2.0 * pm->tokenizer_bytes, "2 x tokenizer files (approximate)");
    add(out, "runtime", GP_PLAN_RUNTIME_BYTES + (P > 1 ? GP_PLAN_RUNTIME_MPI_BYTES : 0),
        P > 1 ? "MPI (shared memory), HDF5, OpenBLAS (measured constant)" : "MPI, HDF5, OpenBLAS (measured constant)");
}

bool gp_plan_parse_size(const char *s, double *bytes) {
    if (!s || !*s) return false;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || v < 0) return false;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mul = 1024.0; end++; break;
    case 'M': mul = 1048576.0; end++; break;
    case 'G': mul = 1073741824.0; end++; break;
    case 'T': mul = 1099511627776.0; end++; break;
    default: break;
    }
    if (mul > 1 && toupper((unsigned char)*end) == 'B') end++; /* "24GB" too */
    else if (mul > 1 && *end == 'i' && end[1] == 'B') end += 2; /* "24GiB" */
    if (*end) return false;
    *bytes = v * mul;
    return true;
}
