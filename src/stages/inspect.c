/* inspect.c — the stage of `gaprune inspect FILE.h5 [--svg OUT.svg]` (see inspect.h): per-layer tables of a statistics
 * or mask file, and a figure (svg.h: two bar panels need no plotting library).
 *
 * stats.h5: per layer the tensors, parameters, mean domain and general Fisher, their ratio and
 *           the mean alignment cosine; the figure shows the per-layer mean Fisher of both corpora
 *           and a histogram of log10 F_dom over all weights.
 * mask-*.h5: per layer the selected weights, kept, sparsity, score range and the
 *           fisher-vs-magnitude ratio; with one-shot reconstruction its settings and per tensor
 *           the relative output error before and after (reconstruction/error_*); the figure
 *           shows the kept fraction per layer and a histogram of the scores (of /score when
 *           saved, else of the per-tensor sparsity).
 */
#include "gaprune/inspect.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/h5.h"
#include "gaprune/log.h"
#include "gaprune/mask_file.h"
#include "gaprune/model.h"
#include "gaprune/stats_file.h"
#include "gaprune/svg.h"

#define MAXL 256 /* layers shown; the last slot collects tensors outside the blocks */

static void print_structs(hid_t f, gp_struct_kind k);
static void print_reconstruction(hid_t f, const gp_mask_summary_row *r, size_t n);
#define MAX_WEIGHTS ((int64_t)1 << 40) /* gaprune's limit on a model's parameters (src/model/arch.h) */
#define NBINS 40

static int layer_of(const char *name) {
    const char *p = strstr(name, "layer.");
    if (!p) p = strstr(name, "layers.");
    return p ? atoi(strchr(p, '.') + 1) : -1;
}

typedef struct {
    double a[MAXL], b[MAXL], c[MAXL]; /* per layer series */
    int64_t n[MAXL];
    int used[MAXL];
    double hist[NBINS], lo, hi;
    const char *hist_label, *bar_label, *bar_a, *bar_b;
    bool log_bars;
} figure;

static const char *layer_name(int l, char *buf) {
    if (l == MAXL - 1) return "other";
    snprintf(buf, 16, "%d", l);
    return buf;
}

static int slot(int layer) { return layer < 0 || layer >= MAXL - 1 ? MAXL - 1 : layer; }

