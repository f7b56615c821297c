#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Running out of room: a 1 MiB LMDB map grows (batch and mount); a cache on
# a full tmpfs fails clearly, the mount keeps serving what is cached, and
# after space returns the build completes with the reference bytes.
. "$(dirname "$0")/lib.sh"

"$VIZFS" sample "$T/in/a.gpkg" --count 30000 --seed 9 --quiet || fail sample
write_config "$T/ref.json" "$T/in" "$T/cache-ref" 15
expect_rc 0 "$VIZFS" export "$T/ref.json" "$T/ref" --quiet
echo "reference: $(tiles_of "$T/ref" | wc -l) files"

# 1. LMDB map full: start with the smallest map accepted; it must grow.
write_config "$T/map.json" "$T/in" "$T/cache-map" 15 \
	'"vizfs_cache_map_size": 1048576,'
expect_rc 0 "$VIZFS" prefetch "$T/map.json" --workers 2
expect_rc 0 "$VIZFS" export "$T/map.json" "$T/exp-map" --quiet
same_tree "$T/ref" "$T/exp-map" && ok || fail "1 MiB map: export differs from the reference"
echo "1 MiB map, batch: data.mdb grew to $(stat -c %s "$T/cache-map/data.mdb") bytes"
# and while mounted: demand renders and the prefetcher grow it under readers
write_config "$T/mapm.json" "$T/in" "$T/cache-mapm" 15 \
	'"vizfs_cache_map_size": 1048576,'
if start_mount "$T/mapm.json" "$T/mnt" "$T/mlog" --workers 2; then
	"$PY" "$READER" --ref "$T/ref" --root "$T/mnt" --threads 8 \
		--count 3000 --seed "$SEED" >"$T/r" 2>&1 && ok ||
		fail "1 MiB map, mounted: $(cat "$T/r")"
	same_tree "$T/ref" "$T/mnt" && ok || fail "1 MiB map, mounted: tree differs from the reference"
	wait_prefetch "$T/mnt" && ok || fail "1 MiB map, mounted: prefetch never finished"
	stop_mount "$T/mnt" "$MPID" && ok || fail "1 MiB map, mounted: unclean exit"
else
	fail "1 MiB map: mount did not start: $(tail -3 "$T/mlog")"
fi

# 2. Disk full: the cache on an 8 MiB tmpfs (the full cache needs ~20 MiB).
mkdir -p "$T/small"
if ! mount -t tmpfs -o size=8m tmpfs "$T/small" 2>"$T/merr"; then
	echo "skip disk-full cases: cannot mount a tmpfs ($(cat "$T/merr"))"
	finish
	exit $?
fi
TMPFS="$T/small"
write_config "$T/full.json" "$T/in" "$T/small/cache" 15
expect_rc 2 timeout 300 "$VIZFS" prefetch "$T/full.json" --workers 2 --quiet
expect_err "cache $T/small/cache"
expect_err "full"
echo "prefetch on a full disk: $(grep -m1 error "$T/err")"
cp "$T/err" "$T/prefetch-full.err"
# a second attempt on the full disk fails the same way, it does not hang
expect_rc 2 timeout 300 "$VIZFS" prefetch "$T/full.json" --workers 2 --quiet
expect_err "cache $T/small/cache"

# 3. Space returns (the tmpfs grows): the build completes and equals the
# reference; nothing written while the disk was full is corrupt.
mount -o remount,size=64m "$T/small" && ok || fail "remount the tmpfs"
expect_rc 0 timeout 300 "$VIZFS" prefetch "$T/full.json" --workers 2 --quiet
expect_rc 0 "$VIZFS" export "$T/full.json" "$T/exp-full" --quiet
same_tree "$T/ref" "$T/exp-full" && ok || fail "after space returned: export differs from the reference"

