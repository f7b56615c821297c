# SPDX-License-Identifier: Apache-2.0
# Builds the bad-input corpus (vector files, configs, tile paths) into a dir.
"""Bad-input corpus generator.

Everything is generated at test time with OGR (python3-gdal) and plain
file writes: no binary fixture is committed.  build(root, vizfs) writes

  root/good/good.gpkg        `vizfs sample` output (EPSG:3413, Alaska)
  root/good/good.shp         the same converted to a shapefile
  root/vec/<case>/...        dir_input of each vector case: a copy of the
                             good file plus the bad file(s)
  root/conf/<case>.json      bad configs

and returns the list of cases (dicts, see Case below) for run.py.

Standalone: gen_corpus.py ROOT [VIZFS] builds the corpus and prints the
case names, for looking at the files by hand.
"""

import json
import math
import os
import shutil
import subprocess
import sys

from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()
# OGR warns about what the corpus does on purpose (unclosed rings, ...)
gdal.PushErrorHandler("CPLQuietErrorHandler")

# Good data: Alaska, about -150.25 E, 70.2 N (WGS1984Quad z11 tiles
# 338/224-225).  Bad data is placed at least 5 degrees away unless the case
# is about overlapping it, so that the good tiles of the deep zooms must be
# byte-identical to a build of good alone.
GOOD_COUNT = 300
GOOD_SEED = 11

# The attribute statistic uses "Class" (an Integer that survives the
# shapefile conversion exactly; shapefiles truncate "ChangeRateNet_myr-1").
ATTR = "Class"


class Case(dict):
    """One corpus case.

    name     unique name
    kind     "vector" | "config" | "path"
    config   path of the config file the commands take
    rc       expected exit status of `vizfs prefetch`
    err      regexes that must all match prefetch's stderr (the file,
             feature or key at fault)
    good     "gpkg" | "shp" | None: which good file sits beside the bad
             data (its tiles must equal the reference build of it alone)
    zmax     deepest zoom of the config
    note     what the case documents (printed in the log)
    skip     reason string when the case cannot run here
    """


def srs_of(epsg):
    s = osr.SpatialReference()
    s.ImportFromEPSG(epsg)
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return s


def write_layer(path, feats, epsg=4326, driver=None, fields=None,
                geom_type=ogr.wkbUnknown, layer="bad"):
    """Write features [(geometry or WKT or None, {field: value})]."""
    if driver is None:
        driver = {".gpkg": "GPKG", ".shp": "ESRI Shapefile",
                  ".geojson": "GeoJSON"}[os.path.splitext(path)[1]]
    if fields is None:
        fields = [(ATTR, ogr.OFTInteger)]
    ds = ogr.GetDriverByName(driver).CreateDataSource(path)
    lyr = ds.CreateLayer(layer, srs_of(epsg) if epsg else None, geom_type)
    for name, t in fields:
        lyr.CreateField(ogr.FieldDefn(name, t))
    for geom, attrs in feats:
        f = ogr.Feature(lyr.GetLayerDefn())
        if geom is not None:
            if isinstance(geom, str):
                geom = ogr.CreateGeometryFromWkt(geom)
            f.SetGeometry(geom)
        for k, v in attrs.items():
            if v is None:
                f.SetFieldNull(k)
            else:
                f.SetField(k, v)
        lyr.CreateFeature(f)
    ds = None


def box(w, s, e, n):
    return "POLYGON ((%r %r, %r %r, %r %r, %r %r, %r %r))" % (
        w, s, e, s, e, n, w, n, w, s)


def ring_geom(coords, close=True):
    """Polygon from raw coordinates, without OGR closing or checking."""
    r = ogr.Geometry(ogr.wkbLinearRing)
    for x, y in coords:
        r.AddPoint_2D(x, y)
    if close:
        r.CloseRings()
    p = ogr.Geometry(ogr.wkbPolygon)
    p.AddGeometryDirectly(r)
    return p


def circle(cx, cy, rad, n):
    pts = [(cx + rad * math.cos(2 * math.pi * i / n),
            cy + rad * math.sin(2 * math.pi * i / n)) for i in range(n)]
    return ring_geom(pts)


def sample(vizfs, path):
    subprocess.run([vizfs, "sample", path, "--count", str(GOOD_COUNT),
                    "--seed", str(GOOD_SEED), "--quiet"], check=True,
                   timeout=120)


