/* stats.c — the distributed statistics pass (see stats.h). */
#include "gaprune/stats.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gaprune/provenance.h"
#include "gaprune/checkpoint.h"
#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/h5par.h"
#include "gaprune/hash.h"
#include "gaprune/log.h"
#include "gaprune/loss.h"
#include "gaprune/sample.h"
#include "gaprune/stats_file.h"
#include "gaprune/stop.h"
#include "gaprune/testhook.h"
#include "gaprune/triplets.h"

static const char *k_corpus[2] = {GP_STATS_DOMAIN, GP_STATS_GENERAL}; /* also the stats.h5 groups */

typedef struct {
    const gp_stats_opts *o;
    const gp_sample_report *sample; /* the samples the statistics read, or NULL: the corpora */
    gp_model *m;
    int rank, P, max_len, fb;
    gp_corpus corp[2];
    int64_t U[2], lo[2], hi[2], S[2]; /* units, this rank's block [lo, hi), lockstep steps */
    size_t n;                         /* elements of the selected tensors */
    bool sharded;                     /* stats.accumulators: each rank keeps F and G of its block only */
    int64_t *bounds;                  /* [P + 1] element offsets of the owners' blocks (row-aligned) */
    size_t na;                        /* accumulator length here: n, or this rank's block */
    int64_t *sel_off;                 /* per parameter: offset into F and G when prune.layers selects it, else -1 */
    bool *sel;                        /* per parameter: selected (the only gradients formed) */
    size_t win;                       /* one transformer block's selected elements: block l is
                                       * [l·win, (l+1)·win) of the selected vector, and its
                                       * gradients live in window l % nwin of m->grads */
    int nwin;                         /* gradient windows: 1 replicated, 2 sharded (one block's
                                       * reductions travel while the next block's backward runs) */
    float *sq;                        /* sharded: [nwin·win] the squared gradients being sent */
    gp_reduce_pending pend[2];        /* sharded: reductions in flight from each window */
    int cur;                          /* the corpus of the unit in backward (for the hooks) */
    float *F[2], *G[2];               /* accumulators [na]: the selected tensors in table order, or this
                                       * rank's block of them */
    double *act; /* Σ x² per input feature of every selected linear weight; double, because each sums
                  * every token of the corpus, and in float the result moved with the rank count
                  * (1e-5 relative on 16 ranks) while the buffer is only the size of the inputs */
    size_t nact;
    int64_t *act_off; /* per parameter: offset into act, or -1 */
    /* MLP neurons, when prune.layers selects every block's down projection: down[l] is block l's
     * (its table index), nI the neurons of a block (0: no neuron statistics), and per corpus
     * NF = Σ_units d², NG = Σ_units d of the gate derivatives d [layers·nI] (gate_derivatives);
     * double, because they are few and each sums every unit of the corpus */
    int *down;
    int64_t nI;
    double *NF[2], *NG[2], *dgate;
    double loss_sum[2];
    int64_t units_done[2], trip_done[2]; /* this rank's partial counts */
    int64_t step;                        /* steps completed */
    char model_sha[65], settings[65];
    char *stats_path, *ranks_dir;
    int checkpoints_written;
    double t_allreduce, t_checkpoint, t_write;
    double t_comm; /* sharded: time in the per-block reductions (posting, progress, waits) */
    double share;  /* this rank's share of its node's memory, asked once where an auto setting needs it, else 0 */
} stats_ctx;

/* ---- hashes ----------------------------------------------------------------------------- */

/* What the statistics depend on; a stats.h5 or a checkpoint with another hash is stale. */
static void settings_hash(stats_ctx *s) {
    char buf[1024];
    /* With a sample, the corpus hashes are the sample files' and the sample settings are named
     * too, so statistics of the whole corpora (or of another sample) are never taken for these. */
    char sample[160] = "sample none";
    if (s->sample)
        snprintf(sample, sizeof sample, "sample %s %s", s->sample->settings_hash[0], s->sample->settings_hash[1]);
    snprintf(buf, sizeof buf,
             "gaprune-stats v%d; model %s; domain %s; general %s; max_samples %lld; seed %lld; on_bad_record %d; "
             "fisher_batch %d; max_length %d; scale %g; %s; layers %s%s",
             GP_STATS_FORMAT_VERSION, s->model_sha, s->corp[0].sha256, s->corp[1].sha256, (long long)s->o->max_samples,
             (long long)s->o->seed, (int)s->o->skip_bad, s->fb, s->max_len, (double)GP_INFONCE_SCALE, sample, gp_layers_name(s->o->layers),
             gp_compute_tag());
    gp_sha256 *h = gp_sha256_init();
    gp_sha256_update(h, buf, strlen(buf));
    gp_sha256_final(h, s->settings);
}

/* ---- accumulation ------------------------------------------------------------------------- */

typedef struct {
    stats_ctx *s;
} act_ctx;

static void add_act(void *vctx, int param, const float *x, int N, int in) {
    stats_ctx *s = ((act_ctx *)vctx)->s;
    if (s->act_off[param] < 0) return; /* not selected */
    double *a = s->act + s->act_off[param];
    for (int t = 0; t < N; t++) {
        const float *r = x + (size_t)t * in;
        for (int k = 0; k < in; k++) a[k] += (double)r[k] * r[k];
    }
}

static void record_act_layout(void *vctx, int param, const float *x, int N, int in) {
    (void)x, (void)N;
    stats_ctx *s = ((act_ctx *)vctx)->s;
    if (s->act_off[param] >= 0 || !s->sel[param]) return;
    s->act_off[param] = (int64_t)s->nact;
    s->nact += (size_t)in;
}

/* ---- per-block accumulation, as backward finishes each block (gp_grad_hooks) ---------------- */

/* Before block l's gradients are written into window l % nwin: the reductions still reading
 * that window (block l + nwin's) must be done (the model then zeroes the window). */
static void block_begin(void *vctx, int layer) {
    stats_ctx *s = vctx;
    if (!s->sharded) return;
    double t0 = gp_now();
    gp_reduce_add_wait(&s->pend[layer % s->nwin]);
    s->t_comm += gp_now() - t0;
}

/* The derivative of the loss with respect to a gate multiplying the output of MLP neuron j, at
 * gate 1, for every j: neuron j's activation a_tj reaches the loss only through column j of the
 * down projection W [rows, I], so ∂L/∂gate_j = Σ_t Σ_o ∂L/∂y_to W_oj a_tj = Σ_o W_oj ∂L/∂W_oj
 * with g = ∂L/∂W, exactly: no extra pass, no change to the model. Each d_j is summed over o in
 * order, in double, whatever the threads. */
static void gate_derivatives(const float *W, const float *g, int64_t rows, int64_t I, double *d) {
    enum { JB = 256 };
#pragma omp parallel for if (rows * I >= 32768) schedule(static)
    for (int64_t j0 = 0; j0 < I; j0 += JB) {
        const int64_t j1 = j0 + JB < I ? j0 + JB : I;
        for (int64_t j = j0; j < j1; j++) d[j] = 0;
        for (int64_t o = 0; o < rows; o++) {
            const float *w = W + o * I, *go = g + o * I;
            for (int64_t j = j0; j < j1; j++) d[j] += (double)w[j] * go[j];
        }
    }
}

/* Block l's neurons: Φ += d², Σd += d for this rank's unit (a rank without one adds zeros);
 * like F these are sums over units, each rank its own, summed over ranks at the end. */
