/* SPDX-License-Identifier: Apache-2.0 */
/* Parent tiles from their four children: exact 2x2 blocks or GDAL kernels. */
#include "vizfs/pyramid.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cpl_error.h>
#include <gdal.h>
#include <gdal_utils.h>

#include "vizfs/geotiff.h"

/*
 * Each parent pixel combines one 2x2 block v[0..3] = UL, UR, LL, LR of one
 * child; a missing child is all zeros, and zeros always take part (spec §7).
 * The order statistics follow GDAL 3.6's warper on an aligned 2:1 grid,
 * which picks element floor(q * (n - 1)) of the sorted block:
 *   q1  = sorted[0] (smallest),  med = sorted[1] (lower median),
 *   q3  = sorted[2] (third smallest).
 * (Checked with gdal.Warp -r q1/med/q3 on 2x2 -> 1x1 blocks.)
 */

static void sort4(const double v[4], double s[4])
{
	for (int i = 0; i < 4; i++) {
		double x = v[i];
		int j = i;

		while (j > 0 && s[j - 1] > x) {
			s[j] = s[j - 1];
			j--;
		}
		s[j] = x;
	}
}

/* GDAL's mode: scan UL, UR, LL, LR counting equal values; the value whose
 * count first exceeds the best count so far wins (all distinct -> UL). */
static double mode4(const double v[4])
{
	int best = 0, best_n = 0;

	for (int i = 0; i < 4; i++) {
		int n = 0;

		for (int j = 0; j <= i; j++)
			n += v[j] == v[i];
		if (n > best_n) {
			best_n = n;
			best = i;
		}
	}
	return v[best];
}

static double combine(enum vz_resample m, const double v[4])
{
	double s[4];

	switch (m) {
	case VZ_RS_NEAREST:
		return v[3];
	case VZ_RS_AVERAGE:
		return ((v[0] + v[1]) + (v[2] + v[3])) / 4;
	case VZ_RS_SUM:
		return (v[0] + v[1]) + (v[2] + v[3]);
	case VZ_RS_MIN:
		return fmin(fmin(v[0], v[1]), fmin(v[2], v[3]));
	case VZ_RS_MAX:
		return fmax(fmax(v[0], v[1]), fmax(v[2], v[3]));
	case VZ_RS_MODE:
		return mode4(v);
	case VZ_RS_MED:
		sort4(v, s);
		return s[1];
	case VZ_RS_Q1:
		sort4(v, s);
		return s[0];
	case VZ_RS_Q3:
		sort4(v, s);
		return s[2];
	case VZ_RS_RMS:
		return sqrt(((v[0] * v[0] + v[1] * v[1]) +
			     (v[2] * v[2] + v[3] * v[3])) /
			    4);
	case VZ_RS_BILINEAR:
	case VZ_RS_CUBIC:
	case VZ_RS_CUBIC_SPLINE:
	case VZ_RS_LANCZOS:
	case VZ_RS_GAUSS:
		break; /* whole-tile GDAL kernels, see kernel_stats() */
	}
	return 0;
}

/*
 * Kernel methods (spec §7).  The PDG merges the children that exist with
 * rasterio.merge (union of their extents, empty quadrants inside it = 0)
 * and warps that grid onto the parent grid with rasterio's reproject, i.e.
 * GDAL's warper: bilinear/cubic/cubicspline/lanczos use GDAL's kernels
 * widened for the 2:1 downsampling, and the edge of the merged extent is a
 * raster edge (the kernel is renormalised there, it does not see zeros);
 * parent pixels outside the merged extent stay 0.  vizfs does the same
 * with MEM datasets in exact child-pixel coordinates (the PDG's ~1e-13
 * bound errors and their spill values, Q3, are not reproduced).
 * GDAL's warper has no gauss (rasterio refuses it, so the PDG cannot build
 * parents with it); vizfs uses GDAL's RasterIO gauss downsampling there,
 * which is what gdal_translate -r gauss and gdaladdo do (GDAL computes it
 * in float32, and centres it on each block's lower-right child pixel).
 */

static bool is_kernel(enum vz_resample m)
{
	return m == VZ_RS_BILINEAR || m == VZ_RS_CUBIC ||
	       m == VZ_RS_CUBIC_SPLINE || m == VZ_RS_LANCZOS ||
	       m == VZ_RS_GAUSS;
}

static const char *gdal_alg(enum vz_resample m)
{
	switch (m) {
	case VZ_RS_BILINEAR:
		return "bilinear";
	case VZ_RS_CUBIC:
		return "cubic";
	case VZ_RS_CUBIC_SPLINE:
		return "cubicspline";
	case VZ_RS_LANCZOS:
		return "lanczos";
	default:
		return "gauss";
	}
}

