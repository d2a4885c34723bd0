/* checkpoint.c — checkpoint files: commit with rotation, the `latest` marker, checksums, resume
 * (see checkpoint.h). */
#include "gaprune/checkpoint.h"

#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/log.h"

/* ---- checksums ------------------------------------------------------------------------------- */

char *gp_checkpoint_prev_path(const char *path) {
    const size_t n = strlen(path);
    const size_t stem = n > 3 && !strcmp(path + n - 3, ".h5") ? n - 3 : n;
    char *p = gp_malloc(stem + 9);
    memcpy(p, path, stem);
    memcpy(p + stem, ".prev.h5", 9);
    return p;
}

/* zlib's crc32 takes at most 4 GiB at once (crc32_z aside, older zlibs have only this) */
static uint32_t crc_bytes(uint32_t crc, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n > 0) {
        const size_t k = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
        crc = (uint32_t)crc32(crc, b, (uInt)k);
        b += k, n -= k;
    }
    return crc;
}

void gp_checkpoint_set_crc(hid_t f, const char *name, uint32_t crc) {
    hid_t d = GP_H5(H5Dopen2(f, name, H5P_DEFAULT), "opening %s", name);
    gp_h5_attr_int(d, GP_CHECKPOINT_ATTR_CRC, crc);
    H5Dclose(d);
}

void gp_checkpoint_write(hid_t f, const char *name, hid_t file_type, hid_t mem_type, const void *data, size_t n,
                         const char *description, const char *units) {
    gp_h5_write_flat(f, name, file_type, mem_type, data, n, description, units);
    gp_checkpoint_set_crc(f, name, crc_bytes(0, data, n * H5Tget_size(mem_type)));
}

uint32_t gp_checkpoint_crc_ranks(const void *mine, size_t bytes) {
    uint64_t me[2] = {crc_bytes(0, mine, bytes), bytes};
    const int P = gp_nranks();
    if (P == 1) return (uint32_t)me[0];
    uint64_t *all = gp_malloc((size_t)P * 2 * sizeof(uint64_t));
    GP_MPI(MPI_Allgather(me, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, MPI_COMM_WORLD));
    uint32_t crc = 0;
    for (int q = 0; q < P; q++) crc = (uint32_t)crc32_combine(crc, (uLong)all[2 * q], (z_off_t)all[2 * q + 1]);
    free(all);
    return crc;
}

/* The root datasets of f in name order (malloc'd names), as checksum and seal list them. */
typedef struct {
    char **name;
    int n;
} name_list;

static herr_t list_dataset(hid_t g, const char *name, const H5L_info_t *info, void *vlist) {
    (void)info;
    name_list *l = vlist;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0) return 0;
    if (H5Iget_type(o) == H5I_DATASET) {
        l->name = gp_realloc(l->name, (size_t)(l->n + 1) * sizeof(char *));
        l->name[l->n++] = gp_strdup(name);
    }
    H5Oclose(o);
    return 0;
}

static void list_free(name_list *l) {
    for (int i = 0; i < l->n; i++) free(l->name[i]);
    free(l->name);
}

static bool read_crc(hid_t f, const char *name, uint32_t *crc) {
    int64_t v = -1;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return false;
    const bool ok = !gp_h5_read_attr_int(d, GP_CHECKPOINT_ATTR_CRC, &v) && v >= 0 && v <= UINT32_MAX;
    H5Dclose(d);
    *crc = (uint32_t)v;
    return ok;
}

/* The checksum of f's header: settings hash, step, every root dataset's name and crc32, in name
 * order. False (why says what is missing) when a part of it is not there. */
static bool header_checksum(hid_t f, name_list *l, uint32_t *sum, const char **why) {
    *why = NULL;
    int64_t step = -1;
    char *settings = gp_h5_read_attr_str(f, GP_CHECKPOINT_ATTR_SETTINGS);
    if (!settings || gp_h5_read_attr_int(f, GP_CHECKPOINT_ATTR_STEP, &step)) *why = "no settings hash or step";
    hsize_t at = 0;
    if (!*why && H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, &at, list_dataset, l) < 0) *why = "its datasets cannot be listed";
    char line[512];
    uint32_t c = 0;
    if (!*why) {
        const int k = snprintf(line, sizeof line, "%s\n%lld\n", settings, (long long)step);
        c = crc_bytes(c, line, (size_t)k);
    }
    for (int i = 0; i < l->n && !*why; i++) {
        uint32_t dc;
        if (!read_crc(f, l->name[i], &dc)) {
            *why = "a dataset has no checksum";
            break;
        }
        const int k = snprintf(line, sizeof line, "%s %u\n", l->name[i], (unsigned)dc);
        c = crc_bytes(c, line, (size_t)k);
    }
    free(settings);
    *sum = c;
    return !*why;
}

