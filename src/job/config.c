/* config.c — the job-file option table, INI parsing (inih), overrides and printing (see config.h). */
#include "gaprune/config.h"

#include <ini.h>
#include <math.h>
#include <mpi.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/log.h"
#include "gaprune/model.h"

typedef enum { T_STR, T_INT, T_I64, T_DBL, T_BOOL, T_CHOICE, T_CHOICE_INDEX } otype;

typedef struct {
    const char *section, *key;
    otype type;
    size_t off;
    const char *def;
    const char *choices; /* "a|b|c" for T_CHOICE / T_CHOICE_INDEX */
    double lo, hi;       /* numeric range (inclusive) */
    const char *help;
} opt;

#define F(field) offsetof(gp_config, field)

static const opt k_opts[] = {
    {"model", "path", T_STR, F(model_path), "", NULL, 0, 0, "model folder (Hugging Face / sentence-transformers)"},
    {"model", "max_length", T_INT, F(max_length), "512", NULL, 2, 1 << 20, "truncate texts to this many tokens"},
    {"model", "query_instruction", T_STR, F(query_instruction), "", NULL, 0, 0,
     "prefix for queries at evaluation and retraining; empty: the model's own query prompt "
     "(config_sentence_transformers.json), if any (calibration corpora carry their own: the statistics and the "
     "sample take queries as written)"},
    {"model", "query_task", T_STR, F(query_task), "", NULL, 0, 0,
     "task description for Qwen3-Embedding's query format: queries become \"Instruct: {task}\\nQuery:{query}\" "
     "(the model's own prompt form; not with query_instruction)"},
    {"data", "domain", T_STR, F(domain), "", NULL, 0, 0, "domain triplets (.json array, .jsonl, FlagEmbedding .jsonl)"},
    {"data", "general", T_STR, F(general), "", NULL, 0, 0, "general triplets, same formats"},
    {"data", "max_samples", T_I64, F(max_samples), "5000", NULL, 1, 1e15,
     "triplets used per corpus (a seeded sample; not used when sample.method is set: the statistics read the whole "
     "sample)"},
    {"data", "seed", T_I64, F(data_seed), "42", NULL, 0, 1e18, "seed of the triplet sample"},
    {"data", "on_bad_record", T_CHOICE_INDEX, F(on_bad_record), "fail", "fail|skip", 0, 0,
     "a bad record stops the run (fail) or is skipped and counted (skip)"},
    {"sample", "method", T_CHOICE, F(sample_method), "none", "none|kmeans|random", 0, 0,
     "calibration sample taken from every triplet of each corpus, which the statistics then use: kmeans over the "
     "L2-normalised query embeddings, keeping the triplet nearest each centroid (the paper), or random"},
    {"sample", "k", T_I64, F(sample_k), "5000", NULL, 1, 1e12,
     "clusters (kmeans) or triplets (random) per corpus; a corpus with no more triplets is kept whole"},
    {"sample", "iterations", T_INT, F(sample_iterations), "20", NULL, 1, 1e6,
     "k-means (Lloyd) iterations at most: it stops early when no point changes cluster"},
    {"sample", "model", T_STR, F(sample_model), "", NULL, 0, 0,
     "model that embeds the queries (empty: model.path; the paper used a smaller one of the same family)"},
    {"sample", "seed", T_I64, F(sample_seed), "42", NULL, 0, 1e18, "seed of the k-means++ seeding or of the random sample"},
    {"stats", "fisher_batch", T_INT, F(fisher_batch), "1", NULL, 1, 1e6,
     "triplets per gradient unit (1: per-triplet Fisher as in the paper; 4: the authors' code)"},
    {"stats", "checkpoint_every", T_INT, F(checkpoint_every), "100", NULL, 1, 1e9,
     "gradient units between per-rank checkpoints"},
    {"stats", "alignment", T_CHOICE, F(alignment), "tensor", "tensor|refcode", 0, 0,
     "per-tensor cosine (paper) or the authors' element-wise smoothed product"},
    {"prune", "methods", T_STR, F(prune_methods), "gaprune", NULL, 0, 0,
     "criteria: gaprune, gaprune-ref, magnitude, fisher-domain, fisher-general, random, wanda"},
    {"prune", "sparsity", T_STR, F(sparsity), "0.5", NULL, 0, 0, "fraction of the selected weights set to zero (a list makes a sweep)"},
    {"prune", "layers", T_CHOICE, F(layers), "mlp", "mlp|attention|linear", 0, 0, "which weight matrices are pruned"},
    {"prune", "scope", T_STR, F(scope), "global", NULL, 0, 0, "global, layer, row or n:m (e.g. 2:4)"},
    {"prune", "alpha", T_DBL, F(alpha), "0.2", NULL, -1e9, 1e9, "DAI alignment weight"},
    {"prune", "beta", T_DBL, F(beta), "1.0", NULL, -1e9, 1e9, "DAI general-Fisher weight"},
    {"prune", "gamma", T_DBL, F(gamma), "0.5", NULL, -1e9, 1e9, "DAI magnitude weight"},
    {"prune", "seed", T_I64, F(prune_seed), "42", NULL, 0, 1e18, "seed of the random criterion"},
    {"prune", "save_scores", T_BOOL, F(save_scores), "false", NULL, 0, 0, "store every score in the mask file"},
    {"retrain", "methods", T_STR, F(retrain_methods), "gaprune", NULL, 0, 0, "pruned models to retrain"},
    {"retrain", "steps", T_INT, F(retrain_steps), "100", NULL, 0, 1e9, "optimizer steps"},
    {"retrain", "lr", T_DBL, F(lr), "2e-5", NULL, 0, 1, "peak learning rate (AdamW)"},
    {"retrain", "warmup", T_INT, F(warmup), "10", NULL, 0, 1e9, "linear warm-up steps"},
    {"retrain", "weight_decay", T_DBL, F(weight_decay), "0.01", NULL, 0, 1, "AdamW weight decay"},
    {"retrain", "batch", T_INT, F(retrain_batch), "16", NULL, 1, 1e6, "triplets per step, in total over ranks"},
    {"retrain", "grad_clip", T_DBL, F(grad_clip), "1.0", NULL, 0, 1e9, "gradient norm clip (0: off)"},
    {"retrain", "checkpoint_every", T_INT, F(retrain_checkpoint_every), "50", NULL, 1, 1e9, "steps between checkpoints"},
    {"eval", "retrieval", T_STR, F(eval_retrieval), "", NULL, 0, 0, "BEIR folders (a list)"},
    {"eval", "sts", T_STR, F(eval_sts), "", NULL, 0, 0, "STS JSONL files (a list)"},
    {"eval", "batch", T_INT, F(eval_batch), "64", NULL, 1, 1e6, "texts per forward pass"},
    {"train", "init", T_STR, F(train_init), "", NULL, 0, 0, "model folder, or a config.json for random initialisation"},
    {"train", "corpus", T_STR, F(train_corpus), "", NULL, 0, 0, "training triplets"},
    {"train", "steps", T_INT, F(train_steps), "1000", NULL, 0, 1e9, "optimizer steps"},
    {"train", "lr", T_DBL, F(train_lr), "1e-4", NULL, 0, 1, "peak learning rate"},
    {"train", "batch", T_INT, F(train_batch), "32", NULL, 1, 1e6, "triplets per step"},
    {"output", "dir", T_STR, F(out_dir), "", NULL, 0, 0, "output folder (default out/<job name>)"},
};