/* Writes the figure to path (svg.h); GP_EINPUT, said on stderr, when it cannot. */
static int svg(const char *path, const char *title, const figure *fg) {
    gp_err err = {0};
    gp_svg s;
    const int W = 900, H = 640, x0 = 70, pw = W - 100, ph = 220;
    if (gp_svg_open(&s, path, W, H, title, &err)) {
        fprintf(stderr, "gaprune: error: %s\n", err.msg);
        return GP_EINPUT;
    }
    /* the bars' colours: the first two styles of the report's figures, dark and light in grey too */
    const char *ca = gp_svg_style_of(0).color, *cb = gp_svg_style_of(1).color;
    gp_svg_text(&s, x0, 24, "font-size=\"16\"", "%s", title);
    /* panel 1: bars per layer */
    int nl = 0, idx[MAXL];
    for (int l = 0; l < MAXL; l++)
        if (fg->used[l]) idx[nl++] = l;
    double vmin = INFINITY, vmax = -INFINITY;
    for (int i = 0; i < nl; i++) {
        double v[2] = {fg->a[idx[i]], fg->bar_b ? fg->b[idx[i]] : fg->a[idx[i]]};
        for (int k = 0; k < 2; k++) {
            double x = fg->log_bars ? log10(fmax(v[k], 1e-30)) : v[k];
            vmin = fmin(vmin, x), vmax = fmax(vmax, x);
        }
    }
    if (!fg->log_bars) vmin = 0, vmax = 1; /* fractions */
    if (vmax <= vmin) vmax = vmin + 1;
    if (fg->log_bars) vmin -= 0.1 * (vmax - vmin); /* the smallest bar stays visible */
    int y1 = 50;
    gp_svg_text(&s, x0, y1 - 8, "", "%s", fg->bar_label);
    gp_svg_line(&s, x0, y1 + ph, x0 + pw, y1 + ph, "black", 1, "");
    gp_svg_text(&s, x0 - 4, y1 + 10, "text-anchor=\"end\"", "%.3g", vmax);
    gp_svg_text(&s, x0 - 4, y1 + ph, "text-anchor=\"end\"", "%.3g", vmin);
    double bw = nl ? (double)pw / nl : pw;
    for (int i = 0; i < nl; i++) {
        char lb[16], tip[64];
        int series = fg->bar_b ? 2 : 1;
        for (int k = 0; k < series; k++) {
            double v = k ? fg->b[idx[i]] : fg->a[idx[i]];
            double x = fg->log_bars ? log10(fmax(v, 1e-30)) : v;
            double h = (x - vmin) / (vmax - vmin) * ph;
            snprintf(tip, sizeof tip, "layer %s: %.4g", layer_name(idx[i], lb), v);
            gp_svg_rect(&s, x0 + i * bw + 2 + k * (bw - 4) / series, y1 + ph - h, (bw - 4) / series, h, k ? cb : ca, tip);
        }
        gp_svg_text(&s, x0 + (i + 0.5) * bw, y1 + ph + 14, "text-anchor=\"middle\"", "%s", layer_name(idx[i], lb));
    }
    if (fg->bar_b) {
        char fill[32];
        snprintf(fill, sizeof fill, "fill=\"%s\"", ca);
        gp_svg_text(&s, x0 + pw - 220, y1 - 8, fill, "%s", fg->bar_a);
        snprintf(fill, sizeof fill, "fill=\"%s\"", cb);
        gp_svg_text(&s, x0 + pw - 100, y1 - 8, fill, "%s", fg->bar_b);
    }
    /* panel 2: histogram */
    int y2 = 360;
    double hmax = 0;
    for (int i = 0; i < NBINS; i++) hmax = fmax(hmax, fg->hist[i]);
    gp_svg_text(&s, x0, y2 - 8, "", "%s", fg->hist_label);
    gp_svg_line(&s, x0, y2 + ph, x0 + pw, y2 + ph, "black", 1, "");
    for (int i = 0; i < NBINS; i++) {
        double h = hmax > 0 ? fg->hist[i] / hmax * ph : 0;
        char tip[32];
        snprintf(tip, sizeof tip, "%.0f", fg->hist[i]);
        gp_svg_rect(&s, x0 + i * (double)pw / NBINS + 1, y2 + ph - h, (double)pw / NBINS - 2, h, gp_svg_style_of(4).color, tip);
    }
    gp_svg_text(&s, x0, y2 + ph + 14, "", "%.3g", fg->lo);
    gp_svg_text(&s, x0 + pw, y2 + ph + 14, "text-anchor=\"end\"", "%.3g", fg->hi);
    gp_svg_text(&s, x0 - 4, y2 + 10, "text-anchor=\"end\"", "%.0f", hmax);
    if (gp_svg_close(&s, &err)) {
        fprintf(stderr, "gaprune: error: %s\n", err.msg);
        return GP_EINPUT;
    }
    gp_log0("inspect: wrote %s", path);
    return GP_OK;
}

static void add_hist(figure *fg, double x) {
    if (!isfinite(x)) return;
    /* in double until clamped: a value far outside [lo, hi] does not fit an int (nor NaN, when
     * lo and hi are infinite) */
    const double t = (x - fg->lo) / (fg->hi - fg->lo) * NBINS;
    fg->hist[!(t >= 0) ? 0 : t >= NBINS ? NBINS - 1 : (int)t] += 1;
}

/* Reads /alignment/names (every tensor of the statistics); NULL when it is not a list of
 * strings the file holds. */
static char **tensor_names(hid_t f, size_t *n) {
    hid_t d = H5Dopen2(f, GP_STATS_ALIGNMENT_NAMES, H5P_DEFAULT);
    if (d < 0) return NULL;
    const hssize_t np = gp_h5_stored_points(d);
    char **names = NULL;
    if (np >= 0) {
        *n = (size_t)np;
        names = gp_calloc(*n + 1, sizeof(char *));
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) < 0) {
            free(names);
            names = NULL;
        }
        H5Tclose(t);
    }
    H5Dclose(d);
    return names;
}

