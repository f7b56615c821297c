#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Kubernetes manifests and compose file, checked offline (no cluster here).
#
# Installs Debian's python3-yaml and python3-kubernetes when missing and
# runs manifests.py: every object against the client's API models, the
# shard/merge/serve wiring, broken copies rejected.  A client-side
# `kubectl apply --dry-run=client` still needs an API server for discovery,
# so it is not run here (docs/scale-out.md has the commands for a cluster).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || skip "no /usr/bin/python3"
if ! "$PY" -c 'import yaml, kubernetes.client' 2>/dev/null; then
	[ "$(id -u)" -eq 0 ] || skip "python3-yaml/python3-kubernetes missing (not root: cannot install)"
	echo "installing python3-yaml python3-kubernetes" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-o Dpkg::Use-Pty=0 python3-yaml python3-kubernetes >"$T/apt.log" 2>&1 ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get \
			install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 \
			python3-yaml python3-kubernetes; } >>"$T/apt.log" 2>&1
	"$PY" -c 'import yaml, kubernetes.client' 2>/dev/null ||
		skip "cannot install python3-yaml python3-kubernetes"
fi
"$PY" "$(dirname "$0")/manifests.py" "$SRC"
