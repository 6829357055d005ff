"""What each network mode makes of the spec's network namespace."""

from __future__ import annotations


from ..record import Record
from runsc_py.log import get_logger

log = get_logger(__name__)


class NetPlan(Record, frozen=True):
    """mode: the --network value.  spec_ns: what the sandbox process does
    with the spec's network namespace: "new", a path to join, or "" (stay in
    the runtime's).  workload_own: the workload gets a fresh namespace of
    its own (mode none), unlike the sandbox process.  backstop: the kernel
    rules may go in the workload's namespace (never the host's)."""

    mode: str
    spec_ns: str
    workload_own: bool

    @property
    def backstop(self) -> bool:
        return self.mode != "host" and (self.workload_own or bool(self.spec_ns))

    @property
    def workload_shares_host(self) -> bool:
        return not self.workload_own and not self.spec_ns


def plan(mode: str, namespaces: dict[str, str]) -> NetPlan:
    """NAMESPACES: the spec's type -> path ("" for a new one)."""
    has = "network" in namespaces
    spec_ns = ("new" if not namespaces["network"] else namespaces["network"]) if has else ""
    if mode == "host":
        if has:
            log.info("network host: the spec's network namespace is not used")
        return NetPlan(mode, "", False)
    if mode == "none":
        return NetPlan(mode, spec_ns, True)
    if mode == "bridge":
        if spec_ns != "new":
            from ..errors import RuntimeFailure
            raise RuntimeFailure("network bridge: needs a new network namespace in the spec "
                                 "(linux.namespaces: {\"type\": \"network\"} without a path)")
        return NetPlan(mode, spec_ns, False)
    if not has:
        log.info("network sandbox: the spec has no network namespace: the workload uses the "
                 "runtime's (the host's); the policy still applies, the kernel backstop does not")
    return NetPlan(mode, spec_ns, False)
