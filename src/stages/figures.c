/* figures.c — the report's figures (see figures.h), drawn with svg.h. */
#include "gaprune/figures.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/log.h"
#include "gaprune/mask_file.h"
#include "gaprune/retrain_file.h"
#include "gaprune/svg.h"
#include "gaprune/tasks.h"

/* ---- names and links ----------------------------------------------------------------------- */

/* name with every byte outside [A-Za-z0-9._-] as '_' appended to buf at *at (n bytes in all) */
static void put_safe(char *buf, size_t n, size_t *at, const char *name) {
    for (const char *p = name; *p && *at + 1 < n; p++) {
        const char c = *p;
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                        c == '-';
        buf[(*at)++] = ok ? c : '_';
    }
    buf[*at] = '\0';
}

static const char *fig_name(char *buf, size_t n, const char *a, const char *b) {
    size_t at = 0;
    buf[0] = '\0';
    put_safe(buf, n, &at, "fig-");
    put_safe(buf, n, &at, a);
    put_safe(buf, n, &at, "-");
    put_safe(buf, n, &at, b);
    put_safe(buf, n, &at, ".svg");
    return buf;
}

const char *gp_figure_score_name(char *buf, size_t n, const char *kind, const char *set) { return fig_name(buf, n, kind, set); }
const char *gp_figure_mask_name(char *buf, size_t n, const char *tag) { return fig_name(buf, n, "mask", tag); }

/* Markdown link text: the brackets and backslash a name may hold are escaped. */
static void md_text(FILE *md, const char *s) {
    for (; *s; s++) {
        if (strchr("[]\\", *s)) fputc('\\', md);
        fputc(*s, md);
    }
}

void gp_figures_md_set(FILE *md, const char *kind, const char *set) {
    char name[512];
    fprintf(md, "![");
    md_text(md, set);
    fprintf(md, ": score against sparsity](%s)\n\n", gp_figure_score_name(name, sizeof name, kind, set));
}

void gp_figures_md_mask(FILE *md, int i, int n, const char *method, double sparsity) {
    char tag[128], name[512];
    snprintf(tag, sizeof tag, "%s-%g", method, sparsity); /* the run's tag of the mask */
    fprintf(md, "%s [", i ? "," : "\nKept fraction per layer and tensor kind of each mask:");
    md_text(md, tag);
    fprintf(md, "](%s)%s", gp_figure_mask_name(name, sizeof name, tag), i == n - 1 ? ".\n" : "");
}

void gp_figures_md_loss(FILE *md) { fprintf(md, "\n![the retraining loss of every retrained model](%s)\n", GP_FIGURE_LOSS); }

/* ---- the report document ------------------------------------------------------------------- */

static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static double number(const cJSON *x) { return cJSON_IsNumber(x) ? x->valuedouble : NAN; }

static double main_score(const cJSON *doc, const char *kind, const char *set) {
    return number(item(item(item(doc, kind), set), "main_score"));
}

/* The kinds of set in report order, with their main metric: retrieval, STS, then MTEB's other types. */
enum { NKINDS = 2 + GP_TASK_NTYPES };
static const char *kind_key(int k) { return k == 0 ? "retrieval" : k == 1 ? "sts" : gp_task_info_of((gp_task_type)(k - 2))->key; }
static const char *kind_metric(int k) { return k == 0 ? "nDCG@10" : k == 1 ? "Spearman" : gp_task_info_of((gp_task_type)(k - 2))->main; }

typedef struct {
    const char *method;
    double sparsity;
    const cJSON *one_shot, *retrained;
    bool retraining;
    char tag[128];
} row;

typedef struct {
    row *rows;
    int n;
    const char **methods; /* distinct, in the rows' order: a method's index is its style */
    int nmethods;
    const cJSON *dense, *dense_rt, *pairs;
    bool dense_retraining;
} report;

