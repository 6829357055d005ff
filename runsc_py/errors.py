"""The runtime's error type.

Messages follow runc's conventions: lowercase "context: cause", no trailing
period, errno and path kept.  Clients (containerd's shim, conmon) match some
of them literally ("container does not exist", "container not running"), so
those are constants here.
"""

from __future__ import annotations

import errno as _errno

CONTAINER_NOT_EXIST = "container does not exist"
CONTAINER_NOT_RUNNING = "container not running"


class RuntimeFailure(Exception):
    """A failure reported to the user as one line and a non-zero exit."""

    def __init__(self, msg: str, exit_code: int = 1) -> None:
        super().__init__(msg)
        self.exit_code = exit_code


class ContainerNotExist(RuntimeFailure):
    def __init__(self) -> None:
        super().__init__(CONTAINER_NOT_EXIST)


class ContainerNotRunning(RuntimeFailure):
    def __init__(self) -> None:
        super().__init__(CONTAINER_NOT_RUNNING)


class ConfigError(RuntimeFailure):
    """config.json is malformed or violates the runtime-spec schema."""

    def __init__(self, field: str, cause: str) -> None:
        super().__init__(f"config.json: {field}: {cause}" if field else f"config.json: {cause}")


def describe_oserror(context: str, err: OSError) -> str:
    """Format "context: cause" keeping the errno name and the path."""
    name = _errno.errorcode.get(err.errno or 0, "")
    cause = err.strerror or str(err)
    if err.filename and str(err.filename) not in context and str(err.filename) not in cause:
        cause = f"{err.filename}: {cause}"
    return f"{context}: {cause}" + (f" ({name})" if name and name not in cause else "")
