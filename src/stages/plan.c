/* plan.c — memory per rank of a job's stages from shapes alone (see plan.h). Each formula
 * mirrors an allocation of the code it names; when that code changes its buffers, this file
 * changes with it (tests/test_plan.c compares the prediction with a measured peak). */
#include "gaprune/plan.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "gaprune/dist.h"
#include "gaprune/eval.h"
#include "gaprune/fs.h"
#include "gaprune/json.h"
#include "gaprune/log.h"
#include "gaprune/retrain.h"
#include "gaprune/sample.h"
#include "gaprune/score.h"
#include "gaprune/tasks.h"

/* The model's activation memory for B texts of T tokens, split by how long it lives:
 *   fwd    the architecture's one activation allocation (bert_alloc / qwen3_alloc: every layer in
 *          train mode, one layer reused for inference) and model.c's packed ids, positions,
 *          touched rows, offsets and pooled / emb / dpooled / norm rows; kept at their largest
 *          and gp_attention_forward's probabilities, T² per thread, per call
 *   bwd    the backward scratch (bert_backward / qwen3_backward) and model.c's dhidden [N, C],
 *          kept; gp_attention_backward's P and dP, 2 T² per thread, per call
 *   batch  the padded batch (ids int32 + mask byte) and the tokenizer's id arrays, per call */
typedef struct {
    double fwd, bwd, batch;
} acts;

/* What the weights take in memory (model.h, "the weights in memory"): 4*P in float32; held in 16
 * bits 2*P and the float32 views of the largest block and of the parameters outside the blocks but
 * the token embedding (whose rows are widened per batch, with the batch). */
static double held_weights(const gp_model_config *c, const gp_param_table *t, bool w16) {
    return w16 ? 2.0 * (double)t->total + 4.0 * (double)gp_model_view_floats(c, t) : 4.0 * (double)t->total;
}

static const char *held_formula(bool w16) {
    return w16 ? "2*P (16-bit parameters, as the checkpoint stores them) + 4*(largest block + parameters outside the "
                 "blocks but the token embedding): their float32 views"
               : "4*P (float32 parameters)";
}

/* model.compute = bf16 (kernels.c): the BF16 copies of a matmul's input, weight and output gradient,
 * grown to the largest and kept, and oneDNN's JIT kernels and state (about 3 MiB measured: the
 * demo's statistics, 74.3 MiB peak in f32, 77.7 in bf16) */
static double bf16_copies(const gp_model_config *c, double N, bool train) {
    const double C = c->hidden, q = (double)c->heads * c->head_dim;
    const double wide = c->arch == GP_ARCH_QWEN3 ? 2.0 * c->intermediate : c->intermediate; /* up (+ gate) */
    const double in = C > q ? (C > c->intermediate ? C : c->intermediate) : (q > c->intermediate ? q : c->intermediate);
    return 2 * (N * in + wide * C + (train ? N * wide : 0)) + 3.0 * 1048576;
}

/* lean: model.activations in effect for a training forward (gp_model_lean_for) */
static acts model_acts(const gp_model_config *c, double B, double T, int threads, bool train, bool recompute,
                       bool lean, bool bf16) {
    const double N = B * T, C = c->hidden;
    /* every sequence full: the attention's probabilities of one (sequence, head), T² a thread, per
     * call (kernels.c): in the forward when they are not kept (lean, inference), in the backward
     * dP and, when they were not kept, the probabilities again */
    const double tt = (threads > 1 ? threads : 1) * T * T;
    const bool kept = train && !lean;
    double bwd;
    if (c->arch == GP_ARCH_QWEN3) {
        const double F = c->intermediate, NH = c->heads, NKV = c->kv_heads, hs = c->head_dim;
        const double Q = NH * hs, KV = NKV * hs, QK = Q + KV, QKV = Q + 2 * KV;
        bwd = N * (3 * C + Q + QKV + QK + F + 2 * F);
    } else {
        bwd = N * (7 * C + 2 * (double)c->intermediate);
    }
    acts a;
    a.fwd = gp_model_activation_bytes(c, B, T, train, recompute, lean) + (kept ? 0 : 4 * tt) + 4 * (3 * B * C + B) +
            4 * 3 * N + 4 * (B + 1);
    a.bwd = train ? 4 * bwd + 4 * N * C + 4 * (kept ? 1 : 2) * tt : 0;
    a.batch = 5 * N + 4 * N;
    if (bf16) a.fwd += bf16_copies(c, N, train);
    return a;
}

static double unit_activations(const gp_model_config *c, int Bi, int Ti, int threads, bool recompute, bool lean,
                               bool bf16) {
    const double B = Bi, C = c->hidden;
    const acts a = model_acts(c, B, Ti, threads, true, recompute, lean, bf16);
    double bytes = a.fwd + a.bwd + a.batch;
    /* stats.c run_unit: emb and demb [B, C]; InfoNCE (loss.c) of b = B/3 queries against 2b
     * documents: normalized copies and their gradients (6·b·C) and two [b, 2b] matrices */
    const double b = B / 3;
    bytes += 4 * (2 * B * C) + 4 * (6 * b * C + 4 * b * b);
    return bytes;
}

