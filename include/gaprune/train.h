/*
 * train.h — the training stage of `gaprune train`: contrastive training of an embedding model
 * from [train] init (a model folder, or a config.json from which OUT/model-init/ is made) on
 * [train] corpus, to OUT/model/ with the per-step log OUT/train.h5 (train.c says how the
 * initial model is made). A front end parses its arguments, takes the output folder's lock
 * (lock.h) and calls these; it prints what it wants of the report.
 *
 * Usage (collective):
 *     gp_err err = {0};
 *     gp_status rc = gp_agree(gp_train_check(&job, &err), &err);
 *     if (!rc) rc = gp_lock_take(job.out_dir, NULL, &err);
 *     gp_train_report rep;
 *     if (!rc) rc = gp_train_run(&job, &rep, &err);   // rep.train: steps, losses, seconds
 *     gp_train_report_free(&rep);
 */
#pragma once

#include "gaprune/check.h"
#include "gaprune/job.h"
#include "gaprune/retrain.h"

typedef struct {
    gp_retrain_report train; /* the training loop's numbers */
    char *output;            /* OUT/model (malloc'd; NULL after an error) */
} gp_train_report;

/* The job names what training needs ([train] init and corpus); GP_EINPUT naming the job file
 * otherwise. Local: agree on it (gp_agree). */
gp_status gp_train_check(const gp_job *job, gp_err *err);

/* Collective, after gp_train_check: makes OUT/model-init/ when [train] init is a config.json
 * (kept when made from the same config, corpora, seed and max_length), loads the model, applies
 * the job's [model] settings (gp_job_model_settings: job's model.max_length may be lowered to the
 * model's, hence the job is not const), trains and writes OUT/model/ unless it is current. Returns
 * the same status on every rank; *res is zeroed first and owns output afterwards. */
gp_status gp_train_run(gp_job *job, gp_train_report *res, gp_err *err);
void gp_train_report_free(gp_train_report *res);
