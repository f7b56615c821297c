# SPDX-License-Identifier: Apache-2.0
"""Checks for tests/viewer/run.sh: the WMTS document, GDAL reading tiles
through it, and what the viewer page did in chromium.  Each subcommand
exits non-zero with an assertion message on failure."""
import csv
import json
import math
import os
import re
import sys
import xml.etree.ElementTree as ET

import numpy as np
from osgeo import gdal

gdal.UseExceptions()
MERC = 20037508.342789244
R = 6378137.0
NS = {"w": "http://www.opengis.net/wmts/1.0",
      "ows": "http://www.opengis.net/ows/1.1"}


def span(tms, z):
    return (180.0 if tms != "WebMercatorQuad" else 2 * MERC) / 2 ** z


def to_crs(tms, lat, lon):
    """lon/lat -> TMS CRS x, y (top-left origin handled by the caller)"""
    if tms != "WebMercatorQuad":
        return lon, lat
    return (R * math.radians(lon),
            R * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))


def from_crs(tms, x, y):
    if tms != "WebMercatorQuad":
        return x, y
    return (math.degrees(x / R),
            math.degrees(math.atan(math.sinh(y / R))))


def origin(tms):
    return (-180.0, 90.0) if tms != "WebMercatorQuad" else (-MERC, MERC)


def caps(path, tms, stats):
    """Strict XML; one layer per statistic; matrix sizes and corners."""
    root = ET.parse(path).getroot()
    layers = [l.find("ows:Identifier", NS).text
              for l in root.iter("{%s}Layer" % NS["w"])]
    assert layers == stats.split(","), layers
    n = 0
    for m in root.iter("{%s}TileMatrix" % NS["w"]):
        ident = m.find("ows:Identifier", NS)
        if ident is None:
            continue
        z, n = int(ident.text), n + 1
        cols = 2 ** (z + 1) if tms != "WebMercatorQuad" else 2 ** z
        assert int(m.find("w:MatrixWidth", NS).text) == cols, z
        assert int(m.find("w:MatrixHeight", NS).text) == 2 ** z, z
        corner = m.find("w:TopLeftCorner", NS).text
        want = {"WGS1984Quad": "90 -180", "WorldCRS84Quad": "-180 90",
                "WebMercatorQuad": "-20037508.342789244 20037508.342789244"}
        assert corner == want[tms], (tms, corner)
    assert n > 0
    print("capabilities: %d layers, %d tile matrices" % (len(layers), n))


def gdal_wmts(caps_path, root, tms, z, tw):
    """GDAL's WMTS driver fetches one zoom level through the document and
    gets exactly the pixels of the PNG tiles (mosaicked from the files)."""
    z, tw = int(z), int(tw)
    ds = gdal.Open("WMTS:%s,layer=coverage,tilematrix=%d" % (caps_path, z))
    gt = ds.GetGeoTransform()
    px = span(tms, z) / tw
    assert abs(gt[1] - px) < 1e-9 * px and abs(gt[5] + px) < 1e-9 * px, gt
    ox, oy = origin(tms)
    gx0, gy0 = round((gt[0] - ox) / px), round((oy - gt[3]) / px)
    assert abs(ox + gx0 * px - gt[0]) < 1e-6 * px, gt
    assert abs(oy - gy0 * px - gt[3]) < 1e-6 * px, gt
    a = ds.ReadAsArray()
    w, h = ds.RasterXSize, ds.RasterYSize
    tx0, ty0 = gx0 // tw, gy0 // tw
    tx1, ty1 = (gx0 + w - 1) // tw, (gy0 + h - 1) // tw
    m = np.zeros((4, (ty1 - ty0 + 1) * tw, (tx1 - tx0 + 1) * tw), a.dtype)
    n = 0
    for tx in range(tx0, tx1 + 1):
        for ty in range(ty0, ty1 + 1):
            f = "%s/web_tiles/coverage/%s/%d/%d/%d.png" % (root, tms, z,
                                                           tx, ty)
            if os.path.exists(f):
                n += 1
                m[:, (ty - ty0) * tw:(ty - ty0 + 1) * tw,
                  (tx - tx0) * tw:(tx - tx0 + 1) * tw] = \
                    gdal.Open(f).ReadAsArray()
    want = m[:, gy0 - ty0 * tw:gy0 - ty0 * tw + h,
             gx0 - tx0 * tw:gx0 - tx0 * tw + w]
    assert n > 0 and want[3].max() > 0, "no data at z%d" % z
    assert (a == want).all(), "WMTS pixels differ from the PNG tiles"
    print("gdal wmts %s: z%d %dx%d pixels from %d tiles match"
          % (tms, z, w, h, n))