double gp_plan_unit_activations(const gp_model_config *c, int Bi, int Ti, int threads, bool recompute, bool lean) {
    return unit_activations(c, Bi, Ti, threads, recompute, lean, false);
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
    /* stats.c's neuron statistics exist when the down projections have statistics */
    bool neurons = false;
    for (int i = 0; i < t->n; i++) {
        int layer;
        neurons |= sel_off[i] >= 0 && gp_model_neuron_axis(&shape, i, &layer) == GP_NEURON_COLS;
    }
    free(sel_off);

    const int model_max = pm->max_length > 0 ? pm->max_length : c->max_positions;
    out->seq_len = so->max_length < model_max ? so->max_length : model_max;
    out->texts = 3 * (so->fisher_batch > 0 ? so->fisher_batch : 1);

    /* stats.c: one transformer block's selected gradients per window (gp_model_need_grads),
     * 1 window replicated, 2 sharded (one block in flight while the next is computed) */
    const int W = out->sharded ? 2 : 1;
    const double win = c->layers > 0 ? (double)n / c->layers : (double)n;
    add(out, "weights", held_weights(c, t, pm->w16), held_formula(pm->w16));
    add(out, "gradients", 4.0 * W * win, out->sharded ? "4*2*n/L (two blocks' selected gradients)"
                                                      : "4*n/L (one block's selected gradients)");
    add(out, "accumulators", 16.0 * (double)out->block,
        out->sharded ? "16*max block (F, G of 2 corpora, this rank's block)" : "16*n (F, G of 2 corpora)");
    if (out->sharded) {
        add(out, "squared gradients", 4.0 * W * win, "4*2*n/L (g^2 of the blocks being sent)");
        /* Open MPI's temporaries: about one piece per MPI_Ireduce in flight, GP_DIST_INFLIGHT
         * per window (dist.c) */
        const double piece = win < (double)GP_DIST_RS_ROUND ? win : (double)GP_DIST_RS_ROUND;
        add(out, "reductions in flight", 4.0 * W * GP_DIST_INFLIGHT * piece, "4*2*4*min(n/L, 2^22) (MPI's piece temporaries)");
    }
    add(out, "activation sums", 8.0 * (double)nact, "8*sum of linear inputs (Wanda)");
    if (neurons)
        add(out, "neuron statistics", 8.0 * (8.0 * c->layers * (double)c->intermediate + c->intermediate),
            "8*(8*L*I + I): gate Fisher and gate gradient sums of 2 corpora, the cosines' sums (L*I MLP neurons)");
    out->lean = gp_model_lean_for(c, so->activations, out->texts, out->seq_len, pm->recompute, share);
    add(out, "unit activations",
        unit_activations(c, out->texts, out->seq_len, out->threads, pm->recompute, out->lean, pm->bf16),
        out->lean ? "3*fisher_batch texts x T tokens, kept for backward (model.activations: lean)"
                  : "3*fisher_batch texts x T tokens, kept for backward (model.activations: all)");
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

/* ---- every stage of a job ----------------------------------------------------------------------- */

static void padd(gp_plan_stage_out *s, const char *name, double bytes, const char *formula) {
    if (s->nparts >= GP_PLAN_MAX_PARTS) return;
    s->part[s->nparts++] = (gp_plan_part){name, bytes, formula};
    s->total += bytes;
}

/* A model folder's shapes and file sizes. */
typedef struct {
    gp_model_config cfg;
    gp_param_table table;
    int max_length;
    double tokenizer_bytes, weight_bytes; /* the tokenizer files; the safetensors files */
    gp_dtype stored;                      /* the weights' one 16-bit dtype (model.h), else GP_DT_F32 */
} folder;

static double file_size(const char *dir, const char *name) {
    char *p = name ? gp_path_join(dir, name) : gp_strdup(dir);
    struct stat st;
    double s = stat(p, &st) == 0 ? (double)st.st_size : 0;
    free(p);
    return s;
}

/* The dtype the model would hold dir's weights in at model.weights = checkpoint: the one 16-bit
 * dtype of every float tensor of its safetensors files (the loader asks it of the parameters), or
 * without files config.json's torch_dtype (a folder of config.json alone plans a real model). */
static gp_dtype stored_dtype(const char *dir, bool have_files) {
    gp_dtype common = GP_DT_COUNT;
    gp_err e = {0};
    if (have_files) {
        gp_st_set *set = NULL;
        if (gp_st_set_open(dir, &set, &e)) return GP_DT_F32; /* the load will say what is wrong */
        for (int i = 0; i < gp_st_set_nfiles(set); i++)
            for (int k = 0; k < gp_st_count(gp_st_set_file(set, i)); k++) {
                const gp_dtype d = gp_st_at(gp_st_set_file(set, i), k)->dtype;
                if (d == GP_DT_F32 || d == GP_DT_F16 || d == GP_DT_BF16) common = common == GP_DT_COUNT || common == d ? d : GP_DT_F32;
            }
        gp_st_set_close(set);
    } else {
        char *path = gp_path_join(dir, "config.json");
        cJSON *j = NULL;
        const char *td = NULL;
        if (!gp_json_load(path, &j, &e) && !gp_json_opt_string(j, "torch_dtype", &td, path, &e) && td)
            common = !strcmp(td, "bfloat16") ? GP_DT_BF16 : !strcmp(td, "float16") ? GP_DT_F16 : GP_DT_F32;
        cJSON_Delete(j);
        free(path);
    }
    return common == GP_DT_BF16 || common == GP_DT_F16 ? common : GP_DT_F32;
}

static gp_status folder_load(const char *dir, folder *f, gp_err *err) {
    memset(f, 0, sizeof *f);
    gp_status rc = gp_model_config_load(dir, &f->cfg, err);
    if (!rc) rc = gp_model_default_max_length(dir, f->cfg.max_positions, &f->max_length, err);
    if (rc) return rc;
    gp_model_build_table(&f->cfg, &f->table);
    static const char *const tok[] = {"tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", NULL};
    for (int i = 0; tok[i]; i++) f->tokenizer_bytes += file_size(dir, tok[i]);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l > 12 && !strcmp(e->d_name + l - 12, ".safetensors")) f->weight_bytes += file_size(dir, e->d_name);
    }
    if (d) closedir(d);
    f->stored = stored_dtype(dir, f->weight_bytes > 0);
    return GP_OK;
}

/* Lines, bytes and the longest line of a text file (zeros when it cannot be read: the stage
 * itself reports that). */
typedef struct {
    double lines, bytes, longest;
} file_scan;

