"""The user's process: rlimits, identity, capabilities, no_new_privs, environment.

Order matters (runc's finalizeNamespace): the bounding set is dropped while
we still hold CAP_SETPCAP; setuid happens with KEEPCAPS so the permitted set
survives; then capset installs the exact sets and ambient ones are raised.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import _signal  # signal.py's C module: signal.py imports enum (runsc_py/signals.py)
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, Callable

from .. import libc
from ..errors import RuntimeFailure
from ..spec import CAP_NUMBERS, RLIMITS

_LAST_CAP_FILE = "/proc/sys/kernel/cap_last_cap"


def last_cap() -> int:
    try:
        with open(_LAST_CAP_FILE) as f:
            return int(f.read())
    except OSError:
        return 40


def cap_mask(names: list[str] | None) -> int:
    mask = 0
    for n in names or []:
        mask |= 1 << CAP_NUMBERS[n]
    return mask


def apply_rlimits(rlimits: list[dict[str, Any]] | None) -> None:
    for r in rlimits or []:
        res = RLIMITS[r["type"]]
        try:
            resource.setrlimit(res, (_inf(r["soft"]), _inf(r["hard"])))
        except (OSError, ValueError) as e:
            _soft, hard = resource.getrlimit(res)
            raise RuntimeFailure(
                f"error setting rlimit type {r['type']}: soft {r['soft']} hard {r['hard']}: "
                f"{getattr(e, 'strerror', None) or e} (the host's hard limit is {hard} and raising it "
                f"needs CAP_SYS_RESOURCE)") from None


def _inf(v: int) -> int:
    return resource.RLIM_INFINITY if v >= (1 << 64) - 1 else v


def drop_bounding(caps: dict[str, list[str]] | None, last: int | None = None) -> None:
    keep = cap_mask((caps or {}).get("bounding"))
    for cap in range((last_cap() if last is None else last) + 1):
        if not keep & (1 << cap):
            try:
                libc.prctl(libc.PR_CAPBSET_DROP, cap)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise RuntimeFailure(f"drop capability {cap} from bounding set: {e.strerror}") from None


def set_user(user: dict[str, Any]) -> None:
    uid = user.get("uid", 0)
    gid = user.get("gid", 0)
    groups = list(user.get("additionalGids") or [])
    try:
        os.setgroups(groups)
    except OSError as e:
        # setgroups is denied in a user namespace with setgroups=deny.
        if not (e.errno == errno.EPERM and not groups):
            raise RuntimeFailure(f"setgroups {groups}: {e.strerror}") from None
    libc.prctl(libc.PR_SET_KEEPCAPS, 1)
    try:
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise RuntimeFailure(f"set user {uid}:{gid}: {e.strerror}") from None
    libc.prctl(libc.PR_SET_KEEPCAPS, 0)


def apply_caps(caps: dict[str, list[str]] | None) -> None:
    caps = caps or {}
    try:
        libc.capset(cap_mask(caps.get("effective")), cap_mask(caps.get("permitted")),
                    cap_mask(caps.get("inheritable")))
    except OSError as e:
        raise RuntimeFailure(f"capset: {e.strerror}") from None
    try:
        libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
        for name in caps.get("ambient") or []:
            libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, CAP_NUMBERS[name])
    except OSError as e:
        if e.errno != errno.EPERM:
            raise RuntimeFailure(f"raise ambient capabilities: {e.strerror}") from None


def set_no_new_privs() -> None:
    libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)


def set_oom_score_adj(value: int | None) -> None:
    if value is None:
        return
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as e:
        hint = ""
        if e.errno in (errno.EACCES, errno.EPERM):
            hint = (" (lowering oom_score_adj needs CAP_SYS_RESOURCE, which this host does not "
                    "grant; containerd CRI: restrict_oom_score_adj = true)")
        raise RuntimeFailure(f"set oom_score_adj {value}: {e.strerror}{hint}") from None


def environ(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for kv in env or []:
        k, sep, v = kv.partition("=")
        if sep:
            out[k] = v
    return out


def lookup(arg0: str, env: dict[str, str]) -> str:
    """Find the program like execvp does, with the container's PATH."""
    if "/" in arg0:
        return arg0
    path = env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    for d in path.split(":"):
        cand = os.path.join(d or ".", arg0)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise RuntimeFailure(f'exec: "{arg0}": executable file not found in $PATH')


