"""The documentation stays true (issue 20).

- Every generated block of README.md and docs/*.md is what
  scripts/gendocs.py writes today (`--check`): the policy tables, the
  allowlists, the flag reference and the results tables cannot drift from
  their sources.
- Every flag that `runsc-py --help` and `runsc-py COMMAND --help` print is
  mentioned in README.md or docs/*.md.
- Every fenced `sh` or `console` block of README.md either runs here, as
  written (from the repository's root, with two substitutions that keep the
  test to its own work dir: `.venv/bin/runsc-py` gets the runtime under test
  with the test's `--root`, and `/tmp/` becomes a directory of the test), or
  is marked as not run, on the last non-blank line before its fence:

      <!-- not run in CI: REASON -->

  REASON says why (it changes the host, needs a daemon, takes hours...) and
  where it is tested instead, if anywhere.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import Runtime

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
NOT_RUN = re.compile(r"^<!-- not run in CI: (?P<reason>\S.*?) -->$")
FENCE = re.compile(r"^```(?P<info>[\w-]*)\s*$")
README_MAX_LINES = 210


@dataclass(frozen=True)
class Block:
    line: int          # 1-based line of the opening fence
    info: str          # sh, console, text, yaml...
    text: str
    not_run: str       # the marker's reason, "" when the block must run


def fenced_blocks(text: str) -> list[Block]:
    """The fenced code blocks of TEXT with their not-run markers."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("```")), None)
        if j is None:
            raise AssertionError(f"README.md:{i + 1}: unclosed code block")
        prev = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        mark = NOT_RUN.match(prev)
        out.append(Block(i + 1, m.group("info"), "\n".join(lines[i + 1:j]),
                         mark.group("reason") if mark else ""))
        i = j + 1
    return out


def commands(block: Block) -> str:
    """The shell script of a block: an sh block as it is, a console block's
    `$ ` lines (with their continuations)."""
    if block.info == "sh":
        return block.text
    out, cont = [], False
    for ln in block.text.splitlines():
        if ln.startswith("$ ") or cont:
            out.append(ln.removeprefix("$ "))
            cont = ln.endswith("\\")
    return "\n".join(out)


def doc_text() -> str:
    return "\n".join(p.read_text() for p in [README, *sorted((REPO / "docs").glob("*.md"))])


# -- generated blocks -------------------------------------------------------------

def test_generated_blocks_are_current() -> None:
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "gendocs.py"), "--check"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr + "\nrun: .venv/bin/python scripts/gendocs.py"


# -- links between the documents ---------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped but
    '-' and '_', spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", text, re.M)}


def test_slug() -> None:
    assert slug("## `--network=bridge`".lstrip("# ")) == "--networkbridge"
    assert slug("/proc, /sys and devices") == "proc-sys-and-devices"
    assert slug("The sentry's own allowlist") == "the-sentrys-own-allowlist"


def test_relative_links_resolve() -> None:
    broken = []
    for doc in [README, *sorted((REPO / "docs").glob("*.md"))]:
        for target in _LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked here
            file, _, anchor = target.partition("#")
            dest = (doc.parent / file).resolve() if file else doc
            if not dest.exists():
                broken.append(f"{doc.name}: {target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{doc.name}: {target}: no such heading")
    assert not broken, "\n".join(broken)


# -- every flag is documented -------------------------------------------------------

_OPTION_LINE = re.compile(r"^  (-\S.*?)(?:\s{2,}|$)")
_FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def help_flags(help_text: str) -> set[str]:
    """The flags of an argparse help text's option lines."""
    flags = set()
    for ln in help_text.splitlines():
        m = _OPTION_LINE.match(ln)
        if m:
            flags |= set(_FLAG.findall(m.group(1)))
    return flags


def test_help_flags_parse() -> None:
    sample = ("options:\n  -h, --help            show\n  --bundle BUNDLE, -b BUNDLE\n"
              "                        path (see --other)\n  --net-allow [in:|out:]CIDR[:PORTS]\n")
    assert help_flags(sample) == {"-h", "--help", "--bundle", "-b", "--net-allow"}


@pytest.mark.runsc_py_only
def test_every_help_flag_is_documented(runtime: Runtime) -> None:
    top = runtime.run("--help", root=False, check=True).stdout
    cmds = re.findall(r"^  (\w+)\s{2,}\S", top.split("\ncommands:", 1)[1], re.M)
    assert {"create", "run", "exec", "policy"} <= set(cmds), top
    docs = doc_text()
    missing = []
    for where, text in [("runsc-py --help", top)] + [
            (f"runsc-py {c} --help", runtime.run(c, "--help", root=False, check=True).stdout)
            for c in cmds]:
        flags = help_flags(text)
        assert flags, f"{where}: no flags found in:\n{text}"
        missing += [f"{where}: {f}" for f in sorted(flags)
                    if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", docs)]
    assert not missing, "flags not mentioned in README.md or docs/*.md:\n  " + "\n  ".join(missing)


# -- README commands ------------------------------------------------------------------

def test_readme_blocks_are_run_or_marked() -> None:
    text = README.read_text()
    blocks = [b for b in fenced_blocks(text) if b.info in ("sh", "console")]
    assert blocks, "README.md has no sh/console block"
    # A marker belongs to the block right after it: none may dangle.
    lines = text.splitlines()
    for n, ln in enumerate(lines):
        if NOT_RUN.match(ln):
            nxt = next((x for x in lines[n + 1:] if x.strip()), "")
            assert FENCE.match(nxt), f"README.md:{n + 1}: marker not followed by a code block"
    for b in blocks:
        assert commands(b).strip(), f"README.md:{b.line}: a block without commands"
    # The two fresh-machine commands are never run here: they would set up
    # and run this very suite.
    for cmd in ("apt-get update && bash scripts/demo.sh", "apt-get update && bash scripts/test.sh"):
        owner = [b for b in blocks if cmd in b.text]
        assert owner and all(b.not_run for b in owner), f"README.md: {cmd!r} missing or not marked"


def test_readme_is_short() -> None:
    n = len(README.read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines: move detail to docs/"


def _runnable() -> list[Block]:
    return [b for b in fenced_blocks(README.read_text())
            if b.info in ("sh", "console") and not b.not_run]


@pytest.mark.runsc_py_only
@pytest.mark.parametrize("block", _runnable(), ids=lambda b: f"README.md:{b.line}")
def test_readme_block_runs(block: Block, runtime: Runtime, workdir: Path) -> None:
    # The README's /tmp/ first: the runtime's own paths may lie under /tmp
    # too (the $RUNSC_PY_TEST_PLATFORM wrapper, the test's --root).
    script = commands(block).replace("/tmp/", f"{workdir}/tmp/")
    script = re.sub(r"(?<![\w/$\"-])\.venv/bin/runsc-py\b",
                    f"{runtime.binary} --root {runtime.root}", script)
    (workdir / "tmp").mkdir()
    out, err = workdir / "block.out", workdir / "block.err"
    with open(out, "w") as o, open(err, "w") as e:
        res = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO,
                             stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=120, check=False)
    assert res.returncode == 0, (f"README.md:{block.line}: exit {res.returncode}\n--- script\n{script}\n"
                                 f"--- stdout\n{out.read_text()}\n--- stderr\n{err.read_text()}")
