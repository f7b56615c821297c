# SPDX-License-Identifier: Apache-2.0
# Helpers of the reliability suite: reference builds, tree comparison,
# background mounts that are always cleaned up, RSS, seeded random delays.
# Scratch on tmpfs when there is one: the suite writes and compares a few
# GiB of tiles, which is I/O and not what it tests.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	TMPDIR=/dev/shm
	export TMPDIR
fi
. "$(dirname "$0")/../cli/lib.sh"

PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
READER=$HERE/reader.py

# Everything this script started or mounted, undone on exit (even on a
# failure or a signal), innermost first: FUSE mounts, processes, tmpfs.
MOUNTS=""
PIDS=""
TMPFS=""
rel_cleanup()
{
	for m in $MOUNTS; do
		fusermount3 -u -z "$m" 2>/dev/null
	done
	for p in $PIDS; do
		kill -9 "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null
	done
	for m in $TMPFS; do
		umount -l "$m" 2>/dev/null
	done
	rm -rf "$T"
}
trap rel_cleanup EXIT
trap 'exit 1' INT TERM HUP

# skip_unless: exit 77 (skipped) with a reason when a tool is missing.
need()
{
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || {
			echo "skip: $t is not installed"
			exit 77
		}
	done
}
need fusermount3
[ -x "$PY" ] || {
	echo "skip: $PY is missing"
	exit 77
}
[ -e /dev/fuse ] || {
	echo "skip: /dev/fuse is missing"
	exit 77
}

# Seeded randomness: RELIABILITY_SEED fixes a run; the seed is printed so a
# failure can be replayed.
SEED=${RELIABILITY_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
echo "$(basename "$0"): seed $SEED (replay with RELIABILITY_SEED=$SEED)"
RND_STATE=$SEED
# rnd N: set R to a pseudo-random integer in [0, N) from the seeded LCG
# (not in a $(...) subshell, which would not advance the state)
rnd()
{
	RND_STATE=$(((RND_STATE * 1103515245 + 12345) % 2147483648))
	R=$(((RND_STATE / 65536) % $1))
}
# ms_to_s MS: "0.123" for sleep
ms_to_s()
{
	printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

# same_tree A B: the PDG outputs of two trees are byte-identical (GeoTIFFs,
# PNGs, rasters_summary.csv; the staged GeoPackages and staging_summary.csv
# carry SQLite/timing details and are compared by the cli suite instead).
same_tree()
{
	if diff -r -q -x '*.gpkg' -x staging_summary.csv -x .vizfs \
		-x staged "$1" "$2" >"$T/diff" 2>&1; then
		return 0
	fi
	head -5 "$T/diff" >&2
	return 1
}

# tiles_of DIR: the relative paths of the tiles and CSV of an exported tree
tiles_of()
{
	(cd "$1" && find web_tiles geotiff -type f | sort && echo rasters_summary.csv)
}

# start_mount CONFIG MNT LOG [OPTS...]: a foreground daemon in the
# background; sets MPID; waits until the mount answers.
start_mount()
{
	cfg=$1 mnt=$2 log=$3
	shift 3
	mkdir -p "$mnt"
	"$VIZFS" mount "$cfg" "$mnt" -f "$@" 2>"$log" &
	MPID=$!
	PIDS="$PIDS $MPID"
	case " $MOUNTS " in *" $mnt "*) ;; *) MOUNTS="$MOUNTS $mnt" ;; esac
	i=0
	while [ $i -lt 300 ]; do
		[ -e "$mnt/.vizfs/status" ] && return 0
		kill -0 "$MPID" 2>/dev/null || return 1
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# stop_mount MNT PID: unmount cleanly and return the daemon's exit status
stop_mount()
{
	fusermount3 -u "$1" || fusermount3 -u -z "$1"
	wait "$2"
}

# wait_prefetch MNT [SECONDS]: until the status says the prefetcher is done
wait_prefetch()
{
	i=0
	lim=$((${2:-120} * 10))
	while [ $i -lt $lim ]; do
		grep -q '"prefetching": false' "$1/.vizfs/status" 2>/dev/null &&
			return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# wait_file FILE [SECONDS]: until FILE exists
wait_file()
{
	i=0
	while [ $i -lt $((${2:-30} * 20)) ]; do
		[ -e "$1" ] && return 0
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# keep_log FILE NAME: copy a daemon log to $RELIABILITY_LOGS/NAME if set
keep_log()
{
	[ -n "${RELIABILITY_LOGS:-}" ] && mkdir -p "$RELIABILITY_LOGS" &&
		cp "$1" "$RELIABILITY_LOGS/$2"
	return 0
}

# rss_kib PID: the resident set of a process in KiB
rss_kib()
{
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null
}
