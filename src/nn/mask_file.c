/* mask_file.c — the /summary table of a mask file, written and read with one compound type (see mask_file.h). */
#include "gaprune/mask_file.h"

#include <stdlib.h>

#include "gaprune/h5.h"

/* The compound of gp_mask_summary_row; the file stores it as laid out in memory here. */
static hid_t summary_type(void) {
    hid_t str = GP_H5(H5Tcopy(H5T_C_S1), "type");
    GP_H5(H5Tset_size(str, H5T_VARIABLE), "vlen");
    GP_H5(H5Tset_cset(str, H5T_CSET_UTF8), "cset");
    hid_t t = GP_H5(H5Tcreate(H5T_COMPOUND, sizeof(gp_mask_summary_row)), "compound");
    H5Tinsert(t, "param", HOFFSET(gp_mask_summary_row, param), str);
    H5Tinsert(t, "layer", HOFFSET(gp_mask_summary_row, layer), H5T_NATIVE_INT32);
    H5Tinsert(t, "numel", HOFFSET(gp_mask_summary_row, numel), H5T_NATIVE_INT64);
    H5Tinsert(t, "kept", HOFFSET(gp_mask_summary_row, kept), H5T_NATIVE_INT64);
    H5Tinsert(t, "sparsity", HOFFSET(gp_mask_summary_row, sparsity), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "score_min", HOFFSET(gp_mask_summary_row, score_min), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "score_mean", HOFFSET(gp_mask_summary_row, score_mean), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "score_max", HOFFSET(gp_mask_summary_row, score_max), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "fisher_vs_magnitude", HOFFSET(gp_mask_summary_row, fisher_vs_magnitude), H5T_NATIVE_DOUBLE);
    H5Tclose(str); /* the compound keeps its own copy */
    return t;
}

void gp_mask_summary_write(hid_t file, const gp_mask_summary_row *rows, size_t n) {
    hid_t t = summary_type();
    hsize_t dim = (hsize_t)n;
    hid_t sp = GP_H5(H5Screate_simple(1, &dim, NULL), "space");
    hid_t ds = GP_H5(H5Dcreate2(file, GP_MASK_SUMMARY, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), GP_MASK_SUMMARY);
    if (n) GP_H5(H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows), GP_MASK_SUMMARY);
    gp_h5_describe(ds,
                   "one row per selected tensor: its transformer block, weights, weights kept, sparsity, score range, "
                   "and sum |(F_dom - beta F_gen)|w|| / sum gamma sqrt|w| (near 0: DAI ranks like magnitude pruning)",
                   "see description");
    H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(t);
}

gp_mask_summary_row *gp_mask_summary_read(hid_t file, size_t *n) {
    *n = 0;
    if (H5Lexists(file, GP_MASK_SUMMARY, H5P_DEFAULT) <= 0) return NULL;
    hid_t d = H5Dopen2(file, GP_MASK_SUMMARY, H5P_DEFAULT);
    if (d < 0) return NULL;
    const hssize_t np = gp_h5_stored_points(d);
    if (np < 0) {
        H5Dclose(d);
        return NULL;
    }
    *n = (size_t)np;
    gp_mask_summary_row *r = gp_calloc(*n + 1, sizeof *r);
    hid_t t = summary_type();
    if (*n && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, r) < 0) {
        free(r);
        r = NULL;
        *n = 0;
    }
    H5Tclose(t);
    H5Dclose(d);
    return r;
}

void gp_mask_summary_free(gp_mask_summary_row *rows, size_t n) {
    if (!rows) return;
    for (size_t i = 0; i < n; i++) free(rows[i].param); /* HDF5 allocated the strings with malloc */
    free(rows);
}
