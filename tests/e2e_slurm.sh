#!/usr/bin/env bash
# End-to-end test of `euar suite --runner slurm`. The first part needs no Slurm. It checks the
# job script of --dry-run and the errors for a missing or failing sbatch and for bad --shard
# values. It also runs a job array through stand-in sbatch and squeue scripts that start the
# tasks on this host and lose one of them. The second part starts a single-node Slurm cluster (slurmctld, slurmd and
# munged of Debian 12's slurm-wlm 22.05 and munge) on loopback, runs the quick missing suite
# through it, compares every result with the local runner's, and stops exactly the daemons it
# started. It is skipped with a message when the daemons are not installed (make deps-slurm)
# or the test does not run as root. Prints "N passed, M failed" and exits non-zero on failure.
set -u
cd "$(dirname "$0")/.." || exit 1

# Inside the private network namespace of a re-run (see below), set up loopback first.
if [ "${EUAR_E2E_SLURM_NETNS:-}" = inside ]; then
    hostname localhost && ip link set lo up && ip addr add 127.0.0.2/8 dev lo || exit 1
fi

# Slurm stays on the address the host name resolves to. When that is not loopback (or
# EUAR_E2E_SLURM_NETNS=always), the whole test runs again inside a private network and UTS
# namespace whose host name is localhost.
netns_skip=""
if [ "${EUAR_E2E_SLURM_NETNS:-}" != inside ] && [ "$(id -u)" = 0 ] &&
    command -v slurmctld >/dev/null; then
    address=$(getent hosts "$(hostname)" | awk 'NR == 1 {print $1}')
    reason="host name $(hostname) resolves to ${address:-nothing}, not loopback"
    case "$address" in
    127.*) reason="" ;;
    esac
    [ "${EUAR_E2E_SLURM_NETNS:-}" = always ] && reason="EUAR_E2E_SLURM_NETNS=always"
    if [ -n "$reason" ]; then
        if unshare --net --uts true 2>/dev/null && command -v ip >/dev/null; then
            echo "note  $reason: running the test in a private network namespace"
            EUAR_E2E_SLURM_NETNS=inside exec unshare --net --uts "$0"
        fi
        netns_skip="$reason, and no private network namespace is possible (unshare --net"
        netns_skip="$netns_skip --uts and ip of iproute2)"
    fi
fi

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh
e2e_require bin/euar data/synth-mosi.h5 data/fmnist-2view.h5

SUITE=suites/missing.json
cluster=""
daemon_pids=()

