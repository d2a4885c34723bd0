#!/bin/bash
# submit-sweep.sh JOB.ini [--set ...] — statistics once, then one array task per (method,
# sparsity), then the report. Prints the three job ids.
set -eu
job=${1:?usage: slurm/submit-sweep.sh JOB.ini [--set section.key=value ...]}
here=$(dirname "$0")
gaprune=${GAPRUNE:-build/gaprune}
nm=$("$gaprune" help-job --value prune.methods "$@" | tr ',' ' ' | wc -w)
ns=$("$gaprune" help-job --value prune.sparsity "$@" | tr ',' ' ' | wc -w)
stats=$(GAPRUNE_CMD=stats sbatch --parsable "$here/gaprune.sbatch" "$@")
sweep=$(sbatch --parsable --dependency=afterok:"$stats" --array=0-$((nm * ns - 1)) "$here/sweep.sbatch" "$@")
report=$(sbatch --parsable --dependency=afterok:"$sweep" "$here/gaprune.sbatch" "$@")
echo "statistics $stats, sweep $sweep (${nm} methods x ${ns} sparsities), report $report"
