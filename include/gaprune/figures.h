/*
 * figures.h — the figures of `gaprune run`'s report, standalone SVG (svg.h) beside report.md
 * and linked from it, drawn from the report's document (report.json's object) and the run's files:
 *
 *   fig-<kind>-<set>.svg      per evaluation set: the main score against sparsity, one line per
 *                             method, one-shot and retrained side by side on one scale, the dense
 *                             score (and the dense model retrained alike) as horizontal lines; the
 *                             band (an error bar at a lone sparsity) is the dense score plus the
 *                             paired 95% bootstrap interval of the difference (report.json's
 *                             comparisons), so a band clear of the dense line is a significant change
 *   fig-mask-<tag>.svg        per mask: the kept fraction of every transformer block, per tensor
 *                             kind and over all its selected weights (mask-<tag>.h5's /summary)
 *   fig-retraining-loss.svg   every retraining's InfoNCE loss per step (retrain-<tag>.h5's /loss):
 *                             one panel of methods when each has one sparsity, else a panel per
 *                             method with its sparsities dark (lowest) to light (highest)
 * A method has one style (gp_svg_style_of: lightness, dash, marker) in every figure. A name's
 * bytes outside [A-Za-z0-9._-] become '_' in file names.
 *
 * Usage (rank 0):
 *     gp_figures_md_set(md, "retrieval", "manpages-beir");   // the image link, in the set's section
 *     for (i = 0; i < n; i++) gp_figures_md_mask(md, i, n, method[i], sparsity[i]);   // the masks' links
 *     if (any_retrained) gp_figures_md_loss(md);                                   // the loss figure
 *     rc = gp_figures_write(out_dir, report_json, &err);
 */
#pragma once

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gaprune/check.h"

#define GP_FIGURE_LOSS "fig-retraining-loss.svg"

/* "fig-<kind>-<set>.svg" into buf; returns buf. */
const char *gp_figure_score_name(char *buf, size_t n, const char *kind, const char *set);
/* "fig-mask-<tag>.svg" (tag "<method>-<sparsity>") into buf; returns buf. */
const char *gp_figure_mask_name(char *buf, size_t n, const char *tag);

/* report.md's image link to the set's score figure, a paragraph of its own. */
void gp_figures_md_set(FILE *md, const char *kind, const char *set);
/* report.md's link to mask i of n's figure (the row's method and sparsity), in one paragraph: the
 * first opens it, the last ends it. */
void gp_figures_md_mask(FILE *md, int i, int n, const char *method, double sparsity);
/* report.md's image of the retraining losses, a paragraph of its own. */
void gp_figures_md_loss(FILE *md);

/* Writes every figure of the report document into out_dir (each through .tmp and a rename) and
 * logs how many. A mask file without a readable /summary is left out with a warning, a retraining
 * file without /loss from the loss figure; GP_EINPUT when a figure cannot be written (fs.h). */
gp_status gp_figures_write(const char *out_dir, const cJSON *report, gp_err *err);