#define NOPTS (sizeof k_opts / sizeof k_opts[0])

static void *field(gp_config *c, const opt *o) { return (char *)c + o->off; }
static const void *cfield(const gp_config *c, const opt *o) { return (const char *)c + o->off; }

static const opt *find(const char *section, const char *key) {
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(k_opts[i].section, section) == 0 && strcmp(k_opts[i].key, key) == 0) return &k_opts[i];
    return NULL;
}

static bool section_known(const char *section) {
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(k_opts[i].section, section) == 0) return true;
    return false;
}

static char *unescape(const char *v) {
    char *out = gp_malloc(strlen(v) + 1), *o = out;
    for (const char *p = v; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            *o++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 's' ? ' ' : *p;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* Index of value in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *v) {
    int i = 0;
    size_t n = strlen(v);
    for (const char *p = choices; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return i;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

static const char *choice_at(const char *choices, int idx, char *buf, size_t n) {
    const char *p = choices;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p) return "?";
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len >= n) len = n - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return buf;
}

static gp_status set_value(gp_config *c, const opt *o, const char *v, const char *where, gp_err *err) {
    char *end = NULL;
    while (*v == ' ' || *v == '\t') v++;
    switch (o->type) {
    case T_STR: {
        char **dst = field(c, o);
        free(*dst);
        *dst = unescape(v);
        return GP_OK;
    }
    case T_INT:
    case T_I64: {
        long long x = strtoll(v, &end, 10);
        if (!*v || *end) return gp_errf(err, GP_EINPUT, "%s: [%s] %s: expected an integer, got \"%s\"", where, o->section, o->key, v);
        if ((double)x < o->lo || (double)x > o->hi)
            return gp_errf(err, GP_EINPUT, "%s: [%s] %s = %lld is out of range [%g, %g]", where, o->section, o->key, x, o->lo, o->hi);
        if (o->type == T_INT) *(int *)field(c, o) = (int)x;
        else *(int64_t *)field(c, o) = x;
        return GP_OK;
    }
    case T_DBL: {
        double x = strtod(v, &end);
        if (!*v || *end || !isfinite(x))
            return gp_errf(err, GP_EINPUT, "%s: [%s] %s: expected a number, got \"%s\"", where, o->section, o->key, v);
        if (x < o->lo || x > o->hi)
            return gp_errf(err, GP_EINPUT, "%s: [%s] %s = %g is out of range [%g, %g]", where, o->section, o->key, x, o->lo, o->hi);
        *(double *)field(c, o) = x;
        return GP_OK;
    }
    case T_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "on")) *(bool *)field(c, o) = true;
        else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "off")) *(bool *)field(c, o) = false;
        else return gp_errf(err, GP_EINPUT, "%s: [%s] %s: expected true or false, got \"%s\"", where, o->section, o->key, v);
        return GP_OK;
    case T_CHOICE:
    case T_CHOICE_INDEX: {
        int i = choice_index(o->choices, v);
        if (i < 0) return gp_errf(err, GP_EINPUT, "%s: [%s] %s: \"%s\" is not one of %s", where, o->section, o->key, v, o->choices);
        if (o->type == T_CHOICE_INDEX) {
            *(int *)field(c, o) = i;
        } else {
            char **dst = field(c, o);
            free(*dst);
            *dst = gp_strdup(v);
        }
        return GP_OK;
    }
    }
    return GP_EINTERNAL;
}

