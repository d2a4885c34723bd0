/* h5.c — HDF5 helpers (see h5.h). */
#include "gaprune/h5.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gaprune/fs.h"

/* ---- writes the system refused -------------------------------------------------------------- */

/* What the first refused write since the last gp_h5_io_status said ("" when none). Process-wide:
 * HDF5 reports through a callback that has no other way to reach the writer. */
static char g_io_error[256];

typedef struct {
    char reason[256];
    bool found;
} io_scan;

/* One frame of HDF5's error stack, innermost first: a file driver (sec2, MPI-IO) that failed to
 * write, extend, truncate, create or lock a file for a reason of the system's (sec2 gives
 * errno and its text; MPI-IO an MPI error string, or just a short write). Reads are left to
 * their callers. */
static herr_t scan_frame(unsigned n, const H5E_error2_t *e, void *vctx) {
    (void)n;
    io_scan *sc = vctx;
    if (sc->found || !e->func_name || strncmp(e->func_name, "H5FD", 4) != 0 || strstr(e->func_name, "read") ||
        e->min_num == H5E_READERROR)
        return 0;
    const char *d = e->desc ? e->desc : "";
    const bool mpi = e->min_num == H5E_MPI || e->min_num == H5E_MPIERRSTR;
    if (!strstr(d, "errno = ") && e->maj_num != H5E_IO && !mpi) return 0;
    sc->found = true;
    const char *m = strstr(d, "error message = '");
    if (m) { /* sec2: errno's text, between the quotes */
        m += strlen("error message = '");
        snprintf(sc->reason, sizeof sc->reason, "%.*s", (int)strcspn(m, "'"), m);
    } else if (e->min_num == H5E_MPIERRSTR) {
        snprintf(sc->reason, sizeof sc->reason, "%s", d);
    }
    return 0;
}

static void io_refused(const char *reason) {
    if (!*g_io_error) snprintf(g_io_error, sizeof g_io_error, "%s", reason);
}

/* HDF5's automatic error report, gaprune's: a refused write is recorded for the file's commit
 * (and not printed: that message names the file); anything else prints as HDF5's default does,
 * unless a refused write came first (then it is a consequence, and only noise). */
static herr_t on_h5_error(hid_t estack, void *unused) {
    (void)unused;
    const int saved = errno; /* MPI-IO's short write leaves only this behind */
    io_scan sc = {.found = false};
    H5Ewalk2(estack, H5E_WALK_DOWNWARD, scan_frame, &sc);
    if (sc.found && !*sc.reason) {
        const bool disk = saved == ENOSPC || saved == EDQUOT || saved == EIO || saved == EFBIG || saved == EROFS;
        snprintf(sc.reason, sizeof sc.reason, "%s", disk ? strerror(saved) : "a write was cut short; is the disk full?");
    }
    if (sc.found) io_refused(sc.reason);
    if (!sc.found && !*g_io_error) H5Eprint2(estack, stderr);
    return 0;
}

void gp_h5_watch_writes(void) {
    static bool watching;
    if (watching) return;
    H5Eset_auto2(H5E_DEFAULT, on_h5_error, NULL);
    watching = true;
}

bool gp_h5_io_failed(void) { return *g_io_error != '\0'; }

gp_status gp_h5_io_status(const char *path, gp_err *err) {
    if (!*g_io_error) return GP_OK;
    gp_write_error(err, path, g_io_error);
    *g_io_error = '\0';
    return GP_EINPUT;
}

/* ---- the file driver of the files written serially ------------------------------------------ */

/* HDF5 does not survive a write that fails under it: a failed flush leaves the file half closed,
 * and the library's own shutdown then crashes on it. So the files gaprune writes serially go
 * through this driver, sec2's plain POSIX I/O but for one thing: a write (or the extension of
 * the file) the system refuses is recorded for the file's commit (io_refused) and told to HDF5
 * as done, and later writes to that file are dropped. HDF5 then finishes its calls and closes
 * the file normally; the commit removes it. The files are byte for byte what sec2 writes
 * (no driver information in the superblock), and are read back with the default driver. */
