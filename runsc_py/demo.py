"""`python -m runsc_py.demo`: run one sandboxed container on the embedded rootfs.

Builds a bundle (busybox rootfs + default spec) under /tmp/runsc-py-demo, runs
a script that prints the hostname, id and `ls /` from inside, and deletes the
container again.  Exits with the container's exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from .busybox import build_rootfs
from .spec import default_spec

SCRIPT = ('echo "hello from the sandbox"; echo "hostname: $(hostname)"; echo "id: $(id)"; '
          'echo "pid: $$"; echo "ls /:"; ls /; grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status')


def main() -> int:
    if os.geteuid() != 0:
        print("runsc-py demo: run as root", file=sys.stderr)
        return 1
    base = tempfile.mkdtemp(prefix="runsc-py-demo-")
    try:
        bundle = os.path.join(base, "bundle")
        build_rootfs(os.path.join(bundle, "rootfs"))
        spec = default_spec()
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["sh", "-c", SCRIPT]
        spec["hostname"] = "runsc-py-demo"
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f, indent=2)
        exe = os.path.join(os.path.dirname(sys.executable), "runsc-py")
        cmd = [exe, "--root", os.path.join(base, "state"), "run", "--bundle", bundle,
               f"demo-{os.getpid()}"]
        print("$ " + " ".join(cmd), flush=True)
        return subprocess.call(cmd)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
