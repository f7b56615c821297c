#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Inputs that change between runs and while mounted are re-rendered, never
# served stale: a shapefile's .dbf edited, a .shp replaced by a file of the
# same size, an input renamed, an older .dbf copied back, an edit with the
# mtimes set back; a mount with --watch picks the change up and
# never serves a mix of old and new bytes.  (tests/cli/cache.sh covers an
# added and a removed GeoPackage and a config change; tests/fuse/watch.sh
# covers --watch for GeoPackages.)
. "$(dirname "$0")/lib.sh"
need ogr2ogr
"$PY" -c 'from osgeo import ogr' 2>/dev/null || {
	echo "skip: python3-gdal is missing"
	exit 77
}

"$VIZFS" sample "$T/src.gpkg" --count 3000 --seed 21 --quiet || fail sample
mkdir -p "$T/in"
ogr2ogr -f "ESRI Shapefile" "$T/in/a.shp" "$T/src.gpkg" 2>/dev/null || fail ogr2ogr
# shapefile fields are 10 characters: ChangeRateNet_myr-1 is ChangeRate
shp_config()
{
	write_config "$1" "${3:-$T/in}" "$2" 12
	sed -i 's/"\.gpkg"/".shp"/; s/"ChangeRateNet_myr-1"/"ChangeRate"/' "$1"
}
shp_config "$T/c.json" "$T/cache"
Z0=web_tiles/change_rate/WGS1984Quad/0/0/0.png

# clean [INDIR]: a clean build of the inputs as they are now (or of INDIR)
# exported to $T/clean
clean()
{
	rm -rf "$T/cache-clean" "$T/clean"
	shp_config "$T/clean.json" "$T/cache-clean" "${1:-}"
	"$VIZFS" export "$T/clean.json" "$T/clean" --quiet 2>"$T/clean.err" ||
		fail "clean export: $(cat "$T/clean.err")"
}
# between_runs NAME [differs]: prefetch does work, its export equals a clean
# build; with "differs" the tiles must also differ from the previous export
between_runs()
{
	expect_rc 0 "$VIZFS" prefetch "$T/c.json" --workers 2
	grep -q "rendered [1-9]" "$T/err" && ok || fail "$1: prefetch did not rebuild: $(tail -1 "$T/err")"
	rm -rf "$T/now"
	expect_rc 0 "$VIZFS" export "$T/c.json" "$T/now" --quiet
	clean
	same_tree "$T/now" "$T/clean" && ok || fail "$1: rebuilt tiles differ from a clean build"
	if [ "${2:-}" = differs ]; then
		same_tree "$T/prev" "$T/now" 2>/dev/null && fail "$1: the change altered no tile" || ok
	fi
	rm -rf "$T/prev"
	mv "$T/now" "$T/prev"
}

expect_rc 0 "$VIZFS" prefetch "$T/c.json" --workers 2
expect_rc 0 "$VIZFS" export "$T/c.json" "$T/prev" --quiet

# 1. The .dbf alone changes (new attribute values, same size): change_rate
# tiles must follow.
edit_dbf()
{
	"$PY" - "$T/in/$2.shp" "$1" <<'PY' || fail "edit dbf"
import sys
from osgeo import ogr
ds = ogr.Open(sys.argv[1], 1)
lyr = ds.GetLayer(0)
for f in lyr:
    v = f.GetField("ChangeRate")
    f.SetField("ChangeRate", eval(sys.argv[2], {"v": v or 0.0}))
    lyr.SetFeature(f)
ds = None
PY
}
edit_dbf "-v" a
between_runs ".dbf edited" differs

# 2. The .shp replaced by a file of exactly the same size (every polygon
# moved 40 m east), written elsewhere and copied over.
mkdir -p "$T/moved"
ogr2ogr -f "ESRI Shapefile" "$T/moved/a.shp" "$T/in/a.shp" -dialect SQLite \
	-sql "SELECT ShiftCoords(geometry, 40, 0) AS geometry, * FROM a" 2>/dev/null
if [ "$(stat -c %s "$T/moved/a.shp")" = "$(stat -c %s "$T/in/a.shp")" ]; then
	ok
	cp "$T/moved/a.shp" "$T/in/a.shp"
	between_runs ".shp replaced, same size" differs
else
	fail "the shifted .shp has another size ($(stat -c %s "$T/moved/a.shp") vs $(stat -c %s "$T/in/a.shp"))"
fi

# 3. Renamed input (all four files): same tiles, rebuilt from the new path.
for e in shp shx dbf prj; do mv "$T/in/a.$e" "$T/in/b.$e"; done
between_runs "input renamed"

# 4. An older .dbf of the same size copied back (cp -p, as a restore from
# a backup does) next to a .shp that is newer: the tiles go back to the
# old values.  (Was stale before input.c fingerprinted each file.)
cp -p "$T/in/b.dbf" "$T/dbf.orig"
cp -p "$T/in/b.shp" "$T/shp.orig"
edit_dbf 1.5 b
between_runs ".dbf edited again" differs
touch "$T/in/b.shp"
cp -p "$T/dbf.orig" "$T/in/b.dbf"
between_runs "older .dbf copied back" differs

