"""runsc-py spec: write a default config.json into the bundle."""

from __future__ import annotations

import json
import os
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

from ..cli import Globals

if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", "-b", default=".", help="bundle directory (default: .)")
    p.add_argument("--rootless", action="store_true", help="a spec for a rootless container")


def run(g: Globals, a: argparse.Namespace) -> int:
    from ..errors import RuntimeFailure
    from ..spec import default_spec
    path = os.path.join(a.bundle, "config.json")
    if os.path.exists(path):
        raise RuntimeFailure(f"File {path} exists. Remove it first")
    try:
        with open(path, "x") as f:
            json.dump(default_spec(a.rootless), f, indent="\t")
            f.write("\n")
    except OSError as e:
        raise RuntimeFailure(f"write {path}: {e.strerror}") from None
    return 0
