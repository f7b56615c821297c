#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The FUSE suite: real mounts checked by tests/fuse/test_mount.py.
# Exits 77 (skip) when FUSE or the system Python is not available.
[ -e /dev/fuse ] || { echo "skip: no /dev/fuse"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "skip: no /usr/bin/python3"; exit 77; }
exec /usr/bin/python3 "$(dirname "$0")/test_mount.py" "$@"
