#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Bounded load: 16 threads read random existing and missing tiles through the
# mount and 16 more through nginx on 127.0.0.1, while the prefetcher runs;
# zero wrong bytes, zero unexpected errors, daemon RSS bounded.
#
# Environment: STRESS_REQUESTS (default 5000 per path: mount and nginx),
# STRESS_THREADS (16), STRESS_RSS_MIB (64: allowed RSS growth after the
# warm-up), RELIABILITY_SEED.
. "$(dirname "$0")/lib.sh"

N=${STRESS_REQUESTS:-5000}
TH=${STRESS_THREADS:-16}
RSS_MIB=${STRESS_RSS_MIB:-64}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

"$VIZFS" sample "$T/in/a.gpkg" --count 40000 --seed 11 --cell 24 --quiet || fail sample
write_config "$T/ref.json" "$T/in" "$T/cache-ref" 15
write_config "$T/c.json" "$T/in" "$T/cache" 15
expect_rc 0 "$VIZFS" export "$T/ref.json" "$T/ref" --quiet
echo "reference: $(tiles_of "$T/ref" | wc -l) files"

# a fresh cache: staging, demand renders and the prefetcher all run under
# the readers; one render thread so the prefetcher lasts
start_mount "$T/c.json" "$T/mnt" "$T/mlog" --workers 1 ||
	{ fail "mount did not start: $(tail -3 "$T/mlog")"; finish; exit 1; }
rss0=$(rss_kib "$MPID")

# nginx serving the mount (as root: its workers must read a FUSE mount that
# has no allow_other)
web=""
if [ -x "$NGINX" ]; then
	P=$T/nginx
	mkdir -p "$P/tmp"
	PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$P/nginx.conf" <<EOF
user root;
worker_processes 2;
daemon off;
pid $P/nginx.pid;
error_log $P/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $P/tmp/body;
    proxy_temp_path $P/tmp/proxy;
    fastcgi_temp_path $P/tmp/fastcgi;
    uwsgi_temp_path $P/tmp/uwsgi;
    scgi_temp_path $P/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$PORT;
        root $T/mnt;
        location / { }
    }
}
EOF
	"$NGINX" -p "$P/" -e "$P/error.log" -c "$P/nginx.conf" 2>"$P/stderr" &
	web=$!
	PIDS="$PIDS $web"
	i=0
	until "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$web" 2>/dev/null; then
			fail "nginx did not start: $(cat "$P/stderr" "$P/error.log" 2>/dev/null | tail -3)"
			web=""
			break
		fi
		sleep 0.1
	done
else
	echo "note: nginx is not installed, the web server half is skipped"
fi

grep -q '"prefetching": true' "$T/mnt/.vizfs/status" && during=yes || during=no
t0=$(date +%s)
# the prefetcher may still run: the CSV is then a subset of the final one
"$PY" "$READER" --ref "$T/ref" --root "$T/mnt" --threads "$TH" --count "$N" \
	--seed "$SEED" --pid "$MPID" --partial-csv >"$T/r-fs" 2>&1 &
rfs=$!
if [ -n "$web" ]; then
	"$PY" "$READER" --ref "$T/ref" --root "http://127.0.0.1:$PORT" \
		--threads "$TH" --count "$N" --seed "$((SEED + 1))" \
		--partial-csv >"$T/r-web" 2>&1 &
	rweb=$!
fi
wait "$rfs" && ok || fail "mount readers: $(cat "$T/r-fs")"
if [ -n "$web" ]; then
	wait "$rweb" && ok || fail "nginx readers: $(cat "$T/r-web")"
fi
t1=$(date +%s)
grep -q '"prefetching": true' "$T/mnt/.vizfs/status" && still=yes || still=no
echo "prefetcher running at the start: $during, at the end: $still ($((t1 - t0)) s)"
echo "mount: $(cat "$T/r-fs")"
[ -n "$web" ] && echo "nginx: $(cat "$T/r-web")"

