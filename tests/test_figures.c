/* test_figures.c — the SVG writer (svg.h) and the report's figures (figures.h):
 *  - axes: nice ranges and ticks (1, 2, 5 × 10^k), one value, labels without "-0";
 *  - the writer: names with & < > " ', control bytes and invalid UTF-8 come out as well-formed
 *    XML (escaped, U+FFFD); a panel has one series group per series, a legend one row each;
 *    a panel's range covers the points, the bands and the reference lines;
 *  - the figures of a report document with its mask and retraining files: a score figure per set
 *    (one-shot and retrained panels, a series per method, bands from the comparisons), a mask
 *    figure per mask (a series per tensor kind plus "all"), the loss figure; with one sparsity the
 *    intervals become error bars; file names keep only [A-Za-z0-9._-];
 *  - every figure rendered by a real renderer (rsvg-convert, librsvg2-bin) to PNG at the size asked:
 *    exit 0, a PNG signature, IHDR of that size, and the decoded pixels (zlib, PNG's filters) not
 *    blank: some dark ink (text, axes) and some coloured ink (the series).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "test_util.h"

#include <cmocka.h>
#include <cJSON.h>

#include "gaprune/figures.h"
#include "gaprune/fs.h"
#include "gaprune/h5.h"
#include "gaprune/log.h"
#include "gaprune/mask_file.h"
#include "gaprune/retrain_file.h"
#include "gaprune/svg.h"

static char *g_dir;

static int setup(void **state) {
    (void)state;
    g_dir = tu_mkdtemp();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (getenv("GAPRUNE_TEST_KEEP")) /* to look at the figures and their PNGs */
        printf("    kept %s\n", g_dir);
    else
        tu_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* ---- axes ---------------------------------------------------------------------------------- */

static void expect_axis(double lo, double hi, int max, double want_lo, double want_hi, double want_step, int want_n) {
    const gp_axis a = gp_axis_nice(lo, hi, max);
    if (fabs(a.lo - want_lo) > 1e-12 || fabs(a.hi - want_hi) > 1e-12 || fabs(a.step - want_step) > 1e-12 || a.n != want_n)
        fail_msg("axis of [%g, %g] in %d ticks: [%g, %g] step %g, %d ticks; want [%g, %g] step %g, %d ticks", lo, hi, max, a.lo,
                 a.hi, a.step, a.n, want_lo, want_hi, want_step, want_n);
    assert_true(a.n <= max || want_n == 1);
}

static void test_axes(void **state) {
    (void)state;
    expect_axis(0.31, 0.78, 6, 0.3, 0.8, 0.1, 6);
    expect_axis(0, 1, 6, 0, 1, 0.2, 6);
    expect_axis(-0.013, 0.004, 5, -0.015, 0.005, 0.005, 5);
    expect_axis(1, 100, 8, 0, 100, 20, 6);
    expect_axis(2.1, 3.9, 8, 2, 4, 0.5, 5); /* 0.2 would need 11 */
    expect_axis(0.5, 0.5, 8, 0.4, 0.6, 0.1, 1); /* one sparsity: one tick, room either side */
    expect_axis(NAN, 1, 6, 0, 1, 0.2, 6);
    char b[32];
    gp_axis a = gp_axis_nice(-0.013, 0.004, 5);
    gp_axis_label(&a, -0.015 + 3 * a.step, b, sizeof b); /* a rounding hair from 0 */
    assert_string_equal(b, "0.000");
    gp_axis_label(&a, -0.015, b, sizeof b);
    assert_string_equal(b, "-0.015");
    a = gp_axis_nice(0.31, 0.78, 6);
    gp_axis_label(&a, 0.7, b, sizeof b);
    assert_string_equal(b, "0.7");
    a = gp_axis_nice(1, 100, 8);
    gp_axis_label(&a, 40, b, sizeof b);
    assert_string_equal(b, "40");
    a = gp_axis_nice(0.65, 0.65, 8);
    gp_axis_label(&a, 0.65, b, sizeof b); /* the single value with its own decimals */
    assert_string_equal(b, "0.65");
}

/* ---- the writer ---------------------------------------------------------------------------- */

