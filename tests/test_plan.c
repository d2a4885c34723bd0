/* test_plan.c — `gaprune plan` (plan.h): the formula's parts against the parameter table, the
 * command's table, JSON line and exit 2, and the prediction against reality.
 *
 * What the reality check proves, and what not: for the fixture models the process baseline
 * (MPI, HDF5, OpenBLAS, ASan: ~50 MB) dwarfs the weights and accumulators, so it compares the
 * DIFFERENCE between two shapes of the same job (stats.fisher_batch 1 and 128, texts longer
 * than max_length so that every sequence is full): gaprune stats' peak_rss_mb against gaprune
 * plan's total, on 1 and 2 ranks, for bert-tiny and qwen3-f32. That checks the activation part
 * of the formula (what grows with the unit: kept activations, attention probabilities, the
 * backward scratch, the packed batch) within 10 %. It does not check the constant parts at
 * scale (weights, gradients, accumulators, replicated vs sharded): those are checked here
 * against the parameter table only, and by tests/bench/plan_bench.sh on a MiniLM-sized model.
 * ASan's quarantine would keep freed unit buffers resident, so the stats runs here set
 * quarantine_size_mb=0 (memory errors are still caught). */
#include "test_util.h"

#include <cjson/cJSON.h>

#include "gaprune/log.h"
#include "gaprune/model.h"
#include "gaprune/plan.h"
#include "gaprune/stats.h"

static char *g_dir;

static const char *bin(void) { return tu_bin(); }

#define run(...) tu_run_to(g_dir, __VA_ARGS__)

static char *slurp(const char *name) {
    char *b = tu_read_in(g_dir, name);
    assert_non_null(b);
    return b;
}

static void assert_clean_stderr(void) {
    char *e = slurp("err");
    tu_assert_no_sanitizer(e);
    free(e);
}

/* The last command's stderr holds every one of the NULL-terminated strings. */
static void assert_err_has(const char *const *want) {
    char *e = slurp("err");
    for (int i = 0; want[i]; i++)
        if (!strstr(e, want[i])) fail_msg("want \"%s\" in:\n%s", want[i], e);
    free(e);
}

/* The last line of out starting with {"command":"<cmd>", parsed. */
static cJSON *summary(const char *cmd) {
    char *o = slurp("out"), key[64];
    snprintf(key, sizeof key, "{\"command\":\"%s\"", cmd);
    char *at = NULL;
    for (char *p = strstr(o, key); p; p = strstr(p + 1, key)) at = p;
    if (!at) fail_msg("no %s summary line in:\n%s", cmd, o);
    char *nl = strchr(at, '\n');
    if (nl) *nl = '\0';
    cJSON *j = cJSON_Parse(at);
    if (!j) fail_msg("summary line is not JSON: %s", at);
    free(o);
    return j;
}

/* The stage named `name` of a plan summary line (NULL when the job does not run it). */
static cJSON *plan_stage(const cJSON *j, const char *name) {
    const cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItem(j, "stages"))
        if (!strcmp(cJSON_GetObjectItem(st, "stage")->valuestring, name)) return (cJSON *)st;
    return NULL;
}

