/* SPDX-License-Identifier: Apache-2.0 */
/* PDG JSON configuration: PDG defaults | user keys, validation, fingerprint. */
#include "vizfs/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <proj.h>

#include "vizfs/palette.h"

#define MAX_CONF_BYTES (16u << 20)
#define MIB (1ull << 20)
#define DEFAULT_MAP_SIZE (1ull << 30)
#define MAX_MAP_SIZE (1ull << 50)
#define MAX_WORKERS 4096
#define MAX_TILE_SIDE 4096

/* Parsing context: the config being built and the name used in messages. */
struct pctx {
	struct vz_conf *c;
	const char *file;
};

static const char *const agg_names[] = {
	[VZ_AGG_SUM] = "sum",	      [VZ_AGG_MEAN] = "mean",
	[VZ_AGG_MIN] = "min",	      [VZ_AGG_MAX] = "max",
	[VZ_AGG_COUNT] = "count",     [VZ_AGG_FIRST] = "first",
	[VZ_AGG_LAST] = "last",	      [VZ_AGG_STD] = "std",
	[VZ_AGG_VAR] = "var",	      [VZ_AGG_MEDIAN] = "median",
	[VZ_AGG_NUNIQUE] = "nunique", [VZ_AGG_PROD] = "prod",
	[VZ_AGG_SIZE] = "size",	      [VZ_AGG_SEM] = "sem",
	[VZ_AGG_SKEW] = "skew",	      [VZ_AGG_QUANTILE] = "quantile",
	[VZ_AGG_MAD] = "mad",	      [VZ_AGG_ANY] = "any",
	[VZ_AGG_ALL] = "all",
};

/* pandas group-by reductions the PDG accepts but vizfs does not (yet):
 * row labels and multi-column results have no meaning as a pixel value. */
static const char *const agg_unsupported[] = {
	"idxmin",
	"idxmax",
	"ohlc",
};

static const char *const rs_names[] = {
	[VZ_RS_NEAREST] = "nearest",
	[VZ_RS_AVERAGE] = "average",
	[VZ_RS_SUM] = "sum",
	[VZ_RS_MIN] = "min",
	[VZ_RS_MAX] = "max",
	[VZ_RS_MODE] = "mode",
	[VZ_RS_MED] = "med",
	[VZ_RS_Q1] = "q1",
	[VZ_RS_Q3] = "q3",
	[VZ_RS_RMS] = "rms",
	[VZ_RS_BILINEAR] = "bilinear",
	[VZ_RS_CUBIC] = "cubic",
	[VZ_RS_CUBIC_SPLINE] = "cubic_spline",
	[VZ_RS_LANCZOS] = "lanczos",
	[VZ_RS_GAUSS] = "gauss",
};

static const char *const tms_ids[] = {
	"WorldCRS84Quad",
	"WGS1984Quad",
	"WebMercatorQuad",
};

static const char *const part_names[] = {
	[VZ_PART_STYLE] = "style", [VZ_PART_TMS] = "tms", [VZ_PART_Z] = "z",
	[VZ_PART_X] = "x",	   [VZ_PART_Y] = "y",
};

const char *vz_agg_name(enum vz_agg a)
{
	if ((unsigned)a >= VZ_ARRAY_SIZE(agg_names))
		return "?";
	return agg_names[a];
}

const char *vz_resample_name(enum vz_resample r)
{
	if ((unsigned)r >= VZ_ARRAY_SIZE(rs_names))
		return "?";
	return rs_names[r];
}

/* ---- messages ---------------------------------------------------------- */

/* A short human description of a JSON value for "got ..." messages. */
static const char *describe(json_object *v, char *buf, size_t n)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return json_object_get_boolean(v) ? "true" : "false";
	case json_type_int:
		snprintf(buf, n, "%s", json_object_to_json_string(v));
		return buf;
	case json_type_double:
		snprintf(buf, n, "%.17g", json_object_get_double(v));
		return buf;
	case json_type_string:
		snprintf(buf, n, "'%.60s%s'", json_object_get_string(v),
			 json_object_get_string_len(v) > 60 ? "..." : "");
		return buf;
	case json_type_array:
		return "a list";
	case json_type_object:
		return "an object";
	}
	return "?";
}

static int cerr(const struct pctx *x, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cerr(const struct pctx *x, const char *key, const char *fmt, ...)
{
	char msg[640];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	vz_err_set("%s: %s: %s", x->file, key, msg);
	return VZ_E_CONFIG;
}

static int expected(const struct pctx *x, const char *key, const char *what,
		    json_object *v)
{
	char b[96];
	return cerr(x, key, "expected %s, got %s", what,
		    describe(v, b, sizeof b));
}

static int nomem(void)
{
	vz_err_set("config: out of memory");
	return -ENOMEM;
}

/* ---- typed getters ----------------------------------------------------- */

/* Present (possibly null: json-c represents null as a NULL pointer). */
static bool get(json_object *root, const char *k, json_object **v)
{
	*v = NULL;
	return json_object_object_get_ex(root, k, v);
}

static bool is_number(json_object *v)
{
	return json_object_is_type(v, json_type_int) ||
	       json_object_is_type(v, json_type_double);
}

/* An integer (or an integral double) within [lo, hi]. */
static int get_int(const struct pctx *x, const char *key, json_object *v,
		   int64_t lo, int64_t hi, int64_t *out)
{
	char what[96];
	int64_t i;

	snprintf(what, sizeof what, "an integer from %lld to %lld",
		 (long long)lo, (long long)hi);
	if (json_object_is_type(v, json_type_int)) {
		i = json_object_get_int64(v);
		/* json-c keeps values beyond int64 as uint64 */
		if (i == INT64_MAX && json_object_get_uint64(v) > INT64_MAX)
			return expected(x, key, what, v);
	} else if (json_object_is_type(v, json_type_double)) {
		double d = json_object_get_double(v);
		if (!isfinite(d) || d != trunc(d) || d < -9e15 || d > 9e15)
			return expected(x, key, what, v);
		i = (int64_t)d;
	} else {
		return expected(x, key, what, v);
	}
	if (i < lo || i > hi)
		return expected(x, key, what, v);
	*out = i;
	return 0;
}

/* A finite number; @p allow_null: null sets *set = false. */
static int get_num(const struct pctx *x, const char *key, json_object *v,
		   bool allow_null, double *out, bool *set)
{
	const char *what = allow_null ? "a finite number or null" :
					"a finite number";
	if (allow_null && json_object_is_type(v, json_type_null)) {
		*set = false;
		return 0;
	}
	if (!is_number(v) || !isfinite(json_object_get_double(v)))
		return expected(x, key, what, v);
	*out = json_object_get_double(v);
	if (*out == 0)
		*out = 0; /* no negative zero: fingerprints compare bits */
	if (set)
		*set = true;
	return 0;
}

/* A string without embedded NUL; returns a borrowed pointer. */
static int get_str(const struct pctx *x, const char *key, json_object *v,
		   bool nonempty, const char **out)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return expected(x, key,
				nonempty ? "a non-empty string" : "a string",
				v);
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return cerr(x, key, "string contains a NUL character");
	if (nonempty && !*s)
		return expected(x, key, "a non-empty string", v);
	*out = s;
	return 0;
}

static int set_str(char **dst, const char *s)
{
	char *d = NULL;

	if (s && !(d = strdup(s)))
		return nomem();
	free(*dst);
	*dst = d;
	return 0;
}

static int lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static void join_names(const char *const *names, size_t n, char *buf,
		       size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
					i ? ", " : "", names[i]);
}

/* ---- paths -------------------------------------------------------------- */

/*
 * Lexical cleanup of an absolute path: collapse "//", drop "." components
 * and a trailing "/".  ".." is kept (symlinks make it non-lexical).
 */
