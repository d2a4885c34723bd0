/*
 * hash.h — SHA-256 (OpenSSL's libcrypto) for provenance: model and corpus hashes, and the
 * settings hash that tells whether an output was made from the same inputs.
 *
 * Usage:
 *     char hex[65]; gp_sha256_file("model.safetensors", hex, &err);
 *     gp_sha256 *h = gp_sha256_init(); gp_sha256_update(h, buf, n); gp_sha256_final(h, hex);
 */
#pragma once

#include <stddef.h>

#include "gaprune/check.h"

typedef struct gp_sha256 gp_sha256;

gp_sha256 *gp_sha256_init(void);
void gp_sha256_update(gp_sha256 *h, const void *data, size_t n);
/* Writes 64 hex digits and a NUL, and frees h. */
void gp_sha256_final(gp_sha256 *h, char hex[65]);
gp_status gp_sha256_file(const char *path, char hex[65], gp_err *err);
/* Adds a whole file's bytes to h. */
gp_status gp_sha256_update_file(gp_sha256 *h, const char *path, gp_err *err);
