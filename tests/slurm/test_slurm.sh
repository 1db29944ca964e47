#!/usr/bin/env bash
# The Slurm test (CTest label "slurm"): runs jobs/*.sbatch on a real, private, one-node Slurm cluster that
# it starts itself, and checks that what they produce is what nograd produces when run directly.
#   tests/slurm/test_slurm.sh NOGRAD_BINARY [MPIRUN]
# Needs root (it installs slurm-wlm and munge with apt-get when they are missing, and runs munged,
# slurmctld and slurmd); otherwise it says "skipped" and exits 77, which CTest reports as skipped.
# Everything lives in a temporary directory: munge key and socket, slurm.conf (free ports, this host's
# name and CPUs), state, logs, and the jobs' files. The daemons it starts are stopped by their pids, on
# success and on failure; nothing else is touched.
#
# What it checks:
#  1. minimize.sbatch (with CHECKPOINT) prints the same result as a direct mpirun -n 2 run, and writes the
#     checkpoint;
#  2. sweep.sbatch as a 4-task array (2 popsizes x 2 seeds): every task's result equals a direct run with
#     its seed and popsize, and tools/gather_sweep.py gathers the 4 rows;
#  3. preemptible.sbatch: `scancel --signal=USR1 --batch` mid-run makes nograd checkpoint and exit 3, the
#     script requeues the job, the job resumes from the checkpoint (restart count 1) and its final result
#     equals an uninterrupted run's, bit for bit ("seconds" aside);
#  4. the same with SIGTERM to every process of the job (scancel --signal=TERM --full), where mpirun exits
#     with its own code and the script must still see a resumable run;
#  5. a plain scancel ends a preemptible job for good (CANCELLED, not requeued);
#  6. preemptible.sbatch running `nograd glue` (every optimizing command follows one run policy): USR1,
#     checkpoint, requeue, resume, and the prior and result equal an uninterrupted run's.
# About two minutes on 2 cores (NOGRAD_SLURM_KEEP=1 keeps the temporary directory for inspection).
set -uo pipefail

SKIP=77
# Everything must be over, daemons stopped, well before CTest's TIMEOUT (600 s), which kills without a
# chance to clean up: every wait below also fails at this many seconds after the start.
DEADLINE=$((SECONDS + ${NOGRAD_SLURM_TEST_DEADLINE:-520}))
log() { echo "[slurm-test $(date +%T)] $*"; }
fail() {
  echo "[slurm-test $(date +%T)] FAILED: $*" >&2
  exit 1
}

if (($# < 1)); then
  echo "usage: $0 NOGRAD_BINARY [MPIRUN]" >&2
  exit 2
fi
NOGRAD=$(readlink -f "$1")
MPIRUN=${2:-mpirun}
[[ -n $MPIRUN ]] || MPIRUN=mpirun
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ -x $NOGRAD ]] || fail "no nograd binary at $1"

if [[ $(id -u) -ne 0 ]]; then
  echo "slurm test skipped: it needs root (to install slurm-wlm and munge and run slurmctld, slurmd and munged)"
  exit $SKIP
fi
if ! command -v "$MPIRUN" >/dev/null 2>&1; then
  echo "slurm test skipped: no mpirun ($MPIRUN)"
  exit $SKIP
fi

# A job started by this test must not think it is inside an outer Slurm job.
while read -r v; do unset "$v"; done < <(compgen -v SLURM_)

# ---- packages --------------------------------------------------------------------------------------------
# shellcheck source=tools/common.sh
source "$SRC/tools/common.sh" # OPENBLAS_NUM_THREADS=1, OMPI_ALLOW_RUN_AS_ROOT*, ng_ensure_packages
if command -v dpkg-query >/dev/null 2>&1; then
  ng_ensure_packages "${SLURM_TEST_PACKAGES[@]}" || fail "cannot install ${SLURM_TEST_PACKAGES[*]}"
fi
for c in munged munge unmunge slurmctld slurmd sbatch squeue scontrol scancel sinfo setpriv; do
  command -v "$c" >/dev/null 2>&1 || fail "$c not found after installing ${SLURM_TEST_PACKAGES[*]}"
done
id munge >/dev/null 2>&1 || fail "no munge user (the munge package creates it)"

# ---- the private cluster ---------------------------------------------------------------------------------
T=$(mktemp -d /tmp/nograd-slurm.XXXXXX) || fail "mktemp"
chmod 755 "$T" # munged (as user munge) needs to reach its socket directory
pids=()        # name:pid of every daemon this test started
t0=$SECONDS

