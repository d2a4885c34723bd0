/* pipeline.c — shared, skippable stages (see pipeline.h). */
#include "gaprune/pipeline.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gaprune/dist.h"
#include "gaprune/export.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/hash.h"
#include "gaprune/log.h"
#include "gaprune/mask_file.h"
#include "gaprune/retrain_file.h"
#include "gaprune/safetensors.h"
#include "gaprune/stats.h"
#include "gaprune/stats_file.h"

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
    gp_prune_variant *v = gp_calloc((size_t)(nb * ng), sizeof *v);
    for (int b = 0; b < nb; b++)
        for (int g = 0; g < ng; g++) {
            gp_prune_variant *x = &v[b * ng + g];
            x->crit = crit, x->beta = job->prune.beta[b], x->gamma = job->prune.gamma[g];
            if (nb * ng > 1) snprintf(x->label, sizeof x->label, "%s-b%g-g%g", crit->name, x->beta, x->gamma);
            else snprintf(x->label, sizeof x->label, "%s", crit->name);
        }
    *out = v;
    return nb * ng;
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
    gp_sha256 *h = gp_sha256_init();
    gp_sha256_update(h, settings, strlen(settings));
    gp_sha256_final(h, out->hash);
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
                gp_h5_read_attr_double(f, crit->needs & GP_NEED_NEURONS ? GP_MASK_ATTR_NEURON_FISHER_VS_MAGNITUDE
                                                                        : GP_MASK_ATTR_FISHER_VS_MAGNITUDE_MEAN,
                                       &reused_ratio);
                H5Fclose(f);
            }
        }
        if ((rc = gp_agree(rc, err))) return rc;
        gp_mask_bcast(&out->mask, m);
    } else { /* every rank scores its slice and ends with the whole mask */
        gp_mask_request req = {crit, p, in->stats_path, out->mask_path, out->hash};
        if ((rc = gp_mask_build(cfg, m, &req, &out->mask, err))) return rc;
    }
    gp_mask_apply(&out->mask, m);
    out->reused = current;
    out->sparsity = (double)out->mask.pruned / (double)out->mask.total;
    out->zero_fraction = out->mask.model_zero_fraction;
    out->fisher_ratio = term_ratio(crit, &out->mask, current, reused_ratio);
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
    if ((rc = gp_agree(rc, err))) return rc;
    char ratio[64] = "";
    if (!isnan(out->fisher_ratio)) snprintf(ratio, sizeof ratio, "; mean fisher/magnitude term ratio %.3g", out->fisher_ratio);
    gp_log0("score: %s at %g: pruned %lld of %lld %s weights (%.2f%%), %.2f%% of all parameters are now zero; threshold "
            "%.4g%s -> %s, %s",
            method, p, (long long)out->mask.pruned, (long long)out->mask.total, layers, 100.0 * out->sparsity,
            100.0 * out->zero_fraction, out->mask.threshold, ratio, out->mask_path, out->pruned_dir);
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
            const char *meta[] = {"gaprune.retrained_from_mask", mask_path, "gaprune.retrain_steps", steps,
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