# 4. A mount on a full disk keeps serving what is cached: z14-15 are built,
# then a filler takes all the room left.  Every z14-15 PNG and the CSV must
# come back (the CSV lists only reference rows); the rest gives the
# reference bytes or a clean I/O error (EIO/ENOSPC), never wrong bytes,
# ENOENT or a hang; what was served once is served again.
# Known issue (reported): GeoTIFFs are not part of what prefetch caches; the
# daemon encodes one on first read and commits it before answering, so on a
# full disk even a tile whose bands are cached gets EIO for its .tif.  The
# test counts those and prints a note instead of failing.
rm -rf "$T/small/cache"
expect_rc 0 timeout 300 "$VIZFS" prefetch "$T/full.json" --zoom 14-15 --workers 2 --quiet
avail=$(df -k --output=avail "$T/small" | tail -1)
dd if=/dev/zero of="$T/small/filler" bs=1024 count="$avail" 2>/dev/null
echo "filler: $(df -k --output=avail "$T/small" | tail -1) KiB left on the tmpfs"
if start_mount "$T/full.json" "$T/mnt" "$T/mlog" --workers 2; then
	tiles_of "$T/ref" >"$T/list"
	timeout 300 "$PY" - "$T/ref" "$T/mnt" "$T/list" >"$T/full-read" <<'PY'
import errno, os, re, sys
ref, mnt, lst = sys.argv[1:4]
paths = open(lst).read().split()
cached = re.compile(r"^web_tiles/.*/1[45]/\d+/\d+\.png$|\.csv$")
cached_tif = re.compile(r"^geotiff/.*/1[45]/\d+/\d+\.tif$")
tif_eio = 0
def read_all():
    got = {}
    for p in paths:
        try:
            with open(os.path.join(mnt, p), "rb") as f:
                got[p] = f.read()
        except OSError as e:
            got[p] = e.errno
    return got
def csv_ok(got, want):
    g, w = got.decode().splitlines(), set(want.decode().splitlines())
    return bool(g) and all(line in w for line in g)
bad = []
first = read_all()
second = read_all()
served = 0
errs = {}
for p in paths:
    want = open(os.path.join(ref, p), "rb").read()
    for got in (first[p], second[p]):
        if isinstance(got, bytes):
            if p.endswith(".csv") and csv_ok(got, want):
                continue
            if got != want:
                bad.append("%s: wrong bytes" % p)
        elif cached.search(p) or cached_tif.search(p):
            # cached tiles, and GeoTIFFs of cached bands (re-encoded when
            # they cannot be cached), must be served on a full disk
            bad.append("%s (cached): %s" % (p, os.strerror(got)))
        elif got not in (errno.EIO, errno.ENOSPC):
            bad.append("%s: %s" % (p, os.strerror(got)))
    if isinstance(first[p], bytes):
        served += 1
        if not isinstance(second[p], bytes):
            bad.append("%s: served once, then %s" % (p, os.strerror(second[p])))
    else:
        e = os.strerror(first[p])
        errs[e] = errs.get(e, 0) + 1
        if cached_tif.search(p):
            tif_eio += 1
print("full disk, mounted: %d of %d files served (all z14-15 PNGs), errors %s"
      % (served, len(paths), errs))
for b in bad[:10]:
    print("BAD " + b)
sys.exit(1 if bad else 0)
PY
	rc=$?
	cat "$T/full-read"
	[ $rc -eq 0 ] && ok || fail "full disk, mounted: bad reads"
	# the daemon is still alive and unmounts cleanly
	kill -0 "$MPID" 2>/dev/null && ok || fail "full disk: the daemon died"
	stop_mount "$T/mnt" "$MPID"
	rc=$?
	[ $rc -eq 0 ] || [ $rc -eq 2 ] && ok || fail "full disk: daemon exit $rc"
	grep -m1 -i 'full' "$T/mlog" | sed 's/^/  daemon log: /'
	keep_log "$T/mlog" full-disk-mount.log
else
	fail "full disk: mount did not start: $(tail -3 "$T/mlog")"
fi

# 5. The filler is deleted: a rerun finishes with the reference bytes.
rm -f "$T/small/filler"
expect_rc 0 timeout 300 "$VIZFS" prefetch "$T/full.json" --workers 2 --quiet
expect_rc 0 "$VIZFS" export "$T/full.json" "$T/exp-full2" --quiet
same_tree "$T/ref" "$T/exp-full2" && ok || fail "after the filler was deleted: export differs from the reference"
umount "$T/small" && TMPFS="" && ok || fail "umount the tmpfs"
finish
