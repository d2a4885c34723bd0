/* test_safetensors.c — dtype conversions, the writer round trip, and every way a file can be
 * broken: each is GP_EINPUT with a message naming the file and the tensor. */
#include "test_util.h"

#include <time.h>

#include "gaprune/bf16.h"
#include "gaprune/safetensors.h"

/* ---- conversions ---------------------------------------------------------------------------- */

static void test_f16(void **state) {
    (void)state;
    assert_int_equal(gp_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(gp_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(gp_f32_to_f16(65504.0f), 0x7bff);      /* largest half */
    assert_int_equal(gp_f32_to_f16(65519.0f), 0x7bff);      /* rounds down */
    assert_int_equal(gp_f32_to_f16(65520.0f), 0x7c00);      /* rounds to inf */
    assert_int_equal(gp_f32_to_f16(ldexpf(1, -24)), 0x0001); /* smallest subnormal */
    assert_int_equal(gp_f32_to_f16(ldexpf(1, -25)), 0x0000); /* tie to even: 0 */
    assert_int_equal(gp_f32_to_f16(ldexpf(3, -26)), 0x0001); /* above the tie */
    assert_int_equal(gp_f32_to_f16(ldexpf(3, -25)), 0x0002); /* 1.5 ulp: tie to even 2 */
    assert_int_equal(gp_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00); /* tie to even */
    assert_int_equal(gp_f32_to_f16(1.0f + ldexpf(3, -11)), 0x3c02);
    assert_true(isnan(gp_f16_to_f32(gp_f32_to_f16(NAN))));
    assert_true(isinf(gp_f16_to_f32(gp_f32_to_f16(INFINITY))));
    /* every finite half survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        assert_int_equal(gp_f32_to_f16(gp_f16_to_f32((uint16_t)h)), h);
    }
    assert_float_equal(gp_f16_to_f32(0x0001), ldexpf(1, -24), 0);
    assert_float_equal(gp_f16_to_f32(0x3555), 0.333251953125f, 0);
}

static void test_bf16(void **state) {
    (void)state;
    assert_int_equal(gp_bf16_round(1.0f), 0x3f80);
    assert_int_equal(gp_bf16_round(1.0f + ldexpf(1, -8)), 0x3f80); /* tie to even */
    assert_int_equal(gp_bf16_round(1.0f + ldexpf(3, -8)), 0x3f82); /* tie to even, upwards */
    assert_int_equal(gp_bf16_round(-3.0f), 0xc040);
    assert_true(isnan(gp_bf16_value(gp_bf16_round(NAN))));
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7f80) == 0x7f80) continue;
        assert_int_equal(gp_bf16_round(gp_bf16_value((uint16_t)h)), h);
    }
}

/* ---- writer round trip -------------------------------------------------------------------- */

