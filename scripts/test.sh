#!/usr/bin/env bash
# Set up, then run the whole test suite (as root).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNSC_PY_SETUP_TEST=1 "$here/scripts/setup.sh"
cd "$here"
exec "$here/.venv/bin/python" -m pytest -p no:cacheprovider "$@"
