"""Network set-up of a new network namespace: bring the loopback interface up."""

from __future__ import annotations

import logging

from ..errors import RuntimeFailure

log = logging.getLogger(__name__)


def loopback_up() -> None:
    from pyroute2 import IPRoute  # imported here: slow, and only needed with a new netns
    try:
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname="lo")
            if idx:
                ipr.link("set", index=idx[0], state="up")
    except Exception as e:  # pyroute2 raises NetlinkError and OSError subclasses
        raise RuntimeFailure(f"bring up loopback: {e}") from None