static void report_read(const cJSON *j, report *r) {
    memset(r, 0, sizeof *r);
    const cJSON *rows = item(j, "rows"), *x;
    r->rows = gp_calloc((size_t)cJSON_GetArraySize(rows) + 1, sizeof *r->rows);
    r->methods = gp_calloc((size_t)cJSON_GetArraySize(rows) + 1, sizeof *r->methods);
    cJSON_ArrayForEach(x, rows) {
        const cJSON *m = item(x, "method");
        if (!cJSON_IsString(m) || !isfinite(number(item(x, "sparsity")))) continue;
        row *w = &r->rows[r->n++];
        w->method = m->valuestring;
        w->sparsity = number(item(x, "sparsity"));
        w->one_shot = cJSON_IsObject(item(x, "one_shot")) ? item(x, "one_shot") : NULL;
        w->retrained = cJSON_IsObject(item(x, "retrained")) ? item(x, "retrained") : NULL;
        w->retraining = cJSON_IsObject(item(x, "retraining"));
        snprintf(w->tag, sizeof w->tag, "%s-%g", w->method, w->sparsity); /* run's and report's tag */
        int k = 0;
        while (k < r->nmethods && strcmp(r->methods[k], w->method)) k++;
        if (k == r->nmethods) r->methods[r->nmethods++] = w->method;
    }
    r->dense = item(j, "dense");
    const cJSON *drt = item(j, "dense_retrained");
    r->dense_rt = cJSON_IsObject(item(drt, "eval")) ? item(drt, "eval") : NULL;
    r->dense_retraining = cJSON_IsObject(item(drt, "retraining"));
    r->pairs = item(item(j, "comparisons"), "pairs");
}

static void report_free(report *r) {
    free(r->rows);
    free(r->methods);
}

static int method_index(const report *r, const char *m) {
    for (int k = 0; k < r->nmethods; k++)
        if (!strcmp(r->methods[k], m)) return k;
    return 0;
}

/* The comparison dense -> tag of the set at the stage: its interval, or false. */
static bool interval(const report *r, const char *kind, const char *set, const char *stage, const char *tag, double *lo,
                     double *hi) {
    const cJSON *c;
    cJSON_ArrayForEach(c, r->pairs) {
        const cJSON *a = item(c, "a"), *b = item(c, "b"), *s = item(c, "set"), *k = item(c, "kind"), *st = item(c, "stage");
        if (cJSON_IsString(a) && cJSON_IsString(b) && cJSON_IsString(s) && cJSON_IsString(k) && cJSON_IsString(st) &&
            !strcmp(a->valuestring, "dense") && !strcmp(b->valuestring, tag) && !strcmp(s->valuestring, set) &&
            !strcmp(k->valuestring, kind) && !strcmp(st->valuestring, stage)) {
            *lo = number(item(c, "lo")), *hi = number(item(c, "hi"));
            return isfinite(*lo) && isfinite(*hi);
        }
    }
    return false;
}

/* ---- score against sparsity ---------------------------------------------------------------- */

typedef struct {
    double *x, *y, *lo, *hi;
    int n;
} points;

static int by_sparsity(const void *a, const void *b) {
    const row *x = *(const row *const *)a, *y = *(const row *const *)b;
    return (x->sparsity > y->sparsity) - (x->sparsity < y->sparsity);
}

/* The method's points of the set at one stage (0 one-shot, 1 retrained), by sparsity. */
static points method_points(const report *r, const char *method, int stage, const char *kind, const char *set, double base) {
    points p = {0};
    const row **sel = gp_calloc((size_t)r->n + 1, sizeof *sel);
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->rows[i].method, method)) sel[p.n++] = &r->rows[i];
    qsort(sel, (size_t)p.n, sizeof *sel, by_sparsity);
    p.x = gp_malloc(((size_t)p.n + 1) * sizeof(double));
    p.y = gp_malloc(((size_t)p.n + 1) * sizeof(double));
    p.lo = gp_malloc(((size_t)p.n + 1) * sizeof(double));
    p.hi = gp_malloc(((size_t)p.n + 1) * sizeof(double));
    for (int i = 0; i < p.n; i++) {
        const cJSON *doc = stage ? sel[i]->retrained : sel[i]->one_shot;
        double lo, hi;
        p.x[i] = sel[i]->sparsity;
        p.y[i] = doc ? main_score(doc, kind, set) : NAN;
        const bool have = isfinite(p.y[i]) && interval(r, kind, set, stage ? "retrained" : "one_shot", sel[i]->tag, &lo, &hi);
        p.lo[i] = have ? base + lo : NAN;
        p.hi[i] = have ? base + hi : NAN;
    }
    free(sel);
    return p;
}

