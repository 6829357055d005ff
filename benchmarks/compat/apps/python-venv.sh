#!/bin/sh
# python3 -m venv with its bundled pip (no network), then pip list in it.
set -eu
python3 -m venv /tmp/venv
/tmp/venv/bin/python -c 'import sys; assert sys.prefix == "/tmp/venv"; print(sys.version)'
/tmp/venv/bin/pip --version
/tmp/venv/bin/pip list --disable-pip-version-check >/dev/null
echo OK
