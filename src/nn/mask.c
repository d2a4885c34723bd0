/* mask.c — broadcasting, applying, reading and freeing pruning masks (see mask.h). */
#include "gaprune/mask.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/kernels.h"
#include "gaprune/h5.h"
#include "gaprune/log.h"
#include "gaprune/mask_file.h"
#include "gaprune/prune.h"

/* ---- distribution and use -------------------------------------------------------------------- */

void gp_mask_bcast(gp_mask *mk, const gp_model *m) {
    (void)m;
    if (gp_nranks() == 1) return;
    int64_t hdr[4] = {mk->n, mk->total, mk->pruned, mk->uneven_structs};
    gp_bcast_bytes(hdr, sizeof hdr, 0);
    double d[2] = {mk->threshold, mk->model_zero_fraction};
    gp_bcast_bytes(d, sizeof d, 0);
    if (gp_rank() != 0) {
        gp_mask_free(mk);
        mk->n = (int)hdr[0];
        mk->param = gp_malloc((size_t)(mk->n ? mk->n : 1) * sizeof(int));
        mk->numel = gp_malloc((size_t)(mk->n ? mk->n : 1) * sizeof(int64_t));
        mk->keep = gp_calloc((size_t)(mk->n ? mk->n : 1), sizeof(uint8_t *));
    }
    mk->total = hdr[1], mk->pruned = hdr[2], mk->uneven_structs = hdr[3] != 0;
    mk->threshold = d[0], mk->model_zero_fraction = d[1];
    gp_bcast_bytes(mk->param, (size_t)mk->n * sizeof(int), 0);
    gp_bcast_bytes(mk->numel, (size_t)mk->n * sizeof(int64_t), 0);
    for (int i = 0; i < mk->n; i++) {
        if (gp_rank() != 0) mk->keep[i] = gp_malloc((size_t)(mk->numel[i] + 7) / 8);
        gp_bcast_bytes(mk->keep[i], (size_t)(mk->numel[i] + 7) / 8, 0);
    }
}

/* Clears x[k] where keep bit k0 + k is 0, with no branch: retraining calls this twice a step
 * and a 50% mask makes a branch per element a coin toss. Gives +0.0f, never -0.0f. Element-wise,
 * so threads change nothing. */
static void mask_clear(float *x, const uint8_t *keep, int64_t k0, int64_t count) {
#pragma omp parallel for if (count >= gp_par_min()) schedule(static)
    for (int64_t k = 0; k < count; k++) {
        uint32_t u;
        memcpy(&u, &x[k], sizeof u);
        u &= 0u - (uint32_t)gp_bit_get(keep, k0 + k);
        memcpy(&x[k], &u, sizeof u);
    }
}

/* mask_clear for weights held in 16 bits (BF16 and F16 both write +0 as 0x0000). */
static void mask_clear16(uint16_t *x, const uint8_t *keep, int64_t count) {
#pragma omp parallel for if (count >= gp_par_min()) schedule(static)
    for (int64_t k = 0; k < count; k++) x[k] &= (uint16_t)(0u - (uint32_t)gp_bit_get(keep, k));
}

void gp_mask_apply(const gp_mask *mk, gp_model *m) {
    for (int i = 0; i < mk->n; i++) {
        if (m->wdtype == GP_DT_F32) mask_clear(gp_model_param(m, mk->param[i]), mk->keep[i], 0, mk->numel[i]);
        else mask_clear16(m->w16 + m->table.p[mk->param[i]].offset, mk->keep[i], mk->numel[i]);
        if (m->grads) mask_clear(gp_model_grad(m, mk->param[i]), mk->keep[i], 0, mk->numel[i]);
    }
    gp_model_weights_changed(m);
}

