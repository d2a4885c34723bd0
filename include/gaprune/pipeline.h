/*
 * pipeline.h — the stages that `gaprune score`, `retrain`, `eval` and `run` share, each of
 * which skips its work when its output is complete and was made from the same inputs and
 * settings (a settings hash stored in the output).
 *
 * Usage (collective):
 *     gp_prune_opts o; gp_prune_opts_from_job(&o, &job);
 *     gp_prune_inputs in; gp_prune_inputs_init(&o, m, &in, &err);   // model and stats hashes
 *     gp_pruned pr;
 *     gp_prune_step(&o, m, &in, gp_criterion_find("gaprune"), 0.5, &pr, &err);   // m->params now masked
 *     gp_retrained rt;
 *     gp_retrain_step(&train_opts, m, &pr.mask, pr.tag, pr.mask_path, pr.hash, job.out_dir, &rt, &err);
 *     ... evaluate ...
 *     gp_retrained_free(&rt), gp_pruned_free(&pr);
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "gaprune/check.h"
#include "gaprune/job.h"
#include "gaprune/model.h"
#include "gaprune/sample.h"
#include "gaprune/stats.h"
#include "gaprune/reconstruct.h"
#include "gaprune/retrain.h"
#include "gaprune/score.h"

/* Collective: the job's input files read and checked whole before any stage (`gaprune run`):
 * the triplet corpora [data] domain and general by the corpus indexer (triplets.h) and every
 * evaluation set by gp_eval_check, with the messages their stages would give (file:line). The
 * model folder's headers and tokenizer are checked by gp_model_load. Cost: one streaming pass
 * over each file on rank 0 (DESIGN.md, "Inputs checked up front"). */
gp_status gp_inputs_check(const gp_job *job, gp_err *err);

typedef struct {
    char model_sha[65];  /* the dense model's files */
    char stats_hash[80]; /* settings_hash of OUT/stats.h5, or "none" */
    char *stats_path;    /* OUT/stats.h5 when it exists, else NULL */
    gp_recon_opts recon; /* the reconstruction's calibration and settings (gp_recon_opts_from_job) */
} gp_prune_inputs;

/* Collective: hashes the model, checks that OUT/stats.h5 (when there) was made from it. */
gp_status gp_prune_inputs_init(const gp_prune_opts *cfg, const gp_model *m, gp_prune_inputs *in, gp_err *err);
void gp_prune_inputs_free(gp_prune_inputs *in);
/* The reconstruction's settings of the job (samples: the calibration samples of the run, or NULL). */
void gp_prune_inputs_recon(gp_prune_inputs *in, const gp_job *job, const gp_sample_report *samples);

/* One way a job prunes with a criterion: the job's alpha, one (beta, gamma) of its lists and one
 * of prune.reconstruct's values. The label names it in files and tables: the criterion's name, or
 * "<name>-b<beta>-g<gamma>" for a weighted criterion (the DAI family) when the lists make more
 * than one, then "+obs" when the kept weights are reconstructed. */
typedef struct {
    const gp_criterion *crit;
    double beta, gamma;
    gp_recon_kind recon;
    char label[96];
} gp_prune_variant;

/* The variants of crit in the job, in (beta, gamma, reconstruct) list order, into *out (malloc'd);
 * returns their count (one for an unweighted criterion or single values: the job's first beta and
 * gamma, without reconstruction unless the list says obs). */
int gp_prune_variants(const gp_job *job, const gp_criterion *crit, gp_prune_variant **out);

typedef struct {
    char tag[128];       /* "<variant label>-<sparsity>" */
    char *mask_path;     /* OUT/mask-<tag>.h5 */
    char *pruned_dir;    /* OUT/pruned-<tag> */
    char hash[65];       /* settings hash of the mask and the pruned folder */
    gp_mask mask;        /* on every rank */
    bool reused;         /* both outputs were current */
    double sparsity, zero_fraction, fisher_ratio; /* achieved; whole model; mean DAI term ratio */
    double fisher_negative; /* DAI family: share of the selected weights with F_dom − βF_gen < 0, else NaN */
    int64_t params;      /* parameters of the pruned folder (fewer only when whole neurons go) */
    int64_t disk_bytes;  /* bytes of its safetensors files (rank 0; 0 elsewhere) */
    /* reconstruction (or sparsegpt's mask): the mean over the mask's tensors of the relative output
     * error on the calibration inputs, of the mask alone and of the written weights; NaN without */
    double recon_err_before, recon_err_after;
    double recon_seconds; /* this run's; 0 when read back */
} gp_pruned;

/* Collective: builds (or reads back, when current) the mask of the variant at sparsity p (cfg
 * with the variant's beta and gamma), writes the mask file and the pruned folder, and leaves
 * m->params masked. */
gp_status gp_prune_step(const gp_prune_opts *cfg, gp_model *m, const gp_prune_inputs *in, const gp_prune_variant *variant,
                        double p, gp_pruned *out, gp_err *err);
void gp_pruned_free(gp_pruned *p);
/* Bytes of the *.safetensors files of a model folder (0 when it cannot be listed). */
int64_t gp_weights_bytes(const char *dir);

/* True when the safetensors of the folder carry gaprune.settings_hash = hash (rank-local). */
bool gp_folder_current(const char *dir, const char *hash);

typedef struct {
    char *log_path;   /* OUT/retrain-<tag>.h5 */
    char *model_dir;  /* OUT/retrained-<tag> */
    char hash[65];    /* settings hash of the log and the folder (every rank) */
    gp_retrain_report report;
} gp_retrained;

/* Collective: masked retraining of m (gp_retrain; resumed or skipped when its log says so),
 * then the retrained folder, unless it is current. mask_path and mask_hash name the mask it
 * came from. mask NULL: nothing masked (a smaller model of whole neurons or heads, or the dense
 * model itself, whose mask_path is NULL — the folder says "none" — and mask_hash its SHA-256). */