static int setup(void **state) {
    (void)state;
    g_dir = tu_mkdtemp();
    tu_mpi_env();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static void load_shape(const char *dir, gp_model_config *cfg, gp_param_table *t) {
    gp_err err = {0};
    assert_int_equal(gp_model_config_load(dir, cfg, &err), GP_OK);
    memset(t, 0, sizeof *t);
    gp_model_build_table(cfg, t);
}

/* The parts that do not depend on the unit, against the table: 4·P, 4·n/L, 16·n; sharded on 2
 * ranks the largest block is about half, cut at a row. */
static void test_formula_parts(void **state) {
    (void)state;
    gp_model_config cfg;
    gp_param_table t;
    load_shape(FIXTURES "/bert-tiny", &cfg, &t);
    gp_job job;
    gp_job_defaults(&job);
    gp_stats_opts o;
    gp_stats_opts_from_job(&o, &job);
    const gp_plan_model pm = {&cfg, &t, 40, 0, false, false, false};
    /* bert-tiny, prune.layers = mlp: intermediate [I, C] and output [C, I] of each block */
    const int64_t n = 2LL * cfg.intermediate * cfg.hidden * cfg.layers;
    gp_plan_stats_out p;
    gp_plan_stats(&pm, &o, 1, 1, 0, &p);
    assert_int_equal(p.selected, n);
    assert_false(p.sharded);
    double sum = 0;
    for (int k = 0; k < p.nparts; k++) {
        sum += p.part[k].bytes;
        if (!strcmp(p.part[k].name, "weights")) assert_true(p.part[k].bytes == 4.0 * (double)t.total);
        if (!strcmp(p.part[k].name, "gradients")) assert_true(p.part[k].bytes == 4.0 * (double)n / cfg.layers); /* one block */
        if (!strcmp(p.part[k].name, "accumulators")) assert_true(p.part[k].bytes == 16.0 * (double)n);
    }
    assert_true(fabs(sum - p.total) < 1);
    assert_int_equal(p.seq_len, 40);
    assert_int_equal(p.texts, 3);

    o.accumulators = GP_ACC_SHARDED;
    gp_plan_stats(&pm, &o, 2, 1, 0, &p);
    assert_true(p.sharded);
    assert_true(p.block >= n / 2 && p.block < n / 2 + cfg.intermediate); /* whole rows of width ≤ I */
    bool rs = false;
    for (int k = 0; k < p.nparts; k++) {
        if (!strcmp(p.part[k].name, "accumulators")) assert_true(p.part[k].bytes == 16.0 * (double)p.block);
        rs |= !strcmp(p.part[k].name, "squared gradients");
    }
    assert_true(rs);
    /* auto: sharded only when 16·n is over a quarter of the share */
    o.accumulators = GP_ACC_AUTO;
    gp_plan_stats(&pm, &o, 2, 1, 16.0 * (double)n * 4 + 1, &p);
    assert_false(p.sharded);
    gp_plan_stats(&pm, &o, 2, 1, 16.0 * (double)n * 4 - 1, &p);
    assert_true(p.sharded);

    /* activations grow as N for the kept buffers plus heads·B·T² */
    const double a1 = gp_plan_unit_activations(&cfg, 3, 40, 1, false, false), a2 = gp_plan_unit_activations(&cfg, 6, 40, 1, false, false);
    assert_true(a2 > 1.9 * a1 && a2 < 2.1 * a1);

    double b;
    assert_true(gp_plan_parse_size("24G", &b) && b == 24.0 * 1073741824.0);
    assert_true(gp_plan_parse_size("512M", &b) && b == 512.0 * 1048576.0);
    assert_true(gp_plan_parse_size("1.5GiB", &b) && b == 1.5 * 1073741824.0);
    assert_true(gp_plan_parse_size("4096", &b) && b == 4096.0);
    assert_false(gp_plan_parse_size("12X", &b));
    assert_false(gp_plan_parse_size("", &b));
    gp_job_free(&job);
    gp_param_table_free(&t);
}

/* model.activations at Qwen3-Embedding-4B's shapes (C 2560, F 9728, 32/8 heads of 128, 36 blocks),
 * one unit of 3 texts at 512 tokens: all keeps per block and token the 34,858 floats qwen3.c keeps
 * in either way, the 19,968 lean makes again and 32·512 probabilities; lean keeps one set of the
 * 19,968 for all blocks and no probabilities (the embeddings, RoPE tables and final norm, 2C+hs+1
 * a token, either way). auto chooses lean above a quarter of the share, all at or below it and
 * when the share is unknown. */
static void test_lean_activations(void **state) {
    (void)state;
    const gp_model_config c = {.arch = GP_ARCH_QWEN3, .vocab_size = 151665, .hidden = 2560, .layers = 36, .heads = 32,
                               .kv_heads = 8, .head_dim = 128, .intermediate = 9728, .max_positions = 40960,
                               .norm_eps = 1e-6f, .rope_theta = 1000000.0};
    const double N = 3 * 512.0, L = 36, fixed = N * (2 * 2560 + 128 + 1);
    const double all = gp_model_activation_bytes(&c, 3, 512, true, false, false);
    const double lean = gp_model_activation_bytes(&c, 3, 512, true, false, true);
    printf("    Qwen3-4B, 3 texts x 512 tokens: all %.3f GB, lean %.3f GB (%.1f%%)\n", all / 1e9, lean / 1e9,
           100 * lean / all);
    assert_true(all == 4 * (fixed + L * (N * (34858 + 19968) + 32.0 * 3 * 512 * 512)));
    assert_true(lean == 4 * (fixed + N * 19968 + L * N * 34858));
    assert_true(lean < 0.52 * all && all > 15.7e9 && lean < 8.3e9);
    /* inference keeps one block and no probabilities, lean or not */
    assert_true(gp_model_activation_bytes(&c, 3, 512, false, false, false) == 4 * (fixed + N * (19968 + 34858)));
    assert_true(gp_model_lean_for(&c, GP_ACTS_AUTO, 3, 512, false, 3 * all));
    assert_false(gp_model_lean_for(&c, GP_ACTS_AUTO, 3, 512, false, 4 * all));
    assert_false(gp_model_lean_for(&c, GP_ACTS_AUTO, 3, 512, false, 0));
    assert_true(gp_model_lean_for(&c, GP_ACTS_LEAN, 3, 512, false, 1e30));
    assert_false(gp_model_lean_for(&c, GP_ACTS_ALL, 3, 512, false, 1));
}

/* Triplets whose texts are longer than any max_length here: every sequence is full, the case
 * the formula describes (its worst case). */
static void write_corpus_words(const char *path, int n, int nwords) {
    static const char *const words[] = {"the", "capital", "city", "france", "paris", "berlin", "germany", "big",
                                        "what", "large", "hello", "world", "people", "japan", "special", "text"};
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    unsigned k = 1;
    for (int i = 0; i < n; i++) {
        fputc('{', f);
        const char *keys[3] = {"query", "positive", "negative"};
        for (int j = 0; j < 3; j++) {
            fprintf(f, "%s\"%s\": \"", j ? ", " : "", keys[j]);
            for (int w = 0; w < nwords; w++) {
                k = k * 1103515245u + 12345u;
                fprintf(f, "%s%s", w ? " " : "", words[(k >> 16) % 16]);
            }
            fputc('"', f);
        }
        fputs("}\n", f);
    }
    fclose(f);
}

static void write_corpus(const char *path, int n) { write_corpus_words(path, n, 300); }

static void write_job(const char *model, int fb) {
    char path[512], text[2048];
    snprintf(path, sizeof path, "%s/job-%d.ini", g_dir, fb);
    snprintf(text, sizeof text,
             "[model]\npath = %s\nmax_length = 256\n[data]\ndomain = %s/long.jsonl\ngeneral = %s/long.jsonl\n"
             "max_samples = %d\n[stats]\nfisher_batch = %d\n[output]\ndir = %s/out-%d\n",
             model, g_dir, g_dir, 2 * fb, fb, g_dir, fb);
    tu_write(path, text);
}

/* The release binary: the sanitizer build's shadow memory makes its absolute RSS meaningless. */
static const char *rel_bin(void) {
    const char *b = getenv("GAPRUNE_RELEASE_BIN");
    return b ? b : "build/gaprune";
}

/* gaprune plan's stats bytes and gaprune stats' peak RSS (bytes) of job-<fb>.ini on np ranks. */
static void plan_and_measure(int np, int fb, double *pred, double *meas) {
    tu_sh("rm -rf '%s/out-%d'", g_dir, fb);
    int rc = run("%s plan '%s/job-%d.ini' --ranks %d --threads 1", bin(), g_dir, fb, np);
    assert_clean_stderr();
    assert_int_equal(rc, 0);
    cJSON *j = summary("plan");
    *pred = cJSON_GetObjectItem(plan_stage(j, "stats"), "bytes")->valuedouble;
    cJSON_Delete(j);
    rc = run("mpirun -np %d %s stats '%s/job-%d.ini'", np, rel_bin(), g_dir, fb);
    assert_clean_stderr();
    assert_int_equal(rc, 0);
    j = summary("stats");
    *meas = cJSON_GetObjectItem(j, "peak_rss_mb")->valuedouble * 1048576.0;
    cJSON_Delete(j);
}

/* ---- shape-faithful models: the prediction against the peak RSS of the release build ---------- */

/* A model folder with config.json's real shapes and random float32 weights (uniform in ±0.02:
 * finite, and small enough that nothing overflows), the tokenizer files copied from a fixture
 * (their ids are all below the vocabulary), and sentence_bert_config.json's max_seq_length 512. */
typedef struct {
    const char *name, *fixture, *config; /* config: config.json's text */
    int max_length;                      /* model.max_length of the job */
} shape;

static void write_weights(const char *dir) {
    gp_model_config cfg;
    gp_param_table t;
    load_shape(dir, &cfg, &t);
    size_t cap = 1 << 16, len = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < t.n; i++) {
        const gp_param *p = &t.p[i];
        if (cap - len < 512) h = realloc(h, cap *= 2);
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld", p->name, (long long)p->shape[0]);
        if (p->ndim == 2) len += (size_t)snprintf(h + len, cap - len, ",%lld", (long long)p->shape[1]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                                (unsigned long long)(off + 4 * p->numel));
        off += 4 * p->numel;
    }
    h = realloc(h, len + 16);
    h[len++] = '}';
    while (len % 8) h[len++] = ' ';
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint8_t n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)len >> (8 * i));
    assert_int_equal(fwrite(n8, 1, 8, f), 8);
    assert_int_equal(fwrite(h, 1, len, f), len);
    /* one block of random values, written again and again: the weights' values do not matter here */
    enum { BLOCK = 1 << 20 };
    float *blk = malloc(BLOCK * sizeof(float));
    uint64_t s = 7;
    tu_fill(blk, BLOCK, 0.02, &s);
    for (uint64_t left = off / 4; left > 0;) {
        size_t k = left < BLOCK ? (size_t)left : BLOCK;
        assert_int_equal(fwrite(blk, sizeof(float), k, f), k);
        left -= k;
    }
    assert_int_equal(fclose(f), 0);
    free(blk);
    free(h);
    gp_param_table_free(&t);
}

