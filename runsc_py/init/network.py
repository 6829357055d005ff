"""Network set-up of a new network namespace: bring the loopback interface up.

Two ioctls on a throwaway socket (SIOCGIFFLAGS, SIOCSIFFLAGS |= IFF_UP):
importing pyroute2 for this one change costs ~165 ms, more than the rest of
`create` together (measured here), and containerd calls create per container.
"""

from __future__ import annotations

import fcntl
import socket
import struct

from ..errors import RuntimeFailure

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = struct.pack("16sH14x", b"lo", 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
            if not flags & IFF_UP:
                fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    except OSError as e:
        raise RuntimeFailure(f"bring up loopback: {e.strerror}") from None