/* A whole float dataset the file holds (*n values), or NULL. */
static float *read_all(hid_t f, const char *name, size_t *n) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return NULL;
    const hssize_t np = gp_h5_stored_points(d);
    float *x = NULL;
    if (np >= 0) {
        *n = (size_t)np;
        x = gp_malloc(*n * sizeof(float) + 4);
        if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0) {
            free(x);
            x = NULL;
        }
    }
    H5Dclose(d);
    return x;
}

/* /alignment/cosine: one value per name, or NULL. */
static double *read_cosines(hid_t f, size_t nt) {
    hid_t d = H5Dopen2(f, GP_STATS_ALIGNMENT_COSINE, H5P_DEFAULT);
    if (d < 0) return NULL;
    double *cos = NULL;
    if (gp_h5_stored_points(d) == (hssize_t)nt) {
        cos = gp_malloc((nt + 1) * sizeof(double));
        if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, cos) < 0) {
            free(cos);
            cos = NULL;
        }
    }
    H5Dclose(d);
    return cos;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]); /* HDF5 allocated the strings with malloc */
    free(names);
}

/* The MLP neurons' statistics, when the file has them: per block the mean gate Fisher of each
 * corpus and the mean cosine of the neurons' gradients (a damaged or absent set: no table). */
static void neuron_table(hid_t f) {
    static const char *const sets[3] = {GP_STATS_DOMAIN "/" GP_STATS_NEURON_FISHER,
                                        GP_STATS_GENERAL "/" GP_STATS_NEURON_FISHER,
                                        GP_STATS_ALIGNMENT "/" GP_STATS_NEURON_COSINE};
    float *v[3] = {NULL, NULL, NULL};
    size_t n[3] = {0, 0, 0};
    hsize_t dims[2] = {0, 0};
    for (int k = 0; k < 3; k++) {
        hid_t d = H5Lexists(f, sets[k], H5P_DEFAULT) > 0 ? H5Dopen2(f, sets[k], H5P_DEFAULT) : -1;
        if (d < 0) continue;
        hid_t sp = H5Dget_space(d);
        if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
        if (sp >= 0) H5Sclose(sp);
        H5Dclose(d);
        v[k] = read_all(f, sets[k], &n[k]);
    }
    const bool ok = v[0] && v[1] && v[2] && dims[0] > 0 && dims[0] * dims[1] == n[0] && n[0] == n[1] && n[1] == n[2];
    if (ok) {
        printf("MLP neurons: Fisher of a gate on each neuron's output (Φ), cosine of the general and domain gradients "
               "over its weights\n%-6s %8s %12s %12s %10s %10s\n", "layer", "neurons", "mean Phi_dom", "mean Phi_gen", "dom/gen",
               "cos");
        for (hsize_t l = 0; l < dims[0]; l++) {
            double a = 0, b = 0, c = 0;
            for (hsize_t j = 0; j < dims[1]; j++) a += v[0][l * dims[1] + j], b += v[1][l * dims[1] + j], c += v[2][l * dims[1] + j];
            printf("%-6llu %8llu %12.4g %12.4g %10.3g %10.4f\n", (unsigned long long)l, (unsigned long long)dims[1],
                   a / (double)dims[1], b / (double)dims[1], b > 0 ? a / b : NAN, c / (double)dims[1]);
        }
    }
    for (int k = 0; k < 3; k++) free(v[k]);
}

