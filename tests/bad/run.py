# SPDX-License-Identifier: Apache-2.0
# Runs vizfs over the generated bad-input corpus: clear errors, good tiles.
"""Bad-input test (meson test 'bad-input', suite 'reliability').

For every case of gen_corpus.py, each registered check runs the case and
records failures.  A check is a function check(case, ctx):

  case   the Case dict (name, kind, config, rc, err, good, ref, note, ...);
         for kind "path" also path (the malformed tile path) and expect
         ("ENOENT": not a tile);
  ctx    the Runner: ctx.vizfs, ctx.tmp, ctx.ok(), ctx.fail(case, msg),
         ctx.run(args) -> (rc, stdout, stderr), ctx.ref_tiles(case) ->
         {tile path: reference bytes}.

Built in: check_prefetch and check_render (batch commands) for the vector
and config cases, check_paths for the path cases.  A mount check is added
by dropping a module check_mount.py with a function check(case, ctx) next
to this file (or calling register() from a wrapper): it is then run for
every case, after the batch checks.  What it should assert, per kind:

  vector  mount case["config"] (in a fresh cache); every path of
          ctx.ref_tiles(case) reads back those bytes when case["good"];
          the daemon log names what case["err"] lists; unmount is clean
  config  the mount is refused: exit 2, stderr matches case["err"]
  path    on a mount of case["config"], case["path"] is ENOENT (lookup,
          stat, open) and nothing is rendered (run_paths compares `vizfs
          info` before and after all path cases)

Usage: run.py [CASE-NAME-PATTERN...]  (e.g. 'cfg-*' 'path-*')      (env VIZFS = the vizfs binary)
Exit 0 when all checks pass, 1 otherwise, 77 when python3-gdal is missing.
"""

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import gen_corpus
except ImportError as e:  # no python3-gdal
    print("skip: cannot import the corpus generator: %s" % e)
    sys.exit(77)

TIMEOUT = 180  # seconds per command; a hang fails the case
CRASH = re.compile(r"AddressSanitizer|runtime error:|Segmentation|"
                   r"core dumped|Assertion .* failed|double free|"
                   r"malloc\(\)|stack smashing")

CHECKS = []


def register(fn):
    CHECKS.append(fn)
    return fn


