/*
 * stop.h — a polite stop: SIGUSR1 or SIGTERM (Slurm's warning before a requeue or time limit)
 * or SIGINT (Ctrl-C, on gaprune alone or forwarded by mpirun) only sets a flag, and the long stages (stats, retrain) look at it between steps, agree on it
 * over the ranks, write a checkpoint and return GP_ESTOPPED. Outside such a stage the signals
 * keep whatever handlers they had.
 *
 * Usage:
 *     gp_stop_watch w;
 *     gp_stop_begin(&w);                  // clears the flag, installs the handlers
 *     while (...) { ...; if (gp_allreduce_max_int(gp_stop_requested())) break; }
 *     gp_stop_end(&w);                    // puts the earlier handlers back
 */
#pragma once

#include <signal.h>
#include <stdbool.h>

typedef struct {
    struct sigaction old_usr1, old_term, old_int; /* the handlers before gp_stop_begin */
} gp_stop_watch;

/* Clears the flag and makes SIGUSR1, SIGTERM and SIGINT set it; w keeps the handlers they had. */
void gp_stop_begin(gp_stop_watch *w);
/* Whether SIGUSR1, SIGTERM or SIGINT arrived since gp_stop_begin. */
bool gp_stop_requested(void);
/* Restores the handlers gp_stop_begin replaced (the flag stays as it is). */
void gp_stop_end(gp_stop_watch *w);
