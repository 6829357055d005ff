"""runsc-py uninstall: remove the runtime entry `runsc-py install` wrote."""

from __future__ import annotations

from .install import configure
from .install import run_uninstall as run

__all__ = ["configure", "run"]
