"""The runtime's logging: --log FILE, --log-format text|json, --debug.

The containerd shim passes `--log <bundle>/log.json --log-format json` and
reports the last line whose level is "error"; podman reads the file as one JSON
object.  So only warnings and errors are written unless --debug is given, one
JSON object per line: {"level": ..., "msg": ..., "time": RFC3339}; in text
format `time="..." level=... msg="..." pid=N`.  Without --log, only --debug
output goes to stderr (errors are printed by the CLI itself, one line).

Every process of a container's start-up is a fork of the CLI: the sandbox,
init, the gofer.  Importing the standard `logging` would cost each start
~9 ms of CPU before the sandbox's fork (it pulls in traceback, linecache,
tokenize, textwrap, string, warnings, weakref...), for what is one write
per record.  So the CLI's processes log through `Logger`s of their own:
`get_logger(name)` (as logging.getLogger), with debug, info, warning,
error, critical, exception, log, isEnabledFor and setLevel; a record is
formatted and written with one write(2) (O_APPEND: whole lines, from any
thread, and no lock that a fork could leave held).  The settings are
process-wide, as `logging`'s own configuration is: set once by the CLI
(`setup`), before any record, and inherited by the processes it forks;
with `defer` (the short commands) the log file is opened at the first
record written, if any.

Used as a library (no `setup`: the tests, benchmarks/), every record goes
to the standard `logging`, as before, so its handlers and pytest's caplog
see them.  An exception's traceback comes from the `traceback` module when
it can be imported, and is written out by hand otherwise (the confined
sandbox, which can no longer read source files anyway).
"""

from __future__ import annotations

import os
import sys
import time

from . import jsonio

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import Any

# logging's numbers, so that a level means the same to both
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
_LEVEL_NAMES = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error", CRITICAL: "fatal"}
_NOTHING = CRITICAL + 1


class _Settings:
    """What setup() was given (None: not set up, log through `logging`)."""

    def __init__(self) -> None:
        self.debug: bool | None = None
        self.level = WARNING        # the root's: DEBUG with --debug
        self.fmt = "text"
        self.path: str | None = None  # --log, opened at the first record if deferred
        self.fd = -1                # where records go: the log file, stderr (2), or -1
        self.fd_min = _NOTHING      # the level below which nothing is written there
        self.gen = 0                # bumped by setup and setLevel: loggers' cached levels


_SETTINGS = _Settings()
_LOGGERS: dict[str, "Logger"] = {}


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
    """Configure this process's logging (DEFER: open the file at the first
    record written)."""
    s = _SETTINGS
    s.debug = debug
    s.level = DEBUG if debug else WARNING
    s.fmt = fmt
    s.gen += 1
    if s.fd > 2:
        os.close(s.fd)
    s.fd = -1
    s.path = log_file or None
    if log_file:
        s.fd_min = 0
        if not defer:
            _open()
    else:
        s.fd = 2
        s.fd_min = DEBUG if debug else _NOTHING


def _open() -> None:
    s = _SETTINGS
    if s.path:
        s.fd = os.open(s.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)


def debug_enabled() -> bool:
    """Would a debug record be written?"""
    if _SETTINGS.debug is not None:
        return _SETTINGS.debug
    import logging
    return logging.getLogger().isEnabledFor(logging.DEBUG)


def log_fds() -> set[int]:
    """The log file's descriptor, if one is open (the sandbox keeps it
    across its close-all: the gofer logs where it does)."""
    return {_SETTINGS.fd} if _SETTINGS.path and _SETTINGS.fd > 2 else set()


class Logger:
    """logging.Logger's calls the product makes, writing as `setup` said.
    A call below the logger's level costs one comparison (the sentry's
    handlers log at debug on every call)."""

    __slots__ = ("name", "level", "bare", "_floor", "_gen")

    def __init__(self, name: str) -> None:
        self.name = name
        self.level = 0      # 0: its parent's (a.b's is a's, then the root's)
        self.bare = False   # write the message alone (--strace-format=json lines)
        self._floor = 0     # the lowest level written; -1: not set up, ask `logging`
        self._gen = -1      # _SETTINGS.gen when _floor was worked out

    def setLevel(self, level: int) -> None:  # noqa: N802 (logging's name)
        self.level = level
        _SETTINGS.gen += 1
        if _SETTINGS.debug is None:
            import logging
            logging.getLogger(self.name).setLevel(level)

    def _refresh(self) -> int:
        s = _SETTINGS
        if s.debug is None:
            self._floor = -1
        else:
            eff, name = self.level, self.name
            while not eff and name:
                name = name.rpartition(".")[0]
                parent = _LOGGERS.get(name)
                eff = parent.level if parent is not None else 0
            self._floor = max(eff or s.level, s.fd_min)
        self._gen = s.gen
        return self._floor

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        floor = self._floor if self._gen == _SETTINGS.gen else self._refresh()
        if floor < 0:
            import logging
            return logging.getLogger(self.name).isEnabledFor(level)
        return level >= floor

    def log(self, level: int, msg: str, *args: Any, exc_info: Any = None) -> None:
        floor = self._floor if self._gen == _SETTINGS.gen else self._refresh()
        if level < floor:
            return
        if floor < 0:
            import logging
            logging.getLogger(self.name).log(level, msg, *args, exc_info=exc_info, stacklevel=2)
            return
        _emit(self, level, msg, args, exc_info)

    def debug(self, msg: str, *args: Any, exc_info: Any = None) -> None:
        if DEBUG >= (self._floor if self._gen == _SETTINGS.gen else self._refresh()):
            self.log(DEBUG, msg, *args, exc_info=exc_info)

    def info(self, msg: str, *args: Any, exc_info: Any = None) -> None:
        if INFO >= (self._floor if self._gen == _SETTINGS.gen else self._refresh()):
            self.log(INFO, msg, *args, exc_info=exc_info)

    def warning(self, msg: str, *args: Any, exc_info: Any = None) -> None:
        self.log(WARNING, msg, *args, exc_info=exc_info)

    def error(self, msg: str, *args: Any, exc_info: Any = None) -> None:
        self.log(ERROR, msg, *args, exc_info=exc_info)

    def critical(self, msg: str, *args: Any, exc_info: Any = None) -> None:
        self.log(CRITICAL, msg, *args, exc_info=exc_info)

    def exception(self, msg: str, *args: Any, exc_info: Any = True) -> None:
        self.log(ERROR, msg, *args, exc_info=exc_info)


