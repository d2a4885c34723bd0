/* reconstruct.c — one-shot reconstruction of the pruned layers, block by block over the ranks
 * (see reconstruct.h; docs/DESIGN.md §4.10, §5.9). */
#include "gaprune/reconstruct.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/checkpoint.h"
#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/log.h"
#include "gaprune/prune.h"
#include "gaprune/stop.h"
#include "gaprune/testhook.h"
#include "gaprune/tokenizer.h"
#include "gaprune/triplets.h"

/* a size for gp_malloc: at least 1 */
static size_t nz(int64_t k) { return k > 0 ? (size_t)k : 1; }

#define NGROUPS 4 /* attention projections, attention output, up/gate, down (model.h linear_groups) */

void gp_recon_opts_from_job(gp_recon_opts *o, const gp_job *job, const gp_sample_report *samples) {
    const bool sampled = samples && samples->jsonl[0] && samples->jsonl[1];
    *o = (gp_recon_opts){.corpus = {sampled ? samples->jsonl[0] : job->data.domain, sampled ? samples->jsonl[1] : job->data.general},
                         .sampled = sampled,
                         .samples = job->prune.reconstruct_samples,
                         .seed = job->data.seed,
                         .skip_bad = job->data.on_bad_record == GP_BAD_SKIP,
                         .max_length = job->model.max_length,
                         .batch = job->eval.batch,
                         .dampening = job->prune.dampening,
                         .general_weight = job->prune.reconstruct_general,
                         .block = job->prune.block,
                         .order = job->prune.reconstruct_order};
}

void gp_recon_report_free(gp_recon_report *rep) {
    free(rep->err_before), free(rep->err_after);
    memset(rep, 0, sizeof *rep);
}

/* One batch of calibration texts on this rank: packed tokens and the hidden state that is the
 * input of the block being solved. */
typedef struct {
    gp_seqs *seqs;
    int corpus, N;
    float *x;
} cal_batch;

typedef struct {
    const gp_recon_opts *o;
    gp_model *m;
    gp_mask *mask;
    const gp_recon_mask *how;
    int P, rank;
    cal_batch *b;
    int nb;
    double weight[2];  /* 1 / N_dom and λ / N_gen */
    float *y;          /* [largest batch's tokens, C]: a block's output */
    /* the group being accumulated: its first selected weight's table index, H and the batch product */
    int group_param;
    int64_t n;
    double *H;
    float *scratch;
    double w_now; /* the batch's corpus weight */
    gp_recon_report *rep;
    int *block_of; /* [mask->n] the transformer block of each mask item */
} recon_ctx;

/* The mask items of block l, in mask order, into items (room for mask->n); returns their count. */
static int block_items(const recon_ctx *c, int l, int *items) {
    int n = 0;
    for (int i = 0; i < c->mask->n; i++)
        if (c->block_of[i] == l) items[n++] = i;
    return n;
}

/* Elements of the largest block's mask items: what one block's copy of them needs. */
static size_t largest_block(const recon_ctx *c) {
    size_t most = 1;
    int *items = gp_malloc((size_t)(c->mask->n ? c->mask->n : 1) * sizeof(int));
    for (int l = 0; l < c->m->cfg.layers; l++) {
        size_t k = 0;
        for (int j = 0, ni = block_items(c, l, items); j < ni; j++) k += (size_t)c->mask->numel[items[j]];
        most = k > most ? k : most;
    }
    free(items);
    return most;
}

/* Swaps the values of the mask items items[0..ni) with buf, their values one tensor after the
 * other: twice puts everything back. Parallel order keeps a block's dense values in buf and swaps
 * them in for the forwards that must see the dense block; a resume swaps a checkpoint's in. */
static void exchange(gp_model *m, const gp_mask *mask, const int *items, int ni, float *buf) {
    for (int k = 0; k < ni; k++) {
        float *w = gp_model_param(m, mask->param[items[k]]);
        for (int64_t e = 0; e < mask->numel[items[k]]; e++) {
            const float t = w[e];
            w[e] = buf[e], buf[e] = t;
        }
        buf += mask->numel[items[k]];
    }
}

