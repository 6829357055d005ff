"""Import pyroute2's netlink layer without its package __init__.

pyroute2 0.7's `import pyroute2` loads NDB, its CLI, asyncio,
multiprocessing and http.server: 300-450 ms here (svinota/pyroute2#1404).
The rules and the loopback need only two of its route-netlink message
classes (~30-70 ms here, less in a process that already has logging).  `light()` registers a bare
package module for `pyroute2` (its real __path__, no __init__ run) and
imports those; `full()` the IPRoute class, for the bridge (more calls).
Only the network set-up helper process (setup.py) calls these.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any


def _bare_package() -> None:
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("pyroute2 is not installed")
    mod = types.ModuleType("pyroute2")
    mod.__path__ = list(spec.submodule_search_locations)
    mod.__spec__ = spec
    sys.modules["pyroute2"] = mod


def light() -> Any:
    """pyroute2's route-netlink message classes (fibmsg for the rules,
    ifinfmsg for the loopback) and the NLM_F_* flags and RTM_* types: what
    encodes a request.  Without its socket layer (IPRSocket pulls in the
    marshal of every message family: ~100 ms more), the caller sends the
    bytes on a plain AF_NETLINK socket (backstop.Netlink)."""
    _bare_package()
    from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST  # noqa: F401 (returned through locals())
    from pyroute2.netlink.rtnl import RTM_NEWLINK, RTM_NEWRULE  # noqa: F401 (returned through locals())
    from pyroute2.netlink.rtnl.fibmsg import fibmsg  # noqa: F401 (returned through locals())
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # noqa: F401 (returned through locals())
    return types.SimpleNamespace(**{k: v for k, v in locals().items()})


def full() -> Any:
    """pyroute2's IPRoute class."""
    _bare_package()
    from pyroute2.iproute.linux import IPRoute
    return IPRoute
