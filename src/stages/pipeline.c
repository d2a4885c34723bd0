/* pipeline.c — shared, skippable stages (see pipeline.h). */
#include "gaprune/pipeline.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gaprune/bf16.h"
#include "gaprune/dist.h"
#include "gaprune/eval.h"
#include "gaprune/export.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/hash.h"
#include "gaprune/json.h"
#include "gaprune/log.h"
#include "gaprune/mask.h"
#include "gaprune/mask_file.h"
#include "gaprune/plan.h"
#include "gaprune/retrain_file.h"
#include "gaprune/safetensors.h"
#include "gaprune/stats.h"
#include "gaprune/stats_file.h"
#include "gaprune/triplets.h"

gp_status gp_inputs_check(const gp_job *job, gp_err *err) {
    double t0 = gp_now();
    gp_status rc = GP_OK;
    /* the triplet corpora: indexed on rank 0 as the first stage will (every record validated, bad
     * ones counted or rejected as data.on_bad_record says), opened on the ranks that read their
     * records; the selection is dropped, so the stage indexes them again */
    const char *corpora[2] = {job->data.domain, job->data.general};
    for (int c = 0; c < 2 && !rc; c++) {
        if (!corpora[c] || !*corpora[c]) continue;
        if (gp_rank() == 0) {
            gp_corpus corp;
            rc = gp_corpus_index(corpora[c], job->data.max_samples, (uint64_t)job->data.seed,
                                 job->data.on_bad_record == GP_BAD_SKIP, &corp, err);
            if (!rc) gp_corpus_free(&corp);
        } else {
            FILE *f = fopen(corpora[c], "rb");
            if (!f) rc = gp_errf(err, GP_EINPUT, "%s: cannot open: %s", corpora[c], strerror(errno));
            else fclose(f);
        }
    }
    if ((rc = gp_agree(rc, err))) return rc;
    gp_eval_opts eo;
    gp_eval_opts_from_job(&eo, job);
    if ((rc = gp_eval_check(&eo, err))) return rc;
    gp_log0("inputs: the corpora and every evaluation set read and checked in %.2f s", gp_now() - t0);
    return GP_OK;
}

bool gp_folder_current(const char *dir, const char *hash) {
    gp_st_set *set;
    gp_err err;
    if (!gp_dir_exists(dir) || gp_st_set_open(dir, &set, &err)) return false;
    const char *h = gp_st_meta(gp_st_set_file(set, 0), "gaprune.settings_hash");
    bool ok = h && !strcmp(h, hash);
    gp_st_set_close(set);
    return ok;
}

static bool mask_current(const char *path, const char *hash) {
    hid_t f = gp_h5_open_quiet(path);
    if (f < 0) return false;
    int64_t complete = 0;
    char *h = gp_h5_read_attr_str(f, GP_MASK_ATTR_SETTINGS_HASH);
    bool ok = !gp_h5_read_attr_int(f, GP_H5_ATTR_COMPLETE, &complete) && complete == 1 && h && !strcmp(h, hash);
    free(h);
    H5Fclose(f);
    return ok;
}

gp_status gp_prune_inputs_init(const gp_prune_opts *cfg, const gp_model *m, gp_prune_inputs *in, gp_err *err) {
    memset(in, 0, sizeof *in);
    snprintf(in->stats_hash, sizeof in->stats_hash, "none");
    char *stats_path = gp_path_join(cfg->out_dir, GP_STATS_FILE);
    int have = 0;
    gp_status rc = GP_OK;
    if (gp_rank() == 0) {
        have = gp_file_exists(stats_path);
        rc = gp_model_sha256(m->dir, in->model_sha, err);
        if (!rc && have) {
            hid_t f = gp_h5_open_quiet(stats_path);
            char *ms = f >= 0 ? gp_h5_read_attr_str(f, GP_STATS_ATTR_MODEL_SHA256) : NULL;
            char *sh = f >= 0 ? gp_h5_read_attr_str(f, GP_STATS_ATTR_SETTINGS_HASH) : NULL;
            char *layers = f >= 0 ? gp_h5_read_attr_str(f, GP_STATS_ATTR_LAYERS) : NULL;
            if (!ms || strcmp(ms, in->model_sha))
                rc = gp_errf(err, GP_EINPUT, "%s was computed for another model (or is damaged): rerun gaprune stats",
                             stats_path);
            else if (layers && strcmp(layers, gp_layers_name(cfg->layers)))
                rc = gp_errf(err, GP_EINPUT,
                             "%s: [prune] layers = %s, but %s holds the statistics of layers = %s only: rerun gaprune "
                             "stats with these layers",
                             cfg->layers_origin, gp_layers_name(cfg->layers), stats_path, layers);
            if (sh) snprintf(in->stats_hash, sizeof in->stats_hash, "%s", sh);
            free(ms), free(sh), free(layers);
            if (f >= 0) H5Fclose(f);
        }
        if (!rc) rc = gp_mkdir_p(cfg->out_dir, err);
    }
    if ((rc = gp_agree(rc, err))) {
        free(stats_path);
        return rc;
    }
    gp_bcast_bytes(in->model_sha, sizeof in->model_sha, 0);
    gp_bcast_bytes(in->stats_hash, sizeof in->stats_hash, 0);
    have = gp_allreduce_max_int(have);
    if (have) in->stats_path = stats_path;
    else free(stats_path);
    return GP_OK;
}

