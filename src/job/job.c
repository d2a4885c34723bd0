/* job.c — the job-file key table, INI parsing (inih), overrides, typed values, printing (see job.h).
 *
 * Two passes: the INI lines and the --set overrides only record each key's text and where it
 * came from (an unknown key fails at once, on its line); then every key is converted to its
 * typed value in table order, so a bad value is reported with its origin whether it came from
 * the file, an override or the defaults, and nothing reaches a stage unchecked.
 */
#include "gaprune/job.h"

#include <ctype.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/log.h"
#include "gaprune/model.h"

typedef enum {
    T_STR,      /* char *, escapes decoded */
    T_INT,      /* int */
    T_I64,      /* int64_t */
    T_DBL,      /* double */
    T_BOOL,     /* bool */
    T_CHOICE,   /* an enum: the index of the value in `choices` */
    T_SCOPE,    /* gp_scope */
    T_CRITERIA, /* gp_criteria_list: names of the criteria registry */
    T_NUMBERS,  /* double * + int count (the int follows the pointer's field: see `off2`) */
    T_PATHS,    /* gp_path_list */
} otype;

typedef struct {
    const char *section, *key;
    otype type;
    size_t off, off2;    /* field offset(s) in gp_job */
    const char *def;
    const char *const *choices; /* the names of the enum values, in order, NULL-terminated (T_CHOICE) */
    double lo, hi;       /* numeric range (inclusive); for T_NUMBERS, [lo, hi) */
    const char *help;
} opt;

#define F(field) offsetof(gp_job, field)

/* The names of the enums, in enum order (also the valid values the messages list). */
static const char *const k_on_bad[] = {"fail", "skip", NULL};
static const char *const k_sample[] = {"none", "kmeans", "random", NULL};
static const char *const k_alignment[] = {"tensor", "refcode", NULL};
static const char *const k_layers[] = {"mlp", "attention", "linear", NULL};
static const char *const k_accumulators[] = {"auto", "replicated", "sharded", NULL};
static const char *const k_sharding[] = {"auto", "none", "states", "gradients", NULL};
static const char *const k_recon[] = {"none", "obs", NULL};
const char *const gp_weights_names[] = {"checkpoint", "f32", NULL};
static const char *const k_recon_order[] = {"sequential", "parallel", NULL};