/* Calibration texts of both corpora in batches; this rank's batches tokenized, packed and embedded. */
static gp_status load_batches(recon_ctx *c, gp_err *err) {
    const gp_recon_opts *o = c->o;
    gp_corpus corp[2];
    memset(corp, 0, sizeof corp);
    gp_status rc = GP_OK;
    for (int k = 0; k < 2 && !rc; k++) {
        if (!o->corpus[k] || !*o->corpus[k]) {
            rc = gp_errf(err, GP_EINPUT, "[data] %s names no triplet file: the reconstruction reads both corpora",
                         k ? "general" : "domain");
            break;
        }
        if (c->rank == 0) rc = gp_corpus_index(o->corpus[k], o->sampled ? INT64_MAX : o->samples, (uint64_t)o->seed,
                                               o->skip_bad, &corp[k], err);
    }
    if ((rc = gp_agree(rc, err))) {
        for (int k = 0; k < 2; k++) gp_corpus_free(&corp[k]);
        return rc;
    }
    for (int k = 0; k < 2; k++) gp_corpus_bcast(&corp[k], 0);
    /* sampled corpora hold every selected triplet; a sample larger than reconstruct_samples gives its first ones */
    int64_t T[2], nbat[2];
    const int B = o->batch > 0 ? o->batch : 64;
    for (int k = 0; k < 2; k++) {
        const int64_t trip = corp[k].n_selected < o->samples ? corp[k].n_selected : o->samples;
        T[k] = 3 * trip;
        nbat[k] = (T[k] + B - 1) / B;
        c->rep->texts[k] = T[k];
    }
    const int64_t total = nbat[0] + nbat[1];
    const int64_t lo = total * c->rank / c->P, hi = total * (c->rank + 1) / c->P;
    c->nb = (int)(hi - lo);
    c->b = gp_calloc(nz(c->nb), sizeof *c->b);
    const int max_len = o->max_length > 0 && o->max_length < c->m->max_length ? o->max_length : c->m->max_length;
    const int C = c->m->cfg.hidden;
    int64_t tokens[2] = {0, 0};
    int maxN = 1;
    for (int64_t g = lo; g < hi && !rc; g++) {
        const int k = g < nbat[0] ? 0 : 1;
        const int64_t t0 = (g - (k ? nbat[0] : 0)) * B, t1 = t0 + B < T[k] ? t0 + B : T[k];
        const char **texts = gp_malloc((size_t)(t1 - t0) * sizeof(char *));
        gp_triplet *tr = gp_calloc((size_t)(t1 - t0) / 3 + 2, sizeof *tr);
        int ntr = 0;
        int64_t have = -1;
        for (int64_t t = t0; t < t1 && !rc; t++) {
            if (t / 3 != have) {
                have = t / 3;
                rc = gp_corpus_read(&corp[k], have, &tr[ntr++], err);
                if (rc) break;
            }
            const gp_triplet *x = &tr[ntr - 1];
            texts[t - t0] = t % 3 == 0 ? x->query : t % 3 == 1 ? x->positive : x->negative;
        }
        if (!rc) {
            gp_batch bt;
            gp_tokenizer_batch(c->m->tok, texts, (int)(t1 - t0), max_len, &bt);
            cal_batch *cb = &c->b[g - lo];
            cb->seqs = gp_model_seqs(c->m, &bt);
            cb->corpus = k;
            cb->N = gp_seqs_tokens(cb->seqs);
            cb->x = gp_malloc(nz(cb->N) * C * sizeof(float));
            gp_batch_free(&bt);
            tokens[k] += cb->N;
            if (cb->N > maxN) maxN = cb->N;
        }
        for (int i = 0; i < ntr; i++) gp_triplet_free(&tr[i]);
        free(tr), free(texts);
    }
    for (int k = 0; k < 2; k++) gp_corpus_free(&corp[k]);
    if ((rc = gp_agree(rc, err))) return rc;
    gp_allreduce_sum_i64(tokens, 2);
    c->rep->tokens[0] = tokens[0], c->rep->tokens[1] = tokens[1];
    if (!tokens[0] || (!tokens[1] && o->general_weight > 0))
        return gp_agree(gp_errf(err, GP_EINPUT, "%s: no calibration tokens for the reconstruction",
                                o->corpus[tokens[0] ? 1 : 0]), err);
    c->weight[0] = 1.0 / (double)tokens[0];
    c->weight[1] = tokens[1] ? o->general_weight / (double)tokens[1] : 0;
    c->y = gp_malloc((size_t)maxN * C * sizeof(float));
    for (int i = 0; i < c->nb; i++) gp_model_embed(c->m, c->b[i].seqs, c->b[i].x);
    gp_log0("reconstruct: %lld domain and %lld general calibration texts (%lld and %lld tokens), %lld batches of %d over %d "
            "rank(s)", (long long)T[0], (long long)T[1], (long long)tokens[0], (long long)tokens[1], (long long)total, B, c->P);
    return GP_OK;
}