static void test_round_trip(void **state) {
    (void)state;
    char *dir = tu_mkdtemp(), path[4200];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    float a[6] = {1.5f, -2.25f, 3.0f, 0.0f, -0.0f, 1e-3f};
    float b[4] = {0.5f, -0.75f, 1024.0f, 65504.0f};
    float c[3] = {1.0f, -1.0f, 3.140625f};
    int64_t ints[3] = {7, -1, 1LL << 40};
    int64_t sa[2] = {2, 3}, sb[1] = {4}, sc[3] = {1, 3, 1}, si[1] = {3};
    gp_st_writer *w = gp_st_writer_init();
    gp_st_writer_meta(w, "gaprune.method", "magnitude");
    gp_st_writer_meta(w, "quote\"and\\slash", "line\nbreak");
    gp_st_writer_add_f32(w, "layer.0.a", GP_DT_F32, 2, sa, a);
    gp_st_writer_add_f32(w, "b", GP_DT_F16, 1, sb, b);
    gp_st_writer_add_f32(w, "c \"odd\" name", GP_DT_BF16, 3, sc, c);
    gp_st_writer_add_raw(w, "position_ids", GP_DT_I64, 1, si, ints);
    gp_err err = {0};
    assert_int_equal(gp_st_writer_write(w, path, &err), GP_OK);
    gp_st_writer_free(w);

    gp_st_file *f;
    if (gp_st_open(path, &f, &err)) fail_msg("%s", err.msg);
    assert_int_equal(gp_st_count(f), 4);
    assert_string_equal(gp_st_meta(f, "gaprune.method"), "magnitude");
    assert_string_equal(gp_st_meta(f, "quote\"and\\slash"), "line\nbreak");
    assert_string_equal(gp_st_meta(f, "format"), "pt"); /* added: transformers requires it */
    const gp_st_tensor *t = gp_st_find(f, "layer.0.a");
    assert_non_null(t);
    assert_int_equal(t->dtype, GP_DT_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[1], 3);
    float out[6];
    assert_int_equal(gp_st_tensor_to_f32(t, out, &err), GP_OK);
    assert_memory_equal(out, a, sizeof a);
    t = gp_st_find(f, "b");
    assert_int_equal(t->dtype, GP_DT_F16);
    assert_int_equal(gp_st_tensor_to_f32(t, out, &err), GP_OK);
    assert_memory_equal(out, b, sizeof b); /* all exactly representable in half */
    t = gp_st_find(f, "c \"odd\" name");
    assert_int_equal(t->dtype, GP_DT_BF16);
    assert_int_equal(t->ndim, 3);
    assert_int_equal(gp_st_tensor_to_f32(t, out, &err), GP_OK);
    assert_memory_equal(out, c, sizeof c);
    t = gp_st_find(f, "position_ids");
    assert_int_equal(t->dtype, GP_DT_I64);
    assert_memory_equal(t->data, ints, sizeof ints);
    assert_int_equal(gp_st_tensor_to_f32(t, out, &err), GP_EINPUT); /* not a float type */
    assert_non_null(strstr(err.msg, "position_ids"));
    /* data starts 8-byte aligned */
    FILE *fp = fopen(path, "rb");
    uint64_t n;
    assert_int_equal(fread(&n, 8, 1, fp), 1);
    fclose(fp);
    assert_int_equal(n % 8, 0);
    gp_st_close(f);
    tu_rmtree(dir);
    free(dir);
}

/* ---- broken files ------------------------------------------------------------------------- */

/* Writes a file with the given header and `data_bytes` bytes of data. */
static void write_raw(const char *path, const char *header, size_t data_bytes) {
    FILE *f = fopen(path, "wb");
    uint64_t n = strlen(header);
    fwrite(&n, 8, 1, f);
    fwrite(header, 1, n, f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
}

static void expect_error(const char *path, const char *needle1, const char *needle2) {
    gp_st_file *f = NULL;
    gp_err err = {0};
    gp_status rc = gp_st_open(path, &f, &err);
    printf("    %s\n", err.msg);
    assert_int_equal(rc, GP_EINPUT);
    assert_null(f);
    assert_non_null(strstr(err.msg, path));
    if (needle1) assert_non_null(strstr(err.msg, needle1));
    if (needle2) assert_non_null(strstr(err.msg, needle2));
}

static void test_broken_files(void **state) {
    (void)state;
    char *dir = tu_mkdtemp(), p[4200];
    snprintf(p, sizeof p, "%s/bad.safetensors", dir);

    tu_write(p, "abc"); /* shorter than the length field */
    expect_error(p, "truncated", NULL);

    FILE *f = fopen(p, "wb"); /* header length past the end of the file */
    uint64_t big = 1000;
    fwrite(&big, 8, 1, f);
    fputs("{\"a\":", f);
    fclose(f);
    expect_error(p, "exceeds the file", NULL);

    write_raw(p, "{not json}", 0);
    expect_error(p, "JSON", NULL);

    write_raw(p, "[1,2]", 0);
    expect_error(p, NULL, NULL);

    write_raw(p, "{\"w\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    expect_error(p, "\"w\"", "F99");

    write_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12); /* truncated data */
    expect_error(p, "\"w\"", "past the end");

    write_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16); /* size mismatch */
    expect_error(p, "\"w\"", "need 12");

    write_raw(p,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
              12);
    expect_error(p, "\"a\"", "overlap");

    write_raw(p,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
              8);
    expect_error(p, "\"a\"", "twice");

    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    expect_error(p, "\"a\"", "shape");

    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8);
    expect_error(p, "\"a\"", "data_offsets");

    write_raw(p, "{\"__metadata__\":{\"k\":3}}", 0);
    expect_error(p, "__metadata__", NULL);

    /* issue 14: a second __metadata__ (larger than the first) wrote past a heap buffer */
    write_raw(p, "{\"__metadata__\":{\"format\":\"pt\"},\"__metadata__\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}}", 0);
    expect_error(p, "\"__metadata__\"", "twice");

    /* issue 14 (fuzz_safetensors): a repeated metadata key was read as its first value and
     * written back as its last */
    write_raw(p, "{\"__metadata__\":{\"format\":\"pt\",\"gaprune.method\":\"a\",\"gaprune.method\":\"b\"}}", 0);
    expect_error(p, "\"gaprune.method\"", "twice");

    tu_rmtree(dir);
    free(dir);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* issue 14: the duplicate-name check was quadratic (100,000 tiny tensors took 17.5 s). Every
 * name is now checked and found through a hash map. */
