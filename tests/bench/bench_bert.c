/* bench_bert.c — gaprune's side of `make bench`: forward + InfoNCE + backward (loss and all
 * gradients) of BERT- and Qwen3-shaped models, and the machine's single-thread sgemm rate.
 *
 * Each case runs in float32 and again with model.compute = bf16 (name " bf16"), then both again
 * with model.activations = lean (name " lean").
 * Prints one JSON object per line:
 *   {"case": "sgemm", "gflops": ...}
 *   {"case": NAME, "seconds": best, "tokens_per_s": ..., "gflop": ..., "gflops": ...}
 * tests/bench/run_bench.sh runs it next to tests/bench/bench_torch.py (same shapes, same
 * threads) and prints the ratios. Run with OPENBLAS_NUM_THREADS=1 for one thread.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/fs.h"
#include "gaprune/log.h"
#include "gaprune/loss.h"
#include "gaprune/model.h"
#include "gaprune/prune.h"
#include "gaprune/safetensors.h"

#include <sys/resource.h>

static double sgemm_gflops(int n) {
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float)),
          *c = malloc((size_t)n * n * sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < 6; r++) {
        double t = gp_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t = gp_now() - t;
        if (r > 0 && t < best) best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * n / best / 1e9;
}

/* Matmul FLOPs of one forward pass (the backward does twice as many). Attention counts the
 * whole L x L score matrix, causal or not: that is what both sides compute. */
static double forward_flops(const gp_model_config *c, int B, int T) {
    double N = (double)B * T, hid = c->hidden, inter = c->intermediate;
    double q = (double)c->heads * c->head_dim, kv = (double)c->kv_heads * c->head_dim;
    double mlp = c->arch == GP_ARCH_QWEN3 ? 3 * hid * inter : 2 * hid * inter;
    double linear = 2.0 * N * (hid * q + 2 * hid * kv + q * hid + mlp);
    double attention = 2.0 * 2.0 * B * (double)T * T * q;
    return c->layers * (linear + attention);
}

static void random_init(gp_model *m, uint64_t s) {
    for (int i = 0; i < m->table.n; i++) {
        const gp_param *p = &m->table.p[i];
        float *w = gp_model_param(m, i);
        int is_ln_w = strstr(p->name, "LayerNorm.weight") != NULL || strstr(p->name, "norm.weight") != NULL;
        for (size_t k = 0; k < p->numel; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            float u = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
            w[k] = is_ln_w ? 1.0f : (p->ndim == 2 ? 0.05f * u : 0.01f * u);
        }
    }
}

static void run_case(const char *name, gp_model_config cfg, int B, int T, int reps, bool lean) {
    gp_pooling pool = {cfg.arch == GP_ARCH_QWEN3 ? GP_POOL_LAST : GP_POOL_MEAN, true};
    gp_model *m = gp_model_create(&cfg, pool);
    gp_model_set_lean(m, lean);
    uint64_t s = 42;
    random_init(m, s);
    gp_batch b = {B, T, malloc((size_t)B * T * sizeof(int32_t)), malloc((size_t)B * T)};
    for (int i = 0; i < B * T; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        b.ids[i] = (int32_t)((s >> 33) % (uint64_t)cfg.vocab_size);
        b.mask[i] = 1;
    }
    const int D = cfg.hidden, Bq = B / 2;
    float *emb = malloc((size_t)B * D * sizeof(float)), *demb = malloc((size_t)B * D * sizeof(float));
    gp_infonce L = {0};
    double best = 1e30, loss = 0;
    for (int r = 0; r < reps + 1; r++) {
        double t = gp_now();
        gp_model_zero_grad(m);
        gp_model_forward(m, &b, emb);
        loss = gp_infonce_forward(&L, emb, emb + (size_t)Bq * D, Bq, B - Bq, D, 20.0f);
        memset(demb, 0, (size_t)B * D * sizeof(float));
        gp_infonce_backward(&L, demb, demb + (size_t)Bq * D);
        gp_model_backward(m, demb);
        t = gp_now() - t;
        if (r > 0 && t < best) best = t; /* the first run warms up allocations and caches */
    }
    double gflop = 3.0 * forward_flops(&cfg, B, T) / 1e9;
    printf("{\"case\": \"%s\", \"seconds\": %.4f, \"tokens_per_s\": %.1f, \"gflop\": %.3f, \"gflops\": %.2f, "
           "\"loss\": %.5f}\n",
           name, best, (double)B * T / best, gflop, gflop / best, loss);
    fflush(stdout);
    gp_infonce_free(&L);
    free(emb), free(demb), free(b.ids), free(b.mask);
    gp_model_free(m);
}

typedef struct {
    const float *all;
    int64_t per;
} sel_ctx;