typedef struct {
    H5FD_t pub; /* first: HDF5 sees this part */
    int fd;
    haddr_t eoa, eof;
    dev_t dev;
    ino_t ino;
    bool refused; /* a write failed: drop the rest */
} gp_fd;

static H5FD_t *gp_fd_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
    (void)fapl, (void)maxaddr;
    int o = flags & H5F_ACC_RDWR ? O_RDWR : O_RDONLY;
    if (flags & H5F_ACC_TRUNC) o |= O_TRUNC;
    if (flags & H5F_ACC_CREAT) o |= O_CREAT;
    if (flags & H5F_ACC_EXCL) o |= O_EXCL;
    const int fd = open(name, o, 0666);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        /* HDF5 first tries whether a file to create exists already: only the creation counts */
        if (flags & H5F_ACC_CREAT) {
            char reason[sizeof g_io_error];
            snprintf(reason, sizeof reason, "cannot create %s: %s", name, strerror(errno));
            io_refused(reason);
        }
        if (fd >= 0) close(fd);
        return NULL;
    }
    gp_fd *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return NULL;
    }
    f->fd = fd;
    f->eof = (haddr_t)st.st_size;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    return &f->pub;
}

static herr_t gp_fd_close(H5FD_t *file) {
    gp_fd *f = (gp_fd *)file;
    const int rc = close(f->fd);
    if (rc != 0) io_refused(strerror(errno)); /* NFS reports a failed write back here */
    free(f);
    return 0;
}

static int gp_fd_cmp(const H5FD_t *a, const H5FD_t *b) {
    const gp_fd *x = (const gp_fd *)a, *y = (const gp_fd *)b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    return 0;
}

static herr_t gp_fd_query(const H5FD_t *file, unsigned long *flags) {
    (void)file;
    /* sec2's: metadata aggregated and accumulated, data sieving, small raw data aggregated */
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_POSIX_COMPAT_HANDLE | H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
    return 0;
}

static haddr_t gp_fd_get_eoa(const H5FD_t *file, H5FD_mem_t type) {
    (void)type;
    return ((const gp_fd *)file)->eoa;
}

static herr_t gp_fd_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr) {
    (void)type;
    ((gp_fd *)file)->eoa = addr;
    return 0;
}

static haddr_t gp_fd_get_eof(const H5FD_t *file, H5FD_mem_t type) {
    (void)type;
    return ((const gp_fd *)file)->eof;
}

static herr_t gp_fd_get_handle(H5FD_t *file, hid_t fapl, void **handle) {
    (void)fapl;
    *handle = &((gp_fd *)file)->fd;
    return 0;
}

static herr_t gp_fd_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf) {
    (void)type, (void)dxpl;
    gp_fd *f = (gp_fd *)file;
    if (addr + size > f->eoa) return -1;
    char *p = buf;
    while (size > 0) { /* past the end of the file (or a dropped write): zeros, as sec2 reads */
        const ssize_t n = pread(f->fd, p, size, (off_t)addr);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) {
            memset(p, 0, size);
            break;
        }
        p += n, addr += (haddr_t)n, size -= (size_t)n;
    }
    return 0;
}

static herr_t gp_fd_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, const void *buf) {
    (void)type, (void)dxpl;
    gp_fd *f = (gp_fd *)file;
    if (addr + size > f->eoa) return -1; /* a bug of HDF5's, not the disk */
    const char *p = buf;
    while (size > 0 && !f->refused) {
        const ssize_t n = pwrite(f->fd, p, size, (off_t)addr);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { /* told to HDF5 as written: see gp_fd */
            io_refused(n < 0 ? strerror(errno) : "a write was cut short");
            f->refused = true;
            break;
        }
        p += n, addr += (haddr_t)n, size -= (size_t)n;
        if (addr > f->eof) f->eof = addr;
    }
    return 0;
}