static void make_shape(const shape *s, char *dir, size_t n) {
    snprintf(dir, n, "%s/%s", g_dir, s->name);
    char fix[1024];
    assert_non_null(realpath(s->fixture, fix));
    tu_sh("rm -rf '%s' && cp -r '%s' '%s' && rm -f '%s/model.safetensors'", dir, fix, dir, dir);
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    tu_write(path, s->config);
    snprintf(path, sizeof path, "%s/sentence_bert_config.json", dir);
    tu_write(path, "{\"max_seq_length\": 512, \"do_lower_case\": false}\n");
    write_weights(dir);
}

#define BERT_BASE(L)                                                                                              \
    "{\"architectures\": [\"BertModel\"], \"model_type\": \"bert\", \"hidden_act\": \"gelu\", \"hidden_size\": 768, " \
    "\"intermediate_size\": 3072, \"layer_norm_eps\": 1e-12, \"max_position_embeddings\": 512, "                  \
    "\"num_attention_heads\": 12, \"num_hidden_layers\": " #L ", \"pad_token_id\": 0, "                           \
    "\"position_embedding_type\": \"absolute\", \"type_vocab_size\": 2, \"torch_dtype\": \"float32\", "           \
    "\"vocab_size\": 30522}\n"
#define QWEN3(C, I, H, L, V)                                                                                       \
    "{\"architectures\": [\"Qwen3Model\"], \"model_type\": \"qwen3\", \"head_dim\": 128, \"hidden_act\": \"silu\", " \
    "\"hidden_size\": " #C ", \"intermediate_size\": " #I ", \"max_position_embeddings\": 32768, "                \
    "\"num_attention_heads\": " #H ", \"num_hidden_layers\": " #L ", \"num_key_value_heads\": 8, "                \
    "\"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000, \"tie_word_embeddings\": true, \"torch_dtype\": \"float32\", " \
    "\"vocab_size\": " #V "}\n"

