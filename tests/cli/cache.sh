#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Cache behaviour: no work on a second run, no stale tiles after a change,
# resume after kill -9, two processes refused, per-zoom colour ranges.
. "$(dirname "$0")/lib.sh"

"$VIZFS" sample "$T/in/a.gpkg" --count 3000 --seed 5 --quiet || fail sample
write_config "$T/c.json" "$T/in" "$T/cache" 13
expect_rc 0 "$VIZFS" prefetch "$T/c.json" --workers 2
grep -q "rendered [1-9][0-9]* tiles" "$T/err" && ok || fail "first run rendered nothing"
expect_rc 0 "$VIZFS" prefetch "$T/c.json" --workers 2
grep -q "staged 0 chunks, rendered 0 tiles and 0 PNGs" "$T/err" && ok || fail "second run did work: $(cat "$T/err")"
expect_rc 0 "$VIZFS" export "$T/c.json" "$T/out1" --quiet

# A changed input: new polygons elsewhere -> new tiles, no stale ones.
"$VIZFS" sample "$T/in/b.gpkg" --count 500 --seed 6 --bbox=-149.0,70.0,-148.9,70.1 --quiet || fail sample b
expect_rc 0 "$VIZFS" prefetch "$T/c.json"
grep -q "rendered [1-9]" "$T/err" && ok || fail "changed input not rebuilt"
expect_rc 0 "$VIZFS" export "$T/c.json" "$T/out2" --quiet
n1=$(find "$T/out1/geotiff" -name '*.tif' | wc -l)
n2=$(find "$T/out2/geotiff" -name '*.tif' | wc -l)
[ "$n2" -gt "$n1" ] && ok || fail "new input added no tiles ($n1 -> $n2)"
# and the result equals a clean build of the same inputs
write_config "$T/clean.json" "$T/in" "$T/cache-clean" 13
expect_rc 0 "$VIZFS" export "$T/clean.json" "$T/out-clean" --quiet
diff -r -q -x '*.gpkg' -x staging_summary.csv "$T/out2" "$T/out-clean" >"$T/d" 2>&1 && ok || { fail "rebuilt cache differs from a clean build"; head "$T/d" >&2; }

# Removing the input again: its tiles disappear.
rm "$T/in/b.gpkg"
expect_rc 0 "$VIZFS" export "$T/c.json" "$T/out3" --quiet
diff -r -q -x '*.gpkg' -x staging_summary.csv "$T/out1" "$T/out3" >"$T/d" 2>&1 && ok || { fail "after removing an input the tree differs from the original"; head "$T/d" >&2; }

# A config change (palette) never serves old PNGs.
sed 's/"#f8ff1f1A", "#f8ff1f"/"#000000", "#ff0000"/' "$T/c.json" >"$T/c2.json"
expect_rc 0 "$VIZFS" render "$T/c2.json" web_tiles/coverage/WGS1984Quad/0/0/0.png -o "$T/new.png"
cmp -s "$T/new.png" "$T/out1/web_tiles/coverage/WGS1984Quad/0/0/0.png" && fail "palette change served the old PNG" || ok

