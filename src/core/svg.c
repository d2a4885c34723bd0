/* svg.c — gaprune's small SVG writer and line panels (see svg.h). */
#include "gaprune/svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gaprune/fs.h"

gp_status gp_svg_open(gp_svg *s, const char *path, int w, int h, const char *title, gp_err *err) {
    memset(s, 0, sizeof *s);
    s->f = gp_file_create(path, err);
    if (!s->f) return GP_EINPUT;
    s->path = gp_strdup(path);
    s->w = w, s->h = h;
    fprintf(s->f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n<title>",
            w, h, w, h);
    gp_svg_escape(s->f, title);
    fprintf(s->f, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    return GP_OK;
}

gp_status gp_svg_close(gp_svg *s, gp_err *err) {
    fprintf(s->f, "</svg>\n");
    const gp_status rc = gp_file_commit(s->f, s->path, err);
    free(s->path);
    memset(s, 0, sizeof *s);
    return rc;
}

/* The length of the valid UTF-8 sequence at p (1 to 4), or 0 when it is not one: an overlong
 * form, a surrogate, beyond U+10FFFF, or cut short. */
static int utf8_len(const unsigned char *p) {
    const unsigned c = p[0];
    int n;
    unsigned lo = 0x80, hi = 0xBF; /* the second byte's range */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}

void gp_svg_escape(FILE *f, const char *text) {
    static const char repl[] = "\xEF\xBF\xBD"; /* U+FFFD for what XML cannot hold */
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    while (*p) {
        const unsigned c = *p;
        switch (c) {
        case '&': fputs("&amp;", f); p++; continue;
        case '<': fputs("&lt;", f); p++; continue;
        case '>': fputs("&gt;", f); p++; continue;
        case '"': fputs("&quot;", f); p++; continue;
        case '\'': fputs("&apos;", f); p++; continue;
        default: break;
        }
        if (c < 0x20) { /* XML 1.0 allows tab, newline and return only; none belongs in a label */
            fputs(repl, f);
            p++;
            continue;
        }
        const int n = utf8_len(p);
        /* U+FFFE and U+FFFF are not XML characters either */
        if (!n || (n == 3 && p[0] == 0xEF && p[1] == 0xBF && p[2] >= 0xBE)) {
            fputs(repl, f);
            p++;
            continue;
        }
        fwrite(p, 1, (size_t)n, f);
        p += n;
    }
}

void gp_svg_text(gp_svg *s, double x, double y, const char *attrs, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(s->f, "<text x=\"%.1f\" y=\"%.1f\"%s%s>", x, y, *attrs ? " " : "", attrs);
    gp_svg_escape(s->f, buf);
    fputs("</text>\n", s->f);
}

void gp_svg_line(gp_svg *s, double x1, double y1, double x2, double y2, const char *stroke, double width, const char *dash) {
    fprintf(s->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.2g\"", x1, y1, x2, y2,
            stroke, width);
    if (dash && *dash) fprintf(s->f, " stroke-dasharray=\"%s\"", dash);
    fputs("/>\n", s->f);
}

void gp_svg_rect(gp_svg *s, double x, double y, double w, double h, const char *fill, const char *tooltip) {
    fprintf(s->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"", x, y, w, h, fill);
    if (!tooltip) {
        fputs("/>\n", s->f);
        return;
    }
    fputs("><title>", s->f);
    gp_svg_escape(s->f, tooltip);
    fputs("</title></rect>\n", s->f);
}

/* ---- axes ---------------------------------------------------------------------------------- */

gp_axis gp_axis_nice(double lo, double hi, int max_ticks) {
    if (!isfinite(lo) || !isfinite(hi) || lo > hi) lo = 0, hi = 1;
    if (max_ticks < 2) max_ticks = 2;
    if (lo == hi) { /* one value: one tick, and room either side (a step of the value's size) */
        const double d = lo != 0 ? pow(10, floor(log10(fabs(lo)))) : 1;
        return (gp_axis){lo - d, hi + d, d, 1};
    }
    const double raw = (hi - lo) / (max_ticks - 1), mag = pow(10, floor(log10(raw)));
    static const double mult[] = {1, 2, 5, 10, 20};
    gp_axis a = {lo, hi, raw, 2};
    /* ticks k · m / 10^e below 1, so that 3 · 1 / 10 is the double nearest 0.3 (3 · 0.1 is not) */
    const double inv = mag < 1 ? round(1 / mag) : 1, unit = mag < 1 ? 1 : mag;
    for (size_t i = 0; i < sizeof mult / sizeof *mult; i++) {
        const double m = mult[i] * unit, step = m / inv;
        /* a value a hair past a tick (a sum's rounding) stays on it */
        const double k0 = floor(lo / step + 1e-9), k1 = ceil(hi / step - 1e-9);
        const int n = (int)lround(k1 - k0) + 1;
        if (n <= max_ticks) {
            a = (gp_axis){k0 * m / inv + 0.0, k1 * m / inv + 0.0, step, n}; /* + 0.0: no -0 */
            break;
        }
    }
    return a;
}

/* The first tick: lo, or the single value in the middle of a one-tick axis. */
static double tick0(const gp_axis *a) { return a->n == 1 ? (a->lo + a->hi) / 2 : a->lo; }

void gp_axis_label(const gp_axis *a, double v, char *buf, size_t n) {
    const double mag = fmax(fabs(a->lo), fabs(a->hi));
    if (fabs(v) < a->step * 1e-6) v = 0; /* a multiple of the step that should be 0 */
    if (mag >= 1e6 || (a->step < 1e-4 && a->n > 1)) {
        snprintf(buf, n, "%g", v);
        return;
    }
    const double step = a->n == 1 ? fabs(v) : a->step;
    int dec = step >= 1 || step == 0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (a->n == 1) { /* the value itself: as many decimals as it has, up to 6 */
        dec = 0;
        while (dec < 6 && fabs(v * pow(10, dec) - round(v * pow(10, dec))) > 1e-9) dec++;
    }
    snprintf(buf, n, "%.*f", dec, v);
}

/* ---- styles -------------------------------------------------------------------------------- */

/* Alternately dark and light (relative luminance 0.03, 0.42, 0.10, 0.41, 0.26, 0.11, 0.32, 0.08;
 * the lightest still 2.2:1 against white), with dashes of period 4 and markers of period 7 on top. */
static const char *const k_colors[8] = {"#08306b", "#e69f00", "#b2182b", "#7fbc41",
                                        "#4393c3", "#8c510a", "#e0805f", "#5e3c99"};
static const char *const k_dashes[4] = {"", "7 4", "2 3", "9 3 2 3"};
enum { NMARKERS = 7 };

gp_svg_style gp_svg_style_of(int i) {
    if (i < 0) i = 0;
    return (gp_svg_style){k_colors[i % 8], k_dashes[i % 4], i % NMARKERS};
}

void gp_svg_ramp(double t, char *buf) {
    static const double stop[3][3] = {{8, 48, 107}, {33, 145, 140}, {240, 200, 60}}; /* grey 0.03, 0.22, 0.6 */
    t = isfinite(t) ? fmin(fmax(t, 0), 1) : 0;
    const int k = t < 0.5 ? 0 : 1;
    const double u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
    int c[3];
    for (int i = 0; i < 3; i++) c[i] = (int)lround(stop[k][i] + u * (stop[k + 1][i] - stop[k][i]));
    snprintf(buf, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

/* ---- panels -------------------------------------------------------------------------------- */

void gp_plot_range_init(double r[4]) { r[0] = r[2] = INFINITY, r[1] = r[3] = -INFINITY; }

static void widen(double *lo, double *hi, double v) {
    if (isfinite(v)) *lo = fmin(*lo, v), *hi = fmax(*hi, v);
}

void gp_plot_range(const gp_plot *p, double r[4]) {
    for (int i = 0; i < p->nseries; i++) {
        const gp_plot_series *q = &p->series[i];
        for (int k = 0; k < q->n; k++) {
            if (!isfinite(q->y[k])) continue;
            widen(&r[0], &r[1], q->x[k]);
            widen(&r[2], &r[3], q->y[k]);
            if (q->lo) widen(&r[2], &r[3], q->lo[k]);
            if (q->hi) widen(&r[2], &r[3], q->hi[k]);
        }
    }
    for (int i = 0; i < p->nrefs; i++) widen(&r[2], &r[3], p->refs[i].y);
}

typedef struct {
    double x, y, w, h;
    gp_axis ax, ay;
} frame;

static double fx(const frame *f, double v) { return f->x + (v - f->ax.lo) / (f->ax.hi - f->ax.lo) * f->w; }
static double fy(const frame *f, double v) { return f->y + f->h - (v - f->ay.lo) / (f->ay.hi - f->ay.lo) * f->h; }

static void series_color(const gp_plot_series *q, char *buf) {
    if (q->color) snprintf(buf, 8, "%s", q->color);
    else if (isfinite(q->shade)) gp_svg_ramp(q->shade, buf);
    else snprintf(buf, 8, "%s", gp_svg_style_of(q->style).color);
}

/* Marker k at (x, y): filled (0-3) or hollow with a white inside (4-6), so they differ in grey too. */
static void marker(gp_svg *s, int k, double x, double y, const char *color) {
    const double r = 4.5;
    const bool hollow = k >= 4;
    char paint[96];
    snprintf(paint, sizeof paint, "fill=\"%s\" stroke=\"%s\" stroke-width=\"%s\"", hollow ? "white" : color, color,
             hollow ? "1.6" : "0.8");
    switch (k % NMARKERS) {
    case 0:
    case 4: fprintf(s->f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" %s/>\n", x, y, r, paint); break;
    case 1:
    case 5:
        fprintf(s->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" %s/>\n", x - r * 0.85, y - r * 0.85, r * 1.7,
                r * 1.7, paint);
        break;
    case 2:
        fprintf(s->f, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" %s/>\n", x, y - r * 1.15, x + r, y + r * 0.75, x - r,
                y + r * 0.75, paint);
        break;
    case 3:
        fprintf(s->f, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" %s/>\n", x, y - r * 1.2, x + r, y, x, y + r * 1.2,
                x - r, y, paint);
        break;
    default: /* 6: a triangle pointing down */
        fprintf(s->f, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" %s/>\n", x, y + r * 1.15, x + r, y - r * 0.75, x - r,
                y - r * 0.75, paint);
        break;
    }
}

/* The band of a series: one closed path per run of points with a finite interval. */
static void band(gp_svg *s, const frame *f, const gp_plot_series *q, const char *color, double opacity) {
    int k = 0;
    while (k < q->n) {
        while (k < q->n && !(isfinite(q->lo[k]) && isfinite(q->hi[k]) && isfinite(q->x[k]))) k++;
        int e = k;
        while (e < q->n && isfinite(q->lo[e]) && isfinite(q->hi[e]) && isfinite(q->x[e])) e++;
        if (e - k >= 2) {
            fprintf(s->f, "<path d=\"");
            for (int i = k; i < e; i++) fprintf(s->f, "%s%.1f %.1f", i == k ? "M" : "L", fx(f, q->x[i]), fy(f, q->hi[i]));
            for (int i = e - 1; i >= k; i--) fprintf(s->f, "L%.1f %.1f", fx(f, q->x[i]), fy(f, q->lo[i]));
            fprintf(s->f, "Z\" class=\"band\" fill=\"%s\" fill-opacity=\"%.3f\" stroke=\"%s\" stroke-opacity=\"0.35\" "
                          "stroke-width=\"0.6\"/>\n",
                    color, opacity, color);
        }
        k = e;
    }
}

static void error_bar(gp_svg *s, double x, double ylo, double yhi, const char *color) {
    gp_svg_line(s, x, ylo, x, yhi, color, 1.6, "");
    gp_svg_line(s, x - 4, ylo, x + 4, ylo, color, 1.6, "");
    gp_svg_line(s, x - 4, yhi, x + 4, yhi, color, 1.6, "");
}

void gp_plot_panel(gp_svg *s, const gp_plot *p, double x, double y, double w, double h) {
    frame f = {x, y, w, h, p->x, p->y};
    if (!(f.ax.hi > f.ax.lo)) f.ax = gp_axis_nice(f.ax.lo, f.ax.hi, 2);
    if (!(f.ay.hi > f.ay.lo)) f.ay = gp_axis_nice(f.ay.lo, f.ay.hi, 2);
    fprintf(s->f, "<g class=\"panel\">\n");
    /* grid and ticks */
    char lb[64];
    for (int i = 0; i < f.ay.n; i++) {
        const double v = tick0(&f.ay) + i * f.ay.step, py = fy(&f, v);
        gp_svg_line(s, x, py, x + w, py, "#d9d9d9", 1, "");
        gp_svg_line(s, x - 5, py, x, py, "black", 1, "");
        gp_axis_label(&f.ay, v, lb, sizeof lb);
        gp_svg_text(s, x - 8, py + 4, "text-anchor=\"end\"", "%s", lb);
    }
    for (int i = 0; i < f.ax.n; i++) {
        const double v = tick0(&f.ax) + i * f.ax.step, px = fx(&f, v);
        gp_svg_line(s, px, y, px, y + h, "#ececec", 1, "");
        gp_svg_line(s, px, y + h, px, y + h + 5, "black", 1, "");
        gp_axis_label(&f.ax, v, lb, sizeof lb);
        gp_svg_text(s, px, y + h + 18, "text-anchor=\"middle\"", "%s", lb);
    }
    gp_svg_line(s, x, y + h, x + w, y + h, "black", 1.2, "");
    gp_svg_line(s, x, y, x, y + h, "black", 1.2, "");
    if (p->title) gp_svg_text(s, x + w / 2, y - 10, "text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\"", "%s", p->title);
    if (p->xlabel) gp_svg_text(s, x + w / 2, y + h + 38, "text-anchor=\"middle\"", "%s", p->xlabel);
    if (p->ylabel) {
        char rot[96];
        snprintf(rot, sizeof rot, "text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\"", x - 52, y + h / 2);
        gp_svg_text(s, x - 52, y + h / 2, rot, "%s", p->ylabel);
    }
    /* bands under everything, then the reference lines, the lines, the markers on top */
    char col[8];
    int nbands = 0;
    for (int i = 0; i < p->nseries; i++) nbands += p->series[i].lo && p->series[i].hi && p->series[i].n >= 2;
    /* bands that overlap add up: together at most about as dark as one of three */
    const double opacity = fmin(0.16, 0.5 / (nbands ? nbands : 1));
    for (int i = 0; i < p->nseries; i++) {
        const gp_plot_series *q = &p->series[i];
        series_color(q, col);
        if (q->lo && q->hi && q->n >= 2) band(s, &f, q, col, opacity);
    }
    for (int i = 0; i < p->nrefs; i++) {
        const double py = fy(&f, p->refs[i].y);
        if (!isfinite(py)) continue;
        gp_svg_line(s, x, py, x + w, py, "black", 1.5, p->refs[i].dash);
        /* names alternately at the right and the left end: two close lines keep theirs apart */
        if (p->refs[i].name)
            gp_svg_text(s, i % 2 ? x + 4 : x + w - 4, py - 5,
                        i % 2 ? "text-anchor=\"start\" font-size=\"11\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\""
                              : "text-anchor=\"end\" font-size=\"11\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\"",
                        "%s", p->refs[i].name);
    }
    for (int i = 0; i < p->nseries; i++) {
        const gp_plot_series *q = &p->series[i];
        const gp_svg_style st = gp_svg_style_of(q->style);
        series_color(q, col);
        fprintf(s->f, "<g class=\"series\"><title>");
        gp_svg_escape(s->f, q->name);
        fprintf(s->f, "</title>\n");
        /* one point: beside the others at that x (dodge), with its interval as an error bar */
        const double off = q->n != 1 ? 0
                           : p->slots > 0 ? (q->style - (p->slots - 1) / 2.0) * p->dodge
                                          : (i - (p->nseries - 1) / 2.0) * p->dodge;
        bool pen = false;
        for (int k = 0; k < q->n; k++) {
            if (!isfinite(q->y[k]) || !isfinite(q->x[k])) {
                pen = false;
                continue;
            }
            const bool next = k + 1 < q->n && isfinite(q->y[k + 1]) && isfinite(q->x[k + 1]);
            if (!pen && next) {
                fprintf(s->f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.2g\" stroke-linejoin=\"round\"", col,
                        q->width > 0 ? q->width : 2);
                if (*st.dash && !q->solid) fprintf(s->f, " stroke-dasharray=\"%s\"", st.dash);
                if (q->opacity > 0 && q->opacity < 1) fprintf(s->f, " stroke-opacity=\"%.2g\"", q->opacity);
                fprintf(s->f, " d=\"M%.1f %.1f", fx(&f, q->x[k]) + off, fy(&f, q->y[k]));
                pen = true;
            } else if (pen) {
                fprintf(s->f, "L%.1f %.1f", fx(&f, q->x[k]) + off, fy(&f, q->y[k]));
            }
            if (pen && !next) {
                fprintf(s->f, "\"/>\n");
                pen = false;
            }
        }
        /* a point whose neighbours have no interval: its own error bar */
        for (int k = 0; q->lo && q->hi && k < q->n; k++) {
            const bool lone = (k == 0 || !isfinite(q->lo[k - 1])) && (k + 1 == q->n || !isfinite(q->lo[k + 1]));
            if (lone && isfinite(q->lo[k]) && isfinite(q->hi[k]) && isfinite(q->x[k]))
                error_bar(s, fx(&f, q->x[k]) + off, fy(&f, q->lo[k]), fy(&f, q->hi[k]), col);
        }
        const int every = q->n <= 12 ? 1 : (q->n + 7) / 8; /* a long curve: about 8 markers, enough to tell it */
        for (int k = 0; !q->no_markers && k < q->n; k++)
            if (isfinite(q->y[k]) && isfinite(q->x[k]) && (k % every == 0 || k == q->n - 1))
                marker(s, st.marker, fx(&f, q->x[k]) + off, fy(&f, q->y[k]), col);
        fprintf(s->f, "</g>\n");
    }
    fprintf(s->f, "</g>\n");
}

/* name cut to at most max characters (of UTF-8: a sequence is never split), "…" marking the cut */
static void cut(const char *name, int max, char *buf, size_t n) {
    int chars = 0;
    size_t i = 0;
    const unsigned char *p = (const unsigned char *)(name ? name : "");
    while (p[i] && chars < max) {
        size_t k = 1;
        while (p[i + k] && (p[i + k] & 0xC0) == 0x80) k++;
        i += k, chars++;
    }
    if (!p[i] || i + 4 > n) {
        snprintf(buf, n, "%.*s", (int)(i < n ? i : n - 1), (const char *)p);
        return;
    }
    size_t back = i;
    while (chars > max - 1 && back > 0) { /* room for the ellipsis */
        back--;
        while (back > 0 && (p[back] & 0xC0) == 0x80) back--;
        chars--;
    }
    snprintf(buf, n, "%.*s\xE2\x80\xA6", (int)back, (const char *)p);
}

double gp_plot_legend(gp_svg *s, const gp_plot_series *series, int n, const gp_plot_ref *refs, int nrefs, double x, double y,
                      double width) {
    const double row = 18;
    const int max = (int)((width - 42) / 6.8); /* about 6.8 px a character at 12 px */
    char name[512], col[8];
    fprintf(s->f, "<g class=\"legend\">\n");
    for (int i = 0; i < n; i++) {
        const gp_plot_series *q = &series[i];
        const gp_svg_style st = gp_svg_style_of(q->style);
        const double cy = y + i * row;
        series_color(q, col);
        gp_svg_line(s, x, cy, x + 32, cy, col, q->width > 0 ? fmax(q->width, 2) : 2, st.dash);
        if (!q->no_markers) marker(s, st.marker, x + 16, cy, col);
        cut(q->name, max, name, sizeof name);
        gp_svg_text(s, x + 40, cy + 4, "", "%s", name);
    }
    for (int i = 0; i < nrefs; i++) {
        const double cy = y + (n + i) * row;
        gp_svg_line(s, x, cy, x + 32, cy, "black", 1.5, refs[i].dash);
        cut(refs[i].name, max, name, sizeof name);
        gp_svg_text(s, x + 40, cy + 4, "", "%s", name);
    }
    fprintf(s->f, "</g>\n");
    return (n + nrefs) * row;
}
