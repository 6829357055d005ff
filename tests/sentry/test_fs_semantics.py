"""File semantics under the sentry == natively.

The same static probe (fsprobe.c) runs twice in identical scratch roots:
natively, chrooted into root A (the kernel's own answers), and under the
sentry with root B as the container root (no chroot: only the sentry keeps
it inside).  Every line must match; escapes must find nothing of the host.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import KNOWN_DIFFERENCES
from harness import run_probe

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def fsprobe() -> str:  # type: ignore[misc]
    if os.geteuid() != 0:
        pytest.skip("needs root (chroot, process_vm_readv)")
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    d = Path(tempfile.mkdtemp(prefix="sentry-fsprobe-", dir="/tmp"))
    os.chmod(d, 0o755)
    out = d / "fsprobe"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(HERE / "fsprobe.c")], check=True)
    yield str(out)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["directfs", "gofer"])
def file_access(request: pytest.FixtureRequest) -> str:
    """Both of the sentry's file-access modes must give the kernel's answers."""
    return str(request.param)


def _make_root(base: Path, probe: str) -> Path:
    r = base
    (r / "etc").mkdir(parents=True)
    (r / "work").mkdir()
    (r / "etc" / "hello").write_text("hello-root\n")
    (r / "secret").write_text("root-only\n")
    os.chmod(r / "secret", 0o600)
    shutil.copy(probe, r / "fsprobe")
    return r


def _native(root: Path, args: list[str]) -> str:
    def enter() -> None:
        os.chroot(str(root))
        os.chdir("/work")

    p = subprocess.run(["/fsprobe", *args], preexec_fn=enter, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def test_file_semantics_match_native(fsprobe: str, tmp_path: Path, file_access: str) -> None:
    ra = _make_root(tmp_path / "a", fsprobe)
    rb = _make_root(tmp_path / "b", fsprobe)
    native = _native(ra, [])
    r = run_probe(str(rb / "fsprobe"), [], str(rb), cwd=str(rb / "work"), file_access=file_access)
    assert r.status == 0, r.out
    nat, sbx = native.splitlines(), r.out.splitlines()
    diffs = [(n, s) for n, s in zip(nat, sbx) if n != s and n.split()[:1] not in KNOWN_DIFFERENCES]
    assert not diffs and len(nat) == len(sbx), "\n".join(f"native: {n}\nsentry: {s}" for n, s in diffs)
    got = r.lines()
    # The escapes found nothing of the host and created nothing outside.
    assert got["cat-escape"] == ["-1", str(errno.ENOENT)]
    assert got["cat-escape-abs"] == ["-1", str(errno.ENOENT)]
    assert got["cat-dotdot-storm"] == ["-1", str(errno.ENOENT)]
    assert not os.path.exists("/tmp/sentry-escape-probe")
    assert (rb / "tmp" / "sentry-escape-probe").exists() is False  # rmdir'ed again
    assert os.path.exists("/etc/hostname")
    # Sanity: the interesting steps really did something.
    assert got["renameat2-exchange"] == ["0", "0"]
    assert got["getxattr"][2] == "value"
    assert got["unix-data"] == ["ping"]
    assert got["inotify-event"] == ["1", "newdir"]


def test_block_devices_refused(probe: str, fsprobe: str, tmp_path: Path, file_access: str) -> None:
    # Natively root may mknod a block device; the sentry refuses: EPERM.
    src = HERE / "blk.c"
    src_text = ('#include <stdio.h>\n#include <errno.h>\n#include <sys/stat.h>\n'
                '#include <sys/sysmacros.h>\n#include <sys/syscall.h>\n#include <unistd.h>\n'
                'int main(void){long r=syscall(SYS_mknod,"blk",S_IFBLK|0600,makedev(8,0));'
                'printf("mknod-blk %ld %d\\n",r,r<0?errno:0);return 0;}\n')
    c = tmp_path / "blk.c"
    c.write_text(src_text)
    exe = tmp_path / "blk"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(exe), str(c)], check=True)
    os.chmod(tmp_path, 0o755)
    root = _make_root(tmp_path / "r", fsprobe)
    shutil.copy(exe, root / "blk")  # executed from inside the root (fexecve of an outside file is refused)
    r = run_probe(str(root / "blk"), [], str(root), cwd=str(root / "work"), file_access=file_access)
    assert r.lines()["mknod-blk"] == ["-1", str(errno.EPERM)]
    assert not (root / "work" / "blk").exists()
    del src


_libc = ctypes.CDLL(None, use_errno=True)


def test_proc_self_is_the_target(fsprobe: str, tmp_path: Path, file_access: str) -> None:
    root = _make_root(tmp_path / "r", fsprobe)
    (root / "proc").mkdir()
    (root / "etc" / "mtab").symlink_to("/proc/self/mounts")
    (root / "dev").mkdir()
    (root / "dev" / "fd").symlink_to("/proc/self/fd")
    proc = str(root / "proc")
    if _libc.mount(b"proc", proc.encode(), b"proc", 0, None) != 0:
        pytest.skip("cannot mount a procfs")
    try:
        r = run_probe(str(root / "fsprobe"), ["proc"], str(root), cwd=str(root / "etc"), file_access=file_access)
    finally:
        _libc.umount2(proc.encode(), 2)  # MNT_DETACH
    assert r.status == 0, r.out
    got = r.lines()
    own = got["own-pid"][0]
    assert got["cat-self-status"][2:] == ["Name:", "fsprobe"]
    assert got["readlink-self"] == [str(len(own)), "0", own]
    assert got["readlink-self-exe"][2].endswith("fsprobe")
    assert got["readlink-self-cwd"] == ["4", "0", "/etc"]
    assert got["readlink-self-root"] == ["1", "0", "/"]
    assert got["readlink-self-fd"] == ["10", "0", "/etc/hello"]
    assert got["cat-self-fd"][2] == "hello-root"
    assert got["cat-thread-self-fd"][2] == "hello-root"
    # Reopening a read-only fd for writing through its magic link is what
    # Linux allows the file's owner (root here): fd 3 is /etc/hello, so the
    # new one is 4, as the same probe prints natively.
    assert got["open-self-fd-write-ro-file"] == ["4", "0"]
    assert got["cat-self-root-etc"][2] == "hello-root"
    assert got["cat-self-root-escape"] == ["-1", str(errno.ENOENT)]
    assert got["cat-self-cwd"][2] == "hello-root"
    assert got["cat-self-exe"][0] != "-1"
    assert got["cat-mtab"][0] != "-1"
    # pid 1 here is the host's init: its magic links are never followed.
    assert got["cat-one-exe"] == ["-1", str(errno.EACCES)]
    assert got["cat-one-root"] == ["-1", str(errno.EACCES)]
    assert got["cat-rel-self-status"][2:] == ["Name:", "fsprobe"]
    assert int(got["ls-self-fd"][0]) >= 3



def test_rename_exchange_race_stays_in_the_root(tmp_path: Path, file_access: str) -> None:
    """race.c swaps a directory with a symlink pointing far above the root
    (renameat2 RENAME_EXCHANGE) while it opens a file through that name.
    Here no namespace root confines anything (directfs: the root is a plain
    directory of the host), so only the resolution keeps it inside: natively
    the same loop reads the host's marker."""
    exe = tmp_path / "race"
    subprocess.run(["gcc", "-static", "-O2", "-pthread", "-o", str(exe), str(HERE / "race.c")],
                   check=True, capture_output=True)
    marker = tmp_path / "marker"
    marker.mkdir()
    (marker / "secret").write_text("HOST-SECRET\n")
    target = "/".join([".."] * 40) + str(marker)
    native_dir = tmp_path / "native"
    native_dir.mkdir()
    for _ in range(5):  # the swapping thread may start late: a few tries
        p = subprocess.run([str(exe), target, "20000", "secret"], cwd=native_dir, capture_output=True,
                           text=True, timeout=60)
        if int(p.stdout.split()[3]) > 0:
            break
    assert int(p.stdout.split()[3]) > 0, p.stdout  # the race does reach the host natively
    os.chmod(tmp_path, 0o755)
    root = _make_root(tmp_path / "r", str(exe))
    shutil.copy(exe, root / "race")
    r = run_probe(str(root / "race"), [target, "1500", "secret"], str(root), cwd=str(root / "work"),
                  file_access=file_access, threads=2)
    assert r.status == 0, r.out
    words = r.out.split()
    i = words.index("opened")
    assert words[i + 3] == "0", r.out
    assert int(words[i + 1]) > 0, r.out


