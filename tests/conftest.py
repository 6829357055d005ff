"""Fixtures for the runtime's integration tests: real containers, no mocks.

Which runtime is tested
    $RUNSC_PY_TEST_RUNTIME, default <repo>/.venv/bin/runsc-py.  Run the same
    tests against the reference to check that the tests are right:

        RUNSC_PY_TEST_RUNTIME=/usr/sbin/runc .venv/bin/pytest tests/

    RUNSC_PY_TEST_TIMEOUT=SECONDS changes the per-call timeout (default 30).

    Markers: @pytest.mark.runsc_py_only (skipped against runc: behaviour our
    contract specifies but runc does not have), @pytest.mark.runc_only.

Fixtures (support code in tests/helpers.py)
    runtime -> helpers.Runtime
        Runs the binary as `BIN --root <workdir>/root [global_args] ARGS`.
        The runtime's stdout/stderr are FILES (never pipes: a container
        inherits them), stdin is /dev/null; every call times out after 30 s
        ($RUNSC_PY_TEST_TIMEOUT).
          .run(*args, input=None, timeout=30, check=False, global_args=(),
               root=True, stdin=None, env=None, cwd=None, pass_fds=()) -> Result
          .popen(*args, stdout=PIPE, ...) -> Popen   (streaming: `events`)
          .create(id, bundle, pid_file=True|path|None, console_socket=None,
                  extra=(), check=True) -> Result   (result.pid_file)
          .start(id), .kill(id, sig="KILL", all=False), .delete(id, force=False)
                  (check=True by default; pass check=False to test failures)
          .state(id) -> dict (fails the test if `state` fails)
          .try_state(id) -> dict | None, .status(id) -> str | None
          .wait_status(id, *statuses, timeout=10) -> dict (polls `state`,
                  never waitpid: nobody reaps in the OCI validation flow)
          .exec(id, *cmd, process=dict|path, env=[], cwd=, user="1000:1000",
                tty=False, detach=False, pid_file=, console_socket=, extra=())
          .ps(id) -> [host pids], .list() -> [dict], .cgroup_dir(id, "pids")
          .run_container(bundle, id=None, detach=False, pid_file=None) -> Result
                  (the `run` subcommand; result.id)
          .container(bundle, id=None, start=True, pid_file=True,
                     console_socket=None, extra=()) -> context manager
                  yielding a helpers.Container; always `delete --force`s.
          .new_id(hint) -> unique id ("<hint>-<8 hex>", matches [\\w+\\-.]+)
          .log_args(path=None, fmt="json") -> ["--log", P, "--log-format", F]
          .log_entries(path=None) -> parsed JSON lines of the --log file
          .with_root(dir) -> a Runtime on another --root (leak-checked too)
          .is_runc, .binary, .root, .ctx
        helpers.Result is a CompletedProcess with text .stdout/.stderr, plus
        .ok, .check(), .stderr_lines, .read_stdout() (current contents: a
        detached container keeps writing), .stdout_path; str() shows all.
        helpers.Container: .id .pid (from the pid file: the SANDBOX process
        for runsc-py, the init for runc - never assume it is the workload)
        .state() .status .wait_status() .start() .kill() .delete() .exec()
        .ps() .stdout() .stderr() (the container's stdio files when there is
        no terminal) .wait_output(needle, timeout=10).

    bundle -> factory
        bundle(args=None, *, config=None, edit=None, rootfs="copy",
               name=None, files=None, terminal=False) -> helpers.Bundle
        args: list, or a str run as ["sh", "-c", str].  The spec is
        helpers.default_spec(args) (`runc spec` shape, terminal false,
        root.readonly true) then deep_merge(config) (dicts merge, lists
        replace, None deletes a key) then edit(spec) (edit in place or
        return a new dict).  rootfs="copy": a private `cp -a` of the busybox
        rootfs at BUNDLE/rootfs (relative "rootfs" in the spec);
        rootfs="shared": the session's shared rootfs by absolute path, forced
        read-only (tests that never write).  files={"etc/x": "text"} adds
        files to a copied rootfs.  Bundle: .path .rootfs .spec .config_path
        .write_config(spec=None) .update(dict) .edit(fn) .write_file(rel, data);
        str(bundle) / os.fspath(bundle) is the directory.

    console_socket -> helpers.ConsoleSocket: a listening AF_UNIX socket
        (short path); .receive(timeout=10) -> the one fd received
        (SCM_RIGHTS), helpers.read_until(fd, b"needle") reads a pty master.

    workdir -> Path: this test's private short directory (/tmp/rsp-XXXX),
        holding root/, bundles/, io/, pid files, logs.  Removed afterwards.
    rootfs_master / shared_rootfs (session) -> Path: the cached busybox rootfs
        (/var/cache/runsc-py-tests/busybox-<ver>-<hash>-l<N>/rootfs; never
        given to a runtime) and a per-session copy for rootfs="shared".
    test_ctx -> helpers.TestContext (ids, bundles, pids seen by the leak check).

The leak check (autouse, after every test, even a failed one)
    1. `delete --force` every container left in every --root the test used;
    2. then fails the test (error at teardown) if anything is left, and
       cleans it up anyway (thaw, SIGKILL, umount -l, rmdir, rm -rf):
       - processes: pids the runtime reported and their descendants, any
         process in a pid/mount namespace seen under them, any process whose
         cmdline/cwd/root/exe names the work dir or shared rootfs, any process
         in a cgroup whose path has a component equal to a test container id;
       - mounts in /proc/self/mountinfo whose mountpoint or source is under
         the work dir or shared rootfs, or has a path component equal to a
         test container id (e.g. /run/runsc-py/<id>/...); not any mount
         merely containing "runsc-py": it may be another session's;
       - cgroup directories (every hierarchy under /sys/fs/cgroup) named after
         a container id, or ending with `runsc-py/<id>` or a cgroupsPath from
         one of the test's bundles;
       - state directories in the test's --root(s).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import pytest

import helpers
from helpers import Bundle, ConsoleSocket, Runtime, TestContext


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "runsc_py_only: contract behaviour runc does not have")
    config.addinivalue_line("markers", "runc_only: only meaningful against runc")


_IS_RUNC: dict[str, bool] = {}


def _is_runc(binary: str) -> bool:
    if binary not in _IS_RUNC:
        _IS_RUNC[binary] = helpers.binary_is_runc(binary)
    return _IS_RUNC[binary]


def pytest_runtest_setup(item: pytest.Item) -> None:
    runc = _is_runc(helpers.runtime_binary())
    if runc and item.get_closest_marker("runsc_py_only"):
        pytest.skip("runsc-py contract behaviour; runc differs")
    if not runc and item.get_closest_marker("runc_only"):
        pytest.skip("only meaningful against runc")


@pytest.fixture(scope="session")
def runtime_binary() -> str:
    b = helpers.runtime_binary()
    if not os.access(b, os.X_OK):
        pytest.fail(f"runtime binary {b} not found or not executable "
                    f"(set {helpers.RUNTIME_ENV})")
    return b


@pytest.fixture(scope="session")
def rootfs_master() -> Path:
    return helpers.cached_rootfs()


@pytest.fixture(scope="session")
def shared_rootfs(rootfs_master: Path) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="rsp-shared-", dir="/tmp"))
    helpers.copy_tree(rootfs_master, d / "rootfs")
    yield d / "rootfs"
    helpers.remove_workdir(d)


@pytest.fixture(autouse=True)
def test_ctx(request: pytest.FixtureRequest) -> Iterator[TestContext]:
    workdir = Path(tempfile.mkdtemp(prefix="rsp-", dir="/tmp"))
    ctx = TestContext(workdir=workdir)
    ctx.mount_ids_before = {m.mount_id for m in helpers.read_mounts()}
    yield ctx
    _leak_check(ctx)


def _leak_check(ctx: TestContext) -> None:
    for rt in ctx.runtimes:
        ids = set()
        if rt.root.is_dir():
            ids |= {e.name for e in rt.root.iterdir() if e.is_dir()}
        try:
            res = rt.run("list", "-q", timeout=min(15.0, helpers.DEFAULT_TIMEOUT))
            if res.ok:
                ids |= {ln.strip() for ln in res.stdout.splitlines() if ln.strip()}
        except AssertionError:
            pass
        for cid in sorted(ids):
            ctx.ids.add(cid)
            try:
                st = rt.try_state(cid)
                if st and st.get("pid"):
                    ctx.remember_pid(int(st["pid"]), force=True)
                rt.run("delete", "--force", cid, timeout=min(15.0, helpers.DEFAULT_TIMEOUT))
            except (AssertionError, ValueError):
                pass
    try:
        problems, cleanup = helpers.find_leaks(ctx)
        cleanup()
    finally:
        ctx.release_namespaces()
    helpers.remove_workdir(ctx.workdir)
    if problems:
        pytest.fail("leak check: the test left things behind (cleaned up now):\n  "
                    + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def workdir(test_ctx: TestContext) -> Path:
    return test_ctx.workdir


@pytest.fixture
def runtime(test_ctx: TestContext, runtime_binary: str) -> Runtime:
    return Runtime(test_ctx, runtime_binary, is_runc=_is_runc(runtime_binary))


BundleFactory = Callable[..., Bundle]


@pytest.fixture
def bundle(test_ctx: TestContext, rootfs_master: Path, request: pytest.FixtureRequest) -> BundleFactory:
    def make(args: Sequence[str] | str | None = None, *, config: Mapping[str, Any] | None = None,
             edit: Callable[[dict[str, Any]], Any] | None = None, rootfs: str = "copy",
             name: str | None = None, files: Mapping[str, str | bytes] | None = None,
             terminal: bool = False) -> Bundle:
        if isinstance(args, str):
            args = ["sh", "-c", args]
        path = test_ctx.workdir / "bundles" / (name or test_ctx.next_name("b"))
        path.mkdir(parents=True)
        spec = helpers.default_spec(args, terminal=terminal)
        if rootfs == "copy":
            rpath = path / "rootfs"
            helpers.copy_tree(rootfs_master, rpath)
        elif rootfs == "shared":
            if files:
                raise ValueError("files= needs rootfs='copy'")
            rpath = request.getfixturevalue("shared_rootfs")
            test_ctx.shared_rootfs = rpath
            spec["root"] = {"path": str(rpath), "readonly": True}
        else:
            raise ValueError(f"rootfs must be 'copy' or 'shared', not {rootfs!r}")
        b = Bundle(path=path, rootfs=rpath, spec=spec)
        for rel, data in (files or {}).items():
            b.write_file(rel, data)
        if config:
            helpers.deep_merge(b.spec, config)
        if edit:
            ret = edit(b.spec)
            if isinstance(ret, dict):
                b.spec = ret
        if rootfs == "shared":
            b.spec["root"]["readonly"] = True
        b.write_config()
        test_ctx.bundles.append(b)
        return b

    return make


@pytest.fixture
def console_socket(test_ctx: TestContext) -> Iterator[ConsoleSocket]:
    cs = ConsoleSocket(test_ctx.workdir)
    yield cs
    cs.close()
