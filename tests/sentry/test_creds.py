"""Reading a task's credentials from /proc/TID/status (sentry/creds.py)."""

from __future__ import annotations

import os
import signal

import pytest

from sentry.creds import _field, read_creds, read_umask
from sentry.errors import SysError


def test_a_long_groups_line_is_read_whole() -> None:
    """2,000 groups make the status text longer than one 8 KiB read: every
    field after Groups (CapEff, Umask...) must still be read whole."""
    groups = list(range(5000, 7000))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups(groups)
            os.umask(0o027)
            os.write(w, b"1")
            signal.pause()
        finally:
            os._exit(0)
    try:
        os.close(w)
        assert os.read(r, 1) == b"1"
        c = read_creds(pid)
        assert c.groups == tuple(groups)
        assert c.umask == 0o027 == read_umask(pid)
        with open(f"/proc/{pid}/status") as f:
            cap_eff = next(line for line in f if line.startswith("CapEff:")).split()[1]
        assert c.cap_eff == int(cap_eff, 16)
    finally:
        os.close(r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_a_field_cut_short_is_an_error_and_an_absent_optional_one_a_default() -> None:
    with pytest.raises(SysError):
        _field(b"\nName:\tx\nCapEff:\t00000000000000", b"\nCapEff:", 1)
    assert _field(b"\nName:\tx\n", b"\nUmask:", 1, [b"0022"]) == [b"0022"]
    with pytest.raises(SysError):
        _field(b"\nName:\tx\n", b"\nUid:", 1)
    assert _field(b"\nGroups:\t\nX:\t1\n", b"\nGroups:", 1) == []