/* gaprune plan's prediction and gaprune stats' peak RSS (release build) on np ranks. */
static void shape_measure(const char *job, int np, double *pred, double *meas, double *load, double *stats) {
    int rc = run("%s plan '%s' --ranks %d --threads 1", rel_bin(), job, np);
    if (rc) fail_msg("gaprune plan exited %d:\n%s", rc, slurp("err"));
    cJSON *j = summary("plan");
    *pred = cJSON_GetObjectItem(j, "stats_command_bytes")->valuedouble;
    *load = cJSON_GetObjectItem(plan_stage(j, "load"), "bytes")->valuedouble;
    *stats = cJSON_GetObjectItem(plan_stage(j, "stats"), "bytes")->valuedouble;
    cJSON_Delete(j);
    tu_sh("rm -rf '%s.out'", job);
    rc = run("mpirun -np %d %s stats '%s'", np, rel_bin(), job);
    if (rc) fail_msg("gaprune stats exited %d:\n%s", rc, slurp("err"));
    j = summary("stats");
    *meas = cJSON_GetObjectItem(j, "peak_rss_mb")->valuedouble * 1048576.0;
    cJSON_Delete(j);
}

/* Issue 12's check: the predicted peak per rank of gaprune stats within 10 % of the measured
 * peak RSS for BERT-base layers at 512 tokens, Qwen3-Embedding-0.6B layers and one
 * Qwen3-4B-shaped layer with the full vocabulary, on 1 and 2 ranks keeping all activations
 * (what auto chooses for these on this machine) and on 1 rank lean. Every text fills max_length
 * (700 words), one triplet per corpus. */
static void test_shapes_vs_peak_rss(void **state) {
    (void)state;
    char corpus[512];
    snprintf(corpus, sizeof corpus, "%s/full.jsonl", g_dir);
    write_corpus_words(corpus, 2, 700);
    const shape shapes[] = {
        {"bert-base-2l", FIXTURES "/bert-tiny", BERT_BASE(2), 512},
        {"qwen3-0.6b-2l", FIXTURES "/qwen3-f32", QWEN3(1024, 3072, 16, 2, 151669), 512},
        /* 256 tokens: at 512 a triplet's pass is ~1 TFLOP, too slow for make test on 2 cores */
        {"qwen3-4b-1l", FIXTURES "/qwen3-f32", QWEN3(2560, 9728, 32, 1, 151665), 256},
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const shape *s = &shapes[k];
        char dir[600], job[2][700], text[4096];
        make_shape(s, dir, sizeof dir);
        for (int lean = 0; lean < 2; lean++) {
            snprintf(job[lean], sizeof job[lean], "%s%s.ini", dir, lean ? "-lean" : "");
            snprintf(text, sizeof text,
                     "[model]\npath = %s\nmax_length = %d\nactivations = %s\n[data]\ndomain = %s\ngeneral = %s\n"
                     "max_samples = 1\n[stats]\nfisher_batch = 1\n[prune]\nlayers = mlp\n[output]\ndir = %s.out\n",
                     dir, s->max_length, lean ? "lean" : "all", corpus, corpus, job[lean]);
            tu_write(job[lean], text);
        }
        for (int run_k = 0; run_k < 3; run_k++) {
            const int np = run_k == 1 ? 2 : 1, lean = run_k == 2;
            double pred, meas, load, stats, t0 = gp_now();
            shape_measure(job[lean], np, &pred, &meas, &load, &stats);
            const double rel = (pred - meas) / meas;
            printf("plan vs stats (release): %s, %d rank%s, %d tokens, activations %s: predicted %.1f MiB (load %.1f, "
                   "stats %.1f), measured %.1f MiB (%+.1f%%) in %.0f s\n",
                   s->name, np, np > 1 ? "s" : "", s->max_length, lean ? "lean" : "all", pred / 1048576.0,
                   load / 1048576.0, stats / 1048576.0, meas / 1048576.0, 100 * rel, gp_now() - t0);
            fflush(stdout);
            if (fabs(rel) > 0.10) fail_msg("%s on %d ranks: predicted %.1f MiB, measured %.1f MiB: more than 10%% apart",
                                           s->name, np, pred / 1048576.0, meas / 1048576.0);
        }
        tu_sh("rm -rf '%s' '%s.out' '%s.out'", dir, job[0], job[1]);
    }
}

/* Issue 13's check: the retrain stage of gaprune plan within 10 % of gaprune retrain's measured
 * peak RSS on BERT-base's shape (12 blocks, 32 tokens, batch 2, one step, 50% magnitude mask)
 * for retrain.optimizer_sharding none on 1 rank and states and gradients on 2, and gradients
 * below states (tests/bench/retrain_mem_bench.sh measures the same on Qwen3-0.6B's shape). */
