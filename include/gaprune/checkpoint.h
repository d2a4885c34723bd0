/*
 * checkpoint.h — the one way the long stages (stats, retrain) keep checkpoints, so a killed or
 * stopped run resumes where it was and ends bit for bit where an uninterrupted one would.
 *
 *   - A checkpoint is an HDF5 file written as <path>.tmp (gp_h5_create_tmp) and renamed over
 *     <path> only once complete; a kill leaves the old one whole. A refused write (a full disk)
 *     on any rank leaves every rank's files as they were (h5.h) and stops the run with exit 2.
 *   - With `prev` (gp_checkpoint_prev_path: <stem>.prev.h5), the file being replaced is kept as
 *     prev first: while several ranks rotate their files, a step's checkpoint is complete on
 *     every rank under one name or the other, and a damaged newest file leaves the one before.
 *   - With several ranks, rank 0 names the step all ranks have in a small text file
 *     <dir>/latest ("step N\nsettings HASH\nranks P\n"), written after every rank's rename.
 *   - Checksums: every dataset carries `crc32`, zlib's CRC-32 of its data as stored (the
 *     little-endian bytes, which are also the memory's on the hosts gaprune runs on); the root
 *     carries `checksum`, the CRC-32 of the settings hash, the step and every dataset's name and
 *     crc32 (gp_checkpoint_seal, after everything else). Loading reads every byte back and
 *     compares: a file that differs anywhere (a bit flipped on disk, a truncated copy, a file
 *     without checksums) is refused with a warning and the one before it is used.
 *   - Resuming (gp_checkpoint_resume for a file per rank, gp_checkpoint_load_shared for one file
 *     every rank reads) checks the settings hash and the step, then hands the file to the stage's
 *     load function, which checks and reads the rest.
 *
 * Usage (stats: one file per rank, every rank collective):
 *     hid_t f = gp_h5_create_tmp(path);
 *     gp_h5_attr_str(f, GP_CHECKPOINT_ATTR_SETTINGS, hash); gp_h5_attr_int(f, GP_CHECKPOINT_ATTR_STEP, step);
 *     gp_checkpoint_write(f, "sums", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, sums, n, "what", "units");
 *     gp_checkpoint_seal(f);
 *     rc = gp_checkpoint_commit(f, path, prev, err);               // close, rotate, agree
 *     if (!rc) rc = gp_checkpoint_mark_latest(dir, step, hash, P, err);
 *     int64_t step = gp_checkpoint_resume(dir, path, prev, hash, P, load_fn, ctx);   // on a rerun: 0 = none
 *     gp_checkpoint_remove(dir, path, prev);                       // once the output is written
 * Usage (retrain: one file, every rank its slice with h5par.h, then rank 0 alone finishes it;
 *        f < 0 on the other ranks):
 *     uint32_t crc = gp_checkpoint_crc_ranks(my_slice, bytes);    // every rank, in rank order
 *     if (rank == 0) { g = gp_h5_open_tmp(path); gp_checkpoint_set_crc(g, "params", crc); ...; gp_checkpoint_seal(g); }
 *     rc = gp_checkpoint_commit(rank == 0 ? g : -1, log_path, prev, err);
 *     rc = gp_checkpoint_load_shared(log_path, prev, load_fn, ctx);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gaprune/check.h"
#include "gaprune/h5.h"

/* Root attributes of every checkpoint (the stages' file layouts use these names too). */
#define GP_CHECKPOINT_ATTR_SETTINGS "settings_hash" /* string: what the state depends on */
#define GP_CHECKPOINT_ATTR_STEP "step"              /* integer: steps done */
#define GP_CHECKPOINT_ATTR_CHECKSUM "checksum"      /* integer: CRC-32 of the header (see above) */
/* Attribute of every dataset of a checkpoint: the CRC-32 of its data. */
#define GP_CHECKPOINT_ATTR_CRC "crc32"

