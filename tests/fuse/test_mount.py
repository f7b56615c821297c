#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Real mounts of vizfs checked with plain file calls against `vizfs export`.
"""Mounts sample pyramids and checks, with os calls, curl and nginx:

listing, stat sizes and bytes equal to the batch export; ENOENT for empty,
out-of-range and malformed tiles (and no render for them); EROFS for every
kind of write; single flight; readers racing the prefetcher; a real web
server; kill -9 in the middle of a prefetch; clean unmount by fusermount3,
SIGTERM and SIGINT; other tile_path_structure orders; daemon mode and the
command line.  Exit 77 when FUSE is unavailable.
"""
import errno
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.environ.get("VZ_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
VIZFS = os.environ.get("VIZFS") or os.path.join(SRC, "build", "vizfs")
FUSERMOUNT = shutil.which("fusermount3") or "/usr/bin/fusermount3"
# ASan builds are slower: scale the waits
SLOW = 3 if "asan" in VIZFS or os.environ.get("ASAN_OPTIONS") else 1

checks = 0
failures = 0
mounts = []  # every mount point used, for the final teardown
procs = []  # every daemon started
started = []  # every Mount, to show the logs of failed tests


def check(cond, what):
    global checks, failures
    checks += 1
    if not cond:
        failures += 1
        print("FAIL: " + what, file=sys.stderr, flush=True)
    return cond


def skip(msg):
    print("skip: " + msg)
    sys.exit(77)


def run(*args, **kw):
    return subprocess.run(list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw)


def write_config(path, indir, cache, zmax, parts=None, stats=None):
    all_stats = [
        {"name": "coverage", "weight_by": "area",
         "property": "area_per_pixel_area", "aggregation_method": "sum",
         "resampling_method": "average", "val_range": [0, 1],
         "palette": ["#f8ff1f1A", "#f8ff1f"], "nodata_val": 0,
         "nodata_color": "#ffffff00"},
        {"name": "polygon_count", "weight_by": "count",
         "property": "centroids_per_pixel", "aggregation_method": "sum",
         "resampling_method": "sum", "val_range": [0, None],
         "nodata_val": 0},
        {"name": "change_rate", "weight_by": "area",
         "property": "ChangeRateNet_myr-1", "aggregation_method": "min",
         "resampling_method": "mode", "val_range": [-2, 2],
         "palette": ["#ff0000", "#FF8C00", "#FFA07A", "#FFFF00", "#66CDAA",
                     "#AFEEEE", "#0000ff"],
         "nodata_val": 0},
    ]
    conf = {
        "dir_input": indir, "ext_input": ".gpkg", "tms_id": "WGS1984Quad",
        "z_range": [0, zmax], "tile_size": [128, 128],
        "simplify_tolerance": 0.1, "vizfs_cache_dir": cache,
        "statistics": all_stats[:stats] if stats else all_stats,
    }
    if parts:
        conf["tile_path_structure"] = parts
    with open(path, "w") as f:
        json.dump(conf, f, indent=1)


def tree_files(root):
    """Relative paths of the files and of the directories under root."""
    files, dirs = {}, set()
    for d, dn, fn in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel != ".":
            dirs.add(rel)
        for n in fn:
            p = os.path.join(d, n)
            files[os.path.relpath(p, root)] = os.stat(p).st_size
    return files, dirs


def read(path):
    with open(path, "rb") as f:
        return f.read()


def ogr_dump(path):
    r = run("ogrinfo", "-al", "-q", path)
    return r.returncode, r.stdout


def strip_datetime(csv_text):
    """staging_summary.csv without its staging-time column."""
    rows = []
    for line in csv_text.splitlines():
        cols = line.split(",")
        rows.append(",".join(cols[:3] + cols[4:]))
    return rows


def errno_of(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


class Mount:
    """A foreground daemon on a mount point, with its log."""

    def __init__(self, conf, mnt, *args, expect_ok=True):
        self.mnt = mnt
        os.makedirs(mnt, exist_ok=True)
        if mnt not in mounts:
            mounts.append(mnt)
        self.log = mnt + ".log"
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen(
            [VIZFS, "mount", "-f", *args, conf, mnt],
            stdout=self.logf, stderr=subprocess.STDOUT)
        procs.append(self.proc)
        started.append(self)
        deadline = time.time() + 30 * SLOW
        while time.time() < deadline:
            if os.path.ismount(mnt):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        text = open(self.log).read()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if re.search(r"fuse: |/dev/fuse|Operation not permitted", text):
            skip("mounting is refused here: " + text.strip()[-300:])
        raise RuntimeError("mount did not come up: " + text[-2000:])

    def path(self, rel=""):
        return os.path.join(self.mnt, rel)

    def status(self):
        with open(self.path(".vizfs/status")) as f:
            return json.load(f)

    def wait_status(self, cond, timeout):
        deadline = time.time() + timeout * SLOW
        st = self.status()
        while not cond(st) and time.time() < deadline:
            time.sleep(0.05)
            st = self.status()
        return st

    def wait_exit(self, what, timeout=30):
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            check(False, what + ": daemon still running")
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        return rc

    def unmount(self, how, what):
        """Unmount with fusermount3 or a signal; the daemon must exit 0,
        the mount must be gone and the log clean."""
        if how == "fusermount":
            r = run(FUSERMOUNT, "-u", self.mnt)
            check(r.returncode == 0, what + ": fusermount3 -u: " + r.stderr)
        else:
            self.proc.send_signal(how)
        rc = self.wait_exit(what)
        check(rc == 0, "%s: daemon exit status %s" % (what, rc))
        check(not os.path.ismount(self.mnt), what + ": still mounted")
        self.check_log(what)

    def check_log(self, what):
        text = open(self.log).read()
        bad = [line for line in text.splitlines()
               if re.search(r"vizfs: error|leak|==\d+==|runtime error",
                            line, re.I)]
        check(not bad, what + ": daemon log has errors: " +
              "\n".join(bad[:10]))


def compare_tree(m, ref_dir, what, bytes_too=True, gpkg_limit=None):
    """Listing, sizes and bytes of a mount against an export."""
    ref_files, ref_dirs = tree_files(ref_dir)
    got_files, got_dirs = tree_files(m.mnt)
    check(set(got_files) == set(ref_files),
          "%s: file lists differ: only mounted %s, only exported %s" % (
              what, sorted(set(got_files) - set(ref_files))[:5],
              sorted(set(ref_files) - set(got_files))[:5]))
    check(got_dirs == ref_dirs, "%s: directory lists differ" % what)
    bad_size = [p for p in ref_files if p in got_files and
                not p.endswith(".csv") and got_files[p] != ref_files[p]]
    check(not bad_size, "%s: stat sizes differ: %s" % (what, bad_size[:5]))
    if not bytes_too:
        return
    bad, gpkgs = [], 0
    for p in sorted(ref_files):
        if p.endswith(".csv") or p not in got_files:
            continue
        if p.endswith(".gpkg"):
            # GeoPackages carry timestamps: compare their content
            gpkgs += 1
            if gpkg_limit is not None and gpkgs > gpkg_limit:
                continue
            if ogr_dump(m.path(p)) != ogr_dump(os.path.join(ref_dir, p)):
                bad.append(p)
        elif read(m.path(p)) != read(os.path.join(ref_dir, p)):
            bad.append(p)
    check(not bad, "%s: bytes differ: %s" % (what, bad[:5]))
    check(len(ref_files) > 10, "%s: the export is too small" % what)


def test_cli(T, conf):
    for args, want, pat in [
            (["--help"], 0, "usage: vizfs mount"),
            (["--version"], 0, "vizfs "),
            (["--no-such-option"], 1, "unknown option"),
            ([], 1, "missing CONFIG"),
            ([conf], 1, "missing CONFIG or MOUNTPOINT"),
            ([conf, T, "x"], 1, "too many"),
            ([conf, T, "--workers", "0"], 1, "workers"),
            ([conf, T, "-o", "rw"], 1, "read-only"),
            ([conf, os.path.join(T, "nowhere")], 2, "nowhere"),
            ([conf, conf], 2, "not a directory"),
            ([os.path.join(T, "nope.json"), T], 2, "nope.json")]:
        r = run(VIZFS, "mount", *args)
        check(r.returncode == want, "mount %s: exit %d (want %d)" % (
            args, r.returncode, want))
        check(pat in r.stdout + r.stderr,
              "mount %s: output lacks '%s': %s" % (args, pat, r.stderr))
    empty = os.path.join(T, "cli-mnt")
    os.makedirs(empty, exist_ok=True)
    r = run(VIZFS, "mount", "-f", conf, empty, "-o", "no_such_fuse_option")
    check(r.returncode == 1, "bad -o option: exit %d" % r.returncode)
    check("no_such_fuse_option" in r.stderr, "bad -o option not named")
    check(not os.path.ismount(empty), "bad -o option mounted anyway")


def test_tree(T, conf, ref):
    """Listing, sizes, bytes, CSVs, ENOENT, EROFS; fusermount3 -u."""
    m = Mount(conf, os.path.join(T, "m-tree"))
    root = sorted(os.listdir(m.mnt))
    check(root == sorted(os.listdir(ref)), "root listing %s" % root)
    check(".vizfs" not in root, ".vizfs is listed")
    st = m.status()
    check(isinstance(st, dict) and "tiles_rendered" in st,
          "status JSON: %s" % st)
    compare_tree(m, ref, "tree")
    st = m.wait_status(lambda s: not s["prefetching"], 60)
    check(not st["prefetching"], "prefetch did not finish")
    check(st["errors"] == 0, "status errors %d" % st["errors"])
    done = sum(z["done"] for z in st["zooms"])
    check(done == sum(z["tiles"] for z in st["zooms"]) and done > 0,
          "status zooms: %s" % st["zooms"])
    check(read(m.path("rasters_summary.csv")) ==
          read(os.path.join(ref, "rasters_summary.csv")),
          "rasters_summary.csv differs from the export")
    check(strip_datetime(read(m.path("staging_summary.csv")).decode()) ==
          strip_datetime(read(os.path.join(ref, "staging_summary.csv"))
                         .decode()),
          "staging_summary.csv differs from the export")
    os.stat(m.path("rasters_summary.csv"))

    # names that are not tiles, or tiles without data: ENOENT, no render
    base = m.status()
    zmax = max(z["z"] for z in base["zooms"])
    xs = sorted(int(p.split("/")[3]) for p in
                tree_files(ref)[0] if p.startswith("geotiff/") and
                p.split("/")[2] == str(zmax))
    tms = "WGS1984Quad"
    g, w = "geotiff/%s" % tms, "web_tiles/coverage/%s" % tms
    missing = [
        g + "/0/1/0.tif",                        # empty tile
        g + "/%d/%d/0.tif" % (zmax, xs[-1] + 7),  # empty at max z
        w + "/0/1/0.png",
        "staged/%s/%d/%d/0.gpkg" % (tms, zmax, xs[-1] + 7),
        g + "/0/2/0.tif", g + "/0/0/1.tif",      # outside the matrix
        g + "/%d" % (zmax + 1), g + "/25", g + "/99",  # outside z_range
        "staged/%s/0" % tms, "staged/%s/0/0/0.gpkg" % tms,  # not max z
        g + "/0/0/00.tif", g + "/0/00/0.tif", g + "/00",  # leading zeros
        g + "/0/0/-0.tif", g + "/0/0/+0.tif", g + "/-1",
        g + "/0/0/0x0.tif", g + "/0/0/1e0.tif", g + "/0/0/ 0.tif",
        g + "/0/0/0 .tif", g + "/0/0/0.tif.tif", g + "/0/0/0.TIF",
        g + "/0/0/0.png", g + "/0/0/.tif", g + "/0/0/0",
        g + "/0/0/99999999999999999999.tif", g + "/0/4294967296",
        g + "/0/0/" + "9" * 200 + ".tif", g + "/" + "x" * 250,
        w + "/0/0/0.tif", "web_tiles/nostat", "web_tiles/coverage/Other",
        "geotiff/WorldCRS84Quad", "web_tiles/" + tms, "nothing",
        ".vizfs/nothing", "geotiff/%s/0/0/0.tif/x" % tms,
    ]
    for rel in missing:
        e = errno_of(os.stat, m.path(rel))
        check(e in (errno.ENOENT, errno.ENOTDIR),
              "stat %s: errno %s (want ENOENT)" % (rel, e))
    e = errno_of(os.stat, m.path(g + "/0/0/" + "1" * 300 + ".tif"))
    check(e in (errno.ENOENT, errno.ENAMETOOLONG), "300-char name: %s" % e)
    after = m.status()
    check(after["renders"] == base["renders"] and
          after["requests"] - base["requests"] <= 2,
          "names that are not tiles caused work: %s -> %s" % (
              (base["requests"], base["renders"]),
              (after["requests"], after["renders"])))

    # read-only
    f = m.path(g + "/0/0/0.tif")
    d = m.path(g + "/0")
    for what, fn, args in [
            ("open O_WRONLY", os.open, (f, os.O_WRONLY)),
            ("open O_RDWR", os.open, (f, os.O_RDWR)),
            ("open O_TRUNC", os.open, (f, os.O_RDONLY | os.O_TRUNC)),
            ("create", os.open, (m.path("new"), os.O_CREAT | os.O_WRONLY)),
            ("create in tree", os.open,
             (m.path(g + "/0/0/5.tif"), os.O_CREAT | os.O_WRONLY)),
            ("unlink", os.unlink, (f,)),
            ("rmdir", os.rmdir, (d,)),
            ("mkdir", os.mkdir, (m.path("newdir"),)),
            ("rename", os.rename, (f, m.path(g + "/0/0/1.tif"))),
            ("symlink", os.symlink, ("x", m.path("link"))),
            ("link", os.link, (f, m.path("hard"))),
            ("chmod", os.chmod, (f, 0o644)),
            ("truncate", os.truncate, (f, 0)),
            ("utime", os.utime, (f, (0, 0))),
            ("setxattr", os.setxattr, (f, "user.x", b"1")),
            ("mknod", os.mkfifo, (m.path("fifo"),))]:
        e = errno_of(fn, *args)
        check(e == errno.EROFS, "%s: errno %s (want EROFS)" % (what, e))
    check(read(f) == read(os.path.join(ref, g, "0/0/0.tif")),
          "tile changed after write attempts")
    m.unmount("fusermount", "tree")


def test_single_flight(T, conf, ref):
    """16 readers of one missing tile: one render.  SIGTERM, then the cache
    holds what was rendered and a new mount serves it."""
    m = Mount(conf, os.path.join(T, "m-flight"), "--no-prefetch")
    st0 = m.wait_status(lambda s: s["indexed"], 60)
    check(st0["indexed"] and st0["tiles_rendered"] == 0,
          "fresh --no-prefetch mount: %s" % st0)
    files = sorted(p for p in tree_files(ref)[0]
                   if p.startswith("web_tiles/") and p.endswith(".png"))
    zmax = max(int(p.split("/")[3]) for p in files)
    deep = [p for p in files if int(p.split("/")[3]) == zmax]
    target = deep[0]
    want = read(os.path.join(ref, target))
    results = [None] * 16
    bar = threading.Barrier(16)

    def reader(i):
        bar.wait()
        try:
            results[i] = read(m.path(target))
        except OSError as e:
            results[i] = e

    ts = [threading.Thread(target=reader, args=(i,)) for i in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(all(r == want for r in results),
          "16 readers got wrong bytes: %s" % [
              r if not isinstance(r, bytes) else len(r) for r in results])
    st1 = m.status()
    check(st1["tiles_rendered"] == 1,
          "16 readers of one tile: %d tiles rendered" % st1["tiles_rendered"])
    check(st1["misses"] - st1["shared"] == 1 and st1["misses"] >= 1,
          "one job for 16 readers: misses %d shared %d" % (
              st1["misses"], st1["shared"]))
    check(st1["errors"] == 0, "errors %d" % st1["errors"])
    # warm: the kernel keeps the entry, attributes and pages
    for _ in range(5):
        check(read(m.path(target)) == want, "warm read: bytes differ")
        os.stat(m.path(target))
    st = m.status()
    check(st["requests"] == st1["requests"],
          "warm reads reached the service: %d -> %d requests" % (
              st1["requests"], st["requests"]))

    # every file of one other tile at once: they share one raster job
    tile = deep[1].split("/")[3:]
    tpath = "/".join(tile)[:-4]
    # (not polygon_count: its colour range needs every tile of the zoom)
    names = [p for p in tree_files(ref)[0]
             if (p.endswith(tpath + ".png") or p.endswith(tpath + ".tif") or
                 p.endswith(tpath + ".gpkg")) and "polygon_count" not in p]
    names = (names * 16)[:16]
    got = [None] * 16
    bar = threading.Barrier(16)

    def reader2(i):
        bar.wait()
        try:
            got[i] = os.stat(m.path(names[i])).st_size
        except OSError as e:
            got[i] = e

    ts = [threading.Thread(target=reader2, args=(i,)) for i in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    sizes = [os.stat(os.path.join(ref, n)).st_size for n in names]
    check(all(g == s or n.endswith(".gpkg")
              for g, s, n in zip(got, sizes, names)),
          "sizes of one tile's files: %s vs %s" % (got, sizes))
    st2 = m.status()
    check(st2["tiles_rendered"] == 2,
          "all files of one tile: %d tiles rendered (want 2 in all)" %
          st2["tiles_rendered"])
    m.unmount(signal.SIGTERM, "SIGTERM")

    r = run(VIZFS, "info", conf, "--json")
    check(r.returncode == 0, "info after SIGTERM: " + r.stderr)
    if r.returncode == 0:
        info = json.loads(r.stdout)
        check(info["fresh"] and info["staged"] and info["rendered"] >= 2,
              "cache after SIGTERM: %s" % r.stdout[:300])
    m = Mount(conf, os.path.join(T, "m-flight"), "--no-prefetch")
    check(read(m.path(target)) == want, "remount: bytes differ")
    st = m.status()
    check(st["tiles_rendered"] == 0,
          "remount rendered %d tiles again" % st["tiles_rendered"])
    m.unmount(signal.SIGINT, "SIGINT")


def test_prefetch_readers(T, conf, ref):
    """Many readers over random tiles while the prefetcher runs."""
    m = Mount(conf, os.path.join(T, "m-race"))
    ref_files = sorted(p for p in tree_files(ref)[0]
                       if p.endswith(".png") or p.endswith(".tif"))
    bad, errs = [], []
    prefetching = m.status()["prefetching"]

    def reader(seed):
        rnd = random.Random(seed)
        for p in rnd.sample(ref_files, min(40, len(ref_files))):
            try:
                if read(m.path(p)) != read(os.path.join(ref, p)):
                    bad.append(p)
            except OSError as e:
                errs.append("%s: %s" % (p, e))

    ts = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not bad, "bytes differ while prefetching: %s" % bad[:5])
    check(not errs, "errors while prefetching: %s" % errs[:5])
    st = m.wait_status(lambda s: not s["prefetching"], 120)
    check(not st["prefetching"] and st["errors"] == 0,
          "prefetch end: prefetching %s errors %d" % (st["prefetching"],
                                                      st["errors"]))
    print("prefetch race: prefetcher %s when the readers started" %
          ("running" if prefetching else "already done"))
    compare_tree(m, ref, "after prefetch", bytes_too=False)
    m.unmount("fusermount", "race")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def curl(url, out):
    r = run("curl", "-s", "-o", out, "-D", out + ".hdr", "-w",
            "%{http_code}", "--max-time", str(60 * SLOW), url)
    hdr = open(out + ".hdr").read() if os.path.exists(out + ".hdr") else ""
    m = re.search(r"^Content-Length:\s*(\d+)", hdr, re.M | re.I)
    return r.stdout, int(m.group(1)) if m else None


def test_nginx(T, conf, ref):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    curl_bin = shutil.which("curl")
    if not os.path.exists(nginx) or not curl_bin:
        print("note: nginx or curl missing, web server test skipped")
        return
    m = Mount(conf, os.path.join(T, "m-web"), "--no-prefetch")
    pre = os.path.join(T, "nginx")
    os.makedirs(os.path.join(pre, "tmp"), exist_ok=True)
    port = free_port()
    with open(os.path.join(pre, "nginx.conf"), "w") as f:
        f.write("""
user root;
worker_processes 1;
daemon off;
pid %(p)s/nginx.pid;
error_log %(p)s/error.log;
events { worker_connections 64; }
http {
    access_log %(p)s/access.log;
    client_body_temp_path %(p)s/tmp/body;
    proxy_temp_path %(p)s/tmp/proxy;
    fastcgi_temp_path %(p)s/tmp/fastcgi;
    uwsgi_temp_path %(p)s/tmp/uwsgi;
    scgi_temp_path %(p)s/tmp/scgi;
    types { image/png png; image/tiff tif; text/csv csv; }
    default_type application/octet-stream;
    sendfile on;
    server {
        listen 127.0.0.1:%(port)d;
        root %(root)s;
        location / { }
    }
}
""" % {"p": pre, "port": port, "root": m.mnt})
    web = subprocess.Popen([nginx, "-p", pre + "/", "-e",
                            os.path.join(pre, "error.log"), "-c",
                            os.path.join(pre, "nginx.conf")],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 15
        up = False
        while time.time() < deadline and web.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                up = True
                break
            except OSError:
                time.sleep(0.05)
        if not check(up, "nginx did not start: %s" % (
                web.stderr.read() if web.poll() is not None else "")):
            return
        url = "http://127.0.0.1:%d/" % port
        files = sorted(tree_files(ref)[0])
        zmax = max(int(p.split("/")[3]) for p in files
                   if p.startswith("web_tiles/"))
        cold = [p for p in files if p.startswith("web_tiles/") and
                int(p.split("/")[3]) == zmax][-1]
        top = "geotiff/WGS1984Quad/0/0/0.tif"
        for what, rel in [("cold max-z tile", cold), ("warm tile", cold),
                          ("cold z0 GeoTIFF", top), ("warm z0", top)]:
            out = os.path.join(T, "curl.out")
            code, length = curl(url + rel, out)
            want = read(os.path.join(ref, rel))
            check(code == "200", "%s: HTTP %s" % (what, code))
            check(length == len(want), "%s: Content-Length %s, want %d" % (
                what, length, len(want)))
            check(os.path.exists(out) and read(out) == want,
                  "%s: body differs" % what)
        for rel in ["geotiff/WGS1984Quad/0/1/0.tif",
                    "web_tiles/coverage/WGS1984Quad/0/0/00.png"]:
            code, _ = curl(url + rel, os.path.join(T, "curl.404"))
            check(code == "404", "%s: HTTP %s (want 404)" % (rel, code))
    finally:
        if web.poll() is None:
            web.send_signal(signal.SIGQUIT)
            try:
                web.wait(10)
            except subprocess.TimeoutExpired:
                web.kill()
                web.wait()
    m.unmount("fusermount", "nginx")


def test_kill9(T, conf, ref):
    """SIGKILL in the middle of a prefetch; the next mount is correct."""
    m = Mount(conf, os.path.join(T, "m-kill"), "--workers", "1")
    st = m.wait_status(lambda s: s["tiles_rendered"] >= 3 or
                       not s["prefetching"], 60)
    mid = st["prefetching"]
    m.proc.kill()
    m.wait_exit("kill -9")
    check(mid, "prefetch finished before kill -9 (%d tiles): the pyramid "
          "is too small for this test" % st["tiles_rendered"])
    run(FUSERMOUNT, "-u", "-z", m.mnt)
    check(not os.path.ismount(m.mnt), "dead mount still there")
    m = Mount(conf, os.path.join(T, "m-kill"))
    compare_tree(m, ref, "after kill -9", gpkg_limit=8)
    st = m.wait_status(lambda s: not s["prefetching"], 120)
    check(st["errors"] == 0, "after kill -9: %d errors" % st["errors"])
    m.unmount(signal.SIGTERM, "after kill -9")


def test_layouts(T, indir):
    """Other tile_path_structure orders: same files as export."""
    for name, parts, stats in [("zxy", ["z", "x", "y"], 1),
                               ("yxz", ["tms", "style", "y", "x", "z"], 3)]:
        conf = os.path.join(T, name + ".json")
        write_config(conf, indir, os.path.join(T, "c-" + name), 9, parts,
                     stats)
        ref = os.path.join(T, "out-" + name)
        r = run(VIZFS, "export", conf, ref, "--quiet")
        if not check(r.returncode == 0, name + " export: " + r.stderr):
            continue
        write_config(conf, indir, os.path.join(T, "c-m-" + name), 9,
                     parts, stats)
        m = Mount(conf, os.path.join(T, "m-" + name), "--no-prefetch")
        if name == "zxy":
            check(os.path.isfile(m.path("web_tiles/0/0/0.png")),
                  "zxy: web_tiles/0/0/0.png missing")
        compare_tree(m, ref, name)
        m.unmount("fusermount", name)


def names_only(root):
    """Relative paths under root from the listing alone (no stat)."""
    out = set()
    for d, dn, fn in os.walk(root):
        for n in dn + fn:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def test_listing(T):
    """Listings of wide directories (more entries than one readdir
    reply holds) show exactly the exported names and render nothing."""
    indir = os.path.join(T, "inwide")
    r = run(VIZFS, "sample", os.path.join(indir, "a.gpkg"), "--count",
            "700", "--bbox", "-47,70.2,-44,70.201", "--cell", "200",
            "--seed", "5", "--quiet")
    if not check(r.returncode == 0, "wide sample: " + r.stderr):
        return
    for name, parts in [("wide", None),
                        ("wide-yxz", ["tms", "style", "y", "x", "z"])]:
        conf = os.path.join(T, name + ".json")
        write_config(conf, indir, os.path.join(T, "c-ref-" + name), 12,
                     parts)
        ref = os.path.join(T, "out-" + name)
        r = run(VIZFS, "export", conf, ref, "--quiet")
        if not check(r.returncode == 0, name + " export: " + r.stderr):
            continue
        write_config(conf, indir, os.path.join(T, "c-" + name), 12, parts)
        m = Mount(conf, os.path.join(T, "m-" + name), "--no-prefetch")
        got = names_only(m.mnt)
        want = names_only(ref)
        check(got == want, "%s: listing differs: only mounted %s, only "
              "exported %s" % (name, sorted(got - want)[:5],
                               sorted(want - got)[:5]))
        widest = max(len(os.listdir(os.path.join(ref, p)))
                     for p in want if os.path.isdir(os.path.join(ref, p)))
        check(widest > 60, "%s: widest directory has only %d entries" % (
            name, widest))
        st = m.status()
        check(st["tiles_rendered"] == 0 and st["requests"] == 0,
              "%s: listing rendered %d tiles (%d requests)" % (
                  name, st["tiles_rendered"], st["requests"]))
        m.unmount("fusermount", name)


def test_daemon(T, conf):
    """Without -f: the command returns once the mount is up."""
    mnt = os.path.join(T, "m-daemon")
    os.makedirs(mnt, exist_ok=True)
    mounts.append(mnt)
    r = run(VIZFS, "mount", conf, mnt, timeout=60 * SLOW)
    check(r.returncode == 0, "daemon mode: exit %d: %s" % (r.returncode,
                                                            r.stderr))
    check(os.path.ismount(mnt), "daemon mode: not mounted on return")
    if not os.path.ismount(mnt):
        return
    check(os.path.isfile(os.path.join(mnt, "geotiff/WGS1984Quad/0/0/0.tif")),
          "daemon mode: z0 tile missing")
    r = run(VIZFS, "mount", "-f", conf, mnt, timeout=60 * SLOW)
    check(r.returncode == 2 and "already a mount point" in r.stderr,
          "second mount on a mount point: exit %d: %s" % (r.returncode,
                                                         r.stderr))
    pids = []
    for p in os.listdir("/proc"):
        try:
            argv = open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")
        except OSError:
            continue
        if p.isdigit() and mnt.encode() in argv and b"mount" in argv:
            pids.append(int(p))
    check(len(pids) == 1, "daemon process: %s" % pids)
    r = run(FUSERMOUNT, "-u", mnt)
    check(r.returncode == 0, "daemon unmount: " + r.stderr)
    deadline = time.time() + 30 * SLOW
    while pids and time.time() < deadline and os.path.exists(
            "/proc/%d" % pids[0]):
        time.sleep(0.05)
    check(not pids or not os.path.exists("/proc/%d" % pids[0]),
          "daemon still running after unmount")


def main():
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        skip("cannot open /dev/fuse: %s" % e.strerror)
    if not os.path.exists(FUSERMOUNT):
        skip("fusermount3 not installed")
    if not os.access(VIZFS, os.X_OK):
        print("vizfs binary not found: " + VIZFS, file=sys.stderr)
        return 1
    T = tempfile.mkdtemp(prefix="vizfs-fuse.")
    t0 = time.time()
    try:
        small = os.path.join(T, "in")
        big = os.path.join(T, "inbig")
        for d, n, seed in [(small, 500, 7), (big, 50000, 3)]:
            r = run(VIZFS, "sample", os.path.join(d, "a.gpkg"), "--count",
                    str(n), "--seed", str(seed), "--quiet")
            if r.returncode:
                print("sample failed: " + r.stderr, file=sys.stderr)
                return 1
        # the batch output every mount is compared with (its own cache)
        refs = {}
        for name, d, zmax in [("small", small, 12), ("big", big, 15)]:
            conf = os.path.join(T, "ref-%s.json" % name)
            write_config(conf, d, os.path.join(T, "c-ref-" + name), zmax)
            refs[name] = os.path.join(T, "out-" + name)
            r = run(VIZFS, "export", conf, refs[name], "--quiet")
            if r.returncode:
                print("export failed: " + r.stderr, file=sys.stderr)
                return 1

        def fresh(name, d, zmax):
            conf = os.path.join(T, name + ".json")
            cache = os.path.join(T, "c-" + name)
            write_config(conf, d, cache, zmax)
            return conf, cache

        tests = [
            ("cli", lambda: test_cli(T, fresh("cli", small, 12)[0])),
            ("tree", lambda: test_tree(T, fresh("tree", small, 12)[0],
                                       refs["small"])),
            ("single flight", lambda: test_single_flight(
                T, fresh("flight", small, 12)[0], refs["small"])),
            ("nginx", lambda: test_nginx(T, fresh("web", small, 12)[0],
                                         refs["small"])),
            ("prefetch race", lambda: test_prefetch_readers(
                T, fresh("race", big, 15)[0], refs["big"])),
            ("kill -9", lambda: test_kill9(T, fresh("kill", big, 15)[0],
                                           refs["big"])),
            ("layouts", lambda: test_layouts(T, small)),
            ("listing", lambda: test_listing(T)),
            ("daemon", lambda: test_daemon(T, fresh("daemon", small, 12)[0])),
        ]
        only = sys.argv[1:]
        for name, fn in tests:
            if only and name not in only:
                continue
            t = time.time()
            before = failures
            del started[:]
            try:
                fn()
            except Exception as e:  # a crash is one failed check
                check(False, "%s: %s: %s" % (name, type(e).__name__, e))
            print("%-14s %s (%.1f s)" % (
                name, "ok" if failures == before else "FAILED",
                time.time() - t), flush=True)
            if failures != before:
                for m in started:
                    tail = open(m.log).read().splitlines()[-40:]
                    print("--- %s (daemon exit status %s):\n%s" % (
                        m.log, m.proc.poll(), "\n".join(tail)),
                        file=sys.stderr)
    finally:
        for mnt in mounts:
            if os.path.ismount(mnt):
                subprocess.run([FUSERMOUNT, "-u", "-z", mnt],
                               stderr=subprocess.DEVNULL)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if failures and os.environ.get("VZ_KEEP_TMP"):
            print("kept " + T)
        else:
            shutil.rmtree(T, ignore_errors=True)
    print("fuse: %d checks, %d failed (%.1f s)" % (checks, failures,
                                                   time.time() - t0))
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures or not checks else 0


if __name__ == "__main__":
    sys.exit(main())