static void test_escaping_and_series(void **state) {
    (void)state;
    char *path = gp_path_join(g_dir, "unit.svg");
    const char *nasty = "a<b & \"c\" 'd'> \x01 \xff\xfe caf\xc3\xa9 \xed\xa0\x80"; /* control, invalid, valid é, a surrogate */
    gp_svg s;
    gp_err err = {0};
    assert_int_equal(gp_svg_open(&s, path, 640, 360, nasty, &err), GP_OK);
    const double x[3] = {0.3, 0.5, 0.6}, y1[3] = {0.8, 0.7, 0.5}, lo1[3] = {0.75, 0.6, 0.3}, hi1[3] = {0.85, 0.75, 0.62},
                 y2[3] = {0.81, NAN, 0.4};
    const gp_plot_series ser[3] = {
        {.name = nasty, .x = x, .y = y1, .lo = lo1, .hi = hi1, .n = 3, .style = 0, .shade = NAN},
        {.name = "second", .x = x, .y = y2, .n = 3, .style = 1, .shade = NAN},
        {.name = "ramp", .x = x, .y = y2, .n = 3, .style = 2, .shade = 0.5},
    };
    const gp_plot_ref ref = {0.9, "dense 0.9 <ref>", ""};
    gp_plot p = {.title = "t & t", .xlabel = "x", .ylabel = "y", .series = ser, .nseries = 3, .refs = &ref, .nrefs = 1};
    double r[4];
    gp_plot_range_init(r);
    gp_plot_range(&p, r);
    /* x from the points; y from the lowest band edge (0.3) to the reference line (0.9) */
    assert_true(r[0] == 0.3 && r[1] == 0.6 && r[2] == 0.3 && r[3] == 0.9);
    p.x = gp_axis_nice(r[0], r[1], 6), p.y = gp_axis_nice(r[2], r[3], 7);
    assert_true(p.y.lo == 0.3 && p.y.hi == 0.9 && p.y.n == 7); /* the doubles nearest, as labels need */
    gp_plot_panel(&s, &p, 70, 40, 400, 260);
    assert_true(gp_plot_legend(&s, ser, 3, &ref, 1, 490, 50, 140) == 4 * 18);
    /* five bands in one panel: each fainter (0.5 / 5), so that together they stay light */
    gp_plot_series five[5];
    for (int i = 0; i < 5; i++) five[i] = ser[0], five[i].style = i + 3;
    const gp_plot p5 = {.series = five, .nseries = 5, .x = p.x, .y = p.y};
    gp_plot_panel(&s, &p5, 70, 340, 400, 10);
    assert_int_equal(gp_svg_close(&s, &err), GP_OK);
    char *svg = tu_read_file(path, NULL);
    assert_non_null(svg);
    assert_int_equal(count(svg, "<g class=\"series\">"), 3 + 5);
    assert_int_equal(count(svg, "<g class=\"legend\">"), 1);
    assert_int_equal(count(svg, "fill-opacity=\"0.100\""), 5);
    /* the escaped name: in the document's title, the series' title and the legend (cut to fit) */
    const char *esc = "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt; \xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD caf\xc3\xa9 \xEF\xBF\xBD";
    assert_int_equal(count(svg, esc), 2 + 5);
    assert_non_null(strstr(svg, "dense 0.9 &lt;ref&gt;"));
    assert_non_null(strstr(svg, "t &amp; t"));
    assert_null(strstr(svg, "<b"));
    assert_null(strstr(svg, "\x01"));
    assert_null(strstr(svg, "\xff"));
    /* the band of the first series: one closed path; the NaN leaves the others in two pieces, no line
     * (the five-band panel adds five lines) */
    assert_int_equal(count(svg, "class=\"band\" fill=\"#08306b\" fill-opacity=\"0.160\""), 1);
    assert_int_equal(count(svg, "<path fill=\"none\""), 1 + 5);
    /* the ramp's middle colour */
    char mid[8];
    gp_svg_ramp(0.5, mid);
    assert_string_equal(mid, "#21918c");
    assert_non_null(strstr(svg, mid));
    /* the y ticks 0.3 ... 0.9 with one decimal */
    for (int i = 3; i <= 9; i++) {
        char t[64];
        snprintf(t, sizeof t, "text-anchor=\"end\">0.%d</text>", i);
        if (!strstr(svg, t)) fail_msg("no y tick label 0.%d", i);
    }
    free(svg);
    free(path);
}

/* Styles: neighbours differ in dash or marker, so a grey print tells them apart. */
static void test_styles(void **state) {
    (void)state;
    for (int i = 0; i < 24; i++)
        for (int j = i + 1; j < 24; j++) {
            const gp_svg_style a = gp_svg_style_of(i), b = gp_svg_style_of(j);
            if (!strcmp(a.dash, b.dash) && a.marker == b.marker && !strcmp(a.color, b.color))
                fail_msg("styles %d and %d look the same", i, j);
        }
}