static herr_t gp_fd_truncate(H5FD_t *file, hid_t dxpl, hbool_t closing) {
    (void)dxpl, (void)closing;
    gp_fd *f = (gp_fd *)file;
    if (f->eoa == f->eof || f->refused) return 0;
    if (ftruncate(f->fd, (off_t)f->eoa) != 0) {
        io_refused(strerror(errno));
        f->refused = true;
        return 0;
    }
    f->eof = f->eoa;
    return 0;
}

static const H5FD_class_t k_gp_fd = {
    .name = "gaprune-posix",
    .maxaddr = ((haddr_t)1 << (8 * sizeof(off_t) - 1)) - 1,
    .fc_degree = H5F_CLOSE_WEAK,
    .open = gp_fd_open,
    .close = gp_fd_close,
    .cmp = gp_fd_cmp,
    .query = gp_fd_query,
    .get_eoa = gp_fd_get_eoa,
    .set_eoa = gp_fd_set_eoa,
    .get_eof = gp_fd_get_eof,
    .get_handle = gp_fd_get_handle,
    .read = gp_fd_read,
    .write = gp_fd_write,
    .truncate = gp_fd_truncate,
    .fl_map = H5FD_FLMAP_DICHOTOMY,
};

hid_t gp_h5_write_fapl(void) {
    static hid_t fapl = -1;
    if (fapl >= 0) return fapl;
    const hid_t drv = GP_H5(H5FDregister(&k_gp_fd), "registering the file driver");
    fapl = GP_H5(H5Pcreate(H5P_FILE_ACCESS), "fapl");
    GP_H5(H5Pset_driver(fapl, drv, NULL), "file driver");
    return fapl;
}

/* ---- files ------------------------------------------------------------------------------------ */

hid_t gp_h5_create_tmp(const char *path) {
    gp_h5_watch_writes();
    char *tmp = gp_tmp_path(path);
    hid_t f = GP_H5(H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, gp_h5_write_fapl()), "creating %s", tmp);
    free(tmp);
    return f;
}

hid_t gp_h5_open_tmp(const char *path) {
    gp_h5_watch_writes();
    char *tmp = gp_tmp_path(path);
    const hid_t fapl = gp_h5_write_fapl();
    H5E_auto2_t fn;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(tmp, H5F_ACC_RDWR, fapl);
    H5Eset_auto2(H5E_DEFAULT, fn, data);
    /* the file was just written whole: what cannot read it back is a write that did not land
     * (MPI-IO does not always say so) */
    if (f < 0) io_refused("it cannot be read back: a write did not land (is the disk full?)");
    free(tmp);
    return f;
}

gp_status gp_h5_close_commit(hid_t file, const char *path, gp_err *err) {
    if (file >= 0) GP_H5(H5Fclose(file), "closing %s.tmp", path); /* the close flushes: it may fail to write */
    char *tmp = gp_tmp_path(path);
    gp_status rc = gp_h5_io_status(path, err);
    const int refused = rc ? 0 : gp_write_refused(path);
    if (refused) rc = gp_write_error(err, path, strerror(refused));
    if (rc) remove(tmp);
    else rc = gp_commit_tmp(tmp, path, err);
    free(tmp);
    return rc;
}

void gp_h5_attr_str(hid_t obj, const char *name, const char *value) {
    hid_t t = GP_H5(H5Tcopy(H5T_C_S1), "type");
    GP_H5(H5Tset_size(t, strlen(value) + 1), "type size");
    GP_H5(H5Tset_cset(t, H5T_CSET_UTF8), "cset");
    hid_t sp = GP_H5(H5Screate(H5S_SCALAR), "space");
    if (H5Aexists(obj, name) > 0) GP_H5(H5Adelete(obj, name), "deleting attribute %s", name);
    hid_t a = GP_H5(H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT), "attribute %s", name);
    GP_H5(H5Awrite(a, t, value), "writing attribute %s", name);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void attr_scalar(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *v) {
    hid_t sp = GP_H5(H5Screate(H5S_SCALAR), "space");
    if (H5Aexists(obj, name) > 0) GP_H5(H5Adelete(obj, name), "deleting attribute %s", name);
    hid_t a = GP_H5(H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT), "attribute %s", name);
    GP_H5(H5Awrite(a, mem_type, v), "writing attribute %s", name);
    H5Aclose(a);
    H5Sclose(sp);
}

