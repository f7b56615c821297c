// SPDX-License-Identifier: Apache-2.0
// The vizfs map viewer: statistics as layers over a drawn grid, legends,
// a zoom readout and the GeoTIFF values under a click.
/* global L */
(function () {
	'use strict';

	var cfg = JSON.parse(document.getElementById('vizfs-config').textContent);
	var TILE = 256; // display size of a tile; the PNGs are scaled to it
	var EMPTY = 'data:image/gif;base64,' +
		'R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7';
	var body = document.body;
	var counts = { requested: 0, loaded: 0, errors: 0, skipped: 0 };

	function report() {
		body.setAttribute('data-tiles-requested', counts.requested);
		body.setAttribute('data-tiles-loaded', counts.loaded);
		body.setAttribute('data-tiles-errors', counts.errors);
		body.setAttribute('data-tiles-skipped', counts.skipped);
	}

	// Tiles known to exist, per zoom ("x,y" keys), when the index is small.
	var have = null;
	if (cfg.tiles) {
		have = cfg.tiles.map(function (flat) {
			var s = new Set();
			for (var i = 0; i + 1 < flat.length; i += 2)
				s.add(flat[i] + ',' + flat[i + 1]);
			return s;
		});
	}

	function exists(z, x, y) {
		if (z < cfg.zmin || z > cfg.zmax)
			return false;
		var lv = cfg.levels[z];
		if (!lv || x < lv[0] || x > lv[2] || y < lv[1] || y > lv[3])
			return false;
		return !have || have[z].has(x + ',' + y);
	}

	function fill(tpl, z, x, y) {
		return tpl.replace('{z}', z).replace('{x}', x).replace('{y}', y);
	}

	var crs = cfg.crs === 'EPSG3857' ? L.CRS.EPSG3857 : L.CRS.EPSG4326;
	var map = L.map('map', {
		crs: crs,
		minZoom: 0,
		maxZoom: cfg.zmax + 3,
		zoomSnap: 1,
		fadeAnimation: false
	});
	var bounds = L.latLngBounds(cfg.bounds);

	// ---- the base grid: tile outlines, z/x/y and a graticule ----
	var STEPS = [90, 45, 30, 15, 10, 5, 2, 1, 0.5, 0.25, 0.1, 0.05,
		0.025, 0.01, 0.005, 0.0025, 0.001, 0.0005, 0.00025, 0.0001];

	function fmtDeg(v, pos, neg) {
		var a = Math.abs(v);
		var s = a >= 1 ? String(+a.toFixed(2)) : String(+a.toPrecision(3));
		return s + '\u00b0' + (v > 0 ? pos : v < 0 ? neg : '');
	}

	var Grid = L.GridLayer.extend({
		createTile: function (c) {
			var size = this.getTileSize();
			var t = L.DomUtil.create('canvas', 'vz-grid');
			t.width = size.x;
			t.height = size.y;
			var g = t.getContext('2d');
			g.fillStyle = '#eef1f4';
			g.fillRect(0, 0, size.x, size.y);
			g.strokeStyle = 'rgba(60, 70, 90, 0.25)';
			g.strokeRect(0.5, 0.5, size.x - 1, size.y - 1);
			g.fillStyle = 'rgba(60, 70, 90, 0.45)';
			g.font = '10px sans-serif';
			g.fillText(c.z + '/' + c.x + '/' + c.y, 4, size.y - 5);

			var x0 = c.x * size.x, y0 = c.y * size.y;
			var nw = map.unproject([x0, y0], c.z);
			var se = map.unproject([x0 + size.x, y0 + size.y], c.z);
			var span = Math.max(se.lng - nw.lng, 1e-9);
			var step = STEPS[0];
			for (var i = 0; i < STEPS.length; i++)
				if (STEPS[i] >= span / 3)
					step = STEPS[i];
			g.strokeStyle = 'rgba(60, 90, 140, 0.35)';
			g.fillStyle = 'rgba(40, 60, 100, 0.6)';
			g.beginPath();
			var lon, lat, p;
			for (lon = Math.ceil(nw.lng / step) * step; lon <= se.lng;
				lon += step) {
				p = map.project([nw.lat, lon], c.z);
				var px = Math.round(p.x - x0) + 0.5;
				g.moveTo(px, 0);
				g.lineTo(px, size.y);
				if (px > 40 && px < size.x - 40)
					g.fillText(fmtDeg(lon, 'E', 'W'), px + 2, 12);
			}
			for (lat = Math.ceil(se.lat / step) * step; lat <= nw.lat;
				lat += step) {
				p = map.project([lat, nw.lng], c.z);
				var py = Math.round(p.y - y0) + 0.5;
				g.moveTo(0, py);
				g.lineTo(size.x, py);
				if (py > 24 && py < size.y - 16)
					g.fillText(fmtDeg(lat, 'N', 'S'), 2, py - 2);
			}
			g.stroke();
			return t;
		}
	});
	var grid = new Grid({ tileSize: TILE, noWrap: true, zIndex: 0,
		bounds: crs === L.CRS.EPSG3857 ?
			L.latLngBounds([-85.0511, -180], [85.0511, 180]) :
			L.latLngBounds([-90, -180], [90, 180]) });
	grid.addTo(map);

	// ---- one layer per statistic ----
	var StatLayer = L.TileLayer.extend({
		getTileUrl: function (c) {
			if (!exists(c.z, c.x, c.y))
				return EMPTY;
			return fill(this.options.template, c.z, c.x, c.y);
		}
	});

	var layers = {}, byName = {}, current = null;
	cfg.stats.forEach(function (st, i) {
		var lyr = new StatLayer('', {
			template: st.png,
			tileSize: TILE,
			minNativeZoom: cfg.zmin,
			maxNativeZoom: cfg.zmax,
			minZoom: 0,
			maxZoom: cfg.zmax + 3,
			noWrap: true,
			bounds: bounds,
			zIndex: 10,
			errorTileUrl: EMPTY,
			attribution: 'vizfs'
		});
		lyr.vzStat = i;
		lyr.on('tileloadstart', function (e) {
			if (e.tile.src === EMPTY) {
				counts.skipped++;
			} else {
				counts.requested++;
				e.tile.vzCounted = true;
			}
			report();
		});
		lyr.on('tileload', function (e) {
			// a failed tile "loads" its empty errorTileUrl afterwards
			if (e.tile.vzCounted && e.tile.src !== EMPTY)
				counts.loaded++;
			report();
		});
		lyr.on('tileerror', function (e) {
			if (e.tile.vzCounted)
				counts.errors++;
			report();
		});
		layers[st.name] = lyr;
		byName[st.name] = i;
	});

	// ---- controls: title + zoom readout, legend, layer switcher ----
	function nativeZoom() {
		var z = Math.round(map.getZoom());
		return Math.max(cfg.zmin, Math.min(cfg.zmax, z));
	}

	var Info = L.Control.extend({
		options: { position: 'topright' },
		onAdd: function () {
			var d = L.DomUtil.create('div', 'vz-box vz-info');
			d.innerHTML = '<div class="vz-title"></div>' +
				'<div class="vz-zoom"></div>';
			d.firstChild.textContent = cfg.title;
			this.zoomEl = d.lastChild;
			L.DomEvent.disableClickPropagation(d);
			return d;
		},
		update: function () {
			var z = map.getZoom(), nz = nativeZoom();
			var t = 'zoom ' + z;
			if (nz !== z)
				t += ' (tiles of z' + nz + ')';
			var lv = cfg.levels[nz];
			t += ' \u00b7 ' + (lv ? lv[4] : 0) + ' tiles at z' + nz;
			this.zoomEl.textContent = t;
			body.setAttribute('data-zoom', z);
		}
	});
	var info = new Info().addTo(map);

	function lutColour(lut, i) {
		return '#' + lut.substr(8 * i, 8);
	}

	function fmtVal(v) {
		if (v === null || v === undefined)
			return '';
		if (Number.isInteger(v))
			return String(v);
		var a = Math.abs(v);
		if (a !== 0 && (a < 1e-3 || a >= 1e6))
			return v.toExponential(3);
		return String(+v.toPrecision(6));
	}

	// Value ranges of the tiles built so far, from rasters_summary.csv
	// (the PDG's per-zoom ranges, spec 8.3): summary[stat][z] = [min, max].
	// Only for small pyramids: the CSV has one row per tile and statistic.
	var summary = null;

	function csvRows(text) {
		var rows = [], row = [], f = '', q = false;
		for (var i = 0; i < text.length; i++) {
			var ch = text[i];
			if (q) {
				if (ch === '"' && text[i + 1] === '"') {
					f += '"';
					i++;
				} else if (ch === '"') {
					q = false;
				} else {
					f += ch;
				}
			} else if (ch === '"') {
				q = true;
			} else if (ch === ',') {
				row.push(f);
				f = '';
			} else if (ch === '\n') {
				row.push(f);
				rows.push(row);
				row = [];
				f = '';
			} else if (ch !== '\r') {
				f += ch;
			}
		}
		if (f !== '' || row.length)
			rows.push(row.concat([f]));
		return rows;
	}

	function loadSummary() {
		if (!cfg.tiles)
			return;
		fetch('rasters_summary.csv').then(function (r) {
			if (!r.ok)
				throw new Error('HTTP ' + r.status);
			return r.text();
		}).then(function (text) {
			var rows = csvRows(text), h = rows.shift() || [];
			var ci = {};
			h.forEach(function (n, i) { ci[n] = i; });
			if (ci.stat === undefined || ci.min === undefined ||
				ci.max === undefined || ci.z === undefined)
				return;
			var s = {};
			rows.forEach(function (r) {
				var st = r[ci.stat], z = +r[ci.z];
				var lo = +r[ci.min], hi = +r[ci.max];
				if (!isFinite(z) || !isFinite(lo) || !isFinite(hi))
					return;
				s[st] = s[st] || {};
				var e = s[st][z];
				s[st][z] = e ? [Math.min(e[0], lo), Math.max(e[1], hi)] :
					[lo, hi];
			});
			summary = s;
			legend.update();
		}).catch(function () { /* no summary: the legend says so */ });
	}

	var Legend = L.Control.extend({
		options: { position: 'bottomright' },
		onAdd: function () {
			var d = L.DomUtil.create('div', 'vz-box vz-legend');
			L.DomEvent.disableClickPropagation(d);
			this.el = d;
			return d;
		},
		update: function () {
			if (!current) {
				this.el.textContent = '';
				return;
			}
			var st = cfg.stats[current.vzStat], z = nativeZoom();
			var r = (st.ranges[z] || [null, null]).slice();
			var auto = st.auto === 'tile' ? 'each tile' : 'zoom ' + z;
			var got = summary && summary[st.name] &&
				summary[st.name][z];
			var note = [];
			for (var e = 0; e < 2; e++) {
				if (r[e] !== null || !got)
					continue;
				r[e] = got[e];
				note.push((e ? 'max' : 'min') + ' of zoom ' + z);
			}
			var d = this.el;
			d.innerHTML = '<div class="vz-name"></div><canvas ' +
				'width="256" height="1"></canvas><div class="vz-ends">' +
				'<span></span><span></span></div><div class="vz-note">' +
				'</div>';
			d.querySelector('.vz-name').textContent = st.name + ' (' +
				st.agg + ' of ' + st.property + ')';
			var g = d.querySelector('canvas').getContext('2d');
			for (var i = 0; i < 256; i++) {
				g.fillStyle = lutColour(st.lut, i);
				g.fillRect(i, 0, 1, 1);
			}
			var ends = d.querySelectorAll('.vz-ends span');
			ends[0].textContent = r[0] !== null ? fmtVal(r[0]) :
				'min of ' + auto;
			ends[1].textContent = r[1] !== null ? fmtVal(r[1]) :
				'max of ' + auto;
			var nel = d.querySelector('.vz-note');
			if (note.length)
				nel.appendChild(document.createTextNode(note.join(', ') +
					(st.auto === 'tile' ? ' (each tile is coloured ' +
						'by its own range)' : '') + '. '));
			if (st.nodata_val !== null) {
				var sw = document.createElement('span');
				sw.className = 'vz-nodata';
				sw.style.background = lutColour(st.lut, 256);
				nel.appendChild(sw);
				nel.appendChild(document.createTextNode('nodata (' +
					fmtVal(st.nodata_val) + ')'));
			}
			body.setAttribute('data-legend', st.name);
			body.setAttribute('data-legend-range', JSON.stringify(r));
		}
	});
	var legend = new Legend().addTo(map);

	var overlays = {};
	overlays['grid'] = grid;
	L.control.layers(layers, overlays, { collapsed: false, autoZIndex: false,
		position: 'topright' }).addTo(map);
	L.control.scale({ position: 'bottomleft' }).addTo(map);

	map.on('baselayerchange', function (e) {
		current = e.layer;
		body.setAttribute('data-layer', cfg.stats[current.vzStat].name);
		legend.update();
	});
	map.on('zoomend', function () {
		info.update();
		legend.update();
	});

	// ---- GeoTIFF values under a click ----
	// A reader for the uncompressed baseline TIFFs vizfs writes (GDAL
	// GTiff, strips or tiles, Float64 or other plain sample types).
	function readTiff(buf) {
		var dv = new DataView(buf);
		var le = dv.getUint16(0) === 0x4949;
		if (!le && dv.getUint16(0) !== 0x4d4d)
			throw new Error('not a TIFF');
		if (dv.getUint16(2, le) !== 42)
			throw new Error('BigTIFF is not supported');
		var ifd = dv.getUint32(4, le);
		var n = dv.getUint16(ifd, le), tags = {};
		var SIZES = { 1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4,
			11: 4, 12: 8, 16: 8 };
		for (var i = 0; i < n; i++) {
			var e = ifd + 2 + 12 * i;
			var tag = dv.getUint16(e, le), type = dv.getUint16(e + 2, le);
			var count = dv.getUint32(e + 4, le);
			var sz = SIZES[type] || 1;
			var at = count * sz <= 4 ? e + 8 : dv.getUint32(e + 8, le);
			var vals = [];
			for (var k = 0; k < count && k < 1 << 20; k++) {
				var o = at + k * sz;
				if (type === 3)
					vals.push(dv.getUint16(o, le));
				else if (type === 4)
					vals.push(dv.getUint32(o, le));
				else if (type === 12)
					vals.push(dv.getFloat64(o, le));
				else if (type === 1 || type === 2 || type === 7)
					vals.push(dv.getUint8(o));
				else
					vals.push(null);
			}
			tags[tag] = vals;
		}
		function one(t, d) {
			return tags[t] ? tags[t][0] : d;
		}
		var t = {
			dv: dv, le: le,
			width: one(256), height: one(257),
			bits: one(258, 1), compression: one(259, 1),
			spp: one(277, 1), planar: one(284, 1),
			format: one(339, 1),
			rps: one(278, one(257)),
			strips: tags[273], tileW: one(322), tileH: one(323),
			tiles: tags[324]
		};
		if (t.compression !== 1)
			throw new Error('compressed TIFF (' + t.compression + ')');
		return t;
	}

	function tiffSample(t, col, row, band) {
		var bytes = t.bits / 8, off;
		if (t.tiles) {
			var across = Math.ceil(t.width / t.tileW);
			var down = Math.ceil(t.height / t.tileH);
			var ti = Math.floor(row / t.tileH) * across +
				Math.floor(col / t.tileW);
			var ic = col % t.tileW, ir = row % t.tileH;
			if (t.planar === 2)
				off = t.tiles[band * across * down + ti] +
					(ir * t.tileW + ic) * bytes;
			else
				off = t.tiles[ti] +
					((ir * t.tileW + ic) * t.spp + band) * bytes;
		} else {
			var per = Math.ceil(t.height / t.rps);
			var si = Math.floor(row / t.rps), sr = row % t.rps;
			if (t.planar === 2)
				off = t.strips[band * per + si] +
					(sr * t.width + col) * bytes;
			else
				off = t.strips[si] +
					((sr * t.width + col) * t.spp + band) * bytes;
		}
		var dv = t.dv, le = t.le;
		if (t.format === 3)
			return bytes === 8 ? dv.getFloat64(off, le) :
				dv.getFloat32(off, le);
		if (t.format === 2)
			return bytes === 1 ? dv.getInt8(off) : bytes === 2 ?
				dv.getInt16(off, le) : dv.getInt32(off, le);
		return bytes === 1 ? dv.getUint8(off) : bytes === 2 ?
			dv.getUint16(off, le) : dv.getUint32(off, le);
	}

	var tiffCache = new Map();

	function fetchTiff(url) {
		if (!tiffCache.has(url)) {
			if (tiffCache.size > 8)
				tiffCache.delete(tiffCache.keys().next().value);
			tiffCache.set(url, fetch(url).then(function (r) {
				if (!r.ok)
					throw new Error('HTTP ' + r.status);
				return r.arrayBuffer();
			}).then(readTiff));
		}
		return tiffCache.get(url);
	}

	function probe(latlng) {
		var z = nativeZoom();
		var p = map.project(latlng, z);
		var tx = Math.floor(p.x / TILE), ty = Math.floor(p.y / TILE);
		var col = Math.floor((p.x - tx * TILE) / TILE * cfg.tile_w);
		var row = Math.floor((p.y - ty * TILE) / TILE * cfg.tile_h);
		var where = 'tile ' + z + '/' + tx + '/' + ty + ', pixel ' + col +
			',' + row;
		var result = { z: z, x: tx, y: ty, col: col, row: row,
			values: null };
		var popup = L.popup({ maxWidth: 360 }).setLatLng(latlng);
		function show(html) {
			popup.setContent('<div class="vz-probe">' + html + '</div>');
			popup.openOn(map);
			body.setAttribute('data-probe', JSON.stringify(result));
		}
		if (!exists(z, tx, ty)) {
			result.values = {};
			show(where + '<br>no data here');
			return Promise.resolve(result);
		}
		return fetchTiff(fill(cfg.tif, z, tx, ty)).then(function (t) {
			var rows = '';
			result.values = {};
			cfg.stats.forEach(function (st, i) {
				var v = i < t.spp ? tiffSample(t, col, row, i) : NaN;
				result.values[st.name] = v;
				var txt = fmtVal(v);
				if (st.nodata_val !== null && v === st.nodata_val)
					txt += ' (nodata)';
				rows += '<tr><td></td><td>' + txt + '</td></tr>';
			});
			show(where + '<table>' + rows + '</table>');
			var names = popup.getElement().querySelectorAll(
				'tr td:first-child');
			cfg.stats.forEach(function (st, i) {
				names[i].textContent = st.name;
			});
			return result;
		}).catch(function (err) {
			result.error = String(err.message || err);
			show(where + '<br>cannot read the GeoTIFF: ' + result.error);
			return result;
		});
	}

	map.on('click', function (e) {
		probe(e.latlng);
	});

	// ---- start: #layer=NAME&view=Z/LAT/LON&probe=LAT,LON ----
	var params = new URLSearchParams(location.hash.replace(/^#/, ''));
	var first = layers[params.get('layer')] ||
		layers[cfg.stats.length ? cfg.stats[0].name : ''];
	var view = (params.get('view') || '').split('/').map(Number);
	if (view.length === 3 && view.every(isFinite))
		map.setView([view[1], view[2]], view[0]);
	else
		map.fitBounds(bounds, { maxZoom: cfg.zmax });
	if (first)
		first.addTo(map);
	current = first || null;
	if (current)
		body.setAttribute('data-layer', cfg.stats[current.vzStat].name);
	info.update();
	legend.update();
	loadSummary();
	report();
	var pr = (params.get('probe') || '').split(',').map(Number);
	if (pr.length === 2 && pr.every(isFinite))
		probe(L.latLng(pr[0], pr[1]));
	window.vizfs = { map: map, config: cfg, layers: layers, probe: probe,
		counts: counts };
})();
