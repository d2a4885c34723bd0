/* train.c — the training stage of `gaprune train` (see train.h).
 *
 * [train] init is a model folder (training continues from it) or a config.json: then gaprune
 * makes OUT/model-init/ itself — a WordPiece vocabulary of config.json's vocab_size learned
 * from [train] corpus and [data] domain (vocab.h), the tokenizer and sentence-transformers files
 * (mean pooling, Normalize), and weights drawn from N(0, initializer_range) as BERT initialises
 * them (LayerNorm 1 and 0, biases 0). Training is the data-parallel InfoNCE loop of retrain.h
 * without a mask; the result is OUT/model/ and the per-step log OUT/train.h5.
 */
#include "gaprune/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/export.h"
#include "gaprune/fs.h"
#include "gaprune/hash.h"
#include "gaprune/json.h"
#include "gaprune/log.h"
#include "gaprune/model.h"
#include "gaprune/pipeline.h"
#include "gaprune/rng.h"
#include "gaprune/safetensors.h"
#include "gaprune/triplets.h"
#include "gaprune/vocab.h"

static gp_status put(const char *dir, const char *name, const char *text, gp_err *err) {
    char *p = gp_path_join(dir, name);
    FILE *f = gp_file_create(p, err);
    gp_status rc = GP_EINPUT;
    if (f) {
        fputs(text, f);
        rc = gp_file_commit(f, p, err);
    }
    free(p);
    return rc;
}

/* Every query, positive and negative of a triplet file (rank 0). */
static gp_status corpus_texts(const char *path, bool skip_bad, char ***texts, int64_t *n, gp_err *err) {
    gp_corpus c;
    gp_status rc = gp_corpus_index(path, INT64_MAX / 4, 1, skip_bad, &c, err);
    if (rc) return rc;
    *texts = gp_realloc(*texts, (size_t)(*n + 3 * c.n_selected + 1) * sizeof(char *));
    for (int64_t i = 0; i < c.n_selected && !rc; i++) {
        gp_triplet t;
        if ((rc = gp_corpus_read(&c, i, &t, err))) break;
        (*texts)[(*n)++] = t.query, (*texts)[(*n)++] = t.positive, (*texts)[(*n)++] = t.negative;
    }
    gp_corpus_free(&c);
    return rc;
}

static double normal(uint64_t *s) {
    double u[2];
    for (int k = 0; k < 2; k++) u[k] = gp_rng_unit_open(gp_rng_next(s));
    return sqrt(-2 * log(u[0])) * cos(2 * M_PI * u[1]);
}

