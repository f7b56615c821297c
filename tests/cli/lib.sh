# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the shell test suites: checks that count, temp dirs.
set -u
VIZFS=${VIZFS:-$(cd "$(dirname "$0")/../.." && pwd)/build/vizfs}
SRC=${VZ_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d "${TMPDIR:-/tmp}/vizfs-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
checks=0
failed=0

ok() { checks=$((checks + 1)); }
fail() {
	checks=$((checks + 1))
	failed=$((failed + 1))
	echo "FAIL: $*" >&2
}
# expect_rc WANT CMD...: run CMD, stdout/stderr to $T/out $T/err
expect_rc() {
	want=$1
	shift
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" -eq "$want" ]; then ok; else
		fail "exit $got (want $want): $*"
		sed 's/^/  stderr: /' "$T/err" | head -5 >&2
	fi
}
# expect_err PATTERN: the last command's stderr matches PATTERN
expect_err() {
	if grep -q -- "$1" "$T/err"; then ok; else
		fail "stderr lacks '$1':"
		sed 's/^/  stderr: /' "$T/err" | head -5 >&2
	fi
}
finish() {
	echo "$(basename "$0"): $checks checks, $failed failed"
	[ "$checks" -gt 0 ] || exit 1
	[ "$failed" -eq 0 ]
}
# write_config FILE INPUTDIR CACHEDIR [ZMAX] [EXTRA_JSON]: a small PDG config
write_config() {
	cat >"$1" <<JSON
{
  "dir_input": "$2",
  "ext_input": ".gpkg",
  "tms_id": "WGS1984Quad",
  "z_range": [0, ${4:-13}],
  "tile_size": [128, 128],
  "simplify_tolerance": 0.1,
  "vizfs_cache_dir": "$3",
  ${5:-}
  "statistics": [
    {"name": "coverage", "weight_by": "area",
     "property": "area_per_pixel_area", "aggregation_method": "sum",
     "resampling_method": "average", "val_range": [0, 1],
     "palette": ["#f8ff1f1A", "#f8ff1f"], "nodata_val": 0,
     "nodata_color": "#ffffff00"},
    {"name": "polygon_count", "weight_by": "count",
     "property": "centroids_per_pixel", "aggregation_method": "sum",
     "resampling_method": "sum", "val_range": [0, null],
     "nodata_val": 0},
    {"name": "change_rate", "weight_by": "area",
     "property": "ChangeRateNet_myr-1", "aggregation_method": "min",
     "resampling_method": "mode", "val_range": [-2, 2],
     "palette": ["#ff0000", "#FF8C00", "#FFA07A", "#FFFF00", "#66CDAA",
                 "#AFEEEE", "#0000ff"],
     "nodata_val": 0}
  ]
}
JSON
}
