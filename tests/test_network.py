"""Network modes and the network policy, in real namespaces.

Topology (made per test, removed whatever happens): two network namespaces
of the test's own, "ctr" (the container joins it by path) and "srv" (a
Python server), joined by a veth pair:

    ctr: vA 10.77.0.1/24            srv: vB 10.77.0.2/24, 10.77.1.2/24,
         routes 10.77.1.0/24 and             169.254.169.254/32 (a stand-in
         169.254.169.254 via vB              for the metadata address)

So every address a probe tries is a test namespace's: if the policy let a
denied packet through it would land in "srv", where the server counts it.
Traffic stays inside these namespaces and the loopback, and every server
stops by itself (SERVER_LIFETIME).  The probe (benchmarks/probes/netprobe.c) is
compiled statically at test time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

import helpers
from runsc_py.spec import CAPABILITIES

pytestmark = pytest.mark.runsc_py_only

NETPROBE_C = Path(__file__).parent.parent / "benchmarks" / "probes" / "netprobe.c"  # also the benchmark's
PORT = 7000
SERVER_LIFETIME = 60

SERVER = textwrap.dedent(r"""
    import socket, sys, threading, time, json
    port, out, life = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    seen = {"tcp": {}, "udp": {}}
    def tcp():
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(512)
        while True:
            c, _ = s.accept()
            a = c.getsockname()[0]
            seen["tcp"][a] = seen["tcp"].get(a, 0) + 1
            c.close()
    def udp():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        while True:
            data, (src, _) = s.recvfrom(2048)
            seen["udp"]["any"] = seen["udp"].get("any", 0) + 1
    for f in (tcp, udp):
        threading.Thread(target=f, daemon=True).start()
    open(out + ".ready", "w").close()
    end = time.monotonic() + life
    while time.monotonic() < end:
        time.sleep(0.05)
        with open(out + ".tmp", "w") as f:
            json.dump(seen, f)
        import os; os.replace(out + ".tmp", out)
