/* stop.c — SIGUSR1/SIGTERM/SIGINT to a stop flag (see stop.h). */
#include "gaprune/stop.h"

#include <string.h>

/* sig_atomic_t: the only type a handler may write that the loop is sure to read whole */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

void gp_stop_begin(gp_stop_watch *w) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_stop = 0;
    sigaction(SIGUSR1, &sa, &w->old_usr1);
    sigaction(SIGTERM, &sa, &w->old_term);
    sigaction(SIGINT, &sa, &w->old_int);
}

bool gp_stop_requested(void) { return g_stop != 0; }

void gp_stop_end(gp_stop_watch *w) {
    sigaction(SIGUSR1, &w->old_usr1, NULL);
    sigaction(SIGTERM, &w->old_term, NULL);
    sigaction(SIGINT, &w->old_int, NULL);
}
