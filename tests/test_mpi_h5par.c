/* test_mpi_h5par.c — h5par.h, the file every rank writes with parallel HDF5 (run on 1, 2 and 4
 * ranks):
 *  - datasets split unevenly (rows not divisible by the ranks, fewer rows than ranks, 1-D and
 *    2-D, chunks shared by two ranks, a slice cut into several writes, one rank writing all,
 *    blocks in reverse rank order, a slice that starts and ends inside a chunk; every other one
 *    raw, without filters) read back exactly, with description and units, and the deflated
 *    chunks hold the very bytes HDF5's own shuffle and deflate filters make (on one rank
 *    gaprune's threads deflate them);
 *  - attributes carry rank 0's value even where the ranks pass different ones, h5dump prints
 *    them, and the file is <path>.tmp until rank 0 commits it;
 *  - a dataset of 2^31 + 8 rows, each rank writing a few rows around and past row 2^31 (the
 *    rest stays the fill value 0): offsets and counts are 64-bit.
 * Reading back is serial, on rank 0, as `gaprune score` and `inspect` read. */
#include "test_util.h"
#include "test_mpi.h"

#include <hdf5.h>
#include <mpi.h>

#include "gaprune/dist.h"
#include "gaprune/h5.h"
#include "gaprune/h5par.h"
#include "gaprune/log.h"
#include "gaprune/testhook.h"

static char *g_dir; /* the same scratch folder on every rank */

/* The value of element (row, col): exact in float32 for the rows used here, and rows far
 * apart differ. */
static float value(hsize_t row, hsize_t col) { return (float)(row % 100003) + 0.25f * (float)col + 1.0f; }

/* rows [row0, row0 + n) of a dataset with `cols` columns, malloc'd */
static float *make_rows(hsize_t row0, hsize_t n, hsize_t cols) {
    float *x = malloc((size_t)(n * cols + 1) * sizeof(float));
    for (hsize_t r = 0; r < n; r++)
        for (hsize_t c = 0; c < cols; c++) x[r * cols + c] = value(row0 + r, c);
    return x;
}

static char *path_in_dir(const char *name) {
    char *p = malloc(4200);
    snprintf(p, 4200, "%s/%s", g_dir, name);
    return p;
}

/* Rank 0: the file is still <path>.tmp; `complete` is added and the file renamed. */
static void commit(const char *path) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(tmp, F_OK), 0);
    hid_t f = gp_h5_open_tmp(path);
    gp_h5_attr_int(f, GP_H5_ATTR_COMPLETE, 1);
    gp_err err = {0};
    assert_int_equal(gp_h5_close_commit(f, path, &err), GP_OK);
    assert_int_equal(access(path, F_OK), 0);
}

/* Every element of rows [lo, hi) equals value(), the others 0 (written by no one); description
 * and units as written. */
static void check_dataset(hid_t f, const gp_h5par_item *it, hsize_t lo, hsize_t hi) {
    hid_t d = H5Dopen2(f, it->name, H5P_DEFAULT);
    if (d < 0) fail_msg("%s missing", it->name);
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t dims[2] = {0, 1};
    assert_int_equal(H5Sget_simple_extent_ndims(sp), it->ndim);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    assert_true(H5Tequal(t, H5T_IEEE_F32LE) > 0);
    const hsize_t cols = it->ndim == 2 ? it->dims[1] : 1;
    assert_true(dims[0] == it->dims[0] && (it->ndim == 1 || dims[1] == it->dims[1]));
    float *x = malloc((size_t)(dims[0] * cols + 1) * sizeof(float));
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    for (hsize_t r = 0; r < dims[0]; r++)
        for (hsize_t c = 0; c < cols; c++)
            if (x[r * cols + c] != (r >= lo && r < hi ? value(r, c) : 0.0f))
                fail_msg("%s[%llu, %llu] = %g, want %g", it->name, (unsigned long long)r, (unsigned long long)c,
                         x[r * cols + c], r >= lo && r < hi ? value(r, c) : 0.0f);
    char *desc = gp_h5_read_attr_str(d, "description"), *units = gp_h5_read_attr_str(d, "units");
    assert_non_null(desc);
    assert_non_null(units);
    assert_string_equal(desc, it->description);
    assert_string_equal(units, it->units);
    free(desc), free(units), free(x);
    /* raw datasets have no filter; the others shuffle and deflate */
    hid_t dcpl = H5Dget_create_plist(d);
    assert_int_equal(H5Pget_nfilters(dcpl), it->raw ? 0 : 2);
    H5Pclose(dcpl);
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
}