gp_status gp_config_set(gp_config *c, const char *section, const char *key, const char *value, const char *where,
                        gp_err *err) {
    const opt *o = find(section, key);
    if (!o) {
        if (!*section) return gp_errf(err, GP_EINPUT, "%s: \"%s\" is outside any [section]", where, key);
        if (!section_known(section)) return gp_errf(err, GP_EINPUT, "%s: unknown section [%s]", where, section);
        return gp_errf(err, GP_EINPUT, "%s: unknown key \"%s\" in [%s] (see gaprune help-job)", where, key, section);
    }
    return set_value(c, o, value, where, err);
}

void gp_config_defaults(gp_config *c) {
    memset(c, 0, sizeof *c);
    gp_err err;
    for (size_t i = 0; i < NOPTS; i++) GP_CHECK(set_value(c, &k_opts[i], k_opts[i].def, "defaults", &err) == GP_OK, "%s", err.msg);
}

void gp_config_free(gp_config *c) {
    for (size_t i = 0; i < NOPTS; i++)
        if (k_opts[i].type == T_STR || k_opts[i].type == T_CHOICE) free(*(char **)field(c, &k_opts[i]));
    free(c->job_path);
    free(c->job_name);
    memset(c, 0, sizeof *c);
}

typedef struct {
    gp_config *c;
    const char *path;
    gp_err first;
    int failed;
} ini_ctx;

