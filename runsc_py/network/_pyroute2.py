"""Import pyroute2's netlink layer without its package __init__.

pyroute2 0.7's `import pyroute2` loads NDB, its CLI, asyncio,
multiprocessing and http.server: 300-450 ms here (svinota/pyroute2#1404).
`full()` registers a bare package module for `pyroute2` (its real
__path__, no __init__ run: runsc_py/bare_package.py) and imports the
IPRoute class, for the bridge (veths, addresses, routes in two
namespaces).  Only the network set-up
helper process (setup.py) calls it, with --network=bridge; the loopback
and the backstop's rules are two kinds of request that backstop.py
encodes itself.
"""

from __future__ import annotations

from runsc_py.bare_package import register
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any


def full() -> Any:
    """pyroute2's IPRoute class (its records, through the standard
    `logging`, go to our log)."""
    from runsc_py.log import bridge_stdlib
    bridge_stdlib()
    register("pyroute2", "pyroute2")
    from pyroute2.iproute.linux import IPRoute
    return IPRoute
