#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Slurm for real: a one-node cluster runs docker/slurm/submit.sh (job array + merge).
#
# Starts munged (as the munge user), slurmctld and slurmd (as root) with all
# state in a temp dir and a minimal slurm.conf for this host, submits a
# 4-shard build whose shard 1 fails (its cache path is a file), checks that
# the dependent merge is cancelled, reruns shard 1 alone with --only 1 (new
# merge), and compares the merged cache's export with a single-process
# build.  Stops every daemon it started.  Skips (77) when not root or when
# slurm-wlm/munge cannot be installed or started.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"

need_root
ensure_pkgs slurmctld slurm-wlm munge
ensure_pkgs munged munge
PATH=$PATH:/usr/sbin:/sbin
id munge >/dev/null 2>&1 || skip "no munge user (is the munge package installed?)"

munged_pid="" ctld_pid="" slurmd_pid=""
cleanup()
{
	if [ -n "$ctld_pid" ] && kill -0 "$ctld_pid" 2>/dev/null; then
		scancel --quiet --user=root 2>/dev/null
	fi
	stop_pid "$slurmd_pid" slurmd
	stop_pid "$ctld_pid" slurmctld
	stop_pid "$munged_pid" munged
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
chmod 0755 "$T"

# --- munge: key and socket in the temp dir, daemon as the munge user
M=$T/munge
mkdir -p "$M"
mungekey --create --keyfile="$M/munge.key" >/dev/null 2>&1 ||
	dd if=/dev/urandom of="$M/munge.key" bs=1024 count=1 2>/dev/null
chown -R munge:munge "$M"
chmod 0700 "$M"
chmod 0600 "$M/munge.key"
runuser -u munge -- munged --force --foreground --key-file="$M/munge.key" \
	--socket="$M/munge.sock" --pid-file="$M/munged.pid" \
	--log-file="$M/munged.log" --seed-file="$M/munged.seed" \
	>"$T/munged.out" 2>&1 &
munged_pid=$!
wait_for 20 test -S "$M/munge.sock" ||
	skip "munged did not start: $(tail -3 "$T/munged.out" "$M/munged.log" 2>/dev/null | tr '\n' ' ')"
munge --socket="$M/munge.sock" -n | unmunge --socket="$M/munge.sock" >/dev/null 2>&1 ||
	skip "munge round trip failed"

# --- slurm.conf for this one node (its real CPUs and memory)
S=$T/slurm
mkdir -p "$S/state" "$S/spool"
host=$(hostname -s)
node=$(slurmd -C 2>/dev/null | head -1)
case $node in NodeName=*) ;; *) skip "slurmd -C failed" ;; esac
port=$((20000 + $$ % 20000))
cat >"$S/slurm.conf" <<CONF
ClusterName=vizfstest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$M/munge.sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=3600
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$S/slurm.conf"
slurmctld -D -i -f "$SLURM_CONF" >"$S/slurmctld.out" 2>&1 &
ctld_pid=$!
slurmd -D -f "$SLURM_CONF" >"$S/slurmd.out" 2>&1 &
slurmd_pid=$!
node_idle()
{
	sinfo -h -o %T 2>/dev/null | grep -qx idle
}
if ! wait_for 60 node_idle; then
	tail -5 "$S/slurmctld.log" "$S/slurmd.log" "$S/slurmctld.out" "$S/slurmd.out" >&2 2>/dev/null
	skip "the one-node Slurm cluster did not come up (logs above)"
fi
echo "slurm up after $(elapsed) s: $(sinfo -h -o '%N %c CPUs %m MB %T')"

# job_state ID: COMPLETED, FAILED, CANCELLED, PENDING, RUNNING, ... of a
# job (of the worst task for an array)
job_state()
{
	scontrol -o show job "$1" 2>/dev/null |
		sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort -u | tr '\n' ' '
}
# wait_done ID SECONDS: until no task of job ID is pending or running
job_done()
{
	s=$(job_state "$1")
	case $s in *PENDING* | *RUNNING* | *CONFIGURING* | *COMPLETING* | '') return 1 ;; esac
	return 0
}

# --- data and the single-process reference
"$VIZFS" sample "$T/in/a.gpkg" --count 12000 --seed 41 --quiet || fail sample
"$VIZFS" sample "$T/in/b.gpkg" --count 2000 --seed 42 \
	--bbox=-150.2,70.3,-150.1,70.35 --quiet || fail "sample b"
write_config "$T/c.json" "$T/in" "$T/cache-single" 14
expect_rc 0 "$VIZFS" export "$T/c.json" "$T/out-single" --quiet
echo "single-process build and export: $(elapsed) s"

SUBMIT=$SRC/docker/slurm/submit.sh
export VIZFS
mkdir -p "$T/shards"
: >"$T/shards/shard-1" # shard 1 cannot create its cache: the task fails
ids=$(cd "$T" && sh "$SUBMIT" -n 4 -c 1 c.json shards merged 2>"$T/err")
echo "submitted array+merge: $ids"
arr=${ids% *} mrg=${ids#* }
case "$arr$mrg" in *[!0-9]* | '') fail "submit.sh printed '$ids': $(cat "$T/err")" ;; esac
wait_for 300 job_done "$arr" || fail "shard array $arr not done: $(job_state "$arr")"
st=$(job_state "$arr")
case $st in *FAILED*) ok ;; *) fail "array with a broken shard: state '$st', want a FAILED task" ;; esac
for i in 0 2 3; do
	scontrol -o show job "${arr}_$i" | grep -q 'JobState=COMPLETED' && ok ||
		fail "shard task $i: $(job_state "${arr}_$i")"
done
grep -q "shard 1/4" "$T/shards/logs/shard-1.out" && ok || fail "no log for shard 1"
wait_for 60 job_done "$mrg" || fail "merge $mrg still waiting after a failed shard"
st=$(job_state "$mrg")
case $st in *CANCELLED*) ok ;; *) fail "merge after a failed shard: '$st', want CANCELLED" ;; esac
[ ! -e "$T/merged/data.mdb" ] && ok || fail "merge ran despite the failed shard"
echo "array with a failed shard done: $(elapsed) s"

# --- rerun the failed shard alone: a one-task array and a new merge
rm -f "$T/shards/shard-1"
ids=$(cd "$T" && sh "$SUBMIT" -n 4 -c 1 --only 1 c.json shards merged 2>"$T/err")
echo "resubmitted shard 1 + merge: $ids"
arr=${ids% *} mrg=${ids#* }
wait_for 300 job_done "$mrg" || fail "merge $mrg not done"
st=$(job_state "$arr")
case $st in "COMPLETED ") ok ;; *) fail "rerun of shard 1: '$st'" ;; esac
st=$(job_state "$mrg")
if [ "$st" = "COMPLETED " ]; then ok; else
	fail "merge: '$st'"
	cat "$T/shards/logs/merge-$mrg.out" >&2
fi
echo "rerun and merge done: $(elapsed) s"
grep -q "merge of 4 shards" "$T/shards/logs/merge-$mrg.out" && ok || fail "merge log"

# --- the merged cache is complete and equals the single-process build
expect_rc 0 "$VIZFS" prefetch "$T/c.json" --cache "$T/merged"
grep -q "rendered 0 tiles" "$T/err" && ok || fail "merged cache incomplete: $(cat "$T/err")"
expect_rc 0 "$VIZFS" export "$T/c.json" "$T/out-merged" --cache "$T/merged" --quiet
same_outputs "$T/out-single" "$T/out-merged"
echo "total: $(elapsed) s"
finish