static int inspect_stats(hid_t f, const char *path, const char *svg_path) {
    size_t nt = 0;
    char **names = tensor_names(f, &nt);
    if (!names) {
        fprintf(stderr, "gaprune: error: %s: no readable /" GP_STATS_ALIGNMENT_NAMES "\n", path);
        return GP_EINPUT;
    }
    double *cos = read_cosines(f, nt);
    if (!cos) {
        fprintf(stderr, "gaprune: error: %s: no /" GP_STATS_ALIGNMENT_COSINE " of %zu values (one per name)\n", path, nt);
        free_names(names, nt);
        return GP_EINPUT;
    }
    figure fg = {.lo = -16, .hi = 0, .hist_label = "histogram of log10 F_dom over every parameter (exact zeros in the first bin)",
                 .bar_label = "mean Fisher per layer (log10)", .bar_a = "domain", .bar_b = "general", .log_bars = true};
    double cs[MAXL] = {0};
    int ct[MAXL] = {0};
    for (size_t i = 0; i < nt; i++) {
        if (!names[i]) continue;
        int s = slot(layer_of(names[i]));
        char name[400];
        size_t n1 = 0, n2 = 0;
        float *fd = read_all(f, gp_stats_tensor(name, sizeof name, GP_STATS_DOMAIN_FISHER, names[i]), &n1);
        float *fgn = read_all(f, gp_stats_tensor(name, sizeof name, GP_STATS_GENERAL_FISHER, names[i]), &n2);
        if (fd && fgn && n1 == n2) {
            for (size_t k = 0; k < n1; k++) {
                fg.a[s] += fd[k], fg.b[s] += fgn[k];
                add_hist(&fg, log10(fmax(fd[k], 1e-30)));
            }
            fg.n[s] += (int64_t)n1;
            fg.used[s] = 1;
            cs[s] += cos[i];
            ct[s]++;
        }
        free(fd);
        free(fgn);
    }
    printf("%s: statistics; per layer (\"other\": embeddings and anything outside the blocks)\n", path);
    printf("%-6s %8s %12s %12s %12s %10s %10s\n", "layer", "tensors", "params", "mean F_dom", "mean F_gen", "dom/gen",
           "cos(G)");
    for (int l = 0; l < MAXL; l++) {
        if (!fg.used[l]) continue;
        fg.a[l] /= (double)fg.n[l], fg.b[l] /= (double)fg.n[l];
        char lb[16];
        printf("%-6s %8d %12lld %12.4g %12.4g %10.3g %10.4f\n", layer_name(l, lb), ct[l], (long long)fg.n[l], fg.a[l],
               fg.b[l], fg.b[l] > 0 ? fg.a[l] / fg.b[l] : NAN, cs[l] / ct[l]);
    }
    free_names(names, nt);
    free(cos);
    neuron_table(f);
    return svg_path ? svg(svg_path, path, &fg) : GP_OK;
}

