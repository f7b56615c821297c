#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Docker for real: build docker/Dockerfile, run the image, shard + merge in containers, FUSE + nginx pair.
#
# Starts its own dockerd (Debian's docker.io; vfs storage, no bridge, no
# iptables, data and sockets in a temp dir), imports a debian:bookworm base
# image made with debootstrap (cached as a tarball in $VZ_DOCKER_CACHE,
# default /var/cache/vizfs-test; VZ_DOCKER_REFRESH=1 makes it again), builds
# the runtime and web images with BuildKit and host networking (apt inside
# the build reaches the host's mirror), then checks:
#   - the build stage ran the unit tests and none failed;
#   - the image runs vizfs, with no missing library;
#   - an export made in the container equals the host build's, byte for byte;
#   - 2 shards in 2 containers (entry point "shard", VIZFS_SHARD_INDEX) +
#     "merge-shards" equal it too;
#   - "serve" in one container (--device /dev/fuse --cap-add SYS_ADMIN,
#     rshared bind) and nginx in another (rslave bind) serve tiles over HTTP
#     on 127.0.0.1 with the exported bytes; docker stop unmounts cleanly;
#   - the same with docker/compose.yaml itself (Debian's docker-compose,
#     only the published port changed): up, a tile over HTTP, down.
# Stops its containers and dockerd.  Skips (77) when not root, without
# /dev/fuse, or when docker.io/debootstrap cannot be installed or started.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"

need_root
[ -c /dev/fuse ] || skip "no /dev/fuse"
ensure_pkgs dockerd docker.io
ensure_pkgs debootstrap debootstrap
ensure_pkgs curl curl
PATH=$PATH:/usr/sbin:/sbin
# Debian's client matches Debian's daemon; any docker client on PATH will do
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=docker
export DOCKER_HOST="unix://$T/docker.sock" DOCKER_BUILDKIT=1
CACHE=${VZ_DOCKER_CACHE:-/var/cache/vizfs-test}
tag=vizfs-test-$$

dockerd_pid=""
cleanup()
{
	c0=$(date +%s)
	if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
		[ "${compose_up:-0}" = 0 ] || (cd "$T/compose/docker" &&
			docker-compose -p "$tag" down -t 5) >/dev/null 2>&1
		ids=$($DOCKER ps -aq --filter "name=$tag" 2>/dev/null)
		[ -z "$ids" ] || $DOCKER rm -f $ids >/dev/null 2>&1
	fi
	stop_pid "$dockerd_pid" dockerd
	# mounts left below $T (the FUSE mount if a check failed, the shared
	# bind, dockerd's netns), deepest first
	findmnt -rn -o TARGET | grep "^$T/" | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	c1=$(date +%s)
	rm -rf "$T"
	echo "cleanup: $((c1 - c0)) s to stop, $(($(date +%s) - c1)) s to delete"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# --- dockerd
dockerd --iptables=false --bridge=none --storage-driver=vfs \
	--data-root "$T/d" --exec-root "$T/x" --host "$DOCKER_HOST" \
	-p "$T/docker.pid" >"$T/dockerd.log" 2>&1 &
dockerd_pid=$!
if ! wait_for 60 $DOCKER info; then
	tail -5 "$T/dockerd.log" >&2
	skip "dockerd did not start (log above)"
fi
echo "dockerd $($DOCKER version -f '{{.Server.Version}}') up after $(elapsed) s"

# --- debian:bookworm from debootstrap, the mirror of this host's apt sources
mirror()
{
	m=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources \
		2>/dev/null | grep -v security | head -1)
	[ -n "$m" ] || m=$(sed -n 's/^deb  *\(\[[^]]*\]  *\)\{0,1\}\([^ ]*\)  *bookworm .*/\2/p' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1)
	echo "${m:-http://deb.debian.org/debian}"
}
base=$CACHE/debian-bookworm-minbase.tar
if [ ! -s "$base" ] || [ "${VZ_DOCKER_REFRESH:-0}" = 1 ]; then
	mkdir -p "$CACHE"
	m=$(mirror)
	echo "debootstrap bookworm from $m"
	debootstrap --variant=minbase bookworm "$T/rootfs" "$m" >"$T/debootstrap.log" 2>&1 ||
		skip "debootstrap failed: $(tail -2 "$T/debootstrap.log" | tr '\n' ' ')"
	tar -C "$T/rootfs" -c . >"$base.tmp" && mv "$base.tmp" "$base" ||
		fail "cannot write $base"
	rm -rf "$T/rootfs"
fi
$DOCKER import - debian:bookworm <"$base" >/dev/null || fail "docker import of $base"
echo "base image ready after $(elapsed) s"