void gp_mask_clear_range(const gp_mask *mk, const gp_model *m, float *x, int64_t lo, int64_t hi) {
    for (int i = 0; i < mk->n; i++) {
        const int64_t off = (int64_t)m->table.p[mk->param[i]].offset, end = off + mk->numel[i];
        const int64_t a = off > lo ? off : lo, b = end < hi ? end : hi;
        if (a < b) mask_clear(x + (a - lo), mk->keep[i], a - off, b - a);
    }
}

gp_status gp_mask_read(const char *path, const gp_model *m, gp_mask *mk, gp_err *err) {
    memset(mk, 0, sizeof *mk);
    mk->threshold = NAN;
    hid_t f = gp_h5_open_quiet(path);
    if (f < 0) return gp_errf(err, GP_EINPUT, "%s: cannot open as HDF5", path);
    int64_t complete = 0;
    char *fmt = gp_h5_read_attr_str(f, GP_H5_ATTR_FORMAT);
    gp_status rc = GP_OK;
    if (!fmt || strcmp(fmt, GP_MASK_FORMAT) || gp_h5_read_attr_int(f, GP_H5_ATTR_COMPLETE, &complete) || complete != 1)
        rc = gp_errf(err, GP_EINPUT, "%s: not a complete gaprune mask file", path);
    free(fmt);
    char *scope = rc ? NULL : gp_h5_read_attr_str(f, GP_MASK_ATTR_SCOPE);
    mk->uneven_structs = scope && !strcmp(scope, "neurons-global");
    free(scope);
    mk->param = gp_malloc((size_t)m->table.n * sizeof(int));
    mk->numel = gp_malloc((size_t)m->table.n * sizeof(int64_t));
    mk->keep = gp_calloc((size_t)m->table.n, sizeof(uint8_t *));
    size_t maxn = 1;
    for (int i = 0; i < m->table.n; i++) maxn = m->table.p[i].numel > maxn ? m->table.p[i].numel : maxn;
    uint8_t *bytes = gp_malloc(maxn);
    for (int i = 0; i < m->table.n && !rc; i++) {
        char name[320];
        gp_mask_tensor(name, sizeof name, GP_MASK_KEEP, m->src_names[i]);
        if (H5Lexists(f, GP_MASK_KEEP, H5P_DEFAULT) <= 0 || H5Lexists(f, name, H5P_DEFAULT) <= 0) continue;
        hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        size_t n = (size_t)H5Sget_simple_extent_npoints(sp);
        H5Sclose(sp);
        if (n != m->table.p[i].numel || H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes) < 0) {
            rc = gp_errf(err, GP_EINPUT, "%s: %s has %zu values, the model's tensor %zu", path, name, n, m->table.p[i].numel);
        } else {
            int k = mk->n++;
            mk->param[k] = i;
            mk->numel[k] = (int64_t)n;
            mk->keep[k] = gp_calloc((n + 7) / 8, 1);
            for (size_t j = 0; j < n; j++) {
                if (bytes[j]) mk->keep[k][j >> 3] |= (uint8_t)(1u << (j & 7));
                else mk->pruned++;
            }
            mk->total += (int64_t)n;
        }
        H5Dclose(d);
    }
    free(bytes);
    if (!rc && mk->n == 0) rc = gp_errf(err, GP_EINPUT, "%s: no /mask dataset matches a tensor of %s", path, m->dir);
    H5Fclose(f);
    if (rc) gp_mask_free(mk);
    return rc;
}