# 5. A same-size edit with every file's mtime set back (touch -r, or a tool
# that restores mtimes): the change time still moves, and the fingerprint
# uses it, so the edit is seen.
for e in shp shx dbf prj; do cp -p "$T/in/b.$e" "$T/keep.$e"; done
edit_dbf 1.25 b
for e in shp shx dbf prj; do touch -r "$T/keep.$e" "$T/in/b.$e"; done
between_runs "edit with the old mtimes restored" differs
# back to the original files (new mtimes: a real change)
for e in shp shx dbf prj; do cp "$T/keep.$e" "$T/in/b.$e"; done
between_runs "original files back"
cp -r "$T/prev" "$T/old"
cp -p "$T/in/b.dbf" "$T/dbf.orig"

# 6. While mounted with --watch 1: a reader polls a set of files while the
# .dbf changes; every read is the old or the new bytes (never a mix, never
# an error), and within 30 s every file is the new bytes.
start_mount "$T/c.json" "$T/mnt" "$T/mlog" --workers 2 --watch 1 ||
	fail "mount --watch 1 did not start: $(tail -3 "$T/mlog")"
same_tree "$T/old" "$T/mnt" && ok || fail "mount before the change differs"
# the new reference first (an edited copy), then the change in place
rm -rf "$T/next"
cp -rp "$T/in" "$T/next"
"$PY" - "$T/next/b.shp" <<'PY' || fail "edit dbf"
import sys
from osgeo import ogr
ds = ogr.Open(sys.argv[1], 1)
lyr = ds.GetLayer(0)
for f in lyr:
    f.SetField("ChangeRate", (f.GetField("ChangeRate") or 0.0) * 0.5 + 0.25)
    lyr.SetFeature(f)
ds = None
PY
clean "$T/next"
cp "$T/next/b.dbf" "$T/in/b.dbf"
(cd "$T/clean" && find web_tiles/change_rate geotiff -type f | sort | awk 'NR % 3 == 1') >"$T/poll"
"$PY" - "$T/old" "$T/clean" "$T/mnt" "$T/poll" <<'PY' && ok || fail "mounted .dbf change"
import os, sys, time
old, new, mnt, lst = sys.argv[1:5]
paths = open(lst).read().split()
want = {p: (open(os.path.join(old, p), "rb").read(),
            open(os.path.join(new, p), "rb").read()) for p in paths}
t0 = time.time()
bad, stale_reads, reads = [], 0, 0
while time.time() - t0 < 30:
    fresh = 0
    for p in paths:
        try:
            b = open(os.path.join(mnt, p), "rb").read()
        except OSError as e:
            bad.append("%s: %s" % (p, e))
            continue
        reads += 1
        if b == want[p][1]:
            fresh += 1
        elif b == want[p][0]:
            stale_reads += 1
        else:
            bad.append("%s: neither the old nor the new bytes" % p)
    if fresh == len(paths) or len(bad) > 10:
        break
    time.sleep(0.1)
dt = time.time() - t0
print("mounted change: %d reads, %d of them old bytes, all new after %.1f s"
      % (reads, stale_reads, dt) if fresh == len(paths) else
      "mounted change: still old bytes after %.1f s" % dt)
for b in bad[:10]:
    print("BAD " + b)
sys.exit(0 if fresh == len(paths) and not bad else 1)
PY
same_tree "$T/clean" "$T/mnt" && ok || fail "mount after the change differs from a clean build"
grep -q "changed: rebuilding" "$T/mlog" && ok || fail "the daemon did not log the rebuild"
stop_mount "$T/mnt" "$MPID" && ok || fail "unclean exit after the rebuild"
rm -rf "$T/old"
mv "$T/clean" "$T/old"

# 7. --watch 0: the daemon keeps the inputs of mount time (by design; the
# old bytes it serves are those of the fingerprint it was mounted with);
# the next mount rebuilds.  Reported, not failed, for the first half.
start_mount "$T/c.json" "$T/mnt" "$T/mlog" --workers 2 --watch 0 ||
	fail "mount --watch 0 did not start"
cat "$T/mnt/$Z0" >/dev/null
cp -p "$T/dbf.orig" "$T/in/b.dbf"
touch "$T/in/b.dbf"
clean
sleep 2
if cmp -s "$T/mnt/$Z0" "$T/old/$Z0"; then
	echo "note: with --watch 0 a mounted daemon serves the inputs of mount time after they change (stale until remounted)"
fi
stop_mount "$T/mnt" "$MPID" && ok || fail "unclean exit (--watch 0)"
start_mount "$T/c.json" "$T/mnt" "$T/mlog" --workers 2 --watch 0 ||
	fail "remount did not start"
same_tree "$T/clean" "$T/mnt" && ok || fail "remount after the change serves stale tiles"
stop_mount "$T/mnt" "$MPID" && ok || fail "unclean exit (remount)"
finish