def get_logger(name: str) -> Logger:
    """The logger of that name (one per name and process, as logging's)."""
    lg = _LOGGERS.get(name)
    if lg is None:
        lg = _LOGGERS[name] = Logger(name)
    return lg


def _emit(lg: Logger, level: int, msg: str, args: tuple[Any, ...], exc_info: Any) -> None:
    s = _SETTINGS
    created = time.time()
    try:
        if args and len(args) == 1 and isinstance(args[0], dict) and args[0]:
            args = args[0]  # type: ignore[assignment]  (logging's "%(key)s" form)
        text = msg % args if args else str(msg)
    except Exception:  # as logging: a bad record is not the caller's failure
        text = f"{msg} {args!r}"
    if exc_info:
        text += "\n" + format_exception(exc_info)
    if lg.bare and s.path:
        line = text
    elif s.fmt == "json":
        line = jsonio.dumps({"level": _LEVEL_NAMES.get(level, "info"), "msg": text, "time": rfc3339(created)})
    else:
        line = (f'time="{rfc3339(created)}" level={_LEVEL_NAMES.get(level, "info")} '
                f'msg={jsonio.dumps(text)} pid={os.getpid()}')
    if s.fd < 0:
        try:
            _open()
        except OSError:
            return
    try:
        os.write(s.fd, (line + "\n").encode("utf-8", "backslashreplace"))
    except OSError:
        pass


def format_exception(exc_info: Any) -> str:
    """The traceback text logging would write for exc_info (True: the one
    being handled), without its trailing newline."""
    if exc_info is True or not isinstance(exc_info, tuple):
        exc_info = sys.exc_info() if not isinstance(exc_info, BaseException) \
            else (type(exc_info), exc_info, exc_info.__traceback__)
    etype, value, tb = exc_info
    if etype is None:
        return "NoneType: None"
    try:
        import traceback
    except ImportError:  # confined: no file to import it from
        return "".join(_by_hand(value, set())).rstrip("\n")
    return "".join(traceback.format_exception(etype, value, tb)).rstrip("\n")


def _by_hand(exc: BaseException, seen: set[int]) -> list[str]:
    """traceback.format_exception's text without source lines."""
    seen.add(id(exc))
    out: list[str] = []
    if exc.__cause__ is not None and id(exc.__cause__) not in seen:
        out += _by_hand(exc.__cause__, seen)
        out.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif exc.__context__ is not None and not exc.__suppress_context__ and id(exc.__context__) not in seen:
        out += _by_hand(exc.__context__, seen)
        out.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    tb = exc.__traceback__
    if tb is not None:
        out.append("Traceback (most recent call last):\n")
    while tb is not None:
        code = tb.tb_frame.f_code
        out.append(f'  File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}\n')
        tb = tb.tb_next
    name = type(exc).__qualname__
    mod = type(exc).__module__
    if mod not in ("builtins", "__main__"):
        name = f"{mod}.{name}"
    text = str(exc)
    out.append(f"{name}: {text}\n" if text else f"{name}\n")
    return out


def bridge_stdlib() -> None:
    """Send the standard `logging`'s records (a library's: pyroute2's) to
    this process's log as ours, when logging is set up."""
    if _SETTINGS.debug is None:
        return
    import logging

    class _Bridge(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            get_logger(record.name).log(record.levelno, "%s", record.getMessage(),
                                        exc_info=record.exc_info or None)

    root = logging.getLogger()
    if not any(isinstance(h, _Bridge) for h in root.handlers):
        root.addHandler(_Bridge())
    root.setLevel(_SETTINGS.level)