static file_scan scan(const char *path) {
    file_scan s = {0, 0, 0};
    FILE *f = path && *path ? fopen(path, "rb") : NULL;
    if (!f) return s;
    char *buf = gp_malloc(1 << 20);
    double cur = 0;
    size_t got;
    while ((got = fread(buf, 1, 1 << 20, f)) > 0) {
        s.bytes += (double)got;
        for (size_t i = 0; i < got; i++) {
            if (buf[i] != '\n') {
                cur++;
                continue;
            }
            s.lines++;
            s.longest = cur > s.longest ? cur : s.longest;
            cur = 0;
        }
    }
    if (cur > 0) s.lines++, s.longest = cur > s.longest ? cur : s.longest;
    free(buf);
    fclose(f);
    return s;
}

static double dmax(double a, double b) { return a > b ? a : b; }
static double dmin(double a, double b) { return a < b ? a : b; }
static double ceil_div(double a, double b) { return ceil(a / b); }

/* One rank's scoring buffers (score.c, gp_select_smallest) for its slice of s selected
 * elements (its owner block of gp_stats_blocks) whose largest piece has q elements and widest
 * row c, of N selected elements in all: the slice's scores 4·s and bits s/8, the whole mask's
 * bits N/8 (every rank assembles it), the selection's buffer 4·q, one piece's Fisher 8·q (the
 * summary's DAI terms read it whenever stats.h5 exists, as it does in a run, whatever the
 * criterion), refcode's mean gradients with a row above and below 8·(q + 2c), wanda's sums 4·c,
 * and the two 65,536-bin histograms. */
static double score_slice_bytes(double s, double q, double c, double N, bool refcode, bool wanda) {
    return 4 * s + s / 8 + N / 8 + 4 * q + 8 * q + (refcode ? 8 * (q + 2 * c) : 0) + (wanda ? 4 * c : 0) + 1.25 * 1048576.0;
}

