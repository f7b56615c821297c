#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Sharded builds: N shard caches + merge equal a single-process build; a
# killed shard rerun alone gives the same; wrong or missing shards fail
# with a message naming them.
. "$(dirname "$0")/lib.sh"

"$VIZFS" sample "$T/in/a.gpkg" --count 20000 --seed 31 --quiet || fail sample
"$VIZFS" sample "$T/in/b.gpkg" --count 3000 --seed 32 --bbox=-150.2,70.3,-150.1,70.35 --quiet || fail sample b
write_config "$T/c.json" "$T/in" "$T/cache-single" 15
expect_rc 0 "$VIZFS" export "$T/c.json" "$T/out-single" --quiet

# 4 shards; shard 2 is killed mid-way and rerun alone.
for i in 0 1 3; do
	expect_rc 0 "$VIZFS" prefetch "$T/c.json" --shard $i/4 --cache "$T/s$i" --quiet
done
# kill shard 2 once it has staged but not finished rendering (polled, so
# the test does not depend on the machine's speed); if the kill came too
# late (the merge accepts the shard), try again
caught=no
for try in 1 2 3 4 5 6; do
	rm -rf "$T/s2" "$T/merged"
	"$VIZFS" prefetch "$T/c.json" --shard 2/4 --cache "$T/s2" --quiet --workers 1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if "$VIZFS" info "$T/c.json" --cache "$T/s2" --json 2>/dev/null |
			grep -q '"staged": true'; then
			kill -9 "$pid" 2>/dev/null
			break
		fi
	done
	wait "$pid" 2>/dev/null
	# merging now fails and names the incomplete shard
	if ! "$VIZFS" merge "$T/c.json" --cache "$T/merged" "$T/s0" "$T/s1" "$T/s2" "$T/s3" --quiet 2>"$T/err"; then
		caught=yes
		break
	fi
done
[ $caught = yes ] && ok || fail "could not kill shard 2 before it finished"
expect_err "s2"
rm -rf "$T/merged"
expect_rc 0 "$VIZFS" prefetch "$T/c.json" --shard 2/4 --cache "$T/s2" --quiet
# a missing shard
expect_rc 2 "$VIZFS" merge "$T/c.json" --cache "$T/merged" "$T/s0" "$T/s1" "$T/s3" --quiet
expect_err "shard"
# shards are disjoint and all got work
for i in 0 1 2 3; do
	"$VIZFS" info "$T/c.json" --cache "$T/s$i" --json >"$T/info$i" 2>/dev/null
done
expect_rc 0 "$VIZFS" merge "$T/c.json" --cache "$T/merged" "$T/s3" "$T/s1" "$T/s0" "$T/s2" --quiet
expect_rc 0 "$VIZFS" export "$T/c.json" "$T/out-merged" --cache "$T/merged" --quiet
diff -r -q -x '*.gpkg' -x staging_summary.csv "$T/out-single" "$T/out-merged" >"$T/d" 2>&1 && ok || { fail "merged build differs from the single-process build"; head "$T/d" >&2; }
n=$(find "$T/out-merged" -name '*.png' | wc -l)
[ "$n" -gt 50 ] && ok || fail "only $n PNGs in the merged tree"
# a second merge into the same cache changes nothing
expect_rc 0 "$VIZFS" prefetch "$T/c.json" --cache "$T/merged"
grep -q "rendered 0 tiles" "$T/err" && ok || fail "merged cache not complete: $(cat "$T/err")"

# Shards of a different config cannot be merged.
sed 's/"tile_size": \[128, 128\]/"tile_size": [64, 64]/' "$T/c.json" >"$T/c64.json"
expect_rc 0 "$VIZFS" prefetch "$T/c64.json" --shard 0/2 --cache "$T/x0" --quiet
expect_rc 0 "$VIZFS" prefetch "$T/c.json" --shard 1/2 --cache "$T/x1" --quiet
expect_rc 2 "$VIZFS" merge "$T/c.json" --cache "$T/merged2" "$T/x0" "$T/x1" --quiet
expect_err "different config"
expect_rc 1 "$VIZFS" prefetch "$T/c.json" --shard 4/4 --cache "$T/bad"
expect_rc 1 "$VIZFS" prefetch "$T/c.json" --shard 1/2
expect_err "needs --cache"
finish