static int job_ini_handler(void *user, const char *section, const char *name, const char *value) {
    ini_ctx *x = user;
    gp_err e = {0};
    if (gp_config_set(x->c, section, name, value, x->path, &e) == GP_OK) return 1;
    if (!x->failed) x->first = e;
    x->failed = 1;
    return 0;
}

static gp_status check_sparsity_list(const char *path, const char *s, gp_err *err) {
    const char *p = s;
    int n = 0;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v >= 0 && v < 1))
            return gp_errf(err, GP_EINPUT, "%s: [prune] sparsity: \"%s\" must be a comma-separated list of numbers in [0, 1)", path, s);
        n++;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) return gp_errf(err, GP_EINPUT, "%s: [prune] sparsity: \"%s\" must be a comma-separated list of numbers in [0, 1)", path, s);
        while (*p == ' ') p++;
    }
    if (!n) return gp_errf(err, GP_EINPUT, "%s: [prune] sparsity: empty list", path);
    return GP_OK;
}

static gp_status validate(gp_config *c, gp_err *err) {
    if (!c->out_dir || !*c->out_dir) {
        free(c->out_dir);
        c->out_dir = gp_malloc(strlen(c->job_name) + 5);
        sprintf(c->out_dir, "out/%s", c->job_name);
    }
    if (c->query_task && *c->query_task) {
        if (c->query_instruction && *c->query_instruction)
            return gp_errf(err, GP_EINPUT, "%s: [model] query_task and query_instruction are both set (use one)", c->job_path);
        free(c->query_instruction);
        c->query_instruction = gp_query_instruct(c->query_task);
    }
    gp_status rc = check_sparsity_list(c->job_path, c->sparsity, err);
    if (rc) return rc;
    const char *s = c->scope;
    int n = 0, m = 0;
    if (strcmp(s, "global") && strcmp(s, "layer") && strcmp(s, "row") && !(sscanf(s, "%d:%d", &n, &m) == 2 && n >= 0 && m > n))
        return gp_errf(err, GP_EINPUT, "%s: [prune] scope: \"%s\" is not global, layer, row or n:m with n < m", c->job_path, s);
    return GP_OK;
}

