"""The start-up timeline: which phase of a container's start-up took the time.

Every process of a start-up (the CLI, the sandbox process, the container's
init, the gofer) calls `mark("phase")` as it passes a phase; with --debug
each mark is one debug log line

    timeline: PHASE real_ns=N cpu_ms=C faults=F pid=P

CLOCK_REALTIME is one clock for the whole system (CLOCK_MONOTONIC is not:
init and the gofer live in the container's time namespace, whose monotonic
clock starts at its creation), so the lines of all processes (they log to
the same --log file) fall on one axis; cpu_ms and faults (minor page faults:
the copies after each fork, the heap growing) are the
marking process's own CPU time so far (for the CLI's first mark: the
interpreter's start-up and the imports before main).  `parse` reads them
back (benchmarks/_startup.py puts them in the report).  Without --debug a
mark costs one level check.
"""

from __future__ import annotations

import os
import time

from .log import debug_enabled, get_logger

log = get_logger("runsc_py.timeline")

_LINE = (r"timeline: (?P<phase>[\w.\-]+) real_ns=(?P<ns>\d+) cpu_ms=(?P<cpu>[\d.]+) "
         r"faults=(?P<faults>-?\d+) pid=(?P<pid>\d+)")


def mark(phase: str, real_ns: int | None = None, cpu_s: float | None = None) -> None:
    """Log PHASE as passed now (or at REAL_NS, with CPU_S of CPU time so far:
    a mark taken before logging was set up)."""
    if not debug_enabled():
        return
    import resource
    ns = time.time_ns() if real_ns is None else real_ns
    cpu = time.process_time() if cpu_s is None else cpu_s
    try:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except OSError:  # the sandbox's own filter has no getrusage
        faults = -1
    log.debug("timeline: %s real_ns=%d cpu_ms=%.2f faults=%d pid=%d", phase, ns, cpu * 1e3, faults,
              os.getpid())


def parse(text: str) -> list[tuple[str, int, float, int, int]]:
    """The marks in a log's TEXT (either format): (phase, real_ns, cpu_ms,
    pid, faults) in the order of their clock."""
    import re  # not at import: the CLI's start-up does without it
    out = [(m["phase"], int(m["ns"]), float(m["cpu"]), int(m["pid"]), int(m["faults"]))
           for m in re.finditer(_LINE, text)]
    return sorted(out, key=lambda r: r[1])
