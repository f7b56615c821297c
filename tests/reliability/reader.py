#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Concurrent tile reader of the reliability suite: many threads read random
existing and non-existing tiles from a mounted tree or an HTTP server and
compare every byte with a reference tree.

  reader.py --ref DIR --root MNT|http://HOST:PORT [--threads 16]
            [--count 5000] [--missing 0.2] [--seed S] [--pid PID]
            [--warmup 500] [--load] [--ready FILE]

Existing tiles are the files of the reference tree; non-existing ones are
tile paths at zooms and x/y inside the matrix with no file in the reference,
plus a few malformed names.  An existing tile must come back with exactly the
reference bytes; a missing one must be ENOENT (HTTP 404).  Anything else is an
unexpected error.  With --pid the daemon's RSS is sampled after --warmup
requests and at the end.  --load: ignore errors (the daemon is being
killed); stop on SIGTERM or after --count.  Wrong bytes fail in both
modes.

Prints one JSON line with the counts; exit status 0 when there were no
wrong bytes and no unexpected errors.
"""
import argparse
import errno
import http.client
import json
import os
import random
import re
import signal
import sys
import threading
import time
import urllib.parse


def rss_kib(pid):
    """{"rss": VmRSS, "anon": RssAnon, "file": RssFile + RssShmem} in KiB,
    or None.  "file" is mostly the LMDB map's pages (page cache, or shmem
    when the cache is on a tmpfs)."""
    names = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file",
             "RssShmem:": "file"}
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                w = line.split()
                if w and w[0] in names:
                    k = names[w[0]]
                    out[k] = out.get(k, 0) + int(w[1])
    except OSError:
        return None
    return out or None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--missing", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--load", action="store_true")
    ap.add_argument("--ready", help="create this file once reading starts")
    ap.add_argument("--partial-csv", action="store_true",
                    help="the pyramid is still being built: "
                    "rasters_summary.csv must hold the reference header and "
                    "only reference rows (a subset), not all of them")
    a = ap.parse_args()

    existing = []
    for d, _, files in os.walk(a.ref):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), a.ref)
            if rel.startswith(("web_tiles/", "geotiff/")):
                existing.append(rel)
    existing.sort()
    existing.append("rasters_summary.csv")
    have = set(existing)
    # tile path templates: prefix/z/x/y.ext, with the extent seen per zoom
    pat = re.compile(r"^(.*)/(\d+)/(\d+)/(\d+)\.(png|tif)$")
    prefixes = {}
    zooms = {}
    for p in existing:
        m = pat.match(p)
        if not m:
            continue
        prefixes[(m.group(1), m.group(5))] = True
        z, x, y = int(m.group(2)), int(m.group(3)), int(m.group(4))
        lo = zooms.setdefault(z, [x, x, y, y])
        lo[0], lo[1] = min(lo[0], x), max(lo[1], x)
        lo[2], lo[3] = min(lo[2], y), max(lo[3], y)
    prefixes = sorted(prefixes)
    rng = random.Random(a.seed)
    missing = []
    while len(missing) < 400:
        pre, ext = rng.choice(prefixes)
        z = rng.choice(sorted(zooms))
        x0, x1, y0, y1 = zooms[z]
        # near the data (misses the index but not the matrix) or far away
        if rng.random() < 0.7:
            x = rng.randint(max(0, x0 - 3), x1 + 3)
            y = rng.randint(max(0, y0 - 3), y1 + 3)
        else:
            x = rng.randint(0, 2 ** z)
            y = rng.randint(0, 2 ** z // 2 + 1)
        p = "%s/%d/%d/%d.%s" % (pre, z, x, y, ext)
        if p not in have:
            missing.append(p)
    # malformed names are missing too (the path parser's job)
    missing += ["web_tiles/x.png", "geotiff/" + "9" * 30 + ".tif",
                existing[0] + ".bak", "no_such_dir/0/0/0.png"]

    def csv_subset(body, ref):
        got, want = body.decode().splitlines(), ref.decode().splitlines()
        return bool(got) and got[0] == want[0] and set(got[1:]) <= set(want[1:])

    refcache = {}
    reflock = threading.Lock()

    def ref_bytes(p):
        with reflock:
            b = refcache.get(p)
        if b is None:
            with open(os.path.join(a.ref, p), "rb") as f:
                b = f.read()
            with reflock:
                refcache[p] = b
        return b

    http_base = None
    if a.root.startswith("http://"):
        http_base = urllib.parse.urlparse(a.root)

    lock = threading.Lock()
    st = {"requests": 0, "ok": 0, "bytes": 0, "missing_ok": 0, "wrong": 0,
          "unexpected": 0, "errors": []}
    next_i = [0]
    rss = {"warm": None}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def note_error(msg):
        with lock:
            st["unexpected"] += 1
            if len(st["errors"]) < 10:
                st["errors"].append(msg)

    def fetch_fs(p):
        """(status, bytes): 200 with content or 404 for ENOENT."""
        try:
            with open(os.path.join(a.root, p), "rb") as f:
                return 200, f.read()
        except FileNotFoundError:
            return 404, None
        except NotADirectoryError:
            return 404, None

    def worker(tid):
        trng = random.Random(a.seed * 1000 + tid)
        conn = None
        while not stop.is_set():
            with lock:
                i = next_i[0]
                if i >= a.count:
                    return
                next_i[0] += 1
            if i == a.warmup and a.pid:
                rss["warm"] = rss_kib(a.pid)
            want = trng.random() >= a.missing
            p = trng.choice(existing) if want else trng.choice(missing)
            try:
                if http_base:
                    if conn is None:
                        conn = http.client.HTTPConnection(
                            http_base.hostname, http_base.port, timeout=60)
                    conn.request("GET", "/" + p)
                    r = conn.getresponse()
                    body = r.read()
                    status = r.status
                    if r.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    if status != 200:
                        body = None
                else:
                    status, body = fetch_fs(p)
            except Exception as e:  # noqa: BLE001 - every error counts
                if conn is not None:
                    conn.close()
                    conn = None
                if not a.load:
                    note_error("%s: %s" % (p, e))
                with lock:
                    st["requests"] += 1
                continue
            with lock:
                st["requests"] += 1
            if want:
                if status != 200:
                    if not a.load:
                        note_error("%s: status %d, want the tile" % (p, status))
                elif body != ref_bytes(p) and not (
                        a.partial_csv and p == "rasters_summary.csv"
                        and csv_subset(body, ref_bytes(p))):
                    with lock:
                        st["wrong"] += 1
                        if len(st["errors"]) < 10:
                            st["errors"].append("%s: wrong bytes (%d, want %d)"
                                                % (p, len(body),
                                                   len(ref_bytes(p))))
                else:
                    with lock:
                        st["ok"] += 1
                        st["bytes"] += len(body)
            else:
                if status == 404:
                    with lock:
                        st["missing_ok"] += 1
                elif not a.load:
                    note_error("%s: status %d, want not found" % (p, status))

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(i,), daemon=True)
          for i in range(a.threads)]
    for t in ts:
        t.start()
    if a.ready:
        open(a.ready, "w").close()
    for t in ts:
        while t.is_alive():
            t.join(0.2)
    st["seconds"] = round(time.monotonic() - t0, 2)
    if a.pid:
        for when, r in (("warm", rss["warm"]), ("end", rss_kib(a.pid))):
            for k, v in (r or {}).items():
                st["%s_%s_kib" % (k, when)] = v
    print(json.dumps(st, sort_keys=True))
    sys.stdout.flush()
    if a.load:
        return 0 if st["wrong"] == 0 else 1
    return 0 if st["wrong"] == 0 and st["unexpected"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
