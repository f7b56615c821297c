/* SPDX-License-Identifier: Apache-2.0 */
/* Render service: single flight, demand renders, prefetch, same bytes as
 * the batch pipeline. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vizfs/build.h"
#include "vizfs/geotiff.h"
#include "vizfs/sample.h"
#include "vizfs/service.h"
#include "vt.h"

static char dir[256];

static struct vz_conf *make_conf(const char *cache, const char *mode)
{
	char json[2048];
	struct vz_conf *c = NULL;
	int rc;

	snprintf(json, sizeof json,
		 "{\"dir_input\": \"%s/in\", \"ext_input\": \".gpkg\","
		 " \"tms_id\": \"WGS1984Quad\", \"z_range\": [0, 12],"
		 " \"tile_size\": [64, 64], \"simplify_tolerance\": 0.1,"
		 " \"vizfs_cache_dir\": \"%s/%s\", \"vizfs_range_mode\": \"%s\","
		 " \"statistics\": ["
		 "{\"name\": \"coverage\", \"weight_by\": \"area\","
		 " \"property\": \"area_per_pixel_area\","
		 " \"aggregation_method\": \"sum\","
		 " \"resampling_method\": \"average\", \"val_range\": [0, 1],"
		 " \"nodata_val\": 0},"
		 "{\"name\": \"polygon_count\", \"weight_by\": \"count\","
		 " \"property\": \"centroids_per_pixel\","
		 " \"aggregation_method\": \"sum\","
		 " \"resampling_method\": \"sum\", \"val_range\": [0, null],"
		 " \"nodata_val\": 0}]}",
		 dir, dir, cache, mode);
	rc = vz_conf_parse(json, strlen(json), "test", dir, &c);
	if (rc)
		fprintf(stderr, "conf: %s\n", vz_err_msg());
	return c;
}

static struct vz_builder *open_builder(const struct vz_conf *c, int workers)
{
	struct vz_build_opts o = {0};
	struct vz_builder *b = NULL;

	o.workers = workers;
	if (vz_builder_open(c, &o, &b))
		fprintf(stderr, "builder: %s\n", vz_err_msg());
	return b;
}

struct result {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, rc;
	uint64_t size;
};

static void on_ready(void *ud, int rc, uint64_t size)
{
	struct result *r = ud;
	pthread_mutex_lock(&r->lock);
	r->rc = rc;
	r->size = size;
	r->done = 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Request a file and wait; then read all of it. */
static int fetch(struct vz_service *s, const struct vz_tile_ref *ref,
		 struct vz_buf *out)
{
	struct result r = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			   0, 0, 0};
	int rc;

	vz_service_request(s, ref, on_ready, &r);
	pthread_mutex_lock(&r.lock);
	while (!r.done)
		pthread_cond_wait(&r.cond, &r.lock);
	pthread_mutex_unlock(&r.lock);
	if (r.rc)
		return r.rc;
	/* read in odd-sized slices, as the kernel would */
	vz_buf_reset(out);
	for (uint64_t off = 0; off < r.size; off += 4000) {
		struct vz_buf part = {0};
		rc = vz_service_read(s, ref, off, 4000, &part);
		if (!rc)
			rc = vz_buf_append(out, part.data, part.len);
		vz_buf_free(&part);
		if (rc)
			return rc;
	}
	return out->len == r.size ? 0 : -EIO;
}

struct reader {
	struct vz_service *s;
	struct vz_tile_ref ref;
	pthread_barrier_t *start;
	struct vz_buf bytes;
	int rc;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	pthread_barrier_wait(r->start);
	r->rc = fetch(r->s, &r->ref, &r->bytes);
	return NULL;
}

static bool same_bytes(const struct vz_buf *a, const struct vz_buf *b)
{
	return a->len == b->len && a->len > 0 &&
	       memcmp(a->data, b->data, a->len) == 0;
}

/* Every tile of the pyramid through the service equals the batch bytes. */
static void compare_all(struct vz_service *s, struct vz_builder *batch,
			const struct vz_conf *c, int *n_compared)
{
	struct vz_buf a = {0}, b = {0};
	int bad = 0;

	for (int z = c->z_min; z <= c->z_max; z++) {
		const struct vz_tile_key *keys;
		size_t n;
		vz_service_level(s, z, &keys, &n);
		for (size_t i = 0; i < n; i++) {
			for (int kind = 0; kind < 4; kind++) {
				struct vz_tile_ref ref = {VZ_KIND_PNG,
							  kind < 2 ? kind : -1,
							  keys[i]};
				if (kind == 2)
					ref.kind = VZ_KIND_GEOTIFF;
				if (kind == 3) {
					if (z != c->z_max)
						continue;
					ref.kind = VZ_KIND_STAGED;
				}
				int r1 = fetch(s, &ref, &a);
				int r2 = vz_builder_get(batch, &ref, &b);
				if (r1 || r2) {
					bad++;
					fprintf(stderr, "fetch %d/%u/%u kind %d: "
						"%d %d\n", z, keys[i].x,
						keys[i].y, kind, r1, r2);
					continue;
				}
				/* GeoPackages carry timestamps */
				if (kind != 3 && !same_bytes(&a, &b)) {
					bad++;
					fprintf(stderr, "differs %d/%u/%u kind "
						"%d (%zu vs %zu bytes)\n", z,
						keys[i].x, keys[i].y, kind, a.len,
						b.len);
					if (getenv("VT_DUMP")) {
						FILE *f = fopen("/tmp/a.bin", "wb");
						fwrite(a.data, 1, a.len, f);
						fclose(f);
						f = fopen("/tmp/b.bin", "wb");
						fwrite(b.data, 1, b.len, f);
						fclose(f);
					}
				}
				(*n_compared)++;
			}
		}
	}
	VT_EQ_INT(bad, 0);
	vz_buf_free(&a);
	vz_buf_free(&b);
}

