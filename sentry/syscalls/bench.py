"""Handlers for measurements only (moved in with PolicyOptions.notify_extra)."""

from __future__ import annotations

from ..call import Call


def null(call: Call) -> int:
    """Answers 0 without doing anything: the bare notification round trip."""
    return 0


def pid(call: Call) -> int:
    """Answers the caller's TID as the supervisor sees it."""
    return call.pid
