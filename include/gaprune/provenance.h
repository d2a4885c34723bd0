/*
 * provenance.h — what every output file says about how it was made: the command line as typed,
 * the gaprune version, the time, the number of ranks.
 *
 * Usage:
 *     gp_provenance_set_command(argc, argv);   // once, in the command-line layer
 *     const char *cmd = gp_provenance_command();
 *     hid_t f = gp_h5_create_tmp(path);
 *     gp_provenance_write(f, "gaprune-mask", 1);   // the attributes every output file carries
 */
#pragma once

#include <hdf5.h>

void gp_provenance_set_command(int argc, char **argv);
/* The command line as typed ("" before gp_provenance_set_command). */
const char *gp_provenance_command(void);
/* The root attributes every gaprune HDF5 output carries: format, format_version,
 * gaprune_version, command, created_utc (now) and n_ranks (of this run). */
void gp_provenance_write(hid_t file, const char *format, int format_version);
/* The same with the command line and time given: a file every rank writes (h5par.h) must get
 * one value of each, rank 0's, on every rank. */
void gp_provenance_write_as(hid_t file, const char *format, int format_version, const char *command,
                            const char *created_utc);
