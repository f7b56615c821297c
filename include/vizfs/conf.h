/* SPDX-License-Identifier: Apache-2.0 */
/* PDG JSON configuration: parsing, PDG defaults, validation. */
#ifndef VIZFS_CONF_H
#define VIZFS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vizfs/common.h"
#include "vizfs/tms.h"

#define VZ_MAX_STATS 32

enum vz_weight {
	VZ_WEIGHT_COUNT, /**< polygon -> pixel holding its centroid */
	VZ_WEIGHT_AREA,	 /**< polygon cut along pixel edges */
};

enum vz_prop {
	VZ_PROP_ATTRIBUTE,	     /**< a column of the input */
	VZ_PROP_CENTROIDS_PER_PIXEL, /**< constant 1 per polygon (count mode) */
	VZ_PROP_AREA_PER_PIXEL_AREA, /**< piece area / pixel area (area mode) */
	VZ_PROP_AREA_WITHIN_PIXEL,   /**< piece area in CRS units (fixed Q2) */
};

enum vz_agg {
	VZ_AGG_SUM,
	VZ_AGG_MEAN,
	VZ_AGG_MIN,
	VZ_AGG_MAX,
	VZ_AGG_COUNT,
	VZ_AGG_FIRST,
	VZ_AGG_LAST,
	VZ_AGG_STD, /**< sample (ddof 1); single member -> 0, not NaN (Q16) */
	VZ_AGG_VAR,
	/* Appended so that the values above (hashed into the fingerprint)
	 * never change. */
	VZ_AGG_MEDIAN,	 /**< pandas median: even count -> mean of middle two */
	VZ_AGG_NUNIQUE,	 /**< number of distinct non-NULL values */
	VZ_AGG_PROD,	 /**< product of non-NULL values (all NULL -> 1) */
	VZ_AGG_SIZE,	 /**< number of members, NULL values included */
	VZ_AGG_SEM,	 /**< std / sqrt(n); single member -> 0 */
	VZ_AGG_SKEW,	 /**< pandas bias-corrected skew; n < 3 -> 0 */
	VZ_AGG_QUANTILE, /**< pandas quantile(0.5), linear interpolation */
	VZ_AGG_MAD,	 /**< mean absolute deviation from the mean */
	VZ_AGG_ANY,	 /**< 1 if some non-NULL value is non-zero, else 0 */
	VZ_AGG_ALL,	 /**< 1 if no non-NULL value is zero, else 0 */
};

enum vz_resample {
	VZ_RS_NEAREST, /**< lower-right child pixel (GDAL 3.6 behaviour) */
	VZ_RS_AVERAGE, /**< mean of the 2x2 block, zeros included */
	VZ_RS_SUM,
	VZ_RS_MIN,
	VZ_RS_MAX,
	VZ_RS_MODE, /**< first value reaching max count, scan UL,UR,LL,LR */
	VZ_RS_MED,  /**< lower median (2nd smallest of 4) */
	VZ_RS_Q1,
	VZ_RS_Q3,
	VZ_RS_RMS,
	/* GDAL kernels, appended (fingerprint): warped like rasterio's
	 * reproject from the merged children (spec §7). */
	VZ_RS_BILINEAR,
	VZ_RS_CUBIC,
	VZ_RS_CUBIC_SPLINE,
	VZ_RS_LANCZOS,
	VZ_RS_GAUSS, /**< GDAL RasterIO gauss (the warper has none) */
};

/** deduplicate_at entries (bits). */
enum vz_dedup_at {
	VZ_DEDUP_AT_STAGING = 1,
	VZ_DEDUP_AT_RASTER = 2,
	VZ_DEDUP_AT_3DTILES = 4, /**< accepted, no effect (no 3D tiles) */
};

/** What a neighbor keep rule compares (spec §3.1). */
enum vz_keep_src {
	VZ_KEEP_ATTR,	    /**< an input column: vz_conf.attrs[attr] */
	VZ_KEEP_AREA,	    /**< staging_area (or its prop_area name) */
	VZ_KEEP_CENTROID_X, /**< staging_centroid_x */
	VZ_KEEP_CENTROID_Y, /**< staging_centroid_y */
	VZ_KEEP_FILENAME,   /**< staging_filename: string order */
};

/** One deduplicate_keep_rules entry [property, 'larger'|'smaller']. */
struct vz_keep_rule {
	char *property;
	bool larger;	      /**< the larger value is kept */
	enum vz_keep_src src; /**< neighbor; footprints read the footprint */
	int attr;	      /**< index into vz_conf.attrs, or -1 */
};

/** Colour range: either end may be unset ("compute it", PDG None). */
struct vz_range {
	double v[2];
	bool set[2];
};

enum vz_range_mode {
	VZ_RANGE_PER_ZOOM, /**< PDG intent: auto ends from all tiles of a zoom */
	VZ_RANGE_PER_TILE, /**< PDG actual behaviour (spec Q1): the tile itself */
};

