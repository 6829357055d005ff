"""The command line itself: --version, spec, features, list, global flag
parsing, error reporting (stderr and --log JSON lines)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

HOOK_KINDS = ["prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop"]


def _rfc3339(s: str) -> dt.datetime:
    # Go's RFC3339 ("2006-01-02T15:04:05Z07:00", optional fractional seconds)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", s), s
    s = re.sub(r"(\.\d{6})\d+", r"\1", s)
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


# -- --version -----------------------------------------------------------------

def test_version(runtime):
    res = runtime.run("--version", root=False, check=True)
    lines = res.stdout.splitlines()
    assert re.fullmatch(r"\S+ version \S+", lines[0]), res
    assert re.fullmatch(r"commit: \S+", lines[1]), res
    assert re.fullmatch(r"spec: 1\.\d+\.\d+(-\S+)?", lines[2]), res
    if not runtime.is_runc:
        assert len(lines) == 3, res
        assert lines[0].startswith("runsc-py version "), res


# -- spec ----------------------------------------------------------------------

def test_spec_writes_config_in_bundle(runtime, workdir):
    b = workdir / "specb"
    b.mkdir()
    runtime.run("spec", "--bundle", b, check=True)
    spec = json.loads((b / "config.json").read_text())
    assert spec["ociVersion"].startswith("1.")
    assert isinstance(spec["process"]["args"], list) and spec["process"]["args"]
    assert spec["root"]["path"] == "rootfs"
    types = {ns["type"] for ns in spec["linux"]["namespaces"]}
    assert {"pid", "mount"} <= types
    assert "user" not in types


def test_spec_in_cwd_without_bundle(runtime, workdir):
    d = workdir / "cwdspec"
    d.mkdir()
    runtime.run("spec", cwd=d, check=True)
    assert json.loads((d / "config.json").read_text())["root"]["path"] == "rootfs"


def test_spec_refuses_to_overwrite(runtime, workdir):
    b = workdir / "specb"
    b.mkdir()
    (b / "config.json").write_text("precious")
    res = runtime.run("spec", "--bundle", b)
    assert res.returncode != 0, res
    assert "exist" in res.stderr, res
    assert (b / "config.json").read_text() == "precious"


def test_spec_rootless(runtime, workdir):
    b = workdir / "specb"
    b.mkdir()
    runtime.run("spec", "--rootless", "--bundle", b, check=True)
    spec = json.loads((b / "config.json").read_text())
    types = {ns["type"] for ns in spec["linux"]["namespaces"]}
    assert "user" in types
    assert spec["linux"]["uidMappings"] and spec["linux"]["gidMappings"]


# -- features ------------------------------------------------------------------

def test_features(runtime):
    res = runtime.run("features", check=True)
    f = json.loads(res.stdout)
    assert re.match(r"1\.\d+\.\d+", f["ociVersionMin"]), f
    assert re.match(r"1\.\d+\.\d+", f["ociVersionMax"]), f
    assert set(HOOK_KINDS) <= set(f["hooks"]), f["hooks"]
    assert {"bind", "rbind", "ro", "nosuid", "nodev", "noexec"} <= set(f["mountOptions"])
    assert {"pid", "mount", "network", "ipc", "uts", "user", "cgroup"} <= set(f["linux"]["namespaces"])
    assert "CAP_SYS_ADMIN" in f["linux"]["capabilities"]
    assert f["linux"]["cgroup"]["v1"] is True


# -- list ----------------------------------------------------------------------

def test_list_empty(runtime):
    res = runtime.run("list", check=True)
    assert res.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], res
    assert runtime.list() == []
    assert runtime.run("list", "-q", check=True).stdout == ""


def test_list_formats(runtime, bundle):
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b, start=False) as c1, runtime.container(b) as c2:
        table = runtime.run("list", check=True).stdout.splitlines()
        assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        rows = {ln.split()[0]: ln.split() for ln in table[1:]}
        assert rows[c1.id][2] == "created" and rows[c2.id][2] == "running", table
        assert rows[c1.id][3] == str(b.path)

        entries = {e["id"]: e for e in runtime.list()}
        assert set(entries) == {c1.id, c2.id}
        e = entries[c2.id]
        assert e["status"] == "running" and e["bundle"] == str(b.path)
        assert e["pid"] == c2.pid and e["pid"] > 0
        _rfc3339(e["created"])
        assert "owner" in e

        for form in (["list", "--format=json"], ["list", "-f", "json"]):
            assert {x["id"] for x in json.loads(runtime.run(*form, check=True).stdout)} == \
                {c1.id, c2.id}
        q = runtime.run("list", "-q", check=True).stdout.split()
        assert sorted(q) == sorted([c1.id, c2.id])


# -- global flags ---------------------------------------------------------------

def test_root_flag_forms(runtime, bundle, workdir):
    """`--root DIR`, `--root=DIR` and Go's single-dash `-root DIR` all work."""
    root = workdir / "altroot"
    alt = runtime.with_root(root)
    b = bundle(["sleep", "30"], rootfs="shared")
    cid = runtime.new_id("roots")
    res = runtime.run(f"--root={root}", "create", "--bundle", b, cid, root=False)
    assert res.returncode == 0, res
    try:
        assert (root / cid).is_dir()
        for form in ([f"--root={root}"], ["--root", str(root)], ["-root", str(root)]):
            st = runtime.run(*form, "state", cid, root=False)
            assert st.returncode == 0, st
            assert json.loads(st.stdout)["status"] == "created"
        # not visible under another root
        assert runtime.run("state", cid).returncode != 0
    finally:
        alt.delete(cid, force=True, check=False)