static const opt k_opts[] = {
    {"model", "path", T_STR, F(model.path), 0, "", NULL, 0, 0, "model folder (Hugging Face / sentence-transformers)"},
    {"model", "max_length", T_INT, F(model.max_length), 0, "512", NULL, 2, 1 << 20, "truncate texts to this many tokens"},
    {"model", "recompute", T_BOOL, F(model.recompute), 0, "false", NULL, 0, 0,
     "keep only each transformer block's input in a training forward and run the block again before its backward "
     "(statistics and retraining): one block's activations instead of all, for one more forward; the same gradients"},
    {"model", "activations", T_CHOICE, F(model.activations), 0, "auto", gp_activations_names, 0, 0,
     "what a training forward keeps for its backward (statistics and retraining): all (every block's activations), "
     "lean (only what cannot be made again by elementwise work: the norms' outputs, RoPE, SwiGLU/GELU and the "
     "attention probabilities are made again before each block's backward; about half the memory, e.g. 8.2 instead "
     "of 16 GB for one Qwen3-4B triplet at 512 tokens, a few % slower on small models, under 1% on 4B's) or auto "
     "(lean where all would take more than a quarter of the memory per rank); the same gradients, bitwise"},
    {"model", "compute", T_CHOICE, F(model.compute), 0, "f32", gp_compute_names, 0, 0,
     "the arithmetic of the linear layers' matmuls in every stage: f32 (float32, OpenBLAS) or bf16 (BF16 operands, "
     "float32 sums, oneDNN): about twice the speed on CPUs with AVX512-BF16 or AMX (Zen 4/5, Cooper Lake, Sapphire "
     "Rapids and later; elsewhere emulated, slower than f32), embeddings within about 1e-2; norms, attention, loss "
     "and every accumulator stay float32"},
    {"model", "weights", T_CHOICE, F(model.weights), 0, "checkpoint", gp_weights_names, 0, 0,
     "how the weights are held in memory: checkpoint (as the files store them: 2 bytes a weight when every tensor is "
     "BF16, or every one F16, else float32) or f32 (4 bytes a weight). Statistics, scores, evaluation and encoding are "
     "bitwise the same either way; retraining 16-bit weights keeps float32 master weights for each rank's optimizer "
     "slice and computes with their rounding (within rounding of f32's result); the reconstruction solves in float32"},
    {"model", "query_instruction", T_STR, F(model.query_instruction), 0, "", NULL, 0, 0,
     "prefix for queries at evaluation and retraining; empty: the model's own query prompt "
     "(config_sentence_transformers.json), if any (calibration corpora carry their own: the statistics and the "
     "sample take queries as written)"},
    {"model", "query_task", T_STR, F(model.query_task), 0, "", NULL, 0, 0,
     "task description for Qwen3-Embedding's query format: queries become \"Instruct: {task}\\nQuery:{query}\" "
     "(the model's own prompt form; not with query_instruction)"},
    {"data", "domain", T_STR, F(data.domain), 0, "", NULL, 0, 0, "domain triplets (.json array, .jsonl, FlagEmbedding .jsonl)"},
    {"data", "general", T_STR, F(data.general), 0, "", NULL, 0, 0, "general triplets, same formats"},
    {"data", "max_samples", T_I64, F(data.max_samples), 0, "5000", NULL, 1, 1e15,
     "triplets used per corpus (a seeded sample; not used when sample.method is set: the statistics read the whole "
     "sample)"},
    {"data", "seed", T_I64, F(data.seed), 0, "42", NULL, 0, 1e18, "seed of the triplet sample"},
    {"data", "on_bad_record", T_CHOICE, F(data.on_bad_record), 0, "fail", k_on_bad, 0, 0,
     "a bad record stops the run (fail) or is skipped and counted (skip)"},
    {"sample", "method", T_CHOICE, F(sample.method), 0, "none", k_sample, 0, 0,
     "calibration sample taken from every triplet of each corpus, which the statistics then use: kmeans over the "
     "L2-normalised query embeddings, keeping the triplet nearest each centroid (the paper), or random"},
    {"sample", "k", T_I64, F(sample.k), 0, "5000", NULL, 1, 1e12,
     "clusters (kmeans) or triplets (random) per corpus; a corpus with no more triplets is kept whole"},
    {"sample", "iterations", T_INT, F(sample.iterations), 0, "20", NULL, 1, 1e6,
     "k-means (Lloyd) iterations at most: it stops early when no point changes cluster"},
    {"sample", "model", T_STR, F(sample.model), 0, "", NULL, 0, 0,
     "model that embeds the queries (empty: model.path; the paper used a smaller one of the same family)"},
    {"sample", "seed", T_I64, F(sample.seed), 0, "42", NULL, 0, 1e18, "seed of the k-means++ seeding or of the random sample"},
    {"stats", "fisher_batch", T_INT, F(stats.fisher_batch), 0, "1", NULL, 1, 1e6,
     "triplets per gradient unit (1: per-triplet Fisher as in the paper; 4: the authors' code)"},
    {"stats", "checkpoint_every", T_INT, F(stats.checkpoint_every), 0, "100", NULL, 1, 1e9,
     "gradient units between per-rank checkpoints"},
    {"stats", "alignment", T_CHOICE, F(stats.alignment), 0, "tensor", k_alignment, 0, 0,
     "per-tensor cosine (paper) or the authors' element-wise smoothed product"},
    {"stats", "accumulators", T_CHOICE, F(stats.accumulators), 0, "auto", k_accumulators, 0, 0,
     "where the Fisher and mean-gradient sums live: a full copy on every rank (replicated), or each rank a block "
     "of them, each transformer block's gradients sent to their owners as backward finishes it (sharded: memory per "
     "rank falls with the ranks); auto shards when "
     "the copies would take over a quarter of a rank's share of the node's memory"},
    {"prune", "methods", T_CRITERIA, F(prune.methods), 0, "gaprune", NULL, 0, 0, "criteria, a list of"},
    {"prune", "sparsity", T_NUMBERS, F(prune.sparsity), F(prune.n_sparsity), "0.5", NULL, 0, 1,
     "fraction of the selected weights set to zero (a list makes a sweep)"},
    {"prune", "layers", T_CHOICE, F(prune.layers), 0, "mlp", k_layers, 0, 0, "which weight matrices are pruned"},
    {"prune", "scope", T_SCOPE, F(prune.scope), 0, "global", NULL, 0, 0, "global, layer, row, n:m (e.g. 2:4), neurons (whole MLP neurons, the same count in every block; the pruned folder has the reduced intermediate_size) , neurons-global (whole MLP neurons ranked over all blocks at once, so each block keeps its own count: a folder that only gaprune reads, not transformers) or heads (whole BERT attention heads, layers = attention; config.json records pruned_heads)"},
    {"prune", "alpha", T_DBL, F(prune.alpha), 0, "0.2", NULL, -1e9, 1e9, "DAI alignment weight"},
    {"prune", "beta", T_NUMBERS, F(prune.beta), F(prune.n_beta), "1.0", NULL, -1e9, 1e9,
     "DAI general-Fisher weight (a list: every DAI criterion once per beta and gamma, tagged M-bBETA-gGAMMA)"},
    {"prune", "gamma", T_NUMBERS, F(prune.gamma), F(prune.n_gamma), "0.5", NULL, -1e9, 1e9,
     "DAI magnitude weight (a list, as beta)"},
    {"prune", "seed", T_I64, F(prune.seed), 0, "42", NULL, 0, 1e18, "seed of the random criterion"},
    {"prune", "save_scores", T_BOOL, F(prune.save_scores), 0, "false", NULL, 0, 0, "store every score in the mask file"},
    {"prune", "reconstruct", T_STR, F(prune.reconstruct_text), 0, "none", NULL, 0, 0,
     "none, or obs: after the mask, the kept weights of every pruned layer solved again block by block so that its "
     "outputs on the domain and general calibration inputs stay close to the dense layer's (Optimal Brain Surgeon "
     "steps as SparseGPT takes them); a list (none, obs) makes every criterion once each, the obs ones tagged M+obs"},
    {"prune", "dampening", T_DBL, F(prune.dampening), 0, "0.01", NULL, 1e-8, 10,
     "reconstruction: added to the diagonal of each layer's input Hessian, times its mean (SparseGPT's 0.01)"},
    {"prune", "reconstruct_general", T_DBL, F(prune.reconstruct_general), 0, "1.0", NULL, 0, 1e6,
     "reconstruction: the weight of the general corpus's inputs against the domain's (H = X_dom'X_dom/N_dom + "
     "this * X_gen'X_gen/N_gen); 1 keeps each layer as close on general text as on domain text, as the statistics "
     "read both corpora alike; 0 solves for the domain alone"},
    {"prune", "block", T_INT, F(prune.block), 0, "128", NULL, 1, 65536,
     "reconstruction: columns per lazy update block (SparseGPT's 128); sparsegpt chooses its mask per block"},
    {"prune", "reconstruct_order", T_CHOICE, F(prune.reconstruct_order), 0, "sequential", k_recon_order, 0, 0,
     "reconstruction: each block's inputs from the blocks before it as pruned and reconstructed (sequential) or from "
     "the dense model (parallel, for comparison)"},
    {"prune", "reconstruct_samples", T_I64, F(prune.reconstruct_samples), 0, "256", NULL, 1, 1e12,
     "reconstruction: calibration triplets per corpus (their three texts each; of the calibration sample when "
     "sample.method is set)"},
    {"retrain", "methods", T_CRITERIA, F(retrain.methods), 0, "gaprune", NULL, 0, 0,
     "pruned models to retrain (criteria, a list; empty: none; dense: the dense model as well, retrained alike, the "
     "baseline the report compares the retrained pruned models with) of"},
    {"retrain", "steps", T_INT, F(retrain.steps), 0, "100", NULL, 0, 1e9, "optimizer steps"},
    {"retrain", "lr", T_DBL, F(retrain.lr), 0, "2e-5", NULL, 0, 1, "peak learning rate (AdamW)"},
    {"retrain", "warmup", T_INT, F(retrain.warmup), 0, "10", NULL, 0, 1e9, "linear warm-up steps"},
    {"retrain", "weight_decay", T_DBL, F(retrain.weight_decay), 0, "0.01", NULL, 0, 1, "AdamW weight decay"},
    {"retrain", "batch", T_INT, F(retrain.batch), 0, "16", NULL, 1, 1e6, "triplets per step, in total over ranks"},
    {"retrain", "micro_batch", T_INT, F(retrain.micro_batch), 0, "0", NULL, 0, 1e6,
     "triplets per forward and backward on a rank (0: the rank's whole share of the batch); smaller keeps fewer "
     "activations at the cost of a second forward: the loss stays the whole batch's, the results equal within rounding"},
    {"retrain", "grad_clip", T_DBL, F(retrain.grad_clip), 0, "1.0", NULL, 0, 1e9, "gradient norm clip (0: off)"},
    {"retrain", "checkpoint_every", T_INT, F(retrain.checkpoint_every), 0, "50", NULL, 1, 1e9, "steps between checkpoints"},
    {"retrain", "optimizer_sharding", T_CHOICE, F(retrain.optimizer_sharding), 0, "auto", k_sharding, 0, 0,
     "where AdamW's state lives: every rank a full copy (none); each rank the moments of a 1/ranks slice of the "
     "weights, updating that slice and all-gathering the weights (states: 8 bytes per weight become 8/ranks); "
     "also the summed gradient of the slice only, each transformer block's sent to its owners as backward "
     "finishes it, so no rank holds every gradient (gradients); auto shards the states when the moments would "
     "take over a quarter of a rank's share of the node's memory, and the gradients too when weights, gradient "
     "and moments would take over half. The results "
     "equal the copies' (states bitwise, gradients within rounding)"},
    {"eval", "retrieval", T_PATHS, F(eval.retrieval), 0, "", NULL, 0, 0, "BEIR folders (a list)"},
    {"eval", "sts", T_PATHS, F(eval.sts), 0, "", NULL, 0, 0, "STS JSONL files (a list)"},
    {"eval", "classification", T_PATHS, F(eval.classification), 0, "", NULL, 0, 0,
     "classification folders of train.jsonl and test.jsonl, {\"text\", \"label\"} (a list): logistic regression on the "
     "embeddings, accuracy"},
    {"eval", "clustering", T_PATHS, F(eval.clustering), 0, "", NULL, 0, 0,
     "clustering JSONL files, a set a line {\"sentences\": [...], \"labels\": [...]} (a list): k-means, V-measure"},
    {"eval", "pair_classification", T_PATHS, F(eval.pair_classification), 0, "", NULL, 0, 0,
     "pair classification JSONL files {\"sentence1\", \"sentence2\", \"label\": 0|1} (a list): average precision of the "
     "cosines"},
    {"eval", "reranking", T_PATHS, F(eval.reranking), 0, "", NULL, 0, 0,
     "reranking JSONL files {\"query\", \"positive\": [...], \"negative\": [...]} (a list): MAP, MRR@10"},
    {"eval", "summarization", T_PATHS, F(eval.summarization), 0, "", NULL, 0, 0,
     "summarization JSONL files {\"text\", \"human_summaries\", \"machine_summaries\", \"relevance\"} (a list): "
     "Spearman of the best cosines with the relevance"},
    {"eval", "bitext", T_PATHS, F(eval.bitext), 0, "", NULL, 0, 0,
     "bitext mining JSONL files {\"sentence1\", \"sentence2\"} (a list): nearest-neighbour accuracy"},
    {"eval", "batch", T_INT, F(eval.batch), 0, "64", NULL, 1, 1e6, "texts per forward pass"},
    {"eval", "resamples", T_INT, F(eval.resamples), 0, "10000", NULL, 1000, 1e7,
     "paired bootstrap resamples (and permutations) of every difference the report compares: its 95% interval and p-value; "
     "the report's time grows with it (one comparison of 1,379 STS pairs at 10,000: about 0.2 s of one core, split over "
     "the ranks)"},
    {"eval", "seed", T_I64, F(eval.seed), 0, "42", NULL, 0, 1e18, "seed of those resamples"},
    {"train", "init", T_STR, F(train.init), 0, "", NULL, 0, 0, "model folder, or a config.json for random initialisation"},
    {"train", "corpus", T_STR, F(train.corpus), 0, "", NULL, 0, 0, "training triplets"},
    {"train", "steps", T_INT, F(train.steps), 0, "1000", NULL, 0, 1e9, "optimizer steps"},
    {"train", "lr", T_DBL, F(train.lr), 0, "1e-4", NULL, 0, 1, "peak learning rate"},
    {"train", "batch", T_INT, F(train.batch), 0, "32", NULL, 1, 1e6, "triplets per step"},
    {"output", "dir", T_STR, F(out_dir), 0, "", NULL, 0, 0, "output folder (default out/<job name>)"},
};