/* Per-call GDAL error capture (the handler stack is thread-local). */
struct gdal_err {
	char msg[256];
};

static void CPL_STDCALL capture(CPLErr cls, CPLErrorNum no, const char *msg)
{
	struct gdal_err *e = CPLGetErrorHandlerUserData();

	(void)no;
	if (e && cls >= CE_Failure && !e->msg[0])
		snprintf(e->msg, sizeof e->msg, "%s", msg);
}

/* The merged children grid: quadrants [qx0, qx1] x [qy0, qy1]. */
struct merged {
	int qx0, qx1, qy0, qy1;
	size_t sw, sh; /* size in child pixels */
};

static bool merged_extent(const double *const child[4], size_t w, size_t h,
			  struct merged *m)
{
	m->qx0 = m->qy0 = 2;
	m->qx1 = m->qy1 = -1;
	for (int q = 0; q < 4; q++) {
		int qx = q & 1, qy = q >> 1;

		if (!child[q])
			continue;
		m->qx0 = qx < m->qx0 ? qx : m->qx0;
		m->qx1 = qx > m->qx1 ? qx : m->qx1;
		m->qy0 = qy < m->qy0 ? qy : m->qy0;
		m->qy1 = qy > m->qy1 ? qy : m->qy1;
	}
	if (m->qx1 < 0)
		return false;
	m->sw = (size_t)(m->qx1 - m->qx0 + 1) * w;
	m->sh = (size_t)(m->qy1 - m->qy0 + 1) * h;
	return true;
}

/* Load plane k of every child into band 1 of @p src (missing = 0). */
static int load_children(GDALDatasetH src, const struct merged *m,
			 const double *const child[4], size_t k, size_t w,
			 size_t h)
{
	GDALRasterBandH b = GDALGetRasterBand(src, 1);

	if (GDALFillRaster(b, 0, 0) != CE_None)
		return -1;
	for (int q = 0; q < 4; q++) {
		int qx = q & 1, qy = q >> 1;

		if (!child[q])
			continue;
		if (GDALRasterIO(b, GF_Write, (int)((qx - m->qx0) * w),
				 (int)((qy - m->qy0) * h), (int)w, (int)h,
				 (void *)(child[q] + k * w * h), (int)w, (int)h,
				 GDT_Float64, 0, 0) != CE_None)
			return -1;
	}
	return 0;
}

static GDALDatasetH mem_create(size_t w, size_t h, const double gt[6])
{
	GDALDriverH drv = GDALGetDriverByName("MEM");
	GDALDatasetH ds;

	if (!drv)
		return NULL;
	ds = GDALCreate(drv, "", (int)w, (int)h, 1, GDT_Float64, NULL);
	if (ds && GDALSetGeoTransform(ds, (double *)gt) != CE_None) {
		GDALClose(ds);
		ds = NULL;
	}
	return ds;
}

/* Warp (or gauss-downsample) band 1 of @p src into @p out (w x h). */
static int kernel_band(enum vz_resample m, GDALDatasetH src, GDALDatasetH dst,
		       const struct merged *mg, size_t w, size_t h, double *out)
{
	GDALRasterBandH db = GDALGetRasterBand(dst, 1);

	if (m == VZ_RS_GAUSS) {
		GDALRasterIOExtraArg ea;
		size_t ox = (size_t)mg->qx0 * (w / 2);
		size_t oy = (size_t)mg->qy0 * (h / 2);

		INIT_RASTERIO_EXTRA_ARG(ea);
		ea.eResampleAlg = GRIORA_Gauss;
		if (GDALRasterIOEx(GDALGetRasterBand(src, 1), GF_Read, 0, 0,
				   (int)mg->sw, (int)mg->sh, out + oy * w + ox,
				   (int)(mg->sw / 2), (int)(mg->sh / 2),
				   GDT_Float64, sizeof(double),
				   (GSpacing)(w * sizeof(double)),
				   &ea) != CE_None)
			return -1;
		return 0;
	}
	/* rasterio's reproject: -r ALG, INIT_DEST=NO_DATA without nodata
	 * (= 0); one thread so that nothing depends on scheduling. */
	char *argv[] = {(char *)"-r",  (char *)gdal_alg(m),
			(char *)"-wo", (char *)"INIT_DEST=0",
			(char *)"-wo", (char *)"NUM_THREADS=1",
			(char *)"-to", (char *)"GCPS_OK=TRUE",
			NULL};
	GDALWarpAppOptions *o = GDALWarpAppOptionsNew(argv, NULL);
	GDALDatasetH srcs[1] = {src};
	int usage = 0;

	if (!o)
		return -1;
	if (!GDALWarp(NULL, dst, 1, srcs, o, &usage) || usage) {
		GDALWarpAppOptionsFree(o);
		return -1;
	}
	GDALWarpAppOptionsFree(o);
	if (GDALRasterIO(db, GF_Read, 0, 0, (int)w, (int)h, out, (int)w, (int)h,
			 GDT_Float64, 0, 0) != CE_None)
		return -1;
	return 0;
}