/* Rank 0: OUT/model-init from a config.json. */
static gp_status make_init(const gp_job *job, const char *config_path, const char *dir, gp_err *err) {
    cJSON *j = NULL;
    gp_status rc = gp_json_load(config_path, &j, err);
    double range = 0.02;
    if (!rc) rc = gp_json_opt_double(j, "initializer_range", &range, config_path, err);
    cJSON_Delete(j);
    char *tmp = gp_tmp_path(dir);
    char *pool = gp_path_join(tmp, "1_Pooling");
    if (!rc) rc = gp_mkdir_p(pool, err);
    char *cfg_copy = gp_path_join(tmp, "config.json");
    if (!rc) rc = gp_copy_file(config_path, cfg_copy, err);
    gp_model_config mc;
    if (!rc) rc = gp_model_config_load(tmp, &mc, err);
    /* from scratch, gaprune learns a WordPiece vocabulary, which is BERT's; a Qwen3 model needs
     * its byte-level BPE tokenizer.json, so it starts from a folder instead */
    if (!rc && mc.arch != GP_ARCH_BERT)
        rc = gp_errf(err, GP_EINPUT, "%s: [train] init from a config.json makes BERT models only (model_type \"bert\"); "
                     "start a %s model from its folder", config_path, "qwen3");
    char **texts = NULL;
    int64_t n = 0;
    if (!rc) rc = corpus_texts(job->train.corpus, job->data.on_bad_record == GP_BAD_SKIP, &texts, &n, err);
    if (!rc && *job->data.domain) rc = corpus_texts(job->data.domain, job->data.on_bad_record == GP_BAD_SKIP, &texts, &n, err);
    char *vocab = gp_path_join(tmp, "vocab.txt");
    if (!rc) rc = gp_wordpiece_learn((const char *const *)texts, n, mc.vocab_size, true, vocab, err);
    for (int64_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    char sbc[128];
    int msl = job->model.max_length < mc.max_positions ? job->model.max_length : mc.max_positions;
    snprintf(sbc, sizeof sbc, "{\n  \"max_seq_length\": %d,\n  \"do_lower_case\": false\n}\n", msl);
    char pooling[512];
    snprintf(pooling, sizeof pooling,
             "{\n  \"word_embedding_dimension\": %d,\n  \"pooling_mode_cls_token\": false,\n  \"pooling_mode_mean_tokens\": true,\n"
             "  \"pooling_mode_max_tokens\": false,\n  \"pooling_mode_mean_sqrt_len_tokens\": false,\n"
             "  \"pooling_mode_weightedmean_tokens\": false,\n  \"pooling_mode_lasttoken\": false,\n  \"include_prompt\": true\n}\n",
             mc.hidden);
    if (!rc) rc = put(tmp, "tokenizer_config.json",
                      "{\n  \"do_lower_case\": true,\n  \"strip_accents\": null,\n  \"tokenize_chinese_chars\": true,\n"
                      "  \"cls_token\": \"[CLS]\",\n  \"sep_token\": \"[SEP]\",\n  \"pad_token\": \"[PAD]\",\n"
                      "  \"unk_token\": \"[UNK]\",\n  \"mask_token\": \"[MASK]\",\n  \"tokenizer_class\": \"BertTokenizer\"\n}\n",
                      err);
    if (!rc) rc = put(tmp, "special_tokens_map.json",
                      "{\"cls_token\": \"[CLS]\", \"mask_token\": \"[MASK]\", \"pad_token\": \"[PAD]\", \"sep_token\": \"[SEP]\", "
                      "\"unk_token\": \"[UNK]\"}\n",
                      err);
    if (!rc) rc = put(tmp, "modules.json",
                      "[\n  {\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"},\n"
                      "  {\"idx\": 1, \"name\": \"1\", \"path\": \"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"},\n"
                      "  {\"idx\": 2, \"name\": \"2\", \"path\": \"2_Normalize\", \"type\": \"sentence_transformers.models.Normalize\"}\n]\n",
                      err);
    if (!rc) rc = put(pool, "config.json", pooling, err);
    if (!rc) rc = put(tmp, "sentence_bert_config.json", sbc, err);
    if (!rc) {
        gp_model *m = gp_model_create(&mc, (gp_pooling){GP_POOL_MEAN, true});
        uint64_t s = (uint64_t)job->data.seed * 0x2545f4914f6cdd1dull + 1;
        for (int i = 0; i < m->table.n; i++) {
            const gp_param *p = &m->table.p[i];
            float *w = gp_model_param(m, i);
            bool ln_weight = strstr(p->name, "LayerNorm.weight") != NULL;
            for (size_t k = 0; k < p->numel; k++) w[k] = p->ndim == 2 ? (float)(range * normal(&s)) : ln_weight ? 1.0f : 0.0f;
        }
        gp_st_writer *w = gp_st_writer_init();
        gp_st_writer_meta(w, "gaprune.init", "random: N(0, initializer_range) matrices, LayerNorm 1/0, biases 0");
        for (int i = 0; i < m->table.n; i++)
            gp_st_writer_add_f32(w, m->table.p[i].name, GP_DT_F32, m->table.p[i].ndim, m->table.p[i].shape, gp_model_param(m, i));
        char *wp = gp_path_join(tmp, "model.safetensors");
        rc = gp_st_writer_write(w, wp, err);
        free(wp);
        gp_st_writer_free(w);
        gp_model_free(m);
    }
    if (!rc) {
        /* a directory rename needs the target gone */
        if (!gp_rmtree(dir)) gp_warn("could not remove %s", dir);
        if (rename(tmp, dir) != 0) rc = gp_errf(err, GP_EINPUT, "%s: cannot rename to %s", tmp, dir);
    }
    free(vocab), free(cfg_copy), free(pool), free(tmp);
    return rc;
}

