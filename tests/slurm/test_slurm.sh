#!/usr/bin/env bash
# test_slurm.sh GAPRUNE — slurm/gaprune.sbatch on a private single-node Slurm (no systemd):
#  1. a job runs `gaprune stats` on 2 ranks and succeeds;
#  2. a job receives USR1 mid-run (as --signal=B:USR1@120 would send it), checkpoints, exits 3,
#     is requeued by the script, resumes and finishes with statistics bitwise equal to job 1's;
#  3. slurm/submit-sweep.sh: statistics once, an array over 2 methods x 2 sparsities, the report;
# then exactly the daemons started here are stopped. Prints "[  PASSED  ] 3 test(s)." on success.
set -u
gaprune=$(realpath "${1:-build/gaprune}")
root=$(pwd)
tmp=$(mktemp -d /tmp/gaprune-slurm-XXXXXX)
chmod 755 "$tmp"
export SLURM_CONF=$tmp/slurm.conf
fail=0
note() { echo "test_slurm: $*"; }
stop() {
    for f in "$tmp/run/slurmd.pid" "$tmp/run/slurmctld.pid" "$tmp/munge/munged.pid"; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    sleep 1
    rm -rf "$tmp"
}
trap stop EXIT

mkdir -p "$tmp"/{state,spool,log,run,munge,work}
chown munge:munge "$tmp/munge"
[ -f /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key && chown munge:munge /etc/munge/munge.key; }
cat > "$SLURM_CONF" <<CONF
ClusterName=gaprune-test
SlurmctldHost=localhost
AuthType=auth/munge
AuthInfo=socket=$tmp/munge/munge.socket.2
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/run/slurmctld.pid
SlurmdPidFile=$tmp/run/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=pmix
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$tmp/log/jobcomp.txt
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 Sockets=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
runuser -u munge -- /usr/sbin/munged --socket="$tmp/munge/munge.socket.2" --pid-file="$tmp/munge/munged.pid" \
    --log-file="$tmp/munge/munged.log" --seed-file="$tmp/munge/munged.seed" || { note "munged did not start"; exit 1; }
slurmctld -f "$SLURM_CONF" -i || { note "slurmctld did not start"; exit 1; }
slurmd -f "$SLURM_CONF" -N localhost || { note "slurmd did not start"; exit 1; }
for i in $(seq 1 60); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 0.5; done
sinfo -h -o %t | grep -q idle || { note "the node never became idle"; cat "$tmp/log/slurmctld.log" | tail -20; exit 1; }
note "slurm is up ($(sinfo -h -o '%P %D %t'))"

cat > "$tmp/work/job.ini" <<JOB
[model]
path = $root/tests/fixtures/bert-tiny
[data]
domain = $root/tests/fixtures/corpora/domain.json
general = $root/tests/fixtures/corpora/general.jsonl
[stats]
checkpoint_every = 1
[output]
dir = out
JOB

submit() { # name, environment, extra sbatch options
    local name=$1 env=$2
    (cd "$tmp/work" && env $env GAPRUNE="$gaprune" GAPRUNE_CMD=stats sbatch --parsable --job-name="$name" --ntasks=2 \
        --mem-per-cpu=500M --time=00:10:00 --output="$tmp/work/$name.out" "$root/slurm/gaprune.sbatch" job.ini \
        --set output.dir="out-$name")
}
state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
wait_done() { # job id, timeout seconds
    for i in $(seq 1 $(( $2 * 5 ))); do
        case "$(state "$1")" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) return 0 ;; esac
        sleep 0.2
    done
    return 1
}

# 1. a plain job
j1=$(submit plain "")
wait_done "$j1" 120 || { note "job $j1 did not finish"; fail=1; }
if [ "$(state "$j1")" = COMPLETED ] && scontrol show job "$j1" | grep -q 'ExitCode=0:0' && \
   h5dump -a /complete "$tmp/work/out-plain/stats.h5" 2>/dev/null | grep -q '(0): 1'; then
    note "job $j1 (gaprune stats on 2 ranks under srun): COMPLETED, exit 0, stats.h5 complete"
    echo "[       OK ] slurm_job"
