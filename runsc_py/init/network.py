"""Network set-up in the workload's network namespace, by init: bring the
loopback interface up, add the kernel backstop's rules.

The loopback takes two ioctls on a throwaway socket (SIOCGIFFLAGS,
SIOCSIFFLAGS |= IFF_UP); the rules are rtnetlink requests that
runsc_py/network/backstop.py encodes.  Importing pyroute2 for these few
changes costs ~165 ms (its message classes alone 30-40 ms), more than the
rest of `create`, and containerd calls create per container.
"""

from __future__ import annotations

import fcntl
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
import struct

from ..errors import RuntimeFailure

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    try:
        with sockets.socket(sockets.AF_INET, sockets.SOCK_DGRAM) as s:
            req = struct.pack("16sH14x", b"lo", 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
            if not flags & IFF_UP:
                fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    except OSError as e:
        raise RuntimeFailure(f"bring up loopback: {e.strerror}") from None


def backstop(nets: list[str]) -> None:
    """The FIB prohibit rules of the networks the policy denies (at most
    backstop.FIB_MAX: a longer list goes to the runtime's helper, nft)."""
    import ipaddress
    from ..network import backstop as bs
    try:
        nl = bs.Netlink()
    except OSError as e:
        raise RuntimeFailure(f"network backstop: netlink socket: {e.strerror}") from None
    try:
        bs.install(nl, [ipaddress.ip_network(n) for n in nets])
    except (OSError, RuntimeError) as e:
        raise RuntimeFailure(f"network backstop: {e}") from None
    finally:
        nl.close()
