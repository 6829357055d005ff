"""Signal names and numbers as `kill` accepts them: 9, KILL, SIGKILL."""

from __future__ import annotations

import os
import signal

from .errors import RuntimeFailure


def parse_signal(text: str) -> int:
    s = text.strip()
    if s.isdigit():
        n = int(s)
        if 0 < n < signal.NSIG:
            return n
        raise RuntimeFailure(f"invalid signal: {text}")
    name = s.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
        base, _, off = name.partition("+" if "+" in name else "-")
        if off.isdigit():
            n = signal.SIGRTMIN + int(off) if "+" in name else signal.SIGRTMAX - int(off)
            if signal.SIGRTMIN <= n <= signal.SIGRTMAX:
                return int(n)
    try:
        sig = signal.Signals[name]
    except KeyError:
        raise RuntimeFailure(f"invalid signal: {text}") from None
    return int(sig)


FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH)


def wait_forwarding(child: int, target: int) -> int:
    """Wait for our child CHILD, forwarding the signals we get to TARGET;
    return its exit code the way a shell reports it (128+N for signal N)."""
    def forward(sig: int, _frame: object) -> None:
        try:
            os.kill(target, sig)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