static void add_gates(stats_ctx *s, int layer, const float *g) {
    const int i = s->down[layer];
    const int64_t I = s->nI;
    const float *gw = g + (s->sel_off[i] - (int64_t)layer * (int64_t)s->win);
    gate_derivatives(gp_model_w(s->m, i), gw, s->m->table.p[i].shape[0], I, s->dgate);
    double *F = s->NF[s->cur] + layer * I, *G = s->NG[s->cur] + layer * I;
    for (int64_t j = 0; j < I; j++) F[j] += s->dgate[j] * s->dgate[j], G[j] += s->dgate[j];
}

/* Block l's gradients are final. Replicated: F += g², G += g for the block on this rank.
 * Sharded (collective, every rank in the same block order; a rank without a unit sends
 * zeros): the sums over ranks of g and g² start towards the owners of the block's elements,
 * and travel while the backward of the blocks below runs. Elementwise, so threads change no
 * result. */
static void block_done(void *vctx, int layer) {
    stats_ctx *s = vctx;
    const int w = layer % s->nwin;
    const int64_t a = (int64_t)layer * (int64_t)s->win, n = (int64_t)s->win;
    float *g = s->m->grads + (size_t)w * s->win;
    if (s->nI) add_gates(s, layer, g);
    if (!s->sharded) {
        float *F = s->F[s->cur] + a, *G = s->G[s->cur] + a;
#pragma omp parallel for if (n >= 32768) schedule(static)
        for (int64_t k = 0; k < n; k++) F[k] += g[k] * g[k], G[k] += g[k];
        return;
    }
    double t0 = gp_now();
    float *sq = s->sq + (size_t)w * s->win;
#pragma omp parallel for if (n >= 32768) schedule(static)
    for (int64_t k = 0; k < n; k++) sq[k] = g[k] * g[k];
    gp_reduce_add_start(g, a, a + n, s->bounds, s->G[s->cur], &s->pend[w]);
    gp_reduce_add_start(sq, a, a + n, s->bounds, s->F[s->cur], &s->pend[w]);
    gp_reduce_add_progress(&s->pend[(w + 1) % s->nwin]);
    s->t_comm += gp_now() - t0;
}

/* Sharded, a rank without a unit this step: its part of every block's reductions, with zero
 * gradients, in the order backward would have run them. */
static void blocks_without_unit(stats_ctx *s, int c) {
    s->cur = c;
    gp_model_zero_grad(s->m); /* allocates the windows the first time */
    for (int l = s->m->cfg.layers - 1; l >= 0; l--) {
        gp_model_layer_begin(s->m, l);
        gp_model_layer_done(s->m, l);
    }
}

/* Every reduction in flight has landed in F and G (before they are read or saved). */
static void reductions_wait(stats_ctx *s) {
    double t0 = gp_now();
    for (int w = 0; w < 2; w++) gp_reduce_add_wait(&s->pend[w]);
    s->t_comm += gp_now() - t0;
}

/* One gradient unit's triplets: [first, first + b) of corpus c, read before the step's
 * agreement, so that a bad record stops every rank before the collective per-block reductions
 * of backward begin. */
typedef struct {
    int c, b;
    gp_triplet *t;
} unit_in;

static gp_status load_unit(stats_ctx *s, int c, int64_t unit, unit_in *u, gp_err *err) {
    int64_t first = unit * s->fb;
    u->c = c;
    u->b = (int)(s->corp[c].n_selected - first < s->fb ? s->corp[c].n_selected - first : s->fb);
    u->t = gp_calloc((size_t)u->b, sizeof *u->t);
    gp_status rc = GP_OK;
    for (int i = 0; i < u->b && !rc; i++) rc = gp_corpus_read(&s->corp[c], first + i, &u->t[i], err);
    return rc;
}

static void unit_free(unit_in *u) {
    for (int i = 0; i < u->b; i++) gp_triplet_free(&u->t[i]);
    free(u->t);
    memset(u, 0, sizeof *u);
}

/* Forward and backward of one unit; the block hooks accumulate its gradients (collective in
 * sharded mode). */
static void run_unit(stats_ctx *s, const unit_in *u, gp_infonce *L) {
    gp_model *m = s->m;
    const int b = u->b, c = u->c;
    const char **texts = gp_malloc((size_t)(3 * b) * sizeof(char *));
    for (int i = 0; i < b; i++) {
        texts[i] = u->t[i].query;
        texts[b + i] = u->t[i].positive;
        texts[2 * b + i] = u->t[i].negative;
    }
    gp_batch batch;
    gp_tokenizer_batch(m->tok, texts, 3 * b, s->max_len, &batch);
    const int D = gp_model_dim(m);
    float *emb = gp_malloc((size_t)(3 * b) * D * sizeof(float));
    float *demb = gp_calloc((size_t)(3 * b) * D, sizeof(float));
    gp_model_zero_grad(m);
    gp_model_forward(m, &batch, emb);
    float loss = gp_infonce_forward(L, emb, emb + (size_t)b * D, b, 2 * b, D, GP_INFONCE_SCALE);
    gp_infonce_backward(L, demb, demb + (size_t)b * D);
    s->cur = c;
    gp_model_backward(m, demb);
    if (c == 0) {
        act_ctx a = {s};
        gp_model_each_linear_input(m, add_act, &a);
    }
    s->loss_sum[c] += loss;
    s->units_done[c]++;
    s->trip_done[c] += b;
    free(emb);
    free(demb);
    gp_batch_free(&batch);
    free(texts);
}

/* ---- checkpoints -------------------------------------------------------------------------- */

/* This rank's checkpoint, stats.ranks/rank-R.h5 (the one before it: gp_checkpoint_prev_path). */
static char *rank_file(const stats_ctx *s, int rank) {
    char name[64];
    snprintf(name, sizeof name, "rank-%d.h5", rank);
    return gp_path_join(s->ranks_dir, name);
}

static void write_counters(hid_t f, const stats_ctx *s) {
    const double d[2] = {s->loss_sum[0], s->loss_sum[1]};
    gp_checkpoint_write(f, "loss_sum", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d, 2,
                        "this rank's sum of its units' losses (domain, general)", "nats");
    const int64_t cnt[4] = {s->units_done[0], s->units_done[1], s->trip_done[0], s->trip_done[1]};
    gp_checkpoint_write(f, "counts", H5T_STD_I64LE, H5T_NATIVE_INT64, cnt, 4,
                        "units done (domain, general), triplets done (domain, general)", "1");
}