else
    note "job $j1: $(state "$j1")"; cat "$tmp/work/plain.out"; fail=1
    echo "[  FAILED  ] slurm_job"
fi

# 2. USR1 mid-run: checkpoint, exit 3, requeue, resume
j2=$(submit requeued "GAPRUNE_TEST_UNIT_DELAY_MS=700")
for i in $(seq 1 300); do [ -f "$tmp/work/out-requeued/stats.ranks/latest" ] && break; sleep 0.1; done
scancel --signal=USR1 --batch "$j2"
wait_done "$j2" 180 || { note "job $j2 did not finish"; fail=1; }
log=$tmp/work/requeued.out
ok=1
grep -q "stopped by a signal" "$log" || { note "no checkpoint on USR1"; ok=0; }
grep -q "requeueing job $j2" "$log" || { note "not requeued"; ok=0; }
grep -q "resuming from step" "$log" || { note "the requeued run did not resume"; ok=0; }
[ "$(state "$j2")" = COMPLETED ] || { note "job $j2 ended $(state "$j2")"; ok=0; }
for g in /domain /general /activations /alignment; do
    h5diff "$tmp/work/out-plain/stats.h5" "$tmp/work/out-requeued/stats.h5" "$g" "$g" >/dev/null 2>&1 || { note "$g differs"; ok=0; }
done
if [ $ok = 1 ]; then
    note "job $j2: USR1 -> checkpoint, exit 3, requeued, resumed; statistics bitwise equal to job $j1"
    echo "[       OK ] slurm_requeue"
else
    cat "$log"; fail=1
    echo "[  FAILED  ] slurm_requeue"
fi
# 3. a sweep: statistics once, an array task per (method, sparsity), then the report
sweep_out=$( cd "$tmp/work" && GAPRUNE="$gaprune" GAPRUNE_SBATCH_ARGS="--ntasks=2 --mem-per-cpu=500M --time=00:10:00 --output=$tmp/work/sweep-%j-%a.out" \
    "$root/slurm/submit-sweep.sh" job.ini --set output.dir=out-sweep --set prune.methods=magnitude,gaprune \
    --set prune.sparsity=0.3,0.5 --set retrain.methods=gaprune --set retrain.steps=2 --set retrain.batch=4 \
    --set eval.retrieval="$root/tests/fixtures/beir-tiny" )
note "$sweep_out"
report_job=$(echo "$sweep_out" | sed 's/.*report //')
wait_done "$report_job" 300 || { note "the report job did not finish"; fail=1; }
ok=1
[ "$(state "$report_job")" = COMPLETED ] || { note "report job ended $(state "$report_job")"; ok=0; }
for t in magnitude-0.3 magnitude-0.5 gaprune-0.3 gaprune-0.5; do
    [ -f "$tmp/work/out-sweep/eval-pruned-$t.json" ] || { note "no evaluation of $t"; ok=0; }
done
[ -d "$tmp/work/out-sweep/retrained-gaprune-0.5" ] || { note "no retrained gaprune model"; ok=0; }
grep -q "| gaprune | 0.3 |" "$tmp/work/out-sweep/report.md" 2>/dev/null || { note "no report"; ok=0; }
computed=$(grep -l "stats: wrote " "$tmp"/work/sweep-*.out 2>/dev/null | wc -l)
reused=$(grep -l "is complete for these settings" "$tmp"/work/sweep-*.out 2>/dev/null | wc -l)
[ "$computed" = 1 ] && [ "$reused" = 5 ] || { note "statistics computed in $computed logs, reused in $reused (want 1 and 5)"; ok=0; }
if [ $ok = 1 ]; then
    note "sweep: statistics once, 4 array tasks and the report job reused them"
    echo "[       OK ] slurm_sweep"
else
    tail -n 30 "$tmp"/work/sweep-*.out; fail=1
    echo "[  FAILED  ] slurm_sweep"
fi

if [ $fail = 0 ]; then echo "[  PASSED  ] 3 test(s)."; else echo "[  FAILED  ] slurm tests"; fi
exit $fail
