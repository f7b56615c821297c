#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Inputs changed while mounted: the daemon notices (--watch), rebuilds, and
# never serves the old bytes afterwards: added, changed and removed inputs.
. "$(dirname "$0")/../cli/lib.sh"

[ -w /dev/fuse ] || { echo "skip: /dev/fuse not usable"; exit 77; }
M=$T/mnt
mkdir -p "$M"
cleanup() { fusermount3 -u -z "$M" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

"$VIZFS" sample "$T/in/a.gpkg" --count 2000 --seed 3 --quiet || fail sample
write_config "$T/c.json" "$T/in" "$T/cache" 12
"$VIZFS" mount "$T/c.json" "$M" --watch 1 --no-prefetch -o fsname=vizfs-watch-test 2>"$T/mount.err" ||
	{ cat "$T/mount.err"; echo "skip: mount refused"; exit 77; }
Z0=web_tiles/polygon_count/WGS1984Quad/0/0/0.png

# fresh_render NAME: the bytes a clean cache gives for Z0 now
fresh() {
	rm -rf "$T/cache-ref"
	write_config "$T/ref.json" "$T/in" "$T/cache-ref" 12
	"$VIZFS" render "$T/ref.json" "$1" >"$T/ref.bin" 2>/dev/null
}
# wait_equal PATH: poll (<= 30 s) until the mount's bytes equal ref.bin
wait_equal() {
	i=0
	while [ $i -lt 60 ]; do
		cat "$M/$1" >"$T/got.bin" 2>/dev/null && cmp -s "$T/got.bin" "$T/ref.bin" && return 0
		sleep 0.5
		i=$((i + 1))
	done
	return 1
}

cat "$M/$Z0" >"$T/before.bin" && ok || fail "read z0"
mt0=$(stat -c %Y "$M/$Z0")
fresh $Z0
cmp -s "$T/before.bin" "$T/ref.bin" && ok || fail "z0 differs from a clean render at start"
n1=$(ls "$M/geotiff/WGS1984Quad/12" | wc -l)

# an added input
"$VIZFS" sample "$T/in/b.gpkg" --count 1000 --seed 4 --bbox=-149.5,70.0,-149.4,70.1 --quiet
fresh $Z0
wait_equal $Z0 && ok || fail "z0 not rebuilt after an input was added"
# a rebuilt tile is a new file for HTTP caches too (Last-Modified)
mt1=$(stat -c %Y "$M/$Z0")
[ "$mt1" -gt "$mt0" ] && ok || fail "mtime unchanged after a rebuild ($mt0 -> $mt1)"
n2=$(ls "$M/geotiff/WGS1984Quad/12" | wc -l)
[ "$n2" -gt "$n1" ] && ok || fail "listing did not grow after an input was added ($n1 -> $n2)"
newdir=$(cd "$M/geotiff/WGS1984Quad/12" && ls | sort -n | tail -1)
newtile=$(cd "$M/geotiff/WGS1984Quad/12/$newdir" && ls | head -1)
[ -n "$newtile" ] && ok || fail "no tile of the new input listed"

# a changed input (same name, other polygons)
rm "$T/in/b.gpkg"
"$VIZFS" sample "$T/in/b.gpkg" --count 1500 --seed 5 --bbox=-149.5,70.0,-149.4,70.1 --quiet
fresh $Z0
wait_equal $Z0 && ok || fail "z0 not rebuilt after an input changed"

# a removed input: its tiles disappear
rm "$T/in/b.gpkg"
fresh $Z0
wait_equal $Z0 && ok || fail "z0 not rebuilt after an input was removed"
i=0
while [ $i -lt 20 ] && [ -e "$M/geotiff/WGS1984Quad/12/$newdir/$newtile" ]; do
	sleep 0.5
	i=$((i + 1))
done
[ ! -e "$M/geotiff/WGS1984Quad/12/$newdir/$newtile" ] && ok || fail "tile of a removed input still there"
# the metrics file: Prometheus text with the counters and a histogram
grep -q '^vizfs_requests_total [1-9]' "$M/.vizfs/metrics" && ok || fail "metrics: requests"
grep -q '^vizfs_miss_latency_seconds_bucket{le="+Inf"} [1-9]' "$M/.vizfs/metrics" && ok || fail "metrics: latency histogram"
ls "$M/.vizfs" | grep -qx metrics && ok || fail "metrics not listed"
fusermount3 -u "$M" && ok || fail "unmount"
finish