/* Collective; returns a status agreed by every rank (errors already reported). */
static gp_status checkpoint(stats_ctx *s, gp_err *err) {
    reductions_wait(s);
    double t0 = gp_now();
    char *cur = rank_file(s, s->rank), *prev = gp_checkpoint_prev_path(cur);
    hid_t f = gp_h5_create_tmp(cur);
    gp_h5_attr_str(f, "format", "gaprune-stats-checkpoint");
    gp_h5_attr_str(f, GP_CHECKPOINT_ATTR_SETTINGS, s->settings);
    gp_h5_attr_int(f, "rank", s->rank);
    gp_h5_attr_int(f, "n_ranks", s->P);
    gp_h5_attr_int(f, GP_CHECKPOINT_ATTR_STEP, s->step);
    /* what the arrays are: a copy of everything, or this rank's block (a resume must match) */
    gp_h5_attr_str(f, "accumulators", s->sharded ? "sharded" : "replicated");
    gp_h5_attr_int(f, "block_start", s->sharded ? s->bounds[s->rank] : 0);
    /* A corpus not started yet has all-zero accumulators: nothing to write. */
    for (int c = 0; c < 2; c++) {
        if (!s->units_done[c]) continue;
        char name[64];
        snprintf(name, sizeof name, "%s_fisher_sum", k_corpus[c]);
        gp_checkpoint_write(f, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, s->F[c], s->na,
                            "this rank's sum of g^2 over its units (replicated) or over every rank's units for its "
                            "block (sharded), selected tensors in parameter-table order",
                            "1");
        snprintf(name, sizeof name, "%s_grad_sum", k_corpus[c]);
        gp_checkpoint_write(f, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, s->G[c], s->na,
                            "this rank's sum of g over its units (replicated) or over every rank's units for its "
                            "block (sharded), selected tensors in parameter-table order",
                            "1");
        if (!s->nI) continue;
        const size_t nn = (size_t)s->m->cfg.layers * (size_t)s->nI;
        snprintf(name, sizeof name, "%s_neuron_fisher_sum", k_corpus[c]);
        gp_checkpoint_write(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s->NF[c], nn,
                            "this rank's sum over its units of the squared gate derivative of every MLP neuron", "1");
        snprintf(name, sizeof name, "%s_neuron_grad_sum", k_corpus[c]);
        gp_checkpoint_write(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s->NG[c], nn,
                            "this rank's sum over its units of the gate derivative of every MLP neuron", "1");
    }
    gp_checkpoint_write(f, "activation_sq_sum", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s->act, s->nact,
                        "this rank's sum of x^2 per linear-layer input feature", "1");
    write_counters(f, s);
    gp_checkpoint_seal(f);
    /* every rank's file in place (the old one becomes .prev), then rank 0 names the step in `latest` */
    gp_status rc = gp_checkpoint_commit(f, cur, prev, err);
    free(cur), free(prev);
    if (rc) return rc;
    rc = gp_checkpoint_mark_latest(s->ranks_dir, s->step, s->settings, s->P, err);
    s->t_checkpoint += gp_now() - t0;
    s->checkpoints_written++;
    if (gp_testhook_get()->kill_after_checkpoint == s->checkpoints_written && s->rank == 0) {
        gp_log0("test hook: SIGKILL after checkpoint %d (step %lld)", s->checkpoints_written, (long long)s->step);
        raise(SIGKILL);
    }
    return rc;
}

static void zero_accumulators(stats_ctx *s) {
    for (int c = 0; c < 2; c++) {
        memset(s->F[c], 0, s->na * sizeof(float));
        memset(s->G[c], 0, s->na * sizeof(float));
        if (s->nI) {
            memset(s->NF[c], 0, (size_t)s->m->cfg.layers * (size_t)s->nI * sizeof(double));
            memset(s->NG[c], 0, (size_t)s->m->cfg.layers * (size_t)s->nI * sizeof(double));
        }
        s->loss_sum[c] = 0;
        s->units_done[c] = s->trip_done[c] = 0;
    }
    memset(s->act, 0, s->nact * sizeof(double));
    s->step = 0;
}

/* Units and triplets of corpus c this rank has done once `step` lockstep steps are: what a
 * checkpoint of that step must say (a damaged one that said otherwise would end the pass with
 * counts that do not add up, or scale the sums wrongly). */
static void done_at(const stats_ctx *s, int c, int64_t step, int64_t *units, int64_t *trips) {
    const int64_t steps = c == 0 ? step : step - s->S[0], mine = s->hi[c] - s->lo[c];
    *units = steps < 0 ? 0 : steps < mine ? steps : mine;
    const int64_t end = (s->lo[c] + *units) * s->fb;
    *trips = *units ? (end < s->corp[c].n_selected ? end : s->corp[c].n_selected) - s->lo[c] * s->fb : 0;
}

/* This rank's checkpoint (its settings and step checked by gp_checkpoint_resume), when it holds
 * what this rank keeps, its rank's copy or block of the accumulators, with the counts of its
 * step. A checkpoint is written before the last step: a later one is not of this pass. */
static gp_status load_checkpoint_file(hid_t f, void *vctx) {
    stats_ctx *s = vctx;
    int64_t step = -1, frank = -1, fstart = -1;
    char *acc = gp_h5_read_attr_str(f, "accumulators");
    gp_status rc = GP_EINPUT;
    const bool same_layout = acc && !strcmp(acc, s->sharded ? "sharded" : "replicated") &&
                             !gp_h5_read_attr_int(f, "block_start", &fstart) &&
                             fstart == (s->sharded ? s->bounds[s->rank] : 0);
    free(acc);
    if (!gp_h5_read_attr_int(f, GP_CHECKPOINT_ATTR_STEP, &step) && step > 0 && step < s->S[0] + s->S[1] &&
        !gp_h5_read_attr_int(f, "rank", &frank) && frank == s->rank && same_layout) {
        /* from zero: a corpus not started has no arrays in the file, and a file that fails half
         * way (then .prev is read) must not leave its arrays behind */
        zero_accumulators(s);
        rc = GP_OK;
        for (int c = 0; c < 2 && !rc; c++) {
            int64_t units, trips;
            done_at(s, c, step, &units, &trips);
            char name[64];
            snprintf(name, sizeof name, "%s_fisher_sum", k_corpus[c]);
            if (H5Lexists(f, name, H5P_DEFAULT) <= 0) { /* a corpus not started, which it must be */
                if (units) rc = GP_EINPUT;
                continue;
            }
            rc = gp_h5_read_f32(f, name, s->F[c], s->na);
            snprintf(name, sizeof name, "%s_grad_sum", k_corpus[c]);
            if (!rc) rc = gp_h5_read_f32(f, name, s->G[c], s->na);
            const size_t nn = (size_t)s->m->cfg.layers * (size_t)s->nI;
            snprintf(name, sizeof name, "%s_neuron_fisher_sum", k_corpus[c]);
            if (!rc && nn) rc = gp_h5_read_f64(f, name, s->NF[c], nn);
            snprintf(name, sizeof name, "%s_neuron_grad_sum", k_corpus[c]);
            if (!rc && nn) rc = gp_h5_read_f64(f, name, s->NG[c], nn);
        }
        if (!rc) rc = gp_h5_read_f64(f, "activation_sq_sum", s->act, s->nact);
        double d[2];
        int64_t cnt[4];
        /* sized reads: the two datasets go into fixed arrays */
        if (!rc && (gp_h5_read_f64(f, "loss_sum", d, 2) || gp_h5_read_i64(f, "counts", cnt, 4))) rc = GP_EINPUT;
        if (!rc) {
            s->loss_sum[0] = d[0], s->loss_sum[1] = d[1];
            s->units_done[0] = cnt[0], s->units_done[1] = cnt[1];
            s->trip_done[0] = cnt[2], s->trip_done[1] = cnt[3];
            for (int c = 0; c < 2 && !rc; c++) {
                int64_t units, trips;
                done_at(s, c, step, &units, &trips);
                if (cnt[c] != units || cnt[2 + c] != trips) rc = GP_EINPUT;
            }
        }
    }
    return rc;
}

/* Collective: the step every rank resumes from (0 when there is nothing to resume). */
static void try_resume(stats_ctx *s) {
    char *cur = rank_file(s, s->rank), *prev = gp_checkpoint_prev_path(cur);
    const int64_t step = gp_checkpoint_resume(s->ranks_dir, cur, prev, s->settings, s->P, load_checkpoint_file, s);
    free(cur), free(prev);
    if (step <= 0) { /* some ranks may have loaded a file before another failed */
        zero_accumulators(s);
        return;
    }
    s->step = step;
    gp_log0("stats: resuming from step %lld (checkpoint in %s)", (long long)step, s->ranks_dir);
}