int64_t gp_mask_kept_structs(const gp_mask *mk, const gp_model *m, gp_struct_kind kind, int32_t *kept, int64_t *counts) {
    const int L = m->cfg.layers;
    const int64_t I = gp_model_struct_count(m, kind), g = gp_model_struct_width(m, kind);
    int8_t *state = gp_malloc((size_t)(L * I)); /* -1 unknown, else the neuron's bit */
    memset(state, -1, (size_t)(L * I));
    bool ok = true;
    int *seen = gp_calloc((size_t)L, sizeof(int)); /* bit 1: a rows tensor, bit 2: a columns tensor */
    for (int i = 0; i < mk->n && ok; i++) {
        int layer;
        const gp_neuron_axis ax = gp_model_struct_axis(m, kind, mk->param[i], &layer);
        const gp_param *t = &m->table.p[mk->param[i]];
        if (ax == GP_NEURON_NONE || layer < 0 || layer >= L || t->ndim != 2) continue;
        const int64_t R = t->shape[0], C = t->shape[1];
        if ((ax == GP_NEURON_ROWS ? R : C) != I * g) {
            ok = false;
            break;
        }
        seen[layer] |= ax == GP_NEURON_ROWS ? 1 : 2;
        int8_t *st = state + (int64_t)layer * I;
        for (int64_t r = 0; r < R && ok; r++)
            for (int64_t k = 0; k < C; k++) {
                const int8_t b = (int8_t)gp_bit_get(mk->keep[i], r * C + k);
                int8_t *s = &st[(ax == GP_NEURON_ROWS ? r : k) / g];
                if (*s < 0) *s = b;
                else if (*s != b) {
                    ok = false;
                    break;
                }
            }
    }
    int64_t total = 0;
    for (int l = 0; l < L && ok; l++) {
        int64_t c = 0;
        for (int64_t k = 0; k < I; k++) c += state[l * I + k] == 1;
        if (seen[l] != 3 || c == 0 || (!mk->uneven_structs && l > 0 && c != counts[0])) ok = false;
        counts[l] = c;
    }
    for (int l = 0; l < L && ok; l++) /* block l's kept structures after the blocks before it's */
        for (int64_t k = 0; k < I; k++)
            if (state[l * I + k] == 1) kept[total++] = (int32_t)k;
    free(state);
    free(seen);
    return ok ? total : -1;
}

/* The number of values of dataset `name` in f, or -1 when it is not a readable dataset. */
static int64_t dataset_points(hid_t f, const char *name) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = d < 0 ? -1 : H5Dget_space(d);
    const int64_t n = sp >= 0 ? (int64_t)H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    return n;
}