static int inspect_mask(hid_t f, const char *path, const char *svg_path) {
    size_t n = 0;
    gp_mask_summary_row *r = gp_mask_summary_read(f, &n);
    if (!r) {
        fprintf(stderr, "gaprune: error: %s: no readable /" GP_MASK_SUMMARY "\n", path);
        return GP_EINPUT;
    }
    /* the sums below trust the counts: a row that cannot be one of gaprune's is refused */
    for (size_t i = 0; i < n; i++)
        if (!r[i].param || r[i].numel < 0 || r[i].numel > MAX_WEIGHTS || r[i].kept < 0 || r[i].kept > r[i].numel) {
            fprintf(stderr, "gaprune: error: %s: /" GP_MASK_SUMMARY " row %zu is damaged (tensor %s, %lld weights, %lld kept)\n",
                    path, i, r[i].param ? r[i].param : "?", (long long)r[i].numel, (long long)r[i].kept);
            gp_mask_summary_free(r, n);
            return GP_EINPUT;
        }
    char *method = gp_h5_read_attr_str(f, GP_MASK_ATTR_METHOD), *scope = gp_h5_read_attr_str(f, GP_MASK_ATTR_SCOPE);
    double target = NAN, achieved = NAN, zero = NAN;
    gp_h5_read_attr_double(f, GP_MASK_ATTR_SPARSITY_TARGET, &target);
    gp_h5_read_attr_double(f, GP_MASK_ATTR_SPARSITY_ACHIEVED, &achieved);
    gp_h5_read_attr_double(f, GP_MASK_ATTR_MODEL_ZERO_FRACTION, &zero);
    printf("%s: mask of %s, scope %s: target %.4g, achieved %.4g of the selected weights; %.2f%% of all parameters "
           "are zero\n",
           path, method ? method : "?", scope ? scope : "?", target, achieved, 100 * zero);
    printf("%-6s %8s %12s %12s %9s %11s %11s %11s %12s\n", "layer", "tensors", "weights", "kept", "sparsity", "score min",
           "score mean", "score max", "fisher/mag");
    double smin[MAXL], smax[MAXL], smean[MAXL], ratio[MAXL];
    int ct[MAXL] = {0};
    figure fg = {.bar_label = "kept fraction per layer", .log_bars = false};
    for (int l = 0; l < MAXL; l++) smin[l] = INFINITY, smax[l] = -INFINITY, smean[l] = ratio[l] = 0;
    for (size_t i = 0; i < n; i++) {
        int s = slot(r[i].layer);
        fg.used[s] = 1;
        fg.n[s] += r[i].numel;
        fg.b[s] += (double)r[i].kept;
        smin[s] = fmin(smin[s], r[i].score_min), smax[s] = fmax(smax[s], r[i].score_max);
        smean[s] += r[i].score_mean * (double)r[i].numel;
        ratio[s] += r[i].fisher_vs_magnitude;
        ct[s]++;
    }
    for (int l = 0; l < MAXL; l++) {
        if (!fg.used[l]) continue;
        fg.a[l] = fg.b[l] / (double)fg.n[l];
        char lb[16];
        printf("%-6s %8d %12lld %12lld %9.4f %11.4g %11.4g %11.4g %12.4g\n", layer_name(l, lb), ct[l], (long long)fg.n[l],
               (long long)fg.b[l], 1 - fg.a[l], smin[l], smean[l] / (double)fg.n[l], smax[l], ratio[l] / ct[l]);
    }
    print_structs(f, GP_STRUCT_NEURONS);
    print_structs(f, GP_STRUCT_HEADS);
    print_reconstruction(f, r, n);
    /* the histogram: scores when saved, else the per-tensor sparsity */
    bool scores = H5Lexists(f, GP_MASK_SCORE, H5P_DEFAULT) > 0;
    if (scores) {
        fg.lo = INFINITY, fg.hi = -INFINITY;
        for (size_t i = 0; i < n; i++) fg.lo = fmin(fg.lo, r[i].score_min), fg.hi = fmax(fg.hi, r[i].score_max);
        if (fg.hi <= fg.lo) fg.hi = fg.lo + 1;
        for (size_t i = 0; i < n; i++) {
            char name[400];
            size_t m = 0;
            float *x = read_all(f, gp_mask_tensor(name, sizeof name, GP_MASK_SCORE, r[i].param), &m);
            for (size_t k = 0; x && k < m; k++) add_hist(&fg, x[k]);
            free(x);
        }
        fg.hist_label = "histogram of the scores of every selected weight";
    } else {
        fg.lo = 0, fg.hi = 1;
        for (size_t i = 0; i < n; i++) add_hist(&fg, 1 - (double)r[i].kept / (double)r[i].numel);
        fg.hist_label = "histogram of per-tensor sparsity (prune.save_scores = true gives the score histogram)";
    }
    const int rc = svg_path ? svg(svg_path, path, &fg) : GP_OK;
    gp_mask_summary_free(r, n);
    free(method);
    free(scope);
    return rc;
}

/* A mask of whole structures of kind k: the structures each block keeps, and the structure
 * scores around the cut (the highest removed, the lowest kept). Nothing for other masks or a
 * damaged /neurons or /heads. */
