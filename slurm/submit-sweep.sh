#!/bin/bash
# submit-sweep.sh JOB.ini [--set ...] — statistics once, then one array task per mask (method
# or variant, sparsity: what `gaprune run --list` prints), then the report. Prints the three job ids. GAPRUNE_SBATCH_ARGS adds sbatch options
# to all three (e.g. "--ntasks=8 --time=08:00:00").
set -eu
job=${1:?usage: slurm/submit-sweep.sh JOB.ini [--set section.key=value ...]}
here=$(cd "$(dirname "$0")" && pwd)
export GAPRUNE_SLURM_DIR=$here  # sweep.sbatch runs from the spool directory and needs gaprune.sbatch
gaprune=${GAPRUNE:-build/gaprune}
n=$("$gaprune" run "$@" --list | wc -l)
[ "$n" -gt 0 ] || { echo "submit-sweep.sh: no masks in $job" >&2; exit 2; }
extra=${GAPRUNE_SBATCH_ARGS:-}
stats=$(GAPRUNE_CMD=stats sbatch --parsable $extra "$here/gaprune.sbatch" "$@")
sweep=$(sbatch --parsable $extra --dependency=afterok:"$stats" --array=0-$((n - 1)) "$here/sweep.sbatch" "$@")
report=$(sbatch --parsable $extra --dependency=afterok:"$sweep" "$here/gaprune.sbatch" "$@")
echo "statistics $stats, sweep $sweep ($n masks), report $report"
