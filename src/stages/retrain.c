/* retrain.c — masked data-parallel AdamW retraining (see retrain.h). */
#include "gaprune/retrain.h"

#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/provenance.h"
#include "gaprune/checkpoint.h"
#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/h5par.h"
#include "gaprune/hash.h"
#include "gaprune/kernels.h"
#include "gaprune/log.h"
#include "gaprune/retrain_file.h"
#include "gaprune/loss.h"
#include "gaprune/prune.h"
#include "gaprune/rng.h"
#include "gaprune/stop.h"
#include "gaprune/testhook.h"
#include "gaprune/triplets.h"

#define BETA1 0.9
#define BETA2 0.999
#define ADAM_EPS 1e-8

double gp_lr_at(int t, int n, int w, double lr) {
    if (w > 0 && t <= w) return lr * t / w;
    if (n <= w) return lr;
    double f = (double)(n - t) / (double)(n - w);
    return lr * (f > 0 ? f : 0);
}

typedef struct {
    const gp_train_opts *cfg;
    gp_model *m;
    const gp_mask *mask;
    gp_corpus corp;
    int64_t epoch;
    int64_t *perm; /* this epoch's order of the corpus */
    gp_optimizer_sharding sharding; /* in effect: none, states or gradients */
    int64_t *bounds;      /* [P + 1] the ranks' slices of the flat parameter vector (gp_retrain_bounds) */
    int64_t lo, hi;       /* the elements this rank updates and keeps moments of: all, or its slice */
    int64_t block;        /* elements per block of the gradient norm's sums */
    double *part;         /* [blocks] Σg² of each block */
    float *adam_m, *adam_v; /* [hi - lo] */
    /* weights held in 16 bits (model.weights): the float32 master weights of [lo, hi), which AdamW
     * updates; the model computes with their rounding, which every rank gathers after a step.
     * NULL with float32 weights (AdamW updates those) */
    float *master;
    /* gradients (ZeRO-2): backward forms one block's gradients at a time in two windows
     * (gp_model_need_grads), and each block's sum over the ranks goes to its owners as soon as
     * the block is done; gsum [hi - lo] is this rank's slice of the summed gradient */
    float *gsum;
    int64_t *block_at;          /* [layers] where block l's parameters start in the flat vector */
    size_t win;                 /* one block's parameters (floats of a window) */
    gp_reduce_pending pend[2];  /* the reductions reading window w */
    uint8_t *decay; /* per parameter: weight decay applies */
    double *loss, *lr, *gnorm; /* per step */
    double allreduce_s;        /* wall time in the gradient sum and the weights' gather */
    double update_s;           /* wall time in the mask, the norm and AdamW */
    int step;                  /* steps done */
    char hash[65];
    const char *log_path;
    char *prev_path; /* the checkpoint before log_path's (gp_checkpoint_prev_path) */
    const char *prefix; /* the query prefix: the job's instruction, else the model's own prompt, else "" */
    int checkpoints;
    double share; /* this rank's share of its node's memory, asked once where an auto setting needs it, else 0 */
} rt_ctx;

/* Corpus index of the i-th triplet of the stream: epochs of seeded shuffles. */
static int64_t stream(rt_ctx *c, int64_t i) {
    int64_t n = c->corp.n_selected, e = i / n;
    if (e != c->epoch) {
        c->epoch = e;
        for (int64_t k = 0; k < n; k++) c->perm[k] = k;
        uint64_t s = gp_rng_seed((uint64_t)c->cfg->seed, (uint64_t)e);
        for (int64_t k = n - 1; k > 0; k--) {
            s = gp_rng_mix(s + GP_RNG_GOLDEN);
            int64_t j = (int64_t)(s % (uint64_t)(k + 1));
            int64_t t = c->perm[k];
            c->perm[k] = c->perm[j];
            c->perm[j] = t;
        }
    }
    return c->perm[i % n];
}

/* ---- the shards -------------------------------------------------------------------------------- */

/* Elements per block of the norm's partial sums: a function of the parameter count alone (at
 * least 256, at most about 2^16 blocks), so the norm is the same sum in the same order for every
 * rank count, sharding mode and thread count. */
static int64_t norm_block(int64_t n) {
    int64_t b = 256;
    while (n / b > 65536) b *= 2;
    return b;
}

void gp_retrain_bounds(int64_t n, int P, int64_t *bounds) {
    const int64_t B = norm_block(n), nb = (n + B - 1) / B;
    /* whole norm blocks, so each block's sum is formed by one owner; nb·q/P without overflow */
    for (int q = 0; q <= P; q++) {
        const int64_t at = (nb / P * q + nb % P * q / P) * B;
        bounds[q] = at < n ? at : n;
    }
}

gp_optimizer_sharding gp_retrain_sharding(gp_optimizer_sharding mode, int P, int64_t n, double share) {
    if (mode != GP_SHARD_AUTO) return mode;
    /* an unknown share (0) keeps the copies, as the statistics' accumulators do */
    if (P <= 1 || share <= 0 || 8.0 * (double)n <= 0.25 * share) return GP_SHARD_NONE;
    /* the gradient too when weights, gradient and sharded moments would still take over half
     * the share: its per-block reductions cost time (on 2 ranks here, 31% of a step against
     * 15%), so only where memory needs it */
    return 8.0 * (double)n + 8.0 * (double)n / P > 0.5 * share ? GP_SHARD_GRADIENTS : GP_SHARD_STATES;
}

double gp_retrain_state_bytes(gp_optimizer_sharding mode, int P, int64_t n, int64_t outer, int64_t window) {
    int64_t slice = n;
    if (mode == GP_SHARD_STATES || mode == GP_SHARD_GRADIENTS) {
        int64_t *b = gp_malloc((size_t)(P + 1) * sizeof(int64_t));
        gp_retrain_bounds(n, P, b);
        slice = 0;
        for (int q = 0; q < P; q++) slice = b[q + 1] - b[q] > slice ? b[q + 1] - b[q] : slice;
        free(b);
    }
    /* weights (4 bytes each) and the moments (8 each) of the slice (the weights' gather is in
     * place: no buffer) */
    double bytes = 4.0 * (double)n + 8.0 * (double)slice;
    /* every gradient; so too for gradients on one rank, which has nothing to shard (retrain.c
     * keeps the whole gradient there: windows would only add to it) */
    if (mode != GP_SHARD_GRADIENTS || slice == n) return bytes + 4.0 * (double)n;
    /* gradients: the prefix outside the blocks, two block windows, the slice of the sum, and
     * Open MPI's temporaries of the reductions in flight: a rank receives (into a temporary)
     * only the pieces of its own part of a window, at most GP_DIST_INFLIGHT of them */
    double inflight = (double)GP_DIST_INFLIGHT * (double)GP_DIST_RS_ROUND;
    if ((double)window < inflight) inflight = (double)window;
    if ((double)slice < inflight) inflight = (double)slice;
    return bytes + 4.0 * ((double)outer + 2.0 * (double)window) + 4.0 * (double)slice + 4.0 * 2 * inflight;
}