#define NOPTS (sizeof k_opts / sizeof k_opts[0])

/* Each key's value as given (leading blanks removed, escapes not yet decoded) and its origin. */
struct gp_job_text {
    char *value[NOPTS];
    char *origin[NOPTS];
};

static void *field(gp_job *j, const opt *o) { return (char *)j + o->off; }

static int find(const char *section, const char *key) {
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(k_opts[i].section, section) == 0 && strcmp(k_opts[i].key, key) == 0) return (int)i;
    return -1;
}

static bool section_known(const char *section) {
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(k_opts[i].section, section) == 0) return true;
    return false;
}

/* ---- names of the enums ------------------------------------------------------------------- */

/* "a|b|c" into buf: the valid values, for messages and help. */
static const char *joined(const char *const *names, char *buf, size_t n) {
    size_t at = 0;
    buf[0] = '\0';
    for (const char *const *c = names; *c && at < n; c++) at += (size_t)snprintf(buf + at, n - at, "%s%s", c == names ? "" : "|", *c);
    return buf;
}

/* Index of v in names, or -1. */
static int choice_index(const char *const *names, const char *v) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], v)) return i;
    return -1;
}

static const char *name_of(const char *const *names, int i) {
    for (int k = 0; names[k]; k++)
        if (k == i) return names[k];
    return "?";
}