static void points_free(points *p) { free(p->x), free(p->y), free(p->lo), free(p->hi); }

static bool any_finite(const double *v, int n) {
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) return true;
    return false;
}

static gp_status score_figure(const char *path, const report *r, int k, const char *set, gp_err *err) {
    const char *kind = kind_key(k);
    const double base = main_score(r->dense, kind, set), dbase = r->dense_rt ? main_score(r->dense_rt, kind, set) : NAN;
    const int nm = r->nmethods;
    points *pt[2] = {gp_calloc((size_t)nm + 1, sizeof(points)), gp_calloc((size_t)nm + 1, sizeof(points))};
    gp_plot_series *ser[2] = {gp_calloc((size_t)nm + 1, sizeof(gp_plot_series)), gp_calloc((size_t)nm + 1, sizeof(gp_plot_series))};
    int ns[2] = {0, 0}, max_points = 0;
    for (int st = 0; st < 2; st++)
        for (int m = 0; m < nm; m++) {
            pt[st][m] = method_points(r, r->methods[m], st, kind, set, base);
            if (!any_finite(pt[st][m].y, pt[st][m].n)) continue;
            max_points = pt[st][m].n > max_points ? pt[st][m].n : max_points;
            ser[st][ns[st]++] = (gp_plot_series){.name = r->methods[m], .x = pt[st][m].x, .y = pt[st][m].y, .lo = pt[st][m].lo,
                                                 .hi = pt[st][m].hi, .n = pt[st][m].n, .style = m, .shade = NAN};
        }
    char dl[96], dlr[96];
    snprintf(dl, sizeof dl, "dense %.4f", base);
    snprintf(dlr, sizeof dlr, "dense retrained alike %.4f", dbase);
    const gp_plot_ref refs[2] = {{base, dl, ""}, {dbase, dlr, "6 4"}};
    const bool two = ns[1] > 0; /* a retrained panel */
    const int nrefs = isfinite(dbase) && two ? 2 : 1;
    char title[640], ylabel[128];
    snprintf(title, sizeof title, "%s: %s against sparsity", set, kind_metric(k));
    snprintf(ylabel, sizeof ylabel, "%s (higher is better)", kind_metric(k));
    const double pw = two ? 330 : 520, ph = 300, left = 80, top = 70, gap = 90, legend_w = 250;
    const int W = (int)(left + pw + (two ? gap + pw : 0) + 40 + legend_w), H = (int)(top + ph + 110);
    gp_plot p[2] = {{.title = "one-shot (no retraining)", .xlabel = "sparsity (fraction of the selected weights pruned)",
                     .ylabel = ylabel, .series = ser[0], .nseries = ns[0], .refs = refs, .nrefs = 1},
                    {.title = "retrained", .xlabel = "sparsity (fraction of the selected weights pruned)", .ylabel = ylabel,
                     .series = ser[1], .nseries = ns[1], .refs = refs, .nrefs = nrefs}};
    double rg[4];
    gp_plot_range_init(rg);
    for (int st = 0; st < 1 + two; st++) gp_plot_range(&p[st], rg);
    for (int st = 0; st < 2; st++) {
        p[st].x = gp_axis_nice(rg[0], rg[1], 8);
        p[st].y = gp_axis_nice(rg[2], rg[3], 7);
        /* one sparsity: the methods' points side by side around it, each with its error bar */
        p[st].dodge = max_points <= 1 && nm > 1 ? fmin(16, pw * 0.6 / nm) : 0;
        p[st].slots = nm;
    }
    gp_svg s;
    gp_status rc = gp_svg_open(&s, path, W, H, title, err);
    if (!rc) {
        gp_svg_text(&s, left - 50, 26, "font-size=\"16\" font-weight=\"bold\"", "%s", title);
        for (int st = 0; st < 1 + two; st++) gp_plot_panel(&s, &p[st], left + st * (pw + gap), top, pw, ph);
        /* the legend: the methods of either panel (the one-shot panel has them all) */
        const double lx = left + pw + (two ? gap + pw : 0) + 40;
        gp_svg_text(&s, lx, top - 2, "font-weight=\"bold\"", "method");
        gp_plot_legend(&s, ser[0], ns[0], refs, nrefs, lx, top + 16, legend_w);
        gp_svg_text(&s, left - 50, H - 24, "font-size=\"11\" fill=\"#333333\"",
                    "Bands%s: the dense score plus the paired 95%% bootstrap interval of the difference; clear of the dense "
                    "line, the change is significant.",
                    max_points <= 1 ? " (here error bars, methods side by side at the one sparsity)" : "");
        rc = gp_svg_close(&s, err);
    }
    for (int st = 0; st < 2; st++) {
        for (int m = 0; m < nm; m++) points_free(&pt[st][m]);
        free(pt[st]), free(ser[st]);
    }
    return rc;
}

