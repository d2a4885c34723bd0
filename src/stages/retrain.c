/* retrain.c — masked data-parallel AdamW retraining (see retrain.h). */
#include "gaprune/retrain.h"

#include <hdf5.h>
#include <cblas.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/provenance.h"
#include "gaprune/checkpoint.h"
#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/hash.h"
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
    float *adam_m, *adam_v;
    uint8_t *decay; /* per parameter: weight decay applies */
    double *loss, *lr, *gnorm; /* per step */
    double allreduce_s;        /* wall time in the gradient allreduce */
    int step;                  /* steps done */
    char hash[65];
    const char *log_path;
    const char *prefix; /* the query prefix: the job's instruction, else the model's own prompt, else "" */
    int checkpoints;
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

/* ---- the log / checkpoint file (rank 0) -------------------------------------------------------- */

static void write_f64(hid_t f, const char *name, const double *v, int n, const char *desc, const char *units) {
    hsize_t d = (hsize_t)n;
    hid_t sp = GP_H5(H5Screate_simple(1, &d, NULL), "space");
    hid_t ds = GP_H5(H5Dcreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "%s", name);
    if (n) GP_H5(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), "%s", name);
    gp_h5_describe(ds, desc, units);
    H5Dclose(ds);
    H5Sclose(sp);
}

/* Rank 0: the log written to <log_path>.tmp, still open; -1 on the other ranks. */
static hid_t write_log(rt_ctx *c, bool complete) {
    if (gp_rank() != 0) return -1;
    const gp_train_opts *cfg = c->cfg;
    hid_t f = gp_h5_create_tmp(c->log_path);
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
    gp_h5_attr_str(f, GP_H5_ATTR_DESCRIPTION, "GAPrune masked retraining: per-step loss, learning rate and gradient norm; "
                                     "weights and AdamW moments to resume from");
    write_f64(f, GP_RETRAIN_LOSS, c->loss, c->step, "InfoNCE loss of each step's batch (before its update)", "nats");
    write_f64(f, GP_RETRAIN_LR, c->lr, c->step, "learning rate of each step", "1");
    write_f64(f, GP_RETRAIN_GRAD_NORM, c->gnorm, c->step, "global gradient norm of each step, before clipping",
              "loss / parameter");
    gp_h5_write_flat_f32(f, GP_RETRAIN_PARAMS, c->m->params, c->m->table.total,
                         "all parameters after the last step, in table order", "1");
    gp_h5_write_flat_f32(f, GP_RETRAIN_ADAM_M, c->adam_m, c->m->table.total, "AdamW first moment", "1");
    gp_h5_write_flat_f32(f, GP_RETRAIN_ADAM_V, c->adam_v, c->m->table.total, "AdamW second moment", "1");
    if (complete) gp_h5_attr_int(f, GP_H5_ATTR_COMPLETE, 1);
    return f;
}

typedef struct {
    rt_ctx *c;
    int64_t step, complete; /* what the log says */
} load_ctx;

/* Rank 0: the state of an earlier run from its log, when that was made with these settings. */
static gp_status load_log(hid_t f, void *vctx) {
    load_ctx *lc = vctx;
    rt_ctx *c = lc->c;
    int64_t step = 0, complete = 0;
    char *h = gp_h5_read_attr_str(f, GP_RETRAIN_ATTR_SETTINGS_HASH);
    if (h && !strcmp(h, c->hash) && !gp_h5_read_attr_int(f, GP_RETRAIN_ATTR_STEP, &step)) {
        gp_h5_read_attr_int(f, GP_H5_ATTR_COMPLETE, &complete);
        size_t n = c->m->table.total;
        bool ok = step > 0 && step <= c->cfg->steps && !gp_h5_read_f32(f, GP_RETRAIN_PARAMS, c->m->params, n) &&
                  !gp_h5_read_f32(f, GP_RETRAIN_ADAM_M, c->adam_m, n) &&
                  !gp_h5_read_f32(f, GP_RETRAIN_ADAM_V, c->adam_v, n);
        const char *names[3] = {GP_RETRAIN_LOSS, GP_RETRAIN_LR, GP_RETRAIN_GRAD_NORM};
        double *dst[3] = {c->loss, c->lr, c->gnorm};
        for (int k = 0; k < 3 && ok; k++) {
            hid_t d = H5Dopen2(f, names[k], H5P_DEFAULT);
            ok = d >= 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst[k]) >= 0;
            if (d >= 0) H5Dclose(d);
        }
        if (!ok) step = 0, complete = 0;
    } else if (h) {
        gp_warn("%s is from other settings; starting over", c->log_path);
    }
    free(h);
    lc->step = step, lc->complete = complete;
    return step > 0 ? GP_OK : GP_EINPUT;
}