void gp_h5_attr_int(hid_t obj, const char *name, int64_t value) {
    attr_scalar(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void gp_h5_attr_double(hid_t obj, const char *name, double value) {
    attr_scalar(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

void gp_h5_describe(hid_t obj, const char *description, const char *units) {
    gp_h5_attr_str(obj, "description", description);
    gp_h5_attr_str(obj, "units", units);
}

hid_t gp_h5_dataset(hid_t loc, const char *name, hid_t file_type, int ndim, const hsize_t *dims,
                    const char *description, const char *units) {
    GP_CHECK(ndim == 1 || ndim == 2, "dataset %s: rank %d", name, ndim);
    hid_t sp = GP_H5(H5Screate_simple(ndim, dims, NULL), "space for %s", name);
    hid_t dcpl = GP_H5(H5Pcreate(H5P_DATASET_CREATE), "dcpl");
    hsize_t total = 1;
    for (int i = 0; i < ndim; i++) total *= dims[i];
    if (total > 0) {
        /* About 1 MiB per chunk, whole rows. */
        hsize_t chunk[2];
        hsize_t row = ndim == 2 ? (dims[1] ? dims[1] : 1) : 1;
        hsize_t rows = ((hsize_t)1 << 20) / (row * H5Tget_size(file_type));
        if (rows < 1) rows = 1;
        if (rows > dims[0]) rows = dims[0];
        chunk[0] = rows;
        if (ndim == 2) chunk[1] = dims[1] ? dims[1] : 1;
        GP_H5(H5Pset_chunk(dcpl, ndim, chunk), "chunk %s", name);
        GP_H5(H5Pset_shuffle(dcpl), "shuffle %s", name);
        GP_H5(H5Pset_deflate(dcpl, 4), "deflate %s", name);
    }
    hid_t lcpl = GP_H5(H5Pcreate(H5P_LINK_CREATE), "lcpl");
    GP_H5(H5Pset_create_intermediate_group(lcpl, 1), "lcpl");
    hid_t ds = GP_H5(H5Dcreate2(loc, name, file_type, sp, lcpl, dcpl, H5P_DEFAULT), "creating dataset %s", name);
    gp_h5_describe(ds, description, units);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return ds;
}

hid_t gp_h5_dataset_f32(hid_t loc, const char *name, int ndim, const hsize_t *dims, const char *description,
                        const char *units) {
    return gp_h5_dataset(loc, name, H5T_IEEE_F32LE, ndim, dims, description, units);
}

void gp_h5_write_rows(hid_t dset, hid_t mem_type, hsize_t row0, hsize_t nrows, hsize_t cols, const void *data) {
    if (nrows == 0) return;
    hid_t fs = GP_H5(H5Dget_space(dset), "space");
    int nd = H5Sget_simple_extent_ndims(fs);
    hsize_t start[2] = {row0, 0}, count[2] = {nrows, cols};
    GP_H5(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL), "hyperslab");
    hid_t ms = GP_H5(H5Screate_simple(nd, count, NULL), "memspace");
    GP_H5(H5Dwrite(dset, mem_type, ms, fs, H5P_DEFAULT, data), "writing rows %llu..%llu",
          (unsigned long long)row0, (unsigned long long)(row0 + nrows));
    H5Sclose(ms);
    H5Sclose(fs);
}

void gp_h5_write_rows_f32(hid_t dset, hsize_t row0, hsize_t nrows, hsize_t cols, const float *data) {
    gp_h5_write_rows(dset, H5T_NATIVE_FLOAT, row0, nrows, cols, data);
}

void gp_h5_write_strings(hid_t loc, const char *name, const char *const *s, hsize_t n, const char *description) {
    hid_t t = GP_H5(H5Tcopy(H5T_C_S1), "type");
    GP_H5(H5Tset_size(t, H5T_VARIABLE), "vlen");
    GP_H5(H5Tset_cset(t, H5T_CSET_UTF8), "cset");
    hid_t sp = GP_H5(H5Screate_simple(1, &n, NULL), "space");
    hid_t ds = GP_H5(H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "creating %s", name);
    if (n) GP_H5(H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s), "writing %s", name);
    gp_h5_describe(ds, description, "1");
    H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(t);
}

/* The attribute name of obj when it holds exactly one value (H5Aread writes every value it
 * holds: an array where a scalar is expected would overflow the caller's one), else -1. */
static hid_t open_scalar_attr(hid_t obj, const char *name) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t sp = H5Aget_space(a);
    const bool one = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1;
    if (sp >= 0) H5Sclose(sp);
    if (!one) {
        H5Aclose(a);
        return -1;
    }
    return a;
}

gp_status gp_h5_read_attr_int(hid_t obj, const char *name, int64_t *out) {
    hid_t a = open_scalar_attr(obj, name);
    if (a < 0) return GP_EINPUT;
    herr_t rc = H5Aread(a, H5T_NATIVE_INT64, out);
    H5Aclose(a);
    return rc < 0 ? GP_EINPUT : GP_OK;
}

gp_status gp_h5_read_attr_double(hid_t obj, const char *name, double *out) {
    hid_t a = open_scalar_attr(obj, name);
    if (a < 0) return GP_EINPUT;
    herr_t rc = H5Aread(a, H5T_NATIVE_DOUBLE, out);
    H5Aclose(a);
    return rc < 0 ? GP_EINPUT : GP_OK;
}

char *gp_h5_read_attr_str(hid_t obj, const char *name) {
    hid_t a = open_scalar_attr(obj, name);
    if (a < 0) return NULL;
    hid_t t = H5Aget_type(a);
    char *out = NULL;
    /* gaprune's string attributes are names, hashes and command lines: a longer one is damage
     * (a datatype can claim any size), not a buffer to allocate */
    if (H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) && H5Tget_size(t) <= (1u << 20)) {
        size_t n = H5Tget_size(t);
        out = gp_calloc(n + 1, 1);
        hid_t mt = H5Tcopy(t);
        if (H5Aread(a, mt, out) < 0) {
            free(out);
            out = NULL;
        }
        H5Tclose(mt);
    }
    H5Tclose(t);
    H5Aclose(a);
    return out;
}

