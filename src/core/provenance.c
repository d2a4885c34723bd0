/* provenance.c — the command line and the other facts output files record (see provenance.h). */
#include "gaprune/provenance.h"

#include <stdio.h>

#include "gaprune/h5.h"
#include "gaprune/log.h"

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

void gp_provenance_write(hid_t file, const char *format, int format_version) {
    char utc[32];
    gp_utc_now(utc, sizeof utc);
    gp_provenance_write_as(file, format, format_version, gp_provenance_command(), utc);
}

void gp_provenance_write_as(hid_t file, const char *format, int format_version, const char *command,
                            const char *created_utc) {
    gp_h5_attr_str(file, GP_H5_ATTR_FORMAT, format);
    gp_h5_attr_int(file, GP_H5_ATTR_FORMAT_VERSION, format_version);
    gp_h5_attr_str(file, "gaprune_version", GP_VERSION);
    gp_h5_attr_str(file, "command", command);
    gp_h5_attr_str(file, "created_utc", created_utc);
    gp_h5_attr_int(file, "n_ranks", gp_nranks());
}