enum { N_UNEVEN = 9 };

/* The chunk at `row` of dataset `name` in two files: the same filters and the same stored
 * bytes. */
static void assert_same_chunk(hid_t fa, hid_t fb, const char *name, hsize_t row) {
    hid_t da = H5Dopen2(fa, name, H5P_DEFAULT), db = H5Dopen2(fb, name, H5P_DEFAULT);
    assert_true(da >= 0 && db >= 0);
    hsize_t off[2] = {row, 0}, na = 0, nb = 0;
    assert_true(H5Dget_chunk_storage_size(da, off, &na) >= 0 && H5Dget_chunk_storage_size(db, off, &nb) >= 0);
    if (na != nb) fail_msg("%s: the chunk at row %llu has %llu bytes, HDF5's filters make %llu", name,
                           (unsigned long long)row, (unsigned long long)na, (unsigned long long)nb);
    unsigned char *a = malloc(na + 1), *b = malloc(nb + 1);
    uint32_t ma = 1, mb = 1;
    assert_true(H5Dread_chunk(da, H5P_DEFAULT, off, &ma, a) >= 0 && H5Dread_chunk(db, H5P_DEFAULT, off, &mb, b) >= 0);
    assert_int_equal(ma, mb);
    assert_memory_equal(a, b, na);
    free(a), free(b);
    H5Dclose(da), H5Dclose(db);
}

/* What HDF5's own shuffle + deflate pipeline writes for rows [lo, hi) of `it` (serially, rank 0,
 * the same chunk shape): the reference for the chunks a lone rank deflates itself. */
static hid_t reference_file(const char *path, const gp_h5par_item *it, hsize_t rpc, hsize_t lo, hsize_t hi) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t ch[2] = {rpc, it->dims[1]}, off[2] = {lo, 0}, cnt[2] = {hi - lo, it->dims[1]};
    hid_t sp = H5Screate_simple(2, it->dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, ch);
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 1);
    hid_t d = H5Dcreate2(f, it->name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    float *x = make_rows(lo, hi - lo, it->dims[1]);
    hid_t ms = H5Screate_simple(2, cnt, NULL);
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, off, NULL, cnt, NULL);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, sp, H5P_DEFAULT, x) >= 0);
    free(x);
    H5Sclose(ms), H5Sclose(sp), H5Pclose(dcpl), H5Dclose(d);
    return f;
}

