/* provenance.c — the command line and the other facts output files record (see provenance.h). */
#include "gaprune/provenance.h"

#include <stdio.h>

static char g_command[4096];

void gp_provenance_set_command(int argc, char **argv) {
    size_t at = 0;
    for (int i = 0; i < argc && at + 2 < sizeof g_command; i++) {
        int k = snprintf(g_command + at, sizeof g_command - at, "%s%s", i ? " " : "", argv[i]);
        if (k < 0) break;
        at += (size_t)k;
    }
    if (at >= sizeof g_command) at = sizeof g_command - 1;
    g_command[at] = '\0';
}

const char *gp_provenance_command(void) { return g_command; }