hid_t gp_h5_open_quiet(const char *path) {
    H5E_auto2_t fn;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, fn, data);
    return f;
}

hssize_t gp_h5_stored_points(hid_t dset) {
    hid_t sp = H5Dget_space(dset);
    if (sp < 0) return -1;
    const hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    H5D_space_status_t st;
    if (n < 0 || H5Dget_space_status(dset, &st) < 0) return -1;
    if (n == 0 || st == H5D_SPACE_STATUS_ALLOCATED) return n;
    if (st != H5D_SPACE_STATUS_PART_ALLOCATED) return -1;
    /* HDF5 1.10 reports a chunked, filtered dataset as partly allocated even when every chunk
     * was written (stats.h5's tensors, whole): count the chunks it holds against its extent */
    hid_t dcpl = H5Dget_create_plist(dset);
    hsize_t chunk[H5S_MAX_RANK], dims[H5S_MAX_RANK], stored = 0;
    int rank = dcpl < 0 ? -1 : H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
    if (dcpl >= 0) H5Pclose(dcpl);
    sp = H5Dget_space(dset);
    if (rank <= 0 || sp < 0 || H5Sget_simple_extent_dims(sp, dims, NULL) != rank || H5Dget_num_chunks(dset, sp, &stored) < 0) {
        if (sp >= 0) H5Sclose(sp);
        return -1;
    }
    H5Sclose(sp);
    hsize_t want = 1;
    for (int d = 0; d < rank; d++) want *= chunk[d] ? (dims[d] + chunk[d] - 1) / chunk[d] : 0;
    /* and bytes enough for them: deflate shrinks at most about 1032:1 */
    hid_t t = H5Dget_type(dset);
    const double need = (double)n * (double)(t >= 0 ? H5Tget_size(t) : 1);
    if (t >= 0) H5Tclose(t);
    return want > 0 && stored == want && (double)H5Dget_storage_size(dset) * 1100.0 >= need ? n : -1;
}