/* ---- output --------------------------------------------------------------------------------- */

static bool stats_up_to_date(const stats_ctx *s) {
    int ok = 0;
    if (s->rank == 0 && gp_file_exists(s->stats_path)) {
        hid_t f = gp_h5_open_quiet(s->stats_path);
        if (f >= 0) {
            int64_t complete = 0;
            char *hash = gp_h5_read_attr_str(f, GP_STATS_ATTR_SETTINGS_HASH);
            ok = !gp_h5_read_attr_int(f, GP_H5_ATTR_COMPLETE, &complete) && complete == 1 && hash &&
                 !strcmp(hash, s->settings);
            free(hash);
            H5Fclose(f);
        }
    }
    return gp_allreduce_max_int(ok) != 0;
}

/* Collective: the per-tensor cosine of the mean gradients of the selected tensors, on every
 * rank, with their names (cos and names: room for every tensor; returns the count). Each rank
 * sums the products over its block (replicated: rank 0 holds them all), then one allreduce. */
static int alignment_cosines(const stats_ctx *s, double *cos, const char **names) {
    const gp_model *m = s->m;
    const int64_t lo = s->bounds[s->rank], hi = s->bounds[s->rank + 1], base = s->sharded ? lo : 0;
    double *part = gp_calloc((size_t)(3 * m->table.n + 1), sizeof(double));
    int nt = 0;
    for (int i = 0; i < m->table.n; i++) {
        if (s->sel_off[i] < 0) continue;
        const int64_t a = s->sel_off[i] > lo ? s->sel_off[i] : lo;
        const int64_t e = s->sel_off[i] + (int64_t)m->table.p[i].numel < hi ? s->sel_off[i] + (int64_t)m->table.p[i].numel : hi;
        double *d = part + 3 * nt;
        for (int64_t k = a - base; k < e - base; k++) {
            d[0] += (double)s->G[1][k] * s->G[0][k];
            d[1] += (double)s->G[1][k] * s->G[1][k];
            d[2] += (double)s->G[0][k] * s->G[0][k];
        }
        names[nt++] = m->src_names[i];
    }
    gp_allreduce_sum_f64(part, (size_t)(3 * nt));
    for (int t = 0; t < nt; t++) cos[t] = part[3 * t] / (sqrt(part[3 * t + 1]) * sqrt(part[3 * t + 2]) + 1e-12);
    free(part);
    return nt;
}

/* Collective: per MLP neuron [layers·nI], the cosine of G_general and G_domain over the neuron's
 * weights (rows of the up projections, column of the down projection), as alignment_cosines
 * does per tensor: each rank sums its block, then one allreduce. */
static void neuron_cosines(const stats_ctx *s, double *cos) {
    const gp_model *m = s->m;
    const int64_t I = s->nI, nn = (int64_t)m->cfg.layers * I;
    const int64_t lo = s->bounds[s->rank], hi = s->bounds[s->rank + 1], base = s->sharded ? lo : 0;
    double *part = gp_calloc((size_t)(3 * nn), sizeof(double));
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        const gp_neuron_axis ax = s->sel_off[i] < 0 ? GP_NEURON_NONE : gp_model_neuron_axis(m, i, &layer);
        if (ax == GP_NEURON_NONE || layer < 0) continue;
        const int64_t cols = m->table.p[i].shape[1], off = s->sel_off[i];
        const int64_t a = off > lo ? off : lo, e = off + (int64_t)m->table.p[i].numel < hi ? off + (int64_t)m->table.p[i].numel : hi;
        for (int64_t k = a; k < e; k++) {
            const int64_t at = k - off, j = ax == GP_NEURON_ROWS ? at / cols : at % cols;
            double *d = part + 3 * (layer * I + j);
            const double gg = s->G[1][k - base], gd = s->G[0][k - base];
            d[0] += gg * gd, d[1] += gg * gg, d[2] += gd * gd;
        }
    }
    gp_allreduce_sum_f64(part, (size_t)(3 * nn));
    for (int64_t t = 0; t < nn; t++) cos[t] = part[3 * t] / (sqrt(part[3 * t + 1]) * sqrt(part[3 * t + 2]) + 1e-12);
    free(part);
}

/* Rank 0: a [layers, nI] float64 dataset of the neuron statistics. */
static void write_neuron_set(const stats_ctx *s, hid_t loc, const char *name, const double *v, const char *description,
                             const char *units) {
    const hsize_t dims[2] = {(hsize_t)s->m->cfg.layers, (hsize_t)s->nI};
    hid_t ds = gp_h5_dataset(loc, name, H5T_IEEE_F64LE, 2, dims, description, units);
    gp_h5_write_rows(ds, H5T_NATIVE_DOUBLE, 0, dims[0], dims[1], v);
    H5Dclose(ds);
}

/* This rank's rows of selected tensor i in F or G: its block of the rows when every rank holds
 * the sums (replicated), else the part of its owner block that falls in the tensor (sharded:
 * blocks are runs of whole rows, gp_stats_blocks). *data points into the accumulator. */
static void my_rows(const stats_ctx *s, int i, const float *acc, const float **data, hsize_t *row0, hsize_t *nrows) {
    const gp_param *p = &s->m->table.p[i];
    const int64_t cols = p->ndim == 2 ? p->shape[1] : 1, off = s->sel_off[i], end = off + (int64_t)p->numel;
    if (!s->sharded) {
        gp_h5par_share((hsize_t)p->shape[0], row0, nrows);
        *data = acc + off + (int64_t)*row0 * cols;
        return;
    }
    const int64_t lo = s->bounds[s->rank], hi = s->bounds[s->rank + 1];
    const int64_t a = off > lo ? off : lo, e = end < hi ? end : hi;
    *row0 = 0, *nrows = 0, *data = NULL;
    if (e <= a) return;
    GP_CHECK((a - off) % cols == 0 && (e - a) % cols == 0, "owner block [%lld, %lld) cuts a row of %s",
             (long long)lo, (long long)hi, s->m->src_names[i]);
    *row0 = (hsize_t)((a - off) / cols);
    *nrows = (hsize_t)((e - a) / cols);
    *data = acc + (a - lo);
}

