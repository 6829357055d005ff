"""CPython's regression suite (Debian's libpython3.11-testsuite) in a container.

    python3 -m test -j JOBS --timeout T -u RESOURCES --junit-xml /compat-out/junit.xml MODULES...

Every test module is run (the list is read from the rootfs's
/usr/lib/python3.11/test the way regrtest's findtests does: test_*.py files
and test_* packages).  They are split into CHUNKS containers run one after
the other, so that a runtime that kills regrtest itself (or a chunk that
overruns its deadline) loses one chunk's results, not the suite's; a chunk's
modules are spread over the whole list so that slow modules do not bunch up.

Per-case results come from the junit XML (one <testcase name="test.test_os.
FileTests.test_access"> per case, with a <failure>/<error>/<skipped> child
when it did not pass); per-module results from regrtest's progress lines
("[ 12/480] test_os failed (3 failures)"), which also cover modules that
crashed, timed out or failed to import and so have no cases in the XML.

Resources (-u): all, less
    network, urlfetch   they reach hosts outside the machine (the container
                        has only loopback anyway: they would fail, not leak);
    gui, audio          no display or sound device in a container;
    largefile, extralargefile   multi-GB files: minutes of disk I/O per test;
    cpu, decimal, tzdata        only make CPU-bound tests exhaustive (slow).
Kept: subprocess, walltime (both exercise the sandbox).
"""

from __future__ import annotations

import logging
import re
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from benchmarks._runtimes import Runtime
from benchmarks.compat import container

log = logging.getLogger("compat.cpython")

TEST_DIR = "usr/lib/python3.11/test"
RESOURCES = "all,-network,-urlfetch,-gui,-audio,-largefile,-extralargefile,-cpu,-decimal,-tzdata"
EXCERPT_LINES = 12
PROGRESS = re.compile(r"\[\s*\d+/\d+(?:/\d+)?\] (test_\w+(?:\.\w+)*) (.*)$")
TIME_PREFIX = re.compile(r"^\d+:\d\d:\d\d (?:load avg: [\d.]+ )?")


@dataclass
class Case:
    status: str            # pass | fail | error | skip | xfail | xpass
    message: str = ""      # excerpt of the failure (last lines of the traceback) or skip reason


@dataclass
class Suite:
    runtime: str
    modules: dict[str, str] = field(default_factory=dict)   # module -> regrtest's word for it
    cases: dict[str, Case] = field(default_factory=dict)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["cases"] = {k: [c.status, c.message] for k, c in self.cases.items()}
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Suite":
        s = cls(d["runtime"], d["modules"], {k: Case(*v) for k, v in d["cases"].items()},
                d["chunks"], d["elapsed"])
        return s


def all_modules(rootfs: Path) -> list[str]:
    """regrtest's own discovery: test_* modules and packages of the test dir."""
    names = []
    for p in sorted((rootfs / TEST_DIR).iterdir()):
        if not p.name.startswith("test_"):
            continue
        if p.suffix == ".py":
            names.append(p.stem)
        elif p.is_dir() and (p / "__init__.py").exists():
            names.append(p.name)
    return names


def excerpt(text: str, lines: int = EXCERPT_LINES) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])[-1500:]


