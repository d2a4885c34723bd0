/* export.c — pruned (or retrained) model folders (see export.h). */
#include "gaprune/export.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gaprune/fs.h"
#include "gaprune/log.h"
#include "gaprune/safetensors.h"

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Weights in formats we do not rewrite: copying them would ship the dense model along. */
static bool other_weights(const char *name, bool is_dir) {
    if (is_dir) return !strcmp(name, "onnx") || !strcmp(name, "openvino");
    static const char *suf[] = {".bin", ".h5", ".msgpack", ".onnx", ".pt", ".pth", ".ckpt", ".ot", ".gguf", ".bin.index.json"};
    for (size_t i = 0; i < sizeof suf / sizeof suf[0]; i++)
        if (has_suffix(name, suf[i])) return true;
    return false;
}

static gp_status copy_tree(const char *src, const char *dst, gp_err *err) {
    DIR *d = opendir(src);
    if (!d) return gp_errf(err, GP_EINPUT, "%s: cannot list the folder", src);
    gp_status rc = gp_mkdir_p(dst, err);
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *s = gp_path_join(src, e->d_name), *t = gp_path_join(dst, e->d_name);
        struct stat st;
        if (stat(s, &st) == 0) {
            bool dir = S_ISDIR(st.st_mode);
            if (other_weights(e->d_name, dir)) gp_log0("export: leaving out %s (dense weights in another format)", s);
            else if (dir) rc = copy_tree(s, t, err);
            else if (S_ISREG(st.st_mode) && !has_suffix(e->d_name, ".safetensors") && strcmp(e->d_name, GP_INIT_MARKER))
                rc = gp_copy_file(s, t, err);
        }
        free(s);
        free(t);
    }
    closedir(d);
    return rc;
}

gp_status gp_export_model(const gp_model *m, const char *out_dir, const char *const *meta, int nmeta, gp_err *err) {
    char *tmp = gp_tmp_path(out_dir);
    gp_rmtree(tmp);
    gp_status rc = copy_tree(m->dir, tmp, err);
    gp_st_set *set = NULL;
    if (!rc) rc = gp_st_set_open(m->dir, &set, err);
    for (int s = 0; !rc && s < gp_st_set_nfiles(set); s++) {
        const gp_st_file *f = gp_st_set_file(set, s);
        gp_st_writer *w = gp_st_writer_init();
        for (int k = 0; k < gp_st_meta_count(f); k++) {
            const char *key, *val;
            gp_st_meta_at(f, k, &key, &val);
            gp_st_writer_meta(w, key, val);
        }
        for (int k = 0; k < nmeta; k++) gp_st_writer_meta(w, meta[2 * k], meta[2 * k + 1]);
        for (int k = 0; k < gp_st_count(f); k++) {
            const gp_st_tensor *t = gp_st_at(f, k);
            int p = -1;
            for (int i = 0; i < m->table.n && p < 0; i++)
                if (m->src_names[i] && !strcmp(m->src_names[i], t->name)) p = i;
            if (p >= 0) gp_st_writer_add_f32(w, t->name, t->dtype, t->ndim, t->shape, gp_model_param(m, p));
            else gp_st_writer_add_raw(w, t->name, t->dtype, t->ndim, t->shape, t->data);
        }
        char *path = gp_path_join(tmp, gp_st_set_file_name(set, s));
        rc = gp_st_writer_write(w, path, err);
        free(path);
        gp_st_writer_free(w);
    }
    gp_st_set_close(set);
    if (!rc) {
        gp_rmtree(out_dir);
        if (rename(tmp, out_dir) != 0) rc = gp_errf(err, GP_EINPUT, "%s: cannot rename to %s", tmp, out_dir);
    } else {
        gp_rmtree(tmp);
    }
    free(tmp);
    return rc;
}