/* Block l's output on every batch becomes its input to the next block. */
static void advance(recon_ctx *c, int l) {
    const size_t C = (size_t)c->m->cfg.hidden;
    for (int i = 0; i < c->nb; i++) {
        gp_model_block(c->m, c->b[i].seqs, l, c->b[i].x, c->y, NULL, NULL);
        memcpy(c->b[i].x, c->y, (size_t)c->b[i].N * C * sizeof(float));
    }
}

static void add_input(void *vctx, int param, const float *x, int N, int in) {
    recon_ctx *c = vctx;
    if (param != c->group_param) return;
    GP_CHECK(in == c->n, "group input width %d, expected %lld", in, (long long)c->n);
    const double t0 = gp_now();
    gp_hessian_add(c->H, x, N, in, c->w_now, c->scratch);
    c->rep->hessian_seconds += gp_now() - t0;
}

/* H of the group whose first selected weight is `param` (input width n), summed over every rank's batches. */
static void hessian(recon_ctx *c, int l, int param, int64_t n) {
    c->group_param = param;
    c->n = n;
    memset(c->H, 0, (size_t)(n * n) * sizeof(double));
    for (int i = 0; i < c->nb; i++) {
        c->w_now = c->weight[c->b[i].corpus];
        gp_model_block(c->m, c->b[i].seqs, l, c->b[i].x, c->y, add_input, c);
    }
    const double t0 = gp_now();
    gp_allreduce_sum_f64(c->H, (size_t)(n * n));
    c->rep->hessian_seconds += gp_now() - t0;
}

/* LAYER selection over the ranks: every rank gathers the block's saliencies of all rows (rank
 * order is row order) and picks the same k lowest by (saliency, row, column). */
typedef struct {
    int64_t R;
    const int64_t *row_lo; /* [P + 1] */
} pick_ctx;

static gp_status pick_all(void *vctx, const float *sal, int64_t rows, int64_t count, int64_t k, uint8_t *prune, gp_err *err) {
    const pick_ctx *p = vctx;
    const int P = gp_nranks(), r = gp_rank();
    int64_t *bounds = gp_malloc((size_t)(P + 1) * sizeof(int64_t));
    for (int q = 0; q <= P; q++) bounds[q] = p->row_lo[q] * count;
    float *all = gp_malloc(nz(p->R * count) * sizeof(float));
    memcpy(all + bounds[r], sal, (size_t)(rows * count) * sizeof(float));
    gp_allgather_blocks_f32(all, bounds);
    const int64_t N = p->R * count;
    uint8_t *pr = gp_malloc(nz(N));
    gp_obs_pick_lowest(all, N, k, pr);
    memcpy(prune, pr + bounds[r], (size_t)(rows * count));
    free(pr), free(all), free(bounds);
    return GP_OK;
}

/* Solves mask item it (input width n) with U: this rank's rows, then every rank's gathered; its
 * output errors (before: the mask alone, after: the written weights) into c->rep. */