/* Collective: the attributes of stats.h5 and its corpus groups (rank 0's values). */
static void write_attributes(const stats_ctx *s, hid_t f, const int64_t units[2], const int64_t trips[2],
                             const double loss[2]) {
    const gp_model *m = s->m;
    const gp_stats_opts *o = s->o;
    gp_h5par_provenance(f, GP_STATS_FORMAT, GP_STATS_FORMAT_VERSION);
    gp_h5par_attr_str(f, GP_STATS_ATTR_MODEL_PATH, m->dir);
    gp_h5par_attr_str(f, GP_STATS_ATTR_MODEL_SHA256, s->model_sha);
    gp_h5par_attr_str(f, GP_STATS_ATTR_SETTINGS_HASH, s->settings);
    gp_h5par_attr_str(f, GP_STATS_ATTR_LOSS,
                      "InfoNCE over cosine similarity; candidates: the unit's positives and hard negatives");
    gp_h5par_attr_double(f, GP_STATS_ATTR_SCALE, GP_INFONCE_SCALE);
    gp_h5par_attr_int(f, GP_STATS_ATTR_MAX_LENGTH, s->max_len);
    gp_h5par_attr_int(f, GP_STATS_ATTR_FISHER_BATCH, s->fb);
    gp_h5par_attr_str(f, GP_STATS_ATTR_COMPUTE, gp_compute_names[gp_compute_get()]);
    gp_h5par_attr_int(f, GP_STATS_ATTR_MAX_SAMPLES, o->max_samples);
    gp_h5par_attr_int(f, GP_STATS_ATTR_SEED, o->seed);
    gp_h5par_attr_str(f, GP_STATS_ATTR_SAMPLE_METHOD, gp_sample_method_name(s->sample ? o->sample_method : GP_SAMPLE_NONE));
    gp_h5par_attr_str(f, GP_STATS_ATTR_ALIGNMENT, gp_alignment_name(o->alignment));
    gp_h5par_attr_str(f, GP_STATS_ATTR_LAYERS, gp_layers_name(o->layers));
    gp_h5par_attr_str(f, GP_H5_ATTR_DESCRIPTION,
                      "GAPrune statistics: per-parameter diagonal Fisher and mean gradient of the InfoNCE loss on a "
                      "domain and a general corpus, per-tensor gradient alignment, and linear-layer activation norms");
    for (int c = 0; c < 2; c++) {
        hid_t g = GP_H5(H5Gcreate2(f, k_corpus[c], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "group %s", k_corpus[c]);
        gp_h5par_attr_str(g, GP_STATS_CORPUS_PATH, s->corp[c].path);
        if (s->sample) { /* corpus_path is the sample; where it was taken from */
            gp_h5par_attr_str(g, GP_STATS_CORPUS_SAMPLED_FROM, o->corpus[c]);
            gp_h5par_attr_str(g, GP_STATS_CORPUS_SAMPLE_HASH, s->sample->settings_hash[c]);
        }
        gp_h5par_attr_str(g, GP_STATS_CORPUS_SHA256, s->corp[c].sha256);
        gp_h5par_attr_int(g, GP_STATS_CORPUS_N_RECORDS, s->corp[c].n_records);
        gp_h5par_attr_int(g, GP_STATS_CORPUS_N_SKIPPED, s->corp[c].n_skipped);
        gp_h5par_attr_int(g, GP_STATS_CORPUS_N_TRIPLETS, trips[c]);
        gp_h5par_attr_int(g, GP_STATS_CORPUS_N_UNITS, units[c]);
        gp_h5par_attr_double(g, GP_STATS_CORPUS_LOSS_MEAN, units[c] ? loss[c] / (double)units[c] : 0.0);
        H5Gclose(g);
    }
}

/* Collective: every rank writes its rows of every per-tensor array into stats.h5.tmp (parallel
 * HDF5, h5par.h: all ranks make the metadata calls, attributes carry rank 0's values); rank 0
 * then adds what parallel HDF5 cannot write (the names are variable-length strings) and
 * `complete`, and renames the file. */
static gp_status write_stats(stats_ctx *s, const int64_t units[2], const int64_t trips[2], const double loss[2],
                             gp_err *err) {
    const gp_model *m = s->m;
    /* every per-tensor array of the selected tensors, each rank its own rows */
    const int np = m->table.n;
    gp_h5par_item *it = gp_calloc((size_t)(5 * np), sizeof *it);
    float *actf = gp_malloc((s->nact ? s->nact : 1) * sizeof(float)); /* stats.h5 stores float32 */
    for (size_t k = 0; k < s->nact; k++) actf[k] = (float)s->act[k];
    char **names = gp_calloc((size_t)(5 * np), sizeof(char *));
    static const char *const groups[2][2] = {{GP_STATS_DOMAIN_FISHER, GP_STATS_DOMAIN_GRAD_MEAN},
                                             {GP_STATS_GENERAL_FISHER, GP_STATS_GENERAL_GRAD_MEAN}};
    int n = 0;
    for (int c = 0; c < 2; c++)
        for (int kind = 0; kind < 2; kind++)
            for (int i = 0; i < np; i++) {
                if (s->sel_off[i] < 0) continue;
                const gp_param *p = &m->table.p[i];
                char name[320];
                const float *rows;
                hsize_t r0, nr;
                my_rows(s, i, kind ? s->G[c] : s->F[c], &rows, &r0, &nr);
                names[n] = gp_strdup(gp_stats_tensor(name, sizeof name, groups[c][kind], m->src_names[i]));
                it[n] = (gp_h5par_item){names[n], p->ndim, {(hsize_t)p->shape[0], (hsize_t)p->shape[1]},
                                        kind ? "mean over gradient units (n_units) of the gradient of the unit's InfoNCE loss"
                                             : "diagonal empirical Fisher: sum over gradient units of the squared gradient "
                                               "of the unit's InfoNCE loss, divided by the number of triplets (n_triplets)",
                                        kind ? "loss / parameter" : "(loss / parameter)^2", rows, r0, nr, false};
                n++;
            }
    for (int i = 0; i < np; i++) { /* the activation sums are small and on every rank: a block each */
        if (s->act_off[i] < 0) continue;
        char name[320];
        hsize_t r0, nr, in = (hsize_t)m->table.p[i].shape[1];
        gp_h5par_share(in, &r0, &nr);
        names[n] = gp_strdup(gp_stats_tensor(name, sizeof name, GP_STATS_ACTIVATIONS, m->src_names[i]));
        it[n] = (gp_h5par_item){names[n], 1, {in, 1},
                                "sum over the domain corpus's tokens of the squared input activation x_k, per input "
                                "feature k of this linear weight (Wanda's |x_k|^2)",
                                "activation^2", actf + s->act_off[i] + r0, r0, nr, false};
        n++;
    }
    /* nothing is written unless the whole file fits (h5par.h) */
    hid_t f;
    gp_status rc = gp_h5par_create_tmp(s->stats_path, gp_h5par_bytes(it, n), &f, err);
    if (!rc) {
        write_attributes(s, f, units, trips, loss);
        gp_h5par_write_f32(f, it, n);
        gp_h5par_close(f, s->stats_path, err);
    }
    free(actf);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(it);
    if (rc) return rc;

    /* per-tensor cosine of the mean gradients, for the selected tensors */
    double *cos = gp_malloc((size_t)np * sizeof(double));
    const char **sel_names = gp_malloc((size_t)np * sizeof(char *));
    const hsize_t nt = (hsize_t)alignment_cosines(s, cos, sel_names);
    double *ncos = s->nI ? gp_malloc((size_t)s->m->cfg.layers * (size_t)s->nI * sizeof(double)) : NULL;
    if (ncos) neuron_cosines(s, ncos);
    if (s->rank != 0) {
        free(cos);
        free(ncos);
        free(sel_names);
        return GP_OK;
    }
    f = gp_h5_open_tmp(s->stats_path);
    hid_t ag = GP_H5(H5Gcreate2(f, GP_STATS_ALIGNMENT, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "group alignment");
    hid_t sp = GP_H5(H5Screate_simple(1, &nt, NULL), "space");
    hid_t ds = GP_H5(H5Dcreate2(ag, GP_STATS_COSINE, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "cosine");
    GP_H5(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, cos), "cosine");
    gp_h5_describe(ds,
                   "per tensor: <G_general, G_domain> / (|G_general| |G_domain| + 1e-12) of the mean gradients; "
                   "row i is the tensor named in /alignment/names[i]",
                   "1");
    H5Dclose(ds);
    H5Sclose(sp);
    gp_h5_write_strings(ag, GP_STATS_NAMES, sel_names, nt, "tensor name of each row of /alignment/cosine");
    if (ncos) {
        write_neuron_set(s, ag, GP_STATS_NEURON_COSINE, ncos,
                         "per MLP neuron [layer, neuron]: <G_general, G_domain> / (|G_general| |G_domain| + 1e-12) over "
                         "the neuron's weights (rows of the up projections, column of the down projection)",
                         "1");
        for (int c = 0; c < 2; c++) {
            hid_t g = GP_H5(H5Gopen2(f, k_corpus[c], H5P_DEFAULT), "group %s", k_corpus[c]);
            write_neuron_set(s, g, GP_STATS_NEURON_FISHER, s->NF[c],
                             "Fisher of a gate on each MLP neuron's output [layer, neuron]: sum over gradient units of "
                             "(dL/dgate_j)^2 at gate 1, dL/dgate_j = sum_o W_down[o,j] dL/dW_down[o,j], divided by the "
                             "number of triplets (n_triplets)",
                             "loss^2");
            write_neuron_set(s, g, GP_STATS_NEURON_GRAD_MEAN, s->NG[c],
                             "mean over gradient units (n_units) of dL/dgate_j, the derivative of the unit's InfoNCE loss "
                             "with respect to a gate on MLP neuron j's output at gate 1 [layer, neuron]",
                             "loss");
            H5Gclose(g);
        }
    }
    free(ncos);
    H5Gclose(ag);
    free(cos);
    free(sel_names);
    gp_h5_attr_int(f, GP_H5_ATTR_COMPLETE, 1);
    return gp_h5_close_commit(f, s->stats_path, err);
}

static void remove_checkpoints(const stats_ctx *s) {
    char *cur = rank_file(s, s->rank), *prev = gp_checkpoint_prev_path(cur);
    gp_checkpoint_remove(s->ranks_dir, cur, prev);
    free(cur), free(prev);
}

/* ---- the pass ------------------------------------------------------------------------------ */

static void free_ctx(stats_ctx *s) {
    for (int c = 0; c < 2; c++) {
        gp_corpus_free(&s->corp[c]);
        free(s->F[c]);
        free(s->G[c]);
        free(s->NF[c]);
        free(s->NG[c]);
    }
    free(s->down);
    free(s->dgate);
    free(s->sq);
    for (int w = 0; w < 2; w++) gp_reduce_pending_free(&s->pend[w]);
    free(s->act);
    free(s->act_off);
    free(s->sel_off);
    free(s->sel);
    free(s->bounds);
    free(s->stats_path);
    free(s->ranks_dir);
}

static gp_status prepare(stats_ctx *s, gp_err *err) {
    const gp_stats_opts *o = s->o;
    gp_status rc = GP_OK;
    if (!*o->corpus[0] || !*o->corpus[1])
        rc = gp_errf(err, GP_EINPUT, "%s: [data] domain and general must both name triplet files", o->job_path);
    if (!rc && s->rank == 0) rc = gp_model_sha256(s->m->dir, s->model_sha, err);
    /* a sample is read whole: it is the selection */
    const char *paths[2] = {o->corpus[0], o->corpus[1]};
    if (s->sample) paths[0] = s->sample->jsonl[0], paths[1] = s->sample->jsonl[1];
    const int64_t max_samples = s->sample ? INT64_MAX : o->max_samples;
    for (int c = 0; c < 2 && !rc; c++)
        if (s->rank == 0)
            rc = gp_corpus_index(paths[c], max_samples, (uint64_t)o->seed, o->skip_bad,
                                 &s->corp[c], err);
    if ((rc = gp_agree(rc, err))) return rc;
    gp_bcast_bytes(s->model_sha, sizeof s->model_sha, 0);
    for (int c = 0; c < 2; c++) gp_corpus_bcast(&s->corp[c], 0);
    settings_hash(s);
    return GP_OK;
}

void gp_stats_opts_from_job(gp_stats_opts *o, const gp_job *job) {
    *o = (gp_stats_opts){.corpus = {job->data.domain, job->data.general},
                         .max_samples = job->data.max_samples,
                         .seed = job->data.seed,
                         .skip_bad = job->data.on_bad_record == GP_BAD_SKIP,
                         .max_length = job->model.max_length,
                         .fisher_batch = job->stats.fisher_batch,
                         .checkpoint_every = job->stats.checkpoint_every,
                         .alignment = job->stats.alignment,
                         .layers = job->prune.layers,
                         .accumulators = job->stats.accumulators,
                         .activations = job->model.activations,
                         .sample_method = job->sample.method,
                         .out_dir = job->out_dir,
                         .job_path = job->path};
}

/* Units per corpus, this rank's contiguous block of them, and the lockstep steps. */
static void plan_units(stats_ctx *s) {
    for (int c = 0; c < 2; c++) {
        s->U[c] = (s->corp[c].n_selected + s->fb - 1) / s->fb;
        s->lo[c] = s->U[c] * s->rank / s->P;
        s->hi[c] = s->U[c] * (s->rank + 1) / s->P;
        s->S[c] = (s->U[c] + s->P - 1) / s->P;
        gp_log0("stats: %s: %lld triplets selected of %lld records (%lld skipped) in %s; %lld units of %d", k_corpus[c],
                (long long)s->corp[c].n_selected, (long long)s->corp[c].n_records, (long long)s->corp[c].n_skipped,
                s->corp[c].path, (long long)s->U[c], s->fb);
    }
}

bool gp_prune_selects(gp_layers layers, const gp_model *m, int i, int *layer) {
    gp_param_kind k = gp_model_param_kind(m, i, layer);
    if (layers == GP_LAYERS_MLP) return k == GP_PARAM_MLP;
    if (layers == GP_LAYERS_ATTENTION) return k == GP_PARAM_ATTENTION;
    return k == GP_PARAM_MLP || k == GP_PARAM_ATTENTION;
}

int64_t gp_stats_layout(const gp_model *m, gp_layers layers, int64_t *off) {
    int64_t n = 0;
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        off[i] = gp_prune_selects(layers, m, i, &layer) ? n : -1;
        if (off[i] >= 0) n += (int64_t)m->table.p[i].numel;
    }
    return n;
}

/* Each rank's share of a tensor is then a block of its rows, what the parallel writer takes. */
void gp_stats_blocks(const gp_param_table *t, const int64_t *off, int64_t n, int P, int64_t *bounds) {
    bounds[0] = 0;
    for (int q = 1; q <= P; q++) bounds[q] = n;
    int q = 1;
    for (int i = 0; i < t->n && q < P; i++) {
        if (off[i] < 0) continue;
        const gp_param *p = &t->p[i];
        const int64_t cols = p->ndim == 2 ? p->shape[1] : (int64_t)p->numel;
        for (int64_t row = 0; row < (int64_t)p->numel / cols && q < P; row++) {
            const int64_t at = off[i] + row * cols;
            while (q < P && at >= n * q / P) bounds[q++] = at;
        }
    }
}

bool gp_stats_shard(gp_accumulators mode, int P, int64_t n, double share) {
    if (P == 1) return false;
    if (mode != GP_ACC_AUTO) return mode == GP_ACC_SHARDED;
    return share > 0 && 16.0 * (double)n > 0.25 * share; /* an unknown share (0) keeps the copies */
}

/* Collective: s->share for stats.accumulators = auto on several ranks and model.activations = auto
 * (the same settings on every rank, so every rank asks or none does). */
static void ask_share(stats_ctx *s) {
    const bool acc = s->P > 1 && s->o->accumulators == GP_ACC_AUTO, acts = s->o->activations == GP_ACTS_AUTO;
    s->share = acc || acts ? gp_memory_per_rank() : 0;
}

static bool choose_sharded(const stats_ctx *s) {
    if (s->P == 1 || s->o->accumulators != GP_ACC_AUTO) return gp_stats_shard(s->o->accumulators, s->P, (int64_t)s->n, 0);
    const double share = s->share;
    const bool shard = gp_stats_shard(GP_ACC_AUTO, s->P, (int64_t)s->n, share);
    gp_log0("stats: replicated accumulators need %.3g GB per rank, %.3g GB is this rank's share of the node: %s",
            16.0 * (double)s->n / 1e9, share / 1e9, shard ? "sharded" : "replicated");
    return shard;
}

/* model.activations in effect for this pass's units; auto on the node's memory per rank, as the
 * plan decides it (gp_model_lean_for). */
static bool choose_activations(const stats_ctx *s) {
    const gp_activations mode = s->o->activations;
    const double share = s->share;
    const double T = s->max_len, B = 3.0 * s->fb;
    const bool lean = gp_model_lean_for(&s->m->cfg, mode, B, T, s->m->recompute, share);
    if (mode == GP_ACTS_AUTO && lean)
        gp_log0("stats: keeping every activation of a unit needs %.3g GB per rank, more than a quarter of this rank's "
                "share of the node (%.3g GB): model.activations lean",
                gp_model_activation_bytes(&s->m->cfg, B, T, true, s->m->recompute, false) / 1e9, share / 1e9);
    gp_model_set_lean(s->m, lean);
    return lean;
}

/* The neuron statistics, when every block's down projection (the architecture's neuron_cols)
 * has its gradient formed: otherwise nI stays 0 and stats.h5 has none. */
static void alloc_neurons(stats_ctx *s) {
    const gp_model *m = s->m;
    const int L = m->cfg.layers;
    s->down = gp_malloc((size_t)L * sizeof(int));
    for (int l = 0; l < L; l++) s->down[l] = -1;
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        if (s->sel_off[i] >= 0 && gp_model_neuron_axis(m, i, &layer) == GP_NEURON_COLS && layer >= 0 && layer < L &&
            m->table.p[i].ndim == 2 && m->table.p[i].shape[1] == m->cfg.intermediate)
            s->down[layer] = i;
    }
    for (int l = 0; l < L; l++)
        if (s->down[l] < 0) return;
    s->nI = m->cfg.intermediate;
    for (int c = 0; c < 2; c++) {
        s->NF[c] = gp_calloc((size_t)L * (size_t)s->nI, sizeof(double));
        s->NG[c] = gp_calloc((size_t)L * (size_t)s->nI, sizeof(double));
    }
    s->dgate = gp_malloc((size_t)s->nI * sizeof(double));
}

