/* SPDX-License-Identifier: Apache-2.0 */
/* GeoTIFF tiles through GDAL's GTiff driver, written to /vsimem/. */
#include "vizfs/geotiff.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_srs_api.h>

static pthread_once_t gdal_once = PTHREAD_ONCE_INIT;

static void gdal_register(void)
{
	GDALAllRegister();
	/* Never let GDAL write .aux.xml side files or go to the network. */
	CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");
	CPLSetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR");
}

void vz_gdal_init(void)
{
	pthread_once(&gdal_once, gdal_register);
}

/* Per-thread GDAL error capture: the last message is kept for reports. */
static _Thread_local char gdal_msg[512];

static void CPL_STDCALL capture_error(CPLErr cls, CPLErrorNum no,
				      const char *msg)
{
	(void)no;
	if (cls >= CE_Failure)
		snprintf(gdal_msg, sizeof gdal_msg, "%s", msg);
}

static atomic_uint vsimem_seq;

int vz_geotiff_encode(const struct vz_conf *c, const struct vz_tile_key *k,
		      const double *bands, struct vz_buf *out)
{
	const uint32_t w = c->tile_w, h = c->tile_h;
	char name[96], *wkt = NULL;
	const char *opts[] = {"INTERLEAVE=PIXEL", NULL};
	GDALDriverH drv;
	GDALDatasetH ds = NULL;
	OGRSpatialReferenceH srs = NULL;
	struct vz_bbox b;
	double gt[6];
	vsi_l_offset len = 0;
	GByte *bytes;
	int rc = VZ_E_ENCODE;

	vz_gdal_init();
	gdal_msg[0] = '\0';
	CPLPushErrorHandler(capture_error);
	snprintf(name, sizeof name, "/vsimem/vizfs-%u-%u-%u-%u.tif",
		 atomic_fetch_add(&vsimem_seq, 1), k->z, k->x, k->y);
	drv = GDALGetDriverByName("GTiff");
	if (!drv)
		goto out;
	ds = GDALCreate(drv, name, (int)w, (int)h, (int)c->n_stats, GDT_Float64,
			(char **)opts);
	if (!ds)
		goto out;
	vz_tms_bounds(c->tms, k, &b);
	gt[0] = b.left;
	gt[1] = (b.right - b.left) / w;
	gt[2] = 0;
	gt[3] = b.top;
	gt[4] = 0;
	gt[5] = -(b.top - b.bottom) / h;
	if (GDALSetGeoTransform(ds, gt) != CE_None)
		goto out;
	srs = OSRNewSpatialReference(NULL);
	if (OSRImportFromEPSG(srs, c->tms->epsg) != OGRERR_NONE ||
	    OSRExportToWkt(srs, &wkt) != OGRERR_NONE)
		goto out;
	if (GDALSetProjection(ds, wkt) != CE_None)
		goto out;
	GDALSetMetadataItem(ds, "AREA_OR_POINT", "Area", NULL);
	for (size_t s = 0; s < c->n_stats; s++) {
		GDALRasterBandH band = GDALGetRasterBand(ds, (int)s + 1);
		GDALSetDescription(band, c->stats[s].name);
		if (GDALRasterIO(band, GF_Write, 0, 0, (int)w, (int)h,
				 (void *)(bands + s * (size_t)w * h), (int)w,
				 (int)h, GDT_Float64, 0, 0) != CE_None)
			goto out;
	}
	GDALClose(ds);
	ds = NULL;
	bytes = VSIGetMemFileBuffer(name, &len, FALSE);
	if (!bytes)
		goto out;
	rc = vz_buf_append(out, bytes, (size_t)len);
out:
	if (ds)
		GDALClose(ds);
	VSIUnlink(name);
	CPLFree(wkt);
	if (srs)
		OSRDestroySpatialReference(srs);
	CPLPopErrorHandler();
	if (rc == VZ_E_ENCODE)
		vz_err_set("GeoTIFF %u/%u/%u: %s", k->z, k->x, k->y,
			   gdal_msg[0] ? gdal_msg : "GDAL failure");
	return rc;
}
