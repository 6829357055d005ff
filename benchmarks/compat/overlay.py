"""A private writable root for one container: overlayfs on the cached rootfs.

    mount -t overlay overlay -o lowerdir=CACHED,upperdir=D/upper,workdir=D/work D/merged

Kernel facts relied on:
- overlayfs never writes to a lower directory: every change (new file, chmod,
  chown, unlink: a whiteout) lands in upperdir, so the cached tree stays as
  debootstrap left it, however many containers run on it at once;
- upperdir and workdir must be on one filesystem, which must support
  trusted.* xattrs and d_type (ext4/xfs/tmpfs do): D is under /var/tmp;
- the mount is made in this process's mount namespace (the host's), so a
  runtime sees it as an ordinary directory; it must be unmounted before D
  can be removed.  `umount` is retried, then done lazily (MNT_DETACH) if a
  straggler of a dead container still holds it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger("compat.overlay")


class Overlay:
    """Context manager: .merged is the container's root, .upper its changes."""

    def __init__(self, lower: Path, parent: Path, name: str = "ovl") -> None:
        self.lower = lower
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=parent))
        self.upper = self.dir / "upper"
        self.work = self.dir / "work"
        self.merged = self.dir / "merged"
        self.mounted = False

    def __enter__(self) -> "Overlay":
        try:
            for d in (self.upper, self.work, self.merged):
                d.mkdir()
            # The container root is 0755 root:root whatever the temp dir's mode.
            os.chmod(self.dir, 0o755)
            opts = f"lowerdir={self.lower},upperdir={self.upper},workdir={self.work}"
            p = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(self.merged)],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError(f"overlay: mount {self.merged}: {p.stderr.strip()}")
            self.mounted = True
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.mounted:
            for attempt in range(5):
                p = subprocess.run(["umount", str(self.merged)], capture_output=True, text=True)
                if p.returncode == 0:
                    break
                time.sleep(0.2 * (attempt + 1))
            else:
                log.warning("overlay: umount %s: %s; detaching it lazily", self.merged,
                            p.stderr.strip())
                subprocess.run(["umount", "-l", str(self.merged)], capture_output=True)
            self.mounted = False
        shutil.rmtree(self.dir, ignore_errors=True)