static gp_status solve_item(recon_ctx *c, int it, const float *U, gp_err *err) {
    gp_model *m = c->m;
    gp_mask *mk = c->mask;
    const gp_param *t = &m->table.p[mk->param[it]];
    const int64_t R = t->shape[0], n = t->shape[1];
    int64_t *row_lo = gp_malloc((size_t)(c->P + 1) * sizeof(int64_t));
    for (int q = 0; q <= c->P; q++) row_lo[q] = R * q / c->P;
    const int64_t r0 = row_lo[c->rank], rows = row_lo[c->rank + 1] - r0;
    float *W = gp_model_param(m, mk->param[it]);
    float *mine = W + r0 * n;
    float *dense = gp_malloc(nz(rows * n) * sizeof(float));
    memcpy(dense, mine, (size_t)(rows * n) * sizeof(float));
    uint8_t *keep = gp_calloc((size_t)((rows * n + 7) / 8 + 1), 1);
    for (int64_t k = 0; k < rows * n; k++) gp_bit_set(keep, k, gp_bit_get(mk->keep[it], r0 * n + k));
    pick_ctx pc = {R, row_lo};
    gp_obs_opts oo = {.select = c->how->select,
                      .block = c->o->block,
                      .sparsity = c->how->sparsity,
                      .nm_n = c->how->nm_n,
                      .nm_m = c->how->nm_m,
                      .tensor_rows = R,
                      .pick = c->how->select == GP_OBS_LAYER ? pick_all : NULL,
                      .pick_ctx = &pc,
                      .update = c->how->update};
    const double t0 = gp_now();
    gp_status rc = gp_obs_prune(mine, rows, n, U, &oo, keep, err);
    c->rep->update_seconds += gp_now() - t0;
    /* the sweep's work: per row and column 2·(block columns to the right), and the lazy products */
    {
        const int64_t B = c->o->block;
        double f = 0;
        for (int64_t i1 = 0; i1 < n; i1 += B) {
            const int64_t i2 = i1 + B < n ? i1 + B : n;
            f += (double)(i2 - i1) * (double)(i2 - i1) + 2.0 * (double)(i2 - i1) * (double)(n - i2);
        }
        c->rep->update_gflop += f * (double)rows / 1e9;
    }
    if (!rc) {
        /* errors on the undampened H: the mask alone, and the written weights */
        float *masked = gp_malloc(nz(rows * n) * sizeof(float));
        for (int64_t k = 0; k < rows * n; k++) masked[k] = gp_bit_get(keep, k) ? dense[k] : 0.0f;
        double e[3] = {0, 0, 0}, y = 0;
        gp_obs_output_error(c->H, n, masked, dense, rows, &e[0], &y);
        gp_obs_output_error(c->H, n, mine, dense, rows, &e[1], &e[2]);
        e[2] = y;
        free(masked);
        gp_allreduce_sum_f64(e, 3);
        c->rep->err_before[it] = e[2] > 0 ? sqrt(e[0] / e[2]) : 0;
        c->rep->err_after[it] = e[2] > 0 ? sqrt(e[1] / e[2]) : 0;
        /* every rank's rows, and the mask bits of a mask chosen here */
        int64_t *bounds = gp_malloc((size_t)(c->P + 1) * sizeof(int64_t));
        for (int q = 0; q <= c->P; q++) bounds[q] = row_lo[q] * n;
        gp_allgather_blocks_f32(W, bounds);
        free(bounds);
        if (c->how->select != GP_OBS_FIXED) {
            const size_t nbytes = (size_t)((t->numel + 7) / 8);
            memset(mk->keep[it], 0, nbytes);
            for (int64_t k = 0; k < rows * n; k++)
                if (gp_bit_get(keep, k)) gp_bit_set(mk->keep[it], r0 * n + k, 1);
            gp_allreduce_bor_u8(mk->keep[it], nbytes);
        }
    }
    free(keep), free(dense), free(row_lo);
    return rc;
}

/* ---- checkpoints: one file per finished block ------------------------------------------------ */

static char *block_path(const char *dir, int l) {
    char name[64];
    snprintf(name, sizeof name, "block-%d.h5", l);
    return gp_path_join(dir, name);
}