static void alloc_accumulators(stats_ctx *s) {
    gp_model *m = s->m;
    s->sel_off = gp_malloc((size_t)m->table.n * sizeof(int64_t));
    s->n = (size_t)gp_stats_layout(m, s->o->layers, s->sel_off);
    s->sel = gp_calloc((size_t)m->table.n, sizeof(bool)); /* what gp_model_need_grads takes */
    for (int i = 0; i < m->table.n; i++) s->sel[i] = s->sel_off[i] >= 0;
    s->bounds = gp_calloc((size_t)s->P + 1, sizeof(int64_t));
    s->sharded = choose_sharded(s);
    /* backward forms the selected weights' gradients only (their inputs' gradients still flow),
     * one block at a time in a window that block_done empties: no buffer of every selected
     * gradient. prune.layers selects weights inside the blocks, alike in every block, so the
     * windows always apply. */
    s->nwin = s->sharded ? 2 : 1;
    s->win = gp_model_need_grads(m, s->sel, s->nwin);
    GP_CHECK(s->win > 0 && s->win * (size_t)m->cfg.layers == s->n, "selected tensors not alike in every block (%zu x %d != %zu)",
             s->win, m->cfg.layers, s->n);
    if (s->sharded) s->sq = gp_malloc((size_t)s->nwin * s->win * sizeof(float));
    const gp_grad_hooks hooks = {block_begin, block_done, s};
    gp_model_set_grad_hooks(m, &hooks);
    /* replicated: rank 0's "block" is everything, the others' empty (alignment_cosines sums blocks) */
    if (s->sharded) gp_stats_blocks(&m->table, s->sel_off, (int64_t)s->n, s->P, s->bounds);
    else
        for (int q = 1; q <= s->P; q++) s->bounds[q] = (int64_t)s->n;
    s->na = s->sharded ? (size_t)(s->bounds[s->rank + 1] - s->bounds[s->rank]) : s->n;
    for (int c = 0; c < 2; c++) {
        s->F[c] = gp_calloc(s->na ? s->na : 1, sizeof(float));
        s->G[c] = gp_calloc(s->na ? s->na : 1, sizeof(float));
    }
    alloc_neurons(s);
    s->act_off = gp_malloc((size_t)m->table.n * sizeof(int64_t));
    for (int i = 0; i < m->table.n; i++) s->act_off[i] = -1;
    /* one tiny forward to learn which weights are linear layers and their input sizes */
    const char *probe[1] = {""};
    gp_batch b;
    gp_tokenizer_batch(m->tok, probe, 1, s->max_len, &b);
    float *e = gp_malloc((size_t)gp_model_dim(m) * sizeof(float));
    gp_model_forward(m, &b, e);
    act_ctx a = {s};
    gp_model_each_linear_input(m, record_act_layout, &a);
    free(e);
    gp_batch_free(&b);
    s->act = gp_calloc(s->nact ? s->nact : 1, sizeof(double));
}