static void test_uneven_splits(void **state) {
    (void)state;
    const int rank = gp_rank(), P = gp_nranks();
    char *path = path_in_dir("uneven.h5");
    /* name, ndim, rows, cols, how the rows are split */
    static const struct {
        const char *name;
        int ndim;
        hsize_t rows, cols;
        enum { SHARE, LAST_RANK, REVERSE, MIDDLE } split;
        int64_t piece; /* elements per write (the test hook), 0: the default */
    } spec[N_UNEVEN] = {
        {"a/two_d", 2, 7, 5, SHARE, 0},          /* 7 rows over 2 or 4 ranks */
        {"a/few_rows", 2, 3, 4, SHARE, 0},       /* fewer rows than 4 ranks */
        {"b/one_d", 1, 11, 1, SHARE, 0},
        {"b/c/chunks", 2, 1500, 700, SHARE, 0},  /* 374 rows a chunk: chunks shared by two ranks */
        {"pieces", 2, 1500, 700, SHARE, 140000}, /* 200 rows a write: several writes per rank */
        {"pieces_1d", 1, 600000, 1, SHARE, 100000},
        {"last_rank", 2, 9, 3, LAST_RANK, 0},
        {"reverse", 1, 1000, 1, REVERSE, 0},
        {"middle", 2, 1500, 700, MIDDLE, 0}, /* rows 300..1286: the first and last chunk in part */
    };
    const hsize_t mid_lo = 300, mid_hi = 1286;
    gp_h5par_item it[N_UNEVEN];
    for (int i = 0; i < N_UNEVEN; i++) {
        hsize_t r0 = 0, nr = 0;
        if (spec[i].split == SHARE) gp_h5par_share(spec[i].rows, &r0, &nr);
        if (spec[i].split == LAST_RANK && rank == P - 1) nr = spec[i].rows;
        if (spec[i].split == MIDDLE) {
            gp_h5par_share(mid_hi - mid_lo, &r0, &nr);
            r0 += mid_lo;
        }
        if (spec[i].split == REVERSE) { /* rank r writes the block rank P-1-r would */
            const hsize_t n = spec[i].rows, q = (hsize_t)(P - 1 - rank);
            r0 = n * q / (hsize_t)P;
            nr = n * (q + 1) / (hsize_t)P - r0;
        }
        it[i] = (gp_h5par_item){spec[i].name, spec[i].ndim, {spec[i].rows, spec[i].cols}, spec[i].name, "units of test",
                                make_rows(r0, nr, spec[i].cols), r0, nr, i % 2 == 1};
    }
    hid_t f;
    gp_err err = {0};
    assert_int_equal(gp_h5par_create_tmp(path, gp_h5par_bytes(it, N_UNEVEN), &f, &err), GP_OK);
    gp_h5par_provenance(f, "gaprune-test", 3);
    gp_h5par_attr_str(f, "text", rank == 0 ? "rank 0's text" : "another rank's text");
    gp_h5par_attr_int(f, "number", 100 + rank);
    gp_h5par_attr_double(f, "real", 0.5 + rank);
    for (int i = 0; i < N_UNEVEN; i++) {
        gp_testhooks h = *gp_testhook_get();
        h.h5par_piece_elems = spec[i].piece;
        gp_testhook_set(&h);
        gp_h5par_write_f32(f, &it[i], 1);
    }
    gp_testhooks off = *gp_testhook_get();
    off.h5par_piece_elems = 0;
    gp_testhook_set(&off);
    hid_t g = GP_H5(H5Gopen2(f, "a", H5P_DEFAULT), "group a");
    gp_h5par_attr_int(g, "group_number", -7);
    H5Gclose(g);
    gp_h5par_close(f, path, &err);
    if (rank == 0) {
        commit(path);
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        assert_true(f >= 0);
        for (int i = 0; i < N_UNEVEN; i++)
            check_dataset(f, &it[i], spec[i].split == MIDDLE ? mid_lo : 0, spec[i].split == MIDDLE ? mid_hi : spec[i].rows);
        /* every chunk of the deflated datasets holds the bytes HDF5's own filters make: on one
         * rank these chunks were deflated by gaprune's threads, on several by HDF5 */
        static const int same[] = {4, 6, 8};
        for (size_t k = 0; k < sizeof same / sizeof *same; k++) {
            const gp_h5par_item *x = &it[same[k]];
            const hsize_t rpc = x->dims[0] < 262144 / x->dims[1] ? x->dims[0] : 262144 / x->dims[1], lo = x == &it[8] ? mid_lo : 0, hi = x == &it[8] ? mid_hi : x->dims[0];
            char *ref = path_in_dir("reference.h5");
            hid_t fr = reference_file(ref, x, rpc, lo, hi);
            for (hsize_t row = lo / rpc * rpc; row < hi; row += rpc) assert_same_chunk(f, fr, x->name, row);
            H5Fclose(fr);
            free(ref);
        }
        char *text = gp_h5_read_attr_str(f, "text"), *format = gp_h5_read_attr_str(f, GP_H5_ATTR_FORMAT);
        int64_t number = 0, n_ranks = 0, group_number = 0;
        double real = 0;
        assert_string_equal(text, "rank 0's text");
        assert_string_equal(format, "gaprune-test");
        assert_int_equal(gp_h5_read_attr_int(f, "number", &number), GP_OK);
        assert_int_equal(number, 100);
        assert_int_equal(gp_h5_read_attr_double(f, "real", &real), GP_OK);
        assert_true(real == 0.5);
        assert_int_equal(gp_h5_read_attr_int(f, "n_ranks", &n_ranks), GP_OK);
        assert_int_equal(n_ranks, P);
        hid_t ga = H5Gopen2(f, "a", H5P_DEFAULT);
        assert_int_equal(gp_h5_read_attr_int(ga, "group_number", &group_number), GP_OK);
        assert_int_equal(group_number, -7);
        H5Gclose(ga);
        free(text), free(format);
        H5Fclose(f);
        /* h5dump reads the file and prints the attributes */
        char cmd[4400], out[65536];
        snprintf(cmd, sizeof cmd, "h5dump -A '%s' 2>&1", path);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t len = fread(out, 1, sizeof out - 1, p);
        out[len] = '\0';
        assert_int_equal(pclose(p), 0);
        static const char *const want[] = {"\"rank 0's text\"", "(0): 100", "(0): 0.5", "\"gaprune-test\"",
                                           "ATTRIBUTE \"group_number\"", "(0): -7", "\"units of test\"",
                                           "DATASET \"chunks\"", "ATTRIBUTE \"complete\""};
        for (size_t k = 0; k < sizeof want / sizeof *want; k++)
            if (!strstr(out, want[k])) fail_msg("h5dump -A does not print %s:\n%s", want[k], out);
        printf("    %d ranks: %d datasets exact, attributes rank 0's, h5dump prints them\n", P, N_UNEVEN);
    }
    for (int i = 0; i < N_UNEVEN; i++) free((void *)it[i].data);
    free(path);
}