def parse_junit(path: Path) -> dict[str, Case]:
    cases: dict[str, Case] = {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        log.warning("cpython: %s: %s", path, e)
        return cases
    for tc in root.iter("testcase"):
        name = tc.get("name")
        if not name:       # a case whose subtests failed never gets a result element filled
            continue
        failure, error, skipped = tc.find("failure"), tc.find("error"), tc.find("skipped")
        if error is not None:
            cases[name] = Case("error", excerpt(error.text or error.get("message", "")))
        elif failure is not None:
            cases[name] = Case("fail", excerpt(failure.text or failure.get("message", "")))
        elif skipped is not None:
            cases[name] = Case("skip", (skipped.text or "")[:300])
        elif tc.find("output") is not None:
            cases[name] = Case("xfail")
        elif tc.get("outcome") == "UNEXPECTED_SUCCESS" or tc.find("outcome") is not None:
            cases[name] = Case("xpass")
        else:
            cases[name] = Case("pass")
    return cases


def parse_progress(stdout: str) -> dict[str, str]:
    """module -> 'passed' / 'failed (2 failures)' / 'skipped' / 'crashed (...)' ..."""
    mods: dict[str, str] = {}
    for line in stdout.splitlines():
        m = PROGRESS.search(TIME_PREFIX.sub("", line))
        if m:
            word = m.group(2).split(" -- ")[0].strip()
            mods[m.group(1)] = word
    return mods


VERBOSE_HEAD = re.compile(r"^(ERROR|FAIL): \S+ \((test\.[\w.]+)\)(.*)$")
COUNTS = re.compile(r"(\d+) (?:error|failure)")


def parse_verbose(stdout: str) -> dict[str, Case]:
    """The ERROR:/FAIL: blocks of a verbose unittest run: case -> its first
    failure (a subtest's description is kept in the message)."""
    cases: dict[str, Case] = {}
    lines = stdout.splitlines()
    i = 0
    while i < len(lines):
        m = VERBOSE_HEAD.match(lines[i])
        if not m:
            i += 1
            continue
        body: list[str] = []
        i += 2      # the dashed line under the header
        while i < len(lines) and not lines[i].startswith(("=" * 20, "-" * 20)):
            body.append(lines[i])
            i += 1
        name = m.group(2)
        if name not in cases:
            sub = m.group(3).strip()
            msg = excerpt("\n".join(body))
            cases[name] = Case("error" if m.group(1) == "ERROR" else "fail",
                               (f"[subtest {sub}]\n" if sub else "") + msg)
    return cases


def unexplained(suite: "Suite") -> list[str]:
    """Modules regrtest counts more failures in than the junit XML has failing
    cases: a case whose subtests failed gets no result there."""
    out = []
    for mod, word in suite.modules.items():
        if not word.startswith("failed") or "uncaught" in word:
            continue
        want = sum(int(n) for n in COUNTS.findall(word))
        have = sum(1 for k, c in suite.cases.items()
                   if c.status in ("fail", "error") and k.split(".")[1:2] == [mod])
        if want > have:
            out.append(mod)
    return out


def explain_subtests(rt: Runtime, rootfs: Path, work: Path, suite: "Suite",
                     timeout: float, deadline: float) -> None:
    """Re-run, verbosely and one container each, the modules whose failures
    the junit XML does not name, and record those cases with their traceback."""
    for mod in unexplained(suite):
        args = ["python3", "-m", "test", "-v", "--timeout", str(int(timeout)), "-u", RESOURCES, mod]
        log.info("cpython: %s: re-running %s verbosely (failing subtests)", rt.name, mod)
        run = container.run(rt, rootfs, work, "pyv", args, timeout=deadline)
        shutil.rmtree(run.out_dir, ignore_errors=True)
        for name, case in parse_verbose(run.result.stdout).items():
            if name not in suite.cases or suite.cases[name].status not in ("fail", "error"):
                suite.cases[name] = case


def chunked(modules: list[str], n: int) -> list[list[str]]:
    n = max(1, min(n, len(modules)))
    return [modules[i::n] for i in range(n)]


def run_suite(rt: Runtime, rootfs: Path, work: Path, modules: list[str], *, jobs: int = 2,
              chunks: int = 6, timeout: float = 900, deadline: float = 4 * 3600,
              raw_dir: Path | None = None,
              on_chunk: Callable[[Suite], None] | None = None,
              extra: list[str] | None = None) -> Suite:
    """Run MODULES under RT; DEADLINE bounds each chunk's container.
    ON_CHUNK gets the suite so far after every chunk (to save partial results)."""
    suite = Suite(rt.name)
    t0 = time.monotonic()
    parts = chunked(modules, chunks)
    for i, part in enumerate(parts, 1):
        args = ["python3", "-m", "test", "-j", str(jobs), "--timeout", str(int(timeout)),
                "-u", RESOURCES, "--junit-xml", "/compat-out/junit.xml", *(extra or []), *part]
        log.info("cpython: %s: chunk %d/%d (%d modules)", rt.name, i, len(parts), len(part))
        run = container.run(rt, rootfs, work, f"py{i}", args, timeout=deadline)
        try:
            res = run.result
            cases = parse_junit(run.out_dir / "junit.xml")
            mods = parse_progress(res.stdout)
            if raw_dir is not None:
                raw_dir.mkdir(parents=True, exist_ok=True)
                (raw_dir / f"{rt.name}-chunk{i}.log").write_text(res.stdout + "\n--- stderr ---\n" + res.stderr)
        finally:
            shutil.rmtree(run.out_dir, ignore_errors=True)
        for m in part:
            if m not in mods:
                mods[m] = "no result (regrtest did not report it: " + \
                    ("chunk timed out)" if res.timed_out else f"exit {res.rc})")
        suite.modules.update(mods)
        suite.cases.update(cases)
        suite.chunks.append({"modules": len(part), "rc": res.rc, "timed_out": res.timed_out,
                             "elapsed": round(res.elapsed, 1), "cases": len(cases),
                             "stderr_tail": excerpt(res.stderr, 5)})
        log.info("cpython: %s: chunk %d: exit %s in %.0f s, %d cases", rt.name, i,
                 "timeout" if res.timed_out else res.rc, res.elapsed, len(cases))
        suite.elapsed = round(time.monotonic() - t0, 1)
        if on_chunk is not None:
            on_chunk(suite)
    explain_subtests(rt, rootfs, work, suite, timeout, deadline)
    suite.elapsed = round(time.monotonic() - t0, 1)
    if on_chunk is not None:
        on_chunk(suite)
    return suite
