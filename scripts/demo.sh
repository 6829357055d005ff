#!/usr/bin/env bash
# Set up, then run a sandboxed demo container on the embedded busybox rootfs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
exec "$here/.venv/bin/python" -m runsc_py.demo "$@"