static gp_status sel_score(void *vctx, int item, float *out, gp_err *err) {
    (void)err;
    const sel_ctx *c = vctx;
    memcpy(out, c->all + (int64_t)item * c->per, (size_t)c->per * sizeof(float)); /* "reading" one tensor */
    return GP_OK;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* Exact selection of the 50% lowest of 10^8 scores in 100 tensors of 10^6. */
static void bench_select(void) {
    const int items = 100;
    const int64_t per = 1000000, n = items * per;
    float *all = gp_malloc((size_t)n * sizeof(float));
    uint64_t s = 3;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        all[i] = (float)((double)(s >> 11) * 0x1p-53) - 0.25f;
    }
    int64_t *numel = gp_malloc(items * sizeof(int64_t));
    uint8_t **keep = gp_malloc(items * sizeof(uint8_t *));
    for (int i = 0; i < items; i++) {
        numel[i] = per;
        keep[i] = gp_malloc((size_t)(per + 7) / 8);
        memset(keep[i], 0, (size_t)(per + 7) / 8);
    }
    sel_ctx c = {all, per};
    gp_score_source src = {items, numel, sel_score, &c};
    double before = peak_rss_mb();
    float thr;
    gp_err err = {0};
    double t = gp_now();
    gp_select_smallest(&src, n / 2, keep, &thr, &err);
    t = gp_now() - t;
    double extra = peak_rss_mb() - before;
    printf("{\"case\": \"select\", \"scores\": %lld, \"seconds\": %.3f, \"scores_per_s\": %.3g, \"extra_mb\": %.1f, "
           "\"one_tensor_mb\": %.1f, \"all_scores_mb\": %.1f}\n",
           (long long)n, t, (double)n / t, extra, (double)per * 4 / 1048576, (double)n * 4 / 1048576);
    fflush(stdout);
    for (int i = 0; i < items; i++) free(keep[i]);
    free(keep), free(numel), free(all);
}

/* m's parameters as float32 into dir/model.safetensors, by the library's writer. */
static void write_weights(const gp_model *m, const char *dir) {
    gp_err err = {0};
    gp_st_writer *w = gp_st_writer_init();
    for (int i = 0; i < m->table.n; i++)
        gp_st_writer_add_f32(w, m->table.p[i].name, GP_DT_F32, m->table.p[i].ndim, m->table.p[i].shape, gp_model_param(m, i));
    char *wp = gp_path_join(dir, "model.safetensors");
    GP_CHECK(gp_st_writer_write(w, wp, &err) == GP_OK, "%s", err.msg);
    gp_st_writer_free(w);
    free(wp);
}

static void put(const char *dir, const char *name, const char *text) {
    char *p = gp_path_join(dir, name);
    FILE *f = fopen(p, "w");
    GP_CHECK(f != NULL, "cannot write %s", p);
    fputs(text, f);
    fclose(f);
    free(p);
}

static void words(FILE *f, int n, int vocab, uint64_t *s) {
    for (int i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        fprintf(f, "%sw%d", i ? " " : "", (int)((*s >> 33) % (uint64_t)(vocab - 5)));
    }
}

/* A MiniLM-L6-shaped model folder with random weights and a vocabulary of words "w0".."wN",
 * triplet corpora of such words (query 12, positive and negative 40 words) and a job file. */
static void make_data(const char *dir, int n) {
    gp_model_config c = {.arch = GP_ARCH_BERT, .vocab_size = 30522, .hidden = 384, .layers = 6, .heads = 12,
                         .kv_heads = 12, .head_dim = 32, .intermediate = 1536, .max_positions = 512,
                         .type_vocab = 2, .norm_eps = 1e-12f};
    gp_err err = {0};
    char *md = gp_path_join(dir, "minilm");
    GP_CHECK(gp_mkdir_p(md, &err) == GP_OK, "%s", err.msg);
    gp_model *m = gp_model_create(&c, (gp_pooling){GP_POOL_MEAN, true});
    random_init(m, 7);
    write_weights(m, md);
    put(md, "config.json",
        "{\"model_type\": \"bert\", \"vocab_size\": 30522, \"hidden_size\": 384, \"num_hidden_layers\": 6, "
        "\"num_attention_heads\": 12, \"intermediate_size\": 1536, \"max_position_embeddings\": 512, "
        "\"type_vocab_size\": 2, \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\"}\n");
    char *vp = gp_path_join(md, "vocab.txt");
    FILE *f = fopen(vp, "w");
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", f);
    for (int i = 0; i < 30522 - 5; i++) fprintf(f, "w%d\n", i);
    fclose(f);
    free(vp);
    gp_model_free(m);
    uint64_t s = 1;
    for (int k = 0; k < 2; k++) {
        char *cp = gp_path_join(dir, k ? "general.jsonl" : "domain.jsonl");
        f = fopen(cp, "w");
        for (int i = 0; i < n; i++) {
            fputs("{\"query\": \"", f);
            words(f, 12, 30522, &s);
            fputs("\", \"positive\": \"", f);
            words(f, 40, 30522, &s);
            fputs("\", \"negative\": \"", f);
            words(f, 40, 30522, &s);
            fputs("\"}\n", f);
        }
        fclose(f);
        free(cp);
    }
    put(dir, "stats.ini",
        "[model]\npath = minilm\n[data]\ndomain = domain.jsonl\ngeneral = general.jsonl\n[stats]\ncheckpoint_every = 50\n");
    free(md);
}

