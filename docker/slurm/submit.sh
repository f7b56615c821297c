#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Submit a sharded vizfs build to Slurm: a job array of N shards + a dependent merge.
#
# Usage: submit.sh [OPTIONS] CONFIG ROOT OUT
#   -n, --shards N        number of shards (default 4)
#       --only LIST       submit only these array indices (e.g. 2 or 1,3):
#                         rerun shards that failed; the merge waits for them
#       --no-merge        submit the shard array only
#   -c, --cpus C          CPUs per shard task and for the merge (default 1)
#       --mem MEM         memory per task, e.g. 4G (default: Slurm's)
#   -t, --time T          time limit per job, e.g. 04:00:00
#   -p, --partition P     partition
#       --max-running M   run at most M shard tasks at once (array %M)
#   -- SBATCH-OPTIONS...  anything after -- goes to both sbatch calls
#
# ROOT gets shard-0 ... shard-(N-1) (one cache per task) and logs/; OUT is the
# merged cache.  Paths must be on storage shared by all nodes.  The vizfs
# binary is $VIZFS or vizfs on PATH of the compute nodes (sbatch passes the
# environment on).  Prints "ARRAY_JOB_ID MERGE_JOB_ID" (MERGE_JOB_ID is "-"
# with --no-merge).  The merge runs only if every shard task succeeded
# (afterok); with a failed shard it is cancelled (--kill-on-invalid-dep):
# rerun that shard with --only I, which submits a new merge.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
n=4 only="" merge=1 cpus=1 mem="" tlimit="" part="" maxrun=""

usage()
{
	awk 'NR < 3 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}
die()
{
	echo "submit.sh: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	-n | --shards) n=${2:?}; shift 2 ;;
	--only) only=${2:?}; shift 2 ;;
	--no-merge) merge=0; shift ;;
	-c | --cpus) cpus=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	-t | --time) tlimit=${2:?}; shift 2 ;;
	-p | --partition) part=${2:?}; shift 2 ;;
	--max-running) maxrun=${2:?}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	--) break ;;
	-*) die "unknown option '$1' (try --help)" ;;
	*) break ;;
	esac
done
[ $# -ge 3 ] || { usage >&2; exit 1; }
conf=$1 root=$2 out=$3
shift 3
[ "${1:-}" != "--" ] || shift

case $n in '' | *[!0-9]* | 0) die "--shards: expected a count >= 1, got '$n'" ;; esac
case $cpus in '' | *[!0-9]* | 0) die "--cpus: expected a count >= 1, got '$cpus'" ;; esac
[ -f "$conf" ] || die "config '$conf' not found"
command -v sbatch >/dev/null 2>&1 || die "sbatch not found (is this a Slurm login node?)"

# Absolute paths: the jobs run in their own working directory.
abspath()
{
	case $1 in
	/*) echo "$1" ;;
	*) echo "$(pwd)/$1" ;;
	esac
}
conf=$(abspath "$conf") root=$(abspath "$root") out=$(abspath "$out")
mkdir -p "$root/logs"

array=${only:-0-$((n - 1))}
for idx in $(echo "$array" | tr ',' ' '); do
	case $idx in
	*-*) ;;
	*[!0-9]* | '') die "--only: bad index '$idx'" ;;
	*) [ "$idx" -lt "$n" ] || die "--only: index $idx is not in 0..$((n - 1))" ;;
	esac
done
[ -z "$maxrun" ] || array="$array%$maxrun"

set -- --parsable --cpus-per-task="$cpus" "$@"
[ -z "$mem" ] || set -- "$@" --mem="$mem"
[ -z "$tlimit" ] || set -- "$@" --time="$tlimit"
[ -z "$part" ] || set -- "$@" --partition="$part"

jid=$(sbatch "$@" --array="$array" --output="$root/logs/shard-%a.out" \
	"$here/shard.sbatch" "$conf" "$n" "$root")
jid=${jid%%;*}
[ -n "$jid" ] || die "sbatch returned no job id for the shard array"

mid=-
if [ "$merge" -eq 1 ]; then
	mid=$(sbatch "$@" --dependency="afterok:$jid" --kill-on-invalid-dep=yes \
		--output="$root/logs/merge-%j.out" \
		"$here/merge.sbatch" "$conf" "$n" "$root" "$out")
	mid=${mid%%;*}
fi
echo "$jid $mid"