/* ---- a mask's kept fractions --------------------------------------------------------------- */

/* The kind of a tensor: its name without the block's prefix ("...layer.3.") and ".weight". */
static void tensor_kind(const char *param, char *buf, size_t n) {
    const char *p = strstr(param, "layers.");
    p = p ? p + 7 : (p = strstr(param, "layer.")) ? p + 6 : NULL;
    if (p) {
        while (*p >= '0' && *p <= '9') p++;
        if (*p == '.') p++;
    } else {
        p = param;
    }
    snprintf(buf, n, "%s", p);
    const size_t l = strlen(buf);
    if (l > 7 && !strcmp(buf + l - 7, ".weight")) buf[l - 7] = '\0';
}

#define MAX_KINDS 16 /* tensor kinds drawn (a block has 4 to 9); the rest count in "all" only */

static gp_status mask_figure(const char *path, const char *mask_path, const char *tag, bool *skipped, gp_err *err) {
    *skipped = true;
    hid_t f = gp_h5_open_quiet(mask_path);
    if (f < 0) return GP_OK;
    size_t n = 0;
    gp_mask_summary_row *rw = gp_mask_summary_read(f, &n);
    char *method = gp_h5_read_attr_str(f, GP_MASK_ATTR_METHOD), *scope = gp_h5_read_attr_str(f, GP_MASK_ATTR_SCOPE);
    double target = NAN, achieved = NAN;
    gp_h5_read_attr_double(f, GP_MASK_ATTR_SPARSITY_TARGET, &target);
    gp_h5_read_attr_double(f, GP_MASK_ATTR_SPARSITY_ACHIEVED, &achieved);
    H5Fclose(f);
    int layers = 0;
    bool ok = rw != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        ok = rw[i].param && rw[i].numel > 0 && rw[i].kept >= 0 && rw[i].kept <= rw[i].numel && rw[i].layer < 100000;
        if (ok && rw[i].layer + 1 > layers) layers = rw[i].layer + 1;
    }
    gp_status rc = GP_OK;
    if (ok && layers > 0) {
        *skipped = false;
        char kinds[MAX_KINDS][128];
        int nk = 0;
        double *num = gp_calloc((size_t)(MAX_KINDS + 1) * (size_t)layers, sizeof(double)),
               *kept = gp_calloc((size_t)(MAX_KINDS + 1) * (size_t)layers, sizeof(double)),
               *y = gp_malloc((size_t)(MAX_KINDS + 1) * (size_t)layers * sizeof(double)),
               *x = gp_malloc((size_t)layers * sizeof(double));
        double out_num = 0, out_kept = 0; /* weights outside the blocks */
        for (int l = 0; l < layers; l++) x[l] = l;
        for (size_t i = 0; i < n; i++) {
            if (rw[i].layer < 0) {
                out_num += (double)rw[i].numel, out_kept += (double)rw[i].kept;
                continue;
            }
            char kd[128];
            tensor_kind(rw[i].param, kd, sizeof kd);
            int k = 0;
            while (k < nk && strcmp(kinds[k], kd)) k++;
            if (k == nk && nk < MAX_KINDS) snprintf(kinds[nk++], sizeof kinds[0], "%s", kd);
            const size_t all = (size_t)MAX_KINDS * (size_t)layers + (size_t)rw[i].layer;
            num[all] += (double)rw[i].numel, kept[all] += (double)rw[i].kept;
            if (k < nk) {
                num[(size_t)k * (size_t)layers + (size_t)rw[i].layer] += (double)rw[i].numel;
                kept[(size_t)k * (size_t)layers + (size_t)rw[i].layer] += (double)rw[i].kept;
            }
        }
        gp_plot_series ser[MAX_KINDS + 1];
        for (int k = 0; k <= nk; k++) {
            const int slot = k < nk ? k : MAX_KINDS;
            for (int l = 0; l < layers; l++) {
                const size_t at = (size_t)slot * (size_t)layers + (size_t)l;
                y[at] = num[at] > 0 ? kept[at] / num[at] : NAN;
            }
            /* the kinds first, "all" last and on top: black and thicker */
            ser[k] = (gp_plot_series){.name = k < nk ? kinds[k] : "all selected weights of the block",
                                      .x = x, .y = y + (size_t)slot * (size_t)layers, .n = layers, .style = k < nk ? k + 1 : 0,
                                      .shade = NAN, .color = k < nk ? NULL : "black", .width = k < nk ? 2 : 3};
        }
        char title[512], sub[512];
        snprintf(title, sizeof title, "mask %s: kept fraction per layer and tensor kind", tag);
        snprintf(sub, sizeof sub, "criterion %s, scope %s; sparsity target %.4g, achieved %.4g of the selected weights",
                 method ? method : "?", scope ? scope : "?", target, achieved);
        const double left = 80, top = 96, pw = 560, ph = 300, legend_w = 300;
        gp_plot p = {.title = NULL, .xlabel = "transformer block (layer)", .ylabel = "kept fraction (kept / selected weights)",
                     .series = ser, .nseries = nk + 1, .x = gp_axis_nice(0, layers - 1, layers < 13 ? layers : 13),
                     .y = gp_axis_nice(0, 1, 6)};
        gp_svg s;
        rc = gp_svg_open(&s, path, (int)(left + pw + 40 + legend_w), (int)(top + ph + 80), title, err);
        if (!rc) {
            gp_svg_text(&s, left - 50, 26, "font-size=\"16\" font-weight=\"bold\"", "%s", title);
            gp_svg_text(&s, left - 50, 48, "fill=\"#333333\"", "%s", sub);
            if (out_num > 0)
                gp_svg_text(&s, left - 50, 66, "fill=\"#333333\"", "outside the blocks: %.0f weights selected, kept fraction %.4f",
                            out_num, out_kept / out_num);
            gp_plot_panel(&s, &p, left, top, pw, ph);
            gp_svg_text(&s, left + pw + 40, top - 2, "font-weight=\"bold\"", "tensor kind");
            gp_plot_legend(&s, ser, nk + 1, NULL, 0, left + pw + 40, top + 16, legend_w);
            rc = gp_svg_close(&s, err);
        }
        free(num), free(kept), free(y), free(x);
    }
    gp_mask_summary_free(rw, n);
    free(method), free(scope);
    return rc;
}