/* `shape DIR FIXTURE CONFIG_JSON`: a model folder DIR with config.json = CONFIG_JSON (real
 * shapes), random float32 weights written by the library's safetensors writer, and the rest
 * (tokenizer, pooling) copied from the fixture folder, for memory benchmarks at real sizes. */
static void make_shape(const char *dir, const char *fixture, const char *config) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && rm -f '%s'/model*.safetensors*", dir, fixture, dir, dir);
    GP_CHECK(system(cmd) == 0, "%s", cmd);
    put(dir, "config.json", config);
    put(dir, "sentence_bert_config.json", "{\"max_seq_length\": 512, \"do_lower_case\": false}\n");
    gp_model_config c;
    gp_err err = {0};
    GP_CHECK(gp_model_config_load(dir, &c, &err) == GP_OK, "%s", err.msg);
    gp_model *m = gp_model_create(&c, (gp_pooling){GP_POOL_MEAN, true});
    random_init(m, 7);
    write_weights(m, dir);
    gp_model_free(m);
}

int main(int argc, char **argv) {
    if (argc > 4 && strcmp(argv[1], "shape") == 0) {
        make_shape(argv[2], argv[3], argv[4]);
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "data") == 0) {
        make_data(argv[2], argc > 3 ? atoi(argv[3]) : 100);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "select") == 0) {
        bench_select();
        return 0;
    }
    int reps = argc > 1 ? atoi(argv[1]) : 3;
    printf("{\"case\": \"sgemm\", \"n\": 1024, \"gflops\": %.2f}\n", sgemm_gflops(1024));
    fflush(stdout);
    gp_model_config minilm = {.arch = GP_ARCH_BERT, .vocab_size = 30522, .hidden = 384, .layers = 6, .heads = 12,
                              .kv_heads = 12, .head_dim = 32, .intermediate = 1536, .max_positions = 512,
                              .type_vocab = 2, .norm_eps = 1e-12f};
    run_case("minilm-l6 16x128", minilm, 16, 128, reps, false);
    gp_model_config base = {.arch = GP_ARCH_BERT, .vocab_size = 1000, .hidden = 768, .layers = 1, .heads = 12,
                            .kv_heads = 12, .head_dim = 64, .intermediate = 3072, .max_positions = 512,
                            .type_vocab = 2, .norm_eps = 1e-12f};
    run_case("bert-base layer 8x128", base, 8, 128, reps, false);
    gp_model_config qwen = {.arch = GP_ARCH_QWEN3, .vocab_size = 1000, .hidden = 1024, .layers = 2, .heads = 16,
                            .kv_heads = 8, .head_dim = 128, .intermediate = 3072, .max_positions = 40960,
                            .norm_eps = 1e-6f, .rope_theta = 1000000.0};
    run_case("qwen3-0.6b 2 layers 4x128", qwen, 4, 128, reps, false);
    /* model.compute = bf16: the same cases, against PyTorch's CPU autocast to bfloat16 */
    gp_set_compute(GP_COMPUTE_BF16);
    run_case("minilm-l6 16x128 bf16", minilm, 16, 128, reps, false);
    run_case("bert-base layer 8x128 bf16", base, 8, 128, reps, false);
    run_case("qwen3-0.6b 2 layers 4x128 bf16", qwen, 4, 128, reps, false);
    /* model.activations = lean: what making part of the activations again costs, against all */
    gp_set_compute(GP_COMPUTE_F32);
    run_case("minilm-l6 16x128 lean", minilm, 16, 128, reps, true);
    run_case("bert-base layer 8x128 lean", base, 8, 128, reps, true);
    run_case("qwen3-0.6b 2 layers 4x128 lean", qwen, 4, 128, reps, true);
    gp_set_compute(GP_COMPUTE_BF16);
    run_case("minilm-l6 16x128 bf16 lean", minilm, 16, 128, reps, true);
    run_case("bert-base layer 8x128 bf16 lean", base, 8, 128, reps, true);
    run_case("qwen3-0.6b 2 layers 4x128 bf16 lean", qwen, 4, 128, reps, true);
    return 0;
}