void gp_prune_inputs_free(gp_prune_inputs *in) {
    free(in->stats_path);
    in->stats_path = NULL;
}

/* The structures of kind k a mask of whole structures keeps (gp_mask_kept_structs), into *st,
 * for a structured export; false (export every tensor at its shape) for any other mask. What *st
 * points to is freed by kept_structs_free. */
static bool kept_structs(const gp_mask *mask, const gp_model *m, gp_struct_kind k, gp_export_structs *st) {
    memset(st, 0, sizeof *st);
    if (!mask || mask->n == 0) return false;
    int32_t *index = gp_malloc((size_t)m->cfg.layers * (size_t)gp_model_struct_count(m, k) * sizeof(int32_t) + 1);
    int64_t *counts = gp_malloc((size_t)m->cfg.layers * sizeof(int64_t) + 1);
    if (gp_mask_kept_structs(mask, m, k, index, counts) < 0) {
        free(index), free(counts);
        return false;
    }
    *st = (gp_export_structs){k, m->cfg.layers, counts, index};
    return true;
}

static void kept_structs_free(gp_export_structs *st) {
    free((void *)st->counts), free((void *)st->index);
    memset(st, 0, sizeof *st);
}

int64_t gp_weights_bytes(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int64_t bytes = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const size_t n = strlen(e->d_name), k = strlen(".safetensors");
        if (n <= k || strcmp(e->d_name + n - k, ".safetensors")) continue;
        char *p = gp_path_join(dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) bytes += (int64_t)st.st_size;
        free(p);
    }
    closedir(d);
    return bytes;
}

/* Parameters of m once the structures st leaves out are gone. */
static int64_t params_kept(const gp_model *m, const gp_export_structs *st) {
    int64_t n = 0;
    for (int i = 0; i < m->table.n; i++) {
        int layer;
        const gp_param *t = &m->table.p[i];
        const gp_neuron_axis ax = st ? gp_model_struct_axis(m, st->kind, i, &layer) : GP_NEURON_NONE;
        n += ax == GP_NEURON_NONE || layer < 0 ? (int64_t)t->numel
                                               : (int64_t)t->numel / gp_model_struct_count(m, st->kind) * st->counts[layer];
    }
    return n;
}

/* What a structured export keeps, on rank 0: a count per block, or every block's when they differ
 * (scope neurons-global), which only gaprune reads. */
