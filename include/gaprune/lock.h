/*
 * lock.h — one run at a time in an output folder.
 *
 * Two runs writing the same OUT would overwrite each other's .tmp files and checkpoints, and a
 * resumed run would read a checkpoint the other is rewriting. So every command that writes into
 * OUT first takes <OUT>/.gaprune.lock: rank 0 creates it with O_CREAT | O_EXCL (atomic, also on
 * NFS v3 and later) and writes its host, pid, Slurm job and command into it; every rank learns
 * the outcome (gp_agree). A second run finds the file and stops with exit 2 naming the folder,
 * the host and the pid of the holder.
 *
 *   - Holder on this host and no longer running (killed, crashed, the node rebooted): the lock is
 *     stale; it is taken over with a warning.
 *   - Holder on another host: whether it runs cannot be checked from here; refused, with how to
 *     remove the file, unless it names this run's own Slurm job: Slurm requeues a job (on another
 *     node, after a node failure) only once its earlier run has ended.
 *   - `gaprune run --only METHOD:SPARSITY` (the array tasks of a sweep, slurm/sweep.sbatch, share
 *     OUT and each writes its own files) takes <OUT>/.gaprune-METHOD-SPARSITY.lock instead: two
 *     tasks of different pairs run side by side; a whole-folder lock and a pair lock exclude
 *     each other.
 *   - A folder gaprune cannot create files in is not locked: nothing can be written there either
 *     (a rerun whose outputs are all complete reads a read-only folder).
 *
 * The lock is released when the command returns, whatever it returns (0, 2 or 3:
 * gp_lock_release in main); a run ended by MPI_Abort or a signal leaves it for the next run
 * to take over.
 *
 * Usage (collective):
 *     if ((rc = gp_lock_take(job.out_dir, NULL, &err))) return rc;   // exit 2: in use
 *     ... write into job.out_dir ...
 *     gp_lock_release();                                             // main, after the command
 */
#pragma once

#include "gaprune/check.h"

/* The lock's file name in the output folder (a pair lock: .gaprune-<pair>.lock). */
#define GP_LOCK_FILE ".gaprune.lock"

/* Collective: creates dir (mkdir -p) and takes its lock, the whole folder's (pair NULL) or a
 * pair's ("gaprune-0.5"). GP_EINPUT, agreed and printed, when another run holds it. Taking a
 * lock this process holds already does nothing. */
gp_status gp_lock_take(const char *dir, const char *pair, gp_err *err);
/* Collective: once every rank is here, rank 0 removes the lock it holds (when the file is still
 * its own). */
void gp_lock_release(void);