const char *gp_sample_method_name(gp_sample_method m) { return name_of(k_sample, (int)m); }
const char *gp_alignment_name(gp_alignment a) { return name_of(k_alignment, (int)a); }
const char *gp_layers_name(gp_layers l) { return name_of(k_layers, (int)l); }
const char *gp_optimizer_sharding_name(gp_optimizer_sharding s) { return name_of(k_sharding, (int)s); }
const char *gp_recon_kind_name(gp_recon_kind k) { return name_of(k_recon, (int)k); }
const char *gp_recon_order_name(gp_recon_order o) { return name_of(k_recon_order, (int)o); }

/* ---- typed values from text ---------------------------------------------------------------- */

static char *unescape(const char *v) {
    char *out = gp_malloc(strlen(v) + 1), *o = out;
    for (const char *p = v; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            *o++ = *p == 'n'   ? '\n'
                   : *p == 't' ? '\t'
                   : *p == 's' ? ' '
                   : *p == 'r' ? '\r'
                   : *p == 'f' ? '\f'
                   : *p == 'v' ? '\v'
                               : *p;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* Splits a comma-separated list (blanks around entries trimmed, empty entries dropped) into a
 * malloc'd array of malloc'd strings. */
static int split_list(const char *s, char ***out) {
    char **v = NULL;
    int n = 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        const char *a = p;
        while (a < e && (*a == ' ' || *a == '\t')) a++;
        const char *b = e;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (b > a) {
            v = gp_realloc(v, (size_t)(n + 1) * sizeof *v);
            v[n++] = gp_strndup(a, (size_t)(b - a));
        }
        p = comma ? comma + 1 : e;
    }
    *out = v;
    return n;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

#define BAD(...) gp_errf(err, GP_EINPUT, __VA_ARGS__)

static gp_status set_value(gp_job *j, const opt *o, const char *v, const char *where, gp_err *err) {
    char *end = NULL;
    switch (o->type) {
    case T_STR: {
        char **dst = field(j, o);
        free(*dst);
        *dst = unescape(v);
        return GP_OK;
    }
    case T_INT:
    case T_I64: {
        long long x = strtoll(v, &end, 10);
        if (!*v || *end) return BAD("%s: [%s] %s: expected an integer, got \"%s\"", where, o->section, o->key, v);
        if ((double)x < o->lo || (double)x > o->hi)
            return BAD("%s: [%s] %s = %lld is out of range [%g, %g]", where, o->section, o->key, x, o->lo, o->hi);
        if (o->type == T_INT) *(int *)field(j, o) = (int)x;
        else *(int64_t *)field(j, o) = x;
        return GP_OK;
    }
    case T_DBL: {
        double x = strtod(v, &end);
        if (!*v || *end || !isfinite(x)) return BAD("%s: [%s] %s: expected a number, got \"%s\"", where, o->section, o->key, v);
        if (x < o->lo || x > o->hi)
            return BAD("%s: [%s] %s = %g is out of range [%g, %g]", where, o->section, o->key, x, o->lo, o->hi);
        *(double *)field(j, o) = x;
        return GP_OK;
    }
    case T_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "on")) *(bool *)field(j, o) = true;
        else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "off")) *(bool *)field(j, o) = false;
        else return BAD("%s: [%s] %s: expected true or false, got \"%s\"", where, o->section, o->key, v);
        return GP_OK;
    case T_CHOICE: {
        int i = choice_index(o->choices, v);
        char valid[256];
        if (i < 0)
            return BAD("%s: [%s] %s: \"%s\" is not one of %s", where, o->section, o->key, v, joined(o->choices, valid, sizeof valid));
        *(int *)field(j, o) = i;
        return GP_OK;
    }
    case T_SCOPE: {
        gp_err e = {0};
        if (gp_scope_parse(v, field(j, o), &e))
            return BAD("%s: [%s] %s: \"%s\" is not one of global|layer|row|n:m|neurons|neurons-global|heads (0 <= n < m <= 64, e.g. 2:4)", where,
                       o->section, o->key, v);
        return GP_OK;
    }
    case T_CRITERIA: {
        gp_criteria_list *l = field(j, o);
        char **names;
        int n = split_list(v, &names);
        gp_status rc = GP_OK;
        const gp_criterion **c = gp_malloc((size_t)(n ? n : 1) * sizeof *c);
        /* retrain.methods may name the dense model: the baseline retrained alike (not a criterion) */
        const bool retrain = !strcmp(o->section, "retrain");
        if (retrain) j->retrain.dense = false;
        int kept = 0;
        for (int i = 0; i < n && !rc; i++) {
            if (retrain && !strcmp(names[i], "dense")) {
                j->retrain.dense = true;
                continue;
            }
            const int k = kept++;
            c[k] = gp_criterion_find(names[i]);
            if (!c[k]) {
                char valid[512];
                gp_criteria_names(valid, sizeof valid);
                rc = BAD("%s: [%s] %s: \"%s\" is not a criterion; one of %s%s", where, o->section, o->key, names[i], valid,
                         retrain ? ", or dense" : "");
            }
        }
        free_list(names, n);
        n = kept;
        if (rc) {
            free(c);
            return rc;
        }
        free(l->v);
        l->v = c;
        l->n = n;
        return GP_OK;
    }
    case T_NUMBERS: {
        char **items;
        int n = split_list(v, &items);
        double *x = gp_malloc((size_t)(n ? n : 1) * sizeof *x);
        gp_status rc = n ? GP_OK : BAD("%s: [%s] %s: empty list", where, o->section, o->key);
        for (int i = 0; i < n && !rc; i++) {
            x[i] = strtod(items[i], &end);
            if (*end || !(x[i] >= o->lo && x[i] < o->hi))
                rc = BAD("%s: [%s] %s: \"%s\" is not a number in [%g, %g) (in \"%s\")", where, o->section, o->key, items[i],
                         o->lo, o->hi, v);
        }
        free_list(items, n);
        if (rc) {
            free(x);
            return rc;
        }
        double **dst = field(j, o);
        free(*dst);
        *dst = x;
        *(int *)((char *)j + o->off2) = n;
        return GP_OK;
    }
    case T_PATHS: {
        gp_path_list *l = field(j, o);
        free_list(l->v, l->n);
        l->n = split_list(v, &l->v);
        return GP_OK;
    }
    }
    return GP_EINTERNAL;
}

