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

CHECK="/usr/bin/python3 $(dirname "$0")/check.py"
STATS=coverage,polygon_count,change_rate

# ---- two pyramids (geographic and Web Mercator), exported ----
"$VIZFS" sample "$T/in/a.gpkg" --count 20000 --seed 3 \
	--bbox=-151,70,-149,71 --cell 400 --quiet || fail "sample"
write_config "$T/c.json" "$T/in" "$T/cache" 10
sed 's/"WGS1984Quad"/"WebMercatorQuad"/' "$T/c.json" | sed "s#$T/cache#$T/cache3857#" >"$T/m.json"
expect_rc 0 "$VIZFS" export "$T/c.json" "$T/exp" --quiet
expect_rc 0 "$VIZFS" export "$T/m.json" "$T/exp3857" --quiet
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
		location /export3857/ { alias $T/exp3857/; }
		# GIS clients want absolute URLs in the WMTS document: the
		# recipe for docs/operations, rewriting them at the server
		location /abs/ {
			alias $T/exp/;
			sub_filter_types text/xml application/xml;
			sub_filter 'template="' 'template="http://\$http_host/abs/';
			sub_filter 'xlink:href="' 'xlink:href="http://\$http_host/abs/';
			sub_filter_once off;
		}
		location /abs3857/ {
			alias $T/exp3857/;
			sub_filter_types text/xml application/xml;
			sub_filter 'template="' 'template="http://\$http_host/abs3857/';
			sub_filter 'xlink:href="' 'xlink:href="http://\$http_host/abs3857/';
			sub_filter_once off;
		}
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
expect_rc 0 $CHECK caps "$T/exp/WMTSCapabilities.xml" WGS1984Quad $STATS
sed 's/^/  /' "$T/out"
expect_rc 0 $CHECK caps "$T/exp3857/WMTSCapabilities.xml" WebMercatorQuad $STATS
sed 's/^/  /' "$T/out"
# GDAL cannot resolve relative ResourceURL templates: it reads the document
# through nginx's sub_filter, which makes them absolute
for z in 6 9; do
	expect_rc 0 $CHECK gdal_wmts "http://127.0.0.1:$port/abs/WMTSCapabilities.xml" \
		"$T/exp" WGS1984Quad $z 128
	sed 's/^/  /' "$T/out"
	expect_rc 0 $CHECK gdal_wmts "http://127.0.0.1:$port/abs3857/WMTSCapabilities.xml" \
		"$T/exp3857" WebMercatorQuad $z 128
	sed 's/^/  /' "$T/out"
done

# ---- the viewer in chromium ----
# viewer NAME PREFIX ROOT TMS: load the page with a click readout at a data
# point and check it (the tile requests are those of the DOM load)
viewer() {
	pt=$($CHECK point "$3" "$4" 10 128) && [ -n "$pt" ] && ok ||
		fail "$1: no data point found"
	url="http://127.0.0.1:$port$2index.html#layer=coverage&probe=$pt"
	chrome "p-$1" --window-size=1200,800 --virtual-time-budget=20000 \
		--screenshot="$T/$1.png" "$url" >/dev/null
	: >"$T/nginx/logs/access.log"
	chrome "p-$1d" --window-size=1200,800 --virtual-time-budget=20000 \
		--dump-dom "$url" >"$T/$1.html"
	[ -s "$T/$1.png" ] && [ -s "$T/$1.html" ] && ok || fail "$1: no screenshot or DOM"
	expect_rc 0 $CHECK page "$T/$1.html" "$T/$1.png" \
		"$T/nginx/logs/access.log" "$2" "$3" "$4" "$pt" 128
	sed 's/^/  /' "$T/out"
}

viewer export /export/ "$T/exp" WGS1984Quad
cp "$T/export.png" "$OUTDIR/viewer.png" 2>/dev/null
viewer export3857 /export3857/ "$T/exp3857" WebMercatorQuad
cp "$T/export3857.png" "$OUTDIR/viewer-3857.png" 2>/dev/null

# the legend of a statistic without a configured max takes it from
# rasters_summary.csv: the maximum of the zoom shown
chrome p-legend --window-size=1200,800 --virtual-time-budget=20000 \
	--dump-dom "http://127.0.0.1:$port/export/index.html#layer=polygon_count" >"$T/legend.html"
expect_rc 0 $CHECK legend "$T/legend.html" "$T/exp/rasters_summary.csv" polygon_count
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
		viewer mount /mnt/ "$T/mnt" WGS1984Quad
		for f in WMTSCapabilities.xml index.html viewer/vizfs.js \
			viewer/leaflet.js viewer/legend-coverage.png; do
			cmp -s "$T/mnt/$f" "$T/exp/$f" && ok ||
				fail "mount and export differ: $f"
		done
		[ "$(ls "$T/mnt/viewer" | wc -l)" -eq "$(ls "$T/exp/viewer" | wc -l)" ] &&
			ok || fail "mount and export list different viewer/ files"
		cp "$T/mount.png" "$OUTDIR/viewer-mount.png" 2>/dev/null
	else
		echo "note: the mount does not show index.html yet; mount part skipped"
	fi
else
	echo "note: no FUSE here; mount part skipped"
fi
if [ -n "$mnt_pid" ]; then
	fusermount3 -u "$T/mnt" && ok || fail "unmount"
	wait "$mnt_pid" && ok || fail "mount exit status"
	mnt_pid=
	grep -qiE "error|==[0-9]+==" "$T/mount.log" &&
		fail "mount log: $(grep -iE "error|==[0-9]+==" "$T/mount.log" | head -3)" || ok
fi
echo "screenshot: $OUTDIR/viewer.png"
finish