# Stops the jobs of the test cluster, then its daemons by pid, and removes its folder.
stop_cluster() {
    if [ -n "$cluster" ] && [ "${#daemon_pids[@]}" -gt 0 ]; then
        jobs_left=$(squeue -h -o %A 2>/dev/null)
        if [ -n "$jobs_left" ]; then
            # shellcheck disable=SC2086
            scancel $jobs_left 2>/dev/null
            for _ in $(seq 1 50); do
                [ -z "$(squeue -h 2>/dev/null)" ] && break
                sleep 0.2
            done
        fi
        for ((k = ${#daemon_pids[@]} - 1; k >= 0; k--)); do
            kill "${daemon_pids[k]}" 2>/dev/null
            wait "${daemon_pids[k]}" 2>/dev/null
        done
    fi
    [ -n "$cluster" ] && rm -rf "$cluster"
    rm -rf "$work"
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM

# Compares every result of folder $1 with the one of the same hash in folder $2, leaving out
# the fields that differ between two runs of a cell (time_s, samples_per_s, peak_rss_mb and
# the ms of each curve entry). Prints the first difference and returns 1 when a file is
# missing or differs, or when $1 has no result.
same_results() {
    python3 - "$1" "$2" <<'PY'
import glob, json, os, sys
drop = {"time_s", "samples_per_s", "peak_rss_mb", "ms"}
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in drop}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
a, b = sys.argv[1:3]
names = [os.path.basename(p) for p in glob.glob(a + "/*.json")]
names = [n for n in names if n != "suite.json"]
for name in sorted(names):
    if not os.path.exists(os.path.join(b, name)):
        sys.exit(f"  {name}: missing in {b}")
    x, y = (strip(json.load(open(os.path.join(d, name)))) for d in (a, b))
    if x != y:
        keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
        sys.exit(f"  {name} differs between {a} and {b} in {keys}")
sys.exit(0 if names else f"  {a} holds no result")
PY
}

count_results() {
    find "$1" -maxdepth 1 -name '*.json' ! -name suite.json | wc -l
}

# Cell hashes in a cell list, without the comment lines.
count_listed() {
    grep -vc '^#' "$1"
}

# ---- part 1: no cluster needed ----

out=$work/dry
"$EUAR" suite "$SUITE" --quick --runner slurm --dry-run --results "$work/dry-results" \
    --array-size 4 --partition debug --time 00:10:00 --cpus-per-task 2 --gpus-per-task 1 \
    --sbatch-arg=--account=lab --sbatch-arg --qos=short >"$out.sh" 2>"$out.err"
check "dry run exits 0" test $? -eq 0
check "dry run script has the array range" grep -qx '#SBATCH --array=0-3' "$out.sh"
check "dry run script has the partition" grep -qx '#SBATCH --partition=debug' "$out.sh"
check "dry run script has the time limit" grep -qx '#SBATCH --time=00:10:00' "$out.sh"
check "dry run script has the CPUs" grep -qx '#SBATCH --cpus-per-task=2' "$out.sh"
check "dry run script has the GPUs" grep -qx '#SBATCH --gpus-per-task=1' "$out.sh"
check "dry run script has the extra options" \
    sh -c "grep -qx '#SBATCH --account=lab' '$out.sh' && grep -qx '#SBATCH --qos=short' '$out.sh'"
check "dry run script logs per task" \
    grep -qE "^#SBATCH --output=$work/dry-results/slurm/logs/[0-9-]+-%a.log$" "$out.sh"
check "dry run script runs this binary on its shard" \
    grep -qF "'$(readlink -f "$EUAR")' suite '$SUITE' --quick" "$out.sh"
check "dry run script passes shard, list and jobs" \
    grep -qF -- '--jobs 2 \' "$out.sh"
check "dry run task line has the shard" grep -qF -- '--shard "$task/4" --cells' "$out.sh"
check "dry run script writes a status file" grep -qF '.rc"' "$out.sh"
check "dry run counts 40 cells in 4 tasks" grep -q '40 cells in 4 tasks' "$out.err"
check "dry run writes nothing" test ! -e "$work/dry-results"
"$EUAR" suite "$SUITE" --quick --runner slurm --dry-run --results "$work/dry-one" \
    --only 'synth-mosi/T/euar/1' >/dev/null 2>"$work/dry-one.err"
check "a one-cell dry run says 1 cell in 1 task" grep -q '1 cell in 1 task;' "$work/dry-one.err"

# The make targets skip the report after a dry run: no results folder, exit 0.
report_dir=results/missing-quick
had_results=0
[ -e "$report_dir" ] && had_results=1
make -s suite-missing-quick RUNNER=slurm SLURM_ARGS='--array-size 8 --dry-run' \
    >"$work/make-dry.out" 2>"$work/make-dry.err"
check "make suite-missing-quick with a Slurm dry run exits 0" test $? -eq 0
check "make prints the job script" grep -qx '#SBATCH --array=0-7' "$work/make-dry.out"
check "make skips the report" grep -q "dry run: no report of $report_dir" "$work/make-dry.out"
check "make runs no report" sh -c "! grep -q 'cannot open results folder' '$work/make-dry.err'"
[ "$had_results" = 0 ] && check "make writes no results folder" test ! -e "$report_dir"

PATH=/nonexistent "$(readlink -f "$EUAR")" suite "$SUITE" --quick --runner slurm \
    --results "$work/nosbatch" >/dev/null 2>"$work/nosbatch.err"
check "missing sbatch exits 1" test $? -eq 1
check "missing sbatch names the package" grep -q 'sbatch not found.*slurm-client' \
    "$work/nosbatch.err"

fake=$work/fakebin
mkdir -p "$fake"
printf '#!/bin/sh\necho "sbatch: error: invalid partition specified: nope" >&2\nexit 1\n' \
    >"$fake/sbatch"
printf '#!/bin/sh\nexit 0\n' >"$fake/squeue"
chmod +x "$fake/sbatch" "$fake/squeue"
PATH=$fake:$PATH "$EUAR" suite "$SUITE" --quick --runner slurm --results "$work/badsbatch" \
    --only 'synth-mosi/T/*' >/dev/null 2>"$work/badsbatch.err"
check "failing sbatch exits 1" test $? -eq 1
check "failing sbatch prints its stderr" grep -q 'sbatch failed.*invalid partition' \
    "$work/badsbatch.err"
check "failing sbatch leaves no result" test "$(count_results "$work/badsbatch")" -eq 0
check "failing sbatch leaves no job script or cell list" \
    test -z "$(ls "$work/badsbatch/slurm"/*.sbatch "$work/badsbatch/slurm"/cells-* 2>/dev/null)"

for bad in 0/0 3/2 x 1/ /2 -1/2; do
    "$EUAR" suite "$SUITE" --quick --shard "$bad" --results "$work/shard" 2>"$work/shard.err"
    check "--shard $bad exits 1" test $? -eq 1
    check "--shard $bad names the value" grep -qF "'$bad' for --shard" "$work/shard.err"
done

# Stand-in Slurm: sbatch starts each array task as a background process, except the task ids
# in FAKE_LOSE_TASKS (lost, as if cancelled), and squeue prints R while any of them runs.
cat >"$fake/sbatch" <<'EOF'
#!/bin/bash
script=${!#}
range=$(sed -n 's/^#SBATCH --array=0-\([0-9]*\)$/\1/p' "$script")
log=$(sed -n 's/^#SBATCH --output=//p' "$script")
: >"$FAKE_PIDS"
for task in $(seq 0 "$range"); do
    case " ${FAKE_LOSE_TASKS:-} " in *" $task "*) continue ;; esac
    SLURM_ARRAY_TASK_ID=$task bash "$script" >"${log//%a/$task}" 2>&1 </dev/null &
    echo $! >>"$FAKE_PIDS"
done
echo "4242;fake"
EOF
cat >"$fake/squeue" <<'EOF'
#!/bin/bash
while read -r pid; do kill -0 "$pid" 2>/dev/null && echo R; done <"$FAKE_PIDS"
exit 0
EOF
export FAKE_PIDS=$work/fake.pids
fres=$work/fake-results
PATH=$fake:$PATH FAKE_LOSE_TASKS=1 "$EUAR" suite "$SUITE" --quick --runner slurm \
    --only 'synth-mosi/T+*/*' --results "$fres" --array-size 3 --poll 0.2 \
    >/dev/null 2>"$work/fake1.err"
check "lost task makes the status 1" test $? -eq 1
check "lost task is listed with its log" \
    grep -qE "^task 1: failed, it wrote no exit status .*see $fres/slurm/logs/[0-9-]+-1.log" \
    "$work/fake1.err"
check "other tasks are not listed" sh -c "! grep -qE '^task (0|2):' '$work/fake1.err'"
check "progress line counts cells" grep -qE '^slurm job 4242: .* cells finished' \
    "$work/fake1.err"
check "lost task leaves its cells unfinished" grep -q '8 of 12 cells finished' "$work/fake1.err"
check "tasks write their status" sh -c "cat '$fres'/slurm/status/*-0.rc | grep -qx 0"
PATH=$fake:$PATH "$EUAR" suite "$SUITE" --quick --runner slurm --only 'synth-mosi/T+*/*' \
    --results "$fres" --poll 0.2 >/dev/null 2>"$work/fake2.err"
check "rerun finishes the lost cells" test $? -eq 0
check "rerun submits only the 4 lost cells" grep -q 'submitted slurm job 4242, 4 cells in 4 tasks' \
    "$work/fake2.err"
check "rerun lists 4 cells" test "$(count_listed "$(ls -t "$fres"/slurm/cells-*.txt | head -n 1)")" -eq 4
check "stand-in run writes 12 results" test "$(count_results "$fres")" -eq 12
PATH=$fake:$PATH "$EUAR" suite "$SUITE" --quick --runner slurm --only 'synth-mosi/T/euar/1' \
    --results "$work/fake-one" --poll 0.2 >/dev/null 2>"$work/fake3.err"
check "a one-cell job exits 0" test $? -eq 0
check "a one-cell job says 1 cell in 1 task" \
    grep -q 'submitted slurm job 4242, 1 cell in 1 task;' "$work/fake3.err"
check "its progress line says 1 task running" \
    grep -qE '^slurm job 4242: 1 task running, 0 pending; [01]/1 cell finished' "$work/fake3.err"
check "its last line counts 1 cell and 1 task" \
    grep -q 'ended: 1 of 1 cell finished, 0 of 1 task failed' "$work/fake3.err"
check "no message counts 1 of a plural" \
    sh -c "! grep -hE '(^|[^0-9/])1 (cells|tasks)' '$work'/fake*.err '$work'/dry*.err"

# ---- part 2: a real single-node cluster ----

missing_tools=""
for tool in munged slurmctld slurmd sbatch squeue scancel sinfo; do
    command -v "$tool" >/dev/null 2>&1 || missing_tools="$missing_tools $tool"
done
finish() {
    echo "e2e_slurm: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
if [ -n "$missing_tools" ]; then
    echo "skip  the cluster part: not installed:$missing_tools (make deps-slurm installs" \
        "slurm-wlm and munge)"
    finish
fi
if [ -n "$netns_skip" ]; then
    echo "skip  the cluster part: $netns_skip"
    finish
fi
if [ "$(id -u)" != 0 ]; then
    echo "skip  the cluster part: slurmd must run as root here (SlurmUser=root)"
    finish
fi

# Daemons, configuration and state live in a short folder: munge's socket path must stay
# under 108 bytes.
cluster=$(mktemp -d /tmp/euar-slurm.XXXXXX)
mkdir -p "$cluster/key" "$cluster/run" "$cluster/state" "$cluster/spool" "$cluster/log"
chmod 755 "$cluster" "$cluster/run"
chmod 700 "$cluster/key"
dd if=/dev/urandom of="$cluster/key/munge.key" bs=1024 count=1 status=none
chmod 400 "$cluster/key/munge.key"
munged -F --key-file="$cluster/key/munge.key" --socket="$cluster/run/munge.sock" \
    --pid-file="$cluster/run/munged.pid" --seed-file="$cluster/run/munge.seed" \
    --log-file="$cluster/log/munged.log" >>"$cluster/log/munged.out" 2>&1 &
daemon_pids+=($!)

port=$((20000 + $$ % 20000))
cat >"$cluster/slurm.conf" <<EOF
ClusterName=euartest
SlurmctldHost=$(hostname)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$cluster/run/munge.sock
StateSaveLocation=$cluster/state
SlurmdSpoolDir=$cluster/spool
SlurmctldPidFile=$cluster/run/slurmctld.pid
SlurmdPidFile=$cluster/run/slurmd.pid
SlurmctldLogFile=$cluster/log/slurmctld.log
SlurmdLogFile=$cluster/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
$(slurmd -C | head -n 1)
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$cluster/slurm.conf
for _ in $(seq 1 50); do
    [ -S "$cluster/run/munge.sock" ] && break
    sleep 0.1
done
slurmctld -D -f "$SLURM_CONF" >"$cluster/log/slurmctld.out" 2>&1 &
daemon_pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$cluster/log/slurmd.out" 2>&1 &
daemon_pids+=($!)
state=""
for _ in $(seq 1 100); do
    state=$(sinfo -h -o %T 2>/dev/null)
    [ "$state" = idle ] && break
    sleep 0.2
done
check "single-node cluster is idle (state '$state')" test "$state" = idle
if [ "$state" != idle ]; then
    tail -n 5 "$cluster"/log/*.log "$cluster"/log/*.out
    finish
fi

local_results=$work/local
slurm_results=$work/slurm
"$EUAR" suite "$SUITE" --quick --jobs 2 --results "$local_results" >"$work/local.log" 2>&1
check "local quick suite exits 0" test $? -eq 0
"$EUAR" suite "$SUITE" --quick --runner slurm --results "$slurm_results" --array-size 4 \
    --poll 0.5 >"$work/slurm1.out" 2>"$work/slurm1.err"
status=$?
check "slurm quick suite exits 0" test "$status" -eq 0
[ "$status" -eq 0 ] || tail -n 20 "$work/slurm1.err"
check "slurm run writes 40 results (got $(count_results "$slurm_results"))" \
    test "$(count_results "$slurm_results")" -eq 40
check "slurm results equal the local ones cell by cell" \
    same_results "$local_results" "$slurm_results"
check "submission reports the job" grep -qE '^suite missing \(quick\): submitted slurm job [0-9]+, 40 cells in 4 tasks' \
    "$work/slurm1.err"
check "job end reports every cell" grep -q 'ended: 40 of 40 cells finished, 0 of 4 tasks failed' \
    "$work/slurm1.err"
check "four task logs" test "$(ls "$slurm_results"/slurm/logs/*.log | wc -l)" -eq 4
check "four status files of 0" \
    test "$(cat "$slurm_results"/slurm/status/*.rc | grep -cx 0)" -eq 4
check "task log shows its shard" grep -q 'shard 2/4: 10 cells' \
    "$(ls "$slurm_results"/slurm/logs/*-2.log)"
check "worker logs per cell" test "$(ls "$slurm_results"/logs/*.log | wc -l)" -eq 40
check "suite.json written" test -s "$slurm_results/suite.json"

"$EUAR" suite "$SUITE" --quick --runner slurm --results "$slurm_results" --poll 0.5 \
    >/dev/null 2>"$work/slurm2.err"
check "rerun of a finished suite exits 0" test $? -eq 0
check "rerun of a finished suite submits nothing" \
    grep -q 'all 40 cells are finished; nothing to submit' "$work/slurm2.err"

ls "$slurm_results"/*.json | grep -v suite.json | head -n 3 | xargs rm -f
"$EUAR" suite "$SUITE" --quick --runner slurm --results "$slurm_results" --poll 0.5 \
    >/dev/null 2>"$work/slurm3.err"
check "rerun after deleting 3 results exits 0" test $? -eq 0
check "rerun submits only the 3 unfinished cells" grep -q ', 3 cells in 3 tasks' \
    "$work/slurm3.err"
check "rerun restores the 40 results" test "$(count_results "$slurm_results")" -eq 40
check "restored results equal the local ones" same_results "$local_results" "$slurm_results"

"$EUAR" report "$slurm_results" >/dev/null 2>&1
check "report of the slurm results exits 0" test $? -eq 0
check "report has the synth-mosi table" grep -q '^| T+A+V |' "$slurm_results/report.md"

finish