def close_inherited_fds(keep_upto: int) -> None:
    """Mark every fd above KEEP_UPTO close-on-exec (CVE-2024-21626: no leaked
    fds): one close_range(2), or fd by fd where the kernel lacks it."""
    if libc.cloexec_from(keep_upto + 1):
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > keep_upto:
            try:
                flags = fcntl.fcntl(fd, fcntl.F_GETFD)
                fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
            except OSError:
                pass


def enter_cwd(cwd: str, user: dict[str, Any]) -> None:
    """chdir to the process's cwd, creating it (owned by the user) if missing."""
    try:
        os.chdir(cwd)
        return
    except FileNotFoundError:
        pass
    except OSError as e:
        raise RuntimeFailure(f"chdir to cwd ({cwd!r}) set in config.json failed: {e.strerror}") from None
    try:
        os.makedirs(cwd, 0o755, exist_ok=True)
        os.chown(cwd, user.get("uid", 0), user.get("gid", 0))
        os.chdir(cwd)
    except OSError as e:
        raise RuntimeFailure(f"chdir to cwd ({cwd!r}) set in config.json failed: {e.strerror}") from None


def default_home(env: dict[str, str], uid: int) -> None:
    """runc sets HOME from /etc/passwd (or /) when the spec does not."""
    if "HOME" in env:
        return
    home = "/"
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    home = parts[5] or "/"
                    break
    except OSError:
        pass
    env["HOME"] = home


def become_user(proc: dict[str, Any], last: int) -> None:
    """The process's identity: bounding set, user and groups, the five
    capability sets, no_new_privs if asked, umask."""
    switch_ids(proc, last)
    finish_identity(proc)


def switch_ids(proc: dict[str, Any], last: int) -> None:
    """become_user's first half: the bounding set, user and groups."""
    drop_bounding(proc.get("capabilities"), last)
    set_user(proc.get("user") or {})


def finish_identity(proc: dict[str, Any]) -> None:
    """become_user's second half: the capability sets, no_new_privs if
    asked, umask."""
    apply_caps(proc.get("capabilities"))
    if proc.get("noNewPrivileges"):
        set_no_new_privs()
    umask = (proc.get("user") or {}).get("umask")
    os.umask(0o022 if umask is None else umask)


# How much of the identity init takes before the sandbox hand-off (its
# seccomp filter): see identity_before_handoff.
ALL, IDS, NONE = "all", "ids", "none"


def identity_before_handoff(proc: dict[str, Any]) -> str:
    """What of become_user can run before the workload's filter goes in.

    The filter must go in while init may still install it: with
    no_new_privs set, at any time (runc installs its filter last, right
    before execve, when the spec sets noNewPrivileges); without it, only
    while init holds CAP_SYS_ADMIN.  Whatever runs before it is init's own
    work, unfiltered and unseen by the sentry, which has nothing of init
    cached yet and reads its credentials at its first notified call (the
    execve); whatever runs after it is notified, a round trip each.  So:
    ALL with noNewPrivileges; IDS (bounding set, user and groups) for user
    0, who keeps every capability through the switch, and then only capset
    is notified; NONE otherwise (setgroups, setresgid, setresuid and capset
    notified: a non-root user has no effective capability after setuid)."""
    if proc.get("noNewPrivileges"):
        return ALL
    if (proc.get("user") or {}).get("uid", 0) == 0:
        return IDS
    return NONE


def become_user_and_hand_off(proc: dict[str, Any], last: int, hand_off: "Callable[[], None]",
                             after_setuid: "Callable[[], None]" = lambda: None) -> None:
    """become_user, with hand_off() (the workload filter's installation)
    placed as late in it as identity_before_handoff allows; after_setuid()
    right after the user switch."""
    early = identity_before_handoff(proc)
    if early == ALL:
        become_user(proc, last)
    elif early == IDS:
        switch_ids(proc, last)
    if early != NONE:
        after_setuid()
    hand_off()
    if early == IDS:
        finish_identity(proc)
    elif early == NONE:
        become_user(proc, last)
        after_setuid()


def reset_signals() -> None:
    """Default dispositions and an empty mask for the program (Python
    installed handlers and ignores SIGPIPE)."""
    for sig in range(1, _signal.NSIG):
        if sig not in (_signal.SIGKILL, _signal.SIGSTOP):
            try:
                _signal.signal(sig, _signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