/* ---- recording the text of each key ------------------------------------------------------------ */

static gp_status record(gp_job *j, const char *section, const char *key, const char *value, const char *origin,
                        gp_err *err) {
    int i = find(section, key);
    if (i < 0) {
        if (!*section) return BAD("%s: \"%s\" is outside any [section]", origin, key);
        if (!section_known(section)) return BAD("%s: unknown section [%s]", origin, section);
        return BAD("%s: unknown key \"%s\" in [%s] (see gaprune help-job)", origin, key, section);
    }
    while (*value == ' ' || *value == '\t') value++;
    free(j->text->value[i]);
    free(j->text->origin[i]);
    j->text->value[i] = gp_strdup(value);
    j->text->origin[i] = gp_strdup(origin);
    return GP_OK;
}

typedef struct {
    gp_job *j;
    const char *text; /* the file's bytes, read line by line */
    const char *path;
    int line;
    bool at_line_start; /* the last chunk ended a line (one that fits but for its line end comes in two) */
    gp_err first;
    int failed;
} ini_ctx;

/* inih reads through this, one line a call, so the handler knows the line of every value. */
static char *read_line(char *str, int num, void *stream) {
    ini_ctx *x = stream;
    if (!*x->text || x->failed) return NULL;
    const char *nl = strchr(x->text, '\n');
    size_t len = nl ? (size_t)(nl - x->text) + 1 : strlen(x->text);
    if (x->at_line_start) {
        /* inih's buffer holds num - 1 bytes and reads a longer line as several: the rest of a
         * long value would be parsed as lines of their own (a "key = value" inside it set) */
        size_t text = len - (nl != NULL);
        if (text && x->text[text - 1] == '\r') text--;
        if (text > (size_t)num - 1) {
            x->first = (gp_err){.code = GP_EINPUT};
            snprintf(x->first.msg, sizeof x->first.msg,
                     "%s:%d: the line is %zu characters long; a job-file line holds at most %d (--set takes longer values)",
                     x->path, x->line + 1, text, num - 1);
            x->failed = 1;
            return NULL;
        }
        /* INI reads a line that starts with a blank as the rest of the value above it: an indented
         * "key = value" (or section) would silently become the previous key's value */
        size_t b = 0;
        while (b < text && isspace((unsigned char)x->text[b])) b++;
        if (b > 0 && b < text && x->text[b] != ';' && x->text[b] != '#') {
            x->first = (gp_err){.code = GP_EINPUT};
            snprintf(x->first.msg, sizeof x->first.msg,
                     "%s:%d: an indented line (INI would read it as the rest of the value above it): keys and "
                     "sections start at the beginning of their line",
                     x->path, x->line + 1);
            x->failed = 1;
            return NULL;
        }
    }
    if (len > (size_t)num - 1) len = (size_t)num - 1; /* the line end alone is left for the next call */
    memcpy(str, x->text, len);
    str[len] = '\0';
    x->text += len;
    if (x->at_line_start) x->line++;
    x->at_line_start = len > 0 && str[len - 1] == '\n';
    return str;
}