def test_symlink_and_dotdot_escapes_stay_in_the_root(probe: str, tmp_path: Path, file_access: str) -> None:
    """The positive control of tests/test_gofer.py's real-container test of
    the same name, where the container's mount namespace would stop ".."
    anyway: here (directfs) the root is a plain host directory and nothing
    but the resolution keeps a path inside it.  Natively (no sentry, same
    cwd) every spelling reaches the host's marker; under the sentry none."""
    marker = tmp_path / "marker"
    marker.mkdir()
    (marker / "secret").write_text("HOST-SECRET\n")
    os.chmod(tmp_path, 0o755)
    root = tmp_path / "r"
    (root / "work").mkdir(parents=True)
    dots = "/".join([".."] * 40)
    (root / "work" / "abs").symlink_to(f"/{dots}{marker}/secret")
    (root / "work" / "rel").symlink_to(f"{dots}{marker}/secret")
    (root / "work" / "dir").symlink_to(f"{dots}{marker}")
    shutil.copy(probe, root / "probe")
    spellings = ["abs", "rel", "dir/secret", f"{dots}{marker}/secret", f"/{dots}{marker}/secret",
                 f"dir/../{dots}{marker}/secret", "./dir/./secret"]
    args = [f"cat={p}" for p in spellings]
    native = subprocess.run([str(root / "probe"), *args], cwd=root / "work", capture_output=True,
                            text=True, timeout=60).stdout
    assert native.count("HOST-SECRET") == len(spellings), native  # each reaches the host natively
    r = run_probe(str(root / "probe"), args, str(root), cwd=str(root / "work"), file_access=file_access)
    assert "HOST-SECRET" not in r.out, r.out
    assert r.out.count("cat -1") == len(spellings), r.out