/* ---- PNG ----------------------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Decodes an 8-bit RGB or RGBA PNG (not interlaced) into RGBA; returns the pixels (malloc'd). */
static unsigned char *png_decode(const unsigned char *b, size_t n, uint32_t *w, uint32_t *h) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 33 || memcmp(b, sig, 8) || memcmp(b + 12, "IHDR", 4)) fail_msg("not a PNG");
    *w = be32(b + 16), *h = be32(b + 20);
    const int depth = b[24], ctype = b[25], interlace = b[28];
    if (depth != 8 || (ctype != 6 && ctype != 2) || interlace) fail_msg("PNG depth %d, type %d, interlace %d", depth, ctype, interlace);
    const int bpp = ctype == 6 ? 4 : 3;
    unsigned char *z = malloc(n), *raw;
    size_t zn = 0;
    for (size_t at = 8; at + 12 <= n;) {
        const uint32_t len = be32(b + at);
        if (at + 12 + len > n) fail_msg("PNG chunk past the end");
        if (!memcmp(b + at + 4, "IDAT", 4)) memcpy(z + zn, b + at + 8, len), zn += len;
        at += 12 + len;
    }
    const size_t stride = (size_t)*w * bpp, rawn = (stride + 1) * *h;
    uLongf got = (uLongf)rawn;
    raw = malloc(rawn);
    if (uncompress(raw, &got, z, (uLong)zn) != Z_OK || got != rawn) fail_msg("PNG data does not inflate to %zu bytes", rawn);
    unsigned char *px = calloc((size_t)*w * *h, 4), *prev = calloc(stride, 1), *cur = malloc(stride);
    for (uint32_t y = 0; y < *h; y++) {
        const unsigned char f = raw[y * (stride + 1)], *in = raw + y * (stride + 1) + 1;
        for (size_t i = 0; i < stride; i++) {
            const int a = i >= (size_t)bpp ? cur[i - bpp] : 0, up = prev[i], c = i >= (size_t)bpp ? prev[i - bpp] : 0;
            int pred = 0;
            if (f == 1) pred = a;
            else if (f == 2) pred = up;
            else if (f == 3) pred = (a + up) / 2;
            else if (f == 4) {
                const int p = a + up - c, pa = abs(p - a), pb = abs(p - up), pc = abs(p - c);
                pred = pa <= pb && pa <= pc ? a : pb <= pc ? up : c;
            } else if (f != 0) fail_msg("PNG filter %d", f);
            cur[i] = (unsigned char)(in[i] + pred);
        }
        for (uint32_t x = 0; x < *w; x++) {
            unsigned char *o = px + ((size_t)y * *w + x) * 4;
            memcpy(o, cur + (size_t)x * bpp, 3);
            o[3] = bpp == 4 ? cur[(size_t)x * 4 + 3] : 255;
        }
        memcpy(prev, cur, stride);
    }
    free(z), free(raw), free(prev), free(cur);
    return px;
}

/* The SVG's own width and height (its root element's). */
static void svg_size(const char *svg, int *w, int *h) {
    const char *p = strstr(svg, "<svg ");
    assert_non_null(p);
    assert_int_equal(sscanf(strstr(p, "width=\"") + 7, "%d", w), 1);
    assert_int_equal(sscanf(strstr(p, "height=\"") + 8, "%d", h), 1);
}

typedef struct {
    double ms;
    long bytes;
    double dark, colour; /* fractions of the pixels */
} render;

