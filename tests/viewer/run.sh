#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The map viewer in a real browser: Debian's headless chromium loads
# index.html from nginx on 127.0.0.1 serving an export (and the mount when
# FUSE works); tiles load without 404s, the screenshot shows data, the
# click readout equals the GeoTIFF, and GDAL reads the WMTS capabilities.
# Exits 77 (skip) without chromium, nginx or python3-gdal.
. "$(dirname "$0")/../cli/lib.sh"

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
[ -n "$CHROMIUM" ] || { echo "skip: no chromium (apt-get install chromium)"; exit 77; }
[ -n "$NGINX" ] || { echo "skip: no nginx"; exit 77; }
/usr/bin/python3 -c 'import osgeo.gdal, numpy' 2>/dev/null ||
	{ echo "skip: no python3-gdal/numpy"; exit 77; }
OUTDIR=${VZ_BUILD_ROOT:-$T}/tests/viewer
mkdir -p "$OUTDIR"

# ---- a pyramid, exported ----
"$VIZFS" sample "$T/in/a.gpkg" --count 20000 --seed 3 \
	--bbox=-151,70,-149,71 --cell 400 --quiet || fail "sample"
write_config "$T/c.json" "$T/in" "$T/cache" 10
expect_rc 0 "$VIZFS" export "$T/c.json" "$T/exp" --quiet
if [ ! -f "$T/exp/WMTSCapabilities.xml" ]; then
	echo "skip: vizfs export does not write the WMTS/viewer files yet"
	exit 77
fi
if [ ! -f "$T/exp/index.html" ]; then
	echo "skip: vizfs was built without the viewer (meson -Dviewer, npm)"
	exit 77
fi

# ---- chromium must start ----
chrome() { # chrome PROFILE ARGS...: headless chromium, bounded in time
	prof=$1
	shift
	rm -rf "$T/$prof"
	timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
		--disable-quic --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync \
		--disable-dev-shm-usage --hide-scrollbars \
		--user-data-dir="$T/$prof" "$@" 2>>"$T/chrome.log"
}
if ! chrome p0 --dump-dom about:blank >"$T/blank" || ! grep -q '<html' "$T/blank"; then
	echo "skip: chromium cannot start:"
	tail -5 "$T/chrome.log"
	exit 77
fi

