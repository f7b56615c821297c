#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Command-line behaviour: help, version, exit codes, clear errors.
. "$(dirname "$0")/lib.sh"

for cmd in prefetch export render info sample; do
	expect_rc 0 "$VIZFS" "$cmd" --help
	grep -q "usage: vizfs $cmd" "$T/out" && ok || fail "$cmd --help text"
	expect_rc 0 "$VIZFS" "$cmd" --version
	grep -q "^vizfs " "$T/out" && ok || fail "$cmd --version text"
	expect_rc 1 "$VIZFS" "$cmd" --no-such-option
	expect_err "unknown option"
done
expect_rc 0 "$VIZFS" --help
expect_rc 0 "$VIZFS" --version
expect_rc 1 "$VIZFS"
expect_rc 1 "$VIZFS" frobnicate
expect_err "unknown command"

# Missing arguments and bad option values are usage errors.
expect_rc 1 "$VIZFS" prefetch
expect_err "missing CONFIG"
expect_rc 1 "$VIZFS" export cfg.json
expect_rc 1 "$VIZFS" prefetch cfg.json --workers 0
expect_err "workers"
expect_rc 1 "$VIZFS" prefetch cfg.json --workers abc
expect_rc 1 "$VIZFS" prefetch cfg.json --zoom 99
expect_err "zoom"
expect_rc 1 "$VIZFS" prefetch cfg.json --zoom 5-3
expect_rc 1 "$VIZFS" info cfg.json --zoom 1-2
expect_err "does not apply"
expect_rc 1 "$VIZFS" sample "$T/x.gpkg" --count 0
expect_rc 1 "$VIZFS" sample "$T/x.gpkg" --bbox 1,2,3
expect_err "bbox"

# Runtime failures name the file or key.
expect_rc 2 "$VIZFS" prefetch "$T/nope.json"
expect_err "nope.json"
printf '{"z_range": [0, 3], "tms_id": "Nowhere"' >"$T/broken.json"
expect_rc 2 "$VIZFS" prefetch "$T/broken.json"
expect_err "broken.json"
printf '{"z_range": [5, 3]}' >"$T/rev.json"
expect_rc 2 "$VIZFS" prefetch "$T/rev.json"
expect_err "z_range"
printf '{"tms_id": "Nowhere"}' >"$T/tms.json"
expect_rc 2 "$VIZFS" info "$T/tms.json"
expect_err "tms_id"
printf '{"dir_input": "%s/empty", "dir_staged": "%s/empty2"}' "$T" "$T" \
	>"$T/noin.json"
mkdir -p "$T/empty"
expect_rc 2 "$VIZFS" prefetch "$T/noin.json"
expect_err "empty"

# A small real build: sample, prefetch, render, info.
expect_rc 0 "$VIZFS" sample "$T/in/a.gpkg" --count 500 --seed 7 --quiet
[ -s "$T/in/a.gpkg" ] && ok || fail "sample wrote nothing"
expect_rc 2 "$VIZFS" sample "$T/in/a.gpkg" --count 5 --quiet
expect_err "a.gpkg"
write_config "$T/c.json" "$T/in" "$T/cache" 12
expect_rc 0 "$VIZFS" prefetch "$T/c.json" --quiet
expect_rc 0 "$VIZFS" info "$T/c.json" --json
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["fresh"] and d["staged"] and d["tiles"] > 0 and d["tiles"] == d["rendered"], d' "$T/out" && ok || fail "info --json content"
expect_rc 0 "$VIZFS" info "$T/c.json"
grep -q "^ *12 " "$T/out" && ok || fail "info table lacks z12"
expect_rc 0 "$VIZFS" prefetch "$T/c.json" --json
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["command"] == "prefetch" and d["tiles"] > 0 and d["rendered"] == 0, d' "$T/out" && ok || fail "prefetch --json summary"
[ ! -s "$T/err" ] && ok || fail "prefetch --json wrote to stderr: $(head -3 "$T/err")"
# bash completion
bash -c ". '$SRC/docs/completion/vizfs.bash'; COMP_WORDS=(vizfs pre); COMP_CWORD=1; _vizfs; echo \"\${COMPREPLY[*]}\"; COMP_WORDS=(vizfs mount c.json --no); COMP_CWORD=3; _vizfs; echo \"\${COMPREPLY[*]}\"" >"$T/compl" 2>&1
grep -qx prefetch "$T/compl" && grep -qx -- --no-prefetch "$T/compl" && ok || fail "bash completion: $(cat "$T/compl")"
expect_rc 0 "$VIZFS" info "$T/c.json" --prometheus
# every sample line is "name{labels} value" and each metric has HELP/TYPE
/usr/bin/python3 - "$T/out" <<'PY' && ok || fail "info --prometheus format"
import re, sys
lines = open(sys.argv[1]).read().splitlines()
typed = {l.split()[2] for l in lines if l.startswith("# TYPE")}
samples = [l for l in lines if not l.startswith("#")]
assert samples, "no samples"
for l in samples:
    m = re.match(r'^([a-z_]+)(\{[a-z]+="[^"]*"\})? (-?[0-9.e+]+)$', l)
    assert m, l
    assert m.group(1) in typed, m.group(1)
tiles = sum(float(l.split()[-1]) for l in samples if l.startswith("vizfs_tiles{"))
done = sum(float(l.split()[-1]) for l in samples if l.startswith("vizfs_tiles_done{"))
assert tiles > 0 and tiles == done, (tiles, done)
PY
expect_rc 0 "$VIZFS" render "$T/c.json" web_tiles/coverage/WGS1984Quad/0/0/0.png -o "$T/z0.png"
head -c 8 "$T/z0.png" | od -An -c | grep -q 'P   N   G' && ok || fail "z0 PNG signature"
"$VIZFS" render "$T/c.json" geotiff/WGS1984Quad/0/0/0.tif >"$T/z0.tif" 2>"$T/err" && ok || fail "render tif"
gdalinfo "$T/z0.tif" 2>/dev/null | grep -q "Description = polygon_count" && ok || fail "GeoTIFF band names"
expect_rc 2 "$VIZFS" render "$T/c.json" geotiff/WGS1984Quad/0/1/0.tif
expect_err "no such tile"
expect_rc 1 "$VIZFS" render "$T/c.json" geotiff/WGS1984Quad/0/01/0.tif
expect_err "not a tile path"
expect_rc 1 "$VIZFS" render "$T/c.json" ../../etc/passwd
expect_rc 0 "$VIZFS" render "$T/c.json" rasters_summary.csv
head -1 "$T/out" | grep -q '^stat,bounds,min,max,mean,median,std,var,sum,path,tile,z$' && ok || fail "rasters_summary header"
expect_rc 0 "$VIZFS" render "$T/c.json" staging_summary.csv
head -1 "$T/out" | grep -q '^filename,num_polygons,area_polygons,datetime,tile_x,tile_y,tile_z,tile_top,tile_right,tile_bottom,tile_left,tms_identifier$' && ok || fail "staging_summary header"
grep -q '^a.gpkg,' "$T/out" && ok || fail "staging_summary filename is relative to dir_input"

# Seed configs load (their directories do not exist here: a clear error
# about the inputs, not about the config).
SEED="$SRC/../shared/seed"
if [ -d "$SEED" ]; then
	for f in viz_config.json workflow_config.json; do
		sed "s|\"dir_input\": \"[^\"]*\"|\"dir_input\": \"$T/in\"|" \
			"$SEED/$f" >"$T/seed-$f"
		expect_rc 0 "$VIZFS" info "$T/seed-$f"
	done
else
	echo "note: $SEED absent, seed configs not checked"
fi
finish
