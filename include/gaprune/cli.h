/*
 * cli.h — the gaprune command line: subcommands, their option tables, and the collective
 * error path that turns a bad input on any rank into exit code 2 on every rank.
 *
 * Usage (main.c):
 *     MPI_Init(...); gp_log_init(rank, n);
 *     int rc = gp_cli_main(argc, argv);       // 0, 1, 2 or 3 (DESIGN.md §3)
 *     MPI_Finalize(); return rc;
 *
 * A subcommand describes its flags in a gp_opt table; the same table parses argv and prints
 * --help, so the two never disagree.
 */
#pragma once

#include <stdio.h>

#include "gaprune/check.h"

int gp_cli_main(int argc, char **argv);

int gp_cmd_encode(int argc, char **argv);
int gp_cmd_tokenize(int argc, char **argv);

typedef enum { GP_OPT_STR, GP_OPT_INT, GP_OPT_FLAG } gp_opt_type;

typedef struct {
    const char *name;    /* long flag without "--" */
    gp_opt_type type;
    void *dst;           /* const char **, int *, or int * (flag: set to 1) */
    const char *metavar; /* e.g. "DIR" */
    const char *help;
} gp_opt;

/* Parses --name VALUE, --name=VALUE and flags; other arguments are collected in pos (argv
 * pointers, up to max_pos). Returns GP_OK, GP_EINPUT with a message, or GP_ESTOPPED when
 * --help was asked for (help already printed on rank 0). */
gp_status gp_opts_parse(const char *cmd, const char *usage, const gp_opt *opts, int argc, char **argv,
                        const char **pos, int max_pos, int *npos, gp_err *err);
void gp_opts_help(FILE *f, const char *cmd, const char *usage, const gp_opt *opts);

/* Collective: every rank passes its own status; when any rank failed, the lowest failing
 * rank prints its message, and every rank gets the largest code back. */
gp_status gp_cli_agree(gp_status rc, const gp_err *err);

/* The command line as typed (for provenance attributes). */
const char *gp_cli_command(void);