gp_status gp_train_check(const gp_job *job, gp_err *err) {
    if (!*job->train.init || !*job->train.corpus)
        return gp_errf(err, GP_EINPUT, "%s: [train] init and corpus are required", job->path);
    return GP_OK;
}

gp_status gp_train_run(gp_job *job, gp_train_report *res, gp_err *err) {
    memset(res, 0, sizeof *res);
    gp_status rc = GP_OK;
    char *init_dir = gp_path_join(job->out_dir, "model-init"), *out = gp_path_join(job->out_dir, "model"),
         *log_path = gp_path_join(job->out_dir, "train.h5");
    const char *model_dir = job->train.init;
    bool from_config = gp_file_exists(job->train.init);
    char base[65] = "";
    if (gp_rank() == 0) {
        if (from_config) {
            /* the initial model depends on config.json, the corpora and the seed */
            char cfg_sha[65], a[65] = "", b[65] = "", text[512];
            rc = gp_sha256_file(job->train.init, cfg_sha, err);
            if (!rc) rc = gp_sha256_file(job->train.corpus, a, err);
            if (!rc && *job->data.domain) rc = gp_sha256_file(job->data.domain, b, err);
            snprintf(text, sizeof text, "gaprune-init v1; config %s; corpus %s; domain %s; seed %lld; max_length %d", cfg_sha, a, b,
                     (long long)job->data.seed, job->model.max_length);
            gp_sha256 *h = gp_sha256_init();
            gp_sha256_update(h, text, strlen(text));
            gp_sha256_final(h, base);
            char *marker = gp_path_join(init_dir, GP_INIT_MARKER);
            char *old = NULL;
            bool current = gp_read_file(marker, &old, NULL, err) == GP_OK && !strncmp(old, base, 64);
            free(old);
            if (!current && !rc) {
                gp_log0("train: making %s from %s", init_dir, job->train.init);
                rc = make_init(job, job->train.init, init_dir, err);
                if (!rc) rc = put(init_dir, GP_INIT_MARKER, base, err);
            }
            free(marker);
        } else if (!rc) {
            rc = gp_model_sha256(job->train.init, base, err);
        }
    }
    if (from_config) model_dir = init_dir;
    gp_model *m = NULL;
    if (!(rc = gp_agree(rc, err))) rc = gp_agree(gp_model_load(model_dir, &m, err), err);
    gp_bcast_bytes(base, sizeof base, 0);
    if (!rc) gp_job_model_settings(job, m);
    if (!rc) {
        gp_train_opts o;
        gp_train_opts_train(job, &o);
        rc = gp_retrain(&o, m, NULL, "train", log_path, base, &res->train, err);
        if (!rc) {
            char hash[65] = "";
            if (gp_rank() == 0) {
                char text[200];
                snprintf(text, sizeof text, "%s|%d|%.17g|%d", base, job->train.steps, job->train.lr, job->train.batch);
                gp_sha256 *h = gp_sha256_init();
                gp_sha256_update(h, text, strlen(text));
                gp_sha256_final(h, hash);
                if (!gp_folder_current(out, hash)) {
                    char steps[32];
                    snprintf(steps, sizeof steps, "%d", job->train.steps);
                    const char *meta[] = {"gaprune.trained_from", model_dir, "gaprune.train_steps", steps, "gaprune.train_corpus",
                                          job->train.corpus, "gaprune.settings_hash", hash, "gaprune.version", GP_VERSION};
                    rc = gp_export_model(m, out, meta, 5, NULL, err);
                }
            }
            rc = gp_agree(rc, err);
        }
    }
    if (!rc) res->output = out;
    else free(out);
    gp_model_free(m);
    free(init_dir), free(log_path);
    return rc;
}

void gp_train_report_free(gp_train_report *res) {
    free(res->output);
    res->output = NULL;
}