void gp_checkpoint_seal(hid_t f) {
    name_list l = {0};
    uint32_t sum;
    const char *why;
    const bool ok = header_checksum(f, &l, &sum, &why);
    /* a refused write leaves datasets unreadable: the commit reports that, not this */
    GP_CHECK(ok || gp_h5_io_failed(), "sealing a checkpoint: %s", why);
    list_free(&l);
    gp_h5_attr_int(f, GP_CHECKPOINT_ATTR_CHECKSUM, sum);
}

/* CRC-32 of elements [e0, e1) of the 1-D dataset d (element size es), read in blocks. False when
 * a read fails. */
static bool crc_range(hid_t d, hid_t mem_type, size_t es, hsize_t e0, hsize_t e1, uint32_t *crc) {
    const hsize_t block = ((hsize_t)1 << 22) / es + 1;
    void *buf = gp_malloc((size_t)(block * es));
    hid_t fs = H5Dget_space(d);
    bool ok = fs >= 0;
    uint32_t c = 0;
    for (hsize_t a = e0; ok && a < e1; a += block) {
        hsize_t cnt = e1 - a < block ? e1 - a : block;
        hid_t ms = H5Screate_simple(1, &cnt, NULL);
        ok = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &a, NULL, &cnt, NULL) >= 0 &&
             H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, buf) >= 0;
        H5Sclose(ms);
        if (ok) c = crc_bytes(c, buf, (size_t)(cnt * es));
    }
    if (fs >= 0) H5Sclose(fs);
    free(buf);
    *crc = c;
    return ok;
}

/* CRC-32 of part r of P of the 1-D dataset name (its elements [n·r/P, n·(r+1)/P), in its native
 * type) and that part's size in bytes. False when it is not a 1-D dataset or a read fails. */
static bool crc_part(hid_t f, const char *name, int r, int P, uint32_t *crc, uint64_t *bytes) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), t = d >= 0 ? H5Dget_type(d) : -1;
    hid_t nt = t >= 0 ? H5Tget_native_type(t, H5T_DIR_ASCEND) : -1;
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    const hssize_t n = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 ? H5Sget_simple_extent_npoints(sp) : -1;
    const size_t es = nt >= 0 ? H5Tget_size(nt) : 0;
    const hsize_t e0 = n < 0 ? 0 : (hsize_t)n * (hsize_t)r / (hsize_t)P, e1 = n < 0 ? 0 : (hsize_t)n * (hsize_t)(r + 1) / (hsize_t)P;
    const bool ok = n >= 0 && es && crc_range(d, nt, es, e0, e1, crc);
    *bytes = (e1 - e0) * es;
    if (sp >= 0) H5Sclose(sp);
    if (nt >= 0) H5Tclose(nt);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    return ok;
}

#define RESEAL_MAX_POINTS ((hssize_t)1 << 26)

bool gp_checkpoint_reseal(hid_t f) {
    name_list l = {0};
    hsize_t at = 0;
    bool ok = H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, &at, list_dataset, &l) >= 0;
    for (int i = 0; i < l.n && ok; i++) {
        uint32_t c;
        uint64_t bytes;
        /* a dataset verify cannot read keeps its old checksum, and so does one of more than
         * RESEAL_MAX_POINTS values (an edit that declares billions of them would take minutes to
         * read): the file stays refused */
        hid_t d = H5Dopen2(f, l.name[i], H5P_DEFAULT), sp = d >= 0 ? H5Dget_space(d) : -1;
        const hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        if (sp >= 0) H5Sclose(sp);
        if (d >= 0) H5Dclose(d);
        if (n >= 0 && n <= RESEAL_MAX_POINTS && crc_part(f, l.name[i], 0, 1, &c, &bytes)) gp_checkpoint_set_crc(f, l.name[i], c);
    }
    list_free(&l);
    name_list again = {0};
    uint32_t sum;
    const char *why;
    ok = ok && header_checksum(f, &again, &sum, &why);
    list_free(&again);
    if (ok) gp_h5_attr_int(f, GP_CHECKPOINT_ATTR_CHECKSUM, sum);
    return ok;
}

/* Why f cannot be trusted (a static text), or NULL when its checksums hold. shared: every rank
 * calls it for the same file (collective), each reads 1/P of every dataset, and all return the
 * same verdict; else this rank alone reads all of it. */
