"""The Debian bookworm rootfs the compatibility harness runs in.

Built once with debootstrap and cached OUTSIDE the checkout, keyed by a hash
of everything that decides its contents (suite, mirror, package list, this
module's layout version):

    /var/cache/runsc-py-compat/<key>/rootfs     the finished tree (never written to)
    /var/cache/runsc-py-compat/<key>.lock       flock(2): one build at a time
    /var/cache/runsc-py-compat/<key>.build-XXXX the tree being built (renamed when done)

Two stages, so that no service starts while packages are installed:
1. `debootstrap --variant=minbase` (essential packages + apt);
2. /usr/sbin/policy-rc.d answering 101 ("action forbidden") is written, then
   `apt-get install` of PACKAGES runs chrooted in a private mount namespace
   (`unshare --mount`) holding /proc and /dev for the maintainer scripts: the
   mounts vanish with that namespace, whatever happens.  bookworm's
   debootstrap script fakes no start-stop-daemon, and postgresql's init
   script would start its cluster through pg_ctlcluster, not through it.

Both stages run under `nice -n 15` (the machine is shared).  A build takes
several minutes (~1.2 GB).  The finished tree keeps policy-rc.d (nothing
in a container asks invoke-rc.d for anything).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

log = logging.getLogger("compat.rootfs")

CACHE = Path(os.environ.get("RUNSC_PY_COMPAT_CACHE", "/var/cache/runsc-py-compat"))
SUITE = "bookworm"
# Bump when the build steps below change what ends up in the tree.
LAYOUT_VERSION = 1
PACKAGES: tuple[str, ...] = (
    # CPython's regression suite (and what its tests look up: /etc/services,
    # time zones, openssl's config)
    "python3", "libpython3.11-testsuite", "python3-venv", "netbase", "tzdata", "openssl",
    # services and runtimes of the application matrix
    "nginx-light", "postgresql", "redis-server", "redis-tools", "sqlite3", "nodejs", "perl",
    # builds
    "gcc", "make", "libc6-dev", "git",
    # archives and system tools
    "tar", "xz-utils", "procps", "iproute2", "util-linux", "passwd", "login",
    "curl", "ca-certificates",
)


def mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    for src in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        try:
            text = src.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1].rstrip("/")
            if words[:1] == ["deb"] and len(words) > 2 and "security" not in words[1]:
                url = words[2] if words[1].startswith("[") else words[1]
                return url.rstrip("/")
    return "http://deb.debian.org/debian"


def cache_key(packages: tuple[str, ...] = PACKAGES) -> str:
    text = "\n".join([SUITE, mirror(), str(LAYOUT_VERSION), *sorted(packages)])
    return f"{SUITE}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def cached_path(packages: tuple[str, ...] = PACKAGES) -> Path:
    return CACHE / cache_key(packages) / "rootfs"


def is_built(path: Path) -> bool:
    return (path / ".runsc-py-compat-done").exists()


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("rootfs: another run is building it; waiting for %s", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure(packages: tuple[str, ...] = PACKAGES) -> Path:
    """The cached rootfs, built first if missing.  Never hand it to a runtime
    as is: containers get an overlay on it (see overlay.py)."""
    final = cached_path(packages)
    if is_built(final):
        return final
    if shutil.which("debootstrap") is None:
        raise RuntimeError("rootfs: debootstrap is not installed (apt-get install debootstrap)")
    with _lock(final.parent.with_suffix(".lock")):
        if is_built(final):
            return final
        # Leftovers of a build that was killed (we hold the lock: nobody builds).
        for old in final.parent.parent.glob(final.parent.name + ".build-*"):
            log.info("rootfs: removing the unfinished build %s", old)
            shutil.rmtree(old, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=final.parent.name + ".build-", dir=final.parent.parent))
        try:
            _build(tmp / "rootfs", packages)
            final.parent.mkdir(exist_ok=True)
            if final.exists():  # an unfinished tree from an older layout of this code
                shutil.rmtree(final)
            os.rename(tmp / "rootfs", final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _run(argv: list[str], what: str) -> None:
    """Run a build step in its own process group, killed whole if we are
    interrupted (apt-get's children must not keep writing into a tree that
    is being removed)."""
    log.info("rootfs: %s", what)
    p = subprocess.Popen(["nice", "-n", "15", *argv], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        out, _ = p.communicate()
    except BaseException:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        raise
    if p.returncode != 0:
        tail = "\n".join(out.splitlines()[-25:])
        raise RuntimeError(f"rootfs: {what}: exit {p.returncode}:\n{tail}")


def _build(root: Path, packages: tuple[str, ...]) -> None:
    url = mirror()
    _run(["debootstrap", "--variant=minbase", SUITE, str(root), url],
         f"debootstrap --variant=minbase {SUITE} {root} {url}")
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# runsc-py compat rootfs: never start services from packages\nexit 101\n")
    policy.chmod(0o755)
    (root / "etc/apt/sources.list").write_text(
        f"deb {url} {SUITE} main\ndeb {url} {SUITE}-updates main\n")
    script = (
        'set -e; r="$1"; shift\n'
        'mount -t proc proc "$r/proc"\n'
        'mount --rbind /dev "$r/dev"\n'
        'export DEBIAN_FRONTEND=noninteractive LC_ALL=C\n'
        'chroot "$r" apt-get update -qq\n'
        'chroot "$r" apt-get install -y -qq --no-install-recommends "$@"\n'
        'chroot "$r" apt-get clean\n'
    )
    _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
          str(root), *packages], f"apt-get install {len(packages)} packages (chrooted)")
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (root / ".runsc-py-compat-done").write_text(cache_key(packages) + "\n")