/* Collective: c->share for retrain.optimizer_sharding = auto on several ranks and model.activations
 * = auto (the same settings on every rank, so every rank asks or none does). */
static void ask_share(rt_ctx *c) {
    const bool opt = c->cfg->sharding == GP_SHARD_AUTO && gp_nranks() > 1, acts = c->cfg->activations == GP_ACTS_AUTO;
    c->share = opt || acts ? gp_memory_per_rank() : 0;
}

/* The mode in effect and this rank's slice. */
static void choose_shards(rt_ctx *c) {
    const int P = gp_nranks(), r = gp_rank();
    const int64_t n = (int64_t)c->m->table.total;
    const double share = c->cfg->sharding == GP_SHARD_AUTO && P > 1 ? c->share : 0;
    c->sharding = gp_retrain_sharding(c->cfg->sharding, P, n, share);
    if (c->cfg->sharding == GP_SHARD_AUTO && P > 1)
        gp_log0("retrain: replicated AdamW moments need %.3g GB per rank, %.3g GB is this rank's share of the node: %s",
                8.0 * (double)n / 1e9, share / 1e9, gp_optimizer_sharding_name(c->sharding));
    c->bounds = gp_malloc((size_t)(P + 1) * sizeof(int64_t));
    gp_retrain_bounds(n, P, c->bounds);
    c->block = norm_block(n);
    c->part = gp_calloc((size_t)((n + c->block - 1) / c->block + 1), sizeof(double));
    const bool sharded = c->sharding != GP_SHARD_NONE;
    c->lo = sharded ? c->bounds[r] : 0;
    c->hi = sharded ? c->bounds[r + 1] : n;
}

/* model.activations in effect for the forwards of this rank's micro-batch (u triplets, 3u texts
 * at the effective max_length); auto on the node's memory per rank, as the plan decides it
 * (gp_model_lean_for). */
static bool choose_activations(const rt_ctx *c) {
    const gp_train_opts *cfg = c->cfg;
    const int P = gp_nranks(), b = (cfg->batch + P - 1) / P;
    const int u = cfg->micro_batch > 0 && cfg->micro_batch < b ? cfg->micro_batch : b;
    const double T = cfg->max_length < c->m->max_length ? cfg->max_length : c->m->max_length;
    const double share = c->share;
    const bool lean = gp_model_lean_for(&c->m->cfg, cfg->activations, 3.0 * u, T, c->m->recompute, share);
    if (cfg->activations == GP_ACTS_AUTO && lean)
        gp_log0("retrain: keeping every activation of a forward needs %.3g GB per rank, more than a quarter of this "
                "rank's share of the node (%.3g GB): model.activations lean",
                gp_model_activation_bytes(&c->m->cfg, 3.0 * u, T, true, c->m->recompute, false) / 1e9, share / 1e9);
    gp_model_set_lean(c->m, lean);
    return lean;
}

/* ---- gradients (ZeRO-2): each block's sum to its owners as backward finishes it --------------- */

/* Before block l's gradients are written into window l % 2: the reductions still reading that
 * window (block l + 2's) must be done (the model then zeroes the window). */
static void block_begin(void *vctx, int layer) {
    rt_ctx *c = vctx;
    const double t0 = gp_now();
    gp_reduce_add_wait(&c->pend[layer % 2]);
    c->allreduce_s += gp_now() - t0;
}

/* Block l's gradients are final (collective: every rank, every backward, blocks in the same
 * order): their sum over the ranks starts towards the owners' slices of gsum, and travels while
 * the backward of the blocks below runs. */
static void block_done(void *vctx, int layer) {
    rt_ctx *c = vctx;
    const double t0 = gp_now();
    const int w = layer % 2;
    const int64_t a = c->block_at[layer];
    gp_reduce_add_start(c->m->grads + c->m->grad_outer + (size_t)w * c->win, a, a + (int64_t)c->win, c->bounds, c->gsum,
                        &c->pend[w]);
    gp_reduce_add_progress(&c->pend[1 - w]);
    c->allreduce_s += gp_now() - t0;
}

/* A backward this rank has no triplets for (its share of the batch, or of its micro-batches,
 * is smaller than another rank's): its part of every block's reductions, with zero gradients,
 * in the order backward runs them. */
static void blocks_without_backward(rt_ctx *c) {
    for (int l = c->m->cfg.layers - 1; l >= 0; l--) {
        gp_model_layer_begin(c->m, l);
        gp_model_layer_done(c->m, l);
    }
}

/* Collective: the token-embedding gradient's rows that some rank's tokens touched this step (rows
 * [0, nr) here, repeats allowed) to their owners' slices of gsum. The other rows are zero on
 * every rank, so only the touched ones travel (as the allreduce of the other modes does):
 * the union's rows are packed in row order, which is the flat order, so each owner's part of
 * the packed rows is one contiguous range, reduced to it with gp_reduce_add_start and added
 * into gsum. The gradient itself is only read: its clean rows stay clean for the next step's
 * gp_model_zero_grad. */