# --- images: the build stage runs the unit tests
# Without the map viewer: its npm ci would need the npm registry's TLS chain
# inside the build container, which a TLS-intercepting proxy (as on the
# development machines) breaks; the viewer has its own tests.
if $DOCKER build --network host --progress=plain -f "$SRC/docker/Dockerfile" \
	--build-arg VIZFS_VIEWER=disabled \
	-t vizfs:test "$SRC" >"$T/build.log" 2>&1; then ok; else
	fail "docker build (runtime) failed (log kept in $CACHE/docker-build.log):"
	cp "$T/build.log" "$CACHE/docker-build.log" 2>/dev/null
	grep -E 'FAIL|rror' "$T/build.log" | head -20 >&2
	tail -12 "$T/build.log" >&2
	finish
	exit 1
fi
grep -Eq '^#[0-9]+ [0-9.]+ Ok: +[1-9]' "$T/build.log" && ok || fail "build log shows no passed unit test"
grep -Eq '^#[0-9]+ [0-9.]+ Fail: +0' "$T/build.log" && ok || fail "build log shows failed unit tests"
echo "runtime image built after $(elapsed) s ($(grep -Eo 'Ok: +[0-9]+' "$T/build.log" | head -1) unit tests in the build stage)"
expect_rc 0 $DOCKER build --network host -f "$SRC/docker/Dockerfile" --target web \
	-t vizfs-web:test "$SRC"
echo "web image built after $(elapsed) s"
size=$($DOCKER image inspect -f '{{.Size}}' vizfs:test)
echo "runtime image: $((size / 1048576)) MiB"

# --- the image runs vizfs with all its libraries
expect_rc 0 $DOCKER run --rm --network host vizfs:test --version
grep -q "vizfs" "$T/out" && ok || fail "--version printed: $(cat "$T/out")"
expect_rc 0 $DOCKER run --rm --network host --entrypoint sh vizfs:test -c \
	'! ldd /usr/local/bin/vizfs | grep "not found"'
expect_rc 1 $DOCKER run --rm --network host vizfs:test shard /data/c.json 2 /data/s
expect_err "no shard index"

# --- the same build in the container and on the host
D=$T/data
mkdir -p "$D"
drun()
{
	$DOCKER run --rm --network host -v "$D:/data" "$@"
}
expect_rc 0 drun vizfs:test sample /data/in/a.gpkg --count 6000 --seed 51 --quiet
expect_rc 0 drun vizfs:test sample /data/in/b.gpkg --count 1500 --seed 52 \
	--bbox=-150.2,70.3,-150.1,70.35 --quiet
write_config "$D/c.json" /data/in /data/cache 13
write_config "$T/host.json" "$D/in" "$T/cache-host" 13
expect_rc 0 "$VIZFS" export "$T/host.json" "$T/out-host" --quiet
expect_rc 0 drun vizfs:test export /data/c.json /data/out --quiet
same_outputs "$T/out-host" "$D/out"
echo "container build = host build after $(elapsed) s"

# --- 2 shards in 2 containers at once, then the merge
for i in 0 1; do
	drun --name "$tag-shard$i" -e VIZFS_SHARD_INDEX=$i vizfs:test \
		shard /data/c.json 2 /data/shards --quiet --workers 1 \
		>"$T/shard$i.out" 2>&1 &
	eval "spid$i=\$!"
done
wait "$spid0" && ok || fail "shard 0: $(tail -3 "$T/shard0.out")"
wait "$spid1" && ok || fail "shard 1: $(tail -3 "$T/shard1.out")"
expect_rc 0 drun vizfs:test merge-shards /data/c.json 2 /data/shards /data/merged --quiet
expect_rc 0 drun vizfs:test export /data/c.json /data/out-merged --cache /data/merged --quiet
same_outputs "$T/out-host" "$D/out-merged"
echo "shards + merge in containers = host build after $(elapsed) s"

# --- mount in one container, nginx in another, the mount shared through
# the host directory $T/srv (made a shared mount: / may be private here)
S=$T/srv
mkdir -p "$S"
mount --bind "$S" "$S" && mount --make-rshared "$S" || fail "cannot make $S a shared mount"
expect_rc 0 $DOCKER run -d --name "$tag-mount" --network host --device /dev/fuse \
	--cap-add SYS_ADMIN --security-opt apparmor:unconfined \
	-v "$D:/data" -v "$S:/srv:rshared" \
	vizfs:test serve /data/c.json /srv/pyramid --cache /data/merged --no-prefetch