# figures: requests, wrong bytes, unexpected errors
total=0
for f in "$T/r-fs" ${web:+"$T/r-web"}; do
	n=$(sed -n 's/.*"requests": \([0-9]*\).*/\1/p' "$f")
	total=$((total + ${n:-0}))
done
[ "$total" -ge "$N" ] && ok || fail "only $total requests made"

# memory.  RssAnon is the daemon's own heap and stacks; RssFile+RssShmem
# ("map" below) is mostly LMDB map pages, which grow with the cache (the mount stores GeoTIFFs it
# encodes) and belong to the page cache.  Bounds: RssAnon from the warm-up
# (first 500 requests) to the end, and VmRSS over a second round of reads
# once the prefetcher is done, both under STRESS_RSS_MIB.
jget() { sed -n "s/.*\"$2\": \([0-9]*\).*/\1/p" "$1"; }
wait_prefetch "$T/mnt" 300 && ok || fail "prefetch never finished"
"$PY" "$READER" --ref "$T/ref" --root "$T/mnt" --threads "$TH" --count "$N" \
	--seed "$((SEED + 2))" --pid "$MPID" >"$T/r-fs2" 2>&1 && ok ||
	fail "mount readers after the prefetch: $(cat "$T/r-fs2")"
n=$(jget "$T/r-fs2" requests)
total=$((total + ${n:-0}))
mib() { echo $((${1:-0} / 1024)); }
a0=$(jget "$T/r-fs" anon_warm_kib)
a1=$(jget "$T/r-fs2" anon_end_kib)
w0=$(jget "$T/r-fs2" rss_warm_kib)
w1=$(jget "$T/r-fs2" rss_end_kib)
echo "daemon RSS MiB (heap+map): start $(mib "$rss0");" \
	"after warm-up $(mib "$(jget "$T/r-fs" rss_warm_kib)") ($(mib "$a0")+$(mib "$(jget "$T/r-fs" file_warm_kib)"));" \
	"after the load $(mib "$(jget "$T/r-fs" rss_end_kib)") ($(mib "$(jget "$T/r-fs" anon_end_kib)")+$(mib "$(jget "$T/r-fs" file_end_kib)"));" \
	"second round $(mib "$w0") -> $(mib "$w1") ($(mib "$a1")+$(mib "$(jget "$T/r-fs2" file_end_kib)"))"
if [ -n "$a0" ] && [ -n "$a1" ] && [ -n "$w0" ] && [ -n "$w1" ]; then
	[ $((a1 - a0)) -lt $((RSS_MIB * 1024)) ] && ok ||
		fail "daemon heap (RssAnon) grew by $(mib $((a1 - a0))) MiB (limit $RSS_MIB)"
	[ $((w1 - w0)) -lt $((RSS_MIB * 1024)) ] && ok ||
		fail "daemon RSS grew by $(mib $((w1 - w0))) MiB under a steady load (limit $RSS_MIB)"
else
	fail "no RSS figures"
fi
echo "mount, after the prefetch: $(cat "$T/r-fs2")"
"$PY" - "$T/r-fs" "$T/r-fs2" ${web:+"$T/r-web"} <<'PY'
import json, sys
t = {}
for f in sys.argv[1:]:
    d = json.load(open(f))
    for k in ("requests", "ok", "missing_ok", "bytes", "wrong", "unexpected"):
        t[k] = t.get(k, 0) + d[k]
print("stress: %(requests)d requests served: %(ok)d tiles (%(bytes)d bytes) "
      "equal to the reference, %(missing_ok)d correct not-found, "
      "%(wrong)d wrong bytes, %(unexpected)d unexpected errors" % t)
PY

if [ -n "$web" ]; then
	kill "$web" 2>/dev/null
	wait "$web" 2>/dev/null
fi
same_tree "$T/ref" "$T/mnt" && ok || fail "the mount differs from the reference after the load"
stop_mount "$T/mnt" "$MPID" && ok || fail "unclean exit: $(tail -3 "$T/mlog")"
keep_log "$T/mlog" stress-mount.log
finish