gp_status gp_config_load(gp_config *c, const char *path, const char *const *sets, int nsets, gp_err *err) {
    gp_config_defaults(c);
    c->job_path = gp_strdup(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    c->job_name = gp_strdup(base);
    size_t bl = strlen(c->job_name);
    if (bl > 4 && strcmp(c->job_name + bl - 4, ".ini") == 0) c->job_name[bl - 4] = '\0';

    /* Rank 0 reads the file; every rank parses the same bytes. */
    char *text = NULL;
    size_t len = 0;
    gp_status rc = GP_OK;
    if (gp_rank() == 0) rc = gp_read_file(path, &text, &len, err);
    if ((rc = gp_agree(rc, err))) return rc;
    gp_bcast_string(&text, 0);

    ini_ctx x = {c, path, {0}, 0};
    int line = ini_parse_string(text, job_ini_handler, &x);
    free(text);
    if (line != 0) {
        if (x.failed) {
            /* "path: ..." becomes "path:LINE: ..." */
            size_t pl = strlen(path);
            if (strncmp(x.first.msg, path, pl) == 0 && x.first.msg[pl] == ':')
                return gp_errf(err, GP_EINPUT, "%s:%d:%s", path, line, x.first.msg + pl + 1);
            return gp_errf(err, GP_EINPUT, "%s:%d: %s", path, line, x.first.msg);
        }
        return gp_errf(err, GP_EINPUT, "%s:%d: not an INI line (expected [section] or key = value)", path, line);
    }
    for (int i = 0; i < nsets; i++) {
        const char *dot = strchr(sets[i], '.'), *eq = strchr(sets[i], '=');
        if (!dot || !eq || dot > eq)
            return gp_errf(err, GP_EINPUT, "--set %s: expected section.key=value", sets[i]);
        char *sec = gp_strdup(sets[i]);
        sec[dot - sets[i]] = '\0';
        char *key = sec + (dot - sets[i]) + 1;
        key[eq - dot - 1] = '\0';
        char where[64];
        snprintf(where, sizeof where, "--set");
        rc = gp_config_set(c, sec, key, eq + 1, where, err);
        free(sec);
        if (rc) return rc;
    }
    return validate(c, err);
}

char *gp_config_get(const gp_config *c, const char *section, const char *key) {
    const opt *o = find(section, key);
    if (!o) return NULL;
    char buf[64];
    const void *f = cfield(c, o);
    switch (o->type) {
    case T_STR:
    case T_CHOICE: return gp_strdup(*(char *const *)f ? *(char *const *)f : "");
    case T_INT: snprintf(buf, sizeof buf, "%d", *(const int *)f); break;
    case T_I64: snprintf(buf, sizeof buf, "%lld", (long long)*(const int64_t *)f); break;
    case T_DBL: snprintf(buf, sizeof buf, "%.17g", *(const double *)f); break;
    case T_BOOL: snprintf(buf, sizeof buf, "%s", *(const bool *)f ? "true" : "false"); break;
    case T_CHOICE_INDEX: {
        char tmp[32];
        snprintf(buf, sizeof buf, "%s", choice_at(o->choices, *(const int *)f, tmp, sizeof tmp));
        break;
    }
    }
    return gp_strdup(buf);
}

/* Prints a value with newlines and tabs escaped again, so the dump reads as a job file. */
static void print_escaped(FILE *f, const char *v) {
    for (; *v; v++) {
        if (*v == '\n') fputs("\\n", f);
        else if (*v == '\t') fputs("\\t", f);
        else if (*v == ' ' && v[1] == '\0') fputs("\\s", f); /* a trailing space INI would trim */
        else if (*v == '\\') fputs("\\\\", f);
        else fputc(*v, f);
    }
}

void gp_config_print(const gp_config *c, FILE *f) {
    const char *sec = "";
    for (size_t i = 0; i < NOPTS; i++) {
        if (strcmp(sec, k_opts[i].section)) {
            sec = k_opts[i].section;
            fprintf(f, "[%s]\n", sec);
        }
        char *v = gp_config_get(c, k_opts[i].section, k_opts[i].key);
        fprintf(f, "  %s = ", k_opts[i].key);
        print_escaped(f, v);
        fputc('\n', f);
        free(v);
    }
    fflush(f);
}

void gp_config_help(FILE *f) {
    const char *sec = "";
    fprintf(f, "Job files are INI: [section] then key = value lines; ';' or '#' start comments.\n"
               "Any key can be overridden with --set section.key=value.\n");
    for (size_t i = 0; i < NOPTS; i++) {
        if (strcmp(sec, k_opts[i].section)) {
            sec = k_opts[i].section;
            fprintf(f, "\n[%s]\n", sec);
        }
        char def[96];
        snprintf(def, sizeof def, "%s%s%s", k_opts[i].choices ? k_opts[i].choices : "",
                 k_opts[i].choices ? ", default " : "default ", *k_opts[i].def ? k_opts[i].def : "\"\"");
        fprintf(f, "  %-18s %s (%s)\n", k_opts[i].key, k_opts[i].help, def);
    }
}
