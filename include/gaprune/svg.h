/*
 * svg.h — gaprune's own small SVG writer: standalone figures with no plotting library (the
 * figures of `gaprune inspect --svg` and of `gaprune run`'s report, figures.h).
 *
 * Two levels:
 *  - primitives on a gp_svg (a file written through <path>.tmp and renamed, fs.h): text, lines,
 *    rectangles; every text is escaped for XML (& < > " ' and bytes that are not valid UTF-8 or
 *    not XML characters), so a set, method or file name can hold anything;
 *  - a panel of lines (gp_plot): axes with ticks at 1, 2 or 5 × 10^k (gp_axis_nice), grid, axis
 *    titles, series as lines with markers, a series' interval as a band (or, for a series of one
 *    point, an error bar), horizontal reference lines, and a legend. Series differ in lightness,
 *    dash pattern and marker, not in hue alone, so a grey print keeps them apart (gp_svg_style_of);
 *    a series with a shade in [0, 1] takes its colour from a dark-to-light ramp instead (an
 *    ordered family such as sparsities).
 *
 * Usage:
 *     gp_svg s;
 *     if (gp_svg_open(&s, "out/fig.svg", 900, 400, "title", &err)) return GP_EINPUT;
 *     gp_plot p = {.title = "...", .xlabel = "...", .ylabel = "...", .series = ser, .nseries = 3};
 *     double r[4]; gp_plot_range_init(r); gp_plot_range(&p, r);    // data extent (bands, references)
 *     p.x = gp_axis_nice(r[0], r[1], 6), p.y = gp_axis_nice(r[2], r[3], 6);
 *     gp_plot_panel(&s, &p, 70, 40, 600, 300);
 *     gp_plot_legend(&s, ser, 3, NULL, 0, 700, 50, 180);
 *     rc = gp_svg_close(&s, &err);                                  // </svg>, checked, renamed
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "gaprune/check.h"

typedef struct {
    FILE *f;
    char *path;
    int w, h;
} gp_svg;

/* Creates <path>.tmp and writes the header, a white background and the document's <title>. */
gp_status gp_svg_open(gp_svg *s, const char *path, int w, int h, const char *title, gp_err *err);
/* Ends the document and renames it into place (gp_file_commit); frees s's members either way. */
gp_status gp_svg_close(gp_svg *s, gp_err *err);

/* Writes text escaped for XML character data and attribute values. */
void gp_svg_escape(FILE *f, const char *text);
/* <text x y ATTRS>escaped printf text</text>; attrs is literal SVG ("" for none). */
void gp_svg_text(gp_svg *s, double x, double y, const char *attrs, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void gp_svg_line(gp_svg *s, double x1, double y1, double x2, double y2, const char *stroke, double width, const char *dash);
/* A rectangle; tooltip (escaped, NULL for none) becomes its <title>. */
void gp_svg_rect(gp_svg *s, double x, double y, double w, double h, const char *fill, const char *tooltip);

/* An axis from lo to hi: ticks at lo, lo + step, ..., n of them, the last at hi; or (n == 1) one
 * tick in the middle. */
typedef struct {
    double lo, hi, step;
    int n;
} gp_axis;
/* The smallest range of at most max_ticks ticks (1, 2 or 5 × 10^k apart) around [lo, hi]. A
 * single value (lo == hi) gets one tick at it, and a range around it; non-finite input [0, 1]. */
gp_axis gp_axis_nice(double lo, double hi, int max_ticks);
/* A tick's label with as many decimals as the step needs ("0.25", "40", "1e-05"). */
void gp_axis_label(const gp_axis *a, double v, char *buf, size_t n);

/* A style of the categorical table: colour (hex), dash pattern ("" solid), marker index. The
 * table's colours alternate dark and light, its dashes and markers cycle with other periods. */
typedef struct {
    const char *color, *dash;
    int marker;
} gp_svg_style;
gp_svg_style gp_svg_style_of(int i);
/* "#rrggbb" of the dark (0) to light (1) ramp into buf (8 bytes). */
void gp_svg_ramp(double t, char *buf);

typedef struct {
    const char *name;           /* legend label (escaped) */
    const double *x, *y;        /* n points; a NaN y is a gap */
    const double *lo, *hi;      /* the interval of each y (a band; an error bar when n == 1), or NULL */
    int n;
    int style;                  /* gp_svg_style_of index: dash and marker, and colour unless shaded */
    double shade;               /* NaN, or the colour's position on gp_svg_ramp */
    const char *color;          /* NULL, or the colour ("#rrggbb", "black") over the style's and the shade's */
    double width;               /* stroke width in px (0: 2) */
    double opacity;             /* of the line (0: 1) */
    bool no_markers;
    bool solid;                 /* without the style's dash (a faint line under its own mean) */
} gp_plot_series;

typedef struct {
    double y;
    const char *name; /* written at the line's right end (escaped) */
    const char *dash; /* "" solid */
} gp_plot_ref;

typedef struct {
    const char *title, *xlabel, *ylabel;
    const gp_plot_series *series;
    int nseries;
    const gp_plot_ref *refs;
    int nrefs;
    gp_axis x, y;
    double dodge; /* px between the series of one point each (side by side at one x), 0: none */
    int slots;    /* > 0: such a series' place is its style among slots places (one method, one place in
                   * every panel), else its index among the panel's series */
} gp_plot;

/* r = {xmin, xmax, ymin, ymax} of nothing yet; gp_plot_range widens it by p's points, bands and
 * reference lines (several panels on one scale share r). */
void gp_plot_range_init(double r[4]);
void gp_plot_range(const gp_plot *p, double r[4]);
/* Draws p in the box (x, y, w, h) of the plotting area; its ticks, axis titles and title go
 * outside the box (about 60 px left, 40 below, 24 above). */
void gp_plot_panel(gp_svg *s, const gp_plot *p, double x, double y, double w, double h);
/* A legend of the series (with their marker and dash) and reference lines, one a row from (x, y),
 * names cut to fit width px; returns the height used. */
double gp_plot_legend(gp_svg *s, const gp_plot_series *series, int n, const gp_plot_ref *refs, int nrefs, double x, double y,
                      double width);