/* Loads the state of an earlier run; returns the step reached (0: none), -1 when complete. */
static int64_t try_resume(rt_ctx *c) {
    load_ctx lc = {c, 0, 0};
    if (gp_rank() == 0) gp_checkpoint_load(c->log_path, NULL, load_log, &lc);
    int64_t step = lc.step, complete = lc.complete;
    gp_bcast_bytes(&step, sizeof step, 0);
    gp_bcast_bytes(&complete, sizeof complete, 0);
    if (step <= 0) return 0;
    size_t n = c->m->table.total;
    gp_bcast_bytes(c->m->params, n * sizeof(float), 0);
    gp_bcast_bytes(c->adam_m, n * sizeof(float), 0);
    gp_bcast_bytes(c->adam_v, n * sizeof(float), 0);
    gp_bcast_bytes(c->loss, (size_t)step * sizeof(double), 0);
    gp_bcast_bytes(c->lr, (size_t)step * sizeof(double), 0);
    gp_bcast_bytes(c->gnorm, (size_t)step * sizeof(double), 0);
    c->step = (int)step;
    return complete ? -1 : step;
}

static gp_status checkpoint(rt_ctx *c, bool complete, gp_err *err) {
    gp_status rc = gp_checkpoint_commit(write_log(c, complete), c->log_path, NULL, err);
    c->checkpoints++;
    if (!complete && gp_testhook_get()->kill_after_checkpoint == c->checkpoints && gp_rank() == 0) {
        gp_log0("test hook: SIGKILL after checkpoint %d (step %d)", c->checkpoints, c->step);
        raise(SIGKILL);
    }
    return rc;
}

/* ---- one step ------------------------------------------------------------------------------- */

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
        gp_batch batch;
        gp_tokenizer_batch(m->tok, texts, 3 * b, cfg->max_length < m->max_length ? cfg->max_length : m->max_length, &batch);
        gp_model_forward(m, &batch, emb);
        gp_batch_free(&batch);
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
        if (b > 0) gp_model_backward(m, demb);
        free(q), free(p), free(n), free(docs), free(dq), free(dd), free(demb);
    }
    double t_ar = gp_now();
    {
        /* the token-embedding gradient (a third to a half of all weights) is zero outside the
         * rows of the step's tokens: only those rows travel */
        const gp_param *e = &m->table.p[m->tok_emb];
        const int32_t *rows = NULL;
        const int nr = b > 0 ? gp_model_touched_rows(m, &rows) : 0;
        gp_allreduce_sum_f32(m->grads, e->offset);
        gp_allreduce_sum_rows_f32(m->grads + e->offset, e->shape[0], e->shape[1], rows, nr);
        gp_allreduce_sum_f32(m->grads + e->offset + e->numel, m->table.total - e->offset - e->numel);
    }
    c->allreduce_s += gp_now() - t_ar;
    gp_model_grads_changed(m); /* other ranks' rows are in the gradient now */
    if (c->mask) gp_mask_apply(c->mask, m); /* pruned weights: zero gradient, so zero moments */
    {
        double g2 = 0; /* accumulated in double by OpenBLAS, in pieces that fit its int */
        for (size_t k = 0; k < m->table.total; k += (size_t)1 << 30) {
            size_t len = m->table.total - k < ((size_t)1 << 30) ? m->table.total - k : (size_t)1 << 30;
            g2 += cblas_dsdot((blasint)len, m->grads + k, 1, m->grads + k, 1);
        }
        double gn = sqrt(g2), scale = cfg->grad_clip > 0 && gn > cfg->grad_clip ? cfg->grad_clip / gn : 1.0;
        *gnorm_out = gn;
        const int t1 = c->step + 1;
        const double lr = gp_lr_at(t1, cfg->steps, cfg->warmup, cfg->lr);
        const double bc1 = 1 - pow(BETA1, t1), bc2 = 1 - pow(BETA2, t1);
        for (int i = 0; i < m->table.n; i++) {
            const gp_param *pp = &m->table.p[i];
            /* restrict lets the compiler vectorize; element-wise, so the result is the scalar one */
            float *restrict w = m->params + pp->offset;
            const float *restrict g = m->grads + pp->offset;
            float *restrict am = c->adam_m + pp->offset, *restrict av = c->adam_v + pp->offset;
            const double wd = c->decay[i] ? cfg->weight_decay : 0.0;
            const size_t numel = pp->numel;
            for (size_t k = 0; k < numel; k++) {
                double gk = g[k] * scale;
                am[k] = (float)(BETA1 * am[k] + (1 - BETA1) * gk);
                av[k] = (float)(BETA2 * av[k] + (1 - BETA2) * gk * gk);
                double upd = (am[k] / bc1) / (sqrt(av[k] / bc2) + ADAM_EPS);
                w[k] = (float)(w[k] - lr * wd * w[k] - lr * upd);
            }
        }
        if (c->mask) gp_mask_apply(c->mask, m);
        c->lr[c->step] = lr;
    }