/* Renders the SVG at path with rsvg-convert at its own size, checks the PNG and counts ink. */
static render render_check(const char *path) {
    render r = {0};
    char *svg = tu_read_file(path, NULL);
    assert_non_null(svg);
    r.bytes = (long)strlen(svg);
    int w, h;
    svg_size(svg, &w, &h);
    free(svg);
    char png[5000];
    snprintf(png, sizeof png, "%s.png", path);
    const double t0 = gp_now();
    char cmd[16000];
    snprintf(cmd, sizeof cmd, "rsvg-convert -w %d -h %d -f png -o '%s' '%s' 2>'%s.err'", w, h, png, path, path);
    const int rc = system(cmd);
    r.ms = (gp_now() - t0) * 1e3;
    if (rc != 0) {
        char e[5000];
        snprintf(e, sizeof e, "%s.err", path);
        char *msg = tu_read_file(e, NULL);
        fail_msg("rsvg-convert %s: status %d (librsvg2-bin installed? `make deps`): %s", path, rc, msg ? msg : "");
    }
    size_t n;
    unsigned char *b = (unsigned char *)tu_read_file(png, &n);
    assert_non_null(b);
    uint32_t pw, ph;
    unsigned char *px = png_decode(b, n, &pw, &ph);
    if ((int)pw != w || (int)ph != h) fail_msg("%s: PNG %ux%u, asked %dx%d", path, pw, ph, w, h);
    size_t dark = 0, colour = 0;
    for (size_t i = 0; i < (size_t)pw * ph; i++) {
        const unsigned char *p = px + i * 4;
        const int mx = p[0] > p[1] ? (p[0] > p[2] ? p[0] : p[2]) : (p[1] > p[2] ? p[1] : p[2]);
        const int mn = p[0] < p[1] ? (p[0] < p[2] ? p[0] : p[2]) : (p[1] < p[2] ? p[1] : p[2]);
        if (p[3] < 250) fail_msg("%s: a transparent pixel: the white background is missing", path);
        dark += mx < 100;
        colour += mx - mn > 60;
    }
    r.dark = (double)dark / ((double)pw * ph), r.colour = (double)colour / ((double)pw * ph);
    free(px), free(b);
    return r;
}

/* ---- the report's figures ------------------------------------------------------------------ */

static cJSON *eval_doc(double ret, double sts) {
    cJSON *d = cJSON_CreateObject(), *r = cJSON_AddObjectToObject(d, "retrieval"), *s = cJSON_AddObjectToObject(d, "sts");
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(r, "set<&>1"), "main_score", ret);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(s, "sts.jsonl"), "main_score", sts);
    return d;
}

static void add_pair(cJSON *pairs, const char *set, const char *kind, const char *stage, const char *b, double lo, double hi) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "set", set);
    cJSON_AddStringToObject(c, "kind", kind);
    cJSON_AddStringToObject(c, "stage", stage);
    cJSON_AddStringToObject(c, "a", "dense");
    cJSON_AddStringToObject(c, "b", b);
    cJSON_AddNumberToObject(c, "lo", lo);
    cJSON_AddNumberToObject(c, "hi", hi);
    cJSON_AddItemToArray(pairs, c);
}

/* A mask file of 4 blocks with the BERT kinds: block l keeps less the deeper it is. */
static void write_mask(const char *dir, const char *tag, const char *method, double sparsity) {
    char name[4800];
    snprintf(name, sizeof name, "%s/" GP_MASK_FILE_FMT, dir, tag);
    hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    gp_h5_attr_str(f, GP_MASK_ATTR_METHOD, method);
    gp_h5_attr_str(f, GP_MASK_ATTR_SCOPE, "global");
    gp_h5_attr_double(f, GP_MASK_ATTR_SPARSITY_TARGET, sparsity);
    gp_h5_attr_double(f, GP_MASK_ATTR_SPARSITY_ACHIEVED, sparsity);
    gp_mask_summary_row rows[9];
    char names[9][96];
    int n = 0;
    for (int l = 0; l < 4; l++)
        for (int k = 0; k < 2; k++) {
            snprintf(names[n], sizeof names[n], "encoder.layer.%d.%s.weight", l, k ? "output.dense" : "intermediate.dense");
            rows[n] = (gp_mask_summary_row){.param = names[n], .layer = l, .numel = 1000, .kept = 1000 - (int64_t)(sparsity * (600 + 200 * l + 100 * k) / 0.9)};
            rows[n].sparsity = 1 - rows[n].kept / 1000.0;
            n++;
        }
    snprintf(names[n], sizeof names[n], "embeddings.word_embeddings.weight"); /* outside the blocks */
    rows[n++] = (gp_mask_summary_row){.param = names[8], .layer = -1, .numel = 500, .kept = 250};
    gp_mask_summary_write(f, rows, (size_t)n);
    H5Fclose(f);
}

static void write_loss(const char *dir, const char *tag, double start, int steps) {
    char name[4800];
    snprintf(name, sizeof name, "%s/" GP_RETRAIN_FILE_FMT, dir, tag);
    hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    double *loss = malloc((size_t)steps * sizeof(double));
    for (int i = 0; i < steps; i++) loss[i] = start * exp(-i / 40.0) + 0.4 + 0.15 * sin(i * 1.7);
    gp_h5_write_flat_f64(f, GP_RETRAIN_LOSS, loss, (size_t)steps, "loss", "nats");
    H5Fclose(f);
    free(loss);
}