static void reduce_token_rows(rt_ctx *c, const int32_t *rows, int nr) {
    const int P = gp_nranks(), r = gp_rank();
    const gp_param *e = &c->m->table.p[c->m->tok_emb];
    const int64_t V = e->shape[0], C = e->shape[1], e0 = (int64_t)e->offset;
    uint8_t *bits = gp_calloc((size_t)(V + 7) / 8, 1);
    for (int k = 0; k < nr; k++) bits[rows[k] / 8] |= (uint8_t)(1u << (rows[k] % 8));
    gp_allreduce_bor_u8(bits, (size_t)(V + 7) / 8);
    int64_t nu = 0;
    for (int64_t v = 0; v < V; v++) nu += bits[v / 8] >> (v % 8) & 1;
    int64_t *u = gp_malloc((size_t)(nu + 1) * sizeof(int64_t));
    nu = 0;
    for (int64_t v = 0; v < V; v++)
        if (bits[v / 8] >> (v % 8) & 1) u[nu++] = v;
    free(bits);
    /* pb[q]: packed elements before owner q's first element (those of flat index < bounds[q]) */
    int64_t *pb = gp_calloc((size_t)P + 1, sizeof(int64_t));
    for (int q = 0; q <= P; q++)
        for (int64_t k = 0; k < nu; k++) {
            const int64_t before = c->bounds[q] - (e0 + u[k] * C);
            pb[q] += before <= 0 ? 0 : before < C ? before : C;
        }
    const float *g = gp_model_grad(c->m, c->m->tok_emb);
    float *packed = gp_malloc((size_t)(nu * C + 1) * sizeof(float));
    for (int64_t k = 0; k < nu; k++) memcpy(packed + k * C, g + u[k] * C, (size_t)C * sizeof(float));
    float *mine = gp_calloc((size_t)(pb[r + 1] - pb[r] + 1), sizeof(float));
    gp_reduce_pending pend = {0};
    gp_reduce_add_start(packed, 0, nu * C, pb, mine, &pend);
    gp_reduce_add_wait(&pend);
    gp_reduce_pending_free(&pend);
    for (int64_t j = pb[r]; j < pb[r + 1]; j++) {
        const int64_t flat = e0 + u[j / C] * C + j % C;
        c->gsum[flat - c->lo] += mine[j - pb[r]];
    }
    free(mine), free(packed), free(pb), free(u);
}

/* Collective, after the step's last backward: the parameters outside the blocks (their gradients
 * accumulated over the micro-batches in the prefix) to their owners — the token embedding's
 * touched rows only — then every reduction done: gsum is this rank's slice of the summed
 * gradient. rows [0, nr): the token-embedding rows this rank's backwards touched. */
static void outer_reduce(rt_ctx *c, const int32_t *rows, int nr) {
    const double t0 = gp_now();
    gp_model *m = c->m;
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        gp_model_param_kind(m, i, &layer);
        if (layer >= 0 || i == m->tok_emb) continue;
        const int64_t a = (int64_t)m->table.p[i].offset;
        gp_reduce_add_start(gp_model_grad(m, i), a, a + (int64_t)m->table.p[i].numel, c->bounds, c->gsum, &c->pend[0]);
    }
    for (int w = 0; w < 2; w++) gp_reduce_add_wait(&c->pend[w]);
    reduce_token_rows(c, rows, nr);
    c->allreduce_s += gp_now() - t0;
}

/* Gradients mode: two block windows and the prefix instead of every gradient, the hooks, and
 * where each block starts in the flat vector (a block's parameters are contiguous there, in
 * the windows' order). False, with the model as it was, when the blocks differ in size (a
 * folder of per-block intermediate sizes): their gradients cannot share windows. */
static bool gradients_begin(rt_ctx *c) {
    gp_model *m = c->m;
    const int L = m->cfg.layers;
    bool *all = gp_malloc((size_t)m->table.n);
    memset(all, 1, (size_t)m->table.n);
    c->win = gp_model_need_grads(m, all, 2);
    free(all);
    if (c->win == 0) {
        gp_model_need_grads(m, NULL, 0);
        return false;
    }
    c->block_at = gp_malloc((size_t)(L > 0 ? L : 1) * sizeof(int64_t));
    int64_t *end = gp_calloc((size_t)(L > 0 ? L : 1), sizeof(int64_t));
    for (int l = 0; l < L; l++) c->block_at[l] = -1;
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        gp_model_param_kind(m, i, &layer);
        if (layer < 0) continue;
        const int64_t off = (int64_t)m->table.p[i].offset;
        if (c->block_at[layer] < 0) c->block_at[layer] = end[layer] = off;
        GP_CHECK(off == end[layer], "%s: block %d's parameters are not contiguous", m->table.p[i].name, layer);
        end[layer] += (int64_t)m->table.p[i].numel;
    }
    for (int l = 0; l < L; l++)
        GP_CHECK(end[l] - c->block_at[l] == (int64_t)c->win, "block %d: %lld parameters, a window holds %zu", l,
                 (long long)(end[l] - c->block_at[l]), c->win);
    free(end);
    c->gsum = gp_malloc((size_t)(c->hi - c->lo + 1) * sizeof(float));
    const gp_grad_hooks hooks = {block_begin, block_done, c};
    gp_model_set_grad_hooks(m, &hooks);
    return true;
}

/* The model as it was: every gradient, no hooks. */
static void gradients_end(rt_ctx *c) {
    if (!c->gsum) return;
    for (int w = 0; w < 2; w++) {
        gp_reduce_add_wait(&c->pend[w]);
        gp_reduce_pending_free(&c->pend[w]);
    }
    gp_model_set_grad_hooks(c->m, NULL);
    gp_model_need_grads(c->m, NULL, 0);
    free(c->gsum), free(c->block_at);
    c->gsum = NULL, c->block_at = NULL;
}

/* ---- the log / checkpoint file -------------------------------------------------------------- */

/* Rank 0, after the parallel write: the attributes and per-step logs (serial HDF5: provenance
 * has variable-length strings), the checksums (crc: of params, adam_m and adam_v, every rank's
 * slice, gp_checkpoint_crc_ranks), in <log_path>.tmp, still open. */
static hid_t write_tail(rt_ctx *c, bool complete, const uint32_t crc[3]) {
    const gp_train_opts *cfg = c->cfg;
    hid_t f = gp_h5_open_tmp(c->log_path);
    gp_provenance_write(f, GP_RETRAIN_FORMAT, GP_RETRAIN_FORMAT_VERSION);
    gp_h5_attr_str(f, GP_RETRAIN_ATTR_SETTINGS_HASH, c->hash);
    gp_h5_attr_int(f, GP_RETRAIN_ATTR_STEP, c->step);
    gp_h5_attr_int(f, GP_RETRAIN_ATTR_STEPS, cfg->steps);
    gp_h5_attr_int(f, GP_RETRAIN_ATTR_BATCH, cfg->batch);
    gp_h5_attr_double(f, GP_RETRAIN_ATTR_LR, cfg->lr);
    gp_h5_attr_int(f, GP_RETRAIN_ATTR_WARMUP, cfg->warmup);
    gp_h5_attr_double(f, GP_RETRAIN_ATTR_WEIGHT_DECAY, cfg->weight_decay);
    gp_h5_attr_double(f, GP_RETRAIN_ATTR_GRAD_CLIP, cfg->grad_clip);
    gp_h5_attr_str(f, GP_RETRAIN_ATTR_CORPUS_PATH, c->corp.path);
    gp_h5_attr_str(f, GP_RETRAIN_ATTR_CORPUS_SHA256, c->corp.sha256);
    gp_h5_attr_str(f, GP_RETRAIN_ATTR_SHARDING, gp_optimizer_sharding_name(c->sharding));
    gp_h5_attr_str(f, GP_H5_ATTR_DESCRIPTION, "GAPrune masked retraining: per-step loss, learning rate and gradient norm; "
                                     "weights and AdamW moments to resume from");
    gp_checkpoint_write(f, GP_RETRAIN_LOSS, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, c->loss, (size_t)c->step,
                        "InfoNCE loss of each step's batch (before its update)", "nats");
    gp_checkpoint_write(f, GP_RETRAIN_LR, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, c->lr, (size_t)c->step,
                        "learning rate of each step", "1");
    gp_checkpoint_write(f, GP_RETRAIN_GRAD_NORM, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, c->gnorm, (size_t)c->step,
                        "global gradient norm of each step, before clipping", "loss / parameter");
    static const char *const sliced[3] = {GP_RETRAIN_PARAMS, GP_RETRAIN_ADAM_M, GP_RETRAIN_ADAM_V};
    for (int k = 0; k < 3; k++) gp_checkpoint_set_crc(f, sliced[k], crc[k]);
    gp_checkpoint_seal(f);
    if (complete) gp_h5_attr_int(f, GP_H5_ATTR_COMPLETE, 1);
    return f;
}