static void test_many_tensors(void **state) {
    (void)state;
    enum { N = 100000 };
    char *dir = tu_mkdtemp(), p[4200];
    snprintf(p, sizeof p, "%s/many.safetensors", dir);
    size_t cap = (size_t)N * 80 + 200, at = 0;
    char *h = malloc(cap);
    at += (size_t)snprintf(h + at, cap - at, "{");
    for (int i = 0; i < N; i++)
        at += (size_t)snprintf(h + at, cap - at, "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                               i ? "," : "", i, i, i + 1);
    size_t body = at;
    snprintf(h + at, cap - at, "}");
    write_raw(p, h, N);
    double t0 = now_s();
    gp_st_file *f = NULL;
    gp_err err = {0};
    if (gp_st_open(p, &f, &err)) fail_msg("%s", err.msg);
    double t_ok = now_s() - t0;
    assert_int_equal(gp_st_count(f), N);
    const gp_st_tensor *t = gp_st_find(f, "t99999");
    assert_non_null(t);
    assert_int_equal(t->begin, 99999);
    assert_null(gp_st_find(f, "t100000"));
    gp_st_close(f);
    /* the same tensors and then "t0" again: refused, naming it */
    snprintf(h + body, cap - body, ",\"t0\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%d,%d]}}", N, N + 1);
    write_raw(p, h, N + 1);
    t0 = now_s();
    expect_error(p, "\"t0\"", "twice");
    double t_dup = now_s() - t0;
    printf("    %d tensors: opened in %.3f s, duplicate refused in %.3f s\n", N, t_ok, t_dup);
    assert_true(t_ok < 5.0 && t_dup < 5.0); /* was 17.5 s; about 0.2 s under ASan here */
    free(h);
    tu_rmtree(dir);
    free(dir);
}

static void test_shards(void **state) {
    (void)state;
    char *dir = tu_mkdtemp(), p[4200];
    gp_err err = {0};
    gp_st_set *s = NULL;
    assert_int_equal(gp_st_set_open(dir, &s, &err), GP_EINPUT); /* empty folder */
    assert_non_null(strstr(err.msg, "model.safetensors"));

    snprintf(p, sizeof p, "%s/a.safetensors", dir);
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    snprintf(p, sizeof p, "%s/b.safetensors", dir);
    write_raw(p, "{\"y\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    tu_write(p, "{\"metadata\":{},\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"b.safetensors\"}}");
    assert_int_equal(gp_st_set_open(dir, &s, &err), GP_OK);
    assert_int_equal(gp_st_set_nfiles(s), 2);
    assert_non_null(gp_st_set_find(s, "x"));
    assert_int_equal(gp_st_set_find(s, "y")->dtype, GP_DT_BF16);
    assert_null(gp_st_set_find(s, "z"));
    gp_st_set_close(s);

    tu_write(p, "{\"weight_map\":{\"x\":\"a.safetensors\",\"z\":\"b.safetensors\"}}");
    assert_int_equal(gp_st_set_open(dir, &s, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "\"z\""));

    tu_write(p, "{\"weight_map\":{\"x\":\"../a.safetensors\"}}");
    assert_int_equal(gp_st_set_open(dir, &s, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "plain file name"));

    tu_write(p, "{\"weight_map\":{\"x\":\"missing.safetensors\"}}");
    assert_int_equal(gp_st_set_open(dir, &s, &err), GP_EINPUT);
    assert_non_null(strstr(err.msg, "missing.safetensors"));
    tu_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16),         cmocka_unit_test(test_bf16),   cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_broken_files), cmocka_unit_test(test_many_tensors), cmocka_unit_test(test_shards),
    };
    return cmocka_run_group_tests_name("safetensors", tests, NULL, NULL);
}
