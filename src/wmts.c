/* SPDX-License-Identifier: Apache-2.0 */
/* WMTS capabilities, legends and the viewer page from the config and index. */
#include "vizfs/wmts.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vizfs/palette.h"
#include "vizfs/png.h"
#include "build_i.h"
#include "wmts_i.h"

#define EARTH_RADIUS 6378137.0
/* OGC WMTS 1.0.0 §6.1: standardized rendering pixel size, metres */
#define PIXEL_METRES 0.00028
/* legend image: one column per LUT entry */
#define LEGEND_W 256
#define LEGEND_H 16
/* the viewer gets the full tile list when the index is at most this big */
#define MAX_LISTED_TILES 50000

/* ---- text helpers ------------------------------------------------------- */


static int puts_buf(struct vz_buf *b, const char *s)
{
	return vz_buf_append(b, s, strlen(s));
}

/* XML character data and attribute values alike. */
static int xml_text(struct vz_buf *b, const char *s)
{
	int rc = 0;

	for (; *s && !rc; s++) {
		switch (*s) {
		case '&':
			rc = puts_buf(b, "&amp;");
			break;
		case '<':
			rc = puts_buf(b, "&lt;");
			break;
		case '>':
			rc = puts_buf(b, "&gt;");
			break;
		case '"':
			rc = puts_buf(b, "&quot;");
			break;
		case '\'':
			rc = puts_buf(b, "&apos;");
			break;
		default:
			/* control characters are not allowed in XML 1.0 */
			if ((unsigned char)*s < 0x20 && *s != '\t' &&
			    *s != '\n' && *s != '\r')
				rc = vz_buf_append(b, "?", 1);
			else
				rc = vz_buf_append(b, s, 1);
		}
	}
	return rc;
}

/* A JSON string; "</" is written "<\/" so that the text can sit inside a
 * <script> element. */
static int json_str(struct vz_buf *b, const char *s)
{
	int rc = vz_buf_append(b, "\"", 1);
	char prev = '\0';

	for (; *s && !rc; prev = *s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			rc = vz_buf_printf(b, "\\%c", ch);
		else if (ch == '/' && prev == '<')
			rc = puts_buf(b, "\\/");
		else if (ch < 0x20)
			rc = vz_buf_printf(b, "\\u%04x", ch);
		else
			rc = vz_buf_append(b, s, 1);
	}
	return rc ? rc : vz_buf_append(b, "\"", 1);
}

/* Shortest text that reads back as the same double, positional when the
 * magnitude allows ("90", "279541132.0143589"), else with an exponent. */
