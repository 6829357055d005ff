"""Signal names and numbers as `kill` accepts them: 9, KILL, SIGKILL."""

from __future__ import annotations

import os

# signal's C module: signal.py imports enum (~4 ms of CPU here) for the
# IntEnum wrappers the short commands have no use for.
import _signal

from .errors import RuntimeFailure

SIGKILL = _signal.SIGKILL
NSIG = _signal.NSIG
pidfd_send_signal = _signal.pidfd_send_signal
# Every signal name the kernel's headers give, aliases (SIGIOT, SIGPOLL,
# SIGCLD) and SIGRTMIN/SIGRTMAX included: what signal.Signals names.
NAMES = {k: v for k, v in vars(_signal).items()
         if k.startswith("SIG") and not k.startswith("SIG_") and isinstance(v, int)}


def parse_signal(text: str) -> int:
    s = text.strip()
    if s.isdigit():
        n = int(s)
        if 0 < n < NSIG:
            return n
        raise RuntimeFailure(f"invalid signal: {text}")
    name = s.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
        base, _, off = name.partition("+" if "+" in name else "-")
        if off.isdigit():
            n = _signal.SIGRTMIN + int(off) if "+" in name else _signal.SIGRTMAX - int(off)
            if _signal.SIGRTMIN <= n <= _signal.SIGRTMAX:
                return int(n)
    sig = NAMES.get(name)
    if sig is None:
        raise RuntimeFailure(f"invalid signal: {text}")
    return sig


FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1,
             _signal.SIGUSR2, _signal.SIGWINCH)


def wait_forwarding(child: int, target: int) -> int:
    """Wait for our child CHILD, forwarding the signals we get to TARGET;
    return its exit code the way a shell reports it (128+N for signal N)."""
    def forward(sig: int, _frame: object) -> None:
        try:
            os.kill(target, sig)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        _signal.signal(sig, forward)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