""")


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


@dataclass
class Net:
    ctr: str        # namespace names (under /run/netns)
    srv: str
    server: subprocess.Popen[bytes]
    counts: Path

    @property
    def ctr_path(self) -> str:
        return f"/run/netns/{self.ctr}"

    def seen(self) -> dict:
        try:
            return json.loads(self.counts.read_text())
        except (OSError, ValueError):
            return {"tcp": {}, "udp": {}}


@pytest.fixture(scope="module")
def netprobe() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="rsp-netprobe-", dir="/tmp"))
    subprocess.run(["gcc", "-static", "-O2", "-pthread", "-o", str(d / "netprobe"), str(NETPROBE_C)],
                   check=True, capture_output=True)
    yield d / "netprobe"
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def net(runtime, test_ctx) -> Iterator[Net]:  # type: ignore[no-untyped-def]
    """The two namespaces, the veth, the server (module docstring)."""
    tag = runtime.new_id("ns")  # recorded: the leak check looks for it
    ctr, srv = f"{tag}-c", f"{tag}-s"
    va, vb = f"v{tag[-8:]}a", f"v{tag[-8:]}b"
    server = None
    try:
        _ip("ip", "netns", "add", ctr)
        _ip("ip", "netns", "add", srv)
        _ip("ip", "link", "add", va, "netns", ctr, "type", "veth", "peer", "name", vb, "netns", srv)
        _ip("ip", "addr", "add", "10.77.0.1/24", "dev", va, ns=ctr)
        for a in ("10.77.0.2/24", "10.77.1.2/24", "169.254.169.254/32"):
            _ip("ip", "addr", "add", a, "dev", vb, ns=srv)
        for ns, dev in ((ctr, va), (srv, vb), (ctr, "lo"), (srv, "lo")):
            _ip("ip", "link", "set", dev, "up", ns=ns)
        _ip("ip", "route", "add", "10.77.1.0/24", "via", "10.77.0.2", ns=ctr)
        _ip("ip", "route", "add", "169.254.169.254/32", "via", "10.77.0.2", ns=ctr)
        counts = test_ctx.workdir / "seen.json"
        script = test_ctx.workdir / "server.py"
        script.write_text(SERVER)
        server = subprocess.Popen(["ip", "netns", "exec", srv, sys.executable, str(script), str(PORT),
                                   str(counts), str(SERVER_LIFETIME)], stdin=subprocess.DEVNULL)
        helpers.wait_until(lambda: Path(str(counts) + ".ready").exists(), 10, "the test server")
        yield Net(ctr, srv, server, counts)
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for ns in (ctr, srv):
            _ip("ip", "netns", "del", ns, check=False)


def _bundle(bundle, netprobe: Path, args: list[str], netns: str | None = None,  # type: ignore[no-untyped-def]
            all_caps: bool = False, annotations: dict[str, str] | None = None):
    def edit(spec: dict) -> None:
        nss = spec["linux"]["namespaces"]
        nss[:] = [n for n in nss if n["type"] != "network"]
        if netns is not False:
            nss.append({"type": "network", "path": netns} if netns else {"type": "network"})
        if all_caps:
            spec["process"]["capabilities"] = {k: _grantable() for k in
                                               ("bounding", "effective", "permitted")}
        if annotations:
            spec["annotations"] = annotations
    b = bundle(args, edit=edit)
    shutil.copy(netprobe, b.rootfs / "netprobe")
    return b


def _grantable() -> list[str]:
    """Every capability this host can grant (not CAP_SYS_RESOURCE here)."""
    from runsc_py.spec import CAP_NUMBERS
    bnd = int(next(ln for ln in open("/proc/self/status") if ln.startswith("CapBnd:")).split()[1], 16)
    return [c for c in CAPABILITIES if bnd >> CAP_NUMBERS[c] & 1]


def _run(runtime, b, *flags: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    r = runtime.run_container(b, global_args=list(flags))
    assert r.returncode == 0, str(r)
    return helpers.kv(r.stdout)


def _names(out: str) -> set[str]:
    """Interface names of `ip -o link` output."""
    import re
    return {m.group(1) for m in re.finditer(r"(?m)^\d+:\s+([^:@\s]+)", out)}


# --- modes -------------------------------------------------------------------------------

def test_sandbox_mode_uses_the_spec_namespace(runtime, bundle, netprobe, net) -> None:  # type: ignore[no-untyped-def]
    b = _bundle(bundle, netprobe, ["sh", "-c", "ip -o link; ip -o addr"], netns=net.ctr_path)
    r = runtime.run_container(b)
    assert r.returncode == 0, str(r)
    assert _names(r.stdout) >= {"lo", f"v{net.ctr[-10:-2]}a"}, r.stdout
    assert "10.77.0.1/24" in r.stdout


def test_none_mode_hides_the_engine_interfaces(runtime, bundle, netprobe, net) -> None:  # type: ignore[no-untyped-def]
    b = _bundle(bundle, netprobe, ["sh", "-c", "ip -o link; ip -o addr; ./netprobe connect 10.77.0.2 7000"],
                netns=net.ctr_path)
    r = runtime.run_container(b, global_args=["--network=none"])
    assert r.returncode == 0, str(r)
    assert _names(r.stdout) == {"lo"}, r.stdout
    assert "LOOPBACK,UP" in r.stdout and "127.0.0.1/8" in r.stdout
    assert "connect=ENETUNREACH" in r.stdout


def test_none_mode_with_a_new_namespace_keeps_the_state_pid_apart(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    """An engine configures /proc/<state pid>/ns/net (a hook, or Docker 28+
    after create): with --network=none that is not the workload's."""
    b = _bundle(bundle, netprobe, ["sh", "-c", "ip -o link; sleep 30"])
    with runtime.container(b, global_args=["--network=none"]) as c:
        wl = helpers.workload_pid(runtime, c.id, "sleep")
        sandbox = c.state()["pid"]
        assert os.stat(f"/proc/{wl}/ns/net").st_ino != os.stat(f"/proc/{sandbox}/ns/net").st_ino
        assert os.stat(f"/proc/{sandbox}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
        c.kill()
        c.wait_status("stopped")


def test_host_mode_uses_the_host_namespace(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    b = _bundle(bundle, netprobe, ["sh", "-c", "ip -o link; ./netprobe connect 169.254.169.254 80"])
    r = runtime.run_container(b, global_args=["--network=host"])
    assert r.returncode == 0, str(r)
    host = _names(_ip("ip", "-o", "link").stdout)
    assert _names(r.stdout) == host
    assert "connect=EACCES" in r.stdout  # the same policy (no packet is sent)


def test_default_sandbox_gets_loopback_and_backstop(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    b = _bundle(bundle, netprobe, ["sh", "-c", "ip -o link; ip rule; ip -6 rule"])
    r = runtime.run_container(b)
    assert r.returncode == 0, str(r)
    assert _names(r.stdout) - {"from"} == {"lo"} and "LOOPBACK,UP" in r.stdout
    assert "to 169.254.0.0/16" in r.stdout and "prohibit" in r.stdout
    assert "to fe80::/10" in r.stdout


# --- policy ---------------------------------------------------------------------------------

def test_policy_allows_and_denies_by_cidr(runtime, bundle, netprobe, net) -> None:  # type: ignore[no-untyped-def]
    script = "; ".join([
        "./netprobe connect 10.77.0.2 7000 | sed s/^/good_/",
        "./netprobe connect 10.77.1.2 7000 | sed s/^/denied_/",
        "./netprobe connect 169.254.169.254 80 | sed s/^/meta_/",
        "./netprobe connect ::ffff:169.254.169.254 80 | sed s/^/meta6_/",
        "./netprobe connect ::ffff:10.77.1.2 7000 | sed s/^/denied6_/",
        "./netprobe udp 169.254.169.254 7000 | sed s/^/meta_/",
        "./netprobe sendmsg 169.254.169.254 7000 | sed s/^/meta_/",
        "./netprobe sendmmsg ::ffff:169.254.169.254 7000 | sed s/^/meta_/",
        "./netprobe udp 10.77.0.2 7000 | sed s/^/good_/",
        "./netprobe sendmsg 10.77.0.2 7000 | sed s/^/good_/",
    ])
    log = runtime.ctx.workdir / "net.log"
    b = _bundle(bundle, netprobe, ["sh", "-c", script], netns=net.ctr_path)
    out = _run(runtime, b, "--net-deny", "10.77.1.0/24", "--net-log", str(log))
    assert out["good_connect"] == "ok"
    assert out["denied_connect"] == "EACCES"
    assert out["denied6_connect"] == "EACCES"
    assert out["meta_connect"] == "EACCES"
    assert out["meta6_connect"] == "EACCES"
    assert out["meta_udp"] == out["meta_sendmsg"] == out["meta_sendmmsg"] == "EACCES"
    assert out["good_udp"] == out["good_sendmsg"] == "ok"
    time.sleep(0.2)
    seen = net.seen()
    assert set(seen["tcp"]) == {"10.77.0.2"}, seen  # nothing reached the denied addresses
    lines = [json.loads(ln) for ln in log.read_text().splitlines()]
    denied = [ln for ln in lines if ln["verdict"] == "deny"]
    assert {(d["call"], d["checked"]) for d in denied} >= {
        ("connect", "10.77.1.2"), ("connect", "169.254.169.254"), ("sendto", "169.254.169.254"),
        ("sendmsg", "169.254.169.254"), ("sendmmsg", "169.254.169.254")}
    assert all(d["pid"] > 0 and d["rule"] for d in denied)


def test_default_deny_needs_the_nameserver_allowed(runtime, bundle, netprobe, net) -> None:  # type: ignore[no-untyped-def]
    script = ("./netprobe udp 10.77.0.2 53 | sed s/^/dns_/; ./netprobe connect 10.77.0.2 7000;"
              " ./netprobe connect 127.0.0.1 1 | sed s/^/lo_/")
    b = _bundle(bundle, netprobe, ["sh", "-c", script], netns=net.ctr_path)
    out = _run(runtime, b, "--net-default=deny", "--net-allow", "10.77.0.2/32:7000")
    assert out["dns_udp"] == "EACCES"           # the nameserver is not allowed
    assert out["connect"] == "ok"
    assert out["lo_connect"] == "ECONNREFUSED"  # the sandbox's own loopback stays reachable
    out = _run(runtime, b, "--net-default=deny", "--net-allow", "10.77.0.2/32:53,7000")
    assert out["dns_udp"] == "ok"


def test_policy_from_annotations_and_file(runtime, bundle, netprobe, net) -> None:  # type: ignore[no-untyped-def]
    script = "./netprobe connect 10.77.0.2 7000; ./netprobe connect 10.77.1.2 7000 | sed s/^/b_/"
    b = _bundle(bundle, netprobe, ["sh", "-c", script], netns=net.ctr_path,
                annotations={"dev.runsc-py.net.deny": "10.77.0.2/32:7000"})
    out = _run(runtime, b)
    assert out["connect"] == "EACCES" and out["b_connect"] == "ok"
    pol = runtime.ctx.workdir / "policy.json"
    pol.write_text(json.dumps({"deny": ["10.77.1.0/24"]}))
    b2 = _bundle(bundle, netprobe, ["sh", "-c", script], netns=net.ctr_path)
    out = _run(runtime, b2, "--net-policy", str(pol))
    assert out["connect"] == "ok" and out["b_connect"] == "EACCES"


def test_ingress_policy_on_bind(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    script = "./netprobe bind 0.0.0.0 8080; ./netprobe bind 0.0.0.0 9090 | sed s/^/other_/"
    b = _bundle(bundle, netprobe, ["sh", "-c", script])
    out = _run(runtime, b, "--net-deny", "in:0.0.0.0/0:9090")
    assert out["bind"] == "ok" and out["other_bind"] == "EACCES"


def test_rewriting_the_sockaddr_during_connect_gets_nowhere(runtime, bundle, netprobe, net) -> None:  # type: ignore[no-untyped-def]
    """A port-specific deny: only the sentry enforces it (the backstop takes
    whole networks), so this is the sentry's race alone."""
    b = _bundle(bundle, netprobe, ["./netprobe", "race", "10.77.0.2", "10.77.1.2", "7000", "400"],
                netns=net.ctr_path)
    out = _run(runtime, b, "--net-deny", "10.77.1.2/32:7000")
    assert int(out["race_bad"]) == 0, out
    assert int(out["race_good"]) > 0 and int(out["race_refused"]) > 0, out
    time.sleep(0.2)
    assert "10.77.1.2" not in net.seen()["tcp"], net.seen()


def test_netlink_mutations_refused_with_all_capabilities(runtime, bundle, netprobe, net) -> None:  # type: ignore[no-untyped-def]
    b = _bundle(bundle, netprobe, ["sh", "-c", "./netprobe netlink; ip addr add 10.9.9.9/32 dev lo;"
                                   " echo ipaddr=$?; ip -o addr; ip route"],
                netns=net.ctr_path, all_caps=True)
    r = runtime.run_container(b)
    assert r.returncode == 0, str(r)
    out = helpers.kv(r.stdout)
    assert out["nl_dump"] == "ok"
    for how in ("send", "sendto", "sendmsg", "write"):
        assert out[f"nl_delrule_{how}"] == "EPERM", (how, r.stdout)
        assert out[f"nl_newroute_{how}"] == "EPERM", (how, r.stdout)
    assert out["ipaddr"] != "0" and "10.9.9.9" not in r.stdout
    assert "10.77.1.0/24 via 10.77.0.2" in r.stdout  # dumps work
    rules = _ip("ip", "rule", ns=net.ctr).stdout
    assert "169.254.0.0/16" in rules and "prohibit" in rules
    assert "192.0.2.1" not in _ip("ip", "route", ns=net.ctr).stdout


def test_raw_sockets_need_net_raw(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    b = _bundle(bundle, netprobe, ["./netprobe", "raw"], all_caps=True)
    assert _run(runtime, b)["raw"] == "EPERM"


def test_sendmsg_emulation_keeps_fd_passing(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    b = _bundle(bundle, netprobe, ["./netprobe", "scm"])
    out = _run(runtime, b)
    assert out["scm_send"] == "ok" and out["scm_fd_works"] == "ok"


def test_sendmsg_to_a_closed_peer_raises_sigpipe(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    b = _bundle(bundle, netprobe, ["sh", "-c", "./netprobe sigpipe; echo rc=$?"])
    out = _run(runtime, b)
    assert out["rc"] == str(128 + 13), out


def test_bad_policy_fails_create(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    b = _bundle(bundle, netprobe, ["true"])
    r = runtime.run_container(b, global_args=["--net-deny", "10.0.0.300/8"])
    assert r.returncode != 0 and "10.0.0.300" in r.stderr


# --- imports ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", [["state", "x"], ["kill", "x", "KILL"], ["delete", "x"], ["list"],
                                 ["ps", "x"]])
def test_light_commands_do_not_import_pyroute2(runtime, cmd) -> None:  # type: ignore[no-untyped-def]
    launcher = Path(runtime.binary).read_text().splitlines()
    code = "\n".join(ln for ln in launcher if not ln.startswith("#"))
    r = subprocess.run([sys.executable, "-IS", "-X", "importtime", "-c", code.replace("main()", "")
                        + "\nimport sys as _s\n_s.argv = ['runsc-py', '--root', %r] + %r\n"
                          "try:\n    main()\nexcept SystemExit:\n    pass\n" % (str(runtime.root), cmd)],
                       capture_output=True, text=True, timeout=30)
    assert "pyroute2" not in r.stderr, [ln for ln in r.stderr.splitlines() if "pyroute2" in ln][:3]
    assert "import time:" in r.stderr


def test_default_network_set_up_imports_no_pyroute2(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    """The loopback and the backstop's rules are made by init, encoded by
    backstop.py: no process of a default `run` imports pyroute2 (only the
    bridge mode needs it) and no set-up helper is forked."""
    import helpers
    b = _bundle(bundle, netprobe, ["sh", "-c", "ip rule"])
    # The launcher itself, not the $RUNSC_PY_TEST_PLATFORM wrapper (a shell
    # script adding --platform): its platform is passed as the wrapper does.
    launcher = Path(os.environ.get(helpers.RUNTIME_ENV) or helpers.DEFAULT_RUNTIME)
    python = launcher.read_text().splitlines()[0][2:].split()[0]
    platform = [f"--platform={helpers.platform_under_test()}"] if helpers.platform_under_test() else []
    cid = runtime.new_id("nopyroute2")
    try:
        r = subprocess.run([python, "-IS", "-X", "importtime", str(launcher), *platform, "--root",
                            str(runtime.root), "run", "--bundle", str(b), cid],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        runtime.delete(cid, force=True, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "prohibit" in r.stdout, r.stdout
    assert "runsc_py.network.backstop" in r.stderr  # init's imports are in the profile too
    assert "pyroute2" not in r.stderr, [ln for ln in r.stderr.splitlines() if "pyroute2" in ln][:3]
    # Init made the rules: no set-up helper was forked.
    assert "runsc_py.network.setup" not in r.stderr


# --- bridge mode --------------------------------------------------------------------------------

def test_bridge_mode_and_publishing(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    """`run --network=bridge -p`: eth0 on the bridge's subnet, a default
    route, a published port reached from the host's loopback; delete
    removes the nft table, the veth, the lease and the bridge."""
    import socket
    b = _bundle(bundle, netprobe, ["sh", "-c", "ip -o addr; ip route; echo ready;"
                                   " echo hello-bridge | nc -l -p 8080"])
    port = 18000 + os.getpid() % 1000
    with runtime.container(b, global_args=["--network=bridge"], extra=["-p", f"{port}:8080"]) as c:
        out = helpers.wait_ready(c)
        assert "eth0" in out and "10.213.0." in out
        assert "default via 10.213.0.1" in c.stdout()
        cid = c.id
        veth = helpers._net_host_veth(cid)
        assert Path(f"/sys/class/net/{veth}").exists()
        assert f"runsc-py-{cid}" in subprocess.run(["nft", "list", "tables"], capture_output=True,
                                                    text=True).stdout
        got = b""
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    got = s.recv(100)
            except OSError:
                time.sleep(0.1)
        assert got == b"hello-bridge\n"
        c.wait_status("stopped")
    assert not helpers.find_net_leaks({cid}), helpers.find_net_leaks({cid})


def test_bridge_state_is_removed_after_kill_9(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    """The runtime (run, attached) and the sandbox killed with SIGKILL: the
    veth dies with the namespace, `delete --force` removes the rest."""
    b = _bundle(bundle, netprobe, ["sh", "-c", "echo ready; sleep 30"])
    cid = runtime.new_id("k9")
    p = runtime.popen("run", "--bundle", str(b), cid, global_args=["--network=bridge"])
    try:
        helpers.wait_until(lambda: (runtime.try_state(cid) or {}).get("status") == "running", 15,
                           "the container running")
        pid = runtime.state(cid)["pid"]
        p.kill()
        os.kill(pid, 9)
        p.wait()
        helpers.wait_until(lambda: not Path(f"/sys/class/net/{helpers._net_host_veth(cid)}").exists(),
                           10, "the veth gone with the namespace")
    finally:
        p.kill()
        p.wait()
        runtime.delete(cid, force=True, check=False)
    assert not helpers.find_net_leaks({cid}), helpers.find_net_leaks({cid})


def test_strace_logs_every_decision(runtime, bundle, netprobe) -> None:  # type: ignore[no-untyped-def]
    b = _bundle(bundle, netprobe, ["sh", "-c", "./netprobe connect 127.0.0.1 9; ./netprobe udp 169.254.169.254 53"])
    log = runtime.ctx.workdir / "strace.log"
    r = runtime.run_container(b, global_args=["--strace", "--log", str(log), "--log-format", "json"])
    assert r.returncode == 0, str(r)
    decisions = []
    for ln in log.read_text().splitlines():
        msg = json.loads(ln).get("msg", "")
        if msg.startswith("net {"):
            decisions.append(json.loads(msg[4:]))
    got = {(d["call"], d["address"], d["verdict"]) for d in decisions}
    assert ("connect", "127.0.0.1", "allow") in got, decisions
    assert ("sendto", "169.254.169.254", "deny") in got, decisions
    assert all(d["pid"] > 0 and d["rule"] for d in decisions)
