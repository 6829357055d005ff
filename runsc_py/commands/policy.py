"""runsc-py policy: print the tier of every syscall (native / emulated / denied)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

from ..cli import Globals

if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", "-f", default="table", choices=["table", "json"])
    p.add_argument("--sentry", action="store_true",
                   help="print the sentry's own allowlist instead of the workload's policy")
    p.add_argument("--gofer", action="store_true",
                   help="print the gofer's own allowlist instead of the workload's policy")
    p.add_argument("--continue", action="store_true", dest="continues",
                   help="print the calls whose handler may let the kernel run them "
                        "(SECCOMP_USER_NOTIF_FLAG_CONTINUE), and why that decides nothing")


def run(g: Globals, a: argparse.Namespace) -> int:
    from ..errors import RuntimeFailure
    if a.sentry or a.gofer:
        import json
        if a.gofer:
            from gofer import filter as own
        else:
            from sentry import self_filter as own  # type: ignore[no-redef]
        # The sentry's list has the ptrace platform's entries with
        # --platform=ptrace (`runsc-py --platform=ptrace policy --sentry`).
        rows = own.table() if a.gofer else own.table(g.platform)
        if a.format == "json":
            print(json.dumps([{"name": n, "reason": r} for n, r in rows], indent=1))
        else:
            for n, r in rows:
                print(f"{n:<20} {r}")
        return 0
    if a.continues:
        import json
        from sentry.policy import CONTINUES
        if a.format == "json":
            print(json.dumps([{"name": n, "reason": r} for n, r in sorted(CONTINUES.items())], indent=1))
        else:
            for n, r in sorted(CONTINUES.items()):
                print(f"{n:<18} {r}")
        return 0
    try:
        from sentry.policy import print_table  # type: ignore[import-not-found]
    except ImportError:
        raise RuntimeFailure("policy: the sentry's syscall table is not available") from None
    print_table(a.format, net_raw=g.net_raw)
    return 0