diagnostics() {
  local f
  for f in "$T"/log/*.log "$T"/work/*.out; do
    [[ -f $f ]] || continue
    echo "---- tail of $f"
    tail -n 40 "$f"
  done
  if [[ -n ${SLURM_CONF:-} && -f ${SLURM_CONF:-} ]]; then
    echo "---- sinfo / squeue"
    timeout 10 sinfo 2>&1
    timeout 10 squeue 2>&1
  fi
}

# Stops a daemon by its pid: SIGTERM, up to 15 s, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  log "$name ($pid) did not stop on SIGTERM; SIGKILL"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

cleanup() {
  local rc=$? i entry
  trap - EXIT INT TERM
  if ((rc != 0 && rc != SKIP)); then
    echo "==== diagnostics (exit status $rc) ===="
    diagnostics
  fi
  # Jobs first (only ours: the cluster is private), so that no slurmstepd outlives slurmd.
  local jobs=()
  [[ -n ${SLURM_CONF:-} ]] && mapfile -t jobs < <(timeout 10 squeue -h -o %A 2>/dev/null)
  if ((${#jobs[@]})); then
    timeout 10 scancel --quiet "${jobs[@]}" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]] && break
      sleep 0.2
    done
  fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do # reverse order: slurmd, slurmctld, munged
    entry=${pids[i]}
    stop_pid "${entry%%:*}" "${entry##*:}"
  done
  if [[ -n ${NOGRAD_SLURM_KEEP:-} ]]; then
    log "daemons stopped after $((SECONDS - t0)) s; kept $T (NOGRAD_SLURM_KEEP)"
  else
    rm -rf "$T"
    log "cleaned up (daemons stopped, $T removed) after $((SECONDS - t0)) s"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls "$@" every 0.5 s until it succeeds; fails after $1 seconds with message $2.
wait_for() {
  local timeout=$1 what=$2 end
  shift 2
  end=$((SECONDS + timeout))
  until "$@"; do
    ((SECONDS < end)) || fail "timed out after ${timeout}s waiting for $what"
    ((SECONDS < DEADLINE)) || fail "out of time (NOGRAD_SLURM_TEST_DEADLINE) waiting for $what"
    sleep 0.5
  done
}

mkdir -p "$T"/{munge,munge-key,state,spool,log,work} || fail "mkdir"
chown munge:munge "$T/munge" "$T/munge-key" "$T/log"
chmod 755 "$T/munge" "$T/log"
chmod 700 "$T/munge-key"

# munge: a key of our own, and a daemon as user munge on a socket of our own. Any system munged and its
# /etc/munge/munge.key are left alone.
KEY=$T/munge-key/munge.key
SOCK=$T/munge/munge.socket
dd if=/dev/urandom of="$KEY" bs=1024 count=1 status=none || fail "cannot create the munge key"
chown munge:munge "$KEY" && chmod 400 "$KEY"
setpriv --reuid=munge --regid=munge --init-groups munged --foreground --socket="$SOCK" --key-file="$KEY" \
  --log-file="$T/log/munged.log" --pid-file="$T/munge/munged.pid" --seed-file="$T/munge/munged.seed" \
  >>"$T/log/munged.log" 2>&1 &
pids+=("munged:$!")
munge_works() { munge -n -S "$SOCK" 2>/dev/null | unmunge -S "$SOCK" >/dev/null 2>&1; }
wait_for 20 "munged to answer on $SOCK" munge_works
log "munged running (pid ${pids[0]##*:})"

# Two free TCP ports, so that a system Slurm, or another run of this test, is no obstacle.
read -r CTLD_PORT SLURMD_PORT < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
[[ -n $SLURMD_PORT ]] || fail "no free ports"

HOST=$(hostname -s)
# The jobs ask for 2 tasks; on a 1-CPU machine the node claims 2 (config_overrides keeps it usable).
CPUS=$(nproc)
((CPUS >= 2)) || CPUS=2
MEM=$(free -m | awk '/^Mem:/ {print $2}')
MEM=$((MEM > 1024 ? MEM - 512 : MEM / 2))
export SLURM_CONF=$T/slurm.conf
cat >"$SLURM_CONF" <<EOF
# A private one-node cluster for nograd's slurm test.
ClusterName=nogradtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (120 s by default).
AuthInfo=socket=$SOCK,cred_expire=10
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/state/slurmctld.pid
SlurmdPidFile=$T/spool/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
SwitchType=switch/none
JobRequeue=1
ReturnToService=2
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
KillWait=10
MailProg=/bin/true
PlugStackConfig=$T/plugstack.conf
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
: >"$T/plugstack.conf"

slurmctld -D -i -f "$SLURM_CONF" >>"$T/log/slurmctld.out" 2>&1 &
pids+=("slurmctld:$!")
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
wait_for 30 "slurmctld to answer" ctld_up
slurmd -D -f "$SLURM_CONF" >>"$T/log/slurmd.out" 2>&1 &
pids+=("slurmd:$!")
node_idle() { [[ $(sinfo -h -n "$HOST" -o %T 2>/dev/null) == idle* ]]; }
wait_for 60 "node $HOST to be idle in sinfo" node_idle
log "cluster up in $((SECONDS - t0)) s: node $HOST, $CPUS CPUs, ports $CTLD_PORT/$SLURMD_PORT, conf $SLURM_CONF"

# ---- helpers for jobs ------------------------------------------------------------------------------------
W=$T/work
cd "$W" || fail "cd $W"
export NOGRAD
# Concurrent jobs on this small node must not all be pinned to core 0 (task/none does not bind).
export OMPI_MCA_hwloc_base_binding_policy=none

submit() { # prints the job id
  local out
  out=$(sbatch --parsable "$@") || fail "sbatch $*"
  echo "${out%%;*}"
}
job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
# Waits until no task of job $1 is in the queue, then requires every task to have COMPLETED.
wait_job() {
  local id=$1 timeout=$2 end states
  end=$((SECONDS + timeout))
  while [[ -n $(squeue -h -j "$id" -o %i 2>/dev/null) ]]; do
    ((SECONDS < end)) || fail "job $id still queued or running after ${timeout}s: $(squeue -h -j "$id" 2>&1)"
    ((SECONDS < DEADLINE)) || fail "out of time (NOGRAD_SLURM_TEST_DEADLINE) waiting for job $id"
    sleep 1
  done
  states=$(scontrol show job "$id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort -u | tr '\n' ' ')
  [[ $states == "COMPLETED " ]] || fail "job $id ended in state(s) $states"
}
# The last JSON object line of a file.
result_line() { grep -E '^\{.*\}$' "$1" | tail -n 1; }
# Compares two nograd result lines, "seconds" aside (and the sweep's own fields); prints the difference.
same_result() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
def load(s):
    d = json.loads(s)
    for k in ("seconds", "task", "seed", "popsize", "array_job", "prior"):
        d.pop(k, None)
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
if a != b:
    print("  slurm:  %s\n  direct: %s" % (a, b))
    sys.exit(1)
PY
}
direct() { # a direct run: NP then nograd minimize arguments; prints the result line
  local np=$1
  shift
  "$MPIRUN" -n "$np" --oversubscribe "$NOGRAD" minimize --json --quiet "$@" | tail -n 1
}

# ---- 1. minimize.sbatch ----------------------------------------------------------------------------------
ARGS1=(--function rosenbrock --dim 12 --x0 0 --sigma0 0.5 --seed 4 --ftarget 1e-8)
id=$(CHECKPOINT=$W/minimize.h5 submit "$SRC/jobs/minimize.sbatch" "${ARGS1[@]}")
log "1. minimize.sbatch: job $id"
ref=$(direct 2 "${ARGS1[@]}") || fail "direct run of ${ARGS1[*]}"
wait_job "$id" 120
got=$(result_line "$W/nograd-minimize-$id.out")
[[ -n $got ]] || fail "no result line in nograd-minimize-$id.out"
same_result "$got" "$ref" || fail "minimize.sbatch's result differs from a direct run's"
[[ -f $W/minimize.h5 ]] || fail "minimize.sbatch with CHECKPOINT wrote no $W/minimize.h5"
log "1. minimize.sbatch: ok: $got"

# ---- 2. sweep.sbatch + tools/gather_sweep.py -------------------------------------------------------------
ARGS2=(--function rosenbrock --dim 8 --x0 0 --sigma0 0.5 --ftarget 1e-10 --max-evals 20000)
id=$(SEEDS="3 5" POPSIZES="8,16" submit --array=0-3 --ntasks=1 "$SRC/jobs/sweep.sbatch" "${ARGS2[@]}")
log "2. sweep.sbatch: array job $id"
declare -A want
for t in 0 1 2 3; do
  seeds=(3 5) pops=(8 16)
  want[$t]=$(direct 1 "${ARGS2[@]}" --seed "${seeds[t % 2]}" --popsize "${pops[t / 2]}") || fail "direct run $t"
done
wait_job "$id" 180
for t in 0 1 2 3; do
  f=$W/results/sweep-$id/task-$t.json
  [[ -f $f ]] || fail "no $f"
  got=$(result_line "$f")
  same_result "$got" "${want[$t]}" || fail "sweep task $t differs from a direct run"
  [[ $got == "{\"task\":$t,\"seed\":${seeds[t % 2]},\"popsize\":${pops[t / 2]},"* ]] ||
    fail "sweep task $t: wrong seed or popsize in $got"
  [[ -s $W/results/sweep-$id/task-$t.jsonl && -f $W/results/sweep-$id/task-$t.h5 ]] ||
    fail "sweep task $t: no log or checkpoint"
done
/usr/bin/python3 "$SRC/tools/gather_sweep.py" "$W/results/sweep-$id" --out "$W/sweep.csv" >"$W/gather.txt" ||
  fail "gather_sweep.py failed: $(cat "$W/gather.txt")"
rows=$(($(wc -l <"$W/sweep.csv") - 1))
((rows == 4)) || fail "gather_sweep.py wrote $rows rows, not 4: $(cat "$W/sweep.csv")"
grep -qE '^ +16 +2 ' "$W/gather.txt" || fail "gather_sweep.py's summary has no popsize-16 line: $(cat "$W/gather.txt")"
log "2. sweep.sbatch: ok: 4 tasks equal direct runs; gather_sweep.py:"
sed 's/^/    /' "$W/gather.txt"

# ---- 3. preemptible.sbatch: USR1, checkpoint, requeue, resume --------------------------------------------
# About 20 s of work on 2 ranks; the signal comes after 30 generations.
ARGS3=(--function logistic --dim 21 --rows 400000 --chunk-rows 10000 --max-evals 2600 --seed 2)
log "3. preemptible.sbatch: the uninterrupted reference run"
t_ref=$SECONDS
ref=$(direct 2 "${ARGS3[@]}") || fail "direct run of ${ARGS3[*]}"
log "3. reference: $ref ($((SECONDS - t_ref)) s)"
id=$(submit "$SRC/jobs/preemptible.sbatch" "${ARGS3[@]}")
log "3. preemptible.sbatch: job $id"
out=$W/nograd-preemptible-$id.out
genlog=$W/results/preemptible-$id.jsonl
generations() { [[ -f $genlog ]] && wc -l <"$genlog" || echo 0; }
enough_generations() { (($(generations) >= 30)); }
wait_for 120 "job $id to log 30 generations" enough_generations
[[ $(job_state "$id") == RUNNING ]] || fail "job $id is $(job_state "$id") after 30 generations"
scancel --signal=USR1 --batch "$id" || fail "scancel --signal=USR1 --batch $id"
log "3. sent SIGUSR1 to the batch script at generation $(generations)"
requeued() { grep -q 'requeueing job' "$out" 2>/dev/null; }
wait_for 60 "the job to checkpoint and requeue itself" requeued
restarted() { [[ $(job_field "$id" Restarts) -ge 1 ]]; }
wait_for 30 "scontrol to show Restarts>=1" restarted
log "3. requeued (state $(job_state "$id")); waiting for the resumed run"
wait_job "$id" 240
grep -q 'restart count 1' "$out" || fail "the requeued job did not start again with SLURM_RESTART_COUNT=1"
grep -q "resuming from .*preemptible-$id.h5" "$out" || fail "the requeued job did not resume from its checkpoint"
grep -q 'Forwarding signal 10' "$out" || log "note: no 'Forwarding signal 10' line from mpirun in $out"
f=$W/results/preemptible-$id.json
[[ -f $f ]] || fail "no result file $f"
got=$(result_line "$f")
same_result "$got" "$ref" || fail "the interrupted and resumed run differs from the uninterrupted one"
log "3. preemptible.sbatch: ok: interrupted, requeued (Restarts=$(job_field "$id" Restarts)), resumed: $got"

# ---- 4. preemptible.sbatch: SIGTERM to every process of the job, as at a time limit ---------------------
# The ranks get SIGTERM directly and checkpoint; mpirun, signalled too, exits with its own code; the script
# recognizes the stop reason "signal" in the result line and requeues all the same.
id=$(submit "$SRC/jobs/preemptible.sbatch" "${ARGS3[@]}")
log "4. preemptible.sbatch: job $id"
out=$W/nograd-preemptible-$id.out
genlog=$W/results/preemptible-$id.jsonl
wait_for 120 "job $id to log 30 generations" enough_generations
scancel --signal=TERM --full "$id" || fail "scancel --signal=TERM --full $id"
log "4. sent SIGTERM to every process of the batch step at generation $(generations)"
wait_for 60 "the job to checkpoint and requeue itself" requeued
wait_for 30 "scontrol to show Restarts>=1" restarted
wait_job "$id" 240
grep -q "resuming from .*preemptible-$id.h5" "$out" || fail "the requeued job did not resume from its checkpoint"
got=$(result_line "$W/results/preemptible-$id.json")
same_result "$got" "$ref" || fail "the run stopped by SIGTERM and resumed differs from the uninterrupted one"
log "4. preemptible.sbatch: ok: SIGTERM to all, requeued, resumed, same result"
grep -h 'preemptible.sbatch' "$out" | sed 's/^/    /'

# ---- 5. preemptible.sbatch: a plain scancel ends the job for good ----------------------------------------
id=$(submit "$SRC/jobs/preemptible.sbatch" "${ARGS3[@]}")
log "5. preemptible.sbatch: job $id"
out=$W/nograd-preemptible-$id.out
genlog=$W/results/preemptible-$id.jsonl
few_generations() { (($(generations) >= 5)); }
wait_for 120 "job $id to log 5 generations" few_generations
scancel "$id" || fail "scancel $id"
gone() { [[ -z $(squeue -h -j "$id" -o %i 2>/dev/null) ]]; }
wait_for 60 "job $id to leave the queue after scancel" gone
sleep 3 # a wrong requeue would show by now
[[ $(job_state "$id") == CANCELLED && $(job_field "$id" Restarts) == 0 ]] ||
  fail "after scancel, job $id is $(job_state "$id") with Restarts=$(job_field "$id" Restarts) (want CANCELLED, 0)"
log "5. preemptible.sbatch: ok: scancel ended it (CANCELLED, not requeued)"

# ---- 6. preemptible.sbatch with nograd glue: the same run policy ----------------------------------------
# About 15 s of mixing on 2 ranks (the first-layer cache off, so that a step costs a pass over the rows).
log "6. preemptible.sbatch glue: experts and a target from nograd data synth"
G=$W/glue
mkdir -p "$G"
printf 'input 1 16 16\nflatten\ndense fc1 48\nrelu\ndense fc2 10\n' >"$G/spec.txt"
"$NOGRAD" data synth images --domains upright,tilted,target --rows 4000 --out-prefix "$G/d" >/dev/null ||
  fail "data synth"
"$NOGRAD" data split "$G/d-target.h5" --train 0.5 --val 0.5 --seed 1 --out-prefix "$G/t" >/dev/null || fail "split"
for s in upright tilted; do
  "$NOGRAD" train --train "$G/d-$s.h5" --spec "$G/spec.txt" --optimizer adam --lr 0.003 --epochs 2 --quiet \
    --out "$G/e-$s.h5" >/dev/null || fail "train an expert on $s"
done
ARGS6=(--experts "$G/e-upright.h5" "$G/e-tilted.h5" --target-train "$G/t-train.h5" --target-val "$G/t-val.h5"
  --granularity layer --steps 12000 --chunk-rows 64 --no-first-layer-cache)
ref=$("$MPIRUN" -n 2 --oversubscribe "$NOGRAD" glue --json --quiet "${ARGS6[@]}" --out "$G/prior-direct.h5" |
  tail -n 1) || fail "direct glue run"
log "6. reference: $ref"
id=$(submit "$SRC/jobs/preemptible.sbatch" glue "${ARGS6[@]}" --out "$G/prior-slurm.h5")
log "6. preemptible.sbatch glue: job $id"
out=$W/nograd-preemptible-$id.out
genlog=$W/results/preemptible-$id.jsonl
wait_for 120 "job $id to log 30 generations" enough_generations
scancel --signal=USR1 --batch "$id" || fail "scancel --signal=USR1 --batch $id"
log "6. sent SIGUSR1 to the batch script at generation $(generations)"
wait_for 60 "the job to checkpoint and requeue itself" requeued
wait_for 30 "scontrol to show Restarts>=1" restarted
wait_job "$id" 240
grep -q "resuming from .*preemptible-$id.h5" "$out" || fail "the requeued glue job did not resume from its checkpoint"
got=$(result_line "$W/results/preemptible-$id.json")
same_result "$got" "$ref" || fail "the interrupted and resumed glue run differs from the uninterrupted one"
/usr/bin/python3 - "$G/prior-direct.h5" "$G/prior-slurm.h5" <<'PY' || fail "the resumed prior's parameters differ"
import sys, h5py
a, b = (h5py.File(p, "r")["/model/params"][()] for p in sys.argv[1:3])
sys.exit(0 if a.tobytes() == b.tobytes() else 1)
PY
log "6. preemptible.sbatch glue: ok: interrupted, requeued, resumed; the same prior, bit for bit: $got"

log "PASSED in $((SECONDS - t0)) s"
