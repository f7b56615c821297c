# shellcheck shell=sh
# SPDX-License-Identifier: Apache-2.0
# Helpers shared by scripts/test, scripts/demo and bench/run (sourced, not run).
#
# The caller sets VZ_ROOT (repository root) and cds there before sourcing.
# VZ_BUILD_DIR selects the meson build directory (default "build").

VZ_BUILD_DIR=${VZ_BUILD_DIR:-build}
# Debian's interpreter: it has python3-gdal and numpy; a pyenv one may not.
VZ_PY=/usr/bin/python3
[ -x "$VZ_PY" ] || VZ_PY=python3

vz_say()
{
	printf '%s/%s: %s\n' "$(basename "$(dirname "$0")")" "${0##*/}" "$*" >&2
}

vz_die()
{
	vz_say "$*"
	exit 1
}

# vz_option_value BUILD_DIR NAME: print a meson option's current value.
vz_option_value()
{
	"$VZ_PY" - "$1/meson-info/intro-buildoptions.json" "$2" <<'PY' 2>/dev/null
import json, sys
try:
    opts = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(0)
for o in opts:
    if o.get("name") == sys.argv[2]:
        v = o.get("value")
        print(str(v).lower() if isinstance(v, bool) else v)
PY
}

# vz_build [-Dopt=value ...]: configure VZ_BUILD_DIR if needed, then build.
# An existing build directory is reused; only options that differ from the
# requested ones are changed (ninja itself reruns meson when meson.build
# changes).
# shellcheck disable=SC2120 # scripts/test passes -Dwerror=true
vz_build()
{
	if [ ! -f "$VZ_BUILD_DIR/meson-private/coredata.dat" ]; then
		meson setup "$VZ_BUILD_DIR" "$@" || return 1
	else
		for opt in "$@"; do
			name=${opt#-D}
			want=${name#*=}
			name=${name%%=*}
			if [ "$(vz_option_value "$VZ_BUILD_DIR" "$name")" != "$want" ]; then
				meson configure "$VZ_BUILD_DIR" "$opt" >/dev/null ||
					return 1
			fi
		done
	fi
	ninja -C "$VZ_BUILD_DIR"
}

# vz_deps: install missing system packages (no-op when all are present).
vz_deps()
{
	if [ "${VZ_SKIP_DEPS:-0}" = 1 ]; then
		return 0
	fi
	"$VZ_ROOT/scripts/deps"
}

# vz_prepare: deps and build, then set VIZFS to the binary to run.  When
# VIZFS is already set in the environment, that binary is used as it is
# (no deps, no build).
vz_prepare()
{
	if [ -n "${VIZFS:-}" ]; then
		[ -x "$VIZFS" ] || {
			vz_say "VIZFS=$VIZFS is not executable"
			return 1
		}
		return 0
	fi
	vz_deps || {
		vz_say "installing dependencies failed"
		return 1
	}
	# shellcheck disable=SC2119 # no extra meson options here
	vz_build >&2 || {
		vz_say "build failed"
		return 1
	}
	case $VZ_BUILD_DIR in
	/*) VIZFS=$VZ_BUILD_DIR/vizfs ;;
	*) VIZFS=$VZ_ROOT/$VZ_BUILD_DIR/vizfs ;;
	esac
	[ -x "$VIZFS" ] || {
		vz_say "no vizfs binary at $VIZFS"
		return 1
	}
}