static void test_retrain_vs_peak_rss(void **state) {
    (void)state;
    char corpus[512], dir[600], job[700], text[4096];
    snprintf(corpus, sizeof corpus, "%s/retrain.jsonl", g_dir);
    write_corpus_words(corpus, 4, 40);
    const shape s = {"bert-base-12l", FIXTURES "/bert-tiny", BERT_BASE(12), 32};
    make_shape(&s, dir, sizeof dir);
    snprintf(job, sizeof job, "%s.ini", dir);
    snprintf(text, sizeof text,
             "[model]\npath = %s\nmax_length = 32\n[data]\ndomain = %s\ngeneral = %s\nmax_samples = 4\n"
             "[prune]\nlayers = mlp\n[retrain]\nbatch = 2\nsteps = 1\nwarmup = 0\n[output]\ndir = %s.out\n",
             dir, corpus, corpus, job);
    tu_write(job, text);
    int rc = run("%s score '%s' --method magnitude --sparsity 0.5", rel_bin(), job);
    if (rc) fail_msg("gaprune score exited %d:\n%s", rc, slurp("err"));
    static const struct {
        int np;
        const char *mode;
    } cases[3] = {{1, "none"}, {2, "states"}, {2, "gradients"}};
    double pred[3], meas[3];
    for (int k = 0; k < 3; k++) {
        rc = run("%s plan '%s' --ranks %d --threads 1 --set retrain.optimizer_sharding=%s", rel_bin(), job, cases[k].np,
                 cases[k].mode);
        if (rc) fail_msg("gaprune plan exited %d:\n%s", rc, slurp("err"));
        cJSON *j = summary("plan");
        pred[k] = cJSON_GetObjectItem(plan_stage(j, "retrain"), "bytes")->valuedouble;
        cJSON_Delete(j);
        tu_sh("rm -f '%s.out'/retrain-*.h5", job);
        rc = run("mpirun -np %d %s retrain '%s' --mask '%s.out/mask-magnitude-0.5.h5' --set retrain.optimizer_sharding=%s",
                 cases[k].np, rel_bin(), job, job, cases[k].mode);
        if (rc) fail_msg("gaprune retrain exited %d:\n%s", rc, slurp("err"));
        j = summary("retrain");
        meas[k] = cJSON_GetObjectItem(j, "peak_rss_mb")->valuedouble * 1048576.0;
        assert_string_equal(cJSON_GetObjectItem(j, "optimizer_sharding")->valuestring, cases[k].mode);
        cJSON_Delete(j);
        const double rel = (pred[k] - meas[k]) / meas[k];
        printf("plan vs retrain (release): %s, %d rank%s, %s: predicted %.1f MiB, measured %.1f MiB (%+.1f%%)\n", s.name,
               cases[k].np, cases[k].np > 1 ? "s" : "", cases[k].mode, pred[k] / 1048576.0, meas[k] / 1048576.0, 100 * rel);
        fflush(stdout);
        if (fabs(rel) > 0.10) fail_msg("%s on %d ranks: predicted %.1f MiB, measured %.1f MiB: more than 10%% apart",
                                       cases[k].mode, cases[k].np, pred[k] / 1048576.0, meas[k] / 1048576.0);
    }
    /* gradients keeps two blocks' gradients, the prefix's and its slice's sum, not every one */
    printf("    2 ranks: gradients %.1f MiB, states %.1f MiB measured\n", meas[2] / 1048576.0, meas[1] / 1048576.0);
    assert_true(meas[2] < meas[1]);
    tu_sh("rm -rf '%s' '%s.out'", dir, job);
}

static void test_prediction_vs_peak_rss(void **state) {
    (void)state;
    char corpus[512];
    snprintf(corpus, sizeof corpus, "%s/long.jsonl", g_dir);
    write_corpus(corpus, 256);
    const char *models[] = {FIXTURES "/bert-tiny", FIXTURES "/qwen3-f32"};
    for (int mi = 0; mi < 2; mi++) {
        char model[1024];
        assert_non_null(realpath(models[mi], model));
        write_job(model, 1);
        write_job(model, 128);
        for (int np = 1; np <= 2; np++) {
            double p1, m1, p2, m2;
            plan_and_measure(np, 1, &p1, &m1);
            plan_and_measure(np, 128, &p2, &m2);
            const double dp = p2 - p1, dm = m2 - m1, rel = fabs(dm - dp) / dp;
            printf("plan vs stats: %s, %d rank%s: fisher_batch 1 -> 128: predicted +%.1f MiB, measured +%.1f MiB "
                   "(%.1f%%); totals predicted %.1f / %.1f MiB, measured %.1f / %.1f MiB (release build)\n",
                   models[mi], np, np > 1 ? "s" : "", dp / 1048576.0, dm / 1048576.0, 100 * rel, p1 / 1048576.0,
                   p2 / 1048576.0, m1 / 1048576.0, m2 / 1048576.0);
            assert_true(dp > 20 * 1048576.0); /* the shapes differ enough to measure */
            if (rel > 0.10) fail_msg("predicted growth %.1f MiB, measured %.1f MiB: more than 10%% apart", dp / 1048576.0, dm / 1048576.0);
        }
    }
}