def test_subcommand_flag_forms(runtime, bundle, workdir):
    """--bundle=B, -bundle B, --pid-file=P, and the single-dash `-no-subreaper` of run."""
    b = bundle("exit 0", rootfs="shared")
    cid = runtime.new_id("forms")
    pf = workdir / "forms.pid"
    res = runtime.run("create", f"--bundle={b}", f"--pid-file={pf}", cid)
    assert res.returncode == 0, res
    assert pf.read_text().isdigit()
    runtime.delete(cid, force=True)

    cid2 = runtime.new_id("forms")
    res = runtime.run("create", "-bundle", b, cid2)
    assert res.returncode == 0, res
    runtime.delete(cid2, force=True)

    cid3 = runtime.new_id("forms")
    res = runtime.run("run", "-no-subreaper", "--bundle", b, cid3)
    assert res.returncode == 0, res
    runtime.delete(cid3, force=True, check=False)


@pytest.mark.parametrize("flags", [["--debug"], ["--rootless=false"], ["--rootless", "false"],
                                   ["--systemd-cgroup=false"], ["--log-format=text"],
                                   ["--log-format", "json"]])
def test_client_global_flags_accepted(runtime, flags):
    """Global flags containerd/podman/docker pass must parse (before the subcommand)."""
    res = runtime.run("list", "-q", global_args=flags)
    assert res.returncode == 0, res
    assert res.stdout == ""


def test_log_format_equals_form(runtime, workdir):
    log = workdir / "l.json"
    res = runtime.run("state", "nope-x", global_args=[f"--log={log}", "--log-format=json"])
    assert res.returncode != 0
    entries = runtime.log_entries(log)
    assert entries and entries[-1]["level"] == "error"


# -- errors and logging ------------------------------------------------------------

def test_state_unknown_id(runtime):
    res = runtime.run("state", runtime.new_id("ghost"))
    assert res.returncode != 0
    assert "container does not exist" in res.stderr, res
    assert res.stdout == ""


def test_error_appends_json_line_to_log(runtime, workdir):
    log = workdir / "log.json"
    log.write_text('{"level":"info","msg":"earlier","time":"2020-01-01T00:00:00Z"}\n')
    cid = runtime.new_id("ghost")
    res = runtime.run("state", cid, global_args=runtime.log_args(log))
    assert res.returncode != 0
    assert "container does not exist" in res.stderr, res
    entries = runtime.log_entries(log)
    assert entries[0]["msg"] == "earlier", "the log file must be appended to"
    last = entries[-1]
    assert last["level"] == "error"
    assert "container does not exist" in last["msg"]
    _rfc3339(last["time"])
    # a second error appends another line
    runtime.run("kill", cid, "KILL", global_args=runtime.log_args(log))
    assert len(runtime.log_entries(log)) >= len(entries) + 1


def test_log_text_format(runtime, workdir):
    """Without --log-format json the log is not JSON but still names the error."""
    log = workdir / "log.txt"
    res = runtime.run("state", "nope-y", global_args=["--log", log])
    assert res.returncode != 0
    assert "container does not exist" in log.read_text()


def test_state_is_fast_and_quiet(runtime, bundle):
    """`state` prints exactly one JSON object and nothing on stderr."""
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b) as c:
        res = runtime.run("state", c.id, check=True)
        assert res.stderr == ""
        st = json.loads(res.stdout)
        for key in ("ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"):
            assert key in st, st
        assert st["id"] == c.id and st["status"] == "running"
        assert st["bundle"] == str(b.path)
        assert st["rootfs"] == str(b.rootfs)
        _rfc3339(st["created"])


def test_unknown_subcommand(runtime):
    res = runtime.run("frobnicate")
    assert res.returncode != 0
    assert res.stderr.strip()


@pytest.mark.parametrize("bad_id", ["a/b", "..", "has space"])
def test_invalid_id_rejected(runtime, bundle, bad_id):
    b = bundle("true", rootfs="shared")
    res = runtime.run("create", "--bundle", b, bad_id)
    assert res.returncode != 0, res
    assert res.stderr.strip()
