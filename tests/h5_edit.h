/* h5_edit.h — damaging gaprune's HDF5 files the way tests/fuzz/fuzz_h5.c does, for the tests of
 * its findings (header-only, test code): a dataset replaced by one of another type or size, an
 * attribute holding an array where a scalar belongs, one value overwritten. Each opens the file,
 * makes its change and closes it; a failed HDF5 call fails the test. And comparing two files
 * dataset by dataset (h5e_equal_datasets). */
#pragma once

#include <hdf5.h>
#include <stdint.h>

#include "gaprune/checkpoint.h"
#include "test_util.h"

static inline hid_t h5e_open(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) fail_msg("cannot open %s", path);
    return f;
}

/* name becomes a 1-D dataset of n values of type (file and memory: H5T_NATIVE_*), contiguous. */
static inline void h5e_replace(const char *path, const char *name, hid_t type, const void *v, hsize_t n) {
    hid_t f = h5e_open(path);
    if (H5Lexists(f, name, H5P_DEFAULT) > 0) assert_true(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
    hid_t sp = H5Screate_simple(1, &n, NULL), lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(f, name, type, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    if (n) assert_true(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d), H5Pclose(lcpl), H5Sclose(sp), H5Fclose(f);
}

/* The attribute name of object obj becomes n int64 values (n = 1: a scalar). */
static inline void h5e_attr_i64(const char *path, const char *obj, const char *name, const int64_t *v, hsize_t n) {
    hid_t f = h5e_open(path);
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    assert_true(o >= 0);
    if (H5Aexists(o, name) > 0) assert_true(H5Adelete(o, name) >= 0);
    hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(o, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, v) >= 0);
    H5Aclose(a), H5Sclose(sp), H5Oclose(o), H5Fclose(f);
}

/* Element i of a float dataset becomes x. */
static inline void h5e_poke_f32(const char *path, const char *name, hsize_t i, float x) {
    hid_t f = h5e_open(path);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t fs = H5Dget_space(d);
    const int nd = H5Sget_simple_extent_ndims(fs);
    hsize_t dims[2] = {0, 1}, start[2] = {0, 0}, one[2] = {1, 1};
    H5Sget_simple_extent_dims(fs, dims, NULL);
    start[0] = nd == 2 ? i / dims[1] : i;
    start[1] = nd == 2 ? i % dims[1] : 0;
    hid_t ms = H5Screate_simple(nd, one, NULL);
    assert_true(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, one, NULL) >= 0);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &x) >= 0);
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d), H5Fclose(f);
}

/* A checkpoint edited as above made whole again (gp_checkpoint_reseal): every dataset's crc32 and
 * the root checksum recomputed, so that what is checked is the stage's reading of the values,
 * not the checksums (which would refuse the file first). */
static inline void h5e_reseal(const char *path) {
    hid_t f = h5e_open(path);
    assert_true(gp_checkpoint_reseal(f));
    H5Fclose(f);
}

/* ---- comparing ---------------------------------------------------------------------------- */

typedef struct {
    hid_t other;
    int n;
} h5e_cmp;

static inline herr_t h5e_cmp_visit(hid_t obj, const char *name, const H5O_info_t *info, void *vctx) {
    h5e_cmp *c = vctx;
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t d1 = H5Dopen2(obj, name, H5P_DEFAULT), d2 = H5Dopen2(c->other, name, H5P_DEFAULT);
    if (d2 < 0) fail_msg("dataset %s missing", name);
    hid_t t = H5Dget_type(d1);
    if (H5Tget_class(t) == H5T_FLOAT || H5Tget_class(t) == H5T_INTEGER) {
        hid_t sp = H5Dget_space(d1);
        const size_t n = (size_t)H5Sget_simple_extent_npoints(sp);
        double *a = malloc(n * sizeof(double) + 8), *b = malloc(n * sizeof(double) + 8);
        assert_true(H5Dread(d1, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, a) >= 0);
        assert_true(H5Dread(d2, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) >= 0);
        if (memcmp(a, b, n * sizeof(double))) fail_msg("dataset %s differs", name);
        free(a), free(b);
        H5Sclose(sp);
        c->n++;
    }
    H5Tclose(t);
    H5Dclose(d1);
    H5Dclose(d2);
    return 0;
}

/* Every numeric dataset of file a (open) bitwise equal, as double, to the one of the same name
 * in file b (a missing or different one fails the test); returns how many. */
static inline int h5e_equal_datasets(hid_t a, hid_t b) {
    h5e_cmp c = {b, 0};
    H5Ovisit(a, H5_INDEX_NAME, H5_ITER_NATIVE, h5e_cmp_visit, &c);
    return c.n;
}

/* h5e_equal_datasets of the files at paths a and b. */
static inline int h5e_equal_files(const char *a, const char *b) {
    hid_t fa = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fa < 0 || fb < 0) fail_msg("cannot open %s or %s", a, b);
    const int n = h5e_equal_datasets(fa, fb);
    H5Fclose(fa);
    H5Fclose(fb);
    return n;
}