static void clean_path(char *p)
{
	char *r = p, *w = p;

	while (*r) {
		if (*r == '/') {
			while (*r == '/')
				r++;
			if (w == p || w[-1] != '/')
				*w++ = '/';
			continue;
		}
		if (r[0] == '.' && (r[1] == '/' || r[1] == '\0') &&
		    (r == p || r[-1] == '/')) {
			r++;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
	while (w > p + 1 && w[-1] == '/')
		*--w = '\0';
}

/* base + "/" + rel unless rel is absolute; cleaned; NULL on OOM. */
static char *resolve(const char *base, const char *rel)
{
	char *out;

	if (rel[0] == '/')
		out = strdup(rel);
	else if (asprintf(&out, "%s/%s", base, rel) < 0)
		out = NULL;
	if (out)
		clean_path(out);
	return out;
}

/* An absolute version of @p dir (NULL -> cwd). */
static char *absolute_dir(const char *dir)
{
	char cwd[PATH_MAX];

	if (dir && dir[0] == '/')
		return resolve("/", dir);
	if (!getcwd(cwd, sizeof cwd))
		return NULL;
	return resolve(cwd, dir ? dir : ".");
}

/* ---- statistics --------------------------------------------------------- */

static void stat_clear(struct vz_stat *s)
{
	free(s->name);
	free(s->property);
	for (size_t i = 0; i < s->n_palette; i++)
		free(s->palette[i]);
	free(s->palette);
	free(s->nodata_color);
	memset(s, 0, sizeof *s);
}

static void stats_free(struct vz_stat *st, size_t n)
{
	for (size_t i = 0; i < n; i++)
		stat_clear(&st[i]);
	free(st);
}

static int stat_init(struct vz_stat *s)
{
	memset(s, 0, sizeof *s);
	s->attr = -1;
	s->nodata_color = strdup("#ffffff00");
	return s->nodata_color ? 0 : nomem();
}

/* The two PDG default statistics (§1.3). */
static int default_stats(struct vz_conf *c)
{
	struct vz_stat *st = calloc(2, sizeof *st);

	if (!st)
		return nomem();
	c->stats = st;
	c->n_stats = 2;
	if (stat_init(&st[0]) || stat_init(&st[1]))
		return -ENOMEM;
	st[0].name = strdup("polygon_count");
	st[0].weight_by = VZ_WEIGHT_COUNT;
	st[0].property = strdup("centroids_per_pixel");
	st[0].prop = VZ_PROP_CENTROIDS_PER_PIXEL;
	st[0].agg = VZ_AGG_SUM;
	st[0].resample = VZ_RS_SUM;
	st[0].val_range.set[0] = true;
	st[0].val_range.v[0] = 0;
	st[0].has_nodata = true;
	st[0].nodata_val = 0;

	st[1].name = strdup("coverage");
	st[1].weight_by = VZ_WEIGHT_AREA;
	st[1].property = strdup("area_per_pixel_area");
	st[1].prop = VZ_PROP_AREA_PER_PIXEL_AREA;
	st[1].agg = VZ_AGG_SUM;
	st[1].resample = VZ_RS_AVERAGE;
	st[1].val_range.set[0] = st[1].val_range.set[1] = true;
	st[1].val_range.v[0] = 0;
	st[1].val_range.v[1] = 1;
	st[1].has_nodata = true;
	st[1].nodata_val = 0;
	if (!st[0].name || !st[0].property || !st[1].name || !st[1].property)
		return nomem();
	return 0;
}

static int check_color(const struct pctx *x, const char *key, const char *s)
{
	struct vz_color col;
	char why[512];
	int rc = vz_color_parse(s, &col);

	if (rc == 0 || rc == -ENOSYS) /* -ENOSYS: palette not built yet */
		return 0;
	snprintf(why, sizeof why, "%s", vz_err_msg());
	if (!why[0])
		snprintf(why, sizeof why, "invalid colour '%.60s'", s);
	return cerr(x, key, "%s", why);
}

/* [min, max], each a finite number or null; both set -> min < max. */
static int parse_range(const struct pctx *x, const char *key, json_object *v,
		       struct vz_range *r)
{
	const char *what = "a list [min, max] of numbers or null";
	char k[160];
	int rc;

	memset(r, 0, sizeof *r);
	if (json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) != 2)
		return expected(x, key, what, v);
	for (size_t i = 0; i < 2; i++) {
		snprintf(k, sizeof k, "%s[%zu]", key, i);
		rc = get_num(x, k, json_object_array_get_idx(v, i), true,
			     &r->v[i], &r->set[i]);
		if (rc)
			return rc;
	}
	if (r->set[0] && r->set[1] && !(r->v[0] < r->v[1]))
		return cerr(x, key, "min (%.17g) must be less than max (%.17g)",
			    r->v[0], r->v[1]);
	return 0;
}

/* Keys must be canonical decimal zoom levels, as str(z) in the PDG. */
static int parse_zconfig(const struct pctx *x, const char *key, json_object *v,
			 struct vz_stat *s)
{
	char k[192];
	int rc;

	if (json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_object))
		return expected(x, key,
				"an object {\"<z>\": {\"val_range\": [...]}}",
				v);
	json_object_object_foreach(v, zk, zv)
	{
		char *end;
		long z;
		json_object *r;

		errno = 0;
		z = strtol(zk, &end, 10);
		snprintf(k, sizeof k, "%s.%s", key, zk);
		if (!*zk || *end || errno || z < 0 || z > VZ_MAX_ZOOM ||
		    !(zk[0] >= '0' && zk[0] <= '9') || (zk[0] == '0' && zk[1]))
			return cerr(x, k,
				    "z_config keys must be zoom levels 0 to %d "
				    "written as plain integers",
				    VZ_MAX_ZOOM);
		if (!json_object_is_type(zv, json_type_object))
			return expected(x, k,
					"an object {\"val_range\": [...]}", zv);
		json_object_object_foreach(zv, ik, iv)
		{
			(void)iv;
			if (strcmp(ik, "val_range") != 0)
				vz_log(VZ_LOG_WARN,
				       "config %s: unknown key '%s.%s' ignored",
				       x->file, k, ik);
		}
		if (json_object_object_get_ex(zv, "val_range", &r)) {
			snprintf(k, sizeof k, "%s.%s.val_range", key, zk);
			rc = parse_range(x, k, r, &s->z_range[z]);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int parse_palette(const struct pctx *x, const char *key, json_object *v,
			 struct vz_stat *s)
{
	size_t n;
	char k[160];
	const char *str;
	int rc;

	if (json_object_is_type(v, json_type_null))
		return 0;
	if (json_object_is_type(v, json_type_string))
		return cerr(x, key,
			    "named colormaps are not supported yet; give a "
			    "list of colours");
	if (!json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) == 0)
		return expected(x, key, "a non-empty list of colour strings",
				v);
	n = json_object_array_length(v);
	s->palette = calloc(n, sizeof *s->palette);
	if (!s->palette)
		return nomem();
	for (size_t i = 0; i < n; i++) {
		snprintf(k, sizeof k, "%s[%zu]", key, i);
		rc = get_str(x, k, json_object_array_get_idx(v, i), true, &str);
		if (!rc)
			rc = check_color(x, k, str);
		if (rc)
			return rc;
		if (!(s->palette[i] = strdup(str)))
			return nomem();
		s->n_palette = i + 1;
	}
	return 0;
}

static const char *const stat_keys[] = {
	"name",
	"weight_by",
	"property",
	"aggregation_method",
	"resampling_method",
	"val_range",
	"palette",
	"nodata_val",
	"nodata_color",
	"z_config",
};

static int parse_stat(const struct pctx *x, json_object *o, size_t i,
		      struct vz_stat *s)
{
	json_object *v[VZ_ARRAY_SIZE(stat_keys)];
	bool has[VZ_ARRAY_SIZE(stat_keys)];
	char k[VZ_ARRAY_SIZE(stat_keys)][96], base[48];
	const char *str;
	int rc, j;

	snprintf(base, sizeof base, "statistics[%zu]", i);
	if (!json_object_is_type(o, json_type_object))
		return expected(x, base, "an object", o);
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		if (lookup(stat_keys, VZ_ARRAY_SIZE(stat_keys), key) < 0)
			vz_log(VZ_LOG_WARN,
			       "config %s: unknown key '%s.%s' ignored",
			       x->file, base, key);
	}
	for (size_t n = 0; n < VZ_ARRAY_SIZE(stat_keys); n++) {
		snprintf(k[n], sizeof k[n], "%s.%s", base, stat_keys[n]);
		has[n] = get(o, stat_keys[n], &v[n]);
		if (n < 5 && !has[n])
			return cerr(x, k[n],
				    "missing (required in every statistic)");
	}

	/* name: the web-tile directory, so it must be a path component */
	if ((rc = get_str(x, k[0], v[0], true, &str)))
		return rc;
	if (strchr(str, '/') || !strcmp(str, ".") || !strcmp(str, ".."))
		return cerr(x, k[0],
			    "'%.60s' cannot be used as a directory name "
			    "(no '/', not '.' or '..')",
			    str);
	if (!(s->name = strdup(str)))
		return nomem();

	if ((rc = get_str(x, k[1], v[1], true, &str)))
		return rc;
	if (!strcmp(str, "count"))
		s->weight_by = VZ_WEIGHT_COUNT;
	else if (!strcmp(str, "area"))
		s->weight_by = VZ_WEIGHT_AREA;
	else
		return expected(x, k[1], "'count' or 'area'", v[1]);

	if ((rc = get_str(x, k[2], v[2], true, &str)))
		return rc;
	if (!(s->property = strdup(str)))
		return nomem();
	if (!strcmp(str, "centroids_per_pixel"))
		s->prop = VZ_PROP_CENTROIDS_PER_PIXEL;
	else if (!strcmp(str, "area_per_pixel_area"))
		s->prop = VZ_PROP_AREA_PER_PIXEL_AREA;
	else if (!strcmp(str, "area_within_pixel"))
		s->prop = VZ_PROP_AREA_WITHIN_PIXEL;
	else
		s->prop = VZ_PROP_ATTRIBUTE;

	if ((rc = get_str(x, k[3], v[3], true, &str)))
		return rc;
	if ((j = lookup(agg_names, VZ_ARRAY_SIZE(agg_names), str)) >= 0) {
		s->agg = (enum vz_agg)j;
	} else if (lookup(agg_unsupported, VZ_ARRAY_SIZE(agg_unsupported),
			  str) >= 0) {
		return cerr(x, k[3], "'%s' is not supported yet", str);
	} else {
		char all[160], what[200];
		join_names(agg_names, VZ_ARRAY_SIZE(agg_names), all,
			   sizeof all);
		snprintf(what, sizeof what, "one of %s", all);
		return expected(x, k[3], what, v[3]);
	}

	if ((rc = get_str(x, k[4], v[4], true, &str)))
		return rc;
	if ((j = lookup(rs_names, VZ_ARRAY_SIZE(rs_names), str)) >= 0) {
		s->resample = (enum vz_resample)j;
	} else {
		char all[160], what[200];
		join_names(rs_names, VZ_ARRAY_SIZE(rs_names), all, sizeof all);
		snprintf(what, sizeof what, "one of %s", all);
		return expected(x, k[4], what, v[4]);
	}

	if (has[5] && (rc = parse_range(x, k[5], v[5], &s->val_range)))
		return rc;
	if (has[6] && (rc = parse_palette(x, k[6], v[6], s)))
		return rc;
	if (has[7]) {
		rc = get_num(x, k[7], v[7], true, &s->nodata_val,
			     &s->has_nodata);
		if (rc)
			return rc;
	}
	if (has[8] && !json_object_is_type(v[8], json_type_null)) {
		if ((rc = get_str(x, k[8], v[8], true, &str)))
			return rc;
		if ((rc = check_color(x, k[8], str)))
			return rc;
		if ((rc = set_str(&s->nodata_color, str)))
			return rc;
	}
	if (has[9] && (rc = parse_zconfig(x, k[9], v[9], s)))
		return rc;
	return 0;
}

static int parse_stats(const struct pctx *x, json_object *v)
{
	struct vz_conf *c = x->c;
	struct vz_stat *st;
	size_t n;
	int rc;

	if (!json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) == 0)
		return expected(x, "statistics", "a non-empty list of objects",
				v);
	n = json_object_array_length(v);
	if (n > VZ_MAX_STATS)
		return cerr(x, "statistics",
			    "at most %d statistics are "
			    "supported, got %zu",
			    VZ_MAX_STATS, n);
	stats_free(c->stats, c->n_stats);
	c->stats = NULL;
	c->n_stats = 0;
	if (!(st = calloc(n, sizeof *st)))
		return nomem();
	c->stats = st;
	for (size_t i = 0; i < n; i++) {
		if ((rc = stat_init(&st[i])))
			return rc;
		c->n_stats = i + 1;
		rc = parse_stat(x, json_object_array_get_idx(v, i), i, &st[i]);
		if (rc)
			return rc;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(st[j].name, st[i].name) == 0) {
				char k[64];
				snprintf(k, sizeof k, "statistics[%zu].name",
					 i);
				return cerr(x, k,
					    "duplicate statistic name '%.60s' "
					    "(also statistics[%zu])",
					    st[i].name, j);
			}
		}
	}
	return 0;
}

