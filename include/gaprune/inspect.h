/*
 * inspect.h — the stage of `gaprune inspect`: per-layer tables of a statistics or mask file on
 * stdout and, given svg_path, a figure (inspect.c says what each shows).
 *
 * Usage (rank 0 only; it reads one file and prints):
 *     if (gp_rank() == 0) rc = gp_inspect_file("out/job/stats.h5", NULL);
 */
#pragma once

#include "gaprune/check.h"

/* GP_OK, or GP_EINPUT after saying on stderr, naming the file, that it cannot be opened, is not a
 * gaprune stats or mask file, or is damaged. */
gp_status gp_inspect_file(const char *path, const char *svg_path);