static int on_ini_value(void *user, const char *section, const char *name, const char *value) {
    ini_ctx *x = user;
    char origin[4200];
    snprintf(origin, sizeof origin, "%s:%d", x->path, x->line);
    gp_err e = {0};
    if (record(x->j, section, name, value, origin, &e) == GP_OK) return 1;
    if (!x->failed) x->first = e;
    x->failed = 1;
    return 0;
}

static gp_status read_sets(gp_job *j, const char *const *sets, const char *const *origins, int nsets, gp_err *err) {
    for (int i = 0; i < nsets; i++) {
        const char *dot = strchr(sets[i], '.'), *eq = strchr(sets[i], '=');
        if (!dot || !eq || dot > eq) return BAD("--set %s: expected section.key=value", sets[i]);
        if (origins && origins[i]) {
            gp_status rc = GP_OK;
            char *sec = gp_strndup(sets[i], (size_t)(dot - sets[i])), *key = gp_strndup(dot + 1, (size_t)(eq - dot - 1));
            rc = record(j, sec, key, eq + 1, origins[i], err);
            free(sec), free(key);
            if (rc) return rc;
            continue;
        }
        char *sec = gp_strdup(sets[i]);
        sec[dot - sets[i]] = '\0';
        char *key = sec + (dot - sets[i]) + 1;
        key[eq - dot - 1] = '\0';
        char *origin = gp_malloc(strlen(sets[i]) + 8);
        sprintf(origin, "--set %s", sets[i]);
        gp_status rc = record(j, sec, key, eq + 1, origin, err);
        free(origin);
        free(sec);
        if (rc) return rc;
    }
    return GP_OK;
}

/* ---- the job ------------------------------------------------------------------------------------- */

static void init_text(gp_job *j) {
    j->text = gp_calloc(1, sizeof *j->text);
    for (size_t i = 0; i < NOPTS; i++) {
        j->text->value[i] = gp_strdup(k_opts[i].def);
        j->text->origin[i] = gp_strdup("default");
    }
}