/* A report of methods × sparsities (retrained: the first method only) in dir, with its files. */
static cJSON *make_report(const char *dir, const double *sp, int nsp) {
    static const char *const methods[3] = {"random", "magnitude", "gaprune \"q\""};
    cJSON *j = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(j, "rows");
    cJSON_AddItemToObject(j, "dense", eval_doc(0.62, 0.81));
    cJSON *drt = cJSON_AddObjectToObject(j, "dense_retrained");
    cJSON_AddItemToObject(drt, "eval", eval_doc(0.64, 0.80));
    cJSON_AddObjectToObject(drt, "retraining");
    write_loss(dir, "dense", 1.5, 100);
    cJSON *pairs = cJSON_AddArrayToObject(cJSON_AddObjectToObject(j, "comparisons"), "pairs");
    for (int m = 0; m < 3; m++)
        for (int i = 0; i < nsp; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "method", methods[m]);
            cJSON_AddNumberToObject(r, "sparsity", sp[i]);
            const double drop = (m == 0 ? 0.5 : m == 1 ? 0.25 : 0.1) * sp[i];
            cJSON_AddItemToObject(r, "one_shot", eval_doc(0.62 - drop, 0.81 - drop));
            char tag[128];
            snprintf(tag, sizeof tag, "%s-%g", methods[m], sp[i]);
            add_pair(pairs, "set<&>1", "retrieval", "one_shot", tag, -drop - 0.04, -drop + 0.03);
            add_pair(pairs, "sts.jsonl", "sts", "one_shot", tag, -drop - 0.02, -drop + 0.02);
            if (m == 0) {
                cJSON_AddItemToObject(r, "retrained", eval_doc(0.62 - drop / 2, 0.81 - drop / 2));
                cJSON_AddObjectToObject(r, "retraining");
                add_pair(pairs, "set<&>1", "retrieval", "retrained", tag, -drop / 2 - 0.04, -drop / 2 + 0.03);
                write_loss(dir, tag, 2 + sp[i], 100);
            }
            cJSON_AddItemToArray(rows, r);
            write_mask(dir, tag, methods[m], sp[i]);
        }
    return j;
}

static const char *const k_files[] = {"fig-retrieval-set___1.svg", "fig-sts-sts.jsonl.svg", "fig-retraining-loss.svg",
                                      "fig-mask-random-0.3.svg", "fig-mask-gaprune__q_-0.3.svg"};

static void check_figures(const char *dir, int nsp) {
    char p[4800];
    /* the score figure: two panels, 3 one-shot series and 1 retrained; bands or error bars */
    snprintf(p, sizeof p, "%s/fig-retrieval-set___1.svg", dir);
    char *svg = tu_read_file(p, NULL);
    assert_non_null(svg);
    assert_int_equal(count(svg, "<g class=\"panel\">"), 2);
    assert_int_equal(count(svg, "<g class=\"series\">"), 3 + 1);
    assert_non_null(strstr(svg, "set&lt;&amp;&gt;1: nDCG@10 against sparsity"));
    assert_non_null(strstr(svg, "gaprune &quot;q&quot;"));
    assert_non_null(strstr(svg, "dense 0.6200"));
    assert_non_null(strstr(svg, "dense retrained alike 0.6400"));
    /* a band per series */
    assert_int_equal(count(svg, "class=\"band\""), nsp > 1 ? 4 : 0);
    assert_int_equal(count(svg, "fill-opacity=\"0.160\""), nsp > 1 ? 4 : 0); /* at most 3 a panel: each its full 0.16 */
    /* an error bar is three lines in the series' colour: 4 series at one sparsity */
    if (nsp == 1) assert_true(count(svg, "stroke-width=\"1.6\"/>") >= 4 * 3);
    free(svg);
    /* the STS figure: its retrained score has no comparison, so no band there */
    snprintf(p, sizeof p, "%s/fig-sts-sts.jsonl.svg", dir);
    svg = tu_read_file(p, NULL);
    assert_non_null(svg);
    assert_int_equal(count(svg, "<g class=\"panel\">"), 2);
    assert_int_equal(count(svg, "class=\"band\""), nsp > 1 ? 3 : 0);
    free(svg);
    /* a mask: two kinds and "all"; the weights outside the blocks said in words */
    snprintf(p, sizeof p, "%s/fig-mask-random-0.3.svg", dir);
    svg = tu_read_file(p, NULL);
    if (nsp > 1) {
        assert_non_null(svg);
        assert_int_equal(count(svg, "<g class=\"series\">"), 3);
        assert_non_null(strstr(svg, ">intermediate.dense</text>"));
        assert_non_null(strstr(svg, ">output.dense</text>"));
        assert_non_null(strstr(svg, "outside the blocks: 500 weights selected, kept fraction 0.5000"));
    }
    free(svg);
    /* the losses: with several sparsities of random, a panel of its own; the dense one in it */
    snprintf(p, sizeof p, "%s/fig-retraining-loss.svg", dir);
    svg = tu_read_file(p, NULL);
    assert_non_null(svg);
    assert_int_equal(count(svg, "<g class=\"panel\">"), 1);
    assert_int_equal(count(svg, "<g class=\"series\">"), 2 * (1 + nsp)); /* each curve's steps and its mean */
    assert_non_null(strstr(svg, nsp > 1 ? ">sparsity 0.6</text>" : ">random at 0.5</text>"));
    assert_non_null(strstr(svg, ">dense, retrained alike</text>"));
    free(svg);
}