def test_scoped_lookups_survive_mount_churn(probe: str, tmp_path: Path, file_access: str) -> None:
    """A lookup confined to the root (openat2 RESOLVE_IN_ROOT) fails with
    EAGAIN when any mount or rename on the host happens while it walks
    "..": the sentry retries, as openat2(2) asks, so the workload never sees
    it.  Here a thread mounts and unmounts a tmpfs in a loop (mount_lock is
    global) while the probe opens a path with ".." in it 8000 times."""
    import threading
    spot = tmp_path / "churn"
    spot.mkdir()
    stop = threading.Event()
    libc = ctypes.CDLL(None, use_errno=True)

    def churn() -> None:
        while not stop.is_set():
            if libc.mount(b"none", str(spot).encode(), b"tmpfs", 0, None) == 0:
                libc.umount2(str(spot).encode(), 0)

    os.chmod(tmp_path, 0o755)
    root = _make_root(tmp_path / "r", probe)  # executed from inside the root (gofer mode)
    t = threading.Thread(target=churn, daemon=True)
    t.start()
    try:
        r = run_probe(str(root / "fsprobe"), ["loop-open=8000:/etc/../etc/./../etc/hello"], str(root),
                      file_access=file_access, timeout=120)
    finally:
        stop.set()
        t.join()
        libc.umount2(str(spot).encode(), 2)  # MNT_DETACH, if the last round left it mounted
    line = r.lines().get("loop-open", [])
    assert line[-2:] == ["bad", "0"], r
