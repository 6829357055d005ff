"""A third-party package registered without running its __init__.

Some packages' `__init__` imports far more than the part we use: pyroute2's
loads NDB, asyncio and http.server (runsc_py/network/_pyroute2.py),
python-ptrace's its debugger's logging and error helpers
(sentry/platform/ptrace_abi.py).  `register` puts a module object for the
package in sys.modules with the package's real `__path__` and spec, so
that its submodules import as they are, and none of its `__init__` runs.
"""

from __future__ import annotations

import sys
import types


def register(name: str, dist: str, **attrs: object) -> None:
    """Register package NAME (installed as DIST) bare, unless it is imported
    already (then the real one stays).  ATTRS: the names its own modules
    take from the package itself, which its __init__ would have made."""
    if name in sys.modules:
        return
    from _frozen_importlib_external import PathFinder  # importlib.machinery's (cli.py)
    spec = PathFinder.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"{dist} is not installed")
    mod = types.ModuleType(name)
    mod.__path__ = list(spec.submodule_search_locations)
    mod.__spec__ = spec
    for key, value in attrs.items():
        setattr(mod, key, value)
    sys.modules[name] = mod