/* Collective: every rank writes its slice of the weights and moments (parallel HDF5, whole flat
 * arrays in the file whatever the mode or rank count), then rank 0 the rest. */
static gp_status write_log(rt_ctx *c, bool complete, gp_err *err) {
    const int r = gp_rank();
    const hsize_t n = c->m->table.total, r0 = (hsize_t)c->bounds[r], nr = (hsize_t)(c->bounds[r + 1] - c->bounds[r]);
    const float *am = c->adam_m + (c->bounds[r] - c->lo), *av = c->adam_v + (c->bounds[r] - c->lo);
    const gp_h5par_item it[3] = {
        {GP_RETRAIN_PARAMS, 1, {n, 0}, "all parameters after the last step, in table order (the float32 master weights "
         "where the model holds 16-bit ones)", "1", c->master ? c->master + (r0 - (hsize_t)c->lo) : c->m->params + r0, r0,
         nr, true},
        {GP_RETRAIN_ADAM_M, 1, {n, 0}, "AdamW first moment", "1", am, r0, nr, true},
        {GP_RETRAIN_ADAM_V, 1, {n, 0}, "AdamW second moment", "1", av, r0, nr, true},
    };
    hid_t f;
    gp_status rc = gp_h5par_create_tmp(c->log_path, gp_h5par_bytes(it, 3), &f, err);
    if (rc) return rc;
    gp_h5par_write_f32(f, it, 3);
    gp_h5par_close(f, c->log_path, err);
    uint32_t crc[3];
    for (int k = 0; k < 3; k++) crc[k] = gp_checkpoint_crc_ranks(it[k].data, (size_t)nr * sizeof(float));
    /* the file it replaces is kept as .prev.h5 until the run is complete: a damaged newest
     * checkpoint then leaves the one before */
    rc = gp_checkpoint_commit(r == 0 ? write_tail(c, complete, crc) : -1, c->log_path, c->prev_path, err);
    if (!rc && complete && r == 0) remove(c->prev_path);
    return rc;
}

typedef struct {
    rt_ctx *c;
    int64_t step, complete; /* what the log says */
    bool damaged;           /* the weights were read into the model and are not the log's */
} load_ctx;

/* count floats of the flat dataset name from element lo on: this rank's slice of the moments */
static bool read_slice(hid_t f, const char *name, int64_t n, int64_t lo, int64_t count, float *dst) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return false;
    hid_t fs = H5Dget_space(d);
    bool ok = fs >= 0 && H5Sget_simple_extent_npoints(fs) == n;
    if (ok && count > 0) {
        hsize_t off = (hsize_t)lo, cnt = (hsize_t)count;
        hid_t ms = H5Screate_simple(1, &cnt, NULL);
        ok = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL) >= 0 &&
             H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, dst) >= 0;
        H5Sclose(ms);
    }
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(d);
    return ok;
}

/* The dataset holds n values (read nothing). */
static bool has_points(hid_t f, const char *name, int64_t n) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return false;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return false;
    hid_t sp = H5Dget_space(d);
    const bool ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == n;
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    return ok;
}

/* Finite values, and not negative where nonneg (a second moment, whose root is taken). */
static bool finite_values(const float *x, int64_t n, bool nonneg) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || (nonneg && x[i] < 0)) return false;
    return true;
}

/* Every rank: the state of an earlier run from its log (its checksums and settings checked by
 * gp_checkpoint_load_shared; whatever its sharding and rank count): all weights, this rank's
 * slice of the moments. What goes into the run's own buffers is read and checked first, so that
 * a log refused there leaves the model as it was (and the run starts over); the weights are read
 * last, straight into the model (no second copy of them), and weights that cannot be read or are
 * not finite leave it damaged: lc->damaged, and the run stops, unless the log before loads. */
static gp_status load_log(hid_t f, void *vctx) {
    load_ctx *lc = vctx;
    rt_ctx *c = lc->c;
    int64_t step = 0, complete = 0;
    if (!gp_h5_read_attr_int(f, GP_RETRAIN_ATTR_STEP, &step)) {
        gp_h5_read_attr_int(f, GP_H5_ATTR_COMPLETE, &complete);
        const int64_t n = (int64_t)c->m->table.total, mine = c->hi - c->lo;
        /* the last checkpoint alone is complete: a log that says so before the last step is not
         * one this run wrote, and would end the retraining with its weights half way */
        bool ok = step > 0 && step <= c->cfg->steps && (complete != 1 || step == c->cfg->steps) &&
                  has_points(f, GP_RETRAIN_PARAMS, n) && read_slice(f, GP_RETRAIN_ADAM_M, n, c->lo, mine, c->adam_m) &&
                  read_slice(f, GP_RETRAIN_ADAM_V, n, c->lo, mine, c->adam_v) &&
                  finite_values(c->adam_m, mine, false) && finite_values(c->adam_v, mine, true) &&
                  !gp_h5_read_f64(f, GP_RETRAIN_LOSS, c->loss, (size_t)step) &&
                  !gp_h5_read_f64(f, GP_RETRAIN_LR, c->lr, (size_t)step) &&
                  !gp_h5_read_f64(f, GP_RETRAIN_GRAD_NORM, c->gnorm, (size_t)step);
        if (ok && c->master && (!read_slice(f, GP_RETRAIN_PARAMS, n, c->lo, mine, c->master) ||
                                !finite_values(c->master, mine, false))) {
            ok = false; /* the master weights again from the model, which this did not touch */
            gp_model_weights_get(c->m, (size_t)c->lo, (size_t)mine, c->master);
        } else if (ok && !c->master &&
                   (gp_h5_read_f32(f, GP_RETRAIN_PARAMS, c->m->params, (size_t)n) || !finite_values(c->m->params, n, false))) {
            lc->damaged = true, ok = false;
        }
        if (!ok) {
            step = 0, complete = 0;
            memset(c->adam_m, 0, (size_t)mine * sizeof(float));
            memset(c->adam_v, 0, (size_t)mine * sizeof(float));
        } else {
            lc->damaged = false; /* the weights are this log's */
        }
    }
    lc->step = step, lc->complete = complete;
    return step > 0 ? GP_OK : GP_EINPUT;
}

