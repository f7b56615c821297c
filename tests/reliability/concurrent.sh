#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Two processes on one cache: two prefetches (started together, or one
# while the other runs), a mount plus prefetch/export/render/info, two mounts.
# Each pair gives a consistent result or a clear refusal naming the cache,
# never corruption: a later export equals the reference.
. "$(dirname "$0")/lib.sh"

"$VIZFS" sample "$T/in/a.gpkg" --count 30000 --seed 9 --quiet || fail sample
write_config "$T/ref.json" "$T/in" "$T/cache-ref" 15
write_config "$T/c.json" "$T/in" "$T/cache" 15
expect_rc 0 "$VIZFS" export "$T/ref.json" "$T/ref" --quiet
CACHE=$T/cache
REFUSED="in use by another vizfs process"

# check_export NAME: the cache of c.json completes and exports the reference
check_export()
{
	rm -rf "$T/exp"
	expect_rc 0 "$VIZFS" export "$T/c.json" "$T/exp" --quiet
	same_tree "$T/ref" "$T/exp" && ok || fail "$1: export differs from the reference"
}
# refused_or_ok NAME RC ERRFILE: exit 0, or exit 2 naming the cache
refused_or_ok()
{
	if [ "$2" -eq 0 ]; then
		ok
		return 0
	fi
	if [ "$2" -eq 2 ] && grep -q "$REFUSED" "$3" && grep -q "$CACHE" "$3"; then
		ok
		return 1
	fi
	fail "$1: exit $2 and not a clear refusal: $(head -3 "$3")"
	return 1
}

# 1. Two prefetches started at the same moment on a fresh cache, 4 times.
refusals=0
for r in 1 2 3 4; do
	rm -rf "$CACHE"
	"$VIZFS" prefetch "$T/c.json" --workers 1 --quiet 2>"$T/e1" &
	p1=$!
	"$VIZFS" prefetch "$T/c.json" --workers 1 --quiet 2>"$T/e2" &
	p2=$!
	wait $p1
	r1=$?
	wait $p2
	r2=$?
	refused_or_ok "race $r first" $r1 "$T/e1" || refusals=$((refusals + 1))
	refused_or_ok "race $r second" $r2 "$T/e2" || refusals=$((refusals + 1))
	[ $r1 -eq 0 ] || [ $r2 -eq 0 ] && ok || fail "race $r: neither prefetch finished"
	check_export "race $r"
done
echo "two prefetches started together: $refusals of 8 refused, every build equal to the reference"

# 2. A prefetch while another one runs: refused, naming the cache.
rm -rf "$CACHE"
"$VIZFS" prefetch "$T/c.json" --workers 1 --quiet 2>"$T/e1" &
p1=$!
sleep 0.3
expect_rc 2 "$VIZFS" prefetch "$T/c.json" --quiet
expect_err "$REFUSED"
expect_err "$CACHE"
echo "second prefetch: $(head -1 "$T/err")"
wait $p1 && ok || fail "the first prefetch failed: $(tail -2 "$T/e1")"
check_export "prefetch during prefetch"

# 3. A mount (prefetching into a fresh cache, with readers) and then a
# batch prefetch, export, render and info on the same cache.
rm -rf "$CACHE"
start_mount "$T/c.json" "$T/mnt" "$T/mlog" --workers 1 ||
	fail "mount did not start: $(tail -3 "$T/mlog")"
"$PY" "$READER" --ref "$T/ref" --root "$T/mnt" --threads 4 --count 2000 \
	--seed "$SEED" >"$T/r" 2>&1 &
rp=$!
for cmd in prefetch export render info; do
	case $cmd in
	prefetch) set -- prefetch "$T/c.json" --quiet ;;
	export) set -- export "$T/c.json" "$T/exp-m" --quiet ;;
	render) set -- render "$T/c.json" web_tiles/coverage/WGS1984Quad/0/0/0.png -o "$T/z0.png" ;;
	info) set -- info "$T/c.json" ;;
	esac
	"$VIZFS" "$@" >"$T/o-$cmd" 2>"$T/e-$cmd"
	rc=$?
	if refused_or_ok "$cmd while mounted" $rc "$T/e-$cmd"; then
		echo "$cmd while mounted: ran (exit 0)"
		case $cmd in
		export) same_tree "$T/ref" "$T/exp-m" && ok || fail "export while mounted differs from the reference" ;;
		render) cmp -s "$T/z0.png" "$T/ref/web_tiles/coverage/WGS1984Quad/0/0/0.png" && ok || fail "render while mounted: wrong bytes" ;;
		esac
	else
		echo "$cmd while mounted: refused ($(grep -m1 "$REFUSED" "$T/e-$cmd"))"
	fi
done
wait $rp && ok || fail "readers during the batch commands: $(cat "$T/r")"

# 4. A second mount of the same cache: refused naming the cache; the first
# one keeps serving the reference.
mkdir -p "$T/mnt2"
MOUNTS="$MOUNTS $T/mnt2"
timeout 60 "$VIZFS" mount "$T/c.json" "$T/mnt2" -f >"$T/o2" 2>"$T/e2"
rc=$?
if [ $rc -eq 0 ]; then
	fail "a second mount of one cache was accepted"
else
	refused_or_ok "second mount" $rc "$T/e2"
	echo "second mount: $(grep -m1 "$REFUSED" "$T/e2")"
fi
mountpoint -q "$T/mnt2" && fail "the refused mount left a mountpoint" || ok
same_tree "$T/ref" "$T/mnt" && ok || fail "the first mount differs from the reference"
wait_prefetch "$T/mnt" && ok || fail "prefetch never finished"
stop_mount "$T/mnt" "$MPID" && ok || fail "unclean exit: $(tail -3 "$T/mlog")"
check_export "after the mount"
finish
