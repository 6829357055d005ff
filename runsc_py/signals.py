"""Signal names and numbers as `kill` accepts them: 9, KILL, SIGKILL."""

from __future__ import annotations

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
