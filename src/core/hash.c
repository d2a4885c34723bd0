/* hash.c — SHA-256 through OpenSSL's EVP interface (see hash.h). */
#include "gaprune/hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gp_sha256 {
    EVP_MD_CTX *ctx;
};

gp_sha256 *gp_sha256_init(void) {
    gp_sha256 *h = gp_malloc(sizeof *h);
    h->ctx = EVP_MD_CTX_new();
    GP_CHECK(h->ctx && EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1, "OpenSSL SHA-256 init failed");
    return h;
}

void gp_sha256_update(gp_sha256 *h, const void *data, size_t n) {
    GP_CHECK(EVP_DigestUpdate(h->ctx, data, n) == 1, "OpenSSL SHA-256 update failed");
}

void gp_sha256_final(gp_sha256 *h, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    GP_CHECK(EVP_DigestFinal_ex(h->ctx, md, &n) == 1 && n == 32, "OpenSSL SHA-256 final failed");
    for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

gp_status gp_sha256_update_file(gp_sha256 *h, const char *path, gp_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return gp_errf(err, GP_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    enum { BUF = 1 << 20 };
    char *buf = gp_malloc(BUF);
    size_t n;
    while ((n = fread(buf, 1, BUF, f)) > 0) gp_sha256_update(h, buf, n);
    int bad = ferror(f);
    fclose(f);
    free(buf);
    return bad ? gp_errf(err, GP_EINPUT, "%s: read error", path) : GP_OK;
}

gp_status gp_sha256_file(const char *path, char hex[65], gp_err *err) {
    gp_sha256 *h = gp_sha256_init();
    gp_status rc = gp_sha256_update_file(h, path, err);
    gp_sha256_final(h, hex);
    return rc;
}