/* Index of attribute column @p name in c->attrs, added when new.
 * @return the index, or -ENOMEM. */
static int attr_index(struct vz_conf *c, const char *name)
{
	size_t j;
	char **a;

	for (j = 0; j < c->n_attrs; j++)
		if (strcmp(c->attrs[j], name) == 0)
			return (int)j;
	a = realloc(c->attrs, (c->n_attrs + 1) * sizeof *a);
	if (!a)
		return nomem();
	c->attrs = a;
	if (!(a[j] = strdup(name)))
		return nomem();
	c->n_attrs++;
	return (int)j;
}

/* Distinct attribute columns, in order of first use. */
static int collect_attrs(struct vz_conf *c)
{
	for (size_t i = 0; i < c->n_stats; i++) {
		struct vz_stat *s = &c->stats[i];

		s->attr = -1;
		if (s->prop != VZ_PROP_ATTRIBUTE)
			continue;
		s->attr = attr_index(c, s->property);
		if (s->attr < 0)
			return s->attr;
	}
	return 0;
}

/*
 * Neighbor keep rules over input columns need the values in the staged
 * records, which carry only vz_conf.attrs: add those columns (read as
 * numbers like statistic attributes; the footprints method reads its rule
 * properties from the footprint files instead).
 */
static int collect_keep_attrs(struct vz_conf *c)
{
	if (!c->dedup_method || strcmp(c->dedup_method, "neighbor"))
		return 0;
	for (size_t i = 0; i < c->n_keep_rules; i++) {
		struct vz_keep_rule *r = &c->keep_rules[i];

		if (r->src != VZ_KEEP_ATTR)
			continue;
		r->attr = attr_index(c, r->property);
		if (r->attr < 0)
			return r->attr;
	}
	return 0;
}

/* ---- top-level keys ----------------------------------------------------- */

enum kkind {
	K_STR,		/* stored string (offset into vz_conf) */
	K_STR_IGN,	/* string, not used */
	K_STR_NULL_IGN, /* string or null, not used */
	K_BOOL_IGN,
	K_NUM_IGN,
	K_NUM_NULL_IGN,
	K_LIST_IGN,
	K_ANY_IGN,
	K_SPECIAL, /* handled by its own code below */
};

