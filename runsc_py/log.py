"""Logging set-up for the CLI: --log FILE, --log-format text|json, --debug.

The containerd shim passes `--log <bundle>/log.json --log-format json` and
reports the last line whose level is "error"; podman reads the file as one JSON
object.  So only warnings and errors are written unless --debug is given, one
JSON object per line: {"level": ..., "msg": ..., "time": RFC3339}.

The short commands (state, start, kill, delete, ps, list...) usually log
nothing, and importing `logging` costs a `state` a third of its CPU (it
pulls in traceback, linecache, tokenize, threading...).  So `setup` may
defer: it then only records the settings, and the modules on those paths
log through `get_logger`, whose loggers import and configure `logging` at
their first record that the settings let through (any warning or error;
debug and info only with --debug).  The settings are process-wide, as
`logging`'s own configuration is: set once by the CLI, before any record,
and inherited by the processes it forks.
"""

from __future__ import annotations

import sys
import time

from . import jsonio

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import Any

_LEVEL_NAMES = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "fatal"}


class _Settings:
    """What setup() was given, until `logging` is configured with it."""

    def __init__(self) -> None:
        self.deferred: tuple[str | None, str, bool] | None = None
        self.debug: bool | None = None  # None: not set up (log as `logging` says)


_SETTINGS = _Settings()


def rfc3339(ts: float | None = None) -> str:
    """UTC with microseconds, as datetime's isoformat() would write it
    ("2026-12-07T01:02:03.000456Z"), without importing datetime."""
    if ts is None:
        ts = time.time()
    secs = int(ts // 1)
    us = int(round((ts - secs) * 1e6))
    if us >= 1000000:
        secs, us = secs + 1, us - 1000000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{us:06d}Z"


def setup(log_file: str | None, fmt: str, debug: bool, defer: bool = False) -> None:
    """Configure logging for the process (DEFER: at the first record)."""
    _SETTINGS.debug = debug
    _SETTINGS.deferred = (log_file, fmt, debug)
    if not defer:
        ensure()


def ensure() -> None:
    """Configure `logging` now if setup() deferred it."""
    if _SETTINGS.deferred is not None:
        args, _SETTINGS.deferred = _SETTINGS.deferred, None
        _configure(*args)


def debug_enabled() -> bool:
    """Would a debug record be written?  Without importing `logging` when
    the settings say no."""
    if _SETTINGS.debug is not None:
        return _SETTINGS.debug
    import logging
    return logging.getLogger().isEnabledFor(logging.DEBUG)


class LazyLogger:
    """A logging.Logger's debug/info/warning/error/exception, importing and
    configuring `logging` at the first record that will be written."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _real(self) -> Any:
        ensure()
        import logging
        return logging.getLogger(self.name)

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        if _SETTINGS.debug is not False:
            self._real().debug(msg, *args, **kw)

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        if _SETTINGS.debug is not False:
            self._real().info(msg, *args, **kw)

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        self._real().warning(msg, *args, **kw)

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        self._real().error(msg, *args, **kw)

    def exception(self, msg: str, *args: Any, **kw: Any) -> None:
        self._real().exception(msg, *args, **kw)


def get_logger(name: str) -> LazyLogger:
    return LazyLogger(name)


def _configure(log_file: str | None, fmt: str, debug: bool) -> None:
    import logging

    def level(record: logging.LogRecord) -> str:
        return _LEVEL_NAMES.get(record.levelno, "info")

    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            msg = record.getMessage()
            if record.exc_info:
                msg += "\n" + self.formatException(record.exc_info)
            return jsonio.dumps({"level": level(record), "msg": msg, "time": rfc3339(record.created)})

    class TextFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            msg = record.getMessage()
            if record.exc_info:
                msg += "\n" + self.formatException(record.exc_info)
            return (f'time="{rfc3339(record.created)}" level={level(record)} '
                    f'msg={jsonio.dumps(msg)} pid={record.process}')

    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    if log_file:
        handler: logging.Handler = logging.FileHandler(log_file, mode="a")
    else:
        # Without --log, only --debug output goes to stderr; errors are printed
        # by the CLI itself (one line), so nothing is doubled.
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.DEBUG if debug else logging.CRITICAL + 1)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
