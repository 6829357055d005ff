"""The seccomp program cache (runsc_py/filtercache.py, sentry/bpf.py).

What it returns is what a build returns; a change of version, builder
source, generator or options is a different entry; and nothing it reads is
trusted unless every check passes: a corrupted, foreign, tampered, planted
or badly owned entry or directory is rebuilt from the policy (or the cache
is not used), never loaded.  The last tests run containers on a cache whose
workload entry was replaced by an allow-everything program with a correct
checksum: the sandbox still refuses mount(2).
"""

from __future__ import annotations

import ast
import ctypes
import errno
import os
import struct
from pathlib import Path

import pytest

from runsc_py import filtercache
from runsc_py.sandbox import SandboxOptions, policy_options
from sentry import bpf

ALLOW_ALL = struct.pack("<HBBI", bpf.RET_K, 0, 0, bpf.RET_ALLOW)

OPTION_SETS = [SandboxOptions(), SandboxOptions(net_raw=True), SandboxOptions(uts_private=True),
               SandboxOptions(uname_release="4.4.0"), SandboxOptions(strace=True),
               SandboxOptions(net_raw=True, uts_private=True, uname_release="5.10", strace=True)]


def _fresh(kind: str, opts: SandboxOptions) -> bytes:
    return filtercache._builder(kind, opts)()


def _entries(root: Path) -> dict[str, bytes]:
    d = root / filtercache.CACHE_DIR
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())} if d.is_dir() else {}


def _entry(root: Path, kind: str) -> Path:
    (path,) = [p for p in (root / filtercache.CACHE_DIR).iterdir() if p.name.startswith(kind + "-")]
    return path


def _no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(kind: str, sandbox: object):
        def build() -> bytes:
            raise AssertionError(f"{kind}: built, but the cache should have answered")
        return build
    monkeypatch.setattr(filtercache, "_builder", refuse)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir(mode=0o711)
    return r


def _pack(key: bytes, prog: bytes) -> bytes:
    import hashlib
    return filtercache._HEADER.pack(filtercache.MAGIC, key, len(prog), hashlib.sha256(prog).digest()) + prog


def _key(kind: str, opts: SandboxOptions) -> bytes:
    return filtercache._key(filtercache._inputs(), kind, filtercache._options(kind, opts))


# -- what it returns --------------------------------------------------------------

@pytest.mark.parametrize("opts", OPTION_SETS, ids=lambda o: ",".join(
    f"{k}={v}" for k, v in o.filter_state().items() if v) or "default")