static void test_report_figures(void **state) {
    (void)state;
    const double sweep[3] = {0.3, 0.5, 0.6}, one[1] = {0.5};
    for (int c = 0; c < 2; c++) {
        const int nsp = c ? 1 : 3;
        char dir[4300];
        snprintf(dir, sizeof dir, "%s/run%d", g_dir, c);
        assert_int_equal(mkdir(dir, 0755), 0);
        cJSON *j = make_report(dir, c ? one : sweep, nsp);
        gp_err err = {0};
        assert_int_equal(gp_figures_write(dir, j, &err), GP_OK);
        cJSON_Delete(j);
        check_figures(dir, nsp);
        /* every figure renders, at the size asked, with ink */
        char *ls = tu_output("ls '%s' | grep -c '\\.svg$'", dir);
        const int nfig = atoi(ls);
        free(ls);
        assert_int_equal(nfig, 2 + 1 + 3 * nsp); /* sets, losses, masks */
        for (size_t i = 0; i < sizeof k_files / sizeof *k_files; i++) {
            char p[4800];
            if (c && i >= 3) snprintf(p, sizeof p, "%s/fig-mask-%s-0.5.svg", dir, i == 3 ? "random" : "gaprune__q_");
            else snprintf(p, sizeof p, "%s/%s", dir, k_files[i]);
            const render r = render_check(p);
            printf("    %s: %ld bytes, rendered in %.0f ms; dark %.2f%%, coloured %.2f%% of the pixels\n", strrchr(p, '/') + 1,
                   r.bytes, r.ms, 100 * r.dark, 100 * r.colour);
            if (r.dark < 0.004) fail_msg("%s: almost no dark pixels (%.4f): no text or axes", p, r.dark);
            if (r.colour < 0.001) fail_msg("%s: almost no coloured pixels (%.4f): no series", p, r.colour);
            if (r.dark + r.colour > 0.5) fail_msg("%s: ink on %.2f of the pixels", p, r.dark + r.colour);
        }
    }
}

/* The links report.md gets: the same names as the files. */
static void test_markdown(void **state) {
    (void)state;
    char *path = gp_path_join(g_dir, "links.md");
    FILE *f = fopen(path, "w");
    gp_figures_md_set(f, "retrieval", "set<&>1");
    gp_figures_md_mask(f, 0, 2, "gaprune \"q\"", 0.3);
    gp_figures_md_mask(f, 1, 2, "a[b]", 0.5);
    gp_figures_md_loss(f);
    fclose(f);
    char *md = tu_read_file(path, NULL);
    assert_string_equal(md, "![set<&>1: score against sparsity](fig-retrieval-set___1.svg)\n\n"
                            "\nKept fraction per layer and tensor kind of each mask: [gaprune \"q\"-0.3](fig-mask-gaprune__q_-0.3.svg), "
                            "[a\\[b\\]-0.5](fig-mask-a_b_-0.5.svg).\n"
                            "\n![the retraining loss of every retrained model](fig-retraining-loss.svg)\n");
    free(md), free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_axes),
        cmocka_unit_test(test_escaping_and_series),
        cmocka_unit_test(test_styles),
        cmocka_unit_test(test_report_figures),
        cmocka_unit_test(test_markdown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