done:
    for (int i = 0; i < b; i++) {
        gp_triplet_free(&t[i]);
        free(owned[i]);
    }
    free(t), free(texts), free(owned), free(emb);
    return rc;
}

static void free_ctx(rt_ctx *c) {
    gp_corpus_free(&c->corp);
    free(c->perm), free(c->adam_m), free(c->adam_v), free(c->decay), free(c->loss), free(c->lr), free(c->gnorm);
}

void gp_train_opts_retrain(const gp_job *job, gp_train_opts *o) {
    *o = (gp_train_opts){.corpus = job->data.domain, .max_samples = job->data.max_samples, .seed = job->data.seed,
                         .skip_bad = job->data.on_bad_record == GP_BAD_SKIP, .steps = job->retrain.steps,
                         .warmup = job->retrain.warmup, .batch = job->retrain.batch,
                         .checkpoint_every = job->retrain.checkpoint_every, .max_length = job->model.max_length,
                         .lr = job->retrain.lr, .weight_decay = job->retrain.weight_decay, .grad_clip = job->retrain.grad_clip,
                         .query_instruction = job->model.query_instruction, .what = "[data] domain", .job_path = job->path,
                         .batch_origin = gp_job_origin(job, "retrain", "batch")};
}

void gp_train_opts_train(const gp_job *job, gp_train_opts *o) {
    *o = (gp_train_opts){.corpus = job->train.corpus, .max_samples = INT64_MAX / 4, .seed = job->data.seed,
                         .skip_bad = job->data.on_bad_record == GP_BAD_SKIP, .steps = job->train.steps,
                         .warmup = job->train.steps / 10, .batch = job->train.batch, .checkpoint_every = 200,
                         .max_length = job->model.max_length, .lr = job->train.lr, .weight_decay = 0.01, .grad_clip = 1.0,
                         .query_instruction = job->model.query_instruction, .what = "[train] corpus", .job_path = job->path,
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
    /* what the result depends on */
    char settings[2048];
    snprintf(settings, sizeof settings,
             "gaprune-retrain v1; base %s; corpus %s; max_samples %lld; seed %lld; steps %d; lr %.17g; warmup %d; "
             "weight_decay %.17g; batch %d; grad_clip %.17g; max_length %d; query_instruction %s",
             base_hash, c.corp.sha256, (long long)cfg->max_samples, (long long)cfg->seed, cfg->steps, cfg->lr, cfg->warmup,
             cfg->weight_decay, cfg->batch, cfg->grad_clip, cfg->max_length, c.prefix);
    gp_sha256 *h = gp_sha256_init();
    gp_sha256_update(h, settings, strlen(settings));
    gp_sha256_final(h, c.hash);
    const size_t n = m->table.total;
    const int S = cfg->steps;
    c.perm = gp_malloc((size_t)c.corp.n_selected * sizeof(int64_t));
    c.adam_m = gp_calloc(n, sizeof(float));
    c.adam_v = gp_calloc(n, sizeof(float));
    c.decay = gp_malloc((size_t)m->table.n);
    for (int i = 0; i < m->table.n; i++) c.decay[i] = m->table.p[i].ndim == 2;
    c.loss = gp_calloc((size_t)S + 1, sizeof(double));
    c.lr = gp_calloc((size_t)S + 1, sizeof(double));
    c.gnorm = gp_calloc((size_t)S + 1, sizeof(double));
    int64_t resumed = try_resume(&c);
    if (resumed < 0) {
        gp_log0("retrain %s: %s is complete for these settings; weights loaded from it", tag, log_path);
        rep->up_to_date = true;
        rep->first_loss = c.loss[0], rep->last_loss = c.loss[S - 1];
        free_ctx(&c);
        return GP_OK;
    }
    if (resumed > 0) gp_log0("retrain %s: resuming from step %lld (%s)", tag, (long long)resumed, log_path);
    gp_log0("retrain %s: %d steps of %d triplets (%d per rank) from %lld domain triplets, lr %g, warm-up %d, weight "
            "decay %g, clip %g",
            tag, S, cfg->batch, cfg->batch / gp_nranks(), (long long)c.corp.n_selected, cfg->lr, cfg->warmup,
            cfg->weight_decay, cfg->grad_clip);
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
    free_ctx(&c);
    return rc;
}
