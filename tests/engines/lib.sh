# SPDX-License-Identifier: Apache-2.0
# Helpers for the engine tests: skipping, installing Debian packages, waiting.
# Sourced after tests/cli/lib.sh (checks, $T, write_config).

# skip MESSAGE: this engine cannot run here; meson counts exit 77 as skipped
skip()
{
	echo "skip: $*"
	exit 77
}

# need_root: engines start daemons and mount file systems
need_root()
{
	[ "$(id -u)" -eq 0 ] || skip "needs root (starts daemons)"
}

# ensure_pkgs CMD PKG...: install the Debian packages PKG... unless CMD is
# on PATH already (or in /usr/sbin); skip when that is impossible
ensure_pkgs()
{
	cmd=$1
	shift
	PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 && return 0
	command -v apt-get >/dev/null 2>&1 || skip "$cmd missing and no apt-get to install $*"
	echo "installing $* (for $cmd)" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-o Dpkg::Use-Pty=0 "$@" >"$T/apt.log" 2>&1 ||
		{ apt-get update -qq >>"$T/apt.log" 2>&1 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends -o Dpkg::Use-Pty=0 "$@" \
			>>"$T/apt.log" 2>&1; } ||
		skip "cannot install $* (apt log: $(tail -2 "$T/apt.log" | tr '\n' ' '))"
	PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 ||
		skip "$cmd still missing after installing $*"
}

# wait_for SECONDS CMD...: poll CMD every half second until it succeeds
wait_for()
{
	limit=$(($1 * 2))
	shift
	while ! "$@" >/dev/null 2>&1; do
		limit=$((limit - 1))
		[ "$limit" -gt 0 ] || return 1
		sleep 0.5
	done
	return 0
}

# stop_pid PID NAME: SIGTERM, then SIGKILL after 20 s; PID must be ours
stop_pid()
{
	[ -n "$1" ] || return 0
	kill -0 "$1" 2>/dev/null || return 0
	kill "$1" 2>/dev/null
	n=40
	while kill -0 "$1" 2>/dev/null && [ $n -gt 0 ]; do
		sleep 0.5
		n=$((n - 1))
	done
	if kill -0 "$1" 2>/dev/null; then
		echo "$2 (pid $1) ignored SIGTERM; killing it" >&2
		kill -9 "$1" 2>/dev/null
	fi
}

# same_outputs A B: the GeoTIFFs, PNG tiles and rasters_summary.csv of two
# exported trees are the same files with the same bytes (staged GeoPackages
# carry timestamps; the viewer's files depend on the build, not the data)
same_outputs()
{
	(cd "$1" && find geotiff web_tiles rasters_summary.csv -name '*.tif' -o \
		-name '*.png' -o -name rasters_summary.csv) | sort >"$T/list-a"
	(cd "$2" && find geotiff web_tiles rasters_summary.csv -name '*.tif' -o \
		-name '*.png' -o -name rasters_summary.csv) | sort >"$T/list-b"
	if ! cmp -s "$T/list-a" "$T/list-b"; then
		fail "file lists differ: $1 vs $2"
		diff "$T/list-a" "$T/list-b" | head -5 >&2
		return
	fi
	nfiles=$(wc -l <"$T/list-a")
	[ "$nfiles" -gt 20 ] && ok || fail "only $nfiles files exported to $1"
	ndiff=0
	while read -r f; do
		cmp -s "$1/$f" "$2/$f" || {
			ndiff=$((ndiff + 1))
			[ $ndiff -gt 3 ] || echo "differs: $f" >&2
		}
	done <"$T/list-a"
	[ "$ndiff" -eq 0 ] && ok || fail "$ndiff of $nfiles files differ: $1 vs $2"
}

# elapsed: seconds since the test started
t_start=$(date +%s)
elapsed()
{
	echo $(($(date +%s) - t_start))
}
