#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Deduplication end to end: the same polygons in two input files give the
# single-file pyramid once duplicates are removed, and staged GeoPackages
# carry staging_duplicated as the PDG writes it.
. "$(dirname "$0")/lib.sh"

"$VIZFS" sample "$T/in/a.gpkg" --count 3000 --seed 7 --quiet || fail sample a
"$VIZFS" sample "$T/in/b.gpkg" --count 3000 --seed 7 --quiet || fail sample b
mkdir -p "$T/one"
cp "$T/in/a.gpkg" "$T/one/a.gpkg"
NB='"deduplicate_method": "neighbor", "deduplicate_keep_rules": [["staging_filename", "larger"]], "deduplicate_clip_to_footprint": false,'

write_config "$T/one.json" "$T/one" "$T/c-one" 15
write_config "$T/dup.json" "$T/in" "$T/c-dup" 15
write_config "$T/raster.json" "$T/in" "$T/c-raster" 15 \
	"$NB \"deduplicate_at\": [\"raster\"],"
write_config "$T/staging.json" "$T/in" "$T/c-staging" 15 \
	"$NB \"deduplicate_at\": [\"staging\"],"
write_config "$T/label.json" "$T/in" "$T/c-label" 15 "$NB"
for c in one dup raster staging label; do
	expect_rc 0 "$VIZFS" export "$T/$c.json" "$T/out-$c" --quiet
done

# Removing duplicates ('raster' or 'staging') gives the single-file
# pyramid: every band (polygon_count included) of every GeoTIFF, and the
# max-zoom PNGs.
for c in raster staging; do
	diff -r -q "$T/out-one/geotiff" "$T/out-$c/geotiff" >"$T/d" 2>&1 && ok ||
		{ fail "$c: GeoTIFFs differ from the single-file build"; head -3 "$T/d" >&2; }
	diff -r -q "$T/out-one/web_tiles/polygon_count/WGS1984Quad/15" \
		"$T/out-$c/web_tiles/polygon_count/WGS1984Quad/15" >/dev/null 2>&1 && ok ||
		fail "$c: z15 polygon_count PNGs differ from the single-file build"
done
# one worker gives the same bytes as several
sed "s#$T/c-raster#$T/c-raster1#" "$T/raster.json" >"$T/raster1.json"
expect_rc 0 "$VIZFS" export "$T/raster1.json" "$T/out-raster1" --workers 1 --quiet
diff -r -q "$T/out-raster/geotiff" "$T/out-raster1/geotiff" >/dev/null 2>&1 && ok ||
	fail "1 worker and several give different GeoTIFFs"
# ... while without removal the duplicates count twice
t=$(cd "$T/out-one/geotiff" && find . -name '*.tif' | sort | head -1)
cmp -s "$T/out-one/geotiff/$t" "$T/out-dup/geotiff/$t" && fail "duplicated build equals the single one" || ok
diff -r -q "$T/out-dup/geotiff" "$T/out-label/geotiff" >/dev/null 2>&1 && ok ||
	fail "labelling only (no deduplicate_at) changed the rasters"

# A missing footprint is named when the clip is on (its default).
write_config "$T/clip.json" "$T/in" "$T/c-clip" 15 \
	'"deduplicate_method": "neighbor", "deduplicate_keep_rules": [["staging_filename", "larger"]], "deduplicate_at": ["raster"],'
expect_rc 0 "$VIZFS" prefetch "$T/clip.json" --zoom 15 --quiet
expect_err "footprints/a.gpkg"
expect_err "missing"

# Configuration errors name the key; a keep-rule column the inputs lack is
# named as such.
write_config "$T/nokeep.json" "$T/in" "$T/c-nokeep" 15 '"deduplicate_method": "neighbor",'
expect_rc 2 "$VIZFS" prefetch "$T/nokeep.json" --quiet
expect_err "deduplicate_keep_rules"
write_config "$T/nocol.json" "$T/in" "$T/c-nocol" 15 \
	'"deduplicate_method": "neighbor", "deduplicate_keep_rules": [["Nope", "larger"]], "deduplicate_clip_to_footprint": false,'
expect_rc 2 "$VIZFS" prefetch "$T/nocol.json" --quiet
expect_err "attribute 'Nope' used by deduplicate_keep_rules"

# Footprints: both files' footprint is their own polygons (rows tie on the
# keep rule), so a (first in staging_filename order) is preferred and b
# loses every polygon.
mkdir -p "$T/fp"
cp "$T/in/a.gpkg" "$T/fp/a.gpkg"
cp "$T/in/b.gpkg" "$T/fp/b.gpkg"
write_config "$T/fp.json" "$T/in" "$T/c-fp" 15 \
	"\"deduplicate_method\": \"footprints\", \"dir_footprints\": \"$T/fp\", \"deduplicate_keep_rules\": [[\"Class\", \"larger\"]], \"deduplicate_at\": [\"raster\"],"
expect_rc 0 "$VIZFS" export "$T/fp.json" "$T/out-fp" --quiet
grep -q "footprint" "$T/err" && fail "footprint warnings: $(head -2 "$T/err")" || ok
diff -r -q "$T/out-one/geotiff" "$T/out-fp/geotiff" >/dev/null 2>&1 && ok ||
	fail "footprints: GeoTIFFs differ from the single-file build"

# staging_duplicated in the staged GeoPackages (counted with sqlite3).
if ! command -v sqlite3 >/dev/null 2>&1; then
	echo "note: sqlite3 not found, staged GeoPackage checks skipped"
	finish
	exit $?
fi
# count FILE WHERE: rows of a staged tile's layer (named after its y)
count() {
	sqlite3 "$1" "select count(*) from \"$(basename "$1" .gpkg)\" where $2" 2>/dev/null || echo err
}
n=0
for f in $(cd "$T/out-one/staged" && find . -name '*.gpkg' | sort); do
	n=$((n + 1))
	one=$(count "$T/out-one/staged/$f" 1)
	[ "$(count "$T/out-one/staged/$f" "staging_duplicated is not null")" = err ] && ok ||
		fail "$f: staging_duplicated without a dedup method"
	# 'raster': every row kept, a.gpkg's copies flagged
	for c in raster label; do
		g="$T/out-$c/staged/$f"
		all=$(count "$g" 1)
		dups=$(count "$g" "staging_duplicated = 1")
		adup=$(count "$g" "staging_duplicated = 1 and staging_filename = 'a.gpkg'")
		if [ "$all" = $((2 * one)) ] && [ "$dups" = "$one" ] && [ "$adup" = "$one" ]; then
			ok
		else
			fail "$c $f: $all rows, $dups flagged ($adup from a.gpkg); single build $one"
		fi
	done
	# 'staging': flagged rows are not written
	g="$T/out-staging/staged/$f"
	if [ "$(count "$g" 1)" = "$one" ] && [ "$(count "$g" "staging_duplicated = 0 and staging_filename = 'b.gpkg'")" = "$one" ]; then
		ok
	else
		fail "staging $f: $(count "$g" 1) rows, single build $one"
	fi
	g="$T/out-fp/staged/$f"
	[ "$(count "$g" "staging_duplicated = 1 and staging_filename = 'b.gpkg'")" = "$one" ] && ok ||
		fail "footprints $f: b.gpkg rows not all flagged"
done
[ "$n" -gt 20 ] && ok || fail "only $n staged tiles"
finish
