"""The embedded default rootfs: a busybox tree built from Debian's busybox-static."""

from __future__ import annotations

import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"

_ETC = {
    "passwd": "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
              "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "group": "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n",
    "hostname": "runsc-py\n",
    "hosts": "127.0.0.1 localhost\n::1 localhost\n",
}


def build_rootfs(dest: str, busybox: str = BUSYBOX) -> str:
    """Create DEST as a minimal busybox root filesystem and return it."""
    if not os.path.exists(busybox):
        raise FileNotFoundError(f"{busybox} not found: install Debian's busybox-static")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root",
              "home/user", "var/run", "run"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(busybox, os.path.join(dest, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for path in applets:
        link = os.path.join(dest, path)
        if os.path.lexists(link) or path == "bin/busybox":
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("/bin/busybox", link)
    for name, text in _ETC.items():
        with open(os.path.join(dest, "etc", name), "w") as f:
            f.write(text)
    return dest