def stats(attr=ATTR):
    return [
        {"name": "coverage", "weight_by": "area",
         "property": "area_per_pixel_area", "aggregation_method": "sum",
         "resampling_method": "average", "val_range": [0, 1],
         "palette": ["#f8ff1f1A", "#f8ff1f"], "nodata_val": 0,
         "nodata_color": "#ffffff00"},
        {"name": "polygon_count", "weight_by": "count",
         "property": "centroids_per_pixel", "aggregation_method": "sum",
         "resampling_method": "sum", "val_range": [0, None],
         "nodata_val": 0},
        {"name": "cls", "weight_by": "area", "property": attr,
         "aggregation_method": "max", "resampling_method": "max",
         "val_range": [0, 10], "palette": ["#0000ff", "#ff0000"],
         "nodata_val": 0},
    ]


def base_config(dir_input, cache, zmax=11, ext=".gpkg", **extra):
    c = {"dir_input": dir_input, "ext_input": ext,
         "dir_staged": dir_input + "-staged",
         "tms_id": "WGS1984Quad", "z_range": [0, zmax],
         "tile_size": [128, 128], "simplify_tolerance": 0.1,
         "vizfs_cache_dir": cache, "statistics": stats()}
    c.update(extra)
    return c


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


# ---- vector cases -----------------------------------------------------------

