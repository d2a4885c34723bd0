/*
 * cli.h — the gaprune command line: subcommands (a registry), their option tables, and the
 * job commands' common start (the job file and its overrides, loaded and agreed on by every
 * rank; a bad input on any rank becomes exit code 2 on every rank through gp_agree, dist.h).
 *
 * Usage (main.c):
 *     MPI_Init(...); gp_log_init(rank, n);
 *     int rc = gp_cli_main(argc, argv);       // 0, 1, 2 or 3 (docs/DESIGN.md §3.1)
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
int gp_cmd_sample(int argc, char **argv);
int gp_cmd_stats(int argc, char **argv);
int gp_cmd_plan(int argc, char **argv);
int gp_cmd_score(int argc, char **argv);
int gp_cmd_inspect(int argc, char **argv);
int gp_cmd_eval(int argc, char **argv);
int gp_cmd_retrain(int argc, char **argv);
int gp_cmd_run(int argc, char **argv);
int gp_cmd_train(int argc, char **argv);
int gp_cmd_help_job(int argc, char **argv);


/* GP_OPT_KEY (job commands only): the value sets a job key, dst being its "section.key"
 * name, as a --set would, so it is checked and reported like one. */
typedef enum { GP_OPT_STR, GP_OPT_INT, GP_OPT_FLAG, GP_OPT_LIST, GP_OPT_KEY } gp_opt_type;

/* Destination of a GP_OPT_LIST option: every occurrence appends (v points into argv). */
typedef struct {
    const char **v;
    int n;
} gp_opt_list;

typedef struct {
    const char *name;    /* long flag without "--" */
    gp_opt_type type;
    void *dst;           /* const char **, int *, int * (flag: set to 1), gp_opt_list * or "section.key" */
    const char *metavar; /* e.g. "DIR" */
    const char *help;
} gp_opt;

/* Parses --name VALUE, --name=VALUE and flags; other arguments are collected in pos (argv
 * pointers, up to max_pos). Returns GP_OK, GP_EINPUT with a message, or GP_ESTOPPED when
 * --help was asked for (help already printed on rank 0). */
gp_status gp_opts_parse(const char *cmd, const char *usage, const gp_opt *opts, int argc, char **argv,
                        const char **pos, int max_pos, int *npos, gp_err *err);
void gp_opts_help(FILE *f, const char *cmd, const char *usage, const gp_opt *opts);

struct gp_job;
/* For the job commands (`gaprune CMD JOB.ini [--set k=v ...] [extra options]`): parses argv
 * with the extra options plus --set, loads the job file on every rank, agrees on errors and
 * prints the effective configuration on stderr (GAPRUNE_VERBOSE=0: not at all). Returns GP_OK, an error code to exit with, or
 * GP_ESTOPPED after --help (exit 0). */
gp_status gp_cli_job(const char *cmd, const char *usage, const gp_opt *extra, int argc, char **argv,
                     struct gp_job *job);