def test_a_hit_returns_what_a_build_returns(root: Path, opts: SandboxOptions,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    first = filtercache.load(str(root), opts)
    assert set(first) == set(filtercache.KINDS)
    for kind in filtercache.KINDS:
        assert first[kind] == _fresh(kind, opts), kind
    assert len(_entries(root)) == 3
    _no_build(monkeypatch)
    assert filtercache.load(str(root), opts) == first


def test_the_cache_dir_is_private_and_no_container_id(root: Path) -> None:
    from runsc_py.errors import RuntimeFailure
    from runsc_py.state import Store, validate_id
    filtercache.load(str(root), SandboxOptions())
    d = root / filtercache.CACHE_DIR
    assert d.stat().st_mode & 0o777 == 0o700
    for p in d.iterdir():
        assert p.stat().st_mode & 0o777 == 0o600, p
        assert not p.name.startswith(".tmp-"), p  # no temporary file left
    with pytest.raises(RuntimeFailure):
        validate_id(filtercache.CACHE_DIR)
    assert Store(str(root)).ids() == []


def test_fresh_programs_pass_the_checks() -> None:
    """Every program the builders make passes the structure check and the
    probes, or the cache would rebuild it on every start."""
    for base in OPTION_SETS:
        for platform in ("seccomp", "ptrace"):
            opts = base.replace(platform=platform)
            for kind in filtercache.KINDS:
                bpf.expect(_fresh(kind, opts), filtercache._probes(kind, opts.strace, platform))


def test_the_interpreter_agrees_with_the_policy_table() -> None:
    """sentry/bpf.py runs a program as the kernel does: against the table's
    own decisions (tests/sentry/test_policy.py does the same with its copy)."""
    from sentry import policy
    opts = SandboxOptions(net_raw=True)
    code = bpf.decode(_fresh("workload", opts))
    table = policy.build_table(policy_options(opts))
    for name, nr in policy.syscall_numbers().items():
        e = table.get(name)
        want = bpf.RET_ERRNO | errno.ENOSYS if e is None else None
        if e is not None:
            act = e.decide([0] * 6)
            want = (bpf.RET_ALLOW if act == policy.ALLOW else bpf.RET_USER_NOTIF if act == policy.NOTIFY
                    else bpf.RET_ERRNO | act)
        assert bpf.run(code, nr) == want, name
    # the ptrace platform's variant: TRACE where the other notifies, the rest alike
    traced = bpf.decode(_fresh("workload", opts.replace(platform="ptrace")))
    for name, nr in policy.syscall_numbers().items():
        want = bpf.run(code, nr)
        assert bpf.run(traced, nr) == (bpf.RET_TRACE if want == bpf.RET_USER_NOTIF else want), name


# -- invalidation ----------------------------------------------------------------

def test_options_are_separate_entries(root: Path) -> None:
    keys = set()
    for opts in OPTION_SETS:
        filtercache.load(str(root), opts)
        keys.add(_key("workload", opts))
    assert len(keys) == len(OPTION_SETS)
    names = [n for n in _entries(root) if n.startswith("workload-")]
    assert len(names) == len(OPTION_SETS)
    # the sandbox's and the gofer's own filters do not depend on the options
    assert len([n for n in _entries(root) if n.startswith("sentry-")]) == 1


def test_platform_and_network_are_separate_entries(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ptrace platform's programs (TRACE for the sentry's calls; the
    tracer's requests in the sandbox's own) and --network=none's (setns in
    the sandbox's own) are entries of their own, each what a build gives."""
    variants = [SandboxOptions(), SandboxOptions(platform="ptrace"), SandboxOptions(network="none"),
                SandboxOptions(platform="ptrace", network="none")]
    got = [filtercache.load(str(root), o) for o in variants]
    for o, progs in zip(variants, got):
        for kind in filtercache.KINDS:
            assert progs[kind] == _fresh(kind, o), (o, kind)
    names = _entries(root)
    assert len([n for n in names if n.startswith("workload-")]) == 2   # per platform
    assert len([n for n in names if n.startswith("sentry-")]) == 4     # per platform and network
    assert len([n for n in names if n.startswith("gofer-")]) == 1
    assert len([n for n in names if n.startswith("guard-")]) == 1      # ptrace's, one descriptor
    _no_build(monkeypatch)
    assert [filtercache.load(str(root), o) for o in variants] == got


def test_the_ptrace_guard_comes_with_the_workload_filter(root: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """On the ptrace platform the workload's filter brings the guard of the
    reserved descriptor (create and exec load "workload"): what reserved.py
    builds for RESERVED_FD, and what init installs without building it."""
    from sentry.install import prepare_filter
    from sentry.platform import reserved
    opts = SandboxOptions(platform="ptrace")
    progs = filtercache.load(str(root), opts, ("workload",))
    assert set(progs) == {"workload", filtercache.GUARD}
    assert progs[filtercache.GUARD] == reserved.build_bpf(reserved.RESERVED_FD)
    assert "guard" not in filtercache.load(str(root), SandboxOptions(), ("workload",))
    # init's PreparedTrace takes it as it is: reserved.build_bpf is not called
    monkeypatch.setattr(reserved, "build_bpf", lambda fd=0: pytest.fail("guard rebuilt"))
    prepared = prepare_filter(None, "ptrace", progs["workload"], progs[filtercache.GUARD])
    assert bytes(prepared.guard.insns) == progs[filtercache.GUARD]
    assert prepared.guard_fd == reserved.RESERVED_FD
    # a tampered guard entry is rebuilt, never loaded
    monkeypatch.undo()
    _entry(root, filtercache.GUARD).write_bytes(_pack(_key(filtercache.GUARD, opts), ALLOW_ALL))
    again = filtercache.load(str(root), opts, ("workload",))
    assert again[filtercache.GUARD] == progs[filtercache.GUARD]


def test_every_input_of_a_program_is_in_its_key() -> None:
    """No field of the sandbox's options changes a program unless it
    changes that program's key (filtercache._options)."""
    base = SandboxOptions()
    samples = {bool: [True], str: ["9.9"], dict: [{"x": b""}], type(None): [None]}
    special = {"platform": ["ptrace"], "file_access": ["gofer"], "strace_format": ["json"],
               "network": ["none", "host", "bridge"], "net_policy": [{"version": 1}]}
    for name in SandboxOptions._fields:
        if name == "bpf":
            continue
        default = getattr(base, name)
        for value in special.get(name) or samples.get(type(default), []):
            o = base.replace(**{name: value})
            for kind in filtercache.KINDS:
                if _fresh(kind, o) != _fresh(kind, base):
                    assert filtercache._options(kind, o) != filtercache._options(kind, base), (name, kind)


def test_every_policy_option_comes_from_a_kept_field() -> None:
    """The workload entry is keyed by SandboxOptions.FILTER_FIELDS: no
    other field of the sandbox's options may change the policy."""
    base = policy_options(SandboxOptions())
    samples = {bool: True, str: "9.9", dict: {"x": b""}}
    for name in SandboxOptions._fields:
        if name in SandboxOptions.FILTER_FIELDS:
            continue
        default = getattr(SandboxOptions(), name)
        value = samples.get(type(default), default)
        if isinstance(default, str) and name in ("platform", "file_access", "strace_format"):
            value = {"platform": "ptrace", "file_access": "gofer", "strace_format": "json"}[name]
        assert policy_options(SandboxOptions(**{name: value})) == base, name


@pytest.mark.parametrize("change", ["version", "source", "generator"])
def test_version_source_and_generator_changes_miss(root: Path, change: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    opts = SandboxOptions()
    filtercache.load(str(root), opts)
    before = set(_entries(root))
    if change == "version":
        import runsc_py
        monkeypatch.setattr(runsc_py, "__version__", runsc_py.__version__ + ".1")
    elif change == "generator":
        monkeypatch.setattr(filtercache, "_generator", lambda: "libseccomp 9.9.9")
    else:
        # the same packages with one byte of the policy changed
        real = filtercache._package_dir
        copy = tmp_path / "src"
        for package, name in filtercache.FILTER_SOURCES:
            (copy / package).mkdir(parents=True, exist_ok=True)
            data = (Path(real(package)) / name).read_bytes()
            (copy / package / name).write_bytes(data + b"\n" if name == "policy.py" else data)
        monkeypatch.setattr(filtercache, "_package_dir", lambda p: str(copy / p))
    filtercache.load(str(root), opts)
    after = set(_entries(root))
    assert len(after - before) == 3, (before, after)


def test_the_builders_import_nothing_else_of_ours() -> None:
    """The key hashes FILTER_SOURCES: what they import must be the standard
    library, libseccomp's binding, or each other."""
    ours = {f"{p}.{n.removesuffix('.py')}" for p, n in filtercache.FILTER_SOURCES}
    for package, name in filtercache.FILTER_SOURCES:
        path = Path(filtercache._package_dir(package)) / name
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    mod = f"{base}.{mod}" if mod else base
                names = [mod]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for mod in names:
                top = mod.split(".")[0]
                if top in ("runsc_py", "sentry", "gofer"):
                    # sentry.filter's export_bpf, sentry.install's loader and the
                    # log do not shape programs
                    assert mod in ours or mod in ("sentry.install", "runsc_py.log"), f"{path}: imports {mod}"


# -- refusal: entries ----------------------------------------------------------------

def _tamper_cases(root: Path) -> dict[str, object]:
    return {
        "flipped bit": lambda p: p.write_bytes(p.read_bytes()[:-3] + bytes([p.read_bytes()[-3] ^ 1])
                                               + p.read_bytes()[-2:]),
        "truncated": lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]),
        "empty": lambda p: p.write_bytes(b""),
        "other magic": lambda p: p.write_bytes(b"XXXXXXXX" + p.read_bytes()[8:]),
        "allow-all with a good checksum": lambda p: p.write_bytes(
            _pack(_key("workload", SandboxOptions()), ALLOW_ALL)),
        "another key's entry": lambda p: p.write_bytes(
            _pack(_key("workload", SandboxOptions(net_raw=True)), _fresh("workload", SandboxOptions(net_raw=True)))),
        "bad opcode": lambda p: p.write_bytes(_pack(_key("workload", SandboxOptions()),
                                                    struct.pack("<HBBI", 0x16, 0, 0, 0)
                                                    + _fresh("workload", SandboxOptions()))),
        "jump out of the program": lambda p: p.write_bytes(_pack(_key("workload", SandboxOptions()),
                                                                 struct.pack("<HBBI", bpf.JA, 0, 0, 5000)
                                                                 + _fresh("workload", SandboxOptions()))),
        "world-writable": lambda p: p.chmod(0o666),
        "group-writable": lambda p: p.chmod(0o620),
        "another owner": lambda p: os.chown(p, 1000, 1000),
        "a symlink": lambda p: (p.rename(p.with_suffix(".real")), p.symlink_to(p.with_suffix(".real").name)),
        "a directory": lambda p: (p.unlink(), p.mkdir()),
        "a FIFO": lambda p: (p.unlink(), os.mkfifo(p)),
        "too big": lambda p: p.write_bytes(p.read_bytes() + b"\0" * 70000),
    }


@pytest.mark.parametrize("case", sorted(_tamper_cases(Path("/"))))
def test_a_bad_entry_is_rebuilt_never_loaded(root: Path, case: str, caplog: pytest.LogCaptureFixture) -> None:
    opts = SandboxOptions()
    want = filtercache.load(str(root), opts)["workload"]
    entry = _entry(root, "workload")
    _tamper_cases(root)[case](entry)
    got = filtercache.load(str(root), opts)["workload"]
    assert got == want == _fresh("workload", opts)
    if case != "a directory":  # a directory cannot be renamed over: rebuilt each time, still never loaded
        assert entry.is_file() and not entry.is_symlink(), case
        assert entry.read_bytes() == _pack(_key("workload", opts), want), case  # replaced by the build
        assert entry.stat().st_uid == 0 and entry.stat().st_mode & 0o777 == 0o600
    assert "rebuilt" in caplog.text, caplog.text


# -- refusal: directories ----------------------------------------------------------

@pytest.mark.parametrize("case", ["cache world-writable", "cache group-writable", "cache another owner",
                                  "cache a symlink", "root world-writable", "root another owner",
                                  "cache a file"])
def test_an_untrusted_directory_is_not_used(root: Path, case: str, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    opts = SandboxOptions()
    cache = root / filtercache.CACHE_DIR
    filtercache.load(str(root), opts)
    # a planted allow-everything program in place of the real entry
    _entry(root, "workload").write_bytes(_pack(_key("workload", opts), ALLOW_ALL))
    if case == "cache a symlink":
        elsewhere = tmp_path / "elsewhere"
        cache.rename(elsewhere)
        cache.symlink_to(elsewhere)
    elif case == "cache a file":
        for p in cache.iterdir():
            p.unlink()
        cache.rmdir()
        cache.write_bytes(b"")
    else:
        target = root if case.startswith("root") else cache
        if "world" in case:
            target.chmod(0o777)
        elif "group" in case:
            target.chmod(0o770)
        else:
            os.chown(target, 1000, 1000)
    got = filtercache.load(str(root), opts)
    assert got["workload"] == _fresh("workload", opts)
    assert "not used" in caplog.text, caplog.text


def test_the_structure_check() -> None:
    good = _fresh("sentry", SandboxOptions())
    bpf.check(good)
    bad = {
        "empty": b"", "partial instruction": good[:-1], "too long": good * 20,
        "no final return": good[:-8] + struct.pack("<HBBI", bpf.LD_IMM, 0, 0, 0),
        "load past seccomp_data": struct.pack("<HBBI", bpf.LD_ABS, 0, 0, 64) + good,
        "unaligned load": struct.pack("<HBBI", bpf.LD_ABS, 0, 0, 2) + good,
        "scratch out of range": struct.pack("<HBBI", bpf.ST, 0, 0, 16) + good,
        "conditional jump out": struct.pack("<HBBI", bpf.JEQ_K, 0, 250, 0) + good[-8:],
        "return of A": struct.pack("<HBBI", 0x16, 0, 0, 0),
    }
    for what, prog in bad.items():
        with pytest.raises(bpf.BadProgram):
            bpf.check(prog)
        assert what


# -- loading --------------------------------------------------------------------------

PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_SECCOMP_GET_FILTER = 0x4206, 0x4207, 0x420C


def _installed_filter(load: str) -> tuple[bytes, str, str]:
    """Fork a child that loads the sandbox's own filter one way, stops, and
    is read from here: (its installed program, its Seccomp and NoNewPrivs)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            from sentry import self_filter
            from sentry.install import PreparedFilter
            if load == "libseccomp":
                self_filter.install()
            else:
                self_filter.install(PreparedFilter(_fresh("sentry", SandboxOptions())))
            os.write(w, b"x")
            os.kill(os.getpid(), 19)  # SIGSTOP (kill is in the allowlist)
        finally:
            os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"x"
        os.waitpid(pid, os.WUNTRACED)
        status = {k: v.strip() for k, _, v in (ln.partition(":") for ln in open(f"/proc/{pid}/status"))}
        assert libc.ptrace(PTRACE_SEIZE, pid, None, None) == 0, ctypes.get_errno()
        n = libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, None)
        assert n > 0, ctypes.get_errno()
        buf = ctypes.create_string_buffer(n * 8)
        assert libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, buf) == n
        return buf.raw, status["Seccomp"], status["NoNewPrivs"]
    finally:
        os.close(r)
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_a_cached_allowlist_is_installed_as_libseccomp_installs_it() -> None:
    assert _installed_filter("cache") == _installed_filter("libseccomp")
    prog, mode, nnp = _installed_filter("cache")
    assert (mode, nnp) == ("2", "1")
    assert prog == _fresh("sentry", SandboxOptions())


# -- containers -------------------------------------------------------------------------

@pytest.mark.runsc_py_only
def test_containers_use_and_fill_the_cache(runtime, bundle) -> None:
    b = bundle("echo hi", rootfs="shared")
    res = runtime.run_container(b)
    assert res.returncode == 0 and res.stdout == "hi\n", res
    names = sorted(p.name.split("-")[0] for p in (runtime.root / filtercache.CACHE_DIR).iterdir())
    import helpers
    ptrace = ["guard"] if helpers.platform_under_test() == "ptrace" else []
    assert names == sorted(["gofer", "sentry", "workload", *ptrace]), names
    before = _entries(runtime.root)
    res = runtime.run_container(b)
    assert res.returncode == 0 and res.stdout == "hi\n", res
    assert _entries(runtime.root) == before


@pytest.mark.runsc_py_only
@pytest.mark.parametrize("where", ["run", "exec"])
def test_a_tampered_cache_does_not_open_the_sandbox(runtime, bundle, where: str) -> None:
    """The workload's entry replaced by an allow-everything program under the
    right key with the right checksum: containers and exec'd processes still
    run under the real filter (mount(2) refused with every capability)."""
    from test_sandbox import ALL_CAPS
    cmd = "mount -t tmpfs none /tmp; echo rc=$?"
    b = bundle(cmd if where == "run" else ["sleep", "30"], rootfs="shared",
               config={"process": {"capabilities": ALL_CAPS}})
    warm = bundle("true", rootfs="shared")
    assert runtime.run_container(warm).returncode == 0
    entry = _entry(runtime.root, "workload")
    key = filtercache._HEADER.unpack_from(entry.read_bytes())[1]
    entry.write_bytes(_pack(key, ALLOW_ALL))
    if where == "run":
        res = runtime.run_container(b)
        out = res.stdout + res.stderr
    else:
        with runtime.container(b) as c:
            entry.write_bytes(_pack(key, ALLOW_ALL))  # create rebuilt it: tamper again
            res = c.exec("sh", "-c", cmd)
            out = res.stdout + res.stderr
    assert "rc=" in out and "rc=0" not in out, out
    assert "permission denied" in out, out
    assert entry.read_bytes() != _pack(key, ALLOW_ALL)  # replaced by a fresh build
