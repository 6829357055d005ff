"""`runsc-py install` / `uninstall` on temporary containerd, Docker and podman files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest
import tomlkit

from helpers import install_args

pytestmark = pytest.mark.runsc_py_only

CRI = ("plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes")

CONTAINERD = """\
# containerd config, hand written
version = 2
root = "/var/lib/containerd"  # keep me

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = false
"""
DOCKER = '{\n  "debug": true,\n  "runtimes": {\n    "other": {"path": "/bin/other"}\n  }\n}\n'
PODMAN = """\
# podman settings
[engine]
cgroup_manager = "cgroupfs"  # why not

[engine.runtimes]
crun = ["/usr/bin/crun"]
"""


def _containerd_entry(text: str, name: str) -> dict | None:
    t = tomlkit.parse(text).unwrap()
    for k in CRI:
        t = t.get(k, {})
    return t.get(name)


def _docker_entry(text: str, name: str) -> dict | None:
    return json.loads(text).get("runtimes", {}).get(name)


def _podman_entry(text: str, name: str) -> list | None:
    return tomlkit.parse(text).unwrap().get("engine", {}).get("runtimes", {}).get(name)


FORMATS = {
    "containerd": ("--containerd-config", CONTAINERD, _containerd_entry,
                   lambda b: {"runtime_type": "io.containerd.runc.v2",
                              "options": {"BinaryName": b}},
                   ["# containerd config, hand written", "# keep me", "SystemdCgroup = false"]),
    "docker": ("--docker-config", DOCKER, _docker_entry,
               lambda b: {"path": b, "runtimeArgs": []}, ['"debug": true', '"/bin/other"']),
    "podman": ("--podman-config", PODMAN, _podman_entry, lambda b: [b],
               ["# podman settings", "# why not", 'crun = ["/usr/bin/crun"]']),
}


@pytest.fixture
def cli(runtime_binary: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if args and args[0] in ("install", "uninstall"):
            args = (args[0], *install_args(runtime_binary), *args[1:])
        res = subprocess.run([runtime_binary, *args], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=60)
        if check:
            assert res.returncode == 0, res
        return res
    return run


def _backups(f: Path) -> list[Path]:
    return sorted(f.parent.glob(f.name + ".bak-*"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_install_idempotent_preserves_and_uninstalls(fmt: str, cli, workdir: Path,
                                                     runtime_binary: str) -> None:
    flag, original, entry, want, kept = FORMATS[fmt]
    binary = os.path.abspath(runtime_binary)
    f = workdir / "conf"
    f.write_text(original)

    res = cli("install", flag, str(f))
    text = f.read_text()
    assert entry(text, "runsc-py") == want(binary), text
    for needle in kept:  # comments and the other settings are still there
        assert needle in text, (needle, text)
    assert str(f) in res.stdout and "+" in res.stdout, res.stdout  # a diff-like summary
    [bak] = _backups(f)
    assert bak.read_text() == original

    res = cli("install", flag, str(f))
    assert "no change" in res.stdout, res.stdout
    assert f.read_text() == text
    assert len(_backups(f)) == 1, "an unchanged file is not backed up again"

    res = cli("uninstall", flag, str(f))
    after = f.read_text()
    assert entry(after, "runsc-py") is None
    for needle in kept:
        assert needle in after, (needle, after)
    if fmt == "docker":
        assert json.loads(after) == json.loads(original)
    else:
        assert tomlkit.parse(after).unwrap() == tomlkit.parse(original).unwrap()
    assert "no change" in cli("uninstall", flag, str(f)).stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_dry_run_changes_nothing(fmt: str, cli, workdir: Path) -> None:
    flag, original, entry, _, _ = FORMATS[fmt]
    f = workdir / "conf"
    f.write_text(original)
    res = cli("install", "--dry-run", flag, str(f))
    assert "runsc-py" in res.stdout and "dry run" in res.stdout, res.stdout
    assert f.read_text() == original
    assert not _backups(f)
    assert not (workdir / "new").exists()
    cli("install", "--dry-run", flag, str(workdir / "new"))
    assert not (workdir / "new").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_new_file_and_runtime_name(fmt: str, cli, workdir: Path, runtime_binary: str) -> None:
    flag, _, entry, want, _ = FORMATS[fmt]
    f = workdir / "sub" / "conf"
    cli("install", "--runtime-name", "sandboxed", flag, str(f))
    text = f.read_text()
    assert entry(text, "sandboxed") == want(os.path.abspath(runtime_binary))
    assert entry(text, "runsc-py") is None
    assert not _backups(f)
    if fmt == "containerd":
        assert tomlkit.parse(text)["version"] == 2
    cli("uninstall", "--runtime-name", "sandboxed", flag, str(f))
    assert entry(f.read_text(), "sandboxed") is None


def test_all_three_at_once(cli, workdir: Path) -> None:
    files = {}
    args = []
    for fmt, (flag, original, _, _, _) in FORMATS.items():
        files[fmt] = workdir / fmt
        files[fmt].write_text(original)
        args += [flag, str(files[fmt])]
    cli("install", *args)
    for fmt, f in files.items():
        assert FORMATS[fmt][2](f.read_text(), "runsc-py") is not None
    cli("uninstall", *args)
    for fmt, f in files.items():
        assert FORMATS[fmt][2](f.read_text(), "runsc-py") is None


def test_no_config_is_an_error(cli) -> None:
    for cmd in ("install", "uninstall"):
        res = cli(cmd, check=False)
        assert res.returncode != 0
        assert "--containerd-config" in res.stderr, res.stderr


def test_malformed_file_is_an_error_and_untouched(cli, workdir: Path) -> None:
    bad = workdir / "daemon.json"
    bad.write_text("{not json")
    good = workdir / "containers.conf"
    good.write_text(PODMAN)
    res = cli("install", "--docker-config", str(bad), "--podman-config", str(good), check=False)
    assert res.returncode != 0 and str(bad) in res.stderr, res
    assert bad.read_text() == "{not json"
    assert good.read_text() == PODMAN, "nothing is written when one file is malformed"
    assert not _backups(bad) and not _backups(good)


# Debian's /etc/containerd/config.toml (containerd 1.6.20): a CRI section without runtimes.
DEBIAN_CONTAINERD = """\
version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
"""


def _runtimes(text: str) -> dict:
    t = tomlkit.parse(text).unwrap()
    for k in CRI:
        t = t.get(k, {})
    return t


def test_containerd_default_runtime_stays_listed(cli, workdir: Path, runtime_binary: str) -> None:
    """A runtimes table replaces containerd's built-in one: `runc` (the default
    default_runtime_name) must be in it or the CRI plugin does not load."""
    f = workdir / "config.toml"
    f.write_text(DEBIAN_CONTAINERD)
    cli("install", "--containerd-config", str(f))
    rts = _runtimes(f.read_text())
    assert rts["runc"] == {"runtime_type": "io.containerd.runc.v2"}, rts
    assert rts["runsc-py"]["options"]["BinaryName"] == os.path.abspath(runtime_binary)
    cli("uninstall", "--containerd-config", str(f))
    assert f.read_text() == DEBIAN_CONTAINERD, "install + uninstall gives the file back"

    # An added runc entry that the user changed since is theirs: uninstall keeps it.
    cli("install", "--containerd-config", str(f))
    doc = tomlkit.parse(f.read_text())
    doc["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["runc"]["options"] = {
        "SystemdCgroup": True}
    f.write_text(tomlkit.dumps(doc))
    cli("uninstall", "--containerd-config", str(f))
    rts = _runtimes(f.read_text())
    assert list(rts) == ["runc"] and rts["runc"]["options"] == {"SystemdCgroup": True}, rts


def test_containerd_other_default_runtime_untouched(cli, workdir: Path) -> None:
    f = workdir / "config.toml"
    original = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n'
                'default_runtime_name = "runsc-py"\n')
    f.write_text(original)
    cli("install", "--containerd-config", str(f))
    assert list(_runtimes(f.read_text())) == ["runsc-py"]
    cli("uninstall", "--containerd-config", str(f))
    assert tomlkit.parse(f.read_text()).unwrap() == tomlkit.parse(original).unwrap()