/* All kernel statistics of one parent.  @return 0 or VZ_E_RENDER. */
static int kernel_stats(const struct vz_conf *c, const double *const child[4],
			double *parent)
{
	size_t w = c->tile_w, h = c->tile_h, npx = w * h;
	struct gdal_err err = {{0}};
	GDALDatasetH src = NULL, dst = NULL;
	struct merged mg;
	int rc = 0;

	for (size_t k = 0; k < c->n_stats; k++)
		if (is_kernel(c->stats[k].resample))
			memset(parent + k * npx, 0, npx * sizeof(double));
	if (!merged_extent(child, w, h, &mg))
		return 0;
	/* Child pixels are the unit; y grows north so that row 0 is north
	 * and neither geotransform is GDAL's identity default. */
	double sgt[6] = {(double)mg.qx0 * (double)w,	   1, 0,
			 (double)(2 - mg.qy0) * (double)h, 0, -1};
	double dgt[6] = {0, 2, 0, 2 * (double)h, 0, -2};

	vz_gdal_init();
	CPLPushErrorHandlerEx(capture, &err);
	src = mem_create(mg.sw, mg.sh, sgt);
	dst = mem_create(w, h, dgt);
	if (!src || !dst) {
		rc = VZ_E_RENDER;
		goto out;
	}
	for (size_t k = 0; k < c->n_stats && !rc; k++) {
		enum vz_resample m = c->stats[k].resample;

		if (!is_kernel(m))
			continue;
		if (load_children(src, &mg, child, k, w, h) ||
		    kernel_band(m, src, dst, &mg, w, h, parent + k * npx)) {
			vz_err_set("parent of statistic '%s': GDAL %s "
				   "resampling failed: %s",
				   c->stats[k].name, gdal_alg(m),
				   err.msg[0] ? err.msg : "unknown error");
			rc = VZ_E_RENDER;
		}
	}
out:
	if (rc && !err.msg[0] && (!src || !dst))
		vz_err_set("parent tile: cannot create a %zux%zu GDAL MEM "
			   "dataset",
			   mg.sw, mg.sh);
	if (dst)
		GDALClose(dst);
	if (src)
		GDALClose(src);
	CPLPopErrorHandler();
	return rc;
}

int vz_pyramid_build(const struct vz_conf *c, const double *const child[4],
		     double *parent)
{
	size_t w = c->tile_w, h = c->tile_h, hw = w / 2, hh = h / 2;
	size_t npx = w * h;
	bool kernels = false;

	for (size_t k = 0; k < c->n_stats; k++) {
		enum vz_resample m = c->stats[k].resample;
		double *out = parent + k * npx;

		if (is_kernel(m)) {
			kernels = true;
			continue;
		}
		for (int q = 0; q < 4; q++) {
			const double *ch = child[q] ? child[q] + k * npx : NULL;
			size_t px0 = (q & 1) ? hw : 0, py0 = (q & 2) ? hh : 0;

			for (size_t y = 0; y < hh; y++) {
				double *orow = out + (py0 + y) * w + px0;

				if (!ch) {
					double zero[4] = {0, 0, 0, 0};
					double z = combine(m, zero);

					for (size_t x = 0; x < hw; x++)
						orow[x] = z;
					continue;
				}
				const double *r0 = ch + 2 * y * w;
				const double *r1 = r0 + w;

				for (size_t x = 0; x < hw; x++) {
					double v[4] = {r0[2 * x], r0[2 * x + 1],
						       r1[2 * x],
						       r1[2 * x + 1]};

					orow[x] = combine(m, v);
				}
			}
		}
	}
	return kernels ? kernel_stats(c, child, parent) : 0;
}

void vz_pyramid_parent(const struct vz_conf *c, const double *const child[4],
		       double *parent)
{
	if (vz_pyramid_build(c, child, parent))
		vz_log(VZ_LOG_ERR, "%s (statistic left at 0)", vz_err_msg());
}
