/* SPDX-License-Identifier: Apache-2.0 */
/* Deterministic synthetic ice-wedge polygon sets, written as GeoPackage. */
#include "vizfs/sample.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include "vizfs/common.h"

#define TXN_FEATURES 100000
#define MAX_VERTS 9 /* 8 vertices + closing point */

struct rng {
	uint64_t s;
};

/* splitmix64: tiny, fast and the same everywhere. */
static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static double rng_range(struct rng *r, double lo, double hi)
{
	return lo + (hi - lo) * rng_unit(r);
}

/* Standard normal (Box-Muller, one value per call). */
static double rng_normal(struct rng *r)
{
	double u = rng_unit(r), v = rng_unit(r);
	return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

struct capture {
	char msg[512];
};

static void CPL_STDCALL capture_handler(CPLErr e, CPLErrorNum n,
					const char *msg)
{
	struct capture *c = CPLGetErrorHandlerUserData();
	(void)n;
	if (c && e >= CE_Failure)
		snprintf(c->msg, sizeof c->msg, "%s", msg);
}

/* A closed irregular ring of k vertices around (cx, cy), counter-clockwise
 * unless @p cw.  @return the point count including the closing point. */
static int make_ring(struct rng *r, double cx, double cy, double rmin,
		     double rmax, int k, bool cw, double *x, double *y)
{
	double a0 = rng_range(r, 0, 2 * M_PI), step = 2 * M_PI / k;

	for (int j = 0; j < k; j++) {
		double a = a0 + step * j + rng_range(r, -0.3, 0.3) * step;
		double rad = rng_range(r, rmin, rmax);
		int i = cw ? k - 1 - j : j;
		x[i] = cx + rad * cos(a);
		y[i] = cy + rad * sin(a);
	}
	x[k] = x[0];
	y[k] = y[0];
	return k + 1;
}

static double ring_area(const double *x, const double *y, int n)
{
	double s = 0;
	for (int i = 0; i + 1 < n; i++)
		s += x[i] * y[i + 1] - x[i + 1] * y[i];
	return fabs(s) / 2;
}

static OGRGeometryH ogr_ring(const double *x, const double *y, int n)
{
	OGRGeometryH g = OGR_G_CreateGeometry(wkbLinearRing);
	OGR_G_SetPoints(g, n, x, sizeof *x, y, sizeof *y, NULL, 0);
	return g;
}

/* Projected bounding box of the lon/lat box (edges sampled, since the
 * image of a lon/lat box in a polar projection is curved). */
static int grid_extent(const struct vz_sample_opts *o, OGRSpatialReferenceH dst,
		       double ext[4])
{
	OGRSpatialReferenceH ll = OSRNewSpatialReference(NULL);
	OGRCoordinateTransformationH ct = NULL;
	enum {
		N = 17
	};
	double x[4 * N], y[4 * N];
	int ok[4 * N], rc = 0;

	if (!ll || OSRImportFromEPSG(ll, 4326) != OGRERR_NONE) {
		rc = -EINVAL;
		goto out;
	}
	OSRSetAxisMappingStrategy(ll, OAMS_TRADITIONAL_GIS_ORDER);
	ct = OCTNewCoordinateTransformation(ll, dst);
	if (!ct) {
		rc = -EINVAL;
		goto out;
	}
	for (int i = 0; i < N; i++) {
		double t = (double)i / (N - 1);
		double lon = o->west + t * (o->east - o->west);
		double lat = o->south + t * (o->north - o->south);
		x[i] = lon, y[i] = o->south;
		x[N + i] = lon, y[N + i] = o->north;
		x[2 * N + i] = o->west, y[2 * N + i] = lat;
		x[3 * N + i] = o->east, y[3 * N + i] = lat;
	}
	OCTTransformEx(ct, 4 * N, x, y, NULL, ok);
	ext[0] = ext[1] = INFINITY;
	ext[2] = ext[3] = -INFINITY;
	for (int i = 0; i < 4 * N; i++) {
		if (!ok[i] || !isfinite(x[i]) || !isfinite(y[i]))
			continue;
		ext[0] = fmin(ext[0], x[i]);
		ext[1] = fmin(ext[1], y[i]);
		ext[2] = fmax(ext[2], x[i]);
		ext[3] = fmax(ext[3], y[i]);
	}
	if (!(ext[0] < ext[2] && ext[1] < ext[3]))
		rc = -EINVAL;
out:
	if (ct)
		OCTDestroyCoordinateTransformation(ct);
	if (ll)
		OSRDestroySpatialReference(ll);
	return rc;
}

int vz_sample_write(const struct vz_sample_opts *o, const char *path)
{
	const char *crs = o->crs && o->crs[0] ? o->crs : "EPSG:3413";
	double cell = o->cell_m > 0 ? o->cell_m : 12.0;
	struct capture cap = {{0}};
	OGRSpatialReferenceH srs = NULL;
	GDALDatasetH ds = NULL;
	OGRLayerH layer;
	OGRFeatureH feat = NULL;
	OGRFieldDefnH fl;
	struct rng rng = {o->seed ^ 0x5eedf00dcafeULL};
	double ext[4];
	uint64_t cols, next_report = 0, step;
	int rc = 0, f_rate, f_area, f_class;
	struct stat sb;
	GDALDriverH drv;
	const char *lco[] = {"SPATIAL_INDEX=YES", NULL};

	if (!(o->west < o->east && o->south < o->north) || o->south < -90 ||
	    o->north > 90) {
		vz_err_set("%s: invalid lon/lat box %g,%g,%g,%g", path, o->west,
			   o->south, o->east, o->north);
		return -EINVAL;
	}
	if (stat(path, &sb) == 0) {
		vz_err_set("%s: already exists", path);
		return VZ_E_ENCODE;
	}
	CPLPushErrorHandlerEx(capture_handler, &cap);
	srs = OSRNewSpatialReference(NULL);
	if (!srs || OSRSetFromUserInput(srs, crs) != OGRERR_NONE) {
		vz_err_set("%s: invalid CRS '%s'", path, crs);
		rc = -EINVAL;
		goto out;
	}
	OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
	if (grid_extent(o, srs, ext) != 0) {
		vz_err_set("%s: cannot map the lon/lat box to %s: %s", path,
			   crs, cap.msg);
		rc = -EINVAL;
		goto out;
	}
	cols = (uint64_t)floor((ext[2] - ext[0]) / cell);
	if (cols < 1)
		cols = 1;
	drv = GDALGetDriverByName("GPKG");
	ds = drv ? GDALCreate(drv, path, 0, 0, 0, GDT_Unknown, NULL) : NULL;
	if (!ds) {
		vz_err_set("%s: cannot create: %s", path,
			   cap.msg[0] ? cap.msg : "no GPKG driver");
		rc = VZ_E_ENCODE;
		goto out;
	}
	layer = GDALDatasetCreateLayer(ds, "polygons", srs, wkbUnknown,
				       (char **)lco);
	if (!layer)
		goto fail;
	fl = OGR_Fld_Create("ChangeRateNet_myr-1", OFTReal);
	OGR_L_CreateField(layer, fl, TRUE);
	OGR_Fld_Destroy(fl);
	fl = OGR_Fld_Create("Area", OFTReal);
	OGR_L_CreateField(layer, fl, TRUE);
	OGR_Fld_Destroy(fl);
	fl = OGR_Fld_Create("Class", OFTInteger);
	OGR_L_CreateField(layer, fl, TRUE);
	OGR_Fld_Destroy(fl);
	{
		OGRFeatureDefnH fd = OGR_L_GetLayerDefn(layer);
		f_rate = OGR_FD_GetFieldIndex(fd, "ChangeRateNet_myr-1");
		f_area = OGR_FD_GetFieldIndex(fd, "Area");
		f_class = OGR_FD_GetFieldIndex(fd, "Class");
		if (f_rate < 0 || f_area < 0 || f_class < 0)
			goto fail;
		feat = OGR_F_Create(fd);
	}
	if (!feat)
		goto fail;
	step = o->n / 100 ? o->n / 100 : 1;
	for (uint64_t i = 0; i < o->n; i++) {
		uint64_t row = i / cols, col = i % cols;
		double cx = ext[0] + (col + 0.5) * cell +
			    rng_range(&rng, -0.08, 0.08) * cell;
		double cy = ext[1] + (row + 0.5) * cell +
			    rng_range(&rng, -0.08, 0.08) * cell;
		double kind = rng_unit(&rng), area, v;
		double x[MAX_VERTS], y[MAX_VERTS];
		int k = 4 + (int)(rng_next(&rng) % 5), n;
		OGRGeometryH g;

		if (i % TXN_FEATURES == 0 &&
		    GDALDatasetStartTransaction(ds, FALSE) != OGRERR_NONE)
			goto fail;
		if (kind < 0.01) {
			/* a MultiPolygon of two small cells */
			double a = rng_range(&rng, 0, M_PI);
			double dx = 0.2 * cell * cos(a),
			       dy = 0.2 * cell * sin(a);
			OGRGeometryH p;
			g = OGR_G_CreateGeometry(wkbMultiPolygon);
			area = 0;
			for (int s = -1; s <= 1; s += 2) {
				n = make_ring(&rng, cx + s * dx, cy + s * dy,
					      0.12 * cell, 0.18 * cell, k,
					      false, x, y);
				area += ring_area(x, y, n);
				p = OGR_G_CreateGeometry(wkbPolygon);
				OGR_G_AddGeometryDirectly(p, ogr_ring(x, y, n));
				OGR_G_AddGeometryDirectly(g, p);
			}
		} else {
			n = make_ring(&rng, cx, cy, 0.35 * cell, 0.48 * cell, k,
				      false, x, y);
			area = ring_area(x, y, n);
			g = OGR_G_CreateGeometry(wkbPolygon);
			OGR_G_AddGeometryDirectly(g, ogr_ring(x, y, n));
			if (kind < 0.02) {
				/* a hole well inside the smallest radius */
				n = make_ring(&rng, cx, cy, 0.08 * cell,
					      0.15 * cell, 4, true, x, y);
				area -= ring_area(x, y, n);
				OGR_G_AddGeometryDirectly(g, ogr_ring(x, y, n));
			}
		}
		OGR_F_SetGeometryDirectly(feat, g);
		v = rng_normal(&rng) * 0.6;
		if (rng_unit(&rng) < 0.005)
			OGR_F_SetFieldNull(feat, f_rate);
		else
			OGR_F_SetFieldDouble(feat, f_rate,
					     fmax(-2.0, fmin(2.0, v)));
		OGR_F_SetFieldDouble(feat, f_area, area);
		OGR_F_SetFieldInteger(feat, f_class,
				      1 + (int)(rng_next(&rng) % 3));
		OGR_F_SetFID(feat, OGRNullFID);
		if (OGR_L_CreateFeature(layer, feat) != OGRERR_NONE)
			goto fail;
		if ((i + 1) % TXN_FEATURES == 0 || i + 1 == o->n) {
			if (GDALDatasetCommitTransaction(ds) != OGRERR_NONE)
				goto fail;
		}
		if (o->progress && (i + 1 >= next_report || i + 1 == o->n)) {
			o->progress(o->progress_ud, i + 1, o->n);
			next_report = i + 1 + step;
		}
	}
	OGR_F_Destroy(feat);
	feat = NULL;
	cap.msg[0] = '\0';
	GDALClose(ds);
	ds = NULL;
	if (cap.msg[0])
		goto fail;
	goto out;
fail:
	vz_err_set("%s: cannot write sample GeoPackage: %s", path,
		   cap.msg[0] ? cap.msg : "unknown GDAL error");
	rc = VZ_E_ENCODE;
	if (feat)
		OGR_F_Destroy(feat);
	if (ds)
		GDALClose(ds);
	unlink(path);
out:
	if (srs)
		OSRDestroySpatialReference(srs);
	CPLPopErrorHandler();
	return rc;
}
