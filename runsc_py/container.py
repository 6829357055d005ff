"""Operations on an existing container: start, kill, delete, pause, resume.

Each takes the container's lock for its whole duration, derives the status
from the live processes (state.py) and refuses invalid transitions with
runc's wording.
"""

from __future__ import annotations

import os

from .cgroups import CgroupManager
from .errors import ContainerNotRunning, RuntimeFailure
from .hooks import run_hooks
from .log import get_logger
from .signals import SIGKILL, pidfd_send_signal
from .state import START_SOCKET, ContainerState, Status, Store, proc_start_time, remove_tree
from .timeline import mark

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)  # (runsc_py/log.py: no `logging` import unless a record is written)


def oci_state(store: Store, st: ContainerState) -> dict[str, Any]:
    status = store.status(st)
    return {
        "ociVersion": st.config.get("ociVersion", ""),
        "id": st.id,
        "pid": st.pid if status is not Status.STOPPED else 0,
        "status": status.value,
        "bundle": st.bundle,
        "rootfs": st.rootfs,
        "created": st.created,
        "owner": st.owner,
        "annotations": st.annotations,
    }


def _hook_state(store: Store, st: ContainerState) -> dict[str, Any]:
    s = oci_state(store, st)
    return {k: s[k] for k in ("ociVersion", "id", "status", "pid", "bundle", "annotations")}


def start(store: Store, cid: str) -> None:
    with store.lock(cid):
        st = store.load(cid)
        status = store.status(st)
        if status is Status.STOPPED:
            raise RuntimeFailure("cannot start a container that has stopped")
        if status in (Status.RUNNING, Status.PAUSED):
            raise RuntimeFailure("cannot start an already running container")
        if status is not Status.CREATED:
            raise RuntimeFailure(f"cannot start a container in the {status.value} state")
        state_dir = store.dir(cid)
        from .procs import connect_start
        try:
            conn = connect_start(state_dir)
        except OSError as e:
            raise RuntimeFailure(f"start container: connect to init: {e.strerror}") from None
        with conn:
            mark("start.connected")
            conn.sendall(b"start")
            st.started = True
            store.save(st)
            _unlink(os.path.join(state_dir, START_SOCKET))
            # Init closes the connection by execve (close-on-exec) on success,
            # or writes the reason it failed.
            chunks = []
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                chunks.append(data)
        mark("start.init-execed")
        if chunks:
            raise RuntimeFailure(b"".join(chunks).decode(errors="replace"))
        hooks = st.config.get("hooks") or {}
        run_hooks("poststart", hooks.get("poststart"), _hook_state(store, st))


def kill(store: Store, cid: str, sig: int, all_: bool = False) -> None:
    with store.lock(cid):
        st = store.load(cid)
        status = store.status(st)
        cg = CgroupManager.from_dict(st.cgroup) if st.cgroup else None
        if all_:
            if cg is not None:
                cg.kill_all(sig)
            if status is Status.STOPPED:
                return
            _signal(st, sig)
            return
        if not status.can_kill():
            raise ContainerNotRunning()
        if not _signal(st, sig):
            raise ContainerNotRunning()
        if status is Status.PAUSED and sig == SIGKILL and cg is not None:
            cg.thaw()


def _signal(st: ContainerState, sig: int) -> bool:
    """Signal the workload's init; False if it is gone (pid reuse guarded)."""
    if not st.init_pid or proc_start_time(st.init_pid) != st.init_start:
        return False
    try:
        pidfd = os.pidfd_open(st.init_pid)
    except OSError:
        return False
    try:
        if proc_start_time(st.init_pid) != st.init_start:
            return False
        pidfd_send_signal(pidfd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(pidfd)


def delete(store: Store, cid: str, force: bool) -> None:
    try:
        lock = store.lock(cid)
        lock.__enter__()
    except RuntimeFailure:
        if force:
            return
        raise
    try:
        try:
            st = store.load(cid)
        except RuntimeFailure:
            if force:
                remove_tree(store.dir(cid))
                return
            raise
        status = store.status(st)
        if status in (Status.RUNNING, Status.PAUSED) and not force:
            raise RuntimeFailure(f"cannot delete container {cid} that is not stopped: {status.value}")
        destroy(store, st)
    finally:
        lock.__exit__()


def destroy(store: Store, st: ContainerState) -> None:
    """Kill every process, remove the cgroups and the state; run poststop hooks."""
    from .procs import remove_network, stop_processes
    cg = CgroupManager.from_dict(st.cgroup) if st.cgroup else None
    if cg is not None and store.status(st) is Status.PAUSED:
        cg.thaw()
    stop_processes(st, st.pid if proc_start_time(st.pid) == st.pid_start else 0)
    remove_network(st)
    if cg is not None:
        try:
            cg.kill_all(SIGKILL)
        except RuntimeFailure as e:
            log.warning("%s", e)
    if cg is not None:
        cg.destroy()
    hooks = st.config.get("hooks") or {}
    state = _hook_state(store, st)
    state["status"] = "stopped"
    remove_tree(store.dir(st.id))
    run_hooks("poststop", hooks.get("poststop"), state)


def pause(store: Store, cid: str) -> None:
    with store.lock(cid):
        st = store.load(cid)
        status = store.status(st)
        if status not in (Status.RUNNING, Status.CREATED):
            if status is Status.PAUSED:
                raise RuntimeFailure("container already paused")
            raise ContainerNotRunning()
        _cgroup(st).freeze()


def resume(store: Store, cid: str) -> None:
    with store.lock(cid):
        st = store.load(cid)
        if store.status(st) is not Status.PAUSED:
            raise RuntimeFailure("container not paused")
        _cgroup(st).thaw()


def _cgroup(st: ContainerState) -> CgroupManager:
    if not st.cgroup:
        raise RuntimeFailure("container has no cgroup")
    return CgroupManager.from_dict(st.cgroup)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