if wait_for 60 test -e "$S/pyramid/.vizfs/status"; then ok; else
	fail "the mount did not appear on the host at $S/pyramid"
	$DOCKER logs "$tag-mount" 2>&1 | tail -5 >&2
fi
port=$((30000 + $$ % 20000))
sed "s/listen 8080;/listen 127.0.0.1:$port;/" "$SRC/docker/nginx.conf" >"$T/nginx.conf"
expect_rc 0 $DOCKER run -d --name "$tag-web" --network host \
	-v "$S:/srv:ro,rslave" -v "$T/nginx.conf:/etc/nginx/nginx.conf:ro" \
	vizfs-web:test
url=http://127.0.0.1:$port
wait_for 30 curl -sf "$url/healthz" || fail "nginx does not answer on $url"
got=0
for f in $(cd "$T/out-host" && { find web_tiles -path '*/11/*' -name '*.png' | sort | head -3;
	find geotiff -path '*/9/*' -name '*.tif' | sort | head -2; }); do
	code=$(curl -s -o "$T/tile" -w '%{http_code}' "$url/$f")
	if [ "$code" = 200 ] && cmp -s "$T/tile" "$T/out-host/$f"; then
		got=$((got + 1))
		ok
	else
		fail "GET $url/$f: HTTP $code, bytes differ from the export"
	fi
done
[ "$got" -ge 4 ] && ok || fail "only $got tiles fetched over HTTP"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/web_tiles/coverage/WGS1984Quad/0/9/9.png")
[ "$code" = 404 ] && ok || fail "a tile outside the pyramid gave HTTP $code, want 404"
echo "tiles served by nginx from the FUSE mount after $(elapsed) s"

expect_rc 0 $DOCKER stop -t 30 "$tag-mount"
rc=$($DOCKER inspect -f '{{.State.ExitCode}}' "$tag-mount")
[ "$rc" = 0 ] && ok || fail "vizfs serve exited with $rc on docker stop"
$DOCKER logs "$tag-mount" 2>&1 | grep -q unmounted && ok || fail "no 'unmounted' in the serve log"
mountpoint -q "$S/pyramid" && fail "$S/pyramid still mounted after docker stop" || ok
# --- docker/compose.yaml itself (Debian's docker-compose 1.29), with the
# images built above, its own bridge network, nginx published on a free
# loopback port instead of 8080
if PATH=$PATH:/usr/sbin command -v docker-compose >/dev/null 2>&1 ||
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-o Dpkg::Use-Pty=0 docker-compose >"$T/apt-compose.log" 2>&1; then
	$DOCKER tag vizfs:test vizfs:latest && $DOCKER tag vizfs-web:test vizfs-web:latest
	CP=$T/compose/docker
	mkdir -p "$CP/srv"
	ln -s "$D" "$CP/data"
	cp "$D/c.json" "$D/config.json"
	cport=$((port + 1))
	sed "s/\"8080:8080\"/\"127.0.0.1:$cport:8080\"/" "$SRC/docker/compose.yaml" >"$CP/compose.yaml"
	grep -q "127.0.0.1:$cport:8080" "$CP/compose.yaml" && ok || fail "compose.yaml publishes no 8080:8080"
	mount --bind "$CP/srv" "$CP/srv" && mount --make-rshared "$CP/srv" || fail "cannot share $CP/srv"
	compose_up=1
	(cd "$CP" && docker-compose -p "$tag" up -d --no-build) >"$T/out" 2>"$T/err" && ok ||
		{ fail "docker-compose up: $(tail -3 "$T/err")"; }
	wait_for 90 curl -sf "http://127.0.0.1:$cport/healthz" || fail "compose nginx does not answer"
	wait_for 60 test -e "$CP/srv/pyramid/.vizfs/status" || fail "compose: no mount on the host"
	f=$(cd "$T/out-host" && find web_tiles -path '*/12/*' -name '*.png' | sort | head -1)
	code=$(curl -s -o "$T/tile" -w '%{http_code}' "http://127.0.0.1:$cport/$f")
	[ "$code" = 200 ] && cmp -s "$T/tile" "$T/out-host/$f" && ok ||
		fail "compose: GET $f: HTTP $code or bytes differ"
	(cd "$CP" && docker-compose -p "$tag" down) >"$T/out" 2>"$T/err" && ok ||
		fail "docker-compose down: $(tail -3 "$T/err")"
	compose_up=0
	mountpoint -q "$CP/srv/pyramid" && fail "compose down left the mount" || ok
	echo "docker/compose.yaml up, tile served, down after $(elapsed) s"
else
	echo "note: docker-compose not installable; compose.yaml not run (the k8s test checks it offline)"
fi
echo "total: $(elapsed) s"
finish