static void fmt_num(double v, char *out, size_t n)
{
	if (!isfinite(v)) {
		snprintf(out, n, "0");
		return;
	}
	if (v == 0 || (fabs(v) >= 1e-5 && fabs(v) < 1e17)) {
		for (int d = 0; d <= 20; d++) {
			snprintf(out, n, "%.*f", d, v);
			if (strtod(out, NULL) == v)
				return;
		}
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(out, n, "%.*g", p, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static int put_num(struct vz_buf *b, double v)
{
	char t[40];

	fmt_num(v, t, sizeof t);
	return puts_buf(b, t);
}

/* Percent-encode one path component for a URL (RFC 3986 unreserved
 * characters stay). */
static void put_url_comp(char *buf, size_t n, size_t *off, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char enc[4];
		size_t l;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '~') {
			enc[0] = (char)ch;
			l = 1;
		} else {
			enc[0] = '%';
			enc[1] = hex[ch >> 4];
			enc[2] = hex[ch & 15];
			l = 3;
		}
		for (size_t i = 0; i < l; i++, (*off)++)
			if (*off < n)
				buf[*off] = enc[i];
	}
}

static void put_raw(char *buf, size_t n, size_t *off, const char *s)
{
	for (; *s; s++, (*off)++)
		if (*off < n)
			buf[*off] = *s;
}

/* ---- URL templates ------------------------------------------------------ */

/* Mirrors vz_path_format(): the style part vanishes except for web tiles,
 * the extension follows the last part. */
int vz_wmts_template(const struct vz_conf *c, int stat, const char *zs,
		     const char *xs, const char *ys, char *buf, size_t n)
{
	size_t off = 0;

	if (stat >= 0 && (size_t)stat >= c->n_stats)
		return -EINVAL;
	put_raw(buf, n, &off, stat >= 0 ? "web_tiles" : "geotiff");
	for (int i = 0; i < c->n_path_parts; i++) {
		switch (c->path_parts[i]) {
		case VZ_PART_STYLE:
			if (stat < 0)
				continue;
			put_raw(buf, n, &off, "/");
			put_url_comp(buf, n, &off, c->stats[stat].name);
			break;
		case VZ_PART_TMS:
			put_raw(buf, n, &off, "/");
			put_url_comp(buf, n, &off, c->tms_id);
			break;
		case VZ_PART_Z:
			put_raw(buf, n, &off, "/");
			put_raw(buf, n, &off, zs);
			break;
		case VZ_PART_X:
			put_raw(buf, n, &off, "/");
			put_raw(buf, n, &off, xs);
			break;
		case VZ_PART_Y:
		default:
			put_raw(buf, n, &off, "/");
			put_raw(buf, n, &off, ys);
			break;
		}
	}
	if (stat >= 0)
		put_url_comp(buf, n, &off, c->ext_web_tiles);
	else
		put_raw(buf, n, &off, ".tif");
	if (off >= n) {
		if (n)
			buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	buf[off] = '\0';
	return (int)off;
}

/* ---- the pyramid's extent ----------------------------------------------- */

struct lv_range {
	bool any;
	size_t n;
	uint32_t x0, y0, x1, y1; /* inclusive */
};

static void level_range(const struct vz_wmts_level *l, struct lv_range *r)
{
	memset(r, 0, sizeof *r);
	if (!l->keys || l->n == 0)
		return;
	r->any = true;
	r->n = l->n;
	r->x0 = r->x1 = l->keys[0].x;
	r->y0 = r->y1 = l->keys[0].y;
	for (size_t i = 1; i < l->n; i++) {
		const struct vz_tile_key *k = &l->keys[i];
		r->x0 = k->x < r->x0 ? k->x : r->x0;
		r->x1 = k->x > r->x1 ? k->x : r->x1;
		r->y0 = k->y < r->y0 ? k->y : r->y0;
		r->y1 = k->y > r->y1 ? k->y : r->y1;
	}
}

static double merc_lon(double x)
{
	return x / EARTH_RADIUS * 180.0 / M_PI;
}

static double merc_lat(double y)
{
	return atan(sinh(y / EARTH_RADIUS)) * 180.0 / M_PI;
}

/* Extent in the TMS CRS and in lon/lat: the tiles with data at the deepest
 * level that has any, else the whole matrix set. */
static void pyramid_extent(const struct vz_conf *c, const struct lv_range *lr,
			   struct vz_bbox *crs, struct vz_bbox *ll)
{
	const struct vz_tms *t = c->tms;
	int z;

	for (z = c->z_max; z >= c->z_min; z--)
		if (lr[z].any)
			break;
	if (z < c->z_min) {
		vz_tms_extent(t, crs);
	} else {
		struct vz_tile_key ul = {lr[z].x0, lr[z].y0, (uint8_t)z};
		struct vz_tile_key lrk = {lr[z].x1, lr[z].y1, (uint8_t)z};
		struct vz_bbox a, b;

		vz_tms_bounds(t, &ul, &a);
		vz_tms_bounds(t, &lrk, &b);
		crs->left = a.left;
		crs->top = a.top;
		crs->right = b.right;
		crs->bottom = b.bottom;
	}
	if (t->geographic) {
		*ll = *crs;
	} else {
		ll->left = merc_lon(crs->left);
		ll->right = merc_lon(crs->right);
		ll->bottom = merc_lat(crs->bottom);
		ll->top = merc_lat(crs->top);
	}
}

/* ---- colour ranges ------------------------------------------------------ */

/* The colour range of statistic s at zoom z; an end stays unset when the
 * config leaves it to the data and the caller did not compute it. */
static void stat_range(const struct vz_conf *c, const struct vz_wmts_input *in,
		       int s, int z, struct vz_range *r)
{
	vz_conf_range(c, s, z, r);
	if (c->range_mode == VZ_RANGE_PER_ZOOM && in->zrange && in->zrange_ok &&
	    in->zrange_ok[z])
		for (int e = 0; e < 2; e++)
			if (!r->set[e]) {
				r->v[e] = in->zrange[z][s][e];
				r->set[e] = isfinite(r->v[e]);
			}
}

static const char *auto_end(const struct vz_conf *c, int e)
{
	if (c->range_mode == VZ_RANGE_PER_TILE)
		return e ? "the maximum of each tile" :
			   "the minimum of each tile";
	return e ? "the maximum of the zoom level" :
		   "the minimum of the zoom level";
}

/* One sentence on the palette and value range of a statistic. */
static int legend_text(const struct vz_conf *c, const struct vz_wmts_input *in,
		       int s, struct vz_buf *b)
{
	const struct vz_stat *st = &c->stats[s];
	struct vz_range first, r;
	bool same = true;
	int rc;

	stat_range(c, in, s, c->z_min, &first);
	for (int z = c->z_min + 1; z <= c->z_max; z++) {
		stat_range(c, in, s, z, &r);
		for (int e = 0; e < 2; e++)
			if (r.set[e] != first.set[e] ||
			    (r.set[e] && r.v[e] != first.v[e]))
				same = false;
	}
	rc = puts_buf(b, "Colours interpolated in CIE LCh over the palette [");
	if (st->n_palette == 0)
		rc = rc ? rc : puts_buf(b, "#FFFFFF, #000000");
	for (size_t i = 0; i < st->n_palette && !rc; i++) {
		rc = i ? puts_buf(b, ", ") : 0;
		rc = rc ? rc : puts_buf(b, st->palette[i]);
	}
	rc = rc ? rc : puts_buf(b, "] for values from ");
	for (int z = c->z_min; z <= c->z_max && !rc; z++) {
		stat_range(c, in, s, z, &r);
		if (!same)
			rc = vz_buf_printf(b, "%sz%d: ", z > c->z_min ? "; " : "", z);
		for (int e = 0; e < 2 && !rc; e++) {
			rc = e ? puts_buf(b, " to ") : 0;
			if (!rc && r.set[e])
				rc = put_num(b, r.v[e]);
			else if (!rc)
				rc = puts_buf(b, auto_end(c, e));
		}
		if (same)
			break;
	}
	rc = rc ? rc :
		  vz_buf_printf(b, " (%s of %s, resampled by %s)",
			  vz_agg_name(st->agg), st->property,
			  vz_resample_name(st->resample));
	if (!rc && st->has_nodata) {
		rc = puts_buf(b, "; nodata value ");
		rc = rc ? rc : put_num(b, st->nodata_val);
		rc = rc ? rc : vz_buf_printf(b, " is drawn as %s", st->nodata_color);
	}
	return rc ? rc : puts_buf(b, ".");
}

/* ---- capabilities ------------------------------------------------------- */

struct tms_desc {
	const char *crs_urn;
	bool lat_first; /* axis order of the CRS: lat,lon */
	double metres_per_unit;
};

static void describe_tms(const struct vz_tms *t, struct tms_desc *d)
{
	switch (t->kind) {
	case VZ_TMS_WORLDCRS84QUAD:
		d->crs_urn = "urn:ogc:def:crs:OGC:1.3:CRS84";
		d->lat_first = false;
		break;
	case VZ_TMS_WGS1984QUAD:
		d->crs_urn = "urn:ogc:def:crs:EPSG::4326";
		d->lat_first = true;
		break;
	case VZ_TMS_WEBMERCATORQUAD:
	default:
		d->crs_urn = "urn:ogc:def:crs:EPSG::3857";
		d->lat_first = false;
		break;
	}
	d->metres_per_unit = t->geographic ? 2 * M_PI * EARTH_RADIUS / 360.0 :
					     1.0;
}

/* "x y" in the CRS's axis order */
static int put_corner(struct vz_buf *b, const struct tms_desc *d, double x,
		      double y)
{
	int rc = put_num(b, d->lat_first ? y : x);

	rc = rc ? rc : puts_buf(b, " ");
	return rc ? rc : put_num(b, d->lat_first ? x : y);
}

static int put_url(struct vz_buf *b, const struct vz_wmts_input *in,
		   const char *rel)
{
	int rc = 0;

	if (in->base_url && in->base_url[0]) {
		size_t l = strlen(in->base_url);
		rc = xml_text(b, in->base_url);
		if (!rc && in->base_url[l - 1] != '/')
			rc = puts_buf(b, "/");
	}
	return rc ? rc : xml_text(b, rel);
}

static void legend_name(const struct vz_conf *c, int s, char *buf, size_t n,
			bool url)
{
	size_t off = 0;

	put_raw(buf, n, &off, VZ_WMTS_VIEWER_DIR "/legend-");
	if (url)
		put_url_comp(buf, n, &off, c->stats[s].name);
	else
		put_raw(buf, n, &off, c->stats[s].name);
	put_raw(buf, n, &off, ".png");
	buf[off < n ? off : n - 1] = '\0';
}

static double scale_denominator(const struct vz_conf *c,
				const struct tms_desc *d, int z)
{
	double cell = ldexp(c->tms->span0, -z) / (double)c->tile_w;

	return cell * d->metres_per_unit / PIXEL_METRES;
}

static int caps_layer(const struct vz_conf *c, const struct vz_wmts_input *in,
		      const struct lv_range *lr, const struct tms_desc *d,
		      const struct vz_bbox *crs, const struct vz_bbox *ll,
		      int s, struct vz_buf *b)
{
	const struct vz_stat *st = &c->stats[s];
	char tmpl[4096], legend[1024];
	int rc;

	rc = puts_buf(b, "    <Layer>\n      <ows:Title>");
	rc = rc ? rc : xml_text(b, st->name);
	rc = rc ? rc : puts_buf(b, "</ows:Title>\n      <ows:Abstract>");
	rc = rc ? rc : vz_buf_printf(b, "Statistic %d of %zu: ", s + 1, c->n_stats);
	if (!rc) {
		struct vz_buf t = {0};
		rc = legend_text(c, in, s, &t);
		rc = rc ? rc : vz_buf_append(&t, "", 1);
		rc = rc ? rc : xml_text(b, (const char *)t.data);
		vz_buf_free(&t);
	}
	rc = rc ? rc :
		  puts_buf(b, "</ows:Abstract>\n"
			      "      <ows:WGS84BoundingBox "
			      "crs=\"urn:ogc:def:crs:OGC:2:84\">\n"
			      "        <ows:LowerCorner>");
	rc = rc ? rc : vz_buf_printf(b, "%.9f %.9f", ll->left, ll->bottom);
	rc = rc ? rc :
		  puts_buf(b, "</ows:LowerCorner>\n"
			      "        <ows:UpperCorner>");
	rc = rc ? rc : vz_buf_printf(b, "%.9f %.9f", ll->right, ll->top);
	rc = rc ? rc :
		  puts_buf(b, "</ows:UpperCorner>\n"
			      "      </ows:WGS84BoundingBox>\n"
			      "      <ows:Identifier>");
	rc = rc ? rc : xml_text(b, st->name);
	rc = rc ? rc :
		  puts_buf(b, "</ows:Identifier>\n"
			      "      <ows:BoundingBox crs=\"");
	rc = rc ? rc : puts_buf(b, d->crs_urn);
	rc = rc ? rc : puts_buf(b, "\">\n        <ows:LowerCorner>");
	rc = rc ? rc : put_corner(b, d, crs->left, crs->bottom);
	rc = rc ? rc :
		  puts_buf(b, "</ows:LowerCorner>\n"
			      "        <ows:UpperCorner>");
	rc = rc ? rc : put_corner(b, d, crs->right, crs->top);
	rc = rc ? rc :
		  puts_buf(b, "</ows:UpperCorner>\n"
			      "      </ows:BoundingBox>\n"
			      "      <Style isDefault=\"true\">\n"
			      "        <ows:Title>");
	rc = rc ? rc : xml_text(b, st->name);
	rc = rc ? rc :
		  puts_buf(b, " palette</ows:Title>\n"
			      "        <ows:Identifier>default"
			      "</ows:Identifier>\n"
			      "        <LegendURL format=\"image/png\" "
			      "xlink:href=\"");
	legend_name(c, s, legend, sizeof legend, true);
	rc = rc ? rc : put_url(b, in, legend);
	rc = rc ? rc :
		  vz_buf_printf(b, "\" width=\"%d\" height=\"%d\"/>\n", LEGEND_W,
			  LEGEND_H);
	rc = rc ? rc :
		  puts_buf(b, "      </Style>\n"
			      "      <Format>image/png</Format>\n"
			      "      <TileMatrixSetLink>\n"
			      "        <TileMatrixSet>");
	rc = rc ? rc : xml_text(b, c->tms_id);
	rc = rc ? rc :
		  puts_buf(b, "</TileMatrixSet>\n"
			      "        <TileMatrixSetLimits>\n");
	for (int z = c->z_min; z <= c->z_max && !rc; z++) {
		/* A level without tiles gets the limits of the deepest
		 * level's extent at its resolution (the schema wants
		 * Min <= Max); its requests all answer 404. */
		uint32_t x0, y0, x1, y1;
		if (lr[z].any) {
			x0 = lr[z].x0;
			y0 = lr[z].y0;
			x1 = lr[z].x1;
			y1 = lr[z].y1;
		} else if (vz_tms_tile_range(c->tms, z, crs, &x0, &y0, &x1,
					     &y1)) {
			x0 = y0 = x1 = y1 = 0;
		}
		rc = vz_buf_printf(b,
			     "          <TileMatrixLimits>\n"
			     "            <TileMatrix>%d</TileMatrix>\n"
			     "            <MinTileRow>%u</MinTileRow>\n"
			     "            <MaxTileRow>%u</MaxTileRow>\n"
			     "            <MinTileCol>%u</MinTileCol>\n"
			     "            <MaxTileCol>%u</MaxTileCol>\n"
			     "          </TileMatrixLimits>\n",
			     z, y0, y1, x0, x1);
	}
	rc = rc ? rc :
		  puts_buf(b, "        </TileMatrixSetLimits>\n"
			      "      </TileMatrixSetLink>\n"
			      "      <ResourceURL format=\"image/png\" "
			      "resourceType=\"tile\" template=\"");
	if (!rc && vz_wmts_template(c, s, "{TileMatrix}", "{TileCol}",
				    "{TileRow}", tmpl, sizeof tmpl) < 0)
		rc = -ENAMETOOLONG;
	rc = rc ? rc : put_url(b, in, tmpl);
	return rc ? rc : puts_buf(b, "\"/>\n    </Layer>\n");
}

static int caps_tms(const struct vz_conf *c, const struct tms_desc *d,
		    struct vz_buf *b)
{
	const struct vz_tms *t = c->tms;
	int rc;

	rc = puts_buf(b, "    <TileMatrixSet>\n      <ows:Identifier>");
	rc = rc ? rc : xml_text(b, c->tms_id);
	rc = rc ? rc :
		  puts_buf(b, "</ows:Identifier>\n"
			      "      <ows:SupportedCRS>");
	rc = rc ? rc : puts_buf(b, d->crs_urn);
	rc = rc ? rc : puts_buf(b, "</ows:SupportedCRS>\n");
	for (int z = c->z_min; z <= c->z_max && !rc; z++) {
		rc = vz_buf_printf(b,
			     "      <TileMatrix>\n"
			     "        <ows:Identifier>%d</ows:Identifier>\n"
			     "        <ScaleDenominator>",
			     z);
		rc = rc ? rc : put_num(b, scale_denominator(c, d, z));
		rc = rc ? rc :
			  puts_buf(b, "</ScaleDenominator>\n"
				      "        <TopLeftCorner>");
		rc = rc ? rc : put_corner(b, d, t->left, t->top);
		rc = rc ? rc :
			  vz_buf_printf(b,
				  "</TopLeftCorner>\n"
				  "        <TileWidth>%u</TileWidth>\n"
				  "        <TileHeight>%u</TileHeight>\n"
				  "        <MatrixWidth>%u</MatrixWidth>\n"
				  "        <MatrixHeight>%u</MatrixHeight>\n"
				  "      </TileMatrix>\n",
				  c->tile_w, c->tile_h, vz_tms_cols(t, z),
				  vz_tms_rows(t, z));
	}
	return rc ? rc : puts_buf(b, "    </TileMatrixSet>\n");
}

/* "vizfs: coverage, polygon_count" -- from the content, not the config's
 * file name, so that every tree of one pyramid gets the same bytes. */
static void default_title(const struct vz_conf *c, char *buf, size_t n)
{
	size_t off = 0;

	put_raw(buf, n, &off, "vizfs: ");
	for (size_t i = 0; i < c->n_stats && i < 6; i++) {
		put_raw(buf, n, &off, i ? ", " : "");
		put_raw(buf, n, &off, c->stats[i].name);
	}
	if (c->n_stats > 6)
		put_raw(buf, n, &off, ", ...");
	buf[off < n ? off : n - 1] = '\0';
}

int vz_wmts_capabilities(const struct vz_conf *c,
			 const struct vz_wmts_input *in, struct vz_buf *out)
{
	struct lv_range lr[VZ_MAX_ZOOM + 1];
	struct vz_bbox crs, ll;
	struct tms_desc d;
	char title[512];
	int rc;

	for (int z = 0; z <= VZ_MAX_ZOOM; z++) {
		if (z >= c->z_min && z <= c->z_max)
			level_range(&in->level[z], &lr[z]);
		else
			memset(&lr[z], 0, sizeof lr[z]);
	}
	pyramid_extent(c, lr, &crs, &ll);
	describe_tms(c->tms, &d);
	if (in->title)
		snprintf(title, sizeof title, "%s", in->title);
	else
		default_title(c, title, sizeof title);

	rc = puts_buf(
		out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Capabilities xmlns=\"http://www.opengis.net/wmts/1.0\"\n"
		"    xmlns:ows=\"http://www.opengis.net/ows/1.1\"\n"
		"    xmlns:xlink=\"http://www.w3.org/1999/xlink\"\n"
		"    xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
		"    xmlns:gml=\"http://www.opengis.net/gml\"\n"
		"    xsi:schemaLocation=\"http://www.opengis.net/wmts/1.0 "
		"http://schemas.opengis.net/wmts/1.0/"
		"wmtsGetCapabilities_response.xsd\"\n"
		"    version=\"1.0.0\">\n"
		"  <ows:ServiceIdentification>\n"
		"    <ows:Title>");
	rc = rc ? rc : xml_text(out, title);
	rc = rc ? rc :
		  puts_buf(out, "</ows:Title>\n"
				"    <ows:Abstract>PDG web tiles served "
				"by vizfs " VZ_VERSION "</ows:Abstract>\n"
				"    <ows:ServiceType>OGC WMTS"
				"</ows:ServiceType>\n"
				"    <ows:ServiceTypeVersion>1.0.0"
				"</ows:ServiceTypeVersion>\n"
				"  </ows:ServiceIdentification>\n"
				"  <Contents>\n");
	for (size_t s = 0; s < c->n_stats && !rc; s++)
		rc = caps_layer(c, in, lr, &d, &crs, &ll, (int)s, out);
	rc = rc ? rc : caps_tms(c, &d, out);
	rc = rc ? rc :
		  puts_buf(out, "  </Contents>\n"
				"  <ServiceMetadataURL xlink:href=\"");
	rc = rc ? rc : put_url(out, in, VZ_WMTS_CAPABILITIES);
	return rc ? rc : puts_buf(out, "\"/>\n</Capabilities>\n");
}

/* ---- viewer configuration (JSON inside index.html) ---------------------- */

static int json_num_or_null(struct vz_buf *b, bool set, double v)
{
	return set && isfinite(v) ? put_num(b, v) : puts_buf(b, "null");
}

static int viewer_json(const struct vz_conf *c, const struct vz_wmts_input *in,
		       const struct vz_lut *luts, const char *title,
		       struct vz_buf *b)
{
	struct lv_range lr[VZ_MAX_ZOOM + 1];
	struct vz_bbox crs, ll;
	char tmpl[4096], legend[1024];
	size_t total = 0;
	int rc;

	for (int z = 0; z <= VZ_MAX_ZOOM; z++) {
		if (z >= c->z_min && z <= c->z_max)
			level_range(&in->level[z], &lr[z]);
		else
			memset(&lr[z], 0, sizeof lr[z]);
		total += lr[z].n;
	}
	pyramid_extent(c, lr, &crs, &ll);

	rc = puts_buf(b, "{\"title\":");
	rc = rc ? rc : json_str(b, title);
	rc = rc ? rc : puts_buf(b, ",\"tms\":");
	rc = rc ? rc : json_str(b, c->tms_id);
	rc = rc ? rc :
		  vz_buf_printf(b,
			  ",\"crs\":\"%s\",\"zmin\":%d,\"zmax\":%d,"
			  "\"tile_w\":%u,\"tile_h\":%u,\"cols0\":%u,"
			  "\"rows0\":%u,\"bounds\":[",
			  c->tms->geographic ? "EPSG4326" : "EPSG3857",
			  c->z_min, c->z_max, c->tile_w, c->tile_h,
			  c->tms->cols0, c->tms->rows0);
	/* [[south, west], [north, east]] as Leaflet wants it */
	rc = rc ? rc :
		  vz_buf_printf(b, "[%.9f,%.9f],[%.9f,%.9f]]", ll.bottom, ll.left,
			  ll.top, ll.right);
	if (!rc &&
	    vz_wmts_template(c, -1, "{z}", "{x}", "{y}", tmpl, sizeof tmpl) < 0)
		rc = -ENAMETOOLONG;
	rc = rc ? rc : puts_buf(b, ",\"tif\":");
	rc = rc ? rc : json_str(b, tmpl);
	/* levels: [x0, y0, x1, y1, n] or null */
	rc = rc ? rc : puts_buf(b, ",\"levels\":[");
	for (int z = 0; z <= c->z_max && !rc; z++) {
		rc = z ? puts_buf(b, ",") : 0;
		if (!rc && lr[z].any)
			rc = vz_buf_printf(b, "[%u,%u,%u,%u,%zu]", lr[z].x0, lr[z].y0,
				     lr[z].x1, lr[z].y1, lr[z].n);
		else if (!rc)
			rc = puts_buf(b, "null");
	}
	/* tiles: flat [x, y, x, y, ...] per level when the index is small;
	 * the viewer requests only those (no 404s) */
	rc = rc ? rc : puts_buf(b, "],\"tiles\":");
	if (!rc && total <= MAX_LISTED_TILES) {
		rc = puts_buf(b, "[");
		for (int z = 0; z <= c->z_max && !rc; z++) {
			const struct vz_wmts_level *l = &in->level[z];
			rc = puts_buf(b, z ? ",[" : "[");
			for (size_t i = 0; lr[z].any && i < l->n && !rc; i++)
				rc = vz_buf_printf(b, "%s%u,%u", i ? "," : "",
					     l->keys[i].x, l->keys[i].y);
			rc = rc ? rc : puts_buf(b, "]");
		}
		rc = rc ? rc : puts_buf(b, "]");
	} else if (!rc) {
		rc = puts_buf(b, "null");
	}
	rc = rc ? rc : puts_buf(b, ",\"stats\":[");
	for (size_t s = 0; s < c->n_stats && !rc; s++) {
		const struct vz_stat *st = &c->stats[s];
		const struct vz_lut *lut = &luts[s];

		rc = s ? puts_buf(b, ",") : 0;
		rc = rc ? rc : puts_buf(b, "{\"name\":");
		rc = rc ? rc : json_str(b, st->name);
		if (!rc && vz_wmts_template(c, (int)s, "{z}", "{x}", "{y}",
					    tmpl, sizeof tmpl) < 0)
			rc = -ENAMETOOLONG;
		rc = rc ? rc : puts_buf(b, ",\"png\":");
		rc = rc ? rc : json_str(b, tmpl);
		legend_name(c, (int)s, legend, sizeof legend, true);
		rc = rc ? rc : puts_buf(b, ",\"legend\":");
		rc = rc ? rc : json_str(b, legend);
		rc = rc ? rc :
			  vz_buf_printf(b,
				  ",\"agg\":\"%s\",\"resample\":\"%s\","
				  "\"property\":",
				  vz_agg_name(st->agg),
				  vz_resample_name(st->resample));
		rc = rc ? rc : json_str(b, st->property);
		rc = rc ? rc : puts_buf(b, ",\"nodata_val\":");
		rc = rc ? rc :
			  json_num_or_null(b, st->has_nodata, st->nodata_val);
		rc = rc ? rc : puts_buf(b, ",\"auto\":");
		rc = rc ? rc :
			  json_str(b, c->range_mode == VZ_RANGE_PER_TILE ?
					      "tile" :
					      "zoom");
		rc = rc ? rc : puts_buf(b, ",\"ranges\":[");
		for (int z = 0; z <= c->z_max && !rc; z++) {
			struct vz_range r;
			stat_range(c, in, (int)s, z, &r);
			rc = vz_buf_printf(b, "%s[", z ? "," : "");
			rc = rc ? rc : json_num_or_null(b, r.set[0], r.v[0]);
			rc = rc ? rc : puts_buf(b, ",");
			rc = rc ? rc : json_num_or_null(b, r.set[1], r.v[1]);
			rc = rc ? rc : puts_buf(b, "]");
		}
		rc = rc ? rc : puts_buf(b, "],\"lut\":\"");
		for (int i = 0; i < 257 && !rc; i++)
			rc = vz_buf_printf(b, "%02x%02x%02x%02x", lut->rgba[i][0],
				     lut->rgba[i][1], lut->rgba[i][2],
				     lut->rgba[i][3]);
		rc = rc ? rc : puts_buf(b, "\"}");
	}
	return rc ? rc : puts_buf(b, "]}");
}

/* ---- the site ------------------------------------------------------------ */

/* A file and, for generated files, the buffer that holds its bytes. */
struct site_entry {
	struct vz_wmts_file f; /* first: handed out as a pointer */
	struct vz_buf own;
};

struct vz_wmts_site {
	struct site_entry *e;
	size_t n, cap;
};

bool vz_wmts_have_viewer(void)
{
	return vz_wmts_n_assets > 0;
}

/* index of the embedded file @p name, or -1 */
static long asset(const char *name)
{
	for (size_t i = 0; i < vz_wmts_n_assets; i++)
		if (strcmp(vz_wmts_asset_name[i], name) == 0)
			return (long)i;
	return -1;
}

/* Add a file; @p gen (generated bytes) is taken over, or @p data is
 * borrowed static storage. */
static int site_add(struct vz_wmts_site *s, const char *path,
		    struct vz_buf *gen, const uint8_t *data, size_t len)
{
	struct site_entry *e;
	char *p;

	if (s->n == s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 16;
		e = realloc(s->e, nc * sizeof *e);
		if (!e)
			return -ENOMEM;
		s->e = e;
		s->cap = nc;
	}
	p = strdup(path);
	if (!p)
		return -ENOMEM;
	e = &s->e[s->n++];
	memset(e, 0, sizeof *e);
	if (gen) {
		e->own = *gen;
		memset(gen, 0, sizeof *gen);
		data = e->own.data;
		len = e->own.len;
	}
	e->f.path = p;
	e->f.data = data ? data : (const uint8_t *)"";
	e->f.len = len;
	return 0;
}

/* root files first, then by path */
static int cmp_entry(const void *a, const void *b)
{
	const struct site_entry *p = a, *q = b;
	bool pr = !strchr(p->f.path, '/'), qr = !strchr(q->f.path, '/');

	if (pr != qr)
		return pr ? -1 : 1;
	return strcmp(p->f.path, q->f.path);
}

static int legend_png(const struct vz_lut *lut, struct vz_buf *out)
{
	uint8_t rgba[LEGEND_W * LEGEND_H * 4];

	for (int y = 0; y < LEGEND_H; y++)
		for (int x = 0; x < LEGEND_W; x++)
			memcpy(rgba + 4 * (y * LEGEND_W + x), lut->rgba[x], 4);
	return vz_png_encode(rgba, LEGEND_W, LEGEND_H, out);
}

/* index.html from its template: @TITLE@ (HTML text) and @CONFIG@ (JSON). */
static int index_html(long tpl, const char *title, const struct vz_buf *json,
		      struct vz_buf *out)
{
	const char *p = (const char *)vz_wmts_asset_data[tpl];
	const char *end = p + vz_wmts_asset_len[tpl];
	int rc = 0;

	while (p < end && !rc) {
		const char *at = memchr(p, '@', (size_t)(end - p));
		if (!at)
			at = end;
		rc = vz_buf_append(out, p, (size_t)(at - p));
		p = at;
		if (rc || p == end)
			break;
		if ((size_t)(end - p) >= 7 && memcmp(p, "@TITLE@", 7) == 0) {
			rc = xml_text(out, title);
			p += 7;
		} else if ((size_t)(end - p) >= 8 &&
			   memcmp(p, "@CONFIG@", 8) == 0) {
			rc = vz_buf_append(out, json->data, json->len);
			p += 8;
		} else {
			rc = vz_buf_append(out, p, 1);
			p++;
		}
	}
	return rc;
}

int vz_wmts_site_new(const struct vz_conf *c, const struct vz_wmts_input *in,
		     struct vz_wmts_site **out)
{
	struct vz_wmts_site *s;
	struct vz_lut *luts = NULL;
	struct vz_buf b = {0};
	char title[512], name[1024];
	int rc;

	*out = NULL;
	s = calloc(1, sizeof *s);
	luts = calloc(c->n_stats ? c->n_stats : 1, sizeof *luts);
	if (!s || !luts) {
		rc = -ENOMEM;
		goto fail;
	}
	if (in->title)
		snprintf(title, sizeof title, "%s", in->title);
	else
		default_title(c, title, sizeof title);
	for (size_t i = 0; i < c->n_stats; i++) {
		const struct vz_stat *st = &c->stats[i];
		rc = vz_lut_build((const char *const *)st->palette,
				  st->n_palette, st->nodata_color, &luts[i]);
		if (rc) {
			vz_err_prefix("statistic %s: ", st->name);
			goto fail;
		}
		rc = legend_png(&luts[i], &b);
		if (rc) {
			vz_err_set("legend of statistic %s: %s", st->name,
				   vz_strerror(rc));
			goto fail;
		}
		legend_name(c, (int)i, name, sizeof name, false);
		rc = site_add(s, name, &b, NULL, 0);
		if (rc)
			goto fail;
	}
	rc = vz_wmts_capabilities(c, in, &b);
	rc = rc ? rc : site_add(s, VZ_WMTS_CAPABILITIES, &b, NULL, 0);
	if (rc)
		goto fail;
	for (size_t i = 0; i < vz_wmts_n_assets; i++) {
		if (strcmp(vz_wmts_asset_name[i], "index.html.in") == 0)
			continue;
		rc = site_add(s, vz_wmts_asset_name[i], NULL,
			      vz_wmts_asset_data[i], vz_wmts_asset_len[i]);
		if (rc)
			goto fail;
	}
	if (asset("index.html.in") >= 0) {
		struct vz_buf json = {0};
		rc = viewer_json(c, in, luts, title, &json);
		rc = rc ? rc :
			  index_html(asset("index.html.in"), title, &json, &b);
		vz_buf_free(&json);
		rc = rc ? rc : site_add(s, VZ_WMTS_INDEX, &b, NULL, 0);
		if (rc)
			goto fail;
	}
	qsort(s->e, s->n, sizeof *s->e, cmp_entry);
	free(luts);
	*out = s;
	return 0;
fail:
	vz_buf_free(&b);
	free(luts);
	vz_wmts_site_free(s);
	return rc;
}

void vz_wmts_site_free(struct vz_wmts_site *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free((char *)s->e[i].f.path);
		vz_buf_free(&s->e[i].own);
	}
	free(s->e);
	free(s);
}

size_t vz_wmts_site_count(const struct vz_wmts_site *s)
{
	return s ? s->n : 0;
}

const struct vz_wmts_file *vz_wmts_site_file(const struct vz_wmts_site *s,
					     size_t i)
{
	return s && i < s->n ? &s->e[i].f : NULL;
}

const struct vz_wmts_file *vz_wmts_site_find(const struct vz_wmts_site *s,
					     const char *path)
{
	if (!s || !path)
		return NULL;
	if (*path == '/')
		path++;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->e[i].f.path, path) == 0)
			return &s->e[i].f;
	return NULL;
}

bool vz_wmts_site_is_dir(const struct vz_wmts_site *s, const char *path)
{
	size_t l;

	if (!s || !path)
		return false;
	if (*path == '/')
		path++;
	l = strlen(path);
	if (l == 0)
		return false;
	for (size_t i = 0; i < s->n; i++)
		if (strncmp(s->e[i].f.path, path, l) == 0 &&
		    s->e[i].f.path[l] == '/')
			return true;
	return false;
}

static int write_one(const char *dir, const struct vz_wmts_file *f)
{
	/* atomically (temporary file + rename), parents created */
	return vz_write_file(dir, f->path, f->data, f->len);
}

int vz_wmts_site_write(const struct vz_wmts_site *s, const char *dir)
{
	int rc = 0;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		vz_err_set("%s: cannot create directory: %s", dir,
			   strerror(errno));
		return rc;
	}
	for (size_t i = 0; i < s->n && !rc; i++)
		rc = write_one(dir, &s->e[i].f);
	return rc;
}
