"""runsc-py create: create a container from a bundle; it waits for `start`."""

from __future__ import annotations

import os
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

from ..cli import Globals

if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", "-b", default=".", help="path to the bundle (default: .)")
    p.add_argument("--pid-file", default=None, help="write the container's pid here")
    p.add_argument("--console-socket", default=None, help="AF_UNIX socket to send the pty master to")
    p.add_argument("--no-pivot", action="store_true", help="use MS_MOVE + chroot instead of pivot_root")
    p.add_argument("--no-new-keyring", action="store_true", help="accepted (no session keyring is created)")
    p.add_argument("--preserve-fds", type=int, default=0, help="pass N extra fds (3..3+N-1)")
    p.add_argument("--publish", "-p", action="append", default=[], metavar="[IP:]HOSTPORT:CTRPORT[/udp]",
                   help="with --network=bridge: forward a host port to the container")
    p.add_argument("id")


def run(g: Globals, a: argparse.Namespace) -> int:
    create_from_args(g, a)
    return 0


def create_from_args(g: Globals, a: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .. import presandbox, spec
    from ..state import Store, validate_id
    validate_id(a.id)
    store = Store(g.root)
    if os.path.exists(os.path.join(store.dir(a.id), "state.json")):
        from ..errors import RuntimeFailure
        raise RuntimeFailure(f"container with id exists: {a.id}")
    cfg = spec.load(a.bundle)
    # The sandbox process now, before the imports below: it imports what
    # it runs on the other CPU meanwhile (presandbox.py).
    early = presandbox.Presandbox.fork(presandbox.plan(store, g.network, cfg), g.platform,
                                       presandbox.policy_fields(g.net_raw, g.strace, g.uname_release, cfg))
    try:
        return store, _create(g, a, store, cfg, early)
    except BaseException:
        early.kill()  # unless create handed it its orders and reaped it
        early.ns.close_fds()
        raise


def _create(g: Globals, a: argparse.Namespace, store, cfg: dict, early):  # type: ignore[no-untyped-def,type-arg]
    from .. import launch
    opts = launch.CreateOptions(cid=a.id, bundle=a.bundle, pid_file=a.pid_file,
                                console_socket=a.console_socket, no_pivot=a.no_pivot,
                                preserve_fds=a.preserve_fds, systemd_cgroup=g.systemd_cgroup,
                                platform=g.platform, net_raw=g.net_raw,
                                strace=g.strace, strace_syscalls=g.strace_syscalls,
                                file_access=g.file_access, lookup_cache=g.lookup_cache,
                                uname_release=g.uname_release, strace_format=g.strace_format,
                                network=g.network,
                                net_log=os.path.abspath(g.net_log) if g.net_log else "",
                                net_log_all=g.strace, publish=tuple(getattr(a, "publish", ()) or ()))
    return launch.create(store, opts, cfg, early, policy=lambda: _net_policy(g, cfg))


def _net_policy(g: Globals, cfg: dict) -> dict:  # type: ignore[type-arg]
    """The network policy of the flags, the policy file and the spec's
    annotations, as JSON for the sandbox (sentry/netpolicy.py)."""
    from sentry.netpolicy import PolicyError, PolicySource, annotation_log, build_policy
    from ..errors import RuntimeFailure
    ann = dict(cfg.get("annotations") or {})
    src = PolicySource(allow=g.net_allow, deny=g.net_deny, default=g.net_default,
                       deny_private=g.net_deny_private, file=g.net_policy)
    try:
        pol = build_policy(src, ann, host_network=g.network == "host")
    except PolicyError as e:
        raise RuntimeFailure(str(e)) from None
    out = pol.to_json()
    out["log"] = annotation_log(ann)
    return out