/* The lockstep loop over this rank's units, from s->step on. Returns a status every rank agrees
 * on (errors already reported); *stopped when a signal asked every rank to stop. */
static gp_status run_loop(stats_ctx *s, gp_stats_report *rep, bool *stopped, gp_err *err) {
    gp_stop_watch stop;
    gp_stop_begin(&stop);
    const int64_t sig_at = gp_testhook_get()->signal_at_step;
    /* test hook: slow every unit down, so that a signal from outside lands mid-run */
    const int delay_ms = gp_testhook_get()->unit_delay_ms;
    const int64_t total_steps = s->S[0] + s->S[1];
    const int64_t total_trip = s->corp[0].n_selected + s->corp[1].n_selected;
    gp_infonce L = {0};
    gp_progress prog;
    gp_progress_init(&prog, "stats", total_trip, "triplets");
    int64_t trip_before = s->trip_done[0] + s->trip_done[1];
    gp_allreduce_sum_i64(&trip_before, 1);
    gp_progress_resume(&prog, trip_before);
    gp_status rc = GP_OK;
    bool agreed = false;
    *stopped = false;
    double t_loop = gp_now();
    while (s->step < total_steps) {
        if (sig_at == s->step && s->rank == 0) raise(SIGUSR1);
        int c = s->step < s->S[0] ? 0 : 1;
        int64_t unit = s->lo[c] + (c == 0 ? s->step : s->step - s->S[0]);
        const bool have = unit < s->hi[c];
        unit_in u = {0};
        if (have) rc = load_unit(s, c, unit, &u, err);
        if (delay_ms > 0) usleep((useconds_t)delay_ms * 1000);
        /* one reduction per step, before its collective backward: any error (bit 1) or stop
         * request (bit 0) on any rank; a stop leaves the step to the resumed run */
        int flags = gp_allreduce_max_int((rc != GP_OK) << 1 | gp_stop_requested());
        if (flags) {
            unit_free(&u);
            if (flags & 2) {
                rc = gp_agree(rc, err);
                agreed = true;
            } else {
                *stopped = true;
            }
            break;
        }
        if (have) run_unit(s, &u, &L);
        else if (s->sharded) blocks_without_unit(s, c);
        unit_free(&u);
        s->step++;
        int64_t est_units = (c == 0 ? s->step : s->step - s->S[0]) * s->P;
        int64_t done = c == 0 ? est_units * s->fb : s->corp[0].n_selected + est_units * s->fb;
        gp_progress_update(&prog, done < total_trip ? done : total_trip);
        if (s->step % s->o->checkpoint_every == 0 && s->step < total_steps && (rc = checkpoint(s, err))) {
            agreed = true;
            break;
        }
    }
    reductions_wait(s);
    gp_stop_end(&stop);
    gp_infonce_free(&L);
    rep->loop_s = gp_now() - t_loop;
    if (rc) return agreed ? rc : gp_agree(rc, err);
    int64_t trip_now = s->trip_done[0] + s->trip_done[1];
    gp_allreduce_sum_i64(&trip_now, 1);
    rep->triplets = trip_now - trip_before;
    if (*stopped) {
        if ((rc = checkpoint(s, err))) return rc;
        /* in the progress lines' unit too (a step is fisher_batch triplets on every rank) */
        gp_log0("stats: stopped by a signal after step %lld of %lld (%lld of %lld triplets); checkpoint written to %s; "
                "rerun the same job to resume",
                (long long)s->step, (long long)total_steps, (long long)trip_now, (long long)total_trip, s->ranks_dir);
        return GP_ESTOPPED;
    }
    gp_progress_done(&prog);
    return GP_OK;
}