/* Every key from its text, in table order; then the checks that involve several keys. */
static gp_status convert(gp_job *j, gp_err *err) {
    for (size_t i = 0; i < NOPTS; i++) {
        gp_status rc = set_value(j, &k_opts[i], j->text->value[i], j->text->origin[i], err);
        if (rc) return rc;
    }
    if (!*j->out_dir) {
        free(j->out_dir);
        j->out_dir = gp_malloc(strlen(j->name) + 5);
        sprintf(j->out_dir, "out/%s", j->name);
    }
    if (*j->model.query_task) {
        if (*j->model.query_instruction)
            return BAD("%s and %s: [model] query_task and query_instruction are both set (use one)",
                       gp_job_origin(j, "model", "query_task"), gp_job_origin(j, "model", "query_instruction"));
        free(j->model.query_instruction);
        j->model.query_instruction = gp_query_instruct(j->model.query_task);
    }
    /* prune.reconstruct: a list of none and obs, each once */
    free(j->prune.reconstruct);
    j->prune.reconstruct = NULL, j->prune.n_reconstruct = 0;
    {
        char **v;
        const int n = split_list(j->prune.reconstruct_text, &v);
        gp_status rc = n ? GP_OK : BAD("%s: [prune] reconstruct: empty (none, obs or both)", gp_job_origin(j, "prune", "reconstruct"));
        j->prune.reconstruct = gp_malloc((size_t)(n ? n : 1) * sizeof *j->prune.reconstruct);
        for (int i = 0; i < n && !rc; i++) {
            const int k = choice_index(k_recon, v[i]);
            bool twice = false;
            for (int q = 0; q < j->prune.n_reconstruct; q++) twice |= (int)j->prune.reconstruct[q] == k;
            if (k < 0 || twice)
                rc = BAD("%s: [prune] reconstruct: \"%s\" is %s (a list of none and obs)", gp_job_origin(j, "prune", "reconstruct"),
                         v[i], k < 0 ? "not one of none|obs" : "given twice");
            else j->prune.reconstruct[j->prune.n_reconstruct++] = (gp_recon_kind)k;
        }
        free_list(v, n);
        if (rc) return rc;
    }
    /* a structured criterion scores whole neurons: no other scope has them */
    const gp_criteria_list *lists[2] = {&j->prune.methods, &j->retrain.methods};
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < lists[l]->n; i++)
            if ((lists[l]->v[i]->needs & GP_NEED_NEURONS) && j->prune.scope.kind != GP_SCOPE_NEURONS &&
                j->prune.scope.kind != GP_SCOPE_NEURONS_GLOBAL)
                return BAD("%s: %s scores whole MLP neurons: it needs [prune] scope = neurons or neurons-global (%s)",
                           gp_job_origin(j, l ? "retrain" : "prune", "methods"), lists[l]->v[i]->name,
                           gp_job_origin(j, "prune", "scope"));
    /* sparsegpt chooses weights inside one layer's column blocks: no whole structures */
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < lists[l]->n; i++)
            if ((lists[l]->v[i]->needs & GP_NEED_OBS) && gp_scope_structured(&j->prune.scope))
                return BAD("%s: %s chooses single weights inside each layer's column blocks: it takes [prune] scope = "
                           "global (meaning layer), layer, row or n:m, not %s (%s)",
                           gp_job_origin(j, l ? "retrain" : "prune", "methods"), lists[l]->v[i]->name,
                           j->prune.scope.kind == GP_SCOPE_HEADS ? "heads" : j->prune.scope.kind == GP_SCOPE_NEURONS ? "neurons" : "neurons-global",
                           gp_job_origin(j, "prune", "scope"));
    /* the run is still sound (the rate just never reaches retrain.lr): a warning, not an error */
    if (j->retrain.steps > 0 && j->retrain.warmup > j->retrain.steps)
        gp_warn("%s: [retrain] warmup = %d is more than [retrain] steps = %d (%s): the learning rate never reaches "
                "retrain.lr; continuing",
                gp_job_origin(j, "retrain", "warmup"), j->retrain.warmup, j->retrain.steps, gp_job_origin(j, "retrain", "steps"));
    return GP_OK;
}

static void set_name(gp_job *j, const char *path) {
    j->path = gp_strdup(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    j->name = gp_strdup(base);
    size_t bl = strlen(j->name);
    if (bl > 4 && strcmp(j->name + bl - 4, ".ini") == 0) j->name[bl - 4] = '\0';
}

void gp_job_defaults(gp_job *j) {
    memset(j, 0, sizeof *j);
    set_name(j, "job");
    init_text(j);
    gp_err err = {0};
    GP_CHECK(convert(j, &err) == GP_OK, "defaults: %s", err.msg);
}

gp_status gp_job_load(gp_job *j, const char *path, const char *const *sets, const char *const *origins, int nsets,
                      gp_err *err) {
    memset(j, 0, sizeof *j);
    set_name(j, path);
    init_text(j);

    /* Rank 0 reads the file; every rank parses the same bytes. */
    char *text = NULL;
    size_t len = 0;
    gp_status rc = GP_OK;
    if (gp_rank() == 0) rc = gp_read_file(path, &text, &len, err);
    if ((rc = gp_agree(rc, err))) return rc;
    gp_bcast_string(&text, 0);

    ini_ctx x = {.j = j, .text = text, .path = path, .at_line_start = true};
    int line = ini_parse_stream(read_line, &x, on_ini_value, &x);
    free(text);
    if (line != 0 || x.failed) {
        if (x.failed) return gp_errf(err, GP_EINPUT, "%s", x.first.msg);
        return BAD("%s:%d: not an INI line (expected [section] or key = value)", path, line);
    }
    if ((rc = read_sets(j, sets, origins, nsets, err))) return rc;
    return convert(j, err);
}

void gp_job_free(gp_job *j) {
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &k_opts[i];
        switch (o->type) {
        case T_STR: free(*(char **)field(j, o)); break;
        case T_CRITERIA: free(((gp_criteria_list *)field(j, o))->v); break;
        case T_NUMBERS: free(*(double **)field(j, o)); break;
        case T_PATHS: free_list(((gp_path_list *)field(j, o))->v, ((gp_path_list *)field(j, o))->n); break;
        default: break;
        }
        if (j->text) free(j->text->value[i]), free(j->text->origin[i]);
    }
    free(j->prune.reconstruct);
    free(j->text);
    free(j->path);
    free(j->name);
    memset(j, 0, sizeof *j);
}

