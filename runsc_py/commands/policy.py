"""runsc-py policy: print the tier of every syscall (native / emulated / denied)."""

from __future__ import annotations

import argparse

from ..cli import Globals


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", "-f", default="table", choices=["table", "json"])


def run(g: Globals, a: argparse.Namespace) -> int:
    from ..errors import RuntimeFailure
    try:
        from sentry.policy import print_table  # type: ignore[import-not-found]
    except ImportError:
        raise RuntimeFailure("policy: the sentry's syscall table is not available") from None
    print_table(a.format, net_raw=g.net_raw)
    return 0