/* Collective, with master weights: the model's 16-bit weights become their rounding, on every rank. */
static void publish(rt_ctx *c) {
    gp_model_weights_set(c->m, (size_t)c->lo, (size_t)(c->hi - c->lo), c->master);
    if (c->sharding != GP_SHARD_NONE) gp_allgather_blocks_u16(c->m->w16, c->bounds);
    gp_model_weights_changed(c->m);
}

/* Collective: loads the state of an earlier run into *step (0: none, -1: complete). */
static gp_status try_resume(rt_ctx *c, int64_t *step_out, gp_err *err) {
    load_ctx lc = {c, 0, 0, false};
    gp_checkpoint_load_shared(c->log_path, c->prev_path, c->hash, load_log, &lc);
    *step_out = 0;
    if (gp_allreduce_max_int(lc.damaged))
        return gp_errf(err, GP_EINPUT,
                       "%s: its weights could not be read or are not finite (a damaged file), and the model in memory "
                       "now holds them: remove the file and rerun",
                       c->log_path);
    const int most = gp_allreduce_max_int((int)lc.step), least = -gp_allreduce_max_int(-(int)lc.step);
    if (most == 0) return GP_OK;
    /* a rank that read less has the pruned weights still, the others the checkpoint's */
    if (least != most)
        return gp_errf(err, GP_EINPUT, "%s: the ranks read different states from it (steps %d to %d); remove it to start over",
                       c->log_path, least, most);
    int64_t complete = lc.complete;
    gp_bcast_bytes(&complete, sizeof complete, 0);
    if (c->master) publish(c);
    c->step = most;
    *step_out = complete ? -1 : most;
    return GP_OK;
}

static gp_status checkpoint(rt_ctx *c, bool complete, gp_err *err) {
    gp_status rc = write_log(c, complete, err);
    c->checkpoints++;
    if (!complete && gp_testhook_get()->kill_after_checkpoint == c->checkpoints && gp_rank() == 0) {
        gp_log0("test hook: SIGKILL after checkpoint %d (step %d)", c->checkpoints, c->step);
        raise(SIGKILL);
    }
    return rc;
}

/* ---- one step ------------------------------------------------------------------------------- */

/* ‖g‖ of the summed gradient (collective when sharded): each block's Σg² in double, four
 * interleaved sums within it, the blocks summed in order on every rank. The blocks are fixed by
 * the parameter count and each lies in one owner's slice, so the norm is bitwise the same for
 * any thread count, and for any rank count or mode that sums the gradient the same way. */
static double grad_norm(rt_ctx *c, const float *gs) {
    const int64_t n = (int64_t)c->m->table.total, B = c->block, nb = (n + B - 1) / B;
    const int64_t b0 = c->lo / B, b1 = (c->hi + B - 1) / B;
    double *part = c->part;
    memset(part, 0, (size_t)nb * sizeof(double));
#pragma omp parallel for if ((b1 - b0) * B >= gp_par_min()) schedule(static)
    for (int64_t bl = b0; bl < b1; bl++) {
        const int64_t a = bl * B, len = (a + B < n ? a + B : n) - a;
        const float *g = gs + (a - c->lo); /* the block's elements (the blocks lie in [lo, hi)) */
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int64_t k = 0;
        for (; k + 4 <= len; k += 4) {
            s0 += (double)g[k] * g[k];
            s1 += (double)g[k + 1] * g[k + 1];
            s2 += (double)g[k + 2] * g[k + 2];
            s3 += (double)g[k + 3] * g[k + 3];
        }
        for (; k < len; k++) s0 += (double)g[k] * g[k];
        part[bl] = (s0 + s1) + (s2 + s3);
    }
    /* the other owners' blocks are zeros here: x + 0 is exact, so the sum is every block's own */
    if (c->sharding != GP_SHARD_NONE) gp_allreduce_sum_f64(part, (size_t)nb);
    double g2 = 0;
    for (int64_t bl = 0; bl < nb; bl++) g2 += part[bl];
    return sqrt(g2);
}

/* AdamW on this rank's elements [lo, hi) of the weights (gs: their summed gradient):
 * element-wise, so the result does not depend on the threads or on how the elements are split
 * among ranks. */
static void adamw(rt_ctx *c, const float *gs, int t1, double lr, double scale) {
    const gp_train_opts *cfg = c->cfg;
    gp_model *m = c->m;
    const double bc1 = 1 - pow(BETA1, t1), bc2 = 1 - pow(BETA2, t1);
    for (int i = 0; i < m->table.n; i++) {
        const gp_param *pp = &m->table.p[i];
        const int64_t off = (int64_t)pp->offset, end = off + (int64_t)pp->numel;
        const int64_t a = off > c->lo ? off : c->lo, e = end < c->hi ? end : c->hi;
        if (a >= e) continue;
        /* restrict lets the compiler vectorize; element-wise, so the result is the scalar one */
        float *restrict w = c->master ? c->master + (a - c->lo) : m->params + a;
        const float *restrict g = gs + (a - c->lo);
        float *restrict am = c->adam_m + (a - c->lo), *restrict av = c->adam_v + (a - c->lo);
        const double wd = c->decay[i] ? cfg->weight_decay : 0.0;
        const int64_t len = e - a;
#pragma omp parallel for if (len >= gp_par_min()) schedule(static)
        for (int64_t k = 0; k < len; k++) {
            double gk = g[k] * scale;
            am[k] = (float)(BETA1 * am[k] + (1 - BETA1) * gk);
            av[k] = (float)(BETA2 * av[k] + (1 - BETA2) * gk * gk);
            double upd = (am[k] / bc1) / (sqrt(av[k] / bc2) + ADAM_EPS);
            w[k] = (float)(w[k] - lr * wd * w[k] - lr * upd);
        }
    }
}