class Runner:
    def __init__(self, vizfs, tmp):
        self.vizfs = vizfs
        self.tmp = tmp
        self.checks = 0
        self.failed = 0
        self.skipped = []
        self.prefix = []  # e.g. setpriv to run as another user
        self.timeout = TIMEOUT
        self._refs = {}

    def ok(self):
        self.checks += 1

    def fail(self, case, msg):
        self.checks += 1
        self.failed += 1
        print("FAIL: %s: %s" % (case["name"], msg), flush=True)

    def expect(self, case, cond, msg):
        if cond:
            self.ok()
        else:
            self.fail(case, msg)
        return cond

    def run(self, args):
        """Run vizfs ARGS; rc -1000 on a timeout."""
        try:
            p = subprocess.run(self.prefix + [self.vizfs] + args,
                               capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            return -1000, e.stdout or b"", e.stderr or b""
        return p.returncode, p.stdout, p.stderr

    def sane(self, case, what, rc, err):
        """No crash, no hang, no sanitizer report."""
        text = err.decode("utf-8", "replace")
        if rc == -1000:
            self.fail(case, "%s: no answer within %d s (hang)" %
                      (what, self.timeout))
            return False
        if rc < 0:
            self.fail(case, "%s: killed by signal %d" % (what, -rc))
            return False
        m = CRASH.search(text)
        if m:
            self.fail(case, "%s: crash report in stderr: %s" %
                      (what, text[max(0, m.start() - 200):m.end() + 400]))
            return False
        self.ok()
        return True

    def ref_tiles(self, case):
        """Tiles of the good file alone: {path: bytes} for the three
        deepest zooms (GeoTIFF, and PNGs of the fixed-range statistics;
        polygon_count has an automatic range that depends on the whole
        zoom level, so its PNGs legitimately change with other data)."""
        cfg = case["ref"]
        if cfg in self._refs:
            return self._refs[cfg]
        prefix, self.prefix = self.prefix, []
        try:
            return self._build_ref(cfg)
        finally:
            self.prefix = prefix

    def _build_ref(self, cfg):
        conf = json.load(open(cfg))
        zmax = conf["z_range"][1]
        rc, _, err = self.run(["prefetch", cfg, "--quiet"])
        if rc:
            raise RuntimeError("reference build %s failed: %s" %
                               (cfg, err.decode()))
        exp = cfg + "-export"
        rc, _, err = self.run(["export", cfg, exp, "--quiet"])
        if rc:
            raise RuntimeError("reference export %s failed: %s" %
                               (cfg, err.decode()))
        tiles = {}
        tms = conf["tms_id"]
        for z in range(zmax - 2, zmax + 1):
            zdir = os.path.join(exp, "geotiff", tms, str(z))
            for x in sorted(os.listdir(zdir)):
                for yf in sorted(os.listdir(os.path.join(zdir, x))):
                    y = yf[:-4]
                    rel = "%s/%d/%s/%s" % (tms, z, x, y)
                    for p in ("geotiff/%s.tif" % rel,
                              "web_tiles/coverage/%s.png" % rel,
                              "web_tiles/cls/%s.png" % rel):
                        with open(os.path.join(exp, p), "rb") as f:
                            tiles[p] = f.read()
        if not tiles:
            raise RuntimeError("reference %s has no tiles" % cfg)
        self._refs[cfg] = tiles
        return tiles


def matches_all(text, pats):
    return [p for p in pats if not re.search(p, text)]


def info_json(ctx, case, cfg, extra=()):
    rc, out, err = ctx.run(["info", cfg, "--json"] + list(extra))
    if not ctx.sane(case, "info", rc, err):
        return None
    if not ctx.expect(case, rc == 0, "info --json exit %d: %s" %
                      (rc, err.decode(errors="replace")[-300:])):
        return None
    try:
        return json.loads(out)
    except ValueError as e:
        ctx.fail(case, "info --json is not JSON (%s): %r" % (e, out[:200]))
        return None


def tile_zoom(p):
    return int(p.split("/")[-3])


def compare_tiles(ctx, case, cache_args, what, select=None):
    """Render the reference tiles (those select(path) accepts) with the
    case's config and compare bytes."""
    ref = ctx.ref_tiles(case)
    if select:
        ref = {p: v for p, v in ref.items() if select(p)}
    bad = []
    for p, want in ref.items():
        out = os.path.join(ctx.outdir, "tile.out")
        rc, _, err = ctx.run(["render", case["config"], p, "-o", out] +
                             cache_args)
        if not ctx.sane(case, "render " + p, rc, err):
            return
        got = open(out, "rb").read() if rc == 0 and \
            os.path.exists(out) else None
        if got != want:
            bad.append("%s (exit %d%s)" % (p, rc, ", bytes differ"
                                           if got is not None else ""))
        if os.path.exists(out):
            os.unlink(out)
    ctx.expect(case, not bad, "%s: %d of %d good tiles differ from the "
               "build of the good file alone: %s" %
               (what, len(bad), len(ref), "; ".join(bad[:4])))


def expect_rc(ctx, case, what, rc, err, again=False):
    """Exit status and stderr as the case wants.  again: a rerun, where
    warnings from staging are not repeated (staging is cached) but
    errors are (a failed input is retried)."""
    want = case["rc"]
    text = err.decode("utf-8", "replace")
    if want is None:
        ok = rc in (0, 2)
    else:
        ok = rc == want
    ctx.expect(case, ok, "%s: exit %d, want %s; stderr: %s" %
               (what, rc, "0 or 2" if want is None else want,
                text.strip()[-600:]))
    extra = [p for p in case.get("noerr", []) if re.search(p, text)]
    ctx.expect(case, not extra, "%s: stderr mentions %s: %s" %
               (what, extra, text.strip()[-600:]))
    missing = matches_all(text, case["err"]) if not again or rc else []
    ctx.expect(case, not missing,
               "%s: stderr does not name %s; stderr: %s" %
               (what, ", ".join(repr(m) for m in missing),
                text.strip()[-600:]))


def cache_dir(case):
    return json.load(open(case["config"])).get("vizfs_cache_dir")


@register
def check_prefetch(case, ctx):
    """prefetch twice, info, and the good tiles after each run."""
    if case["kind"] not in ("vector", "config"):
        return
    cfg = case["config"]
    if case["kind"] == "vector":
        shutil.rmtree(cache_dir(case), ignore_errors=True)
    t0 = time.time()
    rc, _, err = ctx.run(["prefetch", cfg, "--quiet"])
    dt = time.time() - t0
    if not ctx.sane(case, "prefetch", rc, err):
        return
    expect_rc(ctx, case, "prefetch", rc, err)
    print("  %-24s prefetch exit %d in %.1f s" % (case["name"], rc, dt))
    if case["kind"] == "config":
        cmds = [["render", cfg, "geotiff/WGS1984Quad/0/0/0.tif"]]
        if not case.get("late"):
            cmds.append(["info", cfg])
        for cmd in cmds:
            rc2, _, err2 = ctx.run(cmd)
            if ctx.sane(case, cmd[0], rc2, err2):
                expect_rc(ctx, case, cmd[0], rc2, err2)
        return
    if case.get("info_rc"):
        rc2, _, err2 = ctx.run(["info", cfg])
        if ctx.sane(case, "info", rc2, err2):
            expect_rc(ctx, case, "info", rc2, err2)
        return
    first = info_json(ctx, case, cfg)
    if first is not None:
        want = case.get("info", {})
        ctx.expect(case, all(first.get(k) == v for k, v in want.items()),
                   "info --json: want %s, got %s" %
                   (want, {k: first.get(k) for k in want}))
        if case["name"] == "antimeridian":
            print("  antimeridian (not split yet): %s tiles at z%d" %
                  (first["zooms"][-1]["tiles"], first["zooms"][-1]["z"]))
    if first is not None and rc == 0:
        ctx.expect(case, first.get("staged") and first.get("fresh") and
                   first.get("tiles") == first.get("rendered"),
                   "info after a clean prefetch: staged %s fresh %s "
                   "tiles %s rendered %s" %
                   (first.get("staged"), first.get("fresh"),
                    first.get("tiles"), first.get("rendered")))
    if case.get("good"):
        compare_tiles(ctx, case, [], "after prefetch")
    # A second run: same outcome, no corruption, nothing redone wrongly.
    rc2, _, err2 = ctx.run(["prefetch", cfg, "--quiet"])
    if not ctx.sane(case, "second prefetch", rc2, err2):
        return
    expect_rc(ctx, case, "second prefetch", rc2, err2, again=True)
    second = info_json(ctx, case, cfg)
    if first is not None and second is not None:
        keys = ("tiles", "rendered", "pngs", "polygons", "skipped")
        ctx.expect(case, all(first.get(k) == second.get(k) for k in keys),
                   "info changed between two prefetch runs: %s -> %s" %
                   ({k: first.get(k) for k in keys},
                    {k: second.get(k) for k in keys}))
    if case.get("good") and rc2:
        compare_tiles(ctx, case, [], "after a second prefetch",
                      lambda p: p.startswith("geotiff/"))


@register
def check_render(case, ctx):
    """render on demand into a new cache: the good tiles come out right
    and the bad data is reported."""
    if case["kind"] != "vector" or not case.get("good"):
        return
    cache = os.path.join(ctx.tmp, "render-cache", case["name"])
    shutil.rmtree(cache, ignore_errors=True)
    # the shallowest compared zoom only: on demand, it needs the others
    top = min(tile_zoom(p) for p in ctx.ref_tiles(case))
    compare_tiles(ctx, case, ["--cache", cache], "render into a new cache",
                  lambda p: tile_zoom(p) == top)


def path_cases(root, ref_cfg):
    """Malformed paths next to a real tile (TMS, z, x, y) of the
    reference config: any lenient parse would hit a tile with data."""
    conf = json.load(open(ref_cfg))
    tms = conf["tms_id"]
    zmax = conf["z_range"][1]
    exp = ref_cfg + "-export"
    z = zmax - 1
    x = sorted(os.listdir(os.path.join(exp, "geotiff", tms, str(z))))[0]
    y = sorted(os.listdir(os.path.join(exp, "geotiff", tms, str(z),
                                       x)))[0][:-4]
    g = "geotiff/%s" % tms
    w = "web_tiles/coverage/%s" % tms
    valid = "%s/%d/%s/%s.tif" % (g, z, x, y)
    paths = [
        # leading zeros, signs, other number forms
        "%s/0%d/%s/%s.tif" % (g, z, x, y),
        "%s/%d/0%s/%s.tif" % (g, z, x, y),
        "%s/%d/%s/00%s.tif" % (g, z, x, y),
        "%s/+%d/%s/%s.tif" % (g, z, x, y),
        "%s/%d/%s/-%s.tif" % (g, z, x, y),
        "%s/%d/-0/%s.tif" % (g, z, y),
        "%s/-1/0/0.tif" % g,
        "%s/%d/0x%x/%s.tif" % (g, z, int(x), y),
        "%s/%d/%s.0/%s.tif" % (g, z, x, y),
        "%s/%d/%s/%se0.tif" % (g, z, x, y),
        "%s/%d/ %s/%s.tif" % (g, z, x, y),
        "%s/%d/%s /%s.tif" % (g, z, x, y),
        "%s/%d/%s/%s.tif\n" % (g, z, x, y),
        "%s/%d/\uff11/%s.tif" % (g, z, y),
        # overflow and out of range
        "%s/%d/4294967296/%s.tif" % (g, z, y),
        "%s/%d/%s/18446744073709551616.tif" % (g, z, x),
        "%s/%d/4294967295/%s.tif" % (g, z, y),
        "%s/%d/%s/99999999999999999999999999999999.tif" % (g, z, x),
        "%s/%d/%d/0.tif" % (g, z, 2 << z),
        "%s/%d/0/%d.tif" % (g, z, 1 << z),
        "%s/%d/0/0.tif" % (g, zmax + 1),
        "%s/25/0/0.tif" % g,
        "%s/256/0/0.tif" % g,
        "%s/4294967296/0/0.tif" % g,
        "staged/%s/%d/%s/%s.gpkg" % (tms, z, x, y),
        # wrong extensions
        "%s/%d/%s/%s.png" % (g, z, x, y),
        "%s/%d/%s/%s.tif" % (w, z, x, y),
        "%s/%d/%s/%s.TIF" % (g, z, x, y),
        "%s/%d/%s/%s.tiff" % (g, z, x, y),
        "%s/%d/%s/%s.tif.tif" % (g, z, x, y),
        "%s/%d/%s/%s" % (g, z, x, y),
        "%s/%d/%s/%s." % (g, z, x, y),
        "%s/%d/%s/.tif" % (g, z, x),
        "%s/%d/%s.tif/%s.tif" % (g, z, x, y),
        # dot components, empty components, other trees
        "%s/%d/%s/../%s/%s.tif" % (g, z, x, x, y),
        "geotiff/../geotiff/%s/%d/%s/%s.tif" % (tms, z, x, y),
        "./%s" % valid,
        "%s/./%d/%s/%s.tif" % (g, z, x, y),
        "%s/%d//%s/%s.tif" % (g, z, x, y),
        valid + "/",
        "web_tiles/../../../etc/passwd",
        "../" + valid,
        "..",
        ".",
        "",
        "/",
        "geotiff",
        "%s/%d/%s" % (g, z, x),
        "web_tiles/nostat/%s/%d/%s/%s.png" % (tms, z, x, y),
        "web_tiles/Coverage/%s/%d/%s/%s.png" % (tms, z, x, y),
        "GeoTIFF/%s/%d/%s/%s.tif" % (tms, z, x, y),
        "geotiff/WorldCRS84Quad/%d/%s/%s.tif" % (z, x, y),
        "%s/%d/%s/%s/0.tif" % (g, z, x, y),
        "%s/%s/%s.tif" % (g, x, y),
        # very long names
        "a" * 5000,
        "%s/%d/%s/%s.tif" % (g, z, x, "1" * 300),
        "%s/%d/%s/%s.tif" % (g, z, "9" * 255, y),
        "%s/%s/%d/%s/%s.tif" % (g, "x" * 4090, z, x, y),
        valid + "/" + "b" * 4000,
    ]
    out = []
    for i, p in enumerate(paths):
        out.append(gen_corpus.Case(
            name="path-%02d" % i, kind="path", config=ref_cfg, path=p,
            expect="ENOENT", rc=1, err=["not a tile path"], good=None,
            ref=None, note=repr(p[:80])))
    return valid, out


def run_paths(cases, valid, ctx):
    """All path cases against one cache that holds only the max zoom:
    a malformed path that were rendered would add a tile of zmax-1."""
    if not cases:
        return
    cfg = cases[0]["config"]
    cache = os.path.join(ctx.tmp, "path-cache")
    conf = json.load(open(cfg))
    zmax = conf["z_range"][1]
    top = {"name": "paths"}
    rc, _, err = ctx.run(["prefetch", cfg, "--quiet", "--cache", cache,
                          "--zoom", "%d-%d" % (zmax, zmax)])
    if not ctx.expect(top, rc == 0, "path cache: prefetch exit %d: %s" %
                      (rc, err.decode(errors="replace"))):
        return
    before = info_json(ctx, top, cfg, ["--cache", cache])
    size0 = os.path.getsize(os.path.join(cache, "data.mdb"))
    for case in cases:
        for fn in CHECKS:
            fn(case, ctx)
    after = info_json(ctx, top, cfg, ["--cache", cache])
    if before is None or after is None:
        return
    ctx.expect(top, (before["rendered"], before["pngs"]) ==
               (after["rendered"], after["pngs"]) and
               os.path.getsize(os.path.join(cache, "data.mdb")) == size0,
               "malformed paths rendered something: rendered %d -> %d, "
               "pngs %d -> %d" % (before["rendered"], after["rendered"],
                                  before["pngs"], after["pngs"]))
    # Control: the valid neighbour renders and the counters see it, so the
    # comparison above can detect a render.  Leading slashes are accepted
    # (a tree-relative or absolute spelling of the same file).
    want = ctx.ref_tiles({"ref": cfg})[valid]
    for p in (valid, "/" + valid, "//" + valid):
        out = os.path.join(ctx.tmp, "valid.tif")
        rc, _, err = ctx.run(["render", cfg, p, "-o", out, "--cache",
                              cache])
        ctx.expect(top, rc == 0 and open(out, "rb").read() == want,
                   "control path %s: exit %d, bytes %s: %s" %
                   (p, rc, "differ" if rc == 0 else "-",
                    err.decode(errors="replace")))
    ctl = info_json(ctx, top, cfg, ["--cache", cache])
    if ctl is not None:
        ctx.expect(top, ctl["rendered"] > after["rendered"],
                   "control render did not show in info (rendered %d)" %
                   ctl["rendered"])


@register
def check_paths(case, ctx):
    if case["kind"] != "path":
        return
    cache = os.path.join(ctx.tmp, "path-cache")
    rc, out, err = ctx.run(["render", case["config"], case["path"],
                            "--cache", cache])
    if not ctx.sane(case, "render %r" % case["path"][:60], rc, err):
        return
    text = err.decode("utf-8", "replace")
    ctx.expect(case, rc == 1 and "not a tile path" in text and not out,
               "render %r: exit %d (want 1, usage error), stdout %d "
               "bytes, stderr: %s" % (case["path"][:80], rc, len(out),
                                      text.strip()[-300:]))


def unprivileged(ctx, case):
    """Command prefix under which the chmod 000 file is unreadable: none
    when it already is, setpriv to nobody when running as root, None (skip,
    with the reason printed) when neither works."""
    bad = os.path.join(os.path.dirname(case["config"]), "..", "vec",
                       "unreadable", "bad.gpkg")
    try:
        open(bad, "rb").close()
    except PermissionError:
        return []
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        print("SKIP: unreadable: a chmod 000 file stays readable here "
              "(CAP_DAC_OVERRIDE) and setpriv is not available")
        return None
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    # let nobody read the corpus and write the caches of this case
    subprocess.run(["chmod", "-R", "a+rX", ctx.tmp], check=True)
    os.chmod(bad, 0)
    for d in (os.path.join(ctx.tmp, "corpus", "cache"),
              os.path.join(ctx.tmp, "render-cache")):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o1777)
    p = subprocess.run(prefix + ["cat", bad], capture_output=True)
    if p.returncode == 0:
        print("SKIP: unreadable: even user nobody can read a chmod 000 "
              "file here")
        return None
    print("  (running as root: this case runs as user nobody)")
    return prefix