def vector_cases(root):
    """(name, good, writer(dir), rc, err regexes, note, config extras)."""
    P = ogr.OFTInteger
    cases = []

    def add(name, writer, rc=0, err=(), good="gpkg", note="", zmax=11,
            info=None, noerr=(), **extra):
        cases.append(dict(name=name, writer=writer, rc=rc, err=list(err),
                          good=good, note=note, zmax=zmax, extra=extra,
                          info=info or {}, noerr=list(noerr)))

    def empty_file(fn):
        return lambda d: open(os.path.join(d, fn), "wb").close()

    add("empty-gpkg", empty_file("bad.gpkg"), 2, [r"bad\.gpkg"],
        note="0-byte .gpkg")
    add("empty-shp", empty_file("bad.shp"), 2, [r"bad\.shp"], good="shp",
        ext=".shp", note="0-byte .shp")

    add("zero-features",
        lambda d: write_layer(os.path.join(d, "bad.gpkg"), []), 0,
        [r"bad\.gpkg: no features"], info={"inputs": 2},
        note="valid GeoPackage without features")

    def truncated_gpkg(d):
        src = os.path.join(root, "good", "good.gpkg")
        data = open(src, "rb").read()
        with open(os.path.join(d, "bad.gpkg"), "wb") as f:
            f.write(data[:len(data) // 3])
    add("truncated-gpkg", truncated_gpkg, 2, [r"bad\.gpkg"],
        note="GeoPackage cut to a third of its size")

    def corrupt_gpkg(d):
        src = os.path.join(root, "good", "good.gpkg")
        data = bytearray(open(src, "rb").read())
        # keep the SQLite header, scramble every page after the first
        for i in range(4096, len(data)):
            data[i] = (data[i] * 31 + i * 7) & 0xff
        open(os.path.join(d, "bad.gpkg"), "wb").write(bytes(data))
    add("corrupt-gpkg", corrupt_gpkg, 2, [r"bad\.gpkg"],
        note="GeoPackage with scrambled pages after the header")

    def garbage_gpkg(d):
        with open(os.path.join(d, "bad.gpkg"), "wb") as f:
            f.write(b"SQLite format 3\0" + bytes(range(256)) * 64)
    add("garbage-gpkg", garbage_gpkg, 2, [r"bad\.gpkg"],
        note="SQLite magic followed by garbage")

    def bad_shp_set(d):
        write_layer(os.path.join(d, "bad.shp"),
                    [(box(10 + i, 10, 10.5 + i, 10.5), {ATTR: i})
                     for i in range(50)], fields=[(ATTR, P)])

    def truncated_shp(d):
        bad_shp_set(d)
        p = os.path.join(d, "bad.shp")
        data = open(p, "rb").read()
        open(p, "wb").write(data[:len(data) // 2])
    add("truncated-shp", truncated_shp, None, [r"bad\.shp"], good="shp",
        ext=".shp", note="shapefile .shp cut in half (.shx promises more)")

    def corrupt_shp(d):
        bad_shp_set(d)
        p = os.path.join(d, "bad.shp")
        data = bytearray(open(p, "rb").read())
        for i in range(100, len(data), 3):
            data[i] = 0xff
        open(p, "wb").write(bytes(data))
    add("corrupt-shp", corrupt_shp, None, [r"bad\.shp"], good="shp",
        ext=".shp", note="shapefile records overwritten with 0xff")

    def corrupt_shx(d):
        bad_shp_set(d)
        p = os.path.join(d, "bad.shx")
        data = bytearray(open(p, "rb").read())
        for i in range(100, len(data)):
            data[i] = 0x7f
        open(p, "wb").write(bytes(data))
    add("corrupt-shx", corrupt_shx, None, [r"bad\.sh[px]"], good="shp",
        ext=".shp", note="shapefile index (.shx) offsets out of range")

    def shp_no_dbf(d):
        bad_shp_set(d)
        os.unlink(os.path.join(d, "bad.dbf"))
    add("shp-without-dbf", shp_no_dbf, 2, [r"bad\.shp", ATTR], good="shp",
        ext=".shp", note=".shp and .shx without .dbf: no attribute")

    def unreadable(d):
        write_layer(os.path.join(d, "bad.gpkg"),
                    [(box(10, 10, 11, 11), {ATTR: 1})])
        os.chmod(os.path.join(d, "bad.gpkg"), 0)
    add("unreadable", unreadable, 2, [r"bad\.gpkg"],
        note="chmod 000 input")

    def mixed(d):
        # Data over the good area in formats ext_input does not match:
        # if any of it were read, the good tiles would change.
        over = [(box(-151, 69.5, -149.5, 71), {ATTR: 9})]
        write_layer(os.path.join(d, "other.geojson"), over)
        write_layer(os.path.join(d, "other.shp"), over)
        write_layer(os.path.join(d, "other.gpkg.bak"), over, driver="GPKG")
        os.makedirs(os.path.join(d, "sub"))
        write_layer(os.path.join(d, "sub", "far.gpkg"),
                    [(box(20, 20, 20.1, 20.1), {ATTR: 3})])
        open(os.path.join(d, "notes.txt"), "w").write("not data\n")
    add("mixed-formats", mixed, 0, [], info={"inputs": 2},
        noerr=[r"other\.", "notes"],
        note="gpkg (also in a subdirectory) + geojson + shp + other files, "
             "ext_input .gpkg: only the .gpkg files are read")

    def odd_files(d):
        # a link cycle (to the directory itself and to an ancestor), a
        # dangling link and a FIFO, all with the input extension
        os.symlink(".", os.path.join(d, "loop"))
        os.makedirs(os.path.join(d, "sub"))
        os.symlink("..", os.path.join(d, "sub", "up"))
        os.symlink("/nonexistent/x.gpkg", os.path.join(d, "dangling.gpkg"))
        os.mkfifo(os.path.join(d, "fifo.gpkg"))
    add("odd-files", odd_files, 0, ["symbolic link cycle"],
        info={"inputs": 1},
        note="symbolic link cycles, a dangling link and a FIFO named "
             "*.gpkg in dir_input: no hang, the good file is read once")

    def nonpoly(d):
        write_layer(os.path.join(d, "bad.gpkg"), [
            ("POINT (10 10)", {ATTR: 1}),
            ("MULTIPOINT ((10 10), (11 11))", {ATTR: 1}),
            ("LINESTRING (10 10, 11 11)", {ATTR: 1}),
            ("MULTILINESTRING ((10 10, 11 11), (12 12, 13 13))", {ATTR: 1}),
            ("GEOMETRYCOLLECTION (POINT (10 10), "
             "LINESTRING (10 10, 11 11))", {ATTR: 1}),
            ("GEOMETRYCOLLECTION (POINT (10 10), "
             "POLYGON ((10 10, 10.5 10, 10.5 10.5, 10 10.5, 10 10)))",
             {ATTR: 2}),
            (box(12, 12, 12.5, 12.5), {ATTR: 3}),
        ])
    add("non-polygon", nonpoly, 0, [r"bad\.gpkg", "5 not polygonal"], note="points, lines, collections")

    def empty_null(d):
        write_layer(os.path.join(d, "bad.gpkg"), [
            ("POLYGON EMPTY", {ATTR: 1}),
            ("MULTIPOLYGON EMPTY", {ATTR: 1}),
            ("GEOMETRYCOLLECTION EMPTY", {ATTR: 1}),
            (None, {ATTR: 1}),
            (box(12, 12, 12.5, 12.5), {ATTR: 3}),
        ])
    add("empty-null-geometry", empty_null, 0,
        [r"bad\.gpkg", "4 empty or NULL"],
        note="EMPTY and NULL geometries")

    def broken_rings(d):
        write_layer(os.path.join(d, "bad.gpkg"), [
            ("POLYGON ((10 10, 11 11, 11 10, 10 11, 10 10))", {ATTR: 1}),
            (ring_geom([(12, 12), (13, 12), (13, 13), (12, 13)],
                       close=False), {ATTR: 2}),
            (ring_geom([(14, 14), (15, 14)], close=False), {ATTR: 2}),
            ("POLYGON ((16 16, 17 16, 17 16, 16 16))", {ATTR: 2}),
            ("POLYGON ((18 18, 18 18, 18 18, 18 18))", {ATTR: 2}),
            ("POLYGON ((10 20, 12 20, 12 22, 10 22, 10 20), "
             "(11 21, 13 21, 13 23, 11 23, 11 21))", {ATTR: 4}),
        ])
    add("broken-rings", broken_rings, 0, [r"bad\.gpkg", "invalid"],
        note="bow-tie, unclosed, 2-point, zero-area rings, hole "
             "crossing the shell")

    def nan_inf(d):
        nan, inf = float("nan"), float("inf")
        write_layer(os.path.join(d, "bad.gpkg"), [
            (ring_geom([(10, 10), (nan, 10), (11, 11), (10, 11)]),
             {ATTR: 1}),
            (ring_geom([(10, 10), (inf, 10), (11, 11), (10, 11)]),
             {ATTR: 1}),
            (ring_geom([(10, 10), (11, -inf), (11, 11), (10, 11)]),
             {ATTR: 1}),
            (ring_geom([(nan, nan), (nan, nan), (nan, nan)]), {ATTR: 1}),
            (box(12, 12, 12.5, 12.5), {ATTR: 3}),
        ])
    add("nan-inf", nan_inf, 0, [r"bad\.gpkg", "4 invalid"], note="NaN and +-inf coordinates")

    def huge(d):
        write_layer(os.path.join(d, "bad.gpkg"), [
            (box(1e30, 1e30, 2e30, 2e30), {ATTR: 1}),
            (box(-1e300, 10, 1e300, 11), {ATTR: 1}),
            (box(10, -1e30, 11, 1e30), {ATTR: 1}),
            (box(1e-300, 1e-300, 2e-300, 2e-300), {ATTR: 1}),
        ])
        write_layer(os.path.join(d, "bad-metres.gpkg"), [
            (box(1e30, 1e30, 2e30, 2e30), {ATTR: 1}),
            (box(-1e30, -1e30, 1e30, 1e30), {ATTR: 1}),
        ], epsg=3413)
    add("huge-coordinates", huge, 0, [r"bad\.gpkg"], zmax=8,
        note="1e30 / 1e300 coordinates in degrees and in metres (bands "
             "around the world must finish quickly at z8)")

    def no_crs(d):
        write_layer(os.path.join(d, "bad.shp"),
                    [(box(10, 10, 11, 11), {ATTR: 1})], epsg=None)
    add("missing-crs", no_crs, 2, [r"bad\.shp", "CRS", "input_crs"],
        good="shp", ext=".shp",
        note="shapefile without .prj and no input_crs")

    def undefined_srs(d):
        write_layer(os.path.join(d, "bad.gpkg"),
                    [(box(10, 10, 11, 11), {ATTR: 1})], epsg=None)
    add("gpkg-undefined-srs", undefined_srs, 0, [],
        note="GeoPackage layer without SRS: GDAL reports the GeoPackage "
             "'Undefined geographic SRS' (srs_id 0), read as lon/lat")

    def outside(d):
        write_layer(os.path.join(d, "bad.gpkg"), [
            (box(200, 10, 210, 20), {ATTR: 1}),
            (box(10, 95, 20, 100), {ATTR: 1}),
            (box(-400, -100, -390, -95), {ATTR: 1}),
        ])
    add("outside-extent", outside, 0,
        [r"bad\.gpkg", "3 outside the TMS extent"],
        note="polygons entirely outside the TMS extent")

    def antimeridian(d):
        write_layer(os.path.join(d, "bad.gpkg"), [
            # ring jumping 179 -> -179: as drawn, a band around the world
            (ring_geom([(179, 10), (-179, 10), (-179, 11), (179, 11)]),
             {ATTR: 1}),
            # the same written with lon > 180
            (box(179, 12, 181, 13), {ATTR: 2}),
        ])
        write_layer(os.path.join(d, "bad-3832.gpkg"), [
            (box(2000000, 1000000, 4500000, 1100000), {ATTR: 3}),
        ], epsg=3832)  # PDC Mercator (150 E): lon 168 E to 170 W
    add("antimeridian", antimeridian, 0, [], zmax=8,
        note="polygons crossing the antimeridian are not split yet: "
             "no crash is asserted, the tiles are what they are")

    def polar(d):
        write_layer(os.path.join(d, "bad.gpkg"), [
            (box(-180, 85, 180, 90), {ATTR: 1}),
            (box(-180, -90, 180, -85), {ATTR: 1}),
        ])
        # a disc around the pole in polar stereographic metres
        write_layer(os.path.join(d, "bad-pole.gpkg"),
                    [(circle(0, 0, 300000, 64), {ATTR: 2})], epsg=3413)
    add("polar", polar, 0, [], zmax=6,
        note="polar caps in lon/lat and a disc around the north pole in "
             "EPSG:3413")

    def continent(d):
        write_layer(os.path.join(d, "bad.gpkg"),
                    [(box(-17, -35, 51, 37), {ATTR: 5})])
    add("continent", continent, 0, [], zmax=8,
        note="one polygon covering Africa at z8")

    def million(d):
        write_layer(os.path.join(d, "bad.gpkg"),
                    [(circle(20, 20, 0.3, 1000000), {ATTR: 6})])
    add("million-vertices", million, 0, [],
        note="one ring of 1,000,000 vertices")

    def attr_missing(d):
        write_layer(os.path.join(d, "bad.gpkg"),
                    [(box(10, 10, 11, 11), {"Other": 1})],
                    fields=[("Other", P)])
    add("attribute-missing", attr_missing, 2, [r"bad\.gpkg", ATTR, "cls"],
        note="statistic attribute not in the file")

    def attr_text(d):
        write_layer(os.path.join(d, "bad.gpkg"), [
            (box(10, 10, 10.5, 10.5), {ATTR: "abc"}),
            (box(11, 10, 11.5, 10.5), {ATTR: ""}),
            (box(12, 10, 12.5, 10.5), {ATTR: None}),
            (box(13, 10, 13.5, 10.5), {ATTR: "7"}),
            (box(14, 10, 14.5, 10.5), {ATTR: "nan"}),
            (box(15, 10, 15.5, 10.5), {ATTR: "1e999"}),
        ], fields=[(ATTR, ogr.OFTString)])
        write_layer(os.path.join(d, "bad-null.gpkg"), [
            (box(10, 12, 10.5, 12.5), {ATTR: None}),
            (box(11, 12, 11.5, 12.5), {ATTR: 4}),
        ])
    add("attribute-non-numeric", attr_text, 0,
        [r"bad\.gpkg: .*3 NULL or non-numeric",
         r"bad-null\.gpkg: .*1 NULL or non-numeric"],
        note="statistic attribute as text ('abc', '', '7', 'nan', "
             "'1e999') and NULL on some features")
    return cases


def build(root, vizfs):
    """Generate everything under root; return the list of Case."""
    os.makedirs(os.path.join(root, "good"), exist_ok=True)
    good_gpkg = os.path.join(root, "good", "good.gpkg")
    sample(vizfs, good_gpkg)
    gdal.VectorTranslate(os.path.join(root, "good", "good.shp"), good_gpkg,
                         format="ESRI Shapefile")
    out = []

    # the references: the good file alone, per format and max zoom
    refs = {}
    for fmt in ("gpkg", "shp"):
        for zmax in (6, 8, 11):
            d = os.path.join(root, "ref-%s-%d" % (fmt, zmax))
            os.makedirs(d)
            copy_good(root, fmt, d)
            cfg = os.path.join(root, "ref-%s-%d.json" % (fmt, zmax))
            dump(cfg, base_config(d, d + "-cache", zmax, "." + fmt))
            refs[(fmt, zmax)] = cfg

    for v in vector_cases(root):
        d = os.path.join(root, "vec", v["name"])
        os.makedirs(d)
        ext = v["extra"].pop("ext", ".gpkg")
        if v["good"]:
            copy_good(root, v["good"], d)
        v["writer"](d)
        cfg = os.path.join(root, "conf", v["name"] + ".json")
        os.makedirs(os.path.dirname(cfg), exist_ok=True)
        dump(cfg, base_config(d, os.path.join(root, "cache", v["name"]),
                              v["zmax"], ext, **v["extra"]))
        out.append(Case(name=v["name"], kind="vector", config=cfg,
                        rc=v["rc"], err=v["err"], good=v["good"],
                        zmax=v["zmax"], note=v["note"], info=v["info"],
                        noerr=v["noerr"],
                        ref=refs.get((v["good"], v["zmax"]))))

    # config-level input cases: the whole input is affected, no good data
    d = os.path.join(root, "vec", "wrong-input-crs")
    os.makedirs(d)
    copy_good(root, "gpkg", d)
    cfg = os.path.join(root, "conf", "wrong-input-crs.json")
    dump(cfg, base_config(d, os.path.join(root, "cache", "wrong-input-crs"),
                          8, input_crs="EPSG:4326"))
    out.append(Case(name="wrong-input-crs", kind="vector", config=cfg,
                    rc=0, err=[r"good\.gpkg", "outside the TMS extent",
                               "input_crs"], good=None, zmax=8, ref=None,
                    info={"polygons": 0, "tiles": 0},
                    note="metre data declared EPSG:4326: every polygon "
                         "lies outside the extent, summary says so"))
    d = os.path.join(root, "vec", "empty-dir")
    os.makedirs(d)
    cfg = os.path.join(root, "conf", "empty-dir.json")
    dump(cfg, base_config(d, os.path.join(root, "cache", "empty-dir")))
    out.append(Case(name="empty-dir", kind="vector", config=cfg, rc=2,
                    err=["no input", r"empty-dir"], good=None, zmax=11,
                    ref=None, info_rc=2,
                    note="dir_input without any input file"))

    out.extend(config_cases(root))
    return out


def copy_good(root, fmt, d):
    g = os.path.join(root, "good")
    exts = [".gpkg"] if fmt == "gpkg" else [".shp", ".shx", ".dbf", ".prj"]
    for e in exts:
        shutil.copy(os.path.join(g, "good" + e), os.path.join(d, "good" + e))


# ---- config cases -----------------------------------------------------------

def config_cases(root):
    d = os.path.join(root, "vec", "config-input")
    os.makedirs(d)
    copy_good(root, "gpkg", d)
    cache = os.path.join(root, "cache", "config")
    out = []

    def add(name, mutate=None, text=None, keys=(), rc=2, note="",
            late=False):
        p = os.path.join(root, "conf", "cfg-" + name + ".json")
        if text is None:
            c = base_config(d, cache, 11)
            mutate(c)
            text = json.dumps(c, allow_nan=True)
        with open(p, "w") as f:
            f.write(text)
        out.append(Case(name="cfg-" + name, kind="config", config=p, rc=rc,
                        err=list(keys), good=None, zmax=11, ref=None,
                        note=note, late=late))

    def setk(k, v):
        return lambda c: c.__setitem__(k, v)

    def stat0(k, v):
        def f(c):
            if v is KeyError:
                del c["statistics"][0][k]
            else:
                c["statistics"][0][k] = v
        return f

    good = json.dumps(base_config(d, cache, 11))
    fifo = os.path.join(root, "conf", "cfg-fifo.json")
    os.mkfifo(fifo)
    out.append(Case(name="cfg-fifo", kind="config", config=fifo, rc=2,
                    err=[r"cfg-fifo\.json", "regular"], good=None, zmax=11,
                    ref=None, note="config is a FIFO: refused, no hang"))
    out.append(Case(name="cfg-directory", kind="config",
                    config=os.path.join(root, "conf"), rc=2,
                    err=["conf", "regular"], good=None, zmax=11, ref=None,
                    note="config is a directory"))
    add("invalid-json", text=good[:len(good) // 2],
        keys=[r"cfg-invalid-json\.json", "JSON"])
    add("not-object", text="[1, 2, 3]", keys=["object"])
    add("empty-file", text="", keys=[r"cfg-empty-file\.json"])
    add("binary", text="\x00\x01\x02{", keys=[r"cfg-binary\.json"])
    add("trailing", text=good + " {}", keys=[r"cfg-trailing\.json"])
    add("dir-input-number", setk("dir_input", 5), keys=["dir_input"])
    add("zrange-string", setk("z_range", "0-11"), keys=["z_range"])
    add("zrange-reversed", setk("z_range", [11, 3]), keys=["z_range"])
    add("zrange-negative", setk("z_range", [-1, 3]), keys=["z_range"])
    add("zrange-too-deep", setk("z_range", [0, 99]), keys=["z_range"])
    add("zrange-fraction", setk("z_range", [0, 2.5]), keys=["z_range"])
    add("zrange-one", setk("z_range", [3]), keys=["z_range"])
    add("zrange-huge", setk("z_range", [0, 1e300]), keys=["z_range"])
    add("tile-size-zero", setk("tile_size", [0, 0]), keys=["tile_size"])
    add("tile-size-negative", setk("tile_size", [-256, 256]),
        keys=["tile_size"])
    add("tile-size-huge", setk("tile_size", [1 << 20, 1 << 20]),
        keys=["tile_size"])
    add("tile-size-string", setk("tile_size", "256"), keys=["tile_size"])
    add("tms-unknown", setk("tms_id", "MarsQuad"), keys=["tms_id"])
    add("tms-number", setk("tms_id", 4326), keys=["tms_id"])
    add("stats-empty", setk("statistics", []), keys=["statistics"])
    add("stats-object", setk("statistics", {"name": "x"}),
        keys=["statistics"])
    add("stat-method", stat0("aggregation_method", "median-ish"),
        keys=["aggregation_method"])
    add("stat-resampling", stat0("resampling_method", "bicubic-ish"),
        keys=["resampling_method"])
    add("stat-weight", stat0("weight_by", "volume"), keys=["weight_by"])
    add("stat-no-name", stat0("name", KeyError), keys=["name"])
    add("stat-name-slash", stat0("name", "a/b"), keys=["name"])
    add("stat-name-dotdot", stat0("name", ".."), keys=["name"])
    add("stat-name-empty", stat0("name", ""), keys=["name"])
    add("colour-bad", stat0("palette", ["#f8ff1f", "notacolour"]),
        keys=["palette", "notacolour"])
    add("colour-hex", stat0("palette", ["#12345"]), keys=["palette"])
    add("colour-number", stat0("palette", [123]), keys=["palette"])
    add("nodata-colour", stat0("nodata_color", "#zzzzzz"),
        keys=["nodata_color"])
    add("range-nan", stat0("val_range", [float("nan"), 1]),
        keys=["val_range"])
    add("range-inf", stat0("val_range", [0, float("inf")]),
        keys=["val_range"])
    add("range-none-string", stat0("val_range", ["None", 1]),
        keys=["val_range"])
    add("range-three", stat0("val_range", [0, 1, 2]), keys=["val_range"])
    add("range-null", stat0("val_range", [None, None]), rc=0,
        note="[null, null] is valid PDG: both ends computed")
    add("range-reversed", stat0("val_range", [1, 0]), keys=["val_range"])
    add("nodata-nan-string", stat0("nodata_val", "zero"),
        keys=["nodata_val"])
    add("dup-stat", lambda c: c["statistics"].append(
        dict(c["statistics"][0])), keys=["coverage"])
    add("structure-missing-z",
        setk("tile_path_structure", ["style", "tms", "x", "y"]),
        keys=["tile_path_structure"])
    add("structure-dup", setk("tile_path_structure",
                              ["style", "tms", "z", "x", "x", "y"]),
        keys=["tile_path_structure"])
    add("structure-unknown", setk("tile_path_structure",
                                  ["style", "tms", "z", "x", "y", ".."]),
        keys=["tile_path_structure"])
    add("simplify-negative", setk("simplify_tolerance", -1),
        keys=["simplify_tolerance"])
    add("input-crs-bogus", setk("input_crs", "EPSG:99999999"),
        keys=["input_crs"], late=True,
        note="found when the CRS is first needed (info never needs it)")
    add("input-crs-number", setk("input_crs", 4326), keys=["input_crs"])
    add("workers-negative", setk("vizfs_workers", -3),
        keys=["vizfs_workers"])
    add("map-size-string", setk("vizfs_cache_map_size", "big"),
        keys=["vizfs_cache_map_size"])
    add("ext-web-tiles", setk("ext_web_tiles", ".jpg"),
        keys=["ext_web_tiles"])
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: gen_corpus.py ROOT [VIZFS]")
    for c in build(sys.argv[1], sys.argv[2] if len(sys.argv) > 2
                   else "vizfs"):
        print(c["kind"], c["name"], c["config"])
