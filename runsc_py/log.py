"""Logging set-up for the CLI: --log FILE, --log-format text|json, --debug.

The containerd shim passes `--log <bundle>/log.json --log-format json` and
reports the last line whose level is "error"; podman reads the file as one JSON
object.  So only warnings and errors are written unless --debug is given, one
JSON object per line: {"level": ..., "msg": ..., "time": RFC3339}.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
           logging.ERROR: "error", logging.CRITICAL: "fatal"}


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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        return json.dumps({"level": _LEVELS.get(record.levelno, "info"), "msg": msg,
                           "time": rfc3339(record.created)})


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        return (f'time="{rfc3339(record.created)}" level={_LEVELS.get(record.levelno, "info")} '
                f'msg={json.dumps(msg)} pid={record.process}')


def setup(log_file: str | None, fmt: str, debug: bool) -> None:
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