def point(root, tms, z, tw):
    """lat,lon of the centre of the largest pixel of the fullest tile at z"""
    z, tw = int(z), int(tw)
    d = "%s/geotiff/%s/%d" % (root, tms, z)
    best = None
    for x in sorted(os.listdir(d), key=int):
        for f in sorted(os.listdir(d + "/" + x)):
            ds = gdal.Open(d + "/" + x + "/" + f)
            a = ds.GetRasterBand(1).ReadAsArray()
            ds = None
            if a.max() > 0 and (best is None or (a > 0).sum() > best[0]):
                best = ((a > 0).sum(), int(x), int(f[:-4]), a)
    _, x, y, a = best
    r, c = np.argwhere(a == a.max())[0]
    s = span(tms, z)
    ox, oy = origin(tms)
    lon, lat = from_crs(tms, ox + (x + (c + 0.5) / tw) * s,
                        oy - (y + (r + 0.5) / tw) * s)
    print("%.12f,%.12f" % (lat, lon))


def attrs_of(dom):
    body = re.search(r"<body([^>]*)>", open(dom).read()).group(1)
    return {k: v.replace("&quot;", '"')
            for k, v in re.findall(r'data-([\w-]+)="([^"]*)"', body)}


def page(dom, shot, log, prefix, root, tms, pt, tw):
    """The page loaded tiles without errors, every tile request got a 200
    for a tile that exists, the screenshot shows data, and the click
    readout found the right pixel and read the GeoTIFF's values there."""
    tw = int(tw)
    a = attrs_of(dom)
    loaded, errors = int(a.get("tiles-loaded", 0)), \
        int(a.get("tiles-errors", -1))
    print("%s: loaded %d tiles, %d errors, layer %s, zoom %s"
          % (prefix, loaded, errors, a.get("layer"), a.get("zoom")))
    assert loaded > 0 and errors == 0, a
    assert a.get("layer") == "coverage" == a.get("legend"), a
    tiles = [l.split(" ", 1) for l in open(log).read().splitlines()]
    tiles = [t for t in tiles if t[1].startswith(prefix + "web_tiles/")]
    assert len(tiles) >= loaded, (len(tiles), loaded)
    bad = [t for t in tiles if t[0] not in ("200", "304")]
    assert not bad, "tile requests failed: %s" % bad[:5]
    for _, uri in tiles:
        assert os.path.exists(os.path.join(root, uri[len(prefix):])), uri
    img = gdal.Open(shot).ReadAsArray().astype(int)
    r, g, b = img[0], img[1], img[2]
    data = ((r > 180) & (g > 180) & (b < 150)).sum()
    print("%s: %d data pixels of %d in the screenshot" % (prefix, data,
                                                        r.size))
    assert data > 2000, "the screenshot shows no data"
    probe = json.loads(a["probe"])
    z = probe["z"]
    lat, lon = map(float, pt.split(","))
    x, y = to_crs(tms, lat, lon)
    ox, oy = origin(tms)
    fx, fy = (x - ox) / span(tms, z), (oy - y) / span(tms, z)
    want = (int(fx), int(fy), int((fx % 1) * tw), int((fy % 1) * tw))
    got = (probe["x"], probe["y"], probe["col"], probe["row"])
    assert got == want, ("probe pixel", got, want)
    tif = gdal.Open("%s/geotiff/%s/%d/%d/%d.tif" % (root, tms, z, want[0],
                                                    want[1]))
    for i in range(tif.RasterCount):
        band = tif.GetRasterBand(i + 1)
        v = float(band.ReadAsArray()[want[3], want[2]])
        assert probe["values"][band.GetDescription()] == v, \
            (band.GetDescription(), probe["values"], v)
    assert probe["values"]["coverage"] > 0, probe
    print("%s: probe %s" % (prefix, probe))


def legend(dom, summary, stat):
    """A legend without a configured max shows the zoom's max from
    rasters_summary.csv."""
    a = attrs_of(dom)
    assert a.get("legend") == stat, a
    z = int(a["zoom"])
    rows = [r for r in csv.DictReader(open(summary))
            if r["stat"] == stat and int(r["z"]) == z]
    want = [0, max(float(r["max"]) for r in rows)]
    got = json.loads(a["legend-range"])
    assert got == want, (got, want)
    print("legend %s z%d: %s" % (stat, z, got))


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