/* The table, the JSON line, and exit 2 naming the stage, the need and the limit. */
static void test_command(void **state) {
    (void)state;
    char job[512];
    snprintf(job, sizeof job, "%s/tiny.ini", g_dir);
    tu_write(job, "[model]\npath = " FIXTURES "/bert-tiny\n[data]\ndomain = " FIXTURES "/corpora/domain.json\n"
                  "general = " FIXTURES "/corpora/general.jsonl\n");
    unsetenv("SLURM_MEM_PER_NODE");
    int rc = run("%s plan '%s' --ranks 2 --mem-per-rank 24G", bin(), job);
    assert_clean_stderr();
    assert_int_equal(rc, 0);
    char *o = slurp("out");
    assert_non_null(strstr(o, "accumulators"));
    assert_non_null(strstr(o, "unit activations"));
    assert_null(strstr(o, "not covered"));
    static const char *const stages[] = {"stage load:", "stage stats:", "stage score:", "stage retrain:"};
    for (int i = 0; i < 4; i++) assert_non_null(strstr(o, stages[i]));
    free(o);
    cJSON *j = summary("plan");
    assert_int_equal(cJSON_GetObjectItem(j, "ranks")->valueint, 2);
    assert_true(cJSON_GetObjectItem(j, "limit_bytes")->valuedouble == 24.0 * 1073741824.0);
    cJSON *st = plan_stage(j, "stats");
    assert_non_null(st);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(st, "fits")));
    assert_null(cJSON_GetObjectItem(j, "not_covered"));
    cJSON_Delete(j);

    rc = run("%s plan '%s' --mem-per-rank 1M", bin(), job);
    assert_clean_stderr();
    assert_int_equal(rc, 2);
    /* the stage that needs the most is named: retraining holds weights, gradients and moments, 16·P */
    assert_err_has((const char *[]){"plan: stage retrain needs", "limit of 1.0 MiB (--mem-per-rank)", NULL});

    /* Slurm's memory per node over the ranks per node: 2 MB over 2 ranks */
    rc = run("SLURM_MEM_PER_NODE=2 SLURM_NTASKS_PER_NODE=2 %s plan '%s' --ranks 2", bin(), job);
    assert_int_equal(rc, 2);
    assert_err_has((const char *[]){"limit of 1.0 MiB (SLURM_MEM_PER_NODE / ranks per node)", NULL});

    /* gaprune stats and run refuse with the same numbers before reading the weights: no line of
     * the statistics, no output folder; without Slurm's variable the limit is the node's share */
    char out_dir[600];
    snprintf(out_dir, sizeof out_dir, "%s/refused", g_dir);
    const char *const cmds[] = {"stats", "run", "score"};
    for (int i = 0; i < 3; i++) {
        rc = run("SLURM_MEM_PER_NODE=2 %s %s '%s' --set output.dir=%s", bin(), cmds[i], job, out_dir);
        assert_int_equal(rc, 2);
        char want[64];
        snprintf(want, sizeof want, "error: %s: stage ", cmds[i]);
        assert_err_has((const char *[]){want, "over the limit of 2.0 MiB (SLURM_MEM_PER_NODE / ranks per node) on 1 rank; try ", NULL});
        o = slurp("out");
        assert_null(strstr(o, "triplets selected")); /* the statistics' first line */
        assert_null(strstr(o, "run: stage"));
        free(o);
        assert_int_equal(access(out_dir, F_OK), -1);
    }
    rc = run("SLURM_MEM_PER_NODE=2 %s stats '%s' --set output.dir=%s", bin(), job, out_dir);
    assert_err_has((const char *[]){"error: stats: stage stats needs ", "stats.accumulators = sharded", NULL});
    rc = run("%s stats '%s' --set output.dir=%s", bin(), job, out_dir);
    assert_clean_stderr();
    assert_int_equal(rc, 0);
    o = slurp("out");
    assert_non_null(strstr(o, "triplets selected")); /* the line the refused runs never reached */
    free(o);

    rc = run("%s plan '%s' --mem-per-rank 12X", bin(), job);
    assert_int_equal(rc, 2);
    assert_err_has((const char *[]){"--mem-per-rank", NULL});
}

/* The score stage's plan of job `path` with the --set strings `sets` (n of them), on R ranks. */
static void plan_with(const char *path, const char *const *sets, int n, int R, gp_plan *p) {
    gp_job job;
    gp_err err = {0};
    if (gp_job_load(&job, path, sets, NULL, n, &err)) fail_msg("job: %s", err.msg);
    if (gp_plan_job(&job, R, 1, 0, p, &err)) fail_msg("plan: %s", err.msg);
    gp_job_free(&job);
}

static double part_of(const gp_plan_stage_out *s, const char *name) {
    for (int k = 0; k < s->nparts; k++)
        if (!strcmp(s->part[k].name, name)) return s->part[k].bytes;
    return -1;
}

/* issue 27: without --mem-per-rank or Slurm the plan is held against the node's physical memory
 * over the ranks per node (what stats and run refuse against), the configuration's header names
 * the ranks planned for, the advice names every job key that can still lower a stage's need and
 * no other, and a folder without weights says so. */