struct kspec {
	const char *name;
	enum kkind kind;
	size_t off;
};

#define STR_FIELD(f) K_STR, offsetof(struct vz_conf, f)

static const struct kspec keys[] = {
	{"dir_input", STR_FIELD(dir_input)},
	{"dir_staged", STR_FIELD(dir_staged)},
	{"dir_geotiff", STR_FIELD(dir_geotiff)},
	{"dir_web_tiles", STR_FIELD(dir_web_tiles)},
	{"dir_footprints", STR_FIELD(dir_footprints)},
	{"ext_input", STR_FIELD(ext_input)},
	{"ext_staged", STR_FIELD(ext_staged)},
	{"ext_web_tiles", STR_FIELD(ext_web_tiles)},
	{"ext_footprints", STR_FIELD(ext_footprints)},
	{"filename_staging_summary", STR_FIELD(filename_staging_summary)},
	{"filename_rasters_summary", STR_FIELD(filename_rasters_summary)},
	{"filename_rasterization_events",
	 STR_FIELD(filename_rasterization_events)},
	{"dir_3dtiles", K_STR_IGN, 0},
	{"filename_config", K_STR_IGN, 0},
	{"version", K_ANY_IGN, 0},
	{"geometricError", K_NUM_NULL_IGN, 0},
	{"z_coord", K_NUM_IGN, 0},
	{"title", K_STR_IGN, 0},
	{"doi", K_STR_IGN, 0},
	{"overwrite", K_BOOL_IGN, 0},
	{"enable_raster", K_BOOL_IGN, 0},
	{"enable_web_tiles", K_BOOL_IGN, 0},
	{"enable_stager", K_BOOL_IGN, 0},
	{"enable_3dtiles", K_BOOL_IGN, 0},
	{"enable_raster_parents", K_BOOL_IGN, 0},
	{"enable_web_tiles_parents", K_BOOL_IGN, 0},
	{"generate_wmtsCapabilities", K_BOOL_IGN, 0},
	{"dir_output", K_STR_NULL_IGN, 0},
	{"dir_staged_local", K_STR_NULL_IGN, 0},
	{"dir_staged_remote", K_STR_NULL_IGN, 0},
	{"dir_staged_remote_merged", K_STR_NULL_IGN, 0},
	{"dir_geotiff_local", K_STR_NULL_IGN, 0},
	{"dir_geotiff_remote", K_STR_NULL_IGN, 0},
	{"dir_footprints_local", K_STR_NULL_IGN, 0},
	{"dir_footprints_remote", K_STR_NULL_IGN, 0},
	{"deduplicate_keep_rules", K_SPECIAL, 0},
	{"deduplicate_overlap_tolerance", K_SPECIAL, 0},
	{"deduplicate_overlap_both", K_SPECIAL, 0},
	{"deduplicate_centroid_tolerance", K_SPECIAL, 0},
	{"deduplicate_distance_crs", K_SPECIAL, 0},
	{"deduplicate_clip_to_footprint", K_SPECIAL, 0},
	{"deduplicate_clip_method", K_SPECIAL, 0},
	{"deduplicate_at", K_SPECIAL, 0},
	{"deduplicate_method", K_SPECIAL, 0},
	{"input_crs", K_SPECIAL, 0},
	{"simplify_tolerance", K_SPECIAL, 0},
	{"tms_id", K_SPECIAL, 0},
	{"tile_path_structure", K_SPECIAL, 0},
	{"z_range", K_SPECIAL, 0},
	{"tile_size", K_SPECIAL, 0},
	{"statistics", K_SPECIAL, 0},
	{"vizfs_cache_dir", K_SPECIAL, 0},
	{"vizfs_cache_map_size", K_SPECIAL, 0},
	{"vizfs_workers", K_SPECIAL, 0},
	{"vizfs_range_mode", K_SPECIAL, 0},
};

static bool known_key(const char *k)
{
	if (strncmp(k, "prop_", 5) == 0)
		return true;
	for (size_t i = 0; i < VZ_ARRAY_SIZE(keys); i++)
		if (strcmp(keys[i].name, k) == 0)
			return true;
	return false;
}

static int plain_key(const struct pctx *x, const struct kspec *ks,
		     json_object *v)
{
	const char *s;
	double d;
	bool set;
	int rc;

	switch (ks->kind) {
	case K_STR:
		if ((rc = get_str(x, ks->name, v, false, &s)))
			return rc;
		return set_str((char **)((char *)x->c + ks->off), s);
	case K_STR_IGN:
		return get_str(x, ks->name, v, false, &s);
	case K_STR_NULL_IGN:
		if (json_object_is_type(v, json_type_null))
			return 0;
		return get_str(x, ks->name, v, false, &s);
	case K_BOOL_IGN:
		if (!json_object_is_type(v, json_type_boolean))
			return expected(x, ks->name, "true or false", v);
		return 0;
	case K_NUM_IGN:
		return get_num(x, ks->name, v, false, &d, &set);
	case K_NUM_NULL_IGN:
		return get_num(x, ks->name, v, true, &d, &set);
	case K_LIST_IGN:
		if (!json_object_is_type(v, json_type_array))
			return expected(x, ks->name, "a list", v);
		return 0;
	case K_ANY_IGN:
	case K_SPECIAL:
		return 0;
	}
	return 0;
}

static int parse_tms(const struct pctx *x, json_object *v)
{
	const char *s;
	char all[128], what[160];
	int rc;

	join_names(tms_ids, VZ_ARRAY_SIZE(tms_ids), all, sizeof all);
	snprintf(what, sizeof what, "one of %s", all);
	if ((rc = get_str(x, "tms_id", v, true, &s)))
		return expected(x, "tms_id", what, v);
	if (!vz_tms_find(s))
		return expected(x, "tms_id", what, v);
	x->c->tms = vz_tms_find(s);
	return set_str(&x->c->tms_id, s);
}

static int parse_zrange(const struct pctx *x, json_object *v)
{
	const char *what = "a list [min_z, max_z] of integers";
	int64_t z[2];
	char k[32];
	int rc;

	if (!json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) != 2)
		return expected(x, "z_range", what, v);
	for (size_t i = 0; i < 2; i++) {
		snprintf(k, sizeof k, "z_range[%zu]", i);
		rc = get_int(x, k, json_object_array_get_idx(v, i), 0,
			     VZ_MAX_ZOOM, &z[i]);
		if (rc)
			return rc;
	}
	if (z[0] > z[1])
		return cerr(x, "z_range",
			    "min_z (%lld) must not exceed max_z (%lld)",
			    (long long)z[0], (long long)z[1]);
	x->c->z_min = (int)z[0];
	x->c->z_max = (int)z[1];
	return 0;
}

static int parse_tile_size(const struct pctx *x, json_object *v)
{
	const char *what = "a list [height, width] of two positive even "
			   "integers up to 4096";
	int64_t t[2];
	char k[32];
	int rc;

	if (!json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) != 2)
		return expected(x, "tile_size", what, v);
	for (size_t i = 0; i < 2; i++) {
		snprintf(k, sizeof k, "tile_size[%zu]", i);
		rc = get_int(x, k, json_object_array_get_idx(v, i), 2,
			     MAX_TILE_SIDE, &t[i]);
		if (rc)
			return rc;
		if (t[i] % 2)
			return expected(x, k, "an even integer from 2 to 4096",
					json_object_array_get_idx(v, i));
	}
	/* (height, width) as the PDG really uses it (spec Q18) */
	x->c->tile_h = (uint32_t)t[0];
	x->c->tile_w = (uint32_t)t[1];
	return 0;
}