/* <stem>.prev.h5 for <stem>.h5 (malloc'd): the file a checkpoint replaces is kept under it. */
char *gp_checkpoint_prev_path(const char *path);

/* A flat dataset of n elements (mem_type in memory, stored as file_type) with its crc32. */
void gp_checkpoint_write(hid_t f, const char *name, hid_t file_type, hid_t mem_type, const void *data, size_t n,
                         const char *description, const char *units);
/* Collective: the CRC-32 of every rank's bytes one after the other in rank order (a dataset each
 * rank wrote a slice of), on every rank. */
uint32_t gp_checkpoint_crc_ranks(const void *mine, size_t bytes);
/* Sets the crc32 of dataset name of f (written in parallel, gp_checkpoint_crc_ranks). */
void gp_checkpoint_set_crc(hid_t f, const char *name, uint32_t crc);
/* Writes the root checksum of f: its settings hash and step attributes and every dataset's crc32
 * must be there. The last thing written but `complete`. */
void gp_checkpoint_seal(hid_t f);

/* A checkpoint whose values were changed on purpose made to pass its checksums again: every root
 * dataset's crc32 from the values it now holds, then the root checksum. False (nothing sealed)
 * when it lacks what the root checksum covers (settings hash, step). A dataset of more than 2^26
 * values keeps its old checksum (bounded time). For the tests and the fuzzer, so that they reach
 * the stages' own checks of the values behind the checksums. */
bool gp_checkpoint_reseal(hid_t f);

/* Collective. Every rank with a file (f >= 0, made by gp_h5_create_tmp(path)) closes it; when
 * every rank wrote its file, each moves path to prev (when prev is not NULL and path exists) and
 * <path>.tmp to path; when a write failed anywhere, every <path>.tmp is removed instead. Returns
 * the status agreed by every rank (gp_agree). */
gp_status gp_checkpoint_commit(hid_t f, const char *path, const char *prev, gp_err *err);

/* Collective: rank 0 writes <dir>/latest (through latest.tmp) naming the step, the settings
 * hash and the rank count. Returns the status agreed by every rank. */
gp_status gp_checkpoint_mark_latest(const char *dir, int64_t step, const char *settings, int nranks, gp_err *err);

/* Collective: the step <dir>/latest names when it was written with these settings and this rank
 * count, else 0 (a warning says which differs; no file or an unreadable one: 0, silently). Read
 * on rank 0, the same on every rank. */
int64_t gp_checkpoint_latest(const char *dir, const char *settings, int nranks);

/* Reads one checkpoint file, checksums, settings and step already checked, into the stage
 * (ctx); GP_OK when it is one the stage can continue from and it loaded. */
typedef gp_status (*gp_checkpoint_load_fn)(hid_t f, void *ctx);

/* Collective, a checkpoint file per rank (path and prev are this rank's): the newest step, no
 * later than <dir>/latest's (gp_checkpoint_latest), of which every rank has a file that is
 * undamaged and made with these settings, as path or prev; every rank loads its file of that
 * step (when both files are of it, path, then prev should path's load fail). Returns the step, or
 * 0 when there is none or a load failed (a warning says so; the stage starts over). */
int64_t gp_checkpoint_resume(const char *dir, const char *path, const char *prev, const char *settings, int nranks,
                             gp_checkpoint_load_fn load, void *ctx);

/* Collective, one checkpoint file that every rank loads: path, or prev (when not NULL) when path
 * is missing, damaged (a warning), of other settings or fails to load on any rank. The checksums
 * are checked by all ranks together, each reading 1/P of the data. GP_OK when every rank loaded
 * the same file, else GP_EINPUT. */
gp_status gp_checkpoint_load_shared(const char *path, const char *prev, const char *settings, gp_checkpoint_load_fn load,
                                    void *ctx);

/* Collective: every rank removes path, prev (when not NULL) and <path>.tmp; then rank 0 removes
 * <dir>/latest and dir itself when that leaves it empty. */
void gp_checkpoint_remove(const char *dir, const char *path, const char *prev);