# ---- nginx on a free port, serving the export and the mount ----
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$T/nginx/logs" "$T/mnt"
# as root, workers must run as root too to read the private temp dirs
user=
[ "$(id -u)" -eq 0 ] && user="user root root;"
cat >"$T/nginx/nginx.conf" <<EOF
daemon off;
$user
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log warn;
events { worker_connections 64; }
http {
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	log_format vz '\$status \$request_uri';
	access_log $T/nginx/logs/access.log vz;
	client_body_temp_path $T/nginx/body;
	proxy_temp_path $T/nginx/proxy;
	fastcgi_temp_path $T/nginx/fastcgi;
	uwsgi_temp_path $T/nginx/uwsgi;
	scgi_temp_path $T/nginx/scgi;
	server {
		listen 127.0.0.1:$port;
		location /export/ { alias $T/exp/; }
		location /mnt/ { alias $T/mnt/; }
	}
}
EOF
"$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" 2>"$T/nginx.err" &
nginx_pid=$!
mnt_pid=
cleanup() {
	[ -n "$mnt_pid" ] && { fusermount3 -u -z "$T/mnt" 2>/dev/null; kill "$mnt_pid" 2>/dev/null; wait "$mnt_pid" 2>/dev/null; }
	kill "$nginx_pid" 2>/dev/null
	wait "$nginx_pid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
for i in $(seq 50); do
	curl -sf -o /dev/null "http://127.0.0.1:$port/export/index.html" && break
	sleep 0.1
done
expect_rc 0 curl -sf -o /dev/null "http://127.0.0.1:$port/export/index.html"

# ---- the WMTS document: strict XML, and GDAL fetches tiles through it ----
expect_rc 0 /usr/bin/python3 - "$T/exp/WMTSCapabilities.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"w": "http://www.opengis.net/wmts/1.0", "ows": "http://www.opengis.net/ows/1.1"}
root = ET.parse(sys.argv[1]).getroot()
layers = [l.find("ows:Identifier", ns).text for l in root.iter("{%s}Layer" % ns["w"])]
assert layers == ["coverage", "polygon_count", "change_rate"], layers
for m in root.iter("{%s}TileMatrix" % ns["w"]):
    if m.find("ows:Identifier", ns) is None:
        continue
    z = int(m.find("ows:Identifier", ns).text)
    assert int(m.find("w:MatrixWidth", ns).text) == 2 ** (z + 1), z
    assert int(m.find("w:MatrixHeight", ns).text) == 2 ** z, z
    assert m.find("w:TopLeftCorner", ns).text == "90 -180", "WGS1984Quad is lat,lon"
PY
# GDAL cannot resolve relative ResourceURL templates: give it the document
# as vizfs writes it with a base URL (vz_wmts_input.base_url)
sed "s#template=\"#template=\"http://127.0.0.1:$port/export/#; s#xlink:href=\"#xlink:href=\"http://127.0.0.1:$port/export/#" \
	"$T/exp/WMTSCapabilities.xml" >"$T/abs.xml"
for z in 6 9; do
	expect_rc 0 /usr/bin/python3 - "$T/abs.xml" "$T/exp" $z 128 <<'PY'
# GDAL's WMTS driver fetches one zoom level through the capabilities and
# gets exactly the pixels of the PNG tiles (mosaicked here from the files).
import os, sys, numpy as np
from osgeo import gdal
gdal.UseExceptions()
url, root, z, tw = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ds = gdal.Open("WMTS:%s,layer=coverage,tilematrix=%d" % (url, z))
gt = ds.GetGeoTransform()
px = 180 / 2 ** z / tw
assert abs(gt[1] - px) < 1e-12 and abs(gt[5] + px) < 1e-12, gt
gx0, gy0 = round((gt[0] + 180) / px), round((90 - gt[3]) / px)
assert abs(gx0 * px - 180 - gt[0]) < 1e-9 and abs(90 - gy0 * px - gt[3]) < 1e-9, gt
a = ds.ReadAsArray()
w, h = ds.RasterXSize, ds.RasterYSize
tx0, ty0, tx1, ty1 = gx0 // tw, gy0 // tw, (gx0 + w - 1) // tw, (gy0 + h - 1) // tw
m = np.zeros((4, (ty1 - ty0 + 1) * tw, (tx1 - tx0 + 1) * tw), dtype=a.dtype)
n = 0
for tx in range(tx0, tx1 + 1):
    for ty in range(ty0, ty1 + 1):
        f = "%s/web_tiles/coverage/WGS1984Quad/%d/%d/%d.png" % (root, z, tx, ty)
        if os.path.exists(f):
            n += 1
            m[:, (ty - ty0) * tw:(ty - ty0 + 1) * tw, (tx - tx0) * tw:(tx - tx0 + 1) * tw] = gdal.Open(f).ReadAsArray()
ox, oy = gx0 - tx0 * tw, gy0 - ty0 * tw
want = m[:, oy:oy + h, ox:ox + w]
assert n > 0 and want[3].max() > 0, "no data at z%d" % z
assert (a == want).all(), "WMTS pixels differ from the PNG tiles"
print("gdal wmts: z%d %dx%d pixels from %d tiles match" % (z, w, h, n))
PY
	sed 's/^/  /' "$T/out"
done

# ---- the viewer: load, wait, screenshot and DOM ----
load() { # load NAME URL: screenshot NAME.png and DOM NAME.html
	chrome "p-$1" --window-size=1200,800 --virtual-time-budget=20000 \
		--screenshot="$T/$1.png" "$2" >/dev/null
	chrome "p-$1d" --window-size=1200,800 --virtual-time-budget=20000 \
		--dump-dom "$2" >"$T/$1.html"
	[ -s "$T/$1.png" ] && [ -s "$T/$1.html" ] && ok || fail "$1: no screenshot or DOM"
}

# check NAME PREFIX: the loaded page's counters, the tiles in the access
# log, data-coloured pixels in the screenshot, the probe against the GeoTIFF
check() {
	expect_rc 0 /usr/bin/python3 - "$T/$1.html" "$T/$1.png" \
		"$T/nginx/logs/access.log" "$2" "$3" <<'PY'
import json, re, sys, os, numpy as np
from osgeo import gdal
gdal.UseExceptions()
dom, shot, log, prefix, root = sys.argv[1:6]
body = re.search(r"<body([^>]*)>", open(dom).read()).group(1)
attrs = {k: v for k, v in re.findall(r'data-([\w-]+)="([^"]*)"', body)}
loaded, errors = int(attrs.get("tiles-loaded", 0)), int(attrs.get("tiles-errors", -1))
print("%s: loaded %d tiles, %s errors, layer %s, zoom %s" % (
    prefix, loaded, errors, attrs.get("layer"), attrs.get("zoom")))
assert loaded > 0 and errors == 0, attrs
assert attrs.get("layer") == "coverage" and attrs.get("legend") == "coverage", attrs
# every tile request of this page got a 200, and those tiles exist
tiles = [l.split(" ", 1) for l in open(log).read().splitlines()
         if l.split(" ", 1)[1].startswith(prefix + "web_tiles/")]
assert tiles, "no tile requests in the access log"
bad = [t for t in tiles if t[0] not in ("200", "304")]
assert not bad, "tile requests failed: %s" % bad[:5]
for st, uri in tiles:
    assert os.path.exists(os.path.join(root, uri[len(prefix):])), uri
# the screenshot: yellow data pixels (coverage palette) over the grey grid
img = gdal.Open(shot).ReadAsArray().astype(int)
r, g, b = img[0], img[1], img[2]
data = ((r > 180) & (g > 180) & (b < 150)).sum()
print("%s: %d data pixels of %d" % (prefix, data, r.size))
assert data > 2000, "the screenshot shows no data"
# the probe: values read by the page equal the GeoTIFF's pixel
probe = json.loads(attrs["probe"].replace("&quot;", '"'))
tif = gdal.Open("%s/geotiff/WGS1984Quad/%d/%d/%d.tif" % (root, probe["z"], probe["x"], probe["y"]))
names = [tif.GetRasterBand(i + 1).GetDescription() for i in range(tif.RasterCount)]
for i, n in enumerate(names):
    want = float(tif.GetRasterBand(i + 1).ReadAsArray()[probe["row"], probe["col"]])
    got = probe["values"][n]
    assert got == want, (n, got, want)
assert probe["values"]["coverage"] > 0, probe
print("%s: probe %s" % (prefix, probe))
PY
	sed 's/^/  /' "$T/out"
}

# a point inside the data: centre of the first z10 tile with a count
pt=$(/usr/bin/python3 - "$T/exp" <<'PY'
import sys, os
from osgeo import gdal
root = sys.argv[1] + "/geotiff/WGS1984Quad/10"
best = None
for x in sorted(os.listdir(root), key=int):
    for f in sorted(os.listdir(root + "/" + x)):
        ds = gdal.Open(root + "/" + x + "/" + f)
        a = ds.GetRasterBand(1).ReadAsArray()
        ds = None
        if a.max() > 0 and (best is None or (a > 0).sum() > best[0]):
            best = ((a > 0).sum(), int(x), int(f[:-4]), a)
n, x, y, a = best
import numpy as np
r, c = np.argwhere(a == a.max())[0]
s = 180 / 1024
print("%.12f,%.12f" % (90 - y * s - (r + 0.5) * s / 128, -180 + x * s + (c + 0.5) * s / 128))
PY
)
[ -n "$pt" ] && ok || fail "no data point found"

: >"$T/nginx/logs/access.log" # only the viewer's requests from here
load export "http://127.0.0.1:$port/export/index.html#layer=coverage&probe=$pt"
check export /export/ "$T/exp"
cp "$T/export.png" "$OUTDIR/viewer.png" 2>/dev/null

# the legend of a statistic without a configured max takes it from
# rasters_summary.csv: the maximum of the zoom shown
chrome p-legend --window-size=1200,800 --virtual-time-budget=20000 \
	--dump-dom "http://127.0.0.1:$port/export/index.html#layer=polygon_count" >"$T/legend.html"
expect_rc 0 /usr/bin/python3 - "$T/legend.html" "$T/exp/rasters_summary.csv" <<'PY'
import csv, json, re, sys
body = re.search(r"<body([^>]*)>", open(sys.argv[1]).read()).group(1)
attrs = dict(re.findall(r'data-([\w-]+)="([^"]*)"', body))
assert attrs.get("legend") == "polygon_count", attrs
z = int(attrs["zoom"])
rows = [r for r in csv.DictReader(open(sys.argv[2])) if r["stat"] == "polygon_count" and int(r["z"]) == z]
want = [0, max(float(r["max"]) for r in rows)]
got = json.loads(attrs["legend-range"].replace("&quot;", '"'))
assert got == want, (got, want)
print("legend polygon_count z%d: %s" % (z, got))
PY
sed 's/^/  /' "$T/out"

# ---- the same viewer on the mount ----
if [ -w /dev/fuse ] && command -v fusermount3 >/dev/null; then
	"$VIZFS" mount "$T/c.json" "$T/mnt" -f >"$T/mount.log" 2>&1 &
	mnt_pid=$!
	for i in $(seq 100); do
		[ -d "$T/mnt/web_tiles" ] && break
		sleep 0.1
	done
	if [ -f "$T/mnt/index.html" ]; then
		: >"$T/nginx/logs/access.log"
		kill -USR1 "$nginx_pid" 2>/dev/null # reopen the log
		sleep 0.3
		load mount "http://127.0.0.1:$port/mnt/index.html#layer=coverage&probe=$pt"
		check mount /mnt/ "$T/mnt"
		cmp -s "$T/mnt/WMTSCapabilities.xml" "$T/exp/WMTSCapabilities.xml" &&
			ok || fail "mount and export capabilities differ"
		cp "$T/mount.png" "$OUTDIR/viewer-mount.png" 2>/dev/null
	else
		echo "note: the mount does not show index.html yet; mount part skipped"
	fi
else
	echo "note: no FUSE here; mount part skipped"
fi
echo "screenshot: $OUTDIR/viewer.png"
finish