gp_status gp_plan_job(const gp_job *job, int ranks, int threads, double share, gp_plan *out, gp_err *err) {
    memset(out, 0, sizeof *out);
    const int R = ranks > 0 ? ranks : 1, TH = threads > 0 ? threads : 1;
    out->ranks = R;
    out->threads = TH;
    static const char *const names[GP_PLAN_NSTAGES] = {"load", "sample", "stats", "score", "retrain", "eval"};
    for (int s = 0; s < GP_PLAN_NSTAGES; s++) out->stage[s].name = names[s];
    folder mf, sf;
    gp_status rc = folder_load(job->model.path, &mf, err);
    if (rc) return rc;
    const bool kmeans = job->sample.method == GP_SAMPLE_KMEANS;
    const bool own_sampler = kmeans && *job->sample.model && strcmp(job->sample.model, job->model.path);
    if (own_sampler && (rc = folder_load(job->sample.model, &sf, err))) {
        gp_param_table_free(&mf.table);
        return rc;
    }
    const folder *smf = own_sampler ? &sf : &mf;
    const gp_model_config *c = &mf.cfg;
    const double P = (double)mf.table.total, C = c->hidden;
    const double runtime = GP_PLAN_RUNTIME_BYTES + (R > 1 ? GP_PLAN_RUNTIME_MPI_BYTES : 0);
    const char *runtime_f = R > 1 ? "MPI (shared memory), HDF5, OpenBLAS (measured constant)"
                                  : "MPI, HDF5, OpenBLAS (measured constant)";
    const double tok = 2 * mf.tokenizer_bytes;
    const char *tok_f = "2 x tokenizer files (approximate)";

    /* load: gp_model_load's params, while safetensors.c keeps every file mapped */
    gp_plan_stage_out *ld = &out->stage[GP_PLAN_LOAD];
    ld->runs = true;
    snprintf(ld->advice, sizeof ld->advice, "more memory per rank (fewer ranks per node): the weights are needed whole");
    /* config.json gives the shapes without the weights: a folder without them is planned, and said so */
    if (mf.weight_bytes > 0)
        snprintf(ld->what, sizeof ld->what, "%s: %.0f parameters, %.1f MiB of safetensors", job->model.path, P,
                 mf.weight_bytes / 1048576.0);
    else
        snprintf(ld->what, sizeof ld->what, "%s: %.0f parameters from config.json; no *.safetensors file in the folder "
                 "(the stages need the weights)", job->model.path, P);
    const bool w16 = job->model.weights == GP_WEIGHTS_CHECKPOINT && mf.stored != GP_DT_F32;
    const double held = held_weights(c, &mf.table, w16);
    padd(ld, "weights", held, held_formula(w16));
    double tmax = 0; /* the largest tensor, at the files' bytes per parameter */
    for (int i = 0; i < mf.table.n; i++) tmax = dmax(tmax, (double)mf.table.p[i].numel);
    padd(ld, "mapped tensor", P > 0 ? tmax * mf.weight_bytes / P : 0,
         "the largest tensor's mapped bytes: each is released once converted (safetensors.c)");
    padd(ld, "tokenizer", tok, tok_f);
    padd(ld, "runtime", runtime, runtime_f);

    /* sample */
    gp_plan_stage_out *sp = &out->stage[GP_PLAN_SAMPLE];
    sp->runs = job->sample.method != GP_SAMPLE_NONE;
    snprintf(sp->advice, sizeof sp->advice, "more ranks, a smaller model.max_length, or a smaller sample.model");
    acts a_sample = {0, 0, 0};
    {
        const file_scan corp[2] = {sp->runs ? scan(job->data.domain) : (file_scan){0, 0, 0},
                                   sp->runs ? scan(job->data.general) : (file_scan){0, 0, 0}};
        const int c0 = corp[1].lines > corp[0].lines; /* the larger corpus is the peak */
        const double n = corp[c0].lines, k = (double)job->sample.k, D = smf->cfg.hidden;
        const bool km = kmeans && n > k;
        const int Ts = job->model.max_length < smf->max_length ? job->model.max_length : smf->max_length;
        const double nl = ceil_div(ceil_div(n, GP_SAMPLE_ENCODE_BATCH), R) * GP_SAMPLE_ENCODE_BATCH;
        snprintf(sp->what, sizeof sp->what, "%s: ~%.0f candidates (lines of %s), k %.0f%s", gp_sample_method_name(job->sample.method),
                 n, c0 ? "data.general" : "data.domain", k, km ? "" : ": no k-means");
        const bool sw16 = job->model.weights == GP_WEIGHTS_CHECKPOINT && sf.stored != GP_DT_F32;
        padd(sp, "weights", held + (own_sampler ? held_weights(&sf.cfg, &sf.table, sw16) : 0),
             own_sampler ? "the job's model's and sample.model's, each 4*P (float32) or 2*P and its views (16-bit)"
                         : held_formula(w16));
        padd(sp, "corpus index", 64 * n, "64*n (triplets.c: 40-byte heap entries, 24-byte record refs)");
        if (km) {
            a_sample = model_acts(&smf->cfg, GP_SAMPLE_ENCODE_BATCH, Ts, TH, false, false, true,
                                  job->model.compute == GP_COMPUTE_BF16);
            padd(sp, "queries", corp[c0].bytes / R + 8 * nl, "this rank's query texts (< corpus bytes / R) and pointers");
            padd(sp, "embeddings", 4 * nl * D + 4 * nl, "4*ceil(n/R)*D, L2-normalised (sample.c embed_queries)");
            const double kd = k * D;
            const double seed = 24 * nl + 4 * 1024 * 1024 + 8 * R, lloyd = 16 * nl + 8 * kd + 8 * k + 12 * k + 16 * k + 4 * 1024 * 1024;
            padd(sp, "k-means", 4 * kd + 4 * n + 16 * k + 16 * nl + dmax(seed, lloyd),
                 "centroids 4kD, assignment 4n, |x|, 16*n/R, then the seeding's D2 snapshot 24*n/R or Lloyd's "
                 "8kD sums and 16*n/R, a 1024x1024 float tile (kmeans.c)");
            padd(sp, "encode batch", a_sample.batch, "32 padded texts of T tokens (per call)");
        }
        padd(sp, "tokenizer", tok + (own_sampler ? 2 * sf.tokenizer_bytes : 0), tok_f);
        padd(sp, "runtime", runtime, runtime_f);
    }

    /* stats */
    gp_stats_opts so;
    gp_stats_opts_from_job(&so, job);
    const bool bf16 = job->model.compute == GP_COMPUTE_BF16;
    const gp_plan_model pm = {&mf.cfg, &mf.table, mf.max_length, mf.tokenizer_bytes, job->model.recompute, bf16, w16};
    gp_plan_stats(&pm, &so, R, TH, share, &out->stats);
    const gp_plan_stats_out *st = &out->stats;
    const acts a_stats = model_acts(c, st->texts, st->seq_len, TH, true, job->model.recompute, st->lean, bf16);
    const double n_sel = (double)st->selected;

    /* eval: shapes first, the stage is filled in below with what it carries */
    const int B_eval = job->eval.batch > 0 ? job->eval.batch : 1;
    double t_eval = 0, eval_sets = 0;
    const char *eval_set_f = "";
    bool eval_runs = false;
    {
        const double prefix = strlen(job->model.query_instruction) + 128; /* the model's own prompt: a margin */
        for (int i = 0; i < job->eval.retrieval.n; i++) {
            eval_runs = true;
            char *cp = gp_path_join(job->eval.retrieval.v[i], "corpus.jsonl"), *qp = gp_path_join(job->eval.retrieval.v[i], "queries.jsonl");
            const file_scan cs = scan(cp), qs = scan(qp);
            free(cp), free(qp);
            t_eval = dmax(t_eval, dmax(cs.longest, qs.longest + prefix) + 16);
            const double nc = cs.lines, nq = qs.lines, K = GP_EVAL_TOPK;
            /* this rank's corpus and query texts and embeddings; one block of queries' embeddings
             * and top-K lists (eval.c, GP_EVAL_QUERY_BLOCK at a time, rank 0 the merged block
             * too and each judged query's metrics); rank 0's ids of both files */
            const double qb = nq < GP_EVAL_QUERY_BLOCK ? nq : GP_EVAL_QUERY_BLOCK;
            const double b = cs.bytes / R + qs.bytes / R + 8 * (nc + nq) / R + 4 * ceil_div(nc, R) * C +
                             4 * ceil_div(nq, R) * C + 4 * qb * C + 2 * 16 * qb * K + 4 * qb + 4 * 64 * 2048 +
                             24 * (nc + nq) + 40 * nq;
            if (b > eval_sets)
                eval_sets = b, eval_set_f = "retrieval: corpus/R texts + 4*nc/R*D, a block of <= 4096 queries: 4*q*D, "
                                            "top-100 lists 16*q*100 (twice on rank 0)";
        }
        for (int i = 0; i < job->eval.sts.n; i++) {
            eval_runs = true;
            const file_scan ss = scan(job->eval.sts.v[i]);
            t_eval = dmax(t_eval, ss.longest + 16);
            const double n = ss.lines;
            const double b = ss.bytes + 24 * n + 8 * ceil_div(n, R) * C + 8 * n;
            if (b > eval_sets) eval_sets = b, eval_set_f = "STS: every pair's texts, 2*4*n/R*D embeddings, 8*n cosines";
        }
        /* MTEB's other types (gp_eval_task): the set read whole on every rank, every text's embedding
         * gathered on every rank, this rank's share before; bitext copies its two sides once more */
        for (int t = 0; t < GP_TASK_NTYPES; t++) {
            const gp_path_list *l = gp_task_info_of((gp_task_type)t)->paths(job);
            for (int i = 0; i < l->n; i++) {
                eval_runs = true;
                gp_task_set ts;
                gp_err ignored = {0};
                if (gp_task_load((gp_task_type)t, l->v[i], &ts, &ignored)) continue; /* the job's check names it */
                double bytes = 0, longest = 0;
                for (int64_t k = 0; k < ts.n_texts; k++) {
                    const double len = (double)strlen(ts.texts[k]);
                    bytes += len + 1, longest = dmax(longest, len);
                }
                const double n = (double)ts.n_texts;
                gp_task_set_free(&ts);
                t_eval = dmax(t_eval, longest + 16);
                const double b = bytes + 8 * n + 13 * n + 4 * n * C + 4 * ceil_div(n, R) * C +
                                 (t == GP_TASK_BITEXT ? 4 * n * C : 0);
                if (b > eval_sets)
                    eval_sets = b, eval_set_f = "MTEB task set: its texts, every text's embedding 4*n*D on every rank and "
                                                "this rank's 4*n/R*D";
            }
        }
        /* eval.c embeds at the job's model.max_length, capped by the model's own */
        const double t_job = job->model.max_length < mf.max_length ? job->model.max_length : mf.max_length;
        t_eval = t_eval < t_job ? t_eval : t_job;
        if (t_eval < 1) t_eval = 1;
    }
    const acts a_eval = eval_runs ? model_acts(c, B_eval, t_eval, TH, false, false, true, bf16) : (acts){0, 0, 0};

    /* retrain: this rank's ceil(batch/R) triplets */
    const bool retrain_runs = (job->retrain.methods.n > 0 || job->retrain.dense) && job->retrain.steps > 0;
    const double B = job->retrain.batch, b = ceil_div(B, R);
    const int T_rt = job->model.max_length < mf.max_length ? job->model.max_length : mf.max_length;
    /* retrain.micro_batch: the activations kept are those of one micro-batch (retrain.c) */
    const double ub = job->retrain.micro_batch > 0 && job->retrain.micro_batch < b ? job->retrain.micro_batch : b;
    const bool rt_lean = gp_model_lean_for(c, job->model.activations, 3 * ub, T_rt, job->model.recompute, share);
    const acts a_rt =
        retrain_runs ? model_acts(c, 3 * ub, T_rt, TH, true, job->model.recompute, rt_lean, bf16) : (acts){0, 0, 0};

    /* one-shot reconstruction (reconstruct.c), part of the score stage: prune.reconstruct = obs, or
     * sparsegpt (GP_NEED_OBS) among the criteria a run makes masks of (prune.methods, retrain.methods).
     * It runs one block at a time on batches of eval.batch calibration texts of T tokens (the
     * model's inference buffers of one block, gp_model_block) */
    bool recon = false;
    for (int k = 0; k < job->prune.n_reconstruct; k++) recon |= job->prune.reconstruct[k] == GP_RECON_OBS;
    {
        const gp_criteria_list *lists[2] = {&job->prune.methods, &job->retrain.methods};
        for (int l = 0; l < 2; l++)
            for (int k = 0; k < lists[l]->n; k++) recon |= (lists[l]->v[k]->needs & GP_NEED_OBS) != 0;
    }
    const acts a_recon = recon ? model_acts(c, B_eval, T_rt, TH, false, false, true, bf16) : (acts){0, 0, 0};

    /* the model's kept buffers in gaprune run's order: sample, stats, then per mask eval (dense
     * first), score (with its reconstruction), retrain, eval. The buffers grow to the largest
     * forward so far, but the statistics and retraining free theirs at their end
     * (gp_model_release_buffers): the sample's carry into the statistics, evaluation's and the
     * reconstruction's into each other and into retraining, and nothing past a training stage. */
    const double stats_kept = dmax(a_sample.fwd, a_stats.fwd) + dmax(a_sample.bwd, a_stats.bwd);
    const double infer_fwd = dmax(a_eval.fwd, a_recon.fwd), infer_kept = infer_fwd + dmax(a_eval.bwd, a_recon.bwd);
    const double rt_kept = dmax(infer_fwd, a_rt.fwd) + dmax(dmax(a_eval.bwd, a_recon.bwd), a_rt.bwd);
    const char *carry_f = bf16 ? "forward + backward buffers and the BF16 copies of the largest matmul's operands "
                                 "(model.compute = bf16), kept at the largest of evaluation's, the reconstruction's "
                                 "and this stage's (training stages free theirs at their end)"
                               : "forward + backward buffers, kept at the largest of evaluation's, the "
                                 "reconstruction's and this stage's (training stages free theirs at their end)";
    if (sp->runs && a_sample.fwd > 0) padd(sp, "model activations", a_sample.fwd, "inference of 32 texts x T tokens, one layer's buffers");

    gp_plan_stage_out *ss = &out->stage[GP_PLAN_STATS];
    ss->runs = true;
    /* only the knobs that can still lower the need: fisher_batch 1 cannot go lower, recompute
     * once set is set */
    snprintf(ss->advice, sizeof ss->advice, "more ranks%s%s%s%s, or a smaller model.max_length",
             st->sharded ? "" : " with stats.accumulators = sharded",
             job->stats.fisher_batch > 1 ? ", a smaller stats.fisher_batch" : "",
             st->lean ? "" : ", model.activations = lean",
             job->model.recompute ? "" : ", model.recompute = true");
    snprintf(ss->what, sizeof ss->what, "%lld selected of %lld parameters (prune.layers = %s), units of %d texts x %d tokens, %s accumulators",
             (long long)st->selected, (long long)st->params, gp_layers_name(so.layers), st->texts, st->seq_len,
             st->sharded ? "sharded" : "replicated");
    for (int k = 0; k < st->nparts; k++) {
        if (!strcmp(st->part[k].name, "unit activations")) {
            /* what the model keeps from an earlier sample stage adds to the unit's own */
            const double extra = stats_kept - a_stats.fwd - a_stats.bwd;
            padd(ss, st->part[k].name, st->part[k].bytes + extra,
                 extra > 0 ? "3*fisher_batch texts x T tokens, kept for backward (+ the sample's larger buffers)"
                           : st->part[k].formula);
        } else {
            padd(ss, st->part[k].name, st->part[k].bytes, st->part[k].formula);
        }
    }

    /* score: the masks of prune.methods and of retrain.methods (gaprune run makes both) */
    gp_plan_stage_out *sc = &out->stage[GP_PLAN_SCORE];
    sc->runs = job->prune.methods.n > 0 || job->retrain.methods.n > 0;
    snprintf(sc->advice, sizeof sc->advice, "%s",
             recon ? "more ranks (each scores its slice and keeps 1/R of the reconstruction's calibration states), a "
                     "smaller prune.reconstruct_samples or eval.batch, or fewer prune.layers"
                   : "more ranks (each scores its slice) or fewer prune.layers");
    {
        gp_model shape = {0};
        shape.cfg = mf.cfg;
        shape.table = mf.table;
        int64_t *off = gp_malloc((size_t)(mf.table.n ? mf.table.n : 1) * sizeof *off), *bounds = gp_calloc((size_t)R + 1, sizeof *bounds);
        const int64_t N = gp_stats_layout(&shape, job->prune.layers, off);
        gp_stats_blocks(&mf.table, off, N, R, bounds);
        double s_max = 0, T = 1, cmax = 1, share_max = 0;
        for (int q = 0; q < R; q++) s_max = dmax(s_max, (double)(bounds[q + 1] - bounds[q]));
        for (int i = 0; i < mf.table.n; i++)
            if (off[i] >= 0) {
                const gp_param *t = &mf.table.p[i];
                T = dmax(T, (double)t->numel), cmax = dmax(cmax, (double)t->shape[1]);
                /* reconstruct.c solve_item: rank q takes rows [rows*q/R, rows*(q+1)/R), at most ceil(rows/R) */
                share_max = dmax(share_max, ceil_div((double)t->shape[0], R) * (double)t->shape[1]);
            }
        free(off), free(bounds);
        const double q = s_max < T ? s_max : T; /* a piece is at most a whole tensor and the slice */
        const bool save = job->prune.save_scores;
        bool refcode = false, wanda = false;
        const gp_criteria_list *lists[2] = {&job->prune.methods, &job->retrain.methods};
        for (int l = 0; l < 2; l++)
            for (int k = 0; k < lists[l]->n; k++) {
                const gp_criterion *cr = lists[l]->v[k];
                refcode |= (cr->needs & GP_NEED_FISHER) && job->stats.alignment == GP_ALIGN_REFCODE;
                wanda |= (cr->needs & GP_NEED_ACT) != 0;
            }
        const int n_what = snprintf(sc->what, sizeof sc->what,
                                    "each rank scores its slice of %.0f selected elements (largest %.0f, pieces up to %.0f)", n_sel,
                                    s_max, q);
        if (recon && n_what > 0 && (size_t)n_what < sizeof sc->what)
            snprintf(sc->what + n_what, sizeof sc->what - (size_t)n_what,
                     "; reconstruction: %.0f texts (6 x prune.reconstruct_samples) x %d tokens / %d rank%s, batches of %d "
                     "(eval.batch), widest input %.0f",
                     6.0 * (double)job->prune.reconstruct_samples, T_rt, R, R > 1 ? "s" : "", B_eval, cmax);
        /* the reconstruction solves in float32: 16-bit weights are widened (both, for the moment it takes) */
        padd(sc, "weights", recon && w16 ? 4 * P + 2 * P : held,
             recon && w16 ? "2*P + 4*P: 16-bit weights widened to float32 for the reconstruction (reread between masks)"
             : w16        ? "2*P + float32 views of a block (16-bit parameters; reread from the folder between masks)"
                          : "4*P (float32 parameters; reread from the folder between masks)");
        padd(sc, "scoring buffers", score_slice_bytes(s_max, q, cmax, (double)N, refcode, wanda),
             "4s + s/8 + N/8 + 4q + 8q Fisher (+8(q+2c) refcode, +4c wanda) + 1.25 MiB (score.c, gp_select_smallest)");
        if (save) padd(sc, "saved scores (rank 0)", 5 * T, "5*T: one tensor's scores gathered and its mask bytes (prune.save_scores)");
        else padd(sc, "mask file (rank 0)", T, "T: one tensor's mask bytes while the file is written");
        if (gp_scope_structured(&job->prune.scope)) {
            double items = 0;
            for (int i = 0; i < mf.table.n; i++) items += gp_prune_selects(job->prune.layers, &shape, i, NULL);
            const double I = (double)gp_model_struct_count(&shape, gp_scope_struct(&job->prune.scope)), L = mf.cfg.layers;
            padd(sc, "structure scores", 16 * items * I + 33 * L * I + 8 * I,
                 "16*n*I + 33*L*I + 8*I: each selected tensor's sums per structure (I neurons or heads a block) and their "
                 "exchange, every block's scores and kept flags, the neuron statistics gaprune-neurons reads, the running "
                 "column sums (scopes neurons, heads)");
        }
        padd(sc, "model activations", a_eval.fwd + a_eval.bwd, carry_f);
        if (recon) {
            /* reconstruct.h: (a) this rank's batches' hidden states, 3*prune.reconstruct_samples texts of
             * each corpus at T tokens (every sequence full) over R ranks; (b) one block's inference
             * buffers of one batch of eval.batch texts (the model's, gp_model_block: their growth over
             * the kept ones) and the block's output; (c) H in double, its float32 batch product and U
             * for the widest input n of a selected weight; (d) this rank's rows of a selected weight
             * three times (dense copy, errors, keep bits) */
            const double texts = 2 * 3 * (double)job->prune.reconstruct_samples, n = cmax;
            padd(sc, "reconstruction inputs", 4 * C * T_rt * texts / R,
                 "4*C*T*6*S/R: this rank's share of the calibration hidden states, 3*prune.reconstruct_samples texts "
                 "of each corpus at T tokens (reconstruct.c)");
            padd(sc, "reconstruction block", infer_fwd - a_eval.fwd + a_recon.batch + 4.0 * B_eval * T_rt * C,
                 "one block's inference buffers for eval.batch texts x T tokens beyond evaluation's (the model's grow "
                 "to the larger), the padded batch, the block's output 4*B*T*C (gp_model_block, reconstruct.c)");
            padd(sc, "reconstruction H, U", 16 * n * n, "8n^2 H + 4n^2 float32 batch product + 4n^2 factor U, n the widest input");
            padd(sc, "reconstruction rows", 3 * 4 * share_max,
                 "3*4*ceil(rows/R)*n: this rank's rows of the largest selected weight: dense copy, errors, keep bits");
            if (job->prune.reconstruct_order == GP_RECON_PARALLEL)
                padd(sc, "reconstruction dense", 2 * 4 * (c->layers > 0 ? (double)N / c->layers : (double)N),
                     "2*4*n/L: one block's dense selected weights and their swap (prune.reconstruct_order = parallel)");
        }
        padd(sc, "tokenizer", tok, tok_f);
        padd(sc, "runtime", runtime, runtime_f);
    }

    /* retrain */
    gp_plan_stage_out *rt = &out->stage[GP_PLAN_RETRAIN];
    rt->runs = retrain_runs;
    {
        /* retrain.micro_batch and model.recompute bound the activations whatever the batch */
        char mb[96] = "";
        if (ub > 1) snprintf(mb, sizeof mb, ", retrain.micro_batch below %.0f (the triplets a rank runs at once)", ub);
        snprintf(rt->advice, sizeof rt->advice, "more ranks%s%s%s, a smaller retrain.batch or model.max_length", mb,
                 rt_lean ? "" : ", model.activations = lean", job->model.recompute ? "" : ", model.recompute = true");
    }
    {
        const double S = job->retrain.steps, n_train = (double)job->data.max_samples;
        snprintf(rt->what, sizeof rt->what, "batch %.0f, %.0f triplets per rank (%.0f per forward) x 3 texts x %d tokens, %.0f steps",
                 B, b, ub, T_rt, S);
        const gp_optimizer_sharding mode = gp_retrain_sharding(job->retrain.optimizer_sharding, R, (int64_t)P, share);
        /* the parameters outside the transformer blocks, and one block's (gradients' windows) */
        gp_model shape = {0};
        shape.cfg = mf.cfg;
        shape.table = mf.table;
        int64_t outer = 0;
        for (int i = 0; i < mf.table.n; i++) {
            int layer;
            gp_model_param_kind(&shape, i, &layer);
            if (layer < 0) outer += (int64_t)mf.table.p[i].numel;
        }
        const int64_t window = c->layers > 0 ? ((int64_t)P - outer) / c->layers : 0;
        const bool zero2 = mode == GP_SHARD_GRADIENTS && R > 1; /* one rank keeps every gradient */
        const double state = gp_retrain_state_bytes(mode, R, (int64_t)P, outer, window);
        /* the token-embedding gradient is zero (never-written pages, not resident) outside the
         * rows the steps' tokens touch: at most S*3*B*T of the V rows over the run (the allreduce
         * brings every rank all the batch's rows; with gradients they travel packed). Unless the
         * kernel makes pages resident when they are read (gp_zero_reads_resident): then the
         * norm and AdamW, which read the rank's slice of the gradient whole (none: all of it;
         * states: 1/R of it, which holds at most min(V*C, P/R) of the embedding), make that
         * part resident too; with gradients the slice is a buffer of its own, counted whole. */
        const double VC = (double)c->vocab_size * C, rows = dmin((double)c->vocab_size, S * 3 * B * T_rt);
        const bool reads = gp_zero_reads_resident() && !zero2;
        const double slice_emb = mode == GP_SHARD_NONE || R == 1 ? VC : dmin(VC, ceil(P / R));
        const double emb = reads ? dmin(VC, rows * C + slice_emb) : rows * C;
        const double grads_full = zero2 ? 4.0 * ((double)outer + 2.0 * (double)window) : 4 * P;
        const double grads = grads_full - 4 * VC + 4 * emb;
        const double slice = mode == GP_SHARD_NONE || R == 1 ? P : ceil(P / R);
        padd(rt, "weights", held + (w16 ? 4 * slice : 0),
             !w16 ? "4*P (float32 parameters)"
             : mode == GP_SHARD_NONE || R == 1
                 ? "2*P and views (16-bit parameters) + 4*P float32 master weights (one rank, or optimizer_sharding = none)"
                 : "2*P and views (16-bit parameters) + 4*P/R float32 master weights of this rank's optimizer slice");
        padd(rt, "gradients", grads,
             zero2 ? "4*(P_outside + 2*P/L): the gradients outside the blocks and two blocks' (retrain.c, gradients); of the "
                     "token embedding's V*C only min(V, S*3*B*T)*C"
             : reads ? "4*P: every parameter's gradient (retrain.c); of the token embedding's V*C only min(V, S*3*B*T)*C "
                       "and the part in this rank's slice, min(V*C, P/R) (pages read here are resident)"
                     : "4*P: every parameter's gradient (retrain.c); of the token embedding's V*C only min(V, S*3*B*T)*C");
        /* m and v alone: the states' formula (none: 8P; sharded: 8 slice + rounds) less weights and gradient */
        const double moments =
            gp_retrain_state_bytes(mode == GP_SHARD_NONE ? GP_SHARD_NONE : GP_SHARD_STATES, R, (int64_t)P, 0, 0) - 8 * P;
        padd(rt, "AdamW moments", moments,
             mode == GP_SHARD_NONE || R == 1 ? "8*P: m and v (one rank, or retrain.optimizer_sharding = none)"
                                             : "8*P/R: m and v of this rank's slice + 32 MiB of round buffers (optimizer_sharding)");
        if (zero2)
            padd(rt, "summed gradient slice", state - 4 * P - grads_full - moments,
                 "4*P/R: the sum of this rank's slice + 4*2*min(4*2^22, P/L, P/R) of reductions in flight (optimizer_sharding = gradients)");
        padd(rt, "mask", n_sel / 8, "n/8: the keep bits");
        padd(rt, "model activations", rt_kept, carry_f);
        padd(rt, "step buffers",
             a_rt.batch + 4 * (3 * b + 1) * C * 2 + 4 * 3 * B * C + 4 * 2 * B * C + 4 * 3 * B * C + 4 * (6 * B * C + 3 * B + 4 * B * B) + 8 * B,
             "emb, demb 2*4*(3b+1)*C; gathered q, p, n 12*B*C, docs 8*B*C; dq, dd 12*B*C; InfoNCE 4*(6BC + 4B^2)");
        padd(rt, "log, index", 8 * n_train + 24 * n_train + 24 * (S + 1) + mf.table.n, "perm, record refs, loss/lr/|g| per step");
        padd(rt, "tokenizer", tok, tok_f);
        padd(rt, "runtime", runtime, runtime_f);
    }

    /* eval */
    gp_plan_stage_out *ev = &out->stage[GP_PLAN_EVAL];
    ev->runs = eval_runs;
    snprintf(ev->advice, sizeof ev->advice, "a smaller eval.batch or model.max_length, or more ranks");
    snprintf(ev->what, sizeof ev->what, "%d texts x %.0f tokens (model.max_length, bounded by the longest line)", B_eval, t_eval);
    padd(ev, "weights", recon && w16 ? 4 * P : held,
         recon && w16 ? "4*P (the reconstruction's float32 weights)" : held_formula(w16));
    padd(ev, "mask", n_sel / 8, "n/8: the keep bits of the mask evaluated");
    padd(ev, "model activations", infer_kept, carry_f);
    padd(ev, "encode batch", a_eval.batch, "eval.batch padded texts (per call)");
    padd(ev, "eval set", eval_sets, eval_set_f);
    padd(ev, "tokenizer", tok, tok_f);
    padd(ev, "runtime", runtime, runtime_f);

    out->peak = 0;
    out->peak_stage = GP_PLAN_LOAD;
    for (int s = 0; s < GP_PLAN_NSTAGES; s++)
        if (out->stage[s].runs && out->stage[s].total > out->peak) out->peak = out->stage[s].total, out->peak_stage = (gp_plan_stage)s;
    gp_param_table_free(&mf.table);
    if (own_sampler) gp_param_table_free(&sf.table);
    return GP_OK;
}

