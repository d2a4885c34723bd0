/*
 * fs.h — small file-system helpers with input-error reporting.
 *
 * Files we write follow one rule: write `<path>.tmp`, then rename over `<path>`, so a killed
 * job never leaves a half-written file under the final name (gp_tmp_path + gp_commit_tmp).
 *
 * Usage:
 *     char *buf; size_t n; gp_err err = {0};
 *     if (gp_read_file("config.json", &buf, &n, &err)) ...; free(buf);
 *     char *p = gp_path_join(dir, "vocab.txt"); ... free(p);
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

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
/* mkdir -p */
gp_status gp_mkdir_p(const char *path, gp_err *err);
/* Byte-for-byte copy through dst.tmp + rename. */
gp_status gp_copy_file(const char *src, const char *dst, gp_err *err);
/* rm -rf: removes path and, for a directory, everything under it (symbolic links themselves,
 * never what they point to). True when nothing is left at path (also when nothing was there). */
bool gp_rmtree(const char *path);
