/* fuzz_safetensors.c — safetensors files (safetensors.h): every byte of a file, or the JSON
 * header alone in front of a data buffer of a chosen size.
 *
 * Input: byte 0 picks the form; then
 *   0  the whole file;
 *   1  two bytes of data size (little-endian, at most 64 KiB), then the header's JSON;
 *   2  the whole file, and a file gp_st_open accepts is written back by gp_st_writer (every
 *      tensor raw, every metadata key) and read again: the same tensors, bytes and metadata.
 * An accepted file is used as the loader uses it: each tensor found by name, float tensors
 * converted to float32, the metadata read.
 */
#include "fuzz_util.h"

#include "gaprune/safetensors.h"

static char g_file[PATH_MAX], g_copy[PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = fz_scratch("safetensors");
    fz_path(g_file, dir, "model.safetensors");
    fz_path(g_copy, dir, "copy.safetensors");
    return 0;
}

/* What the model loader does with an open file; a tensor it can convert must convert. */
static void use(const gp_st_file *f) {
    for (int i = 0; i < gp_st_count(f); i++) {
        const gp_st_tensor *t = gp_st_at(f, i);
        FZ_ASSERT(gp_st_find(f, t->name) == t);
        FZ_ASSERT(t->end - t->begin == (uint64_t)t->numel * gp_dtype_size(t->dtype));
        if (t->numel > (1 << 16)) continue;
        float *dst = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        gp_err err = {0};
        gp_status rc = gp_st_tensor_to_f32(t, dst, &err);
        FZ_ASSERT((rc == GP_OK) == (t->dtype == GP_DT_F32 || t->dtype == GP_DT_F16 || t->dtype == GP_DT_BF16));
        free(dst);
    }
    for (int i = 0; i < gp_st_meta_count(f); i++) {
        const char *k, *v;
        gp_st_meta_at(f, i, &k, &v);
        FZ_ASSERT(gp_st_meta(f, k) != NULL);
    }
}

/* The file written back from f holds what f holds. */
static void round_trip(const gp_st_file *f) {
    gp_st_writer *w = gp_st_writer_init();
    for (int i = 0; i < gp_st_meta_count(f); i++) {
        const char *k, *v;
        gp_st_meta_at(f, i, &k, &v);
        gp_st_writer_meta(w, k, v);
    }
    for (int i = 0; i < gp_st_count(f); i++) {
        const gp_st_tensor *t = gp_st_at(f, i);
        gp_st_writer_add_raw(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    gp_err err = {0};
    FZ_ASSERT(gp_st_writer_write(w, g_copy, &err) == GP_OK);
    gp_st_writer_free(w);
    gp_st_file *g;
    FZ_ASSERT(gp_st_open(g_copy, &g, &err) == GP_OK);
    FZ_ASSERT(gp_st_count(g) == gp_st_count(f));
    for (int i = 0; i < gp_st_count(f); i++) {
        const gp_st_tensor *a = gp_st_at(f, i), *b = gp_st_find(g, a->name);
        FZ_ASSERT(b && b->dtype == a->dtype && b->ndim == a->ndim && b->numel == a->numel);
        FZ_ASSERT(memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0);
        FZ_ASSERT(memcmp(a->data, b->data, (size_t)(a->end - a->begin)) == 0);
    }
    for (int i = 0; i < gp_st_meta_count(f); i++) {
        const char *k, *v;
        gp_st_meta_at(f, i, &k, &v);
        FZ_ASSERT(gp_st_meta(g, k) && strcmp(gp_st_meta(g, k), gp_st_meta(f, k)) == 0);
    }
    gp_st_close(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int form = data[0] % 3;
    data++, size--;
    if (form == 1) {
        if (size < 2) return 0;
        const size_t nbuf = (size_t)(data[0] | data[1] << 8);
        const size_t nh = size - 2;
        uint8_t *file = calloc(8 + nh + nbuf + 1, 1);
        for (int i = 0; i < 8; i++) file[i] = (uint8_t)((uint64_t)nh >> (8 * i));
        memcpy(file + 8, data + 2, nh);
        for (size_t i = 0; i < nbuf; i++) file[8 + nh + i] = (uint8_t)(i * 37 + 11);
        fz_write(g_file, file, 8 + nh + nbuf);
        free(file);
    } else {
        fz_write(g_file, data, size);
    }
    gp_st_file *f = NULL;
    gp_err err = {0};
    if (gp_st_open(g_file, &f, &err) != GP_OK) {
        FZ_ASSERT(f == NULL && err.code == GP_EINPUT && strstr(err.msg, g_file));
        return 0;
    }
    use(f);
    if (form == 2) round_trip(f);
    gp_st_close(f);
    return 0;
}