/* Ranks sharing a node: Slurm's count when set, else those of this run on this node when the
 * plan is for this run's size, else all of them (one node). */
static int ranks_per_node(int ranks) {
    const char *s = getenv("SLURM_NTASKS_PER_NODE");
    if (s && atoi(s) > 0) return atoi(s);
    if (ranks == gp_nranks()) return gp_ranks_on_node();
    return ranks;
}

gp_status gp_plan_limit(const char *mem, bool physical, int ranks, double *limit, const char **from, gp_err *err) {
    *limit = 0;
    *from = "none";
    if (mem) {
        *from = "--mem-per-rank";
        if (!gp_plan_parse_size(mem, limit) || *limit <= 0)
            return gp_errf(err, GP_EINPUT, "gaprune plan: --mem-per-rank expects a size such as 24G or 512M, got \"%s\"", mem);
        return GP_OK;
    }
    const char *slurm = getenv("SLURM_MEM_PER_NODE");
    if (slurm && atof(slurm) > 0) {
        *limit = atof(slurm) * 1048576.0 / ranks_per_node(ranks);
        *from = "SLURM_MEM_PER_NODE / ranks per node";
    } else if (physical) {
        *limit = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE) / ranks_per_node(ranks);
        *from = "physical memory / ranks per node";
    }
    return GP_OK;
}

