/* testhook.c — the test-only fault hooks (see testhook.h). */
#include "gaprune/testhook.h"

#include <stddef.h>

static gp_testhooks g_hooks = {.kill_after_checkpoint = 0, .signal_at_step = -1, .fail_write = NULL};

void gp_testhook_set(const gp_testhooks *h) { g_hooks = *h; }

const gp_testhooks *gp_testhook_get(void) { return &g_hooks; }