/* Train-mode forward of this rank's triplets [j0, j1) (texts: b queries, b positives, b
 * negatives): their 3·(j1 − j0) embeddings into emb's rows (laid out as texts) or, with emb
 * NULL, into e3 [queries, positives, negatives of the micro-batch]. The model keeps the
 * activations for a backward of exactly this micro-batch. */
static void micro_forward(gp_model *m, const char **texts, int b, int j0, int j1, int max_len, float *emb, float *e3) {
    const int k = j1 - j0, D = gp_model_dim(m);
    const char **mt = gp_malloc((size_t)3 * k * sizeof(char *));
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < k; i++) mt[g * k + i] = texts[g * b + j0 + i];
    gp_batch batch;
    gp_tokenizer_batch(m->tok, mt, 3 * k, max_len, &batch);
    float *out = e3 ? e3 : gp_malloc((size_t)3 * k * D * sizeof(float));
    gp_model_forward(m, &batch, out);
    gp_batch_free(&batch);
    if (emb)
        for (int g = 0; g < 3; g++)
            memcpy(emb + ((size_t)g * b + j0) * D, out + (size_t)g * k * D, (size_t)k * D * sizeof(float));
    if (!e3) free(out);
    free(mt);
}

static gp_status step(rt_ctx *c, gp_infonce *L, double *loss_out, double *gnorm_out, gp_err *err) {
    const gp_train_opts *cfg = c->cfg;
    gp_model *m = c->m;
    const int P = gp_nranks(), rank = gp_rank(), D = gp_model_dim(m), B = cfg->batch;
    const int64_t lo = (int64_t)B * rank / P, hi = (int64_t)B * (rank + 1) / P;
    const int b = (int)(hi - lo);
    const int64_t first = (int64_t)c->step * B;
    gp_triplet *t = gp_calloc((size_t)(b ? b : 1), sizeof *t);
    const char **texts = gp_malloc((size_t)(3 * b + 1) * sizeof(char *));
    char **owned = gp_calloc((size_t)(b ? b : 1), sizeof(char *));
    gp_status rc = GP_OK;
    for (int i = 0; i < b && !rc; i++) rc = gp_corpus_read(&c->corp, stream(c, first + lo + i), &t[i], err);
    const char *prefix = c->prefix;
    float *emb = gp_malloc((size_t)(3 * b + 1) * D * sizeof(float));
    /* micro-batches of u triplets: each is forwarded for its embeddings, and once the loss of the
     * whole batch is known forwarded again and back-propagated (the same forward, so the same
     * activations); u = b keeps today's single forward and backward */
    const int u = cfg->micro_batch > 0 && cfg->micro_batch < b ? cfg->micro_batch : b;
    const int max_len = cfg->max_length < m->max_length ? cfg->max_length : m->max_length;
    int32_t *rows_all = NULL; /* the token-embedding rows every micro-batch's backward touched */
    int nrows_all = 0;
    gp_model_zero_grad(m);
    if (!rc && b > 0) {
        for (int i = 0; i < b; i++) {
            if (prefix && *prefix) {
                owned[i] = gp_malloc(strlen(prefix) + strlen(t[i].query) + 1);
                strcpy(owned[i], prefix);
                strcat(owned[i], t[i].query);
                texts[i] = owned[i];
            } else {
                texts[i] = t[i].query;
            }
            texts[b + i] = t[i].positive;
            texts[2 * b + i] = t[i].negative;
        }
        for (int j0 = 0; j0 < b; j0 += u) micro_forward(m, texts, b, j0, j0 + u < b ? j0 + u : b, max_len, emb, NULL);
    }
    /* every rank's flag, before the collectives of the step */
    if (gp_allreduce_max_int(rc != GP_OK)) {
        rc = gp_agree(rc, err);
        goto done;
    }
    {
        /* the whole batch's embeddings everywhere: queries, positives, negatives */
        float *q = gp_allgather_rows_f32(emb, b, D, NULL);
        float *p = gp_allgather_rows_f32(emb + (size_t)b * D, b, D, NULL);
        float *n = gp_allgather_rows_f32(emb + (size_t)2 * b * D, b, D, NULL);
        float *docs = gp_malloc((size_t)2 * B * D * sizeof(float));
        memcpy(docs, p, (size_t)B * D * sizeof(float));
        memcpy(docs + (size_t)B * D, n, (size_t)B * D * sizeof(float));
        *loss_out = gp_infonce_forward(L, q, docs, B, 2 * B, D, GP_INFONCE_SCALE);
        float *dq = gp_calloc((size_t)B * D, sizeof(float)), *dd = gp_calloc((size_t)2 * B * D, sizeof(float));
        gp_infonce_backward(L, dq, dd);
        /* back through this rank's own rows only */
        float *demb = gp_malloc((size_t)(3 * b + 1) * D * sizeof(float));
        memcpy(demb, dq + lo * D, (size_t)b * D * sizeof(float));
        memcpy(demb + (size_t)b * D, dd + lo * D, (size_t)b * D * sizeof(float));
        memcpy(demb + (size_t)2 * b * D, dd + ((int64_t)B + lo) * D, (size_t)b * D * sizeof(float));
        if (c->gsum) memset(c->gsum, 0, (size_t)(c->hi - c->lo) * sizeof(float));
        int backwards = 0;
        if (b > 0 && u == b) {
            gp_model_backward(m, demb); /* the single forward's activations are still there */
            backwards = 1;
        } else if (b > 0) {
            float *e3 = gp_malloc((size_t)3 * u * D * sizeof(float));
            for (int j0 = 0; j0 < b; j0 += u) {
                const int j1 = j0 + u < b ? j0 + u : b, k = j1 - j0;
                micro_forward(m, texts, b, j0, j1, max_len, NULL, e3);
                for (int g = 0; g < 3; g++) /* this micro-batch's rows of demb, as micro_forward lays them out */
                    memcpy(e3 + (size_t)g * k * D, demb + ((size_t)g * b + j0) * D, (size_t)k * D * sizeof(float));
                gp_model_backward(m, e3);
                const int32_t *r = NULL;
                const int nr = gp_model_touched_rows(m, &r);
                rows_all = gp_realloc(rows_all, (size_t)(nrows_all + nr + 1) * sizeof(int32_t));
                memcpy(rows_all + nrows_all, r, (size_t)nr * sizeof(int32_t));
                nrows_all += nr;
                backwards++;
            }
            free(e3);
        }
        /* gradients: every backward's block reductions are collective, so a rank with fewer
         * micro-batches (or none) joins the others' with zeros */
        if (c->gsum) {
            for (int k = gp_allreduce_max_int(backwards) - backwards; k > 0; k--) blocks_without_backward(c);
            const int32_t *rows = NULL;
            int nr = b > 0 ? gp_model_touched_rows(m, &rows) : 0;
            if (u < b) rows = rows_all, nr = nrows_all; /* every micro-batch's rows */
            outer_reduce(c, rows, nr);
        }
        free(q), free(p), free(n), free(docs), free(dq), free(dd), free(demb);
    }
    double t_ar = gp_now();
    if (!c->gsum) {
        /* the token-embedding gradient (a third to a half of all weights) is zero outside the
         * rows of the step's tokens: only those rows travel */
        const gp_param *e = &m->table.p[m->tok_emb];
        const int32_t *rows = NULL;
        int nr = b > 0 ? gp_model_touched_rows(m, &rows) : 0;
        if (u < b) rows = rows_all, nr = nrows_all; /* every micro-batch's rows (repeats allowed) */
        gp_allreduce_sum_f32(m->grads, e->offset);
        gp_allreduce_sum_rows_f32(m->grads + e->offset, e->shape[0], e->shape[1], rows, nr);
        gp_allreduce_sum_f32(m->grads + e->offset + e->numel, m->table.total - e->offset - e->numel);
        gp_model_grads_changed(m); /* other ranks' rows are in the gradient now */
    }
    c->allreduce_s += gp_now() - t_ar;
    float *gs = c->gsum ? c->gsum : m->grads + c->lo; /* the summed gradient of [lo, hi) */
    const double t_up = gp_now();
    /* pruned weights: zero gradient, so zero moments */
    if (c->mask) gp_mask_clear_range(c->mask, m, gs, c->lo, c->hi);
    const double gn = grad_norm(c, gs), scale = cfg->grad_clip > 0 && gn > cfg->grad_clip ? cfg->grad_clip / gn : 1.0;
    *gnorm_out = gn;
    const int t1 = c->step + 1;
    const double lr = gp_lr_at(t1, cfg->steps, cfg->warmup, cfg->lr);
    adamw(c, gs, t1, lr, scale);
    if (c->mask) gp_mask_clear_range(c->mask, m, c->master ? c->master : m->params + c->lo, c->lo, c->hi);
    c->update_s += gp_now() - t_up;
    t_ar = gp_now();
    if (c->master) publish(c);
    else if (c->sharding != GP_SHARD_NONE) gp_allgather_blocks_f32(m->params, c->bounds);
    c->allreduce_s += gp_now() - t_ar;
    c->lr[c->step] = lr;
done:
    free(rows_all);
    for (int i = 0; i < b; i++) {
        gp_triplet_free(&t[i]);
        free(owned[i]);
    }
    free(t), free(texts), free(owned), free(emb);
    return rc;
}