static int parse_structure(const struct pctx *x, json_object *v)
{
	const char *what = "a list like [\"style\", \"tms\", \"z\", \"x\", "
			   "\"y\"] ending with z, x and y in any order";
	enum vz_path_part parts[5];
	unsigned seen = 0;
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		return expected(x, "tile_path_structure", what, v);
	n = json_object_array_length(v);
	if (n < 3 || n > 5)
		return expected(x, "tile_path_structure", what, v);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		const char *s;
		char k[48];
		int p;

		snprintf(k, sizeof k, "tile_path_structure[%zu]", i);
		if (!json_object_is_type(e, json_type_string))
			return expected(x, k, "one of style, tms, z, x, y", e);
		s = json_object_get_string(e);
		p = lookup(part_names, VZ_ARRAY_SIZE(part_names), s);
		if (p < 0)
			return expected(x, k, "one of style, tms, z, x, y", e);
		if (seen & (1u << p))
			return cerr(x, k, "'%s' appears twice", s);
		seen |= 1u << p;
		/* z, x, y are exactly the last three */
		if ((i + 3 >= n) != (p >= VZ_PART_Z))
			return cerr(x, "tile_path_structure",
				    "z, x and y must be the last three "
				    "components, and only style/tms may come "
				    "before them");
		parts[i] = (enum vz_path_part)p;
	}
	memcpy(x->c->path_parts, parts, n * sizeof parts[0]);
	x->c->n_path_parts = (int)n;
	return 0;
}