static gp_status write_block(recon_ctx *c, const char *dir, int l, const char *hash, gp_err *err) {
    gp_status rc = GP_OK;
    hid_t f = -1;
    char *path = block_path(dir, l);
    if (c->rank == 0) {
        rc = gp_mkdir_p(dir, err);
        if (!rc) {
            f = gp_h5_create_tmp(path);
            gp_h5_attr_str(f, GP_CHECKPOINT_ATTR_SETTINGS, hash);
            gp_h5_attr_int(f, GP_CHECKPOINT_ATTR_STEP, l + 1);
            gp_h5_attr_str(f, GP_H5_ATTR_DESCRIPTION, "gaprune reconstruction checkpoint: the solved weights and mask bits "
                                                      "of one transformer block (removed when the pruned folder is written)");
            int *items = gp_malloc((size_t)c->mask->n * sizeof(int));
            for (int j = 0, ni = block_items(c, l, items); j < ni; j++) {
                const int i = items[j];
                char name[200];
                snprintf(name, sizeof name, "w%d", c->mask->param[i]);
                gp_checkpoint_write(f, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, gp_model_param(c->m, c->mask->param[i]),
                                    (size_t)c->mask->numel[i], "solved weights of the tensor of this table index", "1");
                snprintf(name, sizeof name, "k%d", c->mask->param[i]);
                gp_checkpoint_write(f, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, c->mask->keep[i],
                                    (size_t)((c->mask->numel[i] + 7) / 8), "mask bits (1 = keep), packed", "1");
                snprintf(name, sizeof name, "e%d", c->mask->param[i]);
                const double e[2] = {c->rep->err_before[i], c->rep->err_after[i]};
                gp_checkpoint_write(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, e, 2,
                                    "relative output error before and after", "1");
            }
            free(items);
            gp_checkpoint_seal(f);
        }
    }
    rc = gp_agree(rc, err);
    if (!rc) rc = gp_checkpoint_commit(f, path, NULL, err);
    free(path);
    return rc;
}

typedef struct {
    recon_ctx *c;
    int layer;
    int *items, ni; /* the block's mask items */
    float *w;       /* their solved weights, one tensor after the other */
} load_ctx;

/* The block's weights into lc->w (the model is left as it is until the whole file has loaded),
 * its mask bits and errors into the mask and the report (the block is solved again, bits and all,
 * should the load fail). */
static gp_status read_block(hid_t f, void *vctx) {
    load_ctx *lc = vctx;
    recon_ctx *c = lc->c;
    int64_t step = 0;
    if (gp_h5_read_attr_int(f, GP_CHECKPOINT_ATTR_STEP, &step) || step != lc->layer + 1) return GP_EINPUT;
    size_t at = 0;
    for (int j = 0; j < lc->ni; j++) {
        const int i = lc->items[j];
        char name[200];
        snprintf(name, sizeof name, "w%d", c->mask->param[i]);
        if (gp_h5_read_f32(f, name, lc->w + at, (size_t)c->mask->numel[i])) return GP_EINPUT;
        at += (size_t)c->mask->numel[i];
        snprintf(name, sizeof name, "k%d", c->mask->param[i]);
        hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
        if (ds < 0) return GP_EINPUT;
        const size_t nbytes = (size_t)((c->mask->numel[i] + 7) / 8);
        hssize_t have = gp_h5_stored_points(ds);
        herr_t hr = have == (hssize_t)nbytes ? H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->mask->keep[i]) : -1;
        H5Dclose(ds);
        if (hr < 0) return GP_EINPUT;
        snprintf(name, sizeof name, "e%d", c->mask->param[i]);
        double e[2];
        if (gp_h5_read_f64(f, name, e, 2)) return GP_EINPUT;
        c->rep->err_before[i] = e[0], c->rep->err_after[i] = e[1];
    }
    return GP_OK;
}

/* Blocks [0, done) read back from their checkpoints (collective), the cached inputs carried past
 * each: through the solved block (sequential) or the dense one (parallel, before the solved
 * weights replace it). Returns done. */
