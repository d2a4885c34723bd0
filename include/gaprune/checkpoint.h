/*
 * checkpoint.h — the one way the long stages (stats, retrain) keep checkpoints, so a killed or
 * stopped run resumes where it was and ends bit for bit where an uninterrupted one would.
 *
 *   - A checkpoint is an HDF5 file written as <path>.tmp (gp_h5_create_tmp) and renamed over
 *     <path> only once complete; a kill leaves the old one whole.
 *   - With `prev`, the file being replaced is kept as prev first: while several ranks rotate
 *     their files, a step's checkpoint is complete on every rank under one name or the other.
 *   - With several ranks, rank 0 names the step all ranks have in a small text file
 *     <dir>/latest ("step N\nsettings HASH\nranks P\n"), written after every rank's rename.
 *   - Resuming reads <path>, falling back to prev; the stage checks what it reads (settings
 *     hash, step) in its own load function.
 *
 * Usage (stats: one file per rank, every rank collective):
 *     hid_t f = gp_h5_create_tmp(path); ...write...
 *     rc = gp_checkpoint_commit(f, path, prev, err);               // close, rotate, agree
 *     if (!rc) rc = gp_checkpoint_mark_latest(dir, step, hash, P, err);
 *     int64_t step = gp_checkpoint_latest(dir, hash, P);           // on a rerun: 0 = none
 *     rc = gp_checkpoint_load(path, prev, load_fn, ctx);
 *     gp_checkpoint_remove(dir, path, prev);                       // once the output is written
 * Usage (retrain: one file, every rank its slice with h5par.h, then rank 0 alone finishes it;
 *        f < 0 on the other ranks):
 *     rc = gp_checkpoint_commit(rank == 0 ? f : -1, log_path, NULL, err);
 */
#pragma once

#include <stdint.h>

#include "gaprune/check.h"
#include "gaprune/h5.h"

/* Collective. Every rank with a file (f >= 0, made by gp_h5_create_tmp(path)) closes it; once
 * all have, each moves path to prev (when prev is not NULL and path exists) and <path>.tmp to
 * path. Returns the status agreed by every rank (gp_agree). */
gp_status gp_checkpoint_commit(hid_t f, const char *path, const char *prev, gp_err *err);

/* Collective: rank 0 writes <dir>/latest (through latest.tmp) naming the step, the settings
 * hash and the rank count. Returns the status agreed by every rank. */
gp_status gp_checkpoint_mark_latest(const char *dir, int64_t step, const char *settings, int nranks, gp_err *err);

/* Collective: the step <dir>/latest names when it was written with these settings and this rank
 * count, else 0 (a warning says which differs; no file or an unreadable one: 0, silently). Read
 * on rank 0, the same on every rank. */
int64_t gp_checkpoint_latest(const char *dir, const char *settings, int nranks);

/* Reads one checkpoint file into the stage (ctx); GP_OK when it is the one wanted and loaded. */
typedef gp_status (*gp_checkpoint_load_fn)(hid_t f, void *ctx);

/* This rank: opens path and hands it to load; when path is missing, cannot be opened or load
 * fails, the same with fallback (when not NULL). GP_OK when one loaded, else GP_EINPUT. */
gp_status gp_checkpoint_load(const char *path, const char *fallback, gp_checkpoint_load_fn load, void *ctx);

/* Collective: every rank removes path, prev (when not NULL) and <path>.tmp; then rank 0 removes
 * <dir>/latest and dir itself when that leaves it empty. */
void gp_checkpoint_remove(const char *dir, const char *path, const char *prev);