const char *gp_job_origin(const gp_job *j, const char *section, const char *key) {
    int i = find(section, key);
    return i >= 0 && j->text ? j->text->origin[i] : "default";
}

/* ---- printing and help ----------------------------------------------------------------------------- */

char *gp_job_get(const gp_job *j, const char *section, const char *key) {
    int i = find(section, key);
    if (i < 0) return NULL;
    const opt *o = &k_opts[i];
    const void *f = (const char *)j + o->off;
    char buf[64];
    switch (o->type) {
    case T_STR: return gp_strdup(*(char *const *)f ? *(char *const *)f : "");
    case T_INT: snprintf(buf, sizeof buf, "%d", *(const int *)f); break;
    case T_I64: snprintf(buf, sizeof buf, "%lld", (long long)*(const int64_t *)f); break;
    case T_DBL: snprintf(buf, sizeof buf, "%.17g", *(const double *)f); break;
    case T_BOOL: snprintf(buf, sizeof buf, "%s", *(const bool *)f ? "true" : "false"); break;
    case T_CHOICE: snprintf(buf, sizeof buf, "%s", o->choices[*(const int *)f]); break;
    case T_SCOPE: /* lists and the scope: as given, so a dump reads back the same */
    case T_CRITERIA:
    case T_NUMBERS:
    case T_PATHS: return gp_strdup(j->text->value[i]);
    }
    return gp_strdup(buf);
}

/* Prints a string value with what INI would read otherwise escaped again (newlines, tabs and
 * the other white space of isspace, which INI trims at either end, backslashes, blanks at either
 * end, and ';', which starts a comment after a blank), so the dump reads back as a job file with
 * the same values. */
static void print_escaped(FILE *f, const char *v) {
    for (const char *p = v; *p; p++) {
        if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p == '\r') fputs("\\r", f);
        else if (*p == '\f') fputs("\\f", f);
        else if (*p == '\v') fputs("\\v", f);
        else if (*p == ' ' && (p == v || p[1] == '\0')) fputs("\\s", f);
        else if (*p == '\\') fputs("\\\\", f);
        else if (*p == ';') fputs("\\;", f);
        else fputc(*p, f);
    }
}

/* Keys at the start of their lines (INI reads an indented line as the continuation of the key
 * before it), strings escaped, the values kept as given printed as given (their escapes were
 * never decoded), so that the dump loads as a job file with the same values. */
void gp_job_print(const gp_job *j, FILE *f) {
    const char *sec = "";
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &k_opts[i];
        if (strcmp(sec, o->section)) {
            sec = o->section;
            fprintf(f, "[%s]\n", sec);
        }
        if (o->off == F(model.query_instruction) && *j->model.query_task) {
            /* the effective prefix was made from query_task, which is printed too: the two
             * together would not load */
            fprintf(f, "%s = ", o->key);
        } else if (o->type == T_STR) {
            fprintf(f, "%s = ", o->key);
            print_escaped(f, *(char *const *)field((gp_job *)j, o));
        } else {
            /* as given, but a ';' that followed '=' directly (no comment then) must not get a
             * blank before it, which would make it one */
            char *v = gp_job_get(j, o->section, o->key);
            fprintf(f, "%s =%s%s", o->key, v[0] == ';' ? "" : " ", v);
            free(v);
        }
        fputc('\n', f);
    }
    fflush(f);
}

void gp_job_help(FILE *f) {
    char criteria[512];
    gp_criteria_names(criteria, sizeof criteria);
    fprintf(f, "Job files are INI: [section] then key = value lines; ';' or '#' start comments.\n"
               "Any key can be overridden with --set section.key=value.\n");
    const char *sec = "";
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &k_opts[i];
        if (strcmp(sec, o->section)) {
            sec = o->section;
            fprintf(f, "\n[%s]\n", sec);
        }
        char def[256], valid[160];
        snprintf(def, sizeof def, "%s%s%s", o->choices ? joined(o->choices, valid, sizeof valid) : "",
                 o->choices ? ", default " : "default ", *o->def ? o->def : "\"\"");
        if (o->type == T_CRITERIA) fprintf(f, "  %-18s %s %s (%s)\n", o->key, o->help, criteria, def);
        else fprintf(f, "  %-18s %s (%s)\n", o->key, o->help, def);
    }
    fprintf(f, "\nCriteria (prune.methods, retrain.methods):\n");
    for (const gp_criterion *const *c = gp_criteria(); *c; c++) fprintf(f, "  %-18s %s\n", (*c)->name, (*c)->description);
    fprintf(f, "\nArchitectures (model.path: config.json's model_type):\n");
    for (const gp_arch_info *const *a = gp_architectures(); *a; a++) {
        char types[256] = "";
        for (const char *const *t = (*a)->model_types; *t; t++)
            snprintf(types + strlen(types), sizeof types - strlen(types), "%s%s", t == (*a)->model_types ? "" : ", ", *t);
        fprintf(f, "  %-18s %s (model_type %s)\n", (*a)->name, (*a)->description, types);
    }
}