static void test_plan_defaults_and_advice(void **state) {
    (void)state;
    char job[512];
    snprintf(job, sizeof job, "%s/adv.ini", g_dir);
    tu_write(job, "[model]\npath = " FIXTURES "/bert-tiny\n[data]\ndomain = " FIXTURES "/corpora/domain.json\n"
                  "general = " FIXTURES "/corpora/general.jsonl\n[prune]\nmethods = magnitude\n[retrain]\n"
                  "methods = magnitude\nbatch = 16\n");
    unsetenv("SLURM_MEM_PER_NODE");
    unsetenv("SLURM_NTASKS_PER_NODE");
    assert_int_equal(run("%s plan '%s' --ranks 4", bin(), job), 0);
    assert_clean_stderr();
    cJSON *j = summary("plan");
    const double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
    const double limit = cJSON_GetObjectItem(j, "limit_bytes")->valuedouble;
    printf("    plan --ranks 4: limit %.1f MiB per rank (physical %.1f MiB / 4)\n", limit / 1048576.0, phys / 1048576.0);
    assert_true(fabs(limit - phys / 4) < 1.0);
    cJSON_Delete(j);
    char *o = slurp("out"), *e = slurp("err");
    assert_non_null(strstr(o, "(physical memory / ranks per node)"));
    assert_non_null(strstr(o, "fits"));
    assert_non_null(strstr(e, "adv.ini for 4 ranks; effective configuration:"));
    assert_null(strstr(e, "on 1 rank"));
    free(o), free(e);

    gp_plan p;
    const char *none[] = {"retrain.batch=16"};
    plan_with(job, none, 1, 1, &p);
    const char *ss = p.stage[GP_PLAN_STATS].advice, *rt = p.stage[GP_PLAN_RETRAIN].advice;
    printf("    stats: try %s\n    retrain: try %s\n", ss, rt);
    assert_null(strstr(ss, "fisher_batch")); /* 1 already: it cannot go lower */
    assert_non_null(strstr(ss, "model.recompute = true"));
    assert_non_null(strstr(ss, "stats.accumulators = sharded"));
    assert_non_null(strstr(rt, "retrain.micro_batch below 16"));
    assert_non_null(strstr(rt, "model.recompute = true"));
    const char *lower[] = {"stats.fisher_batch=4", "retrain.micro_batch=1", "model.recompute=true"};
    plan_with(job, lower, 3, 1, &p);
    ss = p.stage[GP_PLAN_STATS].advice, rt = p.stage[GP_PLAN_RETRAIN].advice;
    assert_non_null(strstr(ss, "a smaller stats.fisher_batch"));
    assert_null(strstr(ss, "recompute"));
    assert_null(strstr(rt, "micro_batch")); /* 1 triplet at once: the least */
    assert_null(strstr(rt, "recompute"));

    /* shapes without weights: planned, and said */
    tu_sh("mkdir -p '%s/noweights' && cp -r " FIXTURES "/bert-tiny/* '%s/noweights/' && rm -f '%s'/noweights/*.safetensors",
          g_dir, g_dir, g_dir);
    assert_int_equal(run("%s plan '%s' --set model.path=%s/noweights", bin(), job, g_dir), 0);
    o = slurp("out");
    assert_non_null(strstr(o, "no *.safetensors file in the folder (the stages need the weights)"));
    assert_null(strstr(o, "0.0 MiB of safetensors"));
    free(o);
}

/* One-shot reconstruction in the score stage (reconstruct.h): with prune.reconstruct = obs (or
 * sparsegpt among the methods) the stage needs exactly, on top of the same parts as without,
 *   (a) 4·C·T·(2·3·S)/R  this rank's calibration hidden states (S = prune.reconstruct_samples),
 *   (b) one block's inference buffers of eval.batch texts of T tokens (bert.c's forward-only
 *       layer, model.c's packed batch and pooling rows) beyond the model's buffers the earlier
 *       stages leave (here the statistics' unit: 3 texts in train mode; one allocation, kept at
 *       the larger), the padded batch and the block's output 4·B·T·C,
 *   (c) 16·n²            H, its float32 batch product and U for the widest input n (I, mlp),
 *   (d) 3·4·ceil(rows/R)·n  this rank's rows of the largest selected weight,
 * written out here from bert-tiny's shapes (C 32, I 64, 2 heads, 1 block: 76800 + 322372 + 65536 +
 * 12288 bytes on 2 ranks at T 40, eval.batch 4, S 5); and nothing without it. */
