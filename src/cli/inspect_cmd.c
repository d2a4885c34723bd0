/* inspect_cmd.c — `gaprune inspect FILE.h5 [--svg OUT.svg]`: per-layer tables of a statistics
 * or mask file, and a figure (the stage is inspect.h); this file parses the options. */
#include "gaprune/cli.h"
#include "gaprune/dist.h"
#include "gaprune/inspect.h"

int gp_cmd_inspect(int argc, char **argv) {
    const char *svg_path = NULL;
    const gp_opt opts[] = {
        {"svg", GP_OPT_STR, &svg_path, "OUT.svg", "also draw the per-layer figure and a histogram"},
        {NULL, 0, NULL, NULL, NULL},
    };
    const char *pos[1] = {NULL};
    int npos = 0;
    gp_err err = {0};
    gp_status rc = gp_opts_parse("inspect", "FILE.h5 [--svg OUT.svg]", opts, argc, argv, pos, 1, &npos, &err);
    if (rc == GP_ESTOPPED) return GP_OK;
    if (!rc && npos != 1) rc = gp_errf(&err, GP_EINPUT, "gaprune inspect: expected one stats or mask file");
    if ((rc = gp_agree(rc, &err)) || gp_rank() != 0) return rc;
    return gp_inspect_file(pos[0], svg_path);
}