static void print_structs(hid_t f, gp_struct_kind k) {
    const char *group = gp_struct_name(k), *keep_set = k == GP_STRUCT_HEADS ? GP_MASK_HEAD_KEEP : GP_MASK_NEURON_KEEP;
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0 || H5Lexists(f, keep_set, H5P_DEFAULT) <= 0) return;
    hid_t d = H5Dopen2(f, keep_set, H5P_DEFAULT);
    if (d < 0) return;
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    const bool shaped = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, dims, NULL) == 2 &&
                        dims[0] > 0 && dims[0] <= MAXL && dims[1] > 0 && dims[1] <= (1u << 24);
    if (sp >= 0) H5Sclose(sp);
    uint8_t *keep = shaped ? gp_malloc((size_t)(dims[0] * dims[1])) : NULL;
    double *score = shaped ? gp_malloc((size_t)(dims[0] * dims[1]) * sizeof(double)) : NULL;
    const bool got = shaped && H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, keep) >= 0;
    H5Dclose(d);
    const bool scored = got && !gp_h5_read_f64(f, k == GP_STRUCT_HEADS ? GP_MASK_HEAD_SCORE : GP_MASK_NEURON_SCORE, score,
                                               (size_t)(dims[0] * dims[1]));
    if (got) {
        printf("%s\n", k == GP_STRUCT_HEADS ? "attention heads (whole head_dim rows of query, key and value, and columns of "
                                              "the attention output):"
                                            : "MLP neurons (whole rows of the up projections and columns of the down projection):");
        printf("%-6s %9s %9s %16s %16s\n", "layer", group, "kept", "highest removed", "lowest kept");
        for (hsize_t l = 0; l < dims[0]; l++) {
            int64_t kept = 0;
            double hi_removed = -INFINITY, lo_kept = INFINITY;
            for (hsize_t j = 0; j < dims[1]; j++) {
                const size_t at = (size_t)(l * dims[1] + j);
                kept += keep[at] != 0;
                if (scored && keep[at]) lo_kept = fmin(lo_kept, score[at]);
                if (scored && !keep[at]) hi_removed = fmax(hi_removed, score[at]);
            }
            printf("%-6llu %9llu %9lld %16.6g %16.6g\n", (unsigned long long)l, (unsigned long long)dims[1], (long long)kept,
                   hi_removed, lo_kept);
        }
    }
    free(keep);
    free(score);
}

/* One value per /summary row of the float dataset `name` (n of them, n bounded by /summary's
 * stored rows), or NULL when the file has no such dataset or it does not store exactly n values:
 * the buffer is never sized by the dataset's own extent. */
static double *read_per_row(hid_t f, const char *name, size_t n) {
    if (!n) return NULL;
    H5E_auto2_t fn;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* a path through something that is not a group: absent, silently */
    const char *slash = strrchr(name, '/');
    char group[64];
    snprintf(group, sizeof group, "%.*s", slash ? (int)(slash - name) : 0, name);
    hid_t d = (!*group || H5Lexists(f, group, H5P_DEFAULT) > 0) && H5Lexists(f, name, H5P_DEFAULT) > 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    double *x = NULL;
    if (d >= 0 && gp_h5_stored_points(d) == (hssize_t)n) {
        x = gp_malloc(n * sizeof(double));
        if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0) {
            free(x);
            x = NULL;
        }
    }
    if (d >= 0) H5Dclose(d);
    H5Eset_auto2(H5E_DEFAULT, fn, data);
    return x;
}

/* A mask written with one-shot reconstruction (reconstruct.h; the GP_MASK_ATTR_RECONSTRUCT*
 * and calibration attributes): its settings on one line, then per /summary tensor the relative
 * output error of the mask alone and of the written weights, and their ratio. Nothing for
 * another mask; the settings alone when the errors are not one per /summary row. */