static void log_structs(const gp_model *m, const gp_export_structs *st, const char *dir, int64_t params) {
    bool uneven = false;
    for (int l = 1; l < st->layers; l++) uneven |= st->counts[l] != st->counts[0];
    if (!uneven) {
        gp_log0("score: %s keeps %lld of %lld %s in each of %d blocks: %lld of %zu parameters", dir, (long long)st->counts[0],
                (long long)gp_model_struct_count(m, st->kind), gp_struct_title(st->kind), st->layers, (long long)params,
                m->table.total);
        return;
    }
    char list[2048];
    size_t at = 0;
    for (int l = 0; l < st->layers && at + 40 < sizeof list; l++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%lld", l ? " " : "", (long long)st->counts[l]);
    gp_log0("score: %s keeps %s of %lld %s in blocks 0..%d: %lld of %zu parameters", dir, list,
            (long long)gp_model_struct_count(m, st->kind), gp_struct_title(st->kind), st->layers - 1, (long long)params,
            m->table.total);
    gp_warn("%s: its blocks keep different numbers of MLP neurons (prune.scope = neurons-global): a folder that only "
            "gaprune reads; transformers and sentence-transformers cannot load it (%s there says so)",
            dir, GP_EXPORT_NOTICE);
}

int gp_prune_variants(const gp_job *job, const gp_criterion *crit, gp_prune_variant **out) {
    const int nb = crit->weighted ? job->prune.n_beta : 1, ng = crit->weighted ? job->prune.n_gamma : 1;
    const int nr = job->prune.n_reconstruct > 0 ? job->prune.n_reconstruct : 1;
    gp_prune_variant *v = gp_calloc((size_t)(nb * ng * nr), sizeof *v);
    for (int b = 0; b < nb; b++)
        for (int g = 0; g < ng; g++)
            for (int r = 0; r < nr; r++) {
                gp_prune_variant *x = &v[(b * ng + g) * nr + r];
                x->crit = crit, x->beta = job->prune.beta[b], x->gamma = job->prune.gamma[g];
                x->recon = job->prune.n_reconstruct > 0 ? job->prune.reconstruct[r] : GP_RECON_NONE;
                const char *plus = x->recon == GP_RECON_OBS ? "+obs" : "";
                if (nb * ng > 1) snprintf(x->label, sizeof x->label, "%s-b%g-g%g%s", crit->name, x->beta, x->gamma, plus);
                else snprintf(x->label, sizeof x->label, "%s%s", crit->name, plus);
            }
    *out = v;
    return nb * ng * nr;
}

void gp_prune_inputs_recon(gp_prune_inputs *in, const gp_job *job, const gp_sample_report *samples) {
    gp_recon_opts_from_job(&in->recon, job, samples);
}

/* The reconstruction as gp_mask_build's after_select: the mask chosen, the model's weights solved
 * again block by block (or, for sparsegpt, the mask chosen in the same sweep). */
typedef struct {
    const gp_recon_opts *o;
    gp_model *m;
    gp_recon_mask how;
    const char *ckpt_dir, *hash;
    gp_recon_report rep;
    bool ran;
} recon_step;

static gp_status recon_after_select(void *ctx, gp_mask *mk, gp_err *err) {
    recon_step *r = ctx;
    gp_status rc = gp_reconstruct(r->o, r->m, mk, &r->how, r->ckpt_dir, r->hash, &r->rep, err);
    r->ran = !rc;
    return rc;
}

/* Rank 0: what the reconstruction did, in the mask file: its settings as attributes and each
 * tensor's output errors beside /summary (same order). */
static void recon_write_extra(void *ctx, int64_t file) {
    const recon_step *r = ctx;
    const hid_t f = (hid_t)file;
    const gp_recon_opts *o = r->o;
    gp_h5_attr_str(f, GP_MASK_ATTR_RECONSTRUCT, r->how.update ? "obs" : "none");
    gp_h5_attr_str(f, GP_MASK_ATTR_RECONSTRUCT_ORDER, gp_recon_order_name(o->order));
    gp_h5_attr_double(f, GP_MASK_ATTR_DAMPENING, o->dampening);
    gp_h5_attr_double(f, GP_MASK_ATTR_RECONSTRUCT_GENERAL, o->general_weight);
    gp_h5_attr_int(f, GP_MASK_ATTR_BLOCK, o->block);
    gp_h5_attr_str(f, GP_MASK_ATTR_CALIBRATION_DOMAIN, o->corpus[0]);
    gp_h5_attr_str(f, GP_MASK_ATTR_CALIBRATION_GENERAL, o->corpus[1]);
    gp_h5_attr_int(f, GP_MASK_ATTR_CALIBRATION_TEXTS_DOMAIN, r->rep.texts[0]);
    gp_h5_attr_int(f, GP_MASK_ATTR_CALIBRATION_TEXTS_GENERAL, r->rep.texts[1]);
    gp_h5_attr_int(f, GP_MASK_ATTR_CALIBRATION_TOKENS_DOMAIN, r->rep.tokens[0]);
    gp_h5_attr_int(f, GP_MASK_ATTR_CALIBRATION_TOKENS_GENERAL, r->rep.tokens[1]);
    gp_h5_attr_double(f, GP_MASK_ATTR_RECONSTRUCT_SECONDS, r->rep.seconds);
    const size_t n = (size_t)r->rep.n;
    gp_h5_write_flat_f64(f, GP_MASK_RECON_ERROR_BEFORE, r->rep.err_before, n,
                         "relative output error ||X (W*M)' - X W'|| / ||X W'|| of each /summary tensor with the mask alone "
                         "(dense kept weights), X its inputs on the calibration texts (domain and general weighted as "
                         "the attributes say), in the model as pruned and reconstructed up to that layer",
                         "1");
    gp_h5_write_flat_f64(f, GP_MASK_RECON_ERROR_AFTER, r->rep.err_after, n,
                         "the same relative output error for the written weights (reconstructed when reconstruct = obs)", "1");
}

/* The DAI fisher/magnitude term ratio of a mask: the mean over its tensors (the file's attribute when a
 * reused mask has no per-tensor values; the structured one for a newly built gaprune-neurons mask). It describes the statistics under this job's beta and
 * gamma, and only a criterion that adds the two terms is ranked by it, so the others get NaN: the report
 * and the log show it for the DAI family alone (the mask file keeps it for every criterion). */
static double term_ratio(const gp_criterion *crit, const gp_mask *mask, bool reused, double reused_ratio) {
    if (!crit->weighted) return NAN;
    if (!reused && (crit->needs & GP_NEED_NEURONS)) return mask->neuron_fisher_vs_magnitude;
    double sum = 0;
    int n = 0;
    for (int i = 0; mask->rows && i < mask->n; i++)
        if (!isnan(mask->rows[i].fisher_vs_magnitude)) sum += mask->rows[i].fisher_vs_magnitude, n++;
    return n ? sum / n : reused_ratio;
}

/* Rank 0: the mean output errors a reused mask file records. */
static gp_status read_recon_errors(gp_pruned *out, gp_err *err) {
    (void)err;
    hid_t f = gp_h5_open_quiet(out->mask_path);
    if (f < 0) return GP_OK;
    double v[2] = {NAN, NAN};
    const char *names[2] = {GP_MASK_RECON_ERROR_BEFORE, GP_MASK_RECON_ERROR_AFTER};
    const int n = out->mask.n;
    double *e = gp_malloc((size_t)(n ? n : 1) * sizeof(double));
    for (int k = 0; k < 2; k++)
        if (n && !gp_h5_read_f64(f, names[k], e, (size_t)n)) {
            double s = 0;
            for (int i = 0; i < n; i++) s += e[i];
            v[k] = s / n;
        }
    free(e);
    H5Fclose(f);
    out->recon_err_before = v[0], out->recon_err_after = v[1];
    return GP_OK;
}

gp_status gp_prune_step(const gp_prune_opts *base, gp_model *m, const gp_prune_inputs *in, const gp_prune_variant *variant,
                        double p, gp_pruned *out, gp_err *err) {
    memset(out, 0, sizeof *out);
    const gp_criterion *crit = variant->crit;
    const char *method = crit->name;
    gp_prune_opts vo = *base;
    vo.beta = variant->beta, vo.gamma = variant->gamma;
    const gp_prune_opts *cfg = &vo;
    char scope_buf[32];
    const char *scope = gp_scope_name(&cfg->scope, scope_buf, sizeof scope_buf);
    const char *layers = gp_layers_name(cfg->layers);
    snprintf(out->tag, sizeof out->tag, "%s-%g", variant->label, p);
    char name[160], settings[2048];
    snprintf(name, sizeof name, GP_MASK_FILE_FMT, out->tag);
    out->mask_path = gp_path_join(cfg->out_dir, name);
    snprintf(name, sizeof name, "pruned-%s", out->tag);
    out->pruned_dir = gp_path_join(cfg->out_dir, name);
    snprintf(settings, sizeof settings,
             "gaprune-mask v1; model %s; stats %s; method %s; sparsity %.17g; scope %s; layers %s; alpha %.17g; "
             "beta %.17g; gamma %.17g; alignment %s; seed %lld; save_scores %d",
             in->model_sha, in->stats_hash, method, p, scope, layers, cfg->alpha, cfg->beta, cfg->gamma,
             gp_alignment_name(cfg->alignment), (long long)cfg->prune_seed, cfg->save_scores);
    /* reconstruction: its settings and calibration join the hash (a mask-only variant's stays as it was) */
    const bool recon = variant->recon == GP_RECON_OBS || (crit->needs & GP_NEED_OBS);
    const gp_recon_opts *ro = &in->recon;
    if (recon) {
        const size_t at = strlen(settings);
        snprintf(settings + at, sizeof settings - at,
                 "; reconstruct %s; order %s; dampening %.17g; general %.17g; block %d; samples %lld; data seed %lld; "
                 "domain %s; general %s; max_length %d; batch %d%s",
                 gp_recon_kind_name(variant->recon), gp_recon_order_name(ro->order), ro->dampening, ro->general_weight,
                 ro->block, (long long)ro->samples, (long long)ro->seed, ro->corpus[0] ? ro->corpus[0] : "",
                 ro->corpus[1] ? ro->corpus[1] : "", ro->max_length, ro->batch, gp_compute_tag());
    }
    out->recon_err_before = out->recon_err_after = NAN;
    gp_sha256 *h = gp_sha256_init();
    gp_sha256_update(h, settings, strlen(settings));
    gp_sha256_final(h, out->hash);
    char *recon_dir = NULL;
    int current = gp_rank() == 0 && mask_current(out->mask_path, out->hash) && gp_folder_current(out->pruned_dir, out->hash);
    current = gp_allreduce_max_int(current);
    gp_status rc = GP_OK;
    double reused_ratio = NAN;
    if (current) { /* rank 0 reads the mask back and sends it to every rank */
        if (gp_rank() == 0) {
            rc = gp_mask_read(out->mask_path, m, &out->mask, err);
            hid_t f = rc ? -1 : gp_h5_open_quiet(out->mask_path);
            if (f >= 0) {
                gp_h5_read_attr_double(f, GP_MASK_ATTR_MODEL_ZERO_FRACTION, &out->mask.model_zero_fraction);
                out->mask.fisher_negative = NAN; /* a file from before the attribute */
                gp_h5_read_attr_double(f, GP_MASK_ATTR_FISHER_NEGATIVE, &out->mask.fisher_negative);
                gp_h5_read_attr_double(f, crit->needs & GP_NEED_NEURONS ? GP_MASK_ATTR_NEURON_FISHER_VS_MAGNITUDE
                                                                        : GP_MASK_ATTR_FISHER_VS_MAGNITUDE_MEAN,
                                       &reused_ratio);
                H5Fclose(f);
            }
        }
        if (!rc && gp_rank() == 0 && recon) rc = read_recon_errors(out, err);
        if ((rc = gp_agree(rc, err))) return rc;
        gp_mask_bcast(&out->mask, m);
        /* the solved weights are the pruned folder's (whole structures: the caller reopens that folder) */
        if (variant->recon == GP_RECON_OBS && !gp_scope_structured(&cfg->scope))
            rc = gp_agree(gp_model_read_weights(m, out->pruned_dir, err), err);
        if (rc) return rc;
    } else { /* every rank scores its slice and ends with the whole mask */
        gp_mask_request req = {crit, p, in->stats_path, out->mask_path, out->hash, NULL, NULL, NULL};
        char name2[200];
        snprintf(name2, sizeof name2, "reconstruct-%s", out->tag);
        recon_dir = gp_path_join(cfg->out_dir, name2);
        recon_step rs = {.o = ro, .m = m, .ckpt_dir = recon_dir, .hash = out->hash};
        if (recon) {
            rs.how.update = variant->recon == GP_RECON_OBS;
            if (crit->needs & GP_NEED_OBS) {
                rs.how.select = cfg->scope.kind == GP_SCOPE_ROW ? GP_OBS_ROW : cfg->scope.kind == GP_SCOPE_NM ? GP_OBS_NM : GP_OBS_LAYER;
                rs.how.sparsity = p, rs.how.nm_n = cfg->scope.n, rs.how.nm_m = cfg->scope.m;
            } else {
                rs.how.select = GP_OBS_FIXED;
            }
            req.after_select = recon_after_select, req.write_extra = recon_write_extra, req.ctx = &rs;
        }
        rc = gp_mask_build(cfg, m, &req, &out->mask, err);
        if (rs.ran) {
            double b = 0, a = 0;
            for (int i = 0; i < rs.rep.n; i++) b += rs.rep.err_before[i], a += rs.rep.err_after[i];
            out->recon_err_before = rs.rep.n ? b / rs.rep.n : NAN;
            out->recon_err_after = rs.rep.n ? a / rs.rep.n : NAN;
            out->recon_seconds = rs.rep.seconds;
            gp_log0("score: %s: reconstruction %.1f s, mean relative output error on the calibration inputs %.4f with "
                    "the mask alone, %.4f as written (%lld + %lld calibration texts); rank 0: block forwards %.1f s, "
                    "Hessians %.1f s, factors %.1f s, sweeps %.2f s (%.1f GFLOP/s)",
                    out->tag, rs.rep.seconds, out->recon_err_before, out->recon_err_after, (long long)rs.rep.texts[0],
                    (long long)rs.rep.texts[1], rs.rep.forward_seconds, rs.rep.hessian_seconds, rs.rep.factor_seconds,
                    rs.rep.update_seconds,
                    rs.rep.update_seconds > 0 ? rs.rep.update_gflop / gp_nranks() / rs.rep.update_seconds : 0.0);
        }
        gp_recon_report_free(&rs.rep);
        if (rc) {
            free(recon_dir);
            return rc;
        }
    }
    gp_mask_apply(&out->mask, m);
    out->reused = current;
    out->sparsity = (double)out->mask.pruned / (double)out->mask.total;
    out->zero_fraction = out->mask.model_zero_fraction;
    out->fisher_ratio = term_ratio(crit, &out->mask, current, reused_ratio);
    out->fisher_negative = crit->weighted ? out->mask.fisher_negative : NAN;
    gp_export_structs nr;
    const bool structured = gp_scope_structured(&cfg->scope) && kept_structs(&out->mask, m, gp_scope_struct(&cfg->scope), &nr);
    out->params = params_kept(m, structured ? &nr : NULL);
    if (current) {
        if (gp_rank() == 0) out->disk_bytes = gp_weights_bytes(out->pruned_dir);
        if (structured) kept_structs_free(&nr);
        gp_log0("score: %s and %s are up to date", out->mask_path, out->pruned_dir);
        return GP_OK;
    }
    if (gp_rank() == 0) {
        char sparsity[32], zero[32];
        snprintf(sparsity, sizeof sparsity, "%.6f", out->sparsity);
        snprintf(zero, sizeof zero, "%.6f", out->zero_fraction);
        const char *meta[] = {"gaprune.method", method, "gaprune.sparsity", sparsity, "gaprune.scope", scope,
                              "gaprune.layers", layers, "gaprune.mask_file", out->mask_path,
                              "gaprune.model_zero_fraction", zero, "gaprune.source_model", m->dir,
                              "gaprune.source_model_sha256", in->model_sha, "gaprune.settings_hash", out->hash,
                              "gaprune.version", GP_VERSION};
        if (structured) log_structs(m, &nr, out->pruned_dir, out->params);
        rc = gp_export_model(m, out->pruned_dir, meta, 10, structured ? &nr : NULL, err);
        if (!rc) out->disk_bytes = gp_weights_bytes(out->pruned_dir);
    }
    if (structured) kept_structs_free(&nr);
    if ((rc = gp_agree(rc, err))) {
        free(recon_dir);
        return rc;
    }
    /* the folder holds the solved weights now: the reconstruction's checkpoints are done with; the
     * model takes them back as the folder stores them (rounded to a BF16 or F16 checkpoint's dtype),
     * so that what follows (evaluation, retraining) sees what a rerun that reuses the folder sees */
    if (recon_dir) gp_reconstruct_cleanup(recon_dir, m->cfg.layers);
    if (variant->recon == GP_RECON_OBS && !gp_scope_structured(&cfg->scope) &&
        (rc = gp_agree(gp_model_read_weights(m, out->pruned_dir, err), err))) {
        free(recon_dir);
        return rc;
    }
    free(recon_dir);
    char ratio[128] = "", thr[96] = "";
    if (!isnan(out->fisher_ratio))
        snprintf(ratio, sizeof ratio, "; mean fisher/magnitude term ratio %.3g, Fisher term negative on %.0f%% of the weights",
                 out->fisher_ratio, 100 * out->fisher_negative);
    /* a per-row, n:m or per-structure selection has no one threshold (the mask records NaN) */
    if (!isnan(out->mask.threshold)) snprintf(thr, sizeof thr, "; threshold %.4g", out->mask.threshold);
    else snprintf(thr, sizeof thr, "; no global threshold (selected per row, n:m group, layer or structure)");
    gp_log0("score: %s at %g: pruned %lld of %lld %s weights (%.2f%%), %.2f%% of all parameters are now zero%s%s -> %s, %s",
            method, p, (long long)out->mask.pruned, (long long)out->mask.total, layers, 100.0 * out->sparsity,
            100.0 * out->zero_fraction, thr, ratio, out->mask_path, out->pruned_dir);
    return GP_OK;
}

void gp_pruned_free(gp_pruned *p) {
    gp_mask_free(&p->mask);
    free(p->mask_path);
    free(p->pruned_dir);
    memset(p, 0, sizeof *p);
}

gp_status gp_retrain_step(const gp_train_opts *o, gp_model *m, const gp_mask *mask, const char *tag, const char *mask_path,
                          const char *mask_hash, const char *out_dir, gp_retrained *out, gp_err *err) {
    memset(out, 0, sizeof *out);
    char name[320];
    snprintf(name, sizeof name, GP_RETRAIN_FILE_FMT, tag);
    out->log_path = gp_path_join(out_dir, name);
    snprintf(name, sizeof name, "retrained-%s", tag);
    out->model_dir = gp_path_join(out_dir, name);
    gp_status rc = gp_retrain(o, m, mask, tag, out->log_path, mask_hash, &out->report, err);
    if (rc) return rc;
    /* the folder's hash is the log's (settings and data) */
    if (gp_rank() == 0) {
        hid_t f = gp_h5_open_quiet(out->log_path);
        char *h = f >= 0 ? gp_h5_read_attr_str(f, GP_RETRAIN_ATTR_SETTINGS_HASH) : NULL;
        snprintf(out->hash, sizeof out->hash, "%s", h ? h : "");
        free(h);
        if (f >= 0) H5Fclose(f);
        if (!gp_folder_current(out->model_dir, out->hash)) {
            char steps[32];
            snprintf(steps, sizeof steps, "%d", o->steps);
            /* no mask: the dense model retrained (gaprune run's baseline, retrain.methods = ..., dense) */
            const char *meta[] = {"gaprune.retrained_from_mask", mask_path ? mask_path : "none", "gaprune.retrain_steps", steps,
                                  "gaprune.retrain_log", out->log_path, "gaprune.source_model", m->dir,
                                  "gaprune.settings_hash", out->hash, "gaprune.version", GP_VERSION};
            /* a mask of whole neurons or heads: the retrained model at its reduced size too */
            gp_export_structs nr;
            const bool structured = kept_structs(mask, m, GP_STRUCT_NEURONS, &nr) || kept_structs(mask, m, GP_STRUCT_HEADS, &nr);
            rc = gp_export_model(m, out->model_dir, meta, 6, structured ? &nr : NULL, err);
            if (structured) kept_structs_free(&nr);
        }
    }
    rc = gp_agree(rc, err);
    gp_bcast_bytes(out->hash, sizeof out->hash, 0);
    return rc;
}

void gp_retrained_free(gp_retrained *r) {
    free(r->log_path);
    free(r->model_dir);
    memset(r, 0, sizeof *r);
}

void gp_job_model_settings(gp_job *job, gp_model *m) {
    gp_model_set_recompute(m, job->model.recompute);
    if (job->model.weights == GP_WEIGHTS_F32) gp_model_hold_f32(m, true);
    gp_set_compute(job->model.compute);
    static bool told;
    if (job->model.compute == GP_COMPUTE_BF16 && !told) {
        told = true;
        if (gp_bf16_native())
            gp_log0("[model] compute = bf16: BF16 matmuls with float32 sums (oneDNN, %s)", gp_bf16_isa());
        else
            gp_warn("%s: [model] compute = bf16, but this CPU has no BF16 instructions as oneDNN runs it (%s): the "
                    "BF16 products are emulated in float32, correct and slower than compute = f32",
                    gp_job_origin(job, "model", "compute"), gp_bf16_isa());
    }
    if (job->model.max_length <= m->max_length) return;
    const char *origin = gp_job_origin(job, "model", "max_length");
    if (strcmp(origin, "default") == 0)
        gp_log0("[model] max_length: the default %d is more than the %d tokens %s takes; using max_length = %d",
                job->model.max_length, m->max_length, m->dir, m->max_length);
    else
        gp_warn("%s: [model] max_length = %d is more than the %d tokens %s takes; using max_length = %d", origin,
                job->model.max_length, m->max_length, m->dir, m->max_length);
    job->model.max_length = m->max_length;
}

gp_status gp_mask_retrain_open(gp_job *job, const char *mask_path, gp_mask_retrain *mr, gp_err *err) {
    memset(mr, 0, sizeof *mr);
    mr->mask_path = mask_path;
    gp_status rc = gp_model_load(job->model.path, &mr->model, err);
    if (!rc) gp_job_model_settings(job, mr->model);
    if (!rc && gp_rank() == 0) {
        rc = gp_mask_read(mask_path, mr->model, &mr->mask, err);
        hid_t f = rc ? -1 : gp_h5_open_quiet(mask_path);
        char *h = f >= 0 ? gp_h5_read_attr_str(f, GP_MASK_ATTR_SETTINGS_HASH) : NULL;
        if (h && *h) snprintf(mr->mask_hash, sizeof mr->mask_hash, "%s", h);
        else if (!rc) rc = gp_sha256_file(mask_path, mr->mask_hash, err);
        free(h);
        if (f >= 0) H5Fclose(f);
    }
    return gp_agree(rc, err);
}

gp_status gp_mask_retrain_run(gp_mask_retrain *mr, const gp_job *job, gp_retrained *out, gp_err *err) {
    gp_bcast_bytes(mr->mask_hash, sizeof mr->mask_hash, 0);
    gp_mask_bcast(&mr->mask, mr->model);
    gp_mask_apply(&mr->mask, mr->model);
    const char *path = mr->mask_path;
    const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const size_t pl = strlen(GP_MASK_FILE_PREFIX);
    snprintf(mr->tag, sizeof mr->tag, "%s", strncmp(b, GP_MASK_FILE_PREFIX, pl) ? b : b + pl);
    size_t l = strlen(mr->tag);
    if (l > 3 && !strcmp(mr->tag + l - 3, ".h5")) mr->tag[l - 3] = '\0';
    gp_train_opts o;
    gp_train_opts_retrain(job, &o);
    return gp_retrain_step(&o, mr->model, &mr->mask, mr->tag, path, mr->mask_hash, job->out_dir, out, err);
}

void gp_mask_retrain_free(gp_mask_retrain *mr) {
    gp_mask_free(&mr->mask);
    gp_model_free(mr->model);
    mr->model = NULL;
}

gp_status gp_eval_folder_open(gp_job *job, const char *dir, gp_eval_folder *ev, gp_err *err) {
    memset(ev, 0, sizeof *ev);
    ev->dir = dir ? dir : job->model.path;
    gp_status rc = gp_model_load(ev->dir, &ev->model, err);
    if (!rc) gp_job_model_settings(job, ev->model);
    return gp_agree(rc, err);
}

gp_status gp_eval_folder_run(gp_eval_folder *ev, const gp_job *job, gp_err *err) {
    char tag[256];
    snprintf(tag, sizeof tag, "%s", ev->dir);
    size_t l = strlen(tag);
    while (l > 1 && tag[l - 1] == '/') tag[--l] = '\0';
    snprintf(ev->base, sizeof ev->base, "%s", strrchr(tag, '/') ? strrchr(tag, '/') + 1 : tag);
    const char *base = ev->base;
    char name[300];
    snprintf(name, sizeof name, "eval-%s.json", base);
    char *out = gp_path_join(job->out_dir, name);
    /* two folders of the same name (a/model, b/model) would share eval-model.json: a file that
     * names another folder is kept, and this one's name gets a short hash of the path */
    int other = 0;
    if (gp_rank() == 0 && gp_file_exists(out)) {
        cJSON *prev = NULL;
        gp_err ignored = {0};
        if (!gp_json_load(out, &prev, &ignored)) {
            const cJSON *pm = cJSON_GetObjectItemCaseSensitive(prev, "model");
            other = cJSON_IsString(pm) && strcmp(pm->valuestring, ev->dir) != 0;
        }
        cJSON_Delete(prev);
    }
    if (gp_allreduce_max_int(other)) {
        char hex[65];
        gp_sha256 *h = gp_sha256_init();
        gp_sha256_update(h, ev->dir, strlen(ev->dir));
        gp_sha256_final(h, hex);
        snprintf(name, sizeof name, "eval-%s-%.8s.json", base, hex);
        char *unique = gp_path_join(job->out_dir, name);
        gp_warn("%s holds the evaluation of another folder called %s; writing %s instead", out, base, unique);
        free(out);
        out = unique;
    }
    cJSON *res = NULL;
    gp_eval_opts o;
    gp_eval_opts_from_job(&o, job);
    gp_status rc = gp_eval_model(&o, ev->model, base, NULL, NULL, out, NULL, &res, err);
    ev->out = out;
    if (!rc && res) {
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(res, "main_score_mean");
        snprintf(ev->score, sizeof ev->score, "null"); /* JSON has no NaN */
        if (cJSON_IsNumber(ms)) snprintf(ev->score, sizeof ev->score, "%.6f", ms->valuedouble);
        ev->scored = true;
    }
    cJSON_Delete(res);
    return rc;
}

void gp_eval_folder_free(gp_eval_folder *ev) {
    gp_model_free(ev->model);
    free(ev->out);
    ev->model = NULL, ev->out = NULL;
}

gp_status gp_stats_job_open(gp_job *job, const char *cmd, gp_stats_job *sj, gp_err *err) {
    memset(sj, 0, sizeof *sj);
    /* a stage that will not fit the memory per rank stops now, not hours in */
    const unsigned stages = GP_PLAN_BIT(GP_PLAN_STATS) | (job->sample.method != GP_SAMPLE_NONE ? GP_PLAN_BIT(GP_PLAN_SAMPLE) : 0);
    gp_status rc = gp_plan_guard(job, cmd, stages, err);
    if (!rc) rc = gp_model_load(job->model.path, &sj->model, err);
    if (!rc) gp_job_model_settings(job, sj->model);
    if (!rc) { /* a scope or layers the model cannot take fail now, not after the statistics */
        gp_prune_opts po;
        gp_prune_opts_from_job(&po, job);
        rc = gp_prune_check(&po, sj->model, err);
        gp_stats_opts so;
        gp_stats_opts_from_job(&so, job);
        if (!rc) rc = gp_stats_check(&so, sj->model, err); /* before the sample too */
    }
    return gp_agree(rc, err);
}

gp_status gp_stats_job_run(gp_stats_job *sj, const gp_job *job, gp_err *err) {
    gp_status rc = GP_OK;
    const bool sampled = job->sample.method != GP_SAMPLE_NONE;
    if (sampled) {
        gp_sample_opts so;
        gp_sample_opts_from_job(&so, job);
        rc = gp_sample_run(&so, sj->model, &sj->samples, err);
    }
    if (!rc) {
        gp_stats_opts o;
        gp_stats_opts_from_job(&o, job);
        rc = gp_stats_run(&o, sj->model, sampled ? &sj->samples : NULL, &sj->report, err);
    }
    return rc;
}

void gp_stats_job_free(gp_stats_job *sj) {
    gp_sample_report_free(&sj->samples);
    gp_model_free(sj->model);
    sj->model = NULL;
}

void gp_registries_print(FILE *f) {
    fprintf(f, "\ncriteria:     ");
    for (const gp_criterion *const *c = gp_criteria(); *c; c++) fprintf(f, "%s%s", c == gp_criteria() ? "" : ", ", (*c)->name);
    fprintf(f, "\narchitectures:");
    for (const gp_arch_info *const *a = gp_architectures(); *a; a++) fprintf(f, " %s%s", (*a)->name, a[1] ? "," : "");
}