static gp_status read_flat(hid_t loc, const char *name, hid_t mem_type, void *data, size_t n) {
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return GP_EINPUT;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return GP_EINPUT;
    hid_t sp = H5Dget_space(d);
    hssize_t npts = H5Sget_simple_extent_npoints(sp);
    gp_status rc = GP_EINPUT;
    if (npts == (hssize_t)n && (n == 0 || H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0)) rc = GP_OK;
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

void gp_h5_write_flat(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, const void *data, size_t n,
                      const char *description, const char *units) {
    hsize_t dims[1] = {n};
    hid_t sp = GP_H5(H5Screate_simple(1, dims, NULL), "space for %s", name);
    hid_t lcpl = GP_H5(H5Pcreate(H5P_LINK_CREATE), "lcpl"); /* a name with groups ("a/b") makes them */
    GP_H5(H5Pset_create_intermediate_group(lcpl, 1), "lcpl");
    hid_t ds = GP_H5(H5Dcreate2(loc, name, file_type, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT), "creating %s", name);
    if (n) GP_H5(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "writing %s", name);
    gp_h5_describe(ds, description, units);
    H5Dclose(ds);
    H5Pclose(lcpl);
    H5Sclose(sp);
}

gp_status gp_h5_read_f32(hid_t loc, const char *name, float *data, size_t n) {
    return read_flat(loc, name, H5T_NATIVE_FLOAT, data, n);
}

gp_status gp_h5_read_rows_f32(hid_t loc, const char *name, int64_t rows, int64_t cols, int64_t row0, int64_t nrows,
                              float *data) {
    GP_CHECK(row0 >= 0 && nrows >= 0 && row0 + nrows <= rows, "rows [%lld, +%lld) of %lld", (long long)row0,
             (long long)nrows, (long long)rows);
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return GP_EINPUT;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return GP_EINPUT;
    hid_t sp = H5Dget_space(d);
    const int nd = H5Sget_simple_extent_ndims(sp);
    gp_status rc = GP_EINPUT;
    if (H5Sget_simple_extent_npoints(sp) == (hssize_t)(rows * cols) && (nd == 1 || nd == 2)) {
        /* a 2-D dataset is [rows, cols]; a 1-D one is the same elements flat */
        hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)nrows, (hsize_t)cols};
        if (nd == 1) start[0] = (hsize_t)(row0 * cols), count[0] = (hsize_t)(nrows * cols);
        hsize_t mcount = (hsize_t)(nrows * cols);
        hid_t ms = H5Screate_simple(1, &mcount, NULL);
        if (nrows == 0 || (H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
                           H5Dread(d, H5T_NATIVE_FLOAT, ms, sp, H5P_DEFAULT, data) >= 0))
            rc = GP_OK;
        H5Sclose(ms);
    }
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

gp_status gp_h5_read_f64(hid_t loc, const char *name, double *data, size_t n) {
    return read_flat(loc, name, H5T_NATIVE_DOUBLE, data, n);
}

gp_status gp_h5_read_i64(hid_t loc, const char *name, int64_t *data, size_t n) {
    return read_flat(loc, name, H5T_NATIVE_INT64, data, n);
}

void gp_h5_write_flat_f32(hid_t loc, const char *name, const float *data, size_t n, const char *description,
                          const char *units) {
    gp_h5_write_flat(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, n, description, units);
}

void gp_h5_write_flat_f64(hid_t loc, const char *name, const double *data, size_t n, const char *description,
                          const char *units) {
    gp_h5_write_flat(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data, n, description, units);
}
