"""runsc-py ps: the processes of a container (host pids)."""

from __future__ import annotations

from .. import jsonio
from ..cli import Globals
from ..flags import REMAINDER

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", "-f", default="table", choices=["table", "json"])
    p.add_argument("id")
    p.add_argument("ps_args", nargs=REMAINDER, help="arguments for ps(1) (default -ef)")


def run(g: Globals, a: argparse.Namespace) -> int:
    from ..cgroups import CgroupManager
    from ..errors import RuntimeFailure
    from ..state import Store
    st = Store(g.root).load(a.id)
    pids = CgroupManager.from_dict(st.cgroup).pids() if st.cgroup else []
    # The gofer shares the container's cgroup (device rules apply to the
    # nodes it creates) but is the runtime's, as runsc's gofer is.  In
    # directfs mode it exits once the container has started: its number
    # may then be a workload process's.
    pids = [p for p in pids if p != st.gofer_pid or not _is_gofer(p)]
    if a.format == "json":
        print(jsonio.dumps(pids))
        return 0
    import subprocess  # the table only: `ps --format json` (containerd's) runs no ps(1)
    args = [x for x in a.ps_args if x != "--"] or ["-ef"]
    try:
        out = subprocess.run(["ps", *args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise RuntimeFailure(f"ps: {e}") from None
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    try:
        col = header.index("PID")
    except ValueError:
        raise RuntimeFailure("ps: no PID column in the output of ps") from None
    print(lines[0])
    want = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in want:
            print(line)
    return 0


def _is_gofer(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip() == b"runsc-gofer"
    except OSError:
        return False