static const char *verify(hid_t f, bool shared) {
    const int P = shared ? gp_nranks() : 1, r = shared ? gp_rank() : 0;
    name_list l = {0};
    uint32_t sum = 0;
    int64_t stored = -1;
    const char *why = NULL;
    if (gp_h5_read_attr_int(f, GP_CHECKPOINT_ATTR_CHECKSUM, &stored))
        why = "it has no checksum (written before gaprune checked its checkpoints?)";
    else if (header_checksum(f, &l, &sum, &why) && (int64_t)sum != stored)
        why = "its header does not match its checksum";
    /* shared: the same datasets on every rank, or none of them is read */
    if (shared && (gp_allreduce_max_int(why != NULL) || gp_allreduce_max_int(l.n) != -gp_allreduce_max_int(-l.n)))
        why = why ? why : "its ranks read different headers";
    uint64_t *mine = gp_calloc((size_t)(l.n ? 2 * l.n : 1), sizeof(uint64_t));
    uint32_t *want = gp_calloc((size_t)(l.n ? l.n : 1), sizeof(uint32_t));
    int bad = why != NULL;
    for (int i = 0; i < l.n && !why; i++) {
        uint32_t c = 0;
        uint64_t bytes = 0;
        if (!read_crc(f, l.name[i], &want[i]) || !crc_part(f, l.name[i], r, P, &c, &bytes)) bad = 1;
        mine[2 * i] = c, mine[2 * i + 1] = bytes;
    }
    if (shared) bad = gp_allreduce_max_int(bad);
    if (bad && !why) why = "a dataset cannot be read";
    if (!why) {
        uint64_t *all = mine;
        if (P > 1) {
            all = gp_malloc((size_t)(2 * l.n * P) * sizeof(uint64_t));
            GP_MPI(MPI_Allgather(mine, 2 * l.n, MPI_UINT64_T, all, 2 * l.n, MPI_UINT64_T, MPI_COMM_WORLD));
        }
        for (int i = 0; i < l.n && !why; i++) {
            uint32_t c = 0;
            for (int q = 0; q < P; q++)
                c = (uint32_t)crc32_combine(c, (uLong)all[2 * (q * l.n + i)], (z_off_t)all[2 * (q * l.n + i) + 1]);
            if (c != want[i]) why = "its data do not match their checksums";
        }
        if (all != mine) free(all);
    }
    free(mine);
    free(want);
    list_free(&l);
    return why;
}

/* ---- writing ---------------------------------------------------------------------------------- */

gp_status gp_checkpoint_commit(hid_t f, const char *path, const char *prev, gp_err *err) {
    if (f >= 0) GP_H5(H5Fclose(f), "closing %s.tmp", path); /* the close flushes: it may fail to write */
    char *tmp = gp_tmp_path(path);
    /* Once every rank has its new file: rotate. A kill anywhere leaves, for the step `latest`
     * names, a complete file on every rank under either name; a refused write on any rank (a
     * failed create included, f < 0 then) leaves every rank's files as they were. */
    gp_status rc = gp_h5_io_status(path, err);
    const int refused = !rc && f >= 0 ? gp_write_refused(path) : 0;
    if (refused) rc = gp_write_error(err, path, strerror(refused));
    if ((rc = gp_agree(rc, err))) {
        remove(tmp); /* the new files, whole or not, only take room now */
    } else if (f >= 0) {
        if (prev && gp_file_exists(path)) rename(path, prev);
        rc = gp_commit_tmp(tmp, path, err);
    }
    free(tmp);
    return gp_agree(rc, err);
}

gp_status gp_checkpoint_mark_latest(const char *dir, int64_t step, const char *settings, int nranks, gp_err *err) {
    gp_status rc = GP_OK;
    if (gp_rank() == 0) {
        char *latest = gp_path_join(dir, "latest");
        FILE *lf = gp_file_create(latest, err);
        if (!lf) {
            rc = GP_EINPUT;
        } else {
            fprintf(lf, "step %lld\nsettings %s\nranks %d\n", (long long)step, settings, nranks);
            rc = gp_file_commit(lf, latest, err);
        }
        free(latest);
    }
    return gp_agree(rc, err);
}

int64_t gp_checkpoint_latest(const char *dir, const char *settings, int nranks) {
    int64_t step = 0;
    if (gp_rank() == 0) {
        char *latest = gp_path_join(dir, "latest");
        FILE *f = fopen(latest, "r");
        if (f) {
            long long st = -1;
            int ranks = -1;
            char hash[80] = "";
            if (fscanf(f, "step %lld\nsettings %79s\nranks %d", &st, hash, &ranks) == 3) {
                if (strcmp(hash, settings) != 0)
                    gp_warn("%s: checkpoints from other settings; starting over", latest);
                else if (ranks != nranks)
                    gp_warn("%s: checkpoints from %d ranks, this run has %d; starting over", latest, ranks, nranks);
                else
                    step = st;
            }
            fclose(f);
        }
        free(latest);
    }
    gp_bcast_bytes(&step, sizeof step, 0);
    return step;
}

/* ---- resuming --------------------------------------------------------------------------------- */

/* The step of an undamaged file at path made with settings, or -1 (a warning from this rank says
 * why when the file is there but damaged). */
