#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The daemon under valgrind memcheck: staging, demand renders (PNG, GeoTIFF,
# CSV; --no-prefetch so that every first read is a render), listings,
# missing and malformed tiles, unmount; exit 0 means no invalid access, no
# uninitialised use, no definite leak.
# Suppressions (third-party only): tests/suppressions/valgrind.supp.
. "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null 2>&1 || {
	echo "skip: valgrind is not installed"
	exit 77
}
SUPP=$SRC/tests/suppressions/valgrind.supp

"$VIZFS" sample "$T/in/a.gpkg" --count 300 --seed 4 --quiet || fail sample
write_config "$T/ref.json" "$T/in" "$T/cache-ref" 10
write_config "$T/c.json" "$T/in" "$T/cache" 10
expect_rc 0 "$VIZFS" export "$T/ref.json" "$T/ref" --quiet

mkdir -p "$T/mnt"
MOUNTS="$MOUNTS $T/mnt"
valgrind --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--num-callers=30 --suppressions="$SUPP" \
	"$VIZFS" mount "$T/c.json" "$T/mnt" -f --workers 2 --no-prefetch \
	2>"$T/vg.log" &
VG=$!
PIDS="$PIDS $VG"
i=0
while [ ! -e "$T/mnt/.vizfs/status" ] && [ $i -lt 1200 ]; do
	kill -0 $VG 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
[ -e "$T/mnt/.vizfs/status" ] && ok || fail "the daemon under valgrind did not mount: $(tail -5 "$T/vg.log")"

# a handful of files of every kind, cold (rendered on demand) and warm
n=0
for p in $(cd "$T/ref" && { find web_tiles -name '*.png' | sort | awk 'NR % 9 == 1' | head -6
	find geotiff -name '*.tif' | sort | head -3; echo rasters_summary.csv; }); do
	for pass in cold warm; do
		if [ "$p" = rasters_summary.csv ]; then
			# the CSV lists what is cached so far: only reference rows
			"$PY" -c 'import sys; g=open(sys.argv[1]).read().splitlines(); w=set(open(sys.argv[2]).read().splitlines()); sys.exit(0 if g and all(l in w for l in g) else 1)' \
				"$T/mnt/$p" "$T/ref/$p" && ok || fail "$p ($pass): rows not in the reference"
		else
			cmp -s "$T/mnt/$p" "$T/ref/$p" && ok || fail "$p ($pass): differs from the reference"
		fi
		n=$((n + 1))
	done
done
ls -R "$T/mnt/web_tiles" >/dev/null && ok || fail "listing"
[ ! -e "$T/mnt/geotiff/WGS1984Quad/0/1/0.tif" ] && ok || fail "a missing tile exists"
[ ! -e "$T/mnt/web_tiles/coverage/WGS1984Quad/00/0/0.png" ] && ok || fail "a malformed path exists"
cat "$T/mnt/.vizfs/status" >/dev/null && ok || fail "status"
r=$(sed -n 's/.*"tiles_rendered": \([0-9]*\).*/\1/p' "$T/mnt/.vizfs/status")
fusermount3 -u "$T/mnt" || fusermount3 -u -z "$T/mnt"
wait $VG
rc=$?
echo "valgrind: $n reads, ${r:-?} tiles rendered on demand, exit $rc"
grep -E "ERROR SUMMARY|definitely lost|Invalid|uninitialised" "$T/vg.log" | sed 's/^/  /'
keep_log "$T/vg.log" valgrind.log
if [ $rc -eq 0 ]; then ok; else
	fail "valgrind exit $rc (99: memcheck errors or definite leaks)"
	grep -A25 -E "Invalid|uninitialised|definitely lost in" "$T/vg.log" | head -60 >&2
fi
finish
