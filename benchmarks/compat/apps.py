"""The application matrix: each app is a script in apps/ (read-only at
/compat in the container), run in a container of its own on a fresh overlay
of the Debian rootfs.  An app passes when its script exits 0; each script
checks real work (pages fetched, rows queried, files compared) and prints
OK last.  The time is the wall time of `RUNTIME run` (container start and
teardown included).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks._runtimes import Runtime
from benchmarks.compat import container

log = logging.getLogger("compat.apps")

# name -> (one-line description, timeout in seconds)
APPS: dict[str, tuple[str, float]] = {
    "nginx": ("nginx (default config, daemon + www-data workers) serves pages to curl", 120),
    "postgres": ("pg_ctlcluster start, psql as postgres: create/insert/select/index/vacuum", 240),
    "redis": ("redis-server --daemonize, redis-cli set/get/incr/lists/bgsave", 120),
    "sqlite": ("sqlite3 CLI and Python sqlite3 on one WAL database", 120),
    "python": ("multiprocessing (fork/spawn/forkserver pools, Queue, Lock) + asyncio TCP", 240),
    "python-venv": ("python3 -m venv with bundled pip, pip list", 240),
    "node": ("node HTTP server + client request over loopback, child process", 120),
    "perl": ("perl: files, fork/wait, sockets over loopback, backticks", 120),
    "build": ("gcc + make -j4 over 9 translation units, run the program", 240),
    "git": ("git init/commit/branch/merge/gc --aggressive/fsck/clone", 240),
    "tar-xz": ("tar + xz: modes, owners, setuid, fifo, symlink, mtime round trip", 120),
    "systools": ("ps, top -b -n1, free, uptime, ip addr/route/link, ss -tln, dpkg -l, df", 120),
    "su": ("useradd, su / su - / runuser to another user (PAM)", 120),
}


@dataclass
class AppResult:
    ok: bool
    elapsed: float
    rc: int
    timed_out: bool
    tail: str            # last lines of the script's output (stdout+stderr)


def run_app(rt: Runtime, rootfs: Path, work: Path, name: str) -> AppResult:
    _, timeout = APPS[name]
    run = container.run(rt, rootfs, work, name, ["/bin/sh", "-x", f"/compat/{name}.sh"],
                        timeout=timeout)
    shutil.rmtree(run.out_dir, ignore_errors=True)
    r = run.result
    lines = (r.stdout.rstrip() + "\n" + r.stderr.rstrip()).strip().splitlines()
    ok = r.ok and (r.stdout.rstrip().splitlines() or [""])[-1] == "OK"
    return AppResult(ok, round(r.elapsed, 2), r.rc, r.timed_out, "\n".join(lines[-15:])[-2000:])


def run_apps(rt: Runtime, rootfs: Path, work: Path, names: list[str]) -> dict[str, dict]:
    out = {}
    for name in names:
        res = run_app(rt, rootfs, work, name)
        log.info("apps: %s %s: %s in %.1f s%s", rt.name, name, "ok" if res.ok else "FAIL",
                 res.elapsed, "" if res.ok else " (" + (res.tail.splitlines() or [""])[-1][:120] + ")")
        out[name] = asdict(res)
    return out
