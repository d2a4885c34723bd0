/*
 * testhook.h — TEST ONLY: faults the resume tests inject into the long stages (stats,
 * retrain), a disk that refuses writes, and h5par's bound on one write lowered so that small
 * tests reach its splitting (and the block gather's path past an int). Library code never reads the environment for these; the program's
 * main() sets them from GAPRUNE_TEST_KILL_AFTER_CHECKPOINT, GAPRUNE_TEST_SIGNAL_AT_STEP,
 * GAPRUNE_TEST_UNIT_DELAY_MS, GAPRUNE_TEST_EVAL_QUERY_BLOCK, GAPRUNE_TEST_FAIL_WRITE and
 * GAPRUNE_TEST_FAIL_WRITE_AFTER, and a test that calls a stage directly sets them itself. All off
 * by default; no production path sets them.
 *
 * Usage:
 *     gp_testhooks h = *gp_testhook_get();
 *     h.kill_after_checkpoint = 2;        // rank 0 SIGKILLs itself after its 2nd checkpoint
 *     gp_testhook_set(&h);
 *     ... gp_stats_run(...) ...
 *     if (gp_testhook_get()->signal_at_step == step) raise(SIGUSR1);   // in a stage
 */
#pragma once

#include <stdint.h>

typedef struct {
    int kill_after_checkpoint; /* > 0: rank 0 raises SIGKILL right after its n-th checkpoint; 0: off */
    int64_t signal_at_step;    /* >= 0: rank 0 raises SIGUSR1 before that step; -1: off */
    int unit_delay_ms;         /* > 0: stats sleeps this long after every step (a signal from outside lands mid-run) */
    int64_t h5par_piece_elems; /* > 0: gp_h5par_write_f32 writes at most this many elements per H5Dwrite (its
                                  splitting of huge slices, exercised on small ones); 0: the default */
    int64_t eval_query_block;  /* > 0: retrieval ranks this many queries at a time instead of
                                  GP_EVAL_QUERY_BLOCK (its blocks, exercised on few queries); 0: the default */
    const char *fail_write;    /* non-NULL: committing a file whose path contains this text fails with
                                  ENOSPC, as on a full disk, once fail_write_after such commits of this
                                  process succeeded (gp_write_refused, fs.h); NULL: off */
    int fail_write_after;
    int fail_write_errno;      /* the error the refusal reports: ENOSPC when 0 (EIO: an I/O error) */
    int64_t gather_one_call_max; /* > 0: gp_allgather_blocks_f32 gathers in one call only up to this many
                                    floats, past it per owner (its path for blocks past an int, on small
                                    ones); 0: the default, INT_MAX */
} gp_testhooks;

/* The hooks off. */
#define GP_TESTHOOKS_OFF                                                                          \
    ((gp_testhooks){.kill_after_checkpoint = 0, .signal_at_step = -1, .unit_delay_ms = 0, .h5par_piece_elems = 0,  \
                    .eval_query_block = 0, .fail_write = NULL, .fail_write_after = 0, .fail_write_errno = 0,    \
                    .gather_one_call_max = 0})

void gp_testhook_set(const gp_testhooks *h);
/* The hooks in force (GP_TESTHOOKS_OFF until gp_testhook_set). */
const gp_testhooks *gp_testhook_get(void);