def load_plugins():
    try:
        import check_mount  # noqa: F401  (optional, added later)
    except ImportError:
        return
    register(check_mount.check)


def main():
    vizfs = os.environ.get("VIZFS")
    if not vizfs or not os.access(vizfs, os.X_OK):
        print("VIZFS must name the vizfs binary", file=sys.stderr)
        return 1
    only = set(sys.argv[1:])
    tmp = tempfile.mkdtemp(prefix="vizfs-bad.")
    ctx = Runner(vizfs, tmp)
    ctx.outdir = os.path.join(tmp, "out")  # -o files (any user may write)
    os.makedirs(ctx.outdir)
    os.chmod(ctx.outdir, 0o1777)
    load_plugins()
    t0 = time.time()
    try:
        cases = gen_corpus.build(os.path.join(tmp, "corpus"), vizfs)
        for case in cases:
            if only and not any(fnmatch.fnmatch(case["name"], o)
                                for o in only):
                continue
            ctx.prefix = []
            # a config is refused at once; vector cases may really work
            ctx.timeout = 30 if case["kind"] == "config" else TIMEOUT
            if case["name"] == "unreadable":
                ctx.prefix = unprivileged(ctx, case)
                if ctx.prefix is None:
                    ctx.skipped.append(case["name"])
                    continue
            print("case %s (%s): %s" % (case["name"], case["kind"],
                                        case["note"]), flush=True)
            n0, tc = ctx.failed, time.time()
            for fn in CHECKS:
                fn(case, ctx)
            ctx.prefix = []
            print("  %s (%.1f s)" % ("ok" if ctx.failed == n0 else
                                     "FAILED", time.time() - tc),
                  flush=True)
        ctx.timeout = TIMEOUT
        ref = os.path.join(tmp, "corpus", "ref-gpkg-11.json")
        ctx.ref_tiles({"ref": ref})
        valid, pcs = path_cases(os.path.join(tmp, "corpus"), ref)
        pcs = [c for c in pcs if not only or any(
            fnmatch.fnmatch(c["name"], o) for o in only)]
        run_paths(pcs, valid, ctx)
        print("paths: %d malformed paths tried" % len(pcs))
    finally:
        if os.environ.get("VZ_KEEP_TMP"):
            print("kept %s" % tmp)
        else:
            subprocess.run(["chmod", "-R", "u+rwX", tmp])
            shutil.rmtree(tmp, ignore_errors=True)
    print("bad-input: %d checks, %d failed, %d skipped, %.0f s" %
          (ctx.checks, ctx.failed, len(ctx.skipped), time.time() - t0))
    print("%d passed, %d failed" % (ctx.checks - ctx.failed, ctx.failed))
    return 1 if ctx.failed else 0


if __name__ == "__main__":
    sys.exit(main())