int main(void)
{
	struct vz_sample_opts so = {.n = 3000, .west = -150.6, .south = 70.2,
				    .east = -150.55, .north = 70.4, .seed = 3};
	struct vz_service_opts opts = {.workers = 2, .prefetch = false};
	struct vz_conf *cb = NULL, *cs = NULL, *cp = NULL;
	struct vz_builder *batch = NULL, *b = NULL;
	struct vz_service *s = NULL;
	struct vz_service_stats st;
	char path[512];
	int compared = 0;

	snprintf(dir, sizeof dir, "%s", vt_tmpdir());
	vz_gdal_init();
	snprintf(path, sizeof path, "%s/in", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/in/a.gpkg", dir);
	so.crs = "EPSG:3413";
	so.cell_m = 12;
	VT_EQ_INT(vz_sample_write(&so, path), 0);

	cb = make_conf("cache-batch", "per_zoom");
	cs = make_conf("cache-service", "per_zoom");
	VT_CHECK(cb && cs);
	if (!cb || !cs)
		return vt_done("test_service");
	batch = open_builder(cb, 2);
	VT_CHECK(batch != NULL);
	VT_EQ_INT(vz_builder_prefetch(batch, cb->z_min, cb->z_max), 0);

	/* 1. Single flight: 16 concurrent requests of one cold max-z PNG. */
	b = open_builder(cs, 2);
	VT_EQ_INT(vz_service_start(b, &opts, &s), 0);
	VT_EQ_INT(vz_service_wait_index(s), 0);
	{
		const struct vz_tile_key *keys;
		size_t n;
		struct reader r[16];
		pthread_barrier_t start;
		struct vz_buf ref = {0};
		int ok = 0;

		vz_service_level(s, cs->z_max, &keys, &n);
		VT_CHECK(n > 2);
		pthread_barrier_init(&start, NULL, 16);
		for (int i = 0; i < 16; i++) {
			memset(&r[i], 0, sizeof r[i]);
			r[i].s = s;
			r[i].ref = (struct vz_tile_ref){VZ_KIND_PNG, 0,
							keys[n / 2]};
			r[i].start = &start;
		}
		pthread_t t[16];
		for (int i = 0; i < 16; i++)
			pthread_create(&t[i], NULL, reader_main, &r[i]);
		for (int i = 0; i < 16; i++)
			pthread_join(t[i], NULL);
		VT_EQ_INT(vz_builder_get(batch, &r[0].ref, &ref), 0);
		for (int i = 0; i < 16; i++)
			ok += r[i].rc == 0 && same_bytes(&r[i].bytes, &ref);
		VT_EQ_INT(ok, 16);
		vz_service_get_stats(s, &st);
		VT_EQ_INT(st.tiles_rendered, 1); /* one raster, not 16 */
		VT_EQ_INT(st.hits + st.misses, 16);
		VT_EQ_INT(st.shared, st.misses - 1);
		for (int i = 0; i < 16; i++)
			vz_buf_free(&r[i].bytes);
		vz_buf_free(&ref);
		pthread_barrier_destroy(&start);
	}
	/* 2. A tile without data, a statistic out of range: ENOENT. */
	{
		struct vz_tile_ref none = {VZ_KIND_PNG, 0, {0, 0, 12}};
		struct vz_buf x = {0};
		VT_EQ_INT(fetch(s, &none, &x), -ENOENT);
		none.key = (struct vz_tile_key){0, 0, 0};
		none.stat = 7;
		VT_EQ_INT(fetch(s, &none, &x), -ENOENT);
		vz_buf_free(&x);
	}
	/* 3. Cold z0 through the whole subtree, then everything: same bytes
	 *    as the batch (demand path, no prefetcher). */
	compare_all(s, batch, cs, &compared);
	VT_CHECK(compared > 20);
	vz_service_get_stats(s, &st);
	VT_EQ_INT(st.errors, 0);
	vz_service_stop(s);
	vz_builder_close(b);

	/* 4. Prefetcher: renders the whole pyramid by itself. */
	cp = make_conf("cache-prefetch", "per_zoom");
	b = open_builder(cp, 2);
	opts.prefetch = true;
	VT_EQ_INT(vz_service_start(b, &opts, &s), 0);
	for (int i = 0; i < 600; i++) {
		vz_service_get_stats(s, &st);
		if (st.indexed && !st.prefetching)
			break;
		usleep(100 * 1000);
	}
	VT_CHECK(!st.prefetching);
	{
		uint64_t rendered = st.tiles_rendered;
		compared = 0;
		compare_all(s, batch, cp, &compared);
		vz_service_get_stats(s, &st);
		/* everything was there: no tile rendered on demand */
		VT_EQ_INT(st.tiles_rendered, rendered);
		VT_CHECK(rendered > 10);
	}
	{
		struct vz_buf js = {0};
		VT_EQ_INT(vz_service_status_json(s, &js), 0);
		VT_CHECK(js.len > 0 && strstr((char *)js.data, "\"zooms\""));
		vz_buf_free(&js);
	}
	vz_service_stop(s);
	vz_builder_close(b);

	vz_builder_close(batch);
	vz_conf_free(cb);
	vz_conf_free(cs);
	vz_conf_free(cp);
	return vt_done("test_service");
}