static int resume(recon_ctx *c, const char *dir, const char *hash) {
    const int L = c->m->cfg.layers;
    load_ctx lc = {c, 0, gp_malloc((size_t)(c->mask->n ? c->mask->n : 1) * sizeof(int)), 0,
                   gp_malloc(largest_block(c) * sizeof(float))};
    int done = 0;
    while (done < L) {
        char *path = block_path(dir, done);
        int exists = c->rank == 0 && gp_file_exists(path);
        exists = gp_allreduce_max_int(exists);
        gp_status rc = GP_EINPUT;
        lc.layer = done;
        lc.ni = block_items(c, done, lc.items);
        if (exists) rc = gp_checkpoint_load_shared(path, NULL, hash, read_block, &lc);
        free(path);
        if (rc) break;
        if (c->o->order == GP_RECON_PARALLEL) advance(c, done);
        exchange(c->m, c->mask, lc.items, lc.ni, lc.w); /* the solved weights in (lc.w is scratch after) */
        if (c->o->order == GP_RECON_SEQUENTIAL) advance(c, done);
        done++;
    }
    free(lc.w), free(lc.items);
    return done;
}

void gp_reconstruct_cleanup(const char *dir, int layers) {
    if (!dir) return;
    for (int l = 0; l < layers; l++) {
        char *path = block_path(dir, l);
        gp_checkpoint_remove(dir, path, NULL);
        free(path);
    }
    if (gp_rank() == 0) gp_rmtree(dir);
    gp_barrier();
}

/* ---- the stage ---------------------------------------------------------------------------------- */

