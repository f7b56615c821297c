#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Determinism: tile bytes are identical with 1 and 2 workers, across runs,
# and whether a tile came from prefetch, export or render.
. "$(dirname "$0")/lib.sh"

"$VIZFS" sample "$T/in/a.gpkg" --count 4000 --seed 11 --quiet || fail "sample a"
"$VIZFS" sample "$T/in/sub/b.gpkg" --count 1500 --seed 12 --bbox=-150.45,70.25,-150.35,70.3 --quiet || fail "sample b"

for run in w1 w2 w2again; do
	write_config "$T/$run.json" "$T/in" "$T/cache-$run" 14
	case $run in w1) w=1 ;; *) w=2 ;; esac
	expect_rc 0 "$VIZFS" prefetch "$T/$run.json" --workers $w --quiet
	expect_rc 0 "$VIZFS" export "$T/$run.json" "$T/out-$run" --workers $w --quiet
done

n=$(find "$T/out-w1" -name '*.tif' | wc -l)
[ "$n" -gt 10 ] && ok || fail "only $n GeoTIFFs exported"
n=$(find "$T/out-w1" -name '*.png' | wc -l)
[ "$n" -gt 30 ] && ok || fail "only $n PNGs exported"

# GeoTIFF, PNG and the rasters summary must be byte-identical; staged
# GeoPackages carry timestamps (gpkg_contents.last_change), so they are
# compared by content with ogr2ogr-free SQL dumps below.
for other in w2 w2again; do
	(cd "$T/out-w1" && find . -name '*.tif' -o -name '*.png' -o -name rasters_summary.csv) | sort >"$T/list"
	diffs=0
	while read -r f; do
		cmp -s "$T/out-w1/$f" "$T/out-$other/$f" || { diffs=$((diffs + 1)); echo "differs: $f" >&2; }
	done <"$T/list"
	[ "$diffs" -eq 0 ] && ok || fail "$diffs files differ between w1 and $other"
	(cd "$T/out-$other" && find . -name '*.tif' -o -name '*.png' -o -name rasters_summary.csv) | sort | cmp -s - "$T/list" && ok || fail "file lists differ between w1 and $other"
done

# Staged GeoPackages: same features in the same order.
g=$(cd "$T/out-w1" && find staged -name '*.gpkg' | sort | head -3)
for f in $g; do
	ogrinfo -ro -al -q "$T/out-w1/$f" >"$T/g1" 2>/dev/null
	ogrinfo -ro -al -q "$T/out-w2/$f" >"$T/g2" 2>/dev/null
	[ -s "$T/g1" ] && cmp -s "$T/g1" "$T/g2" && ok || fail "staged $f differs"
done

# render gives the same bytes as export, for every kind at some zoom.
for f in $(cd "$T/out-w1" && find geotiff web_tiles -path '*/3/*' -type f | sort); do
	"$VIZFS" render "$T/w1.json" "$f" >"$T/r" 2>"$T/err" || fail "render $f"
	cmp -s "$T/r" "$T/out-w1/$f" && ok || fail "render $f differs from export"
done
# and a cold render (fresh cache each time) equals the batch output too, at
# the max zoom and below it, for a GeoTIFF, a PNG whose colour range is in
# the config (coverage) and one that needs the zoom's range (polygon_count)
i=0
for f in $(cd "$T/out-w1" && { find geotiff web_tiles/coverage -path '*/14/*' -type f | sort | head -2; find geotiff web_tiles/coverage web_tiles/polygon_count -path '*/9/*' -type f | sort; }); do
	i=$((i + 1))
	write_config "$T/cold$i.json" "$T/in" "$T/cache-cold$i" 14
	"$VIZFS" render "$T/cold$i.json" "$f" >"$T/r" 2>"$T/err" || fail "cold render $f: $(cat "$T/err")"
	cmp -s "$T/r" "$T/out-w1/$f" && ok || fail "cold render $f differs"
done
[ "$i" -ge 5 ] && ok || fail "only $i cold renders tried"
finish