enum vz_path_part {
	VZ_PART_STYLE,
	VZ_PART_TMS,
	VZ_PART_Z,
	VZ_PART_X,
	VZ_PART_Y,
};

struct vz_stat {
	char *name;
	enum vz_weight weight_by;
	char *property;	   /**< as configured */
	enum vz_prop prop; /**< keyword or attribute */
	int attr;	   /**< index into vz_conf.attrs, -1 for keywords */
	enum vz_agg agg;
	enum vz_resample resample;
	struct vz_range val_range; /**< general range; none set if absent */
	struct vz_range z_range[VZ_MAX_ZOOM + 1]; /**< z_config overrides */
	char **palette;	  /**< colour strings; NULL -> white..black */
	size_t n_palette;
	bool has_nodata;
	double nodata_val;
	char *nodata_color; /**< never NULL after load ("#ffffff00") */
};

/**
 * The effective configuration (PDG defaults | user keys).  Immutable after
 * vz_conf_load(); may be shared read-only between threads.
 */
struct vz_conf {
	char *path;	/**< config file as given ("<string>" if parsed) */
	char *base_dir; /**< directory relative paths are resolved against */

	/* PDG keys (paths already resolved against base_dir) */
	char *dir_input, *dir_staged, *dir_geotiff, *dir_web_tiles;
	char *dir_footprints;
	char *ext_input, *ext_staged, *ext_web_tiles, *ext_footprints;
	char *filename_staging_summary, *filename_rasters_summary;
	char *filename_rasterization_events;
	char *input_crs;	   /**< NULL: take the CRS from the file */
	bool has_simplify;	   /**< false when simplify_tolerance is null */
	double simplify_tolerance; /**< input-CRS units */
	const struct vz_tms *tms;
	char *tms_id; /**< as configured (WGS1984Quad / WorldCRS84Quad …) */
	enum vz_path_part path_parts[5];
	int n_path_parts;
	int z_min, z_max;
	uint32_t tile_w, tile_h; /**< tile_size is (height, width) in the PDG */
	struct vz_stat *stats;
	size_t n_stats;
	char **attrs; /**< distinct attribute columns needed by stats */
	size_t n_attrs;
	char *dedup_method; /**< NULL, "neighbor" or "footprints" */
	unsigned dedup_at;  /**< VZ_DEDUP_AT_* bits */
	struct vz_keep_rule *keep_rules; /**< deduplicate_keep_rules */
	size_t n_keep_rules;
	bool has_overlap_tol; /**< false when overlap_tolerance is null */
	double overlap_tol;   /**< deduplicate_overlap_tolerance (0.5) */
	bool overlap_both;    /**< deduplicate_overlap_both (true) */
	bool has_centroid_tol; /**< deduplicate_centroid_tolerance set */
	double centroid_tol;
	char *distance_crs;	/**< NULL: TMS CRS units (default EPSG:3857) */
	bool clip_to_footprint; /**< deduplicate_clip_to_footprint (true) */

	/* vizfs keys ("vizfs_" prefix, ignored by the PDG) */
	char *cache_dir;	/**< vizfs_cache_dir, default "<base>/.vizfs-cache" */
	uint64_t cache_map_size; /**< vizfs_cache_map_size bytes, initial map */
	int workers;		/**< vizfs_workers, 0 = number of CPUs */
	enum vz_range_mode range_mode; /**< vizfs_range_mode */

	/** Digest of everything that affects output bytes (not cache_dir,
	 *  workers, map size). 32 hex chars. */
	char fingerprint[33];
};

/**
 * Load and validate a PDG JSON config file.  Unknown keys produce one
 * warning each (vz_log); keys the PDG uses for other outputs are accepted
 * silently.  @return 0, -ENOENT/-EACCES for an unreadable file, VZ_E_CONFIG
 * for invalid content (vz_err_msg() names the key and the expected form).
 */
int vz_conf_load(const char *path, struct vz_conf **out);

/** Same from a JSON string; @p name is used in messages, relative paths are
 *  resolved against @p base_dir (NULL = cwd). */
int vz_conf_parse(const char *json, size_t len, const char *name,
		  const char *base_dir, struct vz_conf **out);

/** Free a config; NULL-safe. */
void vz_conf_free(struct vz_conf *c);

/** Index of the statistic named @p name, or -1. */
int vz_conf_stat_index(const struct vz_conf *c, const char *name);

/**
 * The configured colour range of statistic @p s at zoom @p z: the z_config
 * override for each end, else the general val_range end; ends left unset
 * must be computed by the caller (per zoom or per tile).
 */
void vz_conf_range(const struct vz_conf *c, int s, int z, struct vz_range *out);

/** Names for enums (for messages, CSVs and the fingerprint). */
const char *vz_agg_name(enum vz_agg a);
const char *vz_resample_name(enum vz_resample r);

#endif