static void test_reconstruct_plan(void **state) {
    (void)state;
    char job[512];
    snprintf(job, sizeof job, "%s/recon.ini", g_dir);
    tu_write(job, "[model]\npath = " FIXTURES "/bert-tiny\nmax_length = 40\n[data]\ndomain = " FIXTURES "/corpora/domain.json\n"
                  "general = " FIXTURES "/corpora/general.jsonl\n[prune]\nreconstruct_samples = 5\n[eval]\nbatch = 4\n");
    gp_model_config cfg;
    gp_param_table t;
    load_shape(FIXTURES "/bert-tiny", &cfg, &t);
    const int R = 2;
    const double C = cfg.hidden, I = cfg.intermediate, L = cfg.layers, T = 40, B = 4, S = 5, N = B * T;
    const double a = 4 * C * T * (2 * 3 * S) / R;
    /* bert.c inference: embeddings' output and norm N(2C+2) and the shared GELU output NI, one
     * layer's N(8C+I+4) and one head's probabilities T² (kernels.c, one thread); model.c:
     * pooled/emb rows 3BC + B, ids/positions/touched 3N, offsets B+1 */
    const double fwd = N * (2 * C + 2 + I) + N * (8 * C + I + 4) + T * T;
    const double block = 4 * fwd + 4 * (3 * B * C + B) + 4 * 3 * N + 4 * (B + 1);
    /* the statistics free their buffers at their end and this job evaluates nothing, so nothing is
     * kept: the block's buffers are all growth, then the padded batch 5N + 4N, the block's output */
    (void)L;
    const double b = block + 9 * N + 4 * B * T * C;
    const double n = I; /* mlp: the down projection [C, I] reads I */
    const double c = 8 * n * n + 4 * n * n + 4 * n * n;
    const double d = 3 * 4 * ceil(C / R) * I; /* the down projection: C rows of I; the up projection's ceil(I/R)*C alike */
    printf("    reconstruction on 2 ranks: inputs %.0f, block %.0f, H and U %.0f, rows %.0f bytes\n", a, b, c, d);
    assert_true(a == 76800 && b == 322372 && c == 65536 && d == 12288);

    gp_plan p0, p1, pn, ps, pr, pp;
    plan_with(job, NULL, 0, R, &p0);
    plan_with(job, (const char *[]){"prune.reconstruct=obs"}, 1, R, &p1);
    plan_with(job, (const char *[]){"prune.reconstruct=none"}, 1, R, &pn);
    const gp_plan_stage_out *s0 = &p0.stage[GP_PLAN_SCORE], *s1 = &p1.stage[GP_PLAN_SCORE];
    assert_true(s0->runs && s1->runs);
    assert_true(part_of(s1, "reconstruction inputs") == a);
    assert_true(part_of(s1, "reconstruction block") == b);
    assert_true(part_of(s1, "reconstruction H, U") == c);
    assert_true(part_of(s1, "reconstruction rows") == d);
    assert_true(part_of(s1, "reconstruction dense") < 0); /* sequential: no dense block */
    if (s1->total - s0->total != a + b + c + d)
        fail_msg("score stage grew by %.0f bytes with reconstruct = obs, the formula says %.0f", s1->total - s0->total, a + b + c + d);
    assert_non_null(strstr(s1->what, "reconstruction"));
    assert_non_null(strstr(s1->advice, "prune.reconstruct_samples"));
    /* without it: the same parts as before the reconstruction existed, and every one of them unchanged */
    assert_true(pn.stage[GP_PLAN_SCORE].total == s0->total);
    for (int k = 0; k < s0->nparts; k++) {
        assert_null(strstr(s0->part[k].name, "reconstruction"));
        assert_true(part_of(s1, s0->part[k].name) == s0->part[k].bytes);
    }
    assert_null(strstr(s0->what, "reconstruction"));
    /* sparsegpt chooses its mask in the same sweep: the same memory, from either list */
    plan_with(job, (const char *[]){"prune.methods=sparsegpt"}, 1, R, &ps);
    plan_with(job, (const char *[]){"retrain.methods=sparsegpt"}, 1, R, &pr);
    assert_true(part_of(&ps.stage[GP_PLAN_SCORE], "reconstruction H, U") == c);
    assert_true(part_of(&pr.stage[GP_PLAN_SCORE], "reconstruction inputs") == a);
    /* parallel order: one block's dense selected weights and their swap, 2·4·n_sel/L */
    plan_with(job, (const char *[]){"prune.reconstruct=obs", "prune.reconstruct_order=parallel"}, 2, R, &pp);
    assert_true(part_of(&pp.stage[GP_PLAN_SCORE], "reconstruction dense") == 2 * 4 * (2 * C * I));

    /* the command's table names it */
    int rc = run("%s plan '%s' --ranks 2 --set prune.reconstruct=obs", bin(), job);
    assert_clean_stderr();
    assert_int_equal(rc, 0);
    char *o = slurp("out");
    if (!strstr(o, "stage score: ") || !strstr(strstr(o, "stage score: "), "; reconstruction: 30 texts (6 x prune.reconstruct_samples)") ||
        !strstr(o, "reconstruction inputs"))
        fail_msg("plan:\n%s", o);
    free(o);
    cJSON *j = summary("plan");
    const cJSON *parts = cJSON_GetObjectItem(plan_stage(j, "score"), "parts");
    assert_true(cJSON_GetObjectItem(parts, "reconstruction H, U")->valuedouble == c);
    cJSON_Delete(j);
    gp_param_table_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formula_parts),
        cmocka_unit_test(test_lean_activations),
        cmocka_unit_test(test_reconstruct_plan),
        cmocka_unit_test(test_command),
        cmocka_unit_test(test_plan_defaults_and_advice),
        cmocka_unit_test(test_prediction_vs_peak_rss),
        /* model-sized: minutes of the release build on 2 cores */
        tu_long_test(test_shapes_vs_peak_rss),
        tu_long_test(test_retrain_vs_peak_rss),
    };
    /* GP_TEST_FILTER=test_shapes* runs one test while iterating (cmocka's pattern) */
    return tu_run_group("plan", tests, setup, teardown);
}