/* The name a staging_* column has in this config (prop_* keys). */
static const char *prop_name(json_object *root, const char *key,
			     const char *def)
{
	json_object *v;

	if (get(root, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return def;
}

/* deduplicate_keep_rules: a list of [property, 'larger'|'smaller']. */
static int parse_keep_rules(const struct pctx *x, json_object *root,
			    json_object *v)
{
	static const char *const other_props[][2] = {
		{"prop_identifier", "staging_identifier"},
		{"prop_centroid_tile", "staging_centroid_tile"},
		{"prop_tile", "staging_tile"},
		{"prop_centroid_within_tile", "staging_centroid_within_tile"},
		{"prop_duplicated", "staging_duplicated"},
	};
	const char *what = "a list of [property, 'larger' or 'smaller'] pairs";
	struct vz_conf *c = x->c;
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		return expected(x, "deduplicate_keep_rules", what, v);
	n = json_object_array_length(v);
	if (n > 64)
		return cerr(x, "deduplicate_keep_rules",
			    "at most 64 rules are supported, got %zu", n);
	if (n && !(c->keep_rules = calloc(n, sizeof *c->keep_rules)))
		return nomem();
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(v, i), *p, *o;
		struct vz_keep_rule *r = &c->keep_rules[i];
		const char *ps, *os;
		char k[48];

		snprintf(k, sizeof k, "deduplicate_keep_rules[%zu]", i);
		if (!json_object_is_type(e, json_type_array) ||
		    json_object_array_length(e) != 2)
			return expected(x, k, "a pair [property, 'larger' or "
					      "'smaller']", e);
		p = json_object_array_get_idx(e, 0);
		o = json_object_array_get_idx(e, 1);
		if (get_str(x, k, p, true, &ps))
			return expected(x, k, "a property name (non-empty "
					      "string) first", p);
		if (!json_object_is_type(o, json_type_string) ||
		    (strcmp(os = json_object_get_string(o), "larger") &&
		     strcmp(os, "smaller")))
			return expected(x, k, "'larger' or 'smaller' second",
					o);
		if (!(r->property = strdup(ps)))
			return nomem();
		c->n_keep_rules = i + 1;
		r->larger = strcmp(os, "larger") == 0;
		r->attr = -1;
		r->src = VZ_KEEP_ATTR;
		if (!strcmp(ps, prop_name(root, "prop_area", "staging_area")))
			r->src = VZ_KEEP_AREA;
		else if (!strcmp(ps, prop_name(root, "prop_centroid_x",
					       "staging_centroid_x")))
			r->src = VZ_KEEP_CENTROID_X;
		else if (!strcmp(ps, prop_name(root, "prop_centroid_y",
					       "staging_centroid_y")))
			r->src = VZ_KEEP_CENTROID_Y;
		else if (!strcmp(ps, prop_name(root, "prop_filename",
					       "staging_filename")))
			r->src = VZ_KEEP_FILENAME;
		/* the other staging columns are per tile or random in the
		 * PDG: nothing a rule could prefer consistently */
		for (size_t j = 0; j < VZ_ARRAY_SIZE(other_props); j++)
			if (c->dedup_method &&
			    !strcmp(c->dedup_method, "neighbor") &&
			    !strcmp(ps, prop_name(root, other_props[j][0],
						  other_props[j][1])))
				return cerr(x, k,
					    "'%s' cannot be a keep rule "
					    "property (use an input column, "
					    "staging_area, staging_centroid_x/"
					    "y or staging_filename)",
					    ps);
	}
	return 0;
}

/* A CRS PROJ understands (validated now rather than per tile), checked
 * with a PROJ context of our own, as the dedup module uses it. */
static int check_crs(const struct pctx *x, const char *key, const char *def)
{
	PJ_CONTEXT *ctx = proj_context_create();
	PJ *p;
	bool ok;

	if (!ctx)
		return nomem();
	proj_log_level(ctx, PJ_LOG_NONE);
	p = proj_create(ctx, def);
	ok = p && proj_is_crs(p);
	proj_destroy(p);
	proj_context_destroy(ctx);
	if (!ok)
		return cerr(x, key,
			    "'%.60s' is not a CRS PROJ knows "
			    "(expected e.g. 'EPSG:3857')",
			    def);
	return 0;
}

/*
 * Deduplication keys (spec §1.2, §3).  Every key is validated even without
 * a method, as the PDG would read them; a bare-string deduplicate_at is
 * ignored with a warning (the PDG's isinstance(list) check, spec Q21).
 */
static int parse_dedup(const struct pctx *x, json_object *root)
{
	struct vz_conf *c = x->c;
	json_object *v;
	const char *s;
	int rc;

	if (get(root, "deduplicate_method", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if ((rc = get_str(x, "deduplicate_method", v, true, &s)))
			return expected(x, "deduplicate_method",
					"null, 'neighbor' or 'footprints'", v);
		if (strcmp(s, "neighbor") && strcmp(s, "footprints"))
			return expected(x, "deduplicate_method",
					"null, 'neighbor' or 'footprints'", v);
		if ((rc = set_str(&c->dedup_method, s)))
			return rc;
	}
	if (get(root, "deduplicate_at", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		static const char *const at_names[] = {"staging", "raster",
						       "3dtiles"};
		if (json_object_is_type(v, json_type_string)) {
			vz_log(VZ_LOG_WARN,
			       "config %s: deduplicate_at: a bare string is "
			       "ignored, as by the PDG (use a list, e.g. "
			       "[\"%.40s\"])",
			       x->file, json_object_get_string(v));
		} else if (!json_object_is_type(v, json_type_array)) {
			return expected(x, "deduplicate_at", "null or a list",
					v);
		} else {
			for (size_t i = 0; i < json_object_array_length(v);
			     i++) {
				json_object *e = json_object_array_get_idx(v, i);
				char k[40];
				int j = -1;

				snprintf(k, sizeof k, "deduplicate_at[%zu]", i);
				if (json_object_is_type(e, json_type_string))
					j = lookup(at_names,
						   VZ_ARRAY_SIZE(at_names),
						   json_object_get_string(e));
				if (j < 0)
					return expected(x, k,
							"'staging', 'raster' or "
							"'3dtiles'",
							e);
				c->dedup_at |= 1u << j;
			}
		}
	}
	if (get(root, "deduplicate_keep_rules", &v) &&
	    (rc = parse_keep_rules(x, root, v)))
		return rc;
	if (get(root, "deduplicate_overlap_tolerance", &v)) {
		rc = get_num(x, "deduplicate_overlap_tolerance", v, true,
			     &c->overlap_tol, &c->has_overlap_tol);
		if (rc)
			return rc;
	}
	if (get(root, "deduplicate_overlap_both", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return expected(x, "deduplicate_overlap_both",
					"true or false", v);
		c->overlap_both = json_object_get_boolean(v);
	}
	if (get(root, "deduplicate_centroid_tolerance", &v)) {
		rc = get_num(x, "deduplicate_centroid_tolerance", v, true,
			     &c->centroid_tol, &c->has_centroid_tol);
		if (rc)
			return rc;
		if (c->has_centroid_tol && c->centroid_tol < 0)
			return expected(x, "deduplicate_centroid_tolerance",
					"a distance >= 0 or null", v);
	}
	if (get(root, "deduplicate_distance_crs", &v)) {
		if (json_object_is_type(v, json_type_null)) {
			VZ_FREEF(free, c->distance_crs);
		} else {
			if (get_str(x, "deduplicate_distance_crs", v, true, &s))
				return expected(x, "deduplicate_distance_crs",
						"a CRS string (e.g. "
						"'EPSG:3857') or null",
						v);
			if ((rc = set_str(&c->distance_crs, s)))
				return rc;
		}
	}
	if (get(root, "deduplicate_clip_to_footprint", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return expected(x, "deduplicate_clip_to_footprint",
					"true or false", v);
		c->clip_to_footprint = json_object_get_boolean(v);
	}
	if (get(root, "deduplicate_clip_method", &v)) {
		if ((rc = get_str(x, "deduplicate_clip_method", v, false, &s)))
			return rc;
		if (strcmp(s, "intersects"))
			vz_log(VZ_LOG_WARN,
			       "config %s: deduplicate_clip_method '%.40s' "
			       "is ignored: the footprint clip always uses "
			       "'intersects', as the PDG does",
			       x->file, s);
	}
	if (!c->dedup_method)
		return 0;
	if (!strcmp(c->dedup_method, "neighbor")) {
		if (c->n_keep_rules == 0)
			return cerr(x, "deduplicate_keep_rules",
				    "required for deduplicate_method "
				    "'neighbor' (a list like "
				    "[[\"staging_area\", \"larger\"]])");
		if (c->has_centroid_tol && c->distance_crs &&
		    (rc = check_crs(x, "deduplicate_distance_crs",
				    c->distance_crs)))
			return rc;
	}
	return 0;
}

static int parse_vizfs(const struct pctx *x, json_object *root)
{
	struct vz_conf *c = x->c;
	json_object *v;
	const char *s;
	int64_t i;
	int rc;

	if (get(root, "vizfs_cache_dir", &v)) {
		if ((rc = get_str(x, "vizfs_cache_dir", v, true, &s)))
			return rc;
		if ((rc = set_str(&c->cache_dir, s)))
			return rc;
	}
	if (get(root, "vizfs_cache_map_size", &v)) {
		rc = get_int(x, "vizfs_cache_map_size", v, (int64_t)MIB,
			     (int64_t)MAX_MAP_SIZE, &i);
		if (rc)
			return rc;
		c->cache_map_size = (uint64_t)i;
	}
	if (get(root, "vizfs_workers", &v)) {
		rc = get_int(x, "vizfs_workers", v, 0, MAX_WORKERS, &i);
		if (rc)
			return rc;
		c->workers = (int)i;
	}
	if (get(root, "vizfs_range_mode", &v)) {
		const char *what = "'per_zoom' or 'per_tile'";
		if (!json_object_is_type(v, json_type_string))
			return expected(x, "vizfs_range_mode", what, v);
		s = json_object_get_string(v);
		if (!strcmp(s, "per_zoom"))
			c->range_mode = VZ_RANGE_PER_ZOOM;
		else if (!strcmp(s, "per_tile"))
			c->range_mode = VZ_RANGE_PER_TILE;
		else
			return expected(x, "vizfs_range_mode", what, v);
	}
	return 0;
}

/* PDG defaults (§1.2) plus vizfs defaults; strings still relative. */
static int set_defaults(struct vz_conf *c)
{
	static const enum vz_path_part def_parts[] = {
		VZ_PART_STYLE, VZ_PART_TMS, VZ_PART_Z, VZ_PART_X, VZ_PART_Y,
	};
	int rc = 0;

	rc |= set_str(&c->dir_input, "input");
	rc |= set_str(&c->dir_staged, "staged");
	rc |= set_str(&c->dir_geotiff, "geotiff");
	rc |= set_str(&c->dir_web_tiles, "web_tiles");
	rc |= set_str(&c->dir_footprints, "footprints");
	rc |= set_str(&c->ext_input, ".shp");
	rc |= set_str(&c->ext_staged, ".gpkg");
	rc |= set_str(&c->ext_web_tiles, ".png");
	rc |= set_str(&c->ext_footprints, ".gpkg");
	rc |= set_str(&c->filename_staging_summary, "staging_summary.csv");
	rc |= set_str(&c->filename_rasters_summary, "rasters_summary.csv");
	rc |= set_str(&c->filename_rasterization_events,
		      "rasterization_events.csv");
	rc |= set_str(&c->tms_id, "WGS1984Quad");
	if (rc)
		return -ENOMEM;
	c->tms = vz_tms_find(c->tms_id);
	c->input_crs = NULL;
	c->has_simplify = true;
	c->simplify_tolerance = 0.0001;
	memcpy(c->path_parts, def_parts, sizeof def_parts);
	c->n_path_parts = 5;
	c->z_min = 0;
	c->z_max = 13;
	c->tile_w = c->tile_h = 256;
	c->dedup_method = NULL;
	c->dedup_at = 0;
	c->has_overlap_tol = true;
	c->overlap_tol = 0.5;
	c->overlap_both = true;
	c->has_centroid_tol = false;
	c->clip_to_footprint = true;
	rc |= set_str(&c->distance_crs, "EPSG:3857");
	if (rc)
		return -ENOMEM;
	c->cache_dir = NULL;
	c->cache_map_size = DEFAULT_MAP_SIZE;
	c->workers = 0;
	c->range_mode = VZ_RANGE_PER_ZOOM;
	return default_stats(c);
}

static int resolve_field(const struct vz_conf *c, char **f)
{
	char *r = resolve(c->base_dir, *f);

	if (!r)
		return nomem();
	free(*f);
	*f = r;
	return 0;
}

static int resolve_paths(struct vz_conf *c)
{
	char **fields[] = {
		&c->dir_input,
		&c->dir_staged,
		&c->dir_geotiff,
		&c->dir_web_tiles,
		&c->dir_footprints,
		&c->filename_staging_summary,
		&c->filename_rasters_summary,
		&c->filename_rasterization_events,
	};
	int rc;

	if (!c->cache_dir && set_str(&c->cache_dir, ".vizfs-cache"))
		return -ENOMEM;
	if ((rc = resolve_field(c, &c->cache_dir)))
		return rc;
	for (size_t i = 0; i < VZ_ARRAY_SIZE(fields); i++)
		if ((rc = resolve_field(c, fields[i])))
			return rc;
	return 0;
}

/* ---- fingerprint -------------------------------------------------------- */

static void hash_f64(struct vz_hash *h, double d)
{
	uint64_t u;

	if (d == 0)
		d = 0;
	memcpy(&u, &d, sizeof u);
	vz_hash_u64(h, u);
}

static void hash_range(struct vz_hash *h, const struct vz_range *r)
{
	for (int i = 0; i < 2; i++) {
		vz_hash_u64(h, r->set[i]);
		hash_f64(h, r->set[i] ? r->v[i] : 0);
	}
}

/* Footprint files (name, size, mtime) for the fingerprint: they decide
 * which polygons are duplicates.  nftw() has no user pointer. */
static __thread struct {
	char **v;
	size_t n, cap;
	const char *ext;
	size_t root_len;
	bool oom;
} fpw;

static int fp_walk(const char *path, const struct stat *st, int type,
		   struct FTW *ftw)
{
	size_t l = strlen(path), le = strlen(fpw.ext);
	char *e;

	(void)ftw;
	if (type != FTW_F || l < le || strcmp(path + l - le, fpw.ext))
		return 0;
	if (fpw.n == fpw.cap) {
		size_t nc = fpw.cap ? 2 * fpw.cap : 64;
		char **nv = realloc(fpw.v, nc * sizeof *nv);
		if (!nv) {
			fpw.oom = true;
			return 1;
		}
		fpw.v = nv;
		fpw.cap = nc;
	}
	if (asprintf(&e, "%s|%lld|%lld.%09ld", path + fpw.root_len,
		     (long long)st->st_size,
		     /* the later of mtime and ctime, as for inputs */
		     (long long)(st->st_ctim.tv_sec > st->st_mtim.tv_sec
					 ? st->st_ctim.tv_sec
					 : st->st_mtim.tv_sec),
		     st->st_ctim.tv_sec > st->st_mtim.tv_sec
			     ? st->st_ctim.tv_nsec
			     : st->st_mtim.tv_nsec) < 0) {
		fpw.oom = true;
		return 1;
	}
	fpw.v[fpw.n++] = e;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void hash_footprints(struct vz_hash *h, const struct vz_conf *c)
{
	memset(&fpw, 0, sizeof fpw);
	fpw.ext = c->ext_footprints;
	fpw.root_len = strlen(c->dir_footprints);
	if (nftw(c->dir_footprints, fp_walk, 16, FTW_PHYS) != 0 || fpw.oom)
		vz_hash_str(h, "?"); /* unreadable: never equal to a listing */
	if (fpw.n)
		qsort(fpw.v, fpw.n, sizeof *fpw.v, cmp_str);
	vz_hash_u64(h, fpw.n);
	for (size_t i = 0; i < fpw.n; i++) {
		vz_hash_str(h, fpw.v[i]);
		free(fpw.v[i]);
	}
	free(fpw.v);
	memset(&fpw, 0, sizeof fpw);
}

/*
 * Everything that changes output bytes, in a fixed order with explicit
 * lengths/terminators so that no two configs serialise alike.  Not hashed:
 * cache_dir, workers, map size, titles and other unused keys.
 */
static void fingerprint(struct vz_conf *c)
{
	struct vz_hash h;

	vz_hash_init(&h);
	vz_hash_str(&h, "vizfs-conf-v1");
	vz_hash_str(&h, c->tms_id);
	vz_hash_u64(&h, (uint64_t)c->tms->kind);
	vz_hash_u64(&h, (uint64_t)c->z_min);
	vz_hash_u64(&h, (uint64_t)c->z_max);
	vz_hash_u64(&h, c->tile_h);
	vz_hash_u64(&h, c->tile_w);
	vz_hash_u64(&h, c->has_simplify);
	hash_f64(&h, c->has_simplify ? c->simplify_tolerance : 0);
	vz_hash_u64(&h, c->input_crs != NULL);
	vz_hash_str(&h, c->input_crs ? c->input_crs : "");
	vz_hash_u64(&h, (uint64_t)c->n_path_parts);
	for (int i = 0; i < c->n_path_parts; i++)
		vz_hash_u64(&h, (uint64_t)c->path_parts[i]);
	vz_hash_u64(&h, (uint64_t)c->range_mode);
	vz_hash_str(&h, c->dir_input);
	vz_hash_str(&h, c->ext_input);
	vz_hash_str(&h, c->dir_staged);
	vz_hash_str(&h, c->ext_staged);
	vz_hash_str(&h, c->ext_web_tiles);
	vz_hash_u64(&h, c->dedup_method != NULL);
	if (c->dedup_method) {
		/* only then: configs without dedup keep their fingerprint */
		vz_hash_str(&h, c->dedup_method);
		vz_hash_u64(&h, c->dedup_at);
		vz_hash_u64(&h, c->n_keep_rules);
		for (size_t i = 0; i < c->n_keep_rules; i++) {
			vz_hash_str(&h, c->keep_rules[i].property);
			vz_hash_u64(&h, c->keep_rules[i].larger);
			vz_hash_u64(&h, (uint64_t)c->keep_rules[i].src);
		}
		vz_hash_u64(&h, c->has_overlap_tol);
		hash_f64(&h, c->has_overlap_tol ? c->overlap_tol : 0);
		vz_hash_u64(&h, c->overlap_both);
		vz_hash_u64(&h, c->has_centroid_tol);
		hash_f64(&h, c->has_centroid_tol ? c->centroid_tol : 0);
		vz_hash_u64(&h, c->distance_crs != NULL);
		vz_hash_str(&h, c->distance_crs ? c->distance_crs : "");
		vz_hash_u64(&h, c->clip_to_footprint);
		vz_hash_str(&h, c->dir_footprints);
		vz_hash_str(&h, c->ext_footprints);
		if (c->clip_to_footprint || strcmp(c->dedup_method, "neighbor"))
			hash_footprints(&h, c);
		vz_hash_u64(&h, c->n_attrs);
		for (size_t i = 0; i < c->n_attrs; i++)
			vz_hash_str(&h, c->attrs[i]);
	}
	vz_hash_u64(&h, c->n_stats);
	for (size_t i = 0; i < c->n_stats; i++) {
		const struct vz_stat *s = &c->stats[i];

		vz_hash_str(&h, s->name);
		vz_hash_u64(&h, (uint64_t)s->weight_by);
		vz_hash_str(&h, s->property);
		vz_hash_u64(&h, (uint64_t)s->prop);
		vz_hash_u64(&h, (uint64_t)s->agg);
		vz_hash_u64(&h, (uint64_t)s->resample);
		hash_range(&h, &s->val_range);
		for (int z = 0; z <= VZ_MAX_ZOOM; z++)
			hash_range(&h, &s->z_range[z]);
		vz_hash_u64(&h, s->n_palette);
		for (size_t j = 0; j < s->n_palette; j++)
			vz_hash_str(&h, s->palette[j]);
		vz_hash_u64(&h, s->has_nodata);
		hash_f64(&h, s->has_nodata ? s->nodata_val : 0);
		vz_hash_str(&h, s->nodata_color);
	}
	vz_hash_hex(&h, c->fingerprint);
}

/* ---- driver ------------------------------------------------------------- */

static int apply(struct pctx *x, json_object *root)
{
	struct vz_conf *c = x->c;
	json_object *v;
	const char *s;
	int rc;

	json_object_object_foreach(root, key, val)
	{
		(void)val;
		if (!known_key(key))
			vz_log(VZ_LOG_WARN,
			       "config %s: unknown key '%s' ignored", x->file,
			       key);
		else if (strncmp(key, "prop_", 5) == 0 &&
			 (rc = get_str(x, key, val, true, &s)))
			return rc;
	}
	for (size_t i = 0; i < VZ_ARRAY_SIZE(keys); i++)
		if (get(root, keys[i].name, &v) &&
		    (rc = plain_key(x, &keys[i], v)))
			return rc;
	if (strcmp(c->ext_web_tiles, ".png"))
		return cerr(x, "ext_web_tiles",
			    "'%.60s' is not supported yet (only '.png')",
			    c->ext_web_tiles);
	if (strcmp(c->ext_staged, ".gpkg"))
		return cerr(x, "ext_staged",
			    "'%.60s' is not supported yet (only '.gpkg')",
			    c->ext_staged);
	if (!c->ext_input[0])
		return cerr(x, "ext_input", "expected a non-empty string");

	if (get(root, "tms_id", &v) && (rc = parse_tms(x, v)))
		return rc;
	if (get(root, "z_range", &v) && (rc = parse_zrange(x, v)))
		return rc;
	if (get(root, "tile_size", &v) && (rc = parse_tile_size(x, v)))
		return rc;
	if (get(root, "tile_path_structure", &v) &&
	    (rc = parse_structure(x, v)))
		return rc;
	if (get(root, "simplify_tolerance", &v)) {
		rc = get_num(x, "simplify_tolerance", v, true,
			     &c->simplify_tolerance, &c->has_simplify);
		if (rc)
			return rc;
		if (c->has_simplify && c->simplify_tolerance < 0)
			return expected(x, "simplify_tolerance",
					"a number >= 0 or null", v);
	}
	if (get(root, "input_crs", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if ((rc = get_str(x, "input_crs", v, true, &s)))
			return expected(x, "input_crs",
					"a CRS string (e.g. 'EPSG:3413') or "
					"null",
					v);
		if ((rc = set_str(&c->input_crs, s)))
			return rc;
	}
	if (get(root, "statistics", &v) && (rc = parse_stats(x, v)))
		return rc;
	if ((rc = parse_dedup(x, root)))
		return rc;
	if ((rc = parse_vizfs(x, root)))
		return rc;

	if (c->n_stats > 1) {
		bool style = false;
		for (int i = 0; i < c->n_path_parts; i++)
			style |= c->path_parts[i] == VZ_PART_STYLE;
		if (!style)
			return cerr(x, "tile_path_structure",
				    "'style' is required with more than one "
				    "statistic (web tile paths would collide)");
	}
	if ((rc = collect_attrs(c)) || (rc = collect_keep_attrs(c)))
		return rc;
	return resolve_paths(c);
}

static int parse_json(const char *file, const char *json, size_t len,
		      json_object **out)
{
	json_tokener *tok;
	json_object *root;
	enum json_tokener_error e;
	size_t end, line = 1, col = 1;

	*out = NULL;
	if (len > INT_MAX) {
		vz_err_set("%s: config too large", file);
		return VZ_E_CONFIG;
	}
	/* a UTF-8 byte order mark some editors write */
	if (len >= 3 && memcmp(json, "\xef\xbb\xbf", 3) == 0) {
		json += 3;
		len -= 3;
	}
	if (!(tok = json_tokener_new()))
		return nomem();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, json, (int)len);
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (size_t i = 0; i < end && i < len; i++) {
		if (json[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	if (!root) {
		const char *why = e == json_tokener_continue ||
						  e == json_tokener_success ?
					  "unexpected end of input" :
					  json_tokener_error_desc(e);
		vz_err_set("%s: invalid JSON at line %zu, column %zu "
			   "(offset %zu): %s",
			   file, line, col, end, why);
		return VZ_E_CONFIG;
	}
	for (size_t i = end; i < len; i++) {
		if (json[i] != ' ' && json[i] != '\t' && json[i] != '\n' &&
		    json[i] != '\r' && json[i] != '\0') {
			vz_err_set("%s: invalid JSON at line %zu, column %zu "
				   "(offset %zu): unexpected text after the "
				   "top-level object",
				   file, line, col, end);
			json_object_put(root);
			return VZ_E_CONFIG;
		}
	}
	if (!json_object_is_type(root, json_type_object)) {
		vz_err_set("%s: expected a JSON object at the top level", file);
		json_object_put(root);
		return VZ_E_CONFIG;
	}
	*out = root;
	return 0;
}

static int conf_parse(const char *json, size_t len, const char *name,
		      char *base_dir, struct vz_conf **out)
{
	struct vz_conf *c;
	struct pctx x;
	json_object *root;
	int rc;

	*out = NULL;
	if (!base_dir)
		return nomem();
	if (!(c = calloc(1, sizeof *c))) {
		free(base_dir);
		return nomem();
	}
	c->base_dir = base_dir;
	if (!(c->path = strdup(name))) {
		rc = nomem();
		goto out_free;
	}
	x.c = c;
	x.file = c->path;
	if ((rc = set_defaults(c)))
		goto out_free;
	if ((rc = parse_json(c->path, json, len, &root)))
		goto out_free;
	rc = apply(&x, root);
	json_object_put(root);
	if (rc)
		goto out_free;
	fingerprint(c);
	*out = c;
	return 0;

out_free:
	vz_conf_free(c);
	return rc;
}

int vz_conf_parse(const char *json, size_t len, const char *name,
		  const char *base_dir, struct vz_conf **out)
{
	vz_err_clear();
	return conf_parse(json, len, name ? name : "<string>",
			  absolute_dir(base_dir), out);
}

static int read_file(const char *path, char **buf, size_t *len)
{
	struct stat st;
	size_t n = 0;
	char *b;
	int fd, rc;

	/* O_NONBLOCK: a FIFO must not block here (it is refused below) */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		vz_err_set("%s: cannot open config: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		vz_err_set("%s: cannot stat config: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_CONF_BYTES) {
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EFBIG;
		vz_err_set("%s: not a regular config file of at most %u bytes",
			   path, MAX_CONF_BYTES);
		close(fd);
		return rc;
	}
	if (!(b = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return nomem();
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, b + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			vz_err_set("%s: read failed: %s", path, strerror(-rc));
			free(b);
			close(fd);
			return rc;
		}
		n += (size_t)r;
	}
	close(fd);
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

int vz_conf_load(const char *path, struct vz_conf **out)
{
	char *buf = NULL, *dir, *slash;
	size_t len = 0;
	int rc;

	*out = NULL;
	vz_err_clear();
	if ((rc = read_file(path, &buf, &len)))
		return rc;
	if (!(dir = strdup(path))) {
		free(buf);
		return nomem();
	}
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	rc = conf_parse(buf, len, path, absolute_dir(dir), out);
	free(dir);
	free(buf);
	return rc;
}

void vz_conf_free(struct vz_conf *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->base_dir);
	free(c->dir_input);
	free(c->dir_staged);
	free(c->dir_geotiff);
	free(c->dir_web_tiles);
	free(c->dir_footprints);
	free(c->ext_input);
	free(c->ext_staged);
	free(c->ext_web_tiles);
	free(c->ext_footprints);
	free(c->filename_staging_summary);
	free(c->filename_rasters_summary);
	free(c->filename_rasterization_events);
	free(c->input_crs);
	free(c->tms_id);
	stats_free(c->stats, c->n_stats);
	for (size_t i = 0; i < c->n_attrs; i++)
		free(c->attrs[i]);
	free(c->attrs);
	free(c->dedup_method);
	for (size_t i = 0; i < c->n_keep_rules; i++)
		free(c->keep_rules[i].property);
	free(c->keep_rules);
	free(c->distance_crs);
	free(c->cache_dir);
	free(c);
}

int vz_conf_stat_index(const struct vz_conf *c, const char *name)
{
	if (!c || !name)
		return -1;
	for (size_t i = 0; i < c->n_stats; i++)
		if (strcmp(c->stats[i].name, name) == 0)
			return (int)i;
	return -1;
}

void vz_conf_range(const struct vz_conf *c, int s, int z, struct vz_range *out)
{
	const struct vz_stat *st;

	memset(out, 0, sizeof *out);
	if (!c || s < 0 || (size_t)s >= c->n_stats)
		return;
	st = &c->stats[s];
	for (int i = 0; i < 2; i++) {
		if (z >= 0 && z <= VZ_MAX_ZOOM && st->z_range[z].set[i]) {
			out->v[i] = st->z_range[z].v[i];
			out->set[i] = true;
		} else if (st->val_range.set[i]) {
			out->v[i] = st->val_range.v[i];
			out->set[i] = true;
		}
	}
}
