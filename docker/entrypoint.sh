#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Container entry point: vizfs, plus shard/merge/serve shortcuts for engines.
#
#   vizfs-entrypoint shard CONFIG N ROOT [PREFETCH-OPTIONS...]
#       vizfs prefetch CONFIG --shard I/N --cache ROOT/shard-I ...
#       I is the first of VIZFS_SHARD_INDEX, JOB_COMPLETION_INDEX (Kubernetes
#       Indexed Job) and SLURM_ARRAY_TASK_ID that is set.
#   vizfs-entrypoint merge-shards CONFIG N ROOT OUT [MERGE-OPTIONS...]
#       vizfs merge CONFIG --cache OUT ROOT/shard-0 ... ROOT/shard-(N-1)
#   vizfs-entrypoint serve CONFIG MOUNTPOINT [MOUNT-OPTIONS...]
#       vizfs mount CONFIG MOUNTPOINT -f -o allow_other ... (a stale mount
#       left by a killed container is lazily unmounted first), so that
#       a web server in another container can read the mount
#   vizfs-entrypoint ANYTHING-ELSE...
#       vizfs ANYTHING-ELSE... (e.g. "info CONFIG", "export CONFIG DIR")
#
# The vizfs process replaces this shell (exec), so it receives the
# container's SIGTERM and unmounts cleanly.
set -eu

die()
{
	echo "vizfs-entrypoint: $*" >&2
	exit 1
}

# is_count VALUE: a decimal integer >= 0 without leading zeros
is_count()
{
	case $1 in
	'' | *[!0-9]* | 0?*) return 1 ;;
	esac
	return 0
}

shard_index()
{
	for v in "${VIZFS_SHARD_INDEX:-}" "${JOB_COMPLETION_INDEX:-}" \
		"${SLURM_ARRAY_TASK_ID:-}"; do
		if [ -n "$v" ]; then
			echo "$v"
			return 0
		fi
	done
	return 1
}

case ${1:-} in
shard)
	[ $# -ge 4 ] || die "usage: shard CONFIG N ROOT [PREFETCH-OPTIONS...]"
	conf=$2 n=$3 root=$4
	shift 4
	i=$(shard_index) || die "shard: no shard index: set VIZFS_SHARD_INDEX," \
		"JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID"
	is_count "$n" && [ "$n" -ge 1 ] || die "shard: N must be >= 1, got '$n'"
	is_count "$i" && [ "$i" -lt "$n" ] ||
		die "shard: index '$i' is not in 0..$((n - 1))"
	mkdir -p "$root"
	echo "vizfs-entrypoint: shard $i/$n into $root/shard-$i" >&2
	exec vizfs prefetch "$conf" --shard "$i/$n" --cache "$root/shard-$i" "$@"
	;;
merge-shards)
	[ $# -ge 5 ] || die "usage: merge-shards CONFIG N ROOT OUT [OPTIONS...]"
	conf=$2 n=$3 root=$4 out=$5
	shift 5
	is_count "$n" && [ "$n" -ge 1 ] || die "merge-shards: N must be >= 1, got '$n'"
	set -- "$@" --cache "$out"
	i=0
	while [ "$i" -lt "$n" ]; do
		set -- "$@" "$root/shard-$i"
		i=$((i + 1))
	done
	echo "vizfs-entrypoint: merging $n shards of $root into $out" >&2
	exec vizfs merge "$conf" "$@"
	;;
serve)
	[ $# -ge 3 ] || die "usage: serve CONFIG MOUNTPOINT [MOUNT-OPTIONS...]"
	conf=$2 mnt=$3
	shift 3
	[ -e /dev/fuse ] || die "serve: /dev/fuse missing (run with --device" \
		"/dev/fuse --cap-add SYS_ADMIN)"
	mkdir -p "$mnt"
	fusermount3 -u -z "$mnt" 2>/dev/null || true
	exec vizfs mount "$conf" "$mnt" -f -o allow_other "$@"
	;;
*)
	exec vizfs "$@"
	;;
esac