/* A dataset of 2^31 + 8 rows: rank r writes 3 rows ending 3·(P − 1 − r) rows before the end,
 * so on 4 ranks the writes straddle row 2^31; rank 0 also writes rows 1..2 in a second
 * dataset of 2^32 + 5 elements. Unwritten rows read as 0. */
static void test_beyond_2_31(void **state) {
    (void)state;
    const int rank = gp_rank(), P = gp_nranks();
    char *path = path_in_dir("huge.h5");
    const hsize_t rows = ((hsize_t)1 << 31) + 8, rows1 = ((hsize_t)1 << 32) + 5;
    const hsize_t r0 = rows - 3 * (hsize_t)(P - rank), r1 = rank == 0 ? 1 : rows1 - 2 * (hsize_t)(P - rank);
    gp_h5par_item it[2] = {
        {"huge", 2, {rows, 1}, "2^31 + 8 rows, few written", "1", make_rows(r0, 3, 1), r0, 3, false},
        {"huge_1d", 1, {rows1, 1}, "2^32 + 5 elements, few written", "1", make_rows(r1, 2, 1), r1, 2, false},
    };
    double t0 = MPI_Wtime();
    hid_t f;
    gp_err err = {0};
    /* sparse: nearly all of it is never written, so no room is asked for */
    assert_int_equal(gp_h5par_create_tmp(path, 0, &f, &err), GP_OK);
    gp_h5par_write_f32(f, it, 2);
    gp_h5par_close(f, path, &err);
    double t_write = MPI_Wtime() - t0;
    if (rank == 0) {
        commit(path);
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        assert_true(f >= 0);
        for (int i = 0; i < 2; i++) {
            hid_t d = H5Dopen2(f, it[i].name, H5P_DEFAULT), fs = H5Dget_space(d);
            hsize_t dims[2] = {0, 0};
            H5Sget_simple_extent_dims(fs, dims, NULL);
            assert_true(dims[0] == it[i].dims[0]);
            /* every rank's rows (the formula above for rank q), and one row nobody wrote */
            for (int q = 0; q <= P; q++) {
                const hsize_t n = q == P ? 1 : i ? 2 : 3;
                hsize_t start = q == P ? it[i].dims[0] / 2 : i == 0 ? rows - 3 * (hsize_t)(P - q)
                                                           : q == 0 ? 1 : rows1 - 2 * (hsize_t)(P - q);
                hsize_t off[2] = {start, 0}, cnt[2] = {n, 1};
                float got[3] = {-1, -1, -1};
                H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
                hid_t ms = H5Screate_simple(it[i].ndim, cnt, NULL);
                assert_true(H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, got) >= 0);
                H5Sclose(ms);
                for (hsize_t k = 0; k < n; k++) {
                    float want = q == P ? 0.0f : value(start + k, 0);
                    if (got[k] != want)
                        fail_msg("%s row %llu: %g, want %g", it[i].name, (unsigned long long)(start + k), got[k], want);
                }
            }
            H5Sclose(fs);
            H5Dclose(d);
        }
        H5Fclose(f);
        printf("    %d ranks: rows up to %llu written and read back (2^31 + 8 and 2^32 + 5 elements), "
               "the rest 0; write %.2f s\n",
               P, (unsigned long long)(rows1 - 1), t_write);
    }
    free((void *)it[0].data), free((void *)it[1].data);
    free(path);
}

int main(int argc, char **argv) {
    int rank = tu_mpi_init(&argc, &argv, 0);
    g_dir = rank == 0 ? tu_mkdtemp() : NULL;
    gp_bcast_string(&g_dir, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uneven_splits),
        cmocka_unit_test(test_beyond_2_31),
    };
    int failed = cmocka_run_group_tests_name("mpi_h5par", tests, NULL, NULL);
    gp_barrier();
    if (rank == 0) tu_rmtree(g_dir);
    free(g_dir);
    return tu_mpi_finish(failed);
}
