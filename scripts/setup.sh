#!/usr/bin/env bash
# Install everything runsc-py needs on a fresh Debian bookworm machine (as root):
# Debian packages (libseccomp's Python bindings, busybox-static for the default
# rootfs, reference runtimes and clients for the tests), then a virtualenv on
# Debian's python3 with --system-site-packages so `import seccomp` works.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

want_pkgs=(python3 python3-venv python3-pip python3-seccomp libseccomp2 busybox-static
           gcc libc6-dev iproute2 procps runc)
if [[ "${RUNSC_PY_SETUP_TEST:-0}" == 1 ]]; then
    want_pkgs+=(containerd podman umoci runsc crun)
fi
missing=()
for p in "${want_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import seccomp' 2>/dev/null; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
stamp="$venv/.runsc-py-installed"
want="$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]] || ! "$venv/bin/python" -c 'import runsc_py, pytest' 2>/dev/null; then
    "$venv/bin/pip" install -q --disable-pip-version-check -e "$here[test]" 2>&1 | grep -v "^WARNING: Location" || true
    echo "$want" > "$stamp"
fi
"$venv/bin/runsc-py" --version >/dev/null
echo "setup: ready: $venv/bin/runsc-py" >&2