static int64_t usable_step(const char *path, const char *settings) {
    if (!path || !gp_file_exists(path)) return -1;
    hid_t f = gp_h5_open_quiet(path);
    if (f < 0) {
        gp_warn_here("%s: not an HDF5 file (damaged?); not resuming from it", path);
        return -1;
    }
    const char *why = verify(f, false);
    int64_t step = -1;
    char *h = why ? NULL : gp_h5_read_attr_str(f, GP_CHECKPOINT_ATTR_SETTINGS);
    if (why) gp_warn_here("%s: damaged: %s; not resuming from it", path, why);
    else if (h && !strcmp(h, settings)) gp_h5_read_attr_int(f, GP_CHECKPOINT_ATTR_STEP, &step);
    free(h);
    H5Fclose(f);
    return step > 0 ? step : -1;
}

int64_t gp_checkpoint_resume(const char *dir, const char *path, const char *prev, const char *settings, int nranks,
                             gp_checkpoint_load_fn load, void *ctx) {
    const int64_t latest = gp_checkpoint_latest(dir, settings, nranks);
    if (latest <= 0) return 0;
    int64_t have[2] = {usable_step(path, settings), usable_step(prev, settings)};
    for (int k = 0; k < 2; k++)
        if (have[k] > latest) have[k] = -1; /* written, but not on every rank: `latest` was not moved */
    /* the newest step of which every rank has a file */
    const int P = gp_nranks();
    int64_t *all = gp_malloc((size_t)(2 * P) * sizeof(int64_t));
    if (P > 1) GP_MPI(MPI_Allgather(have, 2, MPI_INT64_T, all, 2, MPI_INT64_T, MPI_COMM_WORLD));
    else all[0] = have[0], all[1] = have[1];
    int64_t best = 0;
    for (int k = 0; k < 2; k++) {
        const int64_t s = all[k]; /* rank 0's candidates; a step every rank has is among them */
        bool everywhere = s > best;
        for (int q = 1; q < P && everywhere; q++) everywhere = all[2 * q] == s || all[2 * q + 1] == s;
        if (everywhere) best = s;
    }
    free(all);
    /* this rank's file of that step; when both are of it (a stop right after a checkpoint writes
     * the step twice) and the newer fails to load, the other */
    gp_status rc = GP_EINPUT;
    for (int k = 0; k < 2 && best > 0 && rc != GP_OK; k++) {
        if (have[k] != best) continue;
        hid_t f = gp_h5_open_quiet(k == 0 ? path : prev);
        rc = f >= 0 ? load(f, ctx) : GP_EINPUT;
        if (f >= 0) H5Fclose(f);
    }
    if (gp_allreduce_max_int(rc != GP_OK)) {
        gp_warn("%s: the checkpoints of step %lld are incomplete; starting over", dir, (long long)(best ? best : latest));
        return 0;
    }
    if (best < latest)
        gp_warn("%s: resuming from step %lld: not every rank has an undamaged checkpoint of step %lld, the newest",
                dir, (long long)best, (long long)latest);
    return best;
}

gp_status gp_checkpoint_load_shared(const char *path, const char *prev, const char *settings, gp_checkpoint_load_fn load,
                                    void *ctx) {
    const char *files[2] = {path, prev};
    for (int k = 0; k < 2; k++) {
        /* rank 0's view of what is there: every rank then takes the same turns */
        if (!files[k] || !gp_allreduce_max_int(gp_rank() == 0 && gp_file_exists(files[k]))) continue;
        hid_t f = gp_h5_open_quiet(files[k]);
        const char *why = gp_allreduce_max_int(f < 0) ? "it cannot be opened as HDF5" : verify(f, true);
        if (why) {
            gp_warn("%s: damaged: %s; not resuming from it", files[k], why);
            if (f >= 0) H5Fclose(f);
            continue;
        }
        char *h = gp_h5_read_attr_str(f, GP_CHECKPOINT_ATTR_SETTINGS);
        const bool same = h && !strcmp(h, settings);
        free(h);
        if (!same) { /* the run it came from was another; so was the one before it */
            gp_warn("%s is from other settings; starting over", files[k]);
            H5Fclose(f);
            return GP_EINPUT;
        }
        const gp_status rc = load(f, ctx);
        H5Fclose(f);
        if (!gp_allreduce_max_int(rc != GP_OK)) return GP_OK;
    }
    return GP_EINPUT;
}

void gp_checkpoint_remove(const char *dir, const char *path, const char *prev) {
    char *tmp = gp_tmp_path(path);
    remove(path);
    if (prev) remove(prev);
    remove(tmp);
    free(tmp);
    gp_barrier();
    if (gp_rank() == 0) {
        char *latest = gp_path_join(dir, "latest");
        remove(latest);
        free(latest);
        remove(dir); /* only when empty */
    }
}
