#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# kill -9 at seeded random moments of `vizfs prefetch` and of a mounted daemon
# under read load; after each restart every tile equals the batch reference.
#
# Environment: KILL_PREFETCH_ROUNDS (default 12), KILL_MOUNT_ROUNDS
# (default 8), KILL_POLYGONS (default 30000), RELIABILITY_SEED.
. "$(dirname "$0")/lib.sh"

NP=${KILL_PREFETCH_ROUNDS:-12}
NM=${KILL_MOUNT_ROUNDS:-8}
START=$(date +%s)

"$VIZFS" sample "$T/in/a.gpkg" --count ${KILL_POLYGONS:-30000} --seed 9 --quiet || fail sample
write_config "$T/ref.json" "$T/in" "$T/cache-ref" 15
write_config "$T/k.json" "$T/in" "$T/cache-k" 15

# The batch reference, and how long a clean build takes (the kill window).
t0=$(date +%s%N)
expect_rc 0 "$VIZFS" prefetch "$T/ref.json" --workers 2 --quiet
t1=$(date +%s%N)
BUILD_MS=$(((t1 - t0) / 1000000))
expect_rc 0 "$VIZFS" export "$T/ref.json" "$T/ref" --quiet
NREF=$(tiles_of "$T/ref" | wc -l)
echo "reference: $NREF files, clean build ${BUILD_MS} ms"

# verify NAME: the cache-k build completes and exports the reference bytes
verify()
{
	expect_rc 0 "$VIZFS" prefetch "$T/k.json" --workers 2 --quiet
	expect_rc 0 "$VIZFS" export "$T/k.json" "$T/exp" --quiet
	if same_tree "$T/ref" "$T/exp"; then ok; else
		fail "$1: export after the kill differs from the reference"
	fi
	rm -rf "$T/exp"
}

# 1. prefetch: one or two kills into a fresh cache, then complete it.  The
# kill window follows the machine: a build from an empty cache that finished
# before its kill becomes the new estimate of a build's length, and the round is retried
# (at most NP more times) so that NP rounds have a kill that landed.
landed=0
r=1
tries=0
while [ $r -le "$NP" ] && [ $tries -lt $((NP * 2)) ]; do
	tries=$((tries + 1))
	rm -rf "$T/cache-k"
	rnd 2
	kills=$((1 + R))
	delays=""
	hit=0
	i=0
	while [ $i -lt $kills ]; do
		rnd $((BUILD_MS + 1))
		d=$R
		delays="$delays ${d}ms"
		s0=$(date +%s%N)
		"$VIZFS" prefetch "$T/k.json" --workers 2 --quiet 2>"$T/kerr" &
		pid=$!
		sleep "$(ms_to_s "$d")"
		kill -9 "$pid" 2>/dev/null
		wait "$pid"
		rc=$?
		if [ $rc -eq 137 ]; then
			hit=$((hit + 1))
		elif [ $rc -eq 0 ]; then
			# a build from an empty cache finished before its
			# kill: the new estimate (a resumed one is shorter)
			[ $i -eq 0 ] && BUILD_MS=$((($(date +%s%N) - s0) / 1000000))
		else
			fail "prefetch round $r: exit $rc before the kill"
			sed 's/^/  stderr: /' "$T/kerr" | head -5 >&2
		fi
		i=$((i + 1))
	done
	echo "prefetch round $r: kill -9 after$delays ($hit landed)"
	verify "prefetch round $r"
	landed=$((landed + hit))
	[ $hit -gt 0 ] && r=$((r + 1))
done
NP=$((r - 1))
[ "$NP" -gt 0 ] && ok || fail "no prefetch kill landed"
echo "prefetch: $(($(date +%s) - START))s"
echo "prefetch: $NP rounds, $landed kills landed in a running build"

# 2. a mounted daemon with 4 reader threads (and the prefetcher) killed at
# a random moment; restart, read the whole tree through the mount.
mlanded=0
echo "mount rounds: kill window 0-$((BUILD_MS * 2)) ms"
r=1
while [ $r -le "$NM" ]; do
	# keep what earlier rounds left every other round (resume of a
	# resumed cache), a fresh cache otherwise
	[ $((r % 2)) -eq 1 ] && rm -rf "$T/cache-k"
	if ! start_mount "$T/k.json" "$T/mnt" "$T/mlog" --workers 2; then
		fail "mount round $r: daemon did not start"
		sed 's/^/  log: /' "$T/mlog" | head -5 >&2
		break
	fi
	"$PY" "$READER" --ref "$T/ref" --root "$T/mnt" --threads 4 \
		--count 1000000 --seed "$SEED$r" --load --ready "$T/ready$r" \
		>"$T/rout" 2>&1 &
	rpid=$!
	PIDS="$PIDS $rpid"
	wait_file "$T/ready$r" || fail "mount round $r: the readers did not start"
	rnd $((BUILD_MS * 2 + 1))
	d=$R
	sleep "$(ms_to_s "$d")"
	kill -9 "$MPID"
	wait "$MPID"
	rc=$?
	if [ $rc -eq 137 ]; then
		mlanded=$((mlanded + 1))
	else
		fail "mount round $r: the daemon exited by itself (status $rc) before the kill"
		sed 's/^/  log: /' "$T/mlog" | tail -8 >&2
		keep_log "$T/mlog" "kill-mount-round$r.log"
	fi
	kill "$rpid" 2>/dev/null
	wait "$rpid" || fail "mount round $r: wrong bytes before the kill: $(cat "$T/rout")"
	fusermount3 -u -z "$T/mnt"
	reqs=$(sed -n 's/.*"requests": \([0-9]*\).*/\1/p' "$T/rout")
	echo "mount round $r: kill -9 after ${d}ms with ${reqs:-?} reads done"
	# restart: every file read through the mount equals the reference,
	# the prefetcher finishes, the unmount is clean
	if ! start_mount "$T/k.json" "$T/mnt" "$T/mlog" --workers 2; then
		fail "mount round $r: restart failed"
		sed 's/^/  log: /' "$T/mlog" | head -5 >&2
		break
	fi
	if same_tree "$T/ref" "$T/mnt"; then ok; else
		fail "mount round $r: the restarted mount differs from the reference"
	fi
	wait_prefetch "$T/mnt" 120 && ok || fail "mount round $r: prefetch never finished"
	stop_mount "$T/mnt" "$MPID" && ok || fail "mount round $r: unclean exit"
	r=$((r + 1))
done
echo "mount: $(($(date +%s) - START))s"
echo "mount: $NM rounds, $mlanded kills landed on a live daemon"
# after the last round the mount's cache is complete: a batch export of it
# is the reference too, and a prefetch has nothing left to do
expect_rc 0 "$VIZFS" prefetch "$T/k.json" --workers 2
grep -q "rendered 0 tiles and 0 PNGs" "$T/err" && ok || fail "mount left work undone: $(tail -1 "$T/err")"
verify "after the mount rounds"
echo "kill rounds survived: $((landed + mlanded)) kills ($landed prefetch, $mlanded daemon)"
finish
