/*
 * fs.h — small file-system helpers with input-error reporting.
 *
 * Files we write follow one rule: write `<path>.tmp`, then rename over `<path>`, so a killed
 * job never leaves a half-written file under the final name (gp_tmp_path + gp_commit_tmp). A
 * write the system refuses (a full disk, an I/O error) is input-class, not a bug: the .tmp is
 * removed and the caller gets GP_EINPUT with gp_write_error's message, which names the file and
 * says that a rerun continues (every file under its final name is complete).
 *
 * Usage:
 *     char *buf; size_t n; gp_err err = {0};
 *     if (gp_read_file("config.json", &buf, &n, &err)) ...; free(buf);
 *     char *p = gp_path_join(dir, "vocab.txt"); ... free(p);
 *     FILE *f = gp_file_create(p, &err);             // p.tmp
 *     if (f) { fprintf(f, ...); rc = gp_file_commit(f, p, &err); }   // checked, renamed
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gaprune/check.h"

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
gp_status gp_read_file(const char *path, char **out, size_t *len, gp_err *err);
bool gp_file_exists(const char *path);
bool gp_dir_exists(const char *path);
/* Returns a malloc'd "a/b" (no doubled slash). */
char *gp_path_join(const char *a, const char *b);
/* Returns a malloc'd "<path>.tmp". */
char *gp_tmp_path(const char *path);
/* rename(tmp, path), reporting failure as an input error naming both. */
gp_status gp_commit_tmp(const char *tmp, const char *path, gp_err *err);
/* TEST ONLY: the error (an errno: ENOSPC, as a full disk, or the hook's fail_write_errno) with
 * which the test hook fail_write (testhook.h) refuses the file at path, or 0. Asked once per file
 * by the commits of the writers (gp_file_commit, gp_h5_close_commit, gp_checkpoint_commit), so
 * that the refusal takes a real one's path. */
int gp_write_refused(const char *path);
/* The message of a write the system refused: "PATH: cannot write (REASON); ..." and what to do.
 * Returns GP_EINPUT. */
gp_status gp_write_error(gp_err *err, const char *path, const char *reason);
/* Whether a file of bytes can be written at path (through <path>.tmp, about to be created): they
 * are allocated for real in <path>.tmp (fallocate: quotas count too) and released at once; where the file system
 * cannot allocate ahead, its free space (statvfs) is compared. GP_EINPUT (gp_write_error) when
 * they do not fit. For writers that cannot survive a failed write midway (h5par.h). */
gp_status gp_check_room(const char *path, uint64_t bytes, gp_err *err);
/* Opens <path>.tmp to write with stdio; NULL and err (gp_write_error) when it cannot. */
FILE *gp_file_create(const char *path, gp_err *err);
/* Closes f (from gp_file_create) and renames <path>.tmp to path; when any write to f failed
 * (stdio buffers, so a full disk often shows only at the close), removes <path>.tmp instead and
 * returns gp_write_error's GP_EINPUT. */
gp_status gp_file_commit(FILE *f, const char *path, gp_err *err);
/* mkdir -p */
gp_status gp_mkdir_p(const char *path, gp_err *err);
/* Byte-for-byte copy through dst.tmp + rename. */
gp_status gp_copy_file(const char *src, const char *dst, gp_err *err);
/* rm -rf: removes path and, for a directory, everything under it (symbolic links themselves,
 * never what they point to). True when nothing is left at path (also when nothing was there). */
bool gp_rmtree(const char *path);