gp_status gp_reconstruct(const gp_recon_opts *o, gp_model *m, gp_mask *mask, const gp_recon_mask *how, const char *ckpt_dir,
                         const char *settings_hash, gp_recon_report *rep, gp_err *err) {
    memset(rep, 0, sizeof *rep);
    const double t_start = gp_now();
    /* the layers are solved in float32, in place; the pruned folder rounds them to its dtype as
     * it always did (the next gp_model_reload_weights holds 16 bits again) */
    gp_model_hold_f32(m, false);
    rep->n = mask->n;
    rep->err_before = gp_calloc(nz(mask->n), sizeof(double));
    rep->err_after = gp_calloc(nz(mask->n), sizeof(double));
    recon_ctx c = {.o = o, .m = m, .mask = mask, .how = how, .P = gp_nranks(), .rank = gp_rank(), .rep = rep};
    c.block_of = gp_malloc((size_t)(mask->n ? mask->n : 1) * sizeof(int));
    for (int i = 0; i < mask->n; i++) gp_model_param_kind(m, mask->param[i], &c.block_of[i]);
    gp_status rc = load_batches(&c, err);
    const int L = m->cfg.layers;
    /* the widest input of any selected weight: H's size */
    int64_t nmax = 1;
    for (int i = 0; i < mask->n; i++)
        if (m->table.p[mask->param[i]].shape[1] > nmax) nmax = m->table.p[mask->param[i]].shape[1];
    if (!rc) {
        c.H = gp_malloc((size_t)(nmax * nmax) * sizeof(double));
        c.scratch = gp_malloc((size_t)(nmax * nmax) * sizeof(float));
    }
    float *U = rc ? NULL : gp_malloc((size_t)(nmax * nmax) * sizeof(float));
    int start = 0;
    if (!rc && ckpt_dir) {
        start = resume(&c, ckpt_dir, settings_hash);
        if (start) gp_log0("reconstruct: resumed after block %d of %d from %s", start - 1, L, ckpt_dir);
        rep->resumed_blocks = start;
    }
    /* parallel order: one block's dense weights, swapped in for forwards that must see the dense block */
    float *dense = NULL;
    if (!rc && o->order == GP_RECON_PARALLEL) dense = gp_malloc(largest_block(&c) * sizeof(float));
    int *items = gp_malloc((size_t)(mask->n ? mask->n : 1) * sizeof(int)); /* a block's mask items */
    int *groups = gp_malloc((size_t)(mask->n ? mask->n : 1) * sizeof(int)); /* and their groups */
    gp_stop_watch sw;
    gp_stop_begin(&sw);
    int checkpoints = 0;
    for (int l = start; l < L && !rc; l++) {
        const double tb = gp_now();
        /* this block's items in table order, with their groups */
        const int ni = block_items(&c, l, items);
        for (int k = 0; k < ni; k++) {
            groups[k] = gp_model_linear_group(m, mask->param[items[k]], NULL);
            GP_CHECK(groups[k] >= 0 && groups[k] < NGROUPS, "selected tensor %s is not a linear weight of block %d",
                     m->table.p[mask->param[items[k]]].name, l);
        }
        size_t at = 0;
        if (dense)
            for (int k = 0; k < ni; k++) {
                memcpy(dense + at, gp_model_param(m, mask->param[items[k]]), (size_t)mask->numel[items[k]] * sizeof(float));
                at += (size_t)mask->numel[items[k]];
            }
        for (int g = 0; g < NGROUPS && !rc; g++) {
            int first = -1;
            for (int k = 0; k < ni && first < 0; k++)
                if (groups[k] == g) first = k;
            if (first < 0) continue;
            const int64_t n = m->table.p[mask->param[items[first]]].shape[1];
            /* parallel: the block as dense while its inputs are gathered */
            if (dense) exchange(m, mask, items, ni, dense);
            double t0 = gp_now();
            const double h0 = rep->hessian_seconds;
            hessian(&c, l, mask->param[items[first]], n); /* block forwards, and the products they feed */
            rep->forward_seconds += gp_now() - t0 - (rep->hessian_seconds - h0);
            if (dense) exchange(m, mask, items, ni, dense);
            double lambda;
            t0 = gp_now();
            rc = gp_agree(gp_obs_factor(c.H, n, o->dampening, U, &lambda, err), err);
            rep->factor_seconds += gp_now() - t0;
            for (int k = 0; k < ni && !rc; k++)
                if (groups[k] == g) rc = gp_agree(solve_item(&c, items[k], U, err), err);
        }
        if (rc) break;
        /* the next block's input: this block as solved (sequential) or dense (parallel) */
        const double t0 = gp_now();
        if (dense) exchange(m, mask, items, ni, dense);
        advance(&c, l);
        if (dense) exchange(m, mask, items, ni, dense);
        rep->forward_seconds += gp_now() - t0;
        double eb = 0, ea = 0;
        for (int k = 0; k < ni; k++) eb += rep->err_before[items[k]], ea += rep->err_after[items[k]];
        const double el = gp_now() - t_start;
        gp_log0("reconstruct: block %d/%d: %d tensor(s), mean relative output error %.4f -> %.4f, %.1f s; %.0f s so far, "
                "ETA %.0f s", l + 1, L, ni, ni ? eb / ni : 0, ni ? ea / ni : 0, gp_now() - tb, el,
                el / (l + 1 - start) * (L - l - 1));
        if (ckpt_dir) {
            rc = write_block(&c, ckpt_dir, l, settings_hash, err);
            if (!rc && gp_testhook_get()->kill_after_checkpoint == ++checkpoints && c.rank == 0) {
                gp_log0("test hook: SIGKILL after reconstruction checkpoint %d (block %d)", checkpoints, l);
                raise(SIGKILL);
            }
            if (!rc && l + 1 < L && gp_allreduce_max_int(gp_stop_requested())) {
                gp_log0("reconstruct: stopped after block %d of %d (checkpoint in %s): rerun to resume", l + 1, L, ckpt_dir);
                rc = GP_ESTOPPED;
            }
        }
    }
    gp_stop_end(&sw);
    {
        double g[1] = {rep->update_gflop};
        gp_allreduce_sum_f64(g, 1);
        rep->update_gflop = g[0];
    }
    rep->seconds = gp_now() - t_start;
    for (int i = 0; i < c.nb; i++) gp_seqs_free(c.b[i].seqs), free(c.b[i].x);
    free(c.b), free(c.y), free(c.H), free(c.scratch), free(U), free(dense), free(c.block_of), free(items), free(groups);
    return rc;
}