gp_status gp_mask_disagreement(const char *const *paths, int n, double *frac, gp_err *err) {
    memset(frac, 0, (size_t)n * (size_t)n * sizeof(double));
    hid_t *f = gp_malloc((size_t)(n ? n : 1) * sizeof(hid_t));
    gp_status rc = GP_OK;
    for (int i = 0; i < n; i++) f[i] = -1;
    for (int i = 0; i < n && !rc; i++)
        if ((f[i] = gp_h5_open_quiet(paths[i])) < 0 || H5Lexists(f[i], GP_MASK_KEEP, H5P_DEFAULT) <= 0)
            rc = gp_errf(err, GP_EINPUT, "%s: not a mask file (no /%s)", paths[i], GP_MASK_KEEP);
    /* the first file's tensors, by name; every other file must have the same */
    H5G_info_t info = {0};
    hid_t g = rc ? -1 : H5Gopen2(f[0], GP_MASK_KEEP, H5P_DEFAULT);
    if (!rc && (g < 0 || H5Gget_info(g, &info) < 0)) rc = gp_errf(err, GP_EINPUT, "%s: /%s is not a group", paths[0], GP_MASK_KEEP);
    uint8_t *bytes = NULL, **bits = gp_calloc((size_t)(n ? n : 1), sizeof(uint8_t *));
    uint64_t *differ = gp_calloc((size_t)(n ? n * n : 1), sizeof(uint64_t));
    int64_t total = 0, cap = 0;
    for (hsize_t t = 0; !rc && t < info.nlinks; t++) {
        char link[256], name[320];
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, t, link, sizeof link, H5P_DEFAULT) < 0 ||
            strlen(link) >= sizeof link - 1) {
            rc = gp_errf(err, GP_EINPUT, "%s: entry %llu of /%s has no readable name", paths[0], (unsigned long long)t,
                         GP_MASK_KEEP);
            break;
        }
        snprintf(name, sizeof name, "%s/%s", GP_MASK_KEEP, link);
        const int64_t numel = dataset_points(f[0], name);
        if (numel > cap) { /* the buffers for the largest tensor so far */
            cap = numel;
            bytes = gp_realloc(bytes, (size_t)cap);
            for (int i = 0; i < n; i++) bits[i] = gp_realloc(bits[i], (size_t)(cap + 7) / 8);
        }
        for (int i = 0; i < n && !rc; i++) {
            hid_t d = dataset_points(f[i], name) == numel && numel > 0 ? H5Dopen2(f[i], name, H5P_DEFAULT) : -1;
            const bool ok = d >= 0 && H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes) >= 0;
            if (d >= 0) H5Dclose(d);
            if (!ok) {
                rc = gp_errf(err, GP_EINPUT, "%s: no readable %s of %lld values, as %s has: the masks select other tensors",
                             paths[i], name, (long long)numel, paths[0]);
                break;
            }
            memset(bits[i], 0, (size_t)(numel + 7) / 8);
            for (int64_t k = 0; k < numel; k++)
                if (bytes[k]) bits[i][k >> 3] |= (uint8_t)(1u << (k & 7));
        }
        if (rc) break;
        total += numel;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) {
                uint64_t c = 0;
                for (int64_t b = 0; b < (numel + 7) / 8; b++) c += (uint64_t)__builtin_popcount(bits[i][b] ^ bits[j][b]);
                differ[i * n + j] += c;
            }
    }
    for (int i = 0; i < n && !rc; i++)
        for (int j = i + 1; j < n; j++)
            frac[i * n + j] = frac[j * n + i] = total ? (double)differ[i * n + j] / (double)total : 0.0;
    if (g >= 0) H5Gclose(g);
    for (int i = 0; i < n; i++) {
        if (f[i] >= 0) H5Fclose(f[i]);
        free(bits[i]);
    }
    free(f), free(bits), free(bytes), free(differ);
    return rc;
}

/* Whether mask file path records these disagreements already (a rerun of the same masks): then it is
 * left as it is, unopened for writing. */
static bool disagreement_recorded(const char *path, const char *const *tags, const double *frac, int n, int self) {
    hid_t f = gp_h5_open_quiet(path);
    if (f < 0) return false;
    bool same = true;
    for (int j = 0; j < n && same; j++) {
        if (j == self) continue;
        char name[256];
        double v;
        snprintf(name, sizeof name, GP_MASK_ATTR_DISAGREEMENT "%s", tags[j]);
        same = H5Aexists(f, name) > 0 && !gp_h5_read_attr_double(f, name, &v) && v == frac[j];
    }
    H5Fclose(f);
    return same;
}

gp_status gp_mask_file_set_disagreement(const char *const *paths, const char *const *tags, const double *frac, int n,
                                        int self, gp_err *err) {
    if (disagreement_recorded(paths[self], tags, frac, n, self)) return GP_OK;
    char *tmp = gp_tmp_path(paths[self]);
    gp_status rc = gp_copy_file(paths[self], tmp, err);
    free(tmp);
    hid_t f = rc ? -1 : gp_h5_open_tmp(paths[self]);
    for (int j = 0; j < n && f >= 0; j++) {
        if (j == self) continue;
        char name[256];
        snprintf(name, sizeof name, GP_MASK_ATTR_DISAGREEMENT "%s", tags[j]);
        if (H5Aexists(f, name) > 0) H5Adelete(f, name);
        gp_h5_attr_double(f, name, frac[j]);
    }
    if (!rc) rc = gp_h5_close_commit(f, paths[self], err);
    return rc;
}

void gp_mask_free(gp_mask *mk) {
    if (mk->keep)
        for (int i = 0; i < mk->n; i++) free(mk->keep[i]);
    free(mk->keep);
    free(mk->param);
    free(mk->numel);
    free(mk->rows);
    memset(mk, 0, sizeof *mk);
}