/* Sums over ranks, the means (F over triplets, G over units), stats.h5, the checkpoints gone. */
static gp_status finish(stats_ctx *s, gp_stats_report *rep, gp_err *err) {
    double t0 = gp_now();
    for (int c = 0; c < 2 && !s->sharded; c++) { /* sharded: every block is complete at its owner */
        gp_allreduce_sum_f32(s->F[c], s->n);
        gp_allreduce_sum_f32(s->G[c], s->n);
    }
    gp_allreduce_sum_f64(s->act, s->nact);
    const size_t nn = (size_t)s->m->cfg.layers * (size_t)s->nI;
    for (int c = 0; c < 2 && nn; c++) {
        gp_allreduce_sum_f64(s->NF[c], nn);
        gp_allreduce_sum_f64(s->NG[c], nn);
    }
    int64_t units[2] = {s->units_done[0], s->units_done[1]}, trips[2] = {s->trip_done[0], s->trip_done[1]};
    double loss[2] = {s->loss_sum[0], s->loss_sum[1]};
    gp_allreduce_sum_i64(units, 2);
    gp_allreduce_sum_i64(trips, 2);
    gp_allreduce_sum_f64(loss, 2);
    s->t_allreduce += gp_now() - t0;
    GP_CHECK(units[0] == s->U[0] && units[1] == s->U[1], "units done %lld/%lld, expected %lld/%lld", (long long)units[0],
             (long long)units[1], (long long)s->U[0], (long long)s->U[1]);
    for (int c = 0; c < 2; c++) {
        float inv_t = 1.0f / (float)trips[c], inv_u = 1.0f / (float)units[c];
        for (size_t k = 0; k < s->na; k++) s->F[c][k] *= inv_t, s->G[c][k] *= inv_u;
        for (size_t k = 0; k < nn; k++) s->NF[c][k] /= (double)trips[c], s->NG[c][k] /= (double)units[c];
    }
    t0 = gp_now();
    gp_status rc = write_stats(s, units, trips, loss, err);
    s->t_write = gp_now() - t0;
    rc = gp_agree(rc, err);
    if (!rc) remove_checkpoints(s);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    rep->peak_rss_mb = gp_allreduce_max_f64((double)ru.ru_maxrss / 1024.0);
    rep->allreduce_s = s->t_allreduce;
    rep->reduce_s = s->t_comm;
    rep->checkpoint_s = s->t_checkpoint;
    rep->write_s = s->t_write;
    if (!rc)
        gp_log0("stats: wrote %s (domain loss %.4f over %lld units, general loss %.4f over %lld units)", s->stats_path,
                loss[0] / (double)units[0], (long long)units[0], loss[1] / (double)units[1], (long long)units[1]);
    return rc;
}

gp_status gp_stats_check(const gp_stats_opts *o, const gp_model *m, gp_err *err) {
    const int L = m->cfg.layers;
    int64_t *per = gp_calloc((size_t)(L > 0 ? L : 1), sizeof(int64_t));
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        if (gp_prune_selects(o->layers, m, i, &layer) && layer >= 0 && layer < L) per[layer] += (int64_t)m->table.p[i].numel;
    }
    int bad = -1;
    for (int l = 1; l < L && bad < 0; l++)
        if (per[l] != per[0]) bad = l;
    free(per);
    if (bad < 0) return GP_OK;
    return gp_errf(err, GP_EINPUT, "%s: block %d's %s weights differ in size from block 0's (%s: per-block intermediate "
                   "sizes), and the statistics need every block alike: gather them on the folder it was made from, or "
                   "with prune.layers = attention", m->dir, bad, gp_layers_name(o->layers),
                   m->cfg.ragged ? GP_CONFIG_INTER_SIZES : "the config");
}

gp_status gp_stats_run(const gp_stats_opts *o, gp_model *m, const gp_sample_report *sample, gp_stats_report *rep,
                       gp_err *err) {
    memset(rep, 0, sizeof *rep);
    gp_status bad = gp_agree(gp_stats_check(o, m, err), err);
    if (bad) return bad;
    double t_start = gp_now();
    GP_CHECK(!sample == (o->sample_method == GP_SAMPLE_NONE), "sample.method %s with%s samples",
             gp_sample_method_name(o->sample_method), sample ? "" : "out");
    stats_ctx s = {.o = o, .sample = sample, .m = m, .rank = gp_rank(), .P = gp_nranks(), .fb = o->fisher_batch};
    s.corp[0].fd = s.corp[1].fd = -1;
    s.max_len = o->max_length < m->max_length ? o->max_length : m->max_length;
    s.stats_path = gp_path_join(o->out_dir, GP_STATS_FILE);
    s.ranks_dir = gp_path_join(o->out_dir, "stats.ranks");
    gp_status rc = prepare(&s, err);
    if (!rc) {
        memcpy(rep->settings_hash, s.settings, sizeof s.settings);
        rep->up_to_date = stats_up_to_date(&s);
    }
    if (!rc && rep->up_to_date) {
        gp_log0("stats: %s is complete for these settings (%.16s...); nothing to do", s.stats_path, s.settings);
    } else if (!rc) {
        /* only a run that computes makes the checkpoint folder: a complete rerun writes nothing */
        rc = gp_agree(s.rank == 0 ? gp_mkdir_p(s.ranks_dir, err) : GP_OK, err);
    }
    if (!rc && !rep->up_to_date) {
        plan_units(&s);
        ask_share(&s);
        alloc_accumulators(&s);
        rep->sharded = s.sharded;
        rep->lean = choose_activations(&s);
        try_resume(&s);
        bool stopped;
        rc = run_loop(&s, rep, &stopped, err);
        if (!rc) rc = finish(&s, rep, err);
        rep->seconds = gp_now() - t_start;
    }
    gp_model_need_grads(m, NULL, 0); /* the model's next user (retraining) gets every gradient */
    gp_model_set_grad_hooks(m, NULL);
    gp_model_release_buffers(m); /* the training-mode activations: scoring and evaluation need far less */
    free_ctx(&s);
    return rc;
}
