/*
 * provenance.h — what every output file says about how it was made: the command line as typed,
 * the gaprune version, the time, the number of ranks.
 *
 * Usage:
 *     gp_provenance_set_command(argc, argv);   // once, in the command-line layer
 *     const char *cmd = gp_provenance_command();
 */
#pragma once

void gp_provenance_set_command(int argc, char **argv);
/* The command line as typed ("" before gp_provenance_set_command). */
const char *gp_provenance_command(void);
