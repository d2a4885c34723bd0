/* checkpoint.c — checkpoint files: commit with rotation, the `latest` marker, resume lookup (see checkpoint.h). */
#include "gaprune/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/dist.h"
#include "gaprune/fs.h"
#include "gaprune/log.h"

gp_status gp_checkpoint_commit(hid_t f, const char *path, const char *prev, gp_err *err) {
    if (f >= 0) GP_H5(H5Fclose(f), "closing %s.tmp", path); /* the close flushes: it may fail to write */
    char *tmp = gp_tmp_path(path);
    /* Once every rank has its new file: rotate. A kill anywhere leaves, for the step `latest`
     * names, a complete file on every rank under either name; a refused write on any rank (a
     * failed create included, f < 0 then) leaves every rank's files as they were. */
    gp_status rc = gp_agree(gp_h5_io_status(path, err), err);
    if (rc) {
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

static gp_status load_one(const char *path, gp_checkpoint_load_fn load, void *ctx) {
    if (!gp_file_exists(path)) return GP_EINPUT;
    hid_t f = gp_h5_open_quiet(path);
    if (f < 0) return GP_EINPUT;
    gp_status rc = load(f, ctx);
    H5Fclose(f);
    return rc;
}

gp_status gp_checkpoint_load(const char *path, const char *fallback, gp_checkpoint_load_fn load, void *ctx) {
    gp_status rc = load_one(path, load, ctx);
    if (rc && fallback) rc = load_one(fallback, load, ctx);
    return rc ? GP_EINPUT : GP_OK;
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
