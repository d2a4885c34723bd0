/* bench_bert.c — gaprune's side of `make bench`: forward + InfoNCE + backward (loss and all
 * gradients) of BERT-shaped models, and the machine's single-thread sgemm rate.
 *
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

#include "gaprune/log.h"
#include "gaprune/loss.h"
#include "gaprune/model.h"

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

/* Matmul FLOPs of one forward pass (the backward does twice as many). */
static double forward_flops(const gp_model_config *c, int B, int T) {
    double N = (double)B * T, hid = c->hidden, inter = c->intermediate;
    double linear = 2.0 * N * (4 * hid * hid + 2 * hid * inter);
    double attention = 2.0 * 2.0 * B * (double)T * T * hid;
    return c->layers * (linear + attention);
}

static void run_case(const char *name, gp_model_config cfg, int B, int T, int reps) {
    gp_pooling pool = {GP_POOL_MEAN, true};
    gp_model *m = gp_model_create(&cfg, pool);
    uint64_t s = 42;
    for (int i = 0; i < m->table.n; i++) {
        const gp_param *p = &m->table.p[i];
        float *w = gp_model_param(m, i);
        int is_ln_w = strstr(p->name, "LayerNorm.weight") != NULL;
        for (size_t k = 0; k < p->numel; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            float u = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
            w[k] = is_ln_w ? 1.0f : (p->ndim == 2 ? 0.05f * u : 0.01f * u);
        }
    }
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

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 3;
    printf("{\"case\": \"sgemm\", \"n\": 1024, \"gflops\": %.2f}\n", sgemm_gflops(1024));
    fflush(stdout);
    gp_model_config minilm = {.arch = GP_ARCH_BERT, .vocab_size = 30522, .hidden = 384, .layers = 6, .heads = 12,
                              .kv_heads = 12, .head_dim = 32, .intermediate = 1536, .max_positions = 512,
                              .type_vocab = 2, .norm_eps = 1e-12f};
    run_case("minilm-l6 16x128", minilm, 16, 128, reps);
    gp_model_config base = {.arch = GP_ARCH_BERT, .vocab_size = 1000, .hidden = 768, .layers = 1, .heads = 12,
                            .kv_heads = 12, .head_dim = 64, .intermediate = 3072, .max_positions = 512,
                            .type_vocab = 2, .norm_eps = 1e-12f};
    run_case("bert-base layer 8x128", base, 8, 128, reps);
    return 0;
}
