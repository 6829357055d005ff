"""runsc-py features: what this runtime supports (runtime-spec features.md)."""

from __future__ import annotations

import json
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

from ..cli import Globals

if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    pass


def run(g: Globals, a: argparse.Namespace) -> int:
    from ..init.rootfs import _FLAGS, _PROPAGATION
    from ..spec import CAPABILITIES, HOOK_KINDS, NAMESPACE_TYPES, SPEC_VERSION
    features = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": sorted(set(_FLAGS) | set(_PROPAGATION)),
        "linux": {
            "namespaces": sorted(NAMESPACE_TYPES),
            "capabilities": CAPABILITIES,
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True, "actions": ["SCMP_ACT_NOTIFY"], "operators": [],
                        "archs": ["SCMP_ARCH_X86_64"]},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {
            "io.github.runsc-py.sandbox": "sentry on seccomp user notification or ptrace",
            # --platform: auto (default) probes seccomp user notification
            # (NEW_LISTENER, ADDFD|SEND, SYNC_WAKE_UP) at each create and
            # falls back to ptrace; both can be asked for.
            "io.github.runsc-py.platforms": "auto,seccomp,ptrace",
        },
    }
    print(json.dumps(features, indent=2))
    return 0