gp_status gp_plan_refusal(const gp_plan *p, double limit, const char *from, const char *cmd, unsigned stages, gp_err *err) {
    if (limit <= 0) return GP_OK;
    const gp_plan_stage_out *o = NULL; /* the largest need over the limit: its advice helps most */
    for (int s = 0; s < GP_PLAN_NSTAGES; s++)
        if ((stages & GP_PLAN_BIT(s)) && p->stage[s].runs && p->stage[s].total > limit && (!o || p->stage[s].total > o->total))
            o = &p->stage[s];
    if (o)
        return gp_errf(err, GP_EINPUT,
                       "%s: stage %s needs %.1f MiB per rank, over the limit of %.1f MiB (%s) on %d rank%s; "
                       "try %s (gaprune plan shows every part)",
                       cmd, o->name, o->total / 1048576.0, limit / 1048576.0, from, p->ranks, p->ranks > 1 ? "s" : "",
                       o->advice);
    return GP_OK;
}

gp_status gp_plan_guard(const gp_job *job, const char *cmd, unsigned stages, gp_err *err) {
    const char *env = getenv("OMP_NUM_THREADS");
    const int threads = env && atoi(env) > 0 ? atoi(env) : 1;
    double limit;
    const char *from;
    gp_plan_limit(NULL, true, gp_nranks(), &limit, &from, err); /* no size to parse: cannot fail */
    /* the statistics decide stats.accumulators = auto on the same share (stats.c); collective */
    const double share = gp_memory_per_rank();
    gp_plan p;
    gp_err perr = {0};
    int rc = GP_OK;
    if (gp_rank() == 0 && gp_plan_job(job, gp_nranks(), threads, share, &p, &perr) == GP_OK)
        rc = gp_plan_refusal(&p, limit, from, cmd, stages | GP_PLAN_BIT(GP_PLAN_LOAD), err);
    /* rank 0's verdict everywhere, not yet reported: the caller's gp_agree prints it once */
    gp_bcast_bytes(&rc, sizeof rc, 0);
    if (rc && err) {
        gp_bcast_bytes(err->msg, sizeof err->msg, 0);
        err->code = (gp_status)rc;
    }
    return (gp_status)rc;
}