# An input that fails to stage, then is repaired without changing its size
# or mtime (same fingerprint): the tiles made without it must not survive.
mkdir -p "$T/fix"
"$VIZFS" sample "$T/fix/a.gpkg" --count 800 --seed 21 --quiet || fail "sample fix a"
"$VIZFS" sample "$T/fix/b.gpkg" --count 800 --seed 22 --bbox=-150.45,70.25,-150.35,70.3 --quiet || fail "sample fix b"
write_config "$T/fix.json" "$T/fix" "$T/cache-fix" 12
write_config "$T/fixref.json" "$T/fix" "$T/cache-fixref" 12
expect_rc 0 "$VIZFS" export "$T/fixref.json" "$T/out-fixref" --quiet
mt=$(stat -c %Y "$T/fix/a.gpkg")
dd if="$T/fix/a.gpkg" of="$T/head.bin" bs=100 count=1 2>/dev/null
dd if=/dev/zero of="$T/fix/a.gpkg" bs=100 count=1 conv=notrunc 2>/dev/null
touch -d "@$mt" "$T/fix/a.gpkg"
expect_rc 2 "$VIZFS" prefetch "$T/fix.json" --quiet
expect_err "a.gpkg"
# while it stays broken, later runs say so and keep the tiles of the rest
expect_rc 2 "$VIZFS" prefetch "$T/fix.json" --quiet
expect_err "earlier run"
grep -q "dropping" "$T/err" && fail "a still-broken input made the cache rebuild" || ok
dd if="$T/head.bin" of="$T/fix/a.gpkg" bs=100 count=1 conv=notrunc 2>/dev/null
touch -d "@$mt" "$T/fix/a.gpkg"
expect_rc 0 "$VIZFS" export "$T/fix.json" "$T/out-fix" --quiet
diff -r -q -x '*.gpkg' -x staging_summary.csv "$T/out-fix" "$T/out-fixref" >"$T/d" 2>&1 && ok || { fail "tiles built without a failed input survived its repair"; head "$T/d" >&2; }

# kill -9 in the middle of a prefetch, then resume: same bytes as clean.
"$VIZFS" sample "$T/big/a.gpkg" --count 60000 --seed 9 --quiet || fail sample big
write_config "$T/k.json" "$T/big" "$T/cache-k" 15
write_config "$T/kref.json" "$T/big" "$T/cache-kref" 15
for delay in 1 2 3; do
	"$VIZFS" prefetch "$T/k.json" --workers 2 --quiet &
	pid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
done
expect_rc 0 "$VIZFS" export "$T/k.json" "$T/out-k" --quiet
expect_rc 0 "$VIZFS" export "$T/kref.json" "$T/out-kref" --quiet
diff -r -q -x '*.gpkg' -x staging_summary.csv "$T/out-k" "$T/out-kref" >"$T/d" 2>&1 && ok || { fail "resumed build differs from a clean build"; head "$T/d" >&2; }

# Two writers on one cache: the second is refused clearly.
write_config "$T/l.json" "$T/big" "$T/cache-l" 15
"$VIZFS" prefetch "$T/l.json" --quiet --workers 1 &
pid=$!
sleep 0.5
expect_rc 2 "$VIZFS" prefetch "$T/l.json" --quiet
expect_err "in use by another vizfs process"
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null

# Per-zoom ranges (default): in every zoom, the darkest polygon_count colour
# appears only where the zoom's maximum is; per-tile mode maps each tile's
# own maximum to it.  Check with the z13 tiles of the first build.
/usr/bin/python3 - "$T/out1" <<'PY' && ok || fail "per-zoom colour ranges"
import sys, glob
import numpy as np
from osgeo import gdal
root = sys.argv[1]
def band(path, b):
    ds = gdal.Open(path)
    return ds.GetRasterBand(b).ReadAsArray()
def image(path):
    ds = gdal.Open(path)
    return ds.ReadAsArray()
# Find a zoom whose tiles have different polygon_count maxima.
for z in range(13, -1, -1):
    tifs = sorted(glob.glob(root + "/geotiff/WGS1984Quad/%d/*/*.tif" % z))
    vals = {t: band(t, 2) for t in tifs}
    if len(set(float(v.max()) for v in vals.values())) > 1:
        break
else:
    sys.exit("no zoom with differing tile maxima")
zmax = max(v.max() for v in vals.values())
def colour_at_max(t, v):
    png = t.replace("/geotiff/", "/web_tiles/polygon_count/")[:-4] + ".png"
    a = image(png)
    i = np.argwhere(v == v.max())[0]
    return tuple(int(c) for c in a[:, i[0], i[1]])
top = {colour_at_max(t, v) for t, v in vals.items() if v.max() == zmax}
assert len(top) == 1, top
lower = [colour_at_max(t, v) for t, v in vals.items() if v.max() < zmax]
assert lower and all(c not in top for c in lower), (lower, top)
print("per-zoom ok at z%d: zoom max %g, %d tiles below it" % (z, zmax, len(lower)))
PY
finish