static void free_ctx(rt_ctx *c) {
    gradients_end(c);
    gp_corpus_free(&c->corp);
    free(c->perm), free(c->adam_m), free(c->adam_v), free(c->master), free(c->decay), free(c->loss), free(c->lr), free(c->gnorm);
    free(c->bounds), free(c->part), free(c->prev_path);
}

void gp_train_opts_retrain(const gp_job *job, gp_train_opts *o) {
    *o = (gp_train_opts){.corpus = job->data.domain, .max_samples = job->data.max_samples, .seed = job->data.seed,
                         .skip_bad = job->data.on_bad_record == GP_BAD_SKIP, .steps = job->retrain.steps,
                         .warmup = job->retrain.warmup, .batch = job->retrain.batch, .micro_batch = job->retrain.micro_batch,
                         .checkpoint_every = job->retrain.checkpoint_every, .max_length = job->model.max_length,
                         .lr = job->retrain.lr, .weight_decay = job->retrain.weight_decay, .grad_clip = job->retrain.grad_clip,
                         .sharding = job->retrain.optimizer_sharding, .activations = job->model.activations,
                         .query_instruction = job->model.query_instruction, .what = "[data] domain", .job_path = job->path,
                         .batch_origin = gp_job_origin(job, "retrain", "batch")};
}

void gp_train_opts_train(const gp_job *job, gp_train_opts *o) {
    *o = (gp_train_opts){.corpus = job->train.corpus, .max_samples = INT64_MAX / 4, .seed = job->data.seed,
                         .skip_bad = job->data.on_bad_record == GP_BAD_SKIP, .steps = job->train.steps,
                         .warmup = job->train.steps / 10, .batch = job->train.batch, .checkpoint_every = 200,
                         .max_length = job->model.max_length, .lr = job->train.lr, .weight_decay = 0.01, .grad_clip = 1.0,
                         .sharding = GP_SHARD_AUTO, .activations = job->model.activations, .query_instruction = job->model.query_instruction, .what = "[train] corpus", .job_path = job->path,
                         .batch_origin = gp_job_origin(job, "train", "batch")};
}

