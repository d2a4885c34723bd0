/*
 * run.h — `gaprune run`: every stage of the job in order, resumable, and the report (run.c draws
 * the order). Each stage whose output is complete and made from the same inputs and settings is
 * skipped, so rerunning a killed job continues where it stopped.
 *
 * Usage (collective, after the job is loaded):
 *     gp_err err = {0};
 *     gp_status rc = gp_run(&job, NULL, false, gp_now(), &err);   // OUT/report.md, report.json
 */
#pragma once

#include <stdbool.h>

#include "gaprune/check.h"
#include "gaprune/job.h"

/* only: "METHOD:SPARSITY", just that mask with its retraining and evaluations (no dense
 * evaluation, no report; job arrays), or NULL. list: rank 0 prints the run's masks, one
 * METHOD:SPARSITY a line, and nothing else is done. t0: the start of the command, for the
 * report's and the summary's times. The stage checks the plan, the inputs and the model first,
 * then takes the output folder's lock itself (with only, the lock of that mask's pair of files,
 * which the plan names); the job's [model] settings are applied (hence not const). Prints the
 * summary line on rank 0. Returns the same status on every rank. */
gp_status gp_run(gp_job *job, const char *only, bool list, double t0, gp_err *err);