gp_status gp_retrain_step(const gp_train_opts *o, gp_model *m, const gp_mask *mask, const char *tag, const char *mask_path,
                          const char *mask_hash, const char *out_dir, gp_retrained *out, gp_err *err);
void gp_retrained_free(gp_retrained *r);

/* `gaprune retrain --mask FILE`: retraining the job's model with a mask file made by score, in two
 * collective steps so that the front end takes the output folder's lock between them (a bad
 * model or mask file is refused before the lock is asked for):
 *     gp_mask_retrain mr;
 *     rc = gp_mask_retrain_open(&job, mask_path, &mr, &err);   // model, settings, mask and its hash
 *     if (!rc) rc = gp_lock_take(job.out_dir, NULL, &err);
 *     gp_retrained rt = {0};
 *     if (!rc) rc = gp_mask_retrain_run(&mr, &job, &rt, &err);  // -> OUT/retrained-<mr.tag>/
 *     gp_retrained_free(&rt), gp_mask_retrain_free(&mr);
 * The tag is FILE's name without the mask- prefix and the .h5 suffix. */
typedef struct {
    gp_model *model;
    gp_mask mask;         /* read on rank 0 by open; on every rank after run */
    char mask_hash[80];   /* the file's settings hash, else the SHA-256 of its bytes */
    char tag[256];
    const char *mask_path; /* the caller's */
} gp_mask_retrain;

/* Collective: loads the model, applies the job's [model] settings (gp_job_model_settings, hence
 * the job is not const), reads the mask and its hash on rank 0. Returns the same status on every
 * rank; *mr is to be freed with gp_mask_retrain_free in every case. */
gp_status gp_mask_retrain_open(gp_job *job, const char *mask_path, gp_mask_retrain *mr, gp_err *err);
/* Collective: sends the mask to every rank, applies it and retrains (gp_retrain_step). */
gp_status gp_mask_retrain_run(gp_mask_retrain *mr, const gp_job *job, gp_retrained *out, gp_err *err);
void gp_mask_retrain_free(gp_mask_retrain *mr);

/* After the model is loaded, the job's [model] settings that need it (every stage that loads a
 * model applies them, whichever front end calls it): model.recompute is set on the model,
 * model.compute on the process (bf16: said once, with whether this CPU runs it natively); a
 * model.max_length beyond the model's positions becomes the model's, said on stderr with the
 * key's origin when the job set it (the configuration printed at start-up shows the value asked
 * for), on stdout when it was the default. */
void gp_job_model_settings(gp_job *job, gp_model *m);

/* `gaprune eval JOB.ini --model DIR`: the [eval] sets for one model folder, in two collective
 * steps with the front end's lock between them (a folder that does not load is refused first):
 *     gp_eval_folder ev;
 *     rc = gp_eval_folder_open(&job, dir_or_NULL, &ev, &err);   // NULL: model.path
 *     if (!rc) rc = gp_lock_take(job.out_dir, NULL, &err);
 *     if (!rc) rc = gp_eval_folder_run(&ev, &job, &err);        // -> ev.out, ev.score
 *     gp_eval_folder_free(&ev);
 * The results go to OUT/eval-<folder's name>.json, or eval-<name>-<8 hex of the path>.json when
 * that file holds another folder's evaluation (said on stderr). */
typedef struct {
    gp_model *model;
    const char *dir;  /* the folder evaluated (the caller's, or the job's model.path) */
    char base[256];   /* its last path component: the tag in tables and the file name */
    char *out;        /* the JSON written (malloc'd, set by run) */
    bool scored;      /* run wrote results: score holds main_score_mean */
    char score[32];   /* main_score_mean as JSON text, "null" when not a number */
} gp_eval_folder;

/* Collective: loads the folder and applies the job's [model] settings (gp_job_model_settings).
 * Same status on every rank; free *ev in every case. */
gp_status gp_eval_folder_open(gp_job *job, const char *dir, gp_eval_folder *ev, gp_err *err);
/* Collective: evaluates the loaded model on the job's [eval] sets. */
gp_status gp_eval_folder_run(gp_eval_folder *ev, const gp_job *job, gp_err *err);
void gp_eval_folder_free(gp_eval_folder *ev);

/* `gaprune stats JOB.ini`: the statistics pass, with sample.method set the calibration sample
 * first, in two collective steps with the front end's lock between them. Open refuses, with
 * GP_EINPUT, what would fail later: a stage that will not fit the memory per rank
 * (gp_plan_guard, named as `cmd`), a model that does not load, a scope or layers it cannot take
 * (gp_prune_check, gp_stats_check); it applies the job's [model] settings.
 *     gp_stats_job sj;
 *     rc = gp_stats_job_open(&job, "stats", &sj, &err);
 *     if (!rc) rc = gp_lock_take(job.out_dir, NULL, &err);
 *     if (!rc) rc = gp_stats_job_run(&sj, &job, &err);   // sj.report
 *     gp_stats_job_free(&sj); */
typedef struct {
    gp_model *model;
    gp_sample_report samples; /* when sample.method is set */
    gp_stats_report report;   /* set by run */
} gp_stats_job;

gp_status gp_stats_job_open(gp_job *job, const char *cmd, gp_stats_job *sj, gp_err *err);
gp_status gp_stats_job_run(gp_stats_job *sj, const gp_job *job, gp_err *err);
void gp_stats_job_free(gp_stats_job *sj);

/* For a front end's usage text: "\ncriteria:     a, b, ...\narchitectures: x, y" (no final newline),
 * the registries a job may name (prune.h's criteria, model.h's architectures). */
void gp_registries_print(FILE *f);