gp_status gp_retrain(const gp_train_opts *cfg, gp_model *m, const gp_mask *mask, const char *tag, const char *log_path,
                     const char *base_hash, gp_retrain_report *rep, gp_err *err) {
    memset(rep, 0, sizeof *rep);
    double t0 = gp_now();
    rt_ctx c = {.cfg = cfg, .m = m, .mask = mask, .epoch = -1, .log_path = log_path,
                .prefix = cfg->query_instruction && *cfg->query_instruction ? cfg->query_instruction
                          : m->query_prompt                                 ? m->query_prompt
                                                                            : ""};
    c.corp.fd = -1;
    c.prev_path = gp_checkpoint_prev_path(log_path);
    gp_status rc = GP_OK;
    if (!cfg->corpus || !*cfg->corpus) rc = gp_errf(err, GP_EINPUT, "%s: %s must name the training triplets", cfg->job_path, cfg->what);
    if (!rc && gp_rank() == 0) rc = gp_corpus_index(cfg->corpus, cfg->max_samples, (uint64_t)cfg->seed, cfg->skip_bad, &c.corp, err);
    /* a batch larger than the corpus holds a triplet twice (its copy becomes one of its in-batch
     * negatives): the run still trains, so a warning that says so, not an error */
    if (!rc && gp_rank() == 0 && cfg->batch > c.corp.n_selected)
        gp_warn("%s: batch = %d is more than the %lld triplets of %s (%s): every batch repeats triplets, and a "
                "repeated triplet's copy is among its negatives; continuing",
                cfg->batch_origin ? cfg->batch_origin : cfg->job_path, cfg->batch, (long long)c.corp.n_selected, cfg->corpus,
                cfg->what);
    if ((rc = gp_agree(rc, err))) {
        free_ctx(&c);
        return rc;
    }
    gp_corpus_bcast(&c.corp, 0);
    /* what the result depends on. Not the rank count nor retrain.optimizer_sharding: they change
     * only the order in which the ranks' gradients are summed (states not even that), so a run
     * resumes from a checkpoint of any of them, with weights within rounding of an unbroken one */
    char settings[2048];
    snprintf(settings, sizeof settings,
             "gaprune-retrain v1; base %s; corpus %s; max_samples %lld; seed %lld; steps %d; lr %.17g; warmup %d; "
             "weight_decay %.17g; batch %d; grad_clip %.17g; max_length %d; query_instruction %s%s%s%s",
             base_hash, c.corp.sha256, (long long)cfg->max_samples, (long long)cfg->seed, cfg->steps, cfg->lr, cfg->warmup,
             cfg->weight_decay, cfg->batch, cfg->grad_clip, cfg->max_length, c.prefix, gp_compute_tag(),
             /* 16-bit weights compute with the rounded master weights: another result (f32's hash as before) */
             m->wdtype == GP_DT_F32 ? "" : "; weights ", m->wdtype == GP_DT_F32 ? "" : gp_dtype_name(m->wdtype));
    gp_sha256 *h = gp_sha256_init();
    gp_sha256_update(h, settings, strlen(settings));
    gp_sha256_final(h, c.hash);
    const int S = cfg->steps;
    c.perm = gp_malloc((size_t)c.corp.n_selected * sizeof(int64_t));
    ask_share(&c);
    choose_shards(&c);
    /* one rank has nothing to shard: its slice's sum would be every gradient again */
    if (c.sharding == GP_SHARD_GRADIENTS && gp_nranks() > 1 && !gradients_begin(&c)) {
        gp_warn("retrain %s: the blocks of %s differ in size (%s), so their gradients cannot share the windows of "
                "optimizer_sharding = gradients: states instead (every gradient on every rank)",
                tag, m->dir, GP_CONFIG_INTER_SIZES);
        c.sharding = GP_SHARD_STATES; /* the same slices */
    }
    c.adam_m = gp_calloc((size_t)(c.hi - c.lo + 1), sizeof(float));
    c.adam_v = gp_calloc((size_t)(c.hi - c.lo + 1), sizeof(float));
    if (m->wdtype != GP_DT_F32) {
        c.master = gp_malloc((size_t)(c.hi - c.lo + 1) * sizeof(float));
        gp_model_weights_get(m, (size_t)c.lo, (size_t)(c.hi - c.lo), c.master);
    }
    rep->sharding = c.sharding;
    rep->lean = choose_activations(&c);
    c.decay = gp_malloc((size_t)m->table.n);
    for (int i = 0; i < m->table.n; i++) c.decay[i] = m->table.p[i].ndim == 2;
    c.loss = gp_calloc((size_t)S + 1, sizeof(double));
    c.lr = gp_calloc((size_t)S + 1, sizeof(double));
    c.gnorm = gp_calloc((size_t)S + 1, sizeof(double));
    int64_t resumed = 0;
    if ((rc = gp_agree(try_resume(&c, &resumed, err), err))) {
        free_ctx(&c);
        return rc;
    }
    if (resumed < 0) {
        gp_log0("retrain %s: %s is complete for these settings; weights loaded from it", tag, log_path);
        rep->up_to_date = true;
        rep->first_loss = c.loss[0], rep->last_loss = c.loss[S - 1];
        free_ctx(&c);
        return GP_OK;
    }
    if (resumed > 0) gp_log0("retrain %s: resuming from step %lld (%s)", tag, (long long)resumed, log_path);
    gp_log0("retrain %s: %d steps of %d triplets (%d per rank) from %lld domain triplets, lr %g, warm-up %d, weight "
            "decay %g, clip %g, optimizer sharding %s",
            tag, S, cfg->batch, cfg->batch / gp_nranks(), (long long)c.corp.n_selected, cfg->lr, cfg->warmup,
            cfg->weight_decay, cfg->grad_clip, gp_optimizer_sharding_name(c.sharding));
    if (cfg->batch < gp_nranks()) gp_warn("a batch of %d is smaller than the %d ranks: some ranks idle", cfg->batch, gp_nranks());

    gp_stop_watch stop;
    gp_stop_begin(&stop);
    const int64_t sig_at = gp_testhook_get()->signal_at_step;
    gp_infonce L = {0};
    int start = c.step;
    double t_loop = gp_now();
    bool stopped = false;
    while (c.step < S && !rc) {
        if (sig_at == c.step && gp_rank() == 0) raise(SIGUSR1);
        double loss = 0, gn = 0;
        if ((rc = step(&c, &L, &loss, &gn, err))) break;
        c.loss[c.step] = loss;
        c.gnorm[c.step] = gn;
        c.step++;
        double per = (gp_now() - t_loop) / (c.step - start);
        gp_log0("[retrain %s] step %d/%d loss %.5f lr %.3g |g| %.4g (%.2f s/step, ETA %.0fs)", tag, c.step, S, loss,
                c.lr[c.step - 1], gn, per, per * (S - c.step));
        if (gp_allreduce_max_int(gp_stop_requested())) {
            stopped = true;
            break;
        }
        if (c.step % cfg->checkpoint_every == 0 && c.step < S) rc = checkpoint(&c, false, err);
    }
    rep->loop_seconds = gp_now() - t_loop;
    rep->allreduce_seconds = c.allreduce_s;
    rep->update_seconds = c.update_s;
    gp_stop_end(&stop);
    gp_infonce_free(&L);
    if (!rc && stopped) {
        rc = checkpoint(&c, false, err);
        if (!rc) {
            gp_log0("retrain %s: stopped by a signal after step %d of %d; checkpoint in %s; rerun to resume", tag, c.step, S,
                    log_path);
            rc = GP_ESTOPPED;
        }
    } else if (!rc) {
        rc = checkpoint(&c, true, err);
    }
    rep->steps = c.step - start;
    rep->seconds = gp_now() - t0;
    rep->first_loss = c.loss[0];
    rep->last_loss = c.step ? c.loss[c.step - 1] : NAN;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    rep->peak_rss_mb = gp_allreduce_max_f64((double)ru.ru_maxrss / 1024.0);
    free_ctx(&c);
    gp_model_release_buffers(m); /* the training-mode activations: evaluation needs far less */
    return rc;
}
