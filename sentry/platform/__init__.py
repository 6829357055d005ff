"""Platforms: how the workload's intercepted calls reach the sentry.

One copy of everything above this layer (handlers in sentry/syscalls/, the
policy table, the lookup cache, the gofer client, --strace); what differs
per platform is behind `base.CallChannel`:

- seccomp (`seccomp_notify.py`): SECCOMP_RET_USER_NOTIF, the listener fd,
  ADDFD for fd results, CONTINUE.  The default where the kernel has user
  notification with ADDFD|SEND and SYNC_WAKE_UP (Linux 6.6).
- ptrace (`ptrace.py`): the same BPF policy with SECCOMP_RET_TRACE, a
  tracer thread in the sandbox process, fd results through a socket at a
  reserved descriptor (`reserved.py`).  For kernels or environments where
  user notification is missing or refused (a listener already in the
  filter chain: runsc-py inside another sandbox).
- auto (`probe.py`): seccomp where it works, ptrace otherwise, decided once
  per `create`.
"""

from __future__ import annotations

AUTO = "auto"
SECCOMP = "seccomp"
PTRACE = "ptrace"
PLATFORMS = (AUTO, SECCOMP, PTRACE)