static void print_reconstruction(hid_t f, const gp_mask_summary_row *r, size_t n) {
    char *kind = gp_h5_read_attr_str(f, GP_MASK_ATTR_RECONSTRUCT);
    if (!kind) return;
    char *order = gp_h5_read_attr_str(f, GP_MASK_ATTR_RECONSTRUCT_ORDER);
    char *cal[2] = {gp_h5_read_attr_str(f, GP_MASK_ATTR_CALIBRATION_DOMAIN), gp_h5_read_attr_str(f, GP_MASK_ATTR_CALIBRATION_GENERAL)};
    double damp = NAN, general = NAN, seconds = NAN;
    int64_t block = -1, texts[2] = {-1, -1}, tokens[2] = {-1, -1};
    gp_h5_read_attr_double(f, GP_MASK_ATTR_DAMPENING, &damp);
    gp_h5_read_attr_double(f, GP_MASK_ATTR_RECONSTRUCT_GENERAL, &general);
    gp_h5_read_attr_double(f, GP_MASK_ATTR_RECONSTRUCT_SECONDS, &seconds);
    gp_h5_read_attr_int(f, GP_MASK_ATTR_BLOCK, &block);
    gp_h5_read_attr_int(f, GP_MASK_ATTR_CALIBRATION_TEXTS_DOMAIN, &texts[0]);
    gp_h5_read_attr_int(f, GP_MASK_ATTR_CALIBRATION_TEXTS_GENERAL, &texts[1]);
    gp_h5_read_attr_int(f, GP_MASK_ATTR_CALIBRATION_TOKENS_DOMAIN, &tokens[0]);
    gp_h5_read_attr_int(f, GP_MASK_ATTR_CALIBRATION_TOKENS_GENERAL, &tokens[1]);
    printf("reconstruction: %s, order %s, dampening %g, general weight %g, block %lld, %.3g s; calibration: domain %s "
           "(%lld texts, %lld tokens), general %s (%lld texts, %lld tokens)\n",
           kind, order ? order : "?", damp, general, (long long)block, seconds, cal[0] ? cal[0] : "?", (long long)texts[0],
           (long long)tokens[0], cal[1] ? cal[1] : "?", (long long)texts[1], (long long)tokens[1]);
    double *before = read_per_row(f, GP_MASK_RECON_ERROR_BEFORE, n), *after = read_per_row(f, GP_MASK_RECON_ERROR_AFTER, n);
    if (before && after) {
        int w = 6; /* the tensor column: the longest name, within reason */
        for (size_t i = 0; i < n; i++) {
            const int l = (int)strlen(r[i].param);
            w = l > w ? (l < 80 ? l : 80) : w;
        }
        printf("relative output error ||X W'^T - X W^T|| / ||X W^T|| on the calibration inputs: the mask alone (before), the "
               "written weights (after)\n");
        printf("%-*s %14s %14s %12s\n", w, "tensor", "error before", "error after", "after/before");
        double sb = 0, sa = 0;
        for (size_t i = 0; i < n; i++) {
            printf("%-*s %14.6g %14.6g %12.4g\n", w, r[i].param, before[i], after[i], before[i] > 0 ? after[i] / before[i] : NAN);
            sb += before[i], sa += after[i];
        }
        printf("%-*s %14.6g %14.6g %12.4g\n", w, "mean", sb / (double)n, sa / (double)n, sb > 0 ? sa / sb : NAN);
    } else {
        printf("reconstruction: no per-tensor errors (/" GP_MASK_RECON_ERROR_BEFORE " and /" GP_MASK_RECON_ERROR_AFTER
               " are not one value per /" GP_MASK_SUMMARY " row)\n");
    }
    free(before), free(after);
    free(kind), free(order), free(cal[0]), free(cal[1]);
}

gp_status gp_inspect_file(const char *path, const char *svg_path) {
    gp_status rc;
    hid_t f = gp_h5_open_quiet(path);
    if (f < 0) {
        fprintf(stderr, "gaprune: error: %s: cannot open as HDF5\n", path);
        return GP_EINPUT;
    }
    char *fmt = gp_h5_read_attr_str(f, GP_H5_ATTR_FORMAT);
    if (fmt && !strcmp(fmt, GP_STATS_FORMAT)) rc = inspect_stats(f, path, svg_path);
    else if (fmt && !strcmp(fmt, GP_MASK_FORMAT)) rc = inspect_mask(f, path, svg_path);
    else {
        fprintf(stderr, "gaprune: error: %s: not a gaprune stats or mask file (format \"%s\")\n", path, fmt ? fmt : "");
        rc = GP_EINPUT;
    }
    free(fmt);
    H5Fclose(f);
    return rc;
}