/* ---- retraining losses --------------------------------------------------------------------- */

typedef struct {
    const char *method; /* NULL: the dense model retrained alike */
    double sparsity;
    double *loss, *x, *mean;
    int n;
} curve;

/* /loss of OUT/retrain-<tag>.h5 (every step done), or false. */
static bool read_loss(const char *out_dir, const char *tag, curve *c) {
    char name[256];
    snprintf(name, sizeof name, GP_RETRAIN_FILE_FMT, tag);
    char *path = gp_path_join(out_dir, name);
    hid_t f = gp_h5_open_quiet(path);
    free(path);
    if (f < 0) return false;
    hssize_t n = -1;
    if (H5Lexists(f, GP_RETRAIN_LOSS, H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(f, GP_RETRAIN_LOSS, H5P_DEFAULT);
        if (d >= 0) n = gp_h5_stored_points(d), H5Dclose(d);
    }
    bool ok = n > 0 && n < (1 << 26);
    if (ok) {
        c->n = (int)n;
        c->loss = gp_malloc((size_t)n * sizeof(double));
        ok = !gp_h5_read_f64(f, GP_RETRAIN_LOSS, c->loss, (size_t)n);
    }
    H5Fclose(f);
    if (!ok) {
        free(c->loss);
        c->loss = NULL;
        return false;
    }
    /* step numbers from 1, and the mean of the last w steps (w a tenth of the run, at least 1):
     * one batch's loss is noisy, the trend is what a reader compares */
    c->x = gp_malloc((size_t)n * sizeof(double));
    c->mean = gp_malloc((size_t)n * sizeof(double));
    const int w = c->n / 10 > 1 ? c->n / 10 : 1;
    double sum = 0;
    for (int i = 0; i < c->n; i++) {
        c->x[i] = i + 1;
        sum += c->loss[i];
        if (i >= w) sum -= c->loss[i - w];
        c->mean[i] = sum / (i + 1 < w ? i + 1 : w);
    }
    return true;
}

static int by_sparsity_curve(const void *a, const void *b) {
    const curve *x = a, *y = b;
    return (x->sparsity > y->sparsity) - (x->sparsity < y->sparsity);
}

static gp_status loss_figure(const char *path, const char *out_dir, const report *r, bool *skipped, gp_err *err) {
    curve *c = gp_calloc((size_t)r->n + 2, sizeof *c);
    int nc = 0;
    if (r->dense_retraining && read_loss(out_dir, "dense", &c[nc])) c[nc].method = NULL, c[nc].sparsity = 0, nc++;
    const int first = nc; /* the masks' curves, by sparsity */
    for (int i = 0; i < r->n; i++)
        if (r->rows[i].retraining && read_loss(out_dir, r->rows[i].tag, &c[nc])) {
            c[nc].method = r->rows[i].method, c[nc].sparsity = r->rows[i].sparsity;
            nc++;
        }
    *skipped = nc == 0;
    if (!nc) {
        free(c);
        return GP_OK;
    }
    qsort(c + first, (size_t)(nc - first), sizeof *c, by_sparsity_curve);
    /* the methods retrained (indices into r->methods), the distinct sparsities, and whether a
     * method has several: then a panel per method, its sparsities on the dark-to-light ramp */
    int *meth = gp_calloc((size_t)r->nmethods + 1, sizeof(int)), nmeth = 0, nsp = 0;
    double *sp = gp_calloc((size_t)nc + 1, sizeof(double));
    bool several = false;
    for (int m = 0; m < r->nmethods; m++) {
        int count = 0;
        for (int i = first; i < nc; i++) count += !strcmp(c[i].method, r->methods[m]);
        if (count) meth[nmeth++] = m;
        several |= count > 1;
    }
    for (int i = first; i < nc; i++)
        if (!nsp || sp[nsp - 1] != c[i].sparsity) sp[nsp++] = c[i].sparsity;
    const int npanels = several ? nmeth : 1, cols = npanels > 1 ? 2 : 1, prow = (npanels + cols - 1) / cols;
    /* each curve twice: its steps thin and faint, its running mean bold on top (the legend's) */
    gp_plot_series *ser = gp_calloc((size_t)nc * 2 + 1, sizeof *ser), *leg = gp_calloc((size_t)nc + 1, sizeof *leg);
    char(*names)[160] = gp_calloc((size_t)nc + 1, sizeof *names);
    int nleg = 0;
    double rg[4];
    gp_plot_range_init(rg);
    for (int i = 0; i < nc; i++) {
        const bool dense = !c[i].method;
        int q = 0; /* the sparsity's index */
        while (q < nsp - 1 && sp[q] != c[i].sparsity) q++;
        if (dense) snprintf(names[i], sizeof names[i], "dense, retrained alike");
        else if (several) snprintf(names[i], sizeof names[i], "sparsity %g", c[i].sparsity);
        else snprintf(names[i], sizeof names[i], "%s at %g", c[i].method, c[i].sparsity);
        /* the dense curve: black, and a dash and marker of its own (the style after the others') */
        gp_plot_series b = {.name = names[i], .x = c[i].x, .n = c[i].n,
                            .style = dense ? (several ? nsp : r->nmethods) : method_index(r, c[i].method), .shade = NAN,
                            .color = dense ? "black" : NULL};
        if (several && !dense) b.style = q, b.shade = nsp > 1 ? 0.85 * q / (nsp - 1) : 0;
        ser[2 * i] = b, ser[2 * i].y = c[i].loss, ser[2 * i].width = 0.8, ser[2 * i].opacity = 0.3, ser[2 * i].no_markers = true,
        ser[2 * i].solid = true;
        ser[2 * i + 1] = b, ser[2 * i + 1].y = c[i].mean, ser[2 * i + 1].width = 2.2;
        const gp_plot one = {.series = &ser[2 * i], .nseries = 2};
        gp_plot_range(&one, rg);
        /* the legend: every model of one panel, or (several) the dense one and each sparsity once */
        bool seen = false;
        for (int j = 0; j < nleg && several; j++) seen |= !strcmp(leg[j].name, names[i]);
        if (!seen) leg[nleg++] = ser[2 * i + 1];
    }
    const double left = 80, top = 70, pw = 420, ph = 260, gapx = 90, gapy = 100, legend_w = 250;
    const int W = (int)(left + cols * pw + (cols - 1) * gapx + 40 + legend_w), H = (int)(top + prow * ph + (prow - 1) * gapy + 100);
    const char *title = "retraining: InfoNCE loss per step";
    const int w = c[0].n / 10 > 1 ? c[0].n / 10 : 1;
    gp_plot_series *ps = gp_calloc((size_t)nc * 2 + 1, sizeof *ps);
    gp_svg s;
    gp_status rc = gp_svg_open(&s, path, W, H, title, err);
    if (!rc) {
        gp_svg_text(&s, left - 50, 26, "font-size=\"16\" font-weight=\"bold\"", "%s", title);
        for (int pn = 0; pn < npanels; pn++) {
            const char *pm = several ? r->methods[meth[pn]] : NULL;
            int n = 0;
            for (int i = 0; i < nc; i++)
                if (!pm || !c[i].method || !strcmp(c[i].method, pm)) ps[n++] = ser[2 * i], ps[n++] = ser[2 * i + 1];
            gp_plot p = {.title = pm ? pm : "every retrained model", .xlabel = "step", .ylabel = "InfoNCE loss (nats)",
                         .series = ps, .nseries = n, .x = gp_axis_nice(rg[0], rg[1], 8), .y = gp_axis_nice(rg[2], rg[3], 7)};
            gp_plot_panel(&s, &p, left + (pn % cols) * (pw + gapx), top + (pn / cols) * (ph + gapy), pw, ph);
        }
        const double lx = left + cols * pw + (cols - 1) * gapx + 40;
        gp_svg_text(&s, lx, top - 2, "font-weight=\"bold\"", "%s", several ? "in every panel" : "model");
        gp_plot_legend(&s, leg, nleg, NULL, 0, lx, top + 16, legend_w);
        gp_svg_text(&s, left - 50, H - 20, "font-size=\"11\" fill=\"#333333\"",
                    "Faint: each step's batch; bold: the mean of the last %d steps.", w);
        rc = gp_svg_close(&s, err);
    }
    for (int i = 0; i < nc; i++) free(c[i].loss), free(c[i].x), free(c[i].mean);
    free(c), free(meth), free(sp), free(ser), free(leg), free(names), free(ps);
    return rc;
}

/* ---- all of them --------------------------------------------------------------------------- */

gp_status gp_figures_write(const char *out_dir, const cJSON *j, gp_err *err) {
    report r;
    report_read(j, &r);
    int written = 0;
    gp_status rc = GP_OK;
    char name[512];
    for (int k = 0; k < NKINDS && !rc; k++) {
        const cJSON *sets = item(r.dense, kind_key(k));
        for (const cJSON *x = sets ? sets->child : NULL; x && !rc; x = x->next) {
            char *path = gp_path_join(out_dir, gp_figure_score_name(name, sizeof name, kind_key(k), x->string));
            rc = score_figure(path, &r, k, x->string, err);
            written += !rc;
            free(path);
        }
    }
    for (int i = 0; i < r.n && !rc; i++) {
        char mask[256];
        snprintf(mask, sizeof mask, GP_MASK_FILE_FMT, r.rows[i].tag);
        char *path = gp_path_join(out_dir, gp_figure_mask_name(name, sizeof name, r.rows[i].tag)), *mp = gp_path_join(out_dir, mask);
        bool skipped;
        rc = mask_figure(path, mp, r.rows[i].tag, &skipped, err);
        if (!rc && skipped) gp_warn("%s: no readable /" GP_MASK_SUMMARY " to draw: no %s", mp, name);
        written += !rc && !skipped;
        free(path), free(mp);
    }
    if (!rc) {
        char *path = gp_path_join(out_dir, GP_FIGURE_LOSS);
        bool skipped;
        rc = loss_figure(path, out_dir, &r, &skipped, err);
        written += !rc && !skipped;
        free(path);
    }
    if (!rc) gp_log0("report: %d figures (SVG) in %s", written, out_dir);
    report_free(&r);
    return rc;
}
