"""The network benchmark cases (benchmarks/_cases.py lists them).

- net-throughput: iperf3 TCP, 1 and 4 streams, from the container to a
  server in a peer network namespace over a veth pair (never the
  container's loopback), as ms per GiB received (lower is better, like
  every metric here; Gbit/s = 8.59 / (s per GiB)).  Every runtime joins the
  same kind of namespace by path; gVisor's runsc runs with hostinet there
  (--network=host; its own netstack does not start on this kernel, see
  _variant).
- net-connect: TCP connects to a server inside the container (loopback),
  and UDP sendmsg with a destination (what the sentry sends for the
  workload) beside send on a connected socket (native);
  microseconds per connect; for runsc-py also with a policy of 1, 100 and
  10,000 deny rules (the sentry's lookup and the kernel backstop: FIB rules
  up to 32 networks, an nftables set beyond).
- net-start: start-to-exit of /bin/true in each network mode of runsc-py
  (sandbox, none, host, bridge); runc and runsc in their default.
- pyroute2 import: the package's, which no subcommand pays, and the set-up
  helper's (two message classes), off `create`'s critical path (it runs
  beside the sandbox's own start-up).

The namespaces are the benchmark's own (named after its session token) and
removed whatever happens; traffic stays in them and on loopback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ._runtimes import REPO, Runtime, is_runsc_py

Value = float | str
NA = "n/a"
IPERF_SECONDS = 3
CONNECTS = 2000
RULE_COUNTS = (1, 100, 10000)
SERVER_ADDR = "10.78.0.2"


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")


@contextmanager
def net_pair(token: str) -> Iterator[tuple[str, str]]:
    """(container namespace, server namespace), joined by a veth pair."""
    tag = f"rb{token}n{os.getpid() % 10000}{random.randrange(1000)}"
    ctr, srv = f"{tag}c", f"{tag}s"
    try:
        _ip("netns", "add", ctr)
        _ip("netns", "add", srv)
        _ip("link", "add", f"{tag}a"[-15:], "netns", ctr, "type", "veth", "peer", "name",
            f"{tag}b"[-15:], "netns", srv)
        _ip("-n", ctr, "addr", "add", "10.78.0.1/24", "dev", f"{tag}a"[-15:])
        _ip("-n", srv, "addr", "add", f"{SERVER_ADDR}/24", "dev", f"{tag}b"[-15:])
        for ns, dev in ((ctr, f"{tag}a"[-15:]), (srv, f"{tag}b"[-15:]), (ctr, "lo"), (srv, "lo")):
            _ip("-n", ns, "link", "set", dev, "up")
        yield ctr, srv
    finally:
        for ns in (ctr, srv):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def install_iperf3(rootfs: Path) -> None:
    """Copy the host's iperf3 and the libraries it links into ROOTFS."""
    exe = shutil.which("iperf3")
    if not exe:
        raise RuntimeError("iperf3 is not installed (scripts/setup.sh installs it)")
    if (rootfs / "usr/bin/iperf3").exists():
        return
    out = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True).stdout
    files = [exe]
    for ln in out.splitlines():
        parts = ln.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            files.append(path)
    for f in files:
        dest = rootfs / f.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(f), dest)


def _variant(rt: Runtime, *flags: str) -> Runtime:
    """rt with more global flags.  gVisor's runsc with --network=host
    (hostinet: host sockets in the spec's namespace): its netstack mode
    (--network=sandbox) refuses to start on this kernel ("cannot run with
    network enabled in root network namespace": the 2022 build takes a
    namespace that shows /proc/sys/net/core/rmem_default for the host's,
    and every namespace shows it on Linux 6.x)."""
    argv = [("--network=host" if a == "--network=none" else a) for a in rt.argv] + list(flags)
    return dataclasses.replace(rt, argv=argv)


def _bundle(ctx, rt: Runtime, name: str, args: list[str], netns: str | None) -> Path:  # type: ignore[no-untyped-def]
    path = ctx.bundle(rt, name, args)
    spec = json.loads((path / "config.json").read_text())
    nss = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
    nss.append({"type": "network", "path": f"/run/netns/{netns}"} if netns else {"type": "network"})
    spec["linux"]["namespaces"] = nss
    (path / "config.json").write_text(json.dumps(spec))
    return path


def _run(rt: Runtime, bundle: Path, case: str, timeout: float = 120):  # type: ignore[no-untyped-def]
    cid = rt.new_id(case)
    r = rt.call("run", "--bundle", str(bundle), cid, timeout=timeout)
    if not r.ok:
        rt.delete(cid)
    rt.session.forget(rt, cid)
    return r


def case_net_throughput(ctx, rt: Runtime, rep: int) -> dict[str, Value]:  # type: ignore[no-untyped-def]
    install_iperf3(ctx.rootfs[rt.name])
    rt = _variant(rt)
    out: dict[str, Value] = {}
    for streams in (1, 4):
        with net_pair(ctx.session.token) as (ctr, srv):
            server = subprocess.Popen(["ip", "netns", "exec", srv, "iperf3", "-s", "-1", "-p", "5201"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            try:
                time.sleep(0.3)
                b = _bundle(ctx, rt, f"iperf{streams}", ["/usr/bin/iperf3", "-c", SERVER_ADDR, "-p", "5201",
                                                         "-t", str(IPERF_SECONDS), "-P", str(streams), "-J"], ctr)
                r = _run(rt, b, "iperf")
                if not r.ok:
                    out[f"p{streams}"] = r.error()
                    continue
                try:
                    res = json.loads(r.stdout)
                    bps = res["end"]["sum_received"]["bits_per_second"]
                except (ValueError, KeyError):
                    out[f"p{streams}"] = f"no iperf3 result: {(r.stdout or r.stderr)[-200:]!r}"
                    continue
                out[f"p{streams}"] = (1 << 30) * 8 / bps * 1e3  # ms per GiB
            finally:
                server.kill()
                server.wait()
    return out


def _policy_file(ctx, n: int) -> Path:  # type: ignore[no-untyped-def]
    """N deny rules on /32s of 198.18.0.0/15 (the benchmarking range; no
    packet goes there: the probe connects to the loopback)."""
    path = ctx.session.work / f"policy-{n}.json"
    if not path.exists():
        nets = [f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32" for i in range(n)]
        path.write_text(json.dumps({"deny": nets}))
    return path


def _connect_us(ctx, rt: Runtime, tag: str) -> Value:  # type: ignore[no-untyped-def]
    script = (f"/bin/netprobe serve 7001 {CONNECTS} & sleep 0.3;"
              f" /bin/netprobe connrate 127.0.0.1 7001 {CONNECTS}")
    with net_pair(ctx.session.token) as (ctr, _srv):  # a namespace with lo up, for every runtime
        b = _bundle(ctx, rt, f"connect-{tag}", ["sh", "-c", script], ctr)
        r = _run(rt, b, "connect")
    if not r.ok:
        return r.error()
    kv = dict(ln.split("=", 1) for ln in r.stdout.split() if "=" in ln)
    if kv.get("connect_fails", "1") != "0":
        return f"{kv.get('connect_fails')} connects failed"
    return float(kv["connect_us"])


def _send_us(ctx, rt: Runtime) -> dict[str, Value]:  # type: ignore[no-untyped-def]
    """UDP sendmsg with a destination (notified under runsc-py) and send on
    a connected socket (native), to a receiver on the loopback."""
    with net_pair(ctx.session.token) as (ctr, _srv):
        b = _bundle(ctx, rt, "sendrate", ["/bin/netprobe", "sendrate", str(CONNECTS)], ctr)
        r = _run(rt, b, "sendrate")
    if not r.ok:
        return {"sendmsg": r.error(), "send": r.error()}
    kv = dict(ln.split("=", 1) for ln in r.stdout.split() if "=" in ln)
    if kv.get("send_fails", "1") != "0":
        return {"sendmsg": f"{kv.get('send_fails')} sends failed", "send": "failed"}
    return {"sendmsg": float(kv["sendmsg_us"]), "send": float(kv["send_us"])}


def case_net_connect(ctx, rt: Runtime, rep: int) -> dict[str, Value]:  # type: ignore[no-untyped-def]
    base = _variant(rt)
    out: dict[str, Value] = {"connect": _connect_us(ctx, base, "base"), **_send_us(ctx, base)}
    for n in RULE_COUNTS:
        key = f"rules{n}"
        out[key] = (_connect_us(ctx, _variant(rt, "--net-policy", str(_policy_file(ctx, n))), key)
                    if is_runsc_py(rt.name) else NA)
    return out


def case_net_start(ctx, rt: Runtime, rep: int) -> dict[str, Value]:  # type: ignore[no-untyped-def]
    out: dict[str, Value] = {}
    for mode in ("sandbox", "none", "host", "bridge"):
        if not is_runsc_py(rt.name) and mode != "sandbox":
            out[mode] = NA
            continue
        v = _variant(rt, f"--network={mode}") if is_runsc_py(rt.name) else _variant(rt)
        b = _bundle(ctx, v, f"start-{mode}", ["/bin/true"], None)
        r = _run(v, b, f"start{mode}", timeout=60)
        out[mode] = r.elapsed * 1e3 if r.ok else r.error()
    for key, stmt in (("pyroute2", "from pyroute2 import IPRoute"),
                      ("pyroute2_light", "from runsc_py.network import backstop")):
        out[key] = _import_ms(stmt) if is_runsc_py(rt.name) else NA
    return out


def _import_ms(stmt: str) -> Value:
    """STMT's time in a fresh interpreter started as the runsc-py launcher
    starts (-I -S, its sys.path), after the modules the runtime has loaded
    anyway (logging, json, socket)."""
    launcher = (REPO / ".venv" / "bin" / "runsc-py").read_text().splitlines()
    paths = next((ln for ln in launcher if ln.startswith("sys.path")), "")
    code = (f"import sys, time, logging, json, socket\n{paths}\nt = time.perf_counter()\n{stmt}\n"
            "print((time.perf_counter() - t) * 1e3)\n")
    r = subprocess.run([str(REPO / ".venv" / "bin" / "python3"), "-IS", "-c", code],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return f"exit {r.returncode}: {r.stderr.strip()[-200:]}"
    return float(r.stdout.strip())


def net_cases(case_cls, metric_cls) -> list:  # type: ignore[no-untyped-def]
    M = metric_cls
    return [
        case_cls("net-throughput", case_net_throughput, 3, (
            M("p1", "iperf3 TCP to a peer namespace over a veth, 1 stream", "ms/GiB"),
            M("p4", "iperf3 TCP to a peer namespace over a veth, 4 streams", "ms/GiB"))),
        case_cls("net-connect", case_net_connect, 3, (
            M("connect", "TCP connect+close to a server on the container's loopback", "us/op"),
            *(M(f"rules{n}", f"the same with {n:,} deny rules (runsc-py)", "us/op")
              for n in RULE_COUNTS),
            M("sendmsg", "UDP sendmsg with a destination, 64 B, loopback", "us/op"),
            M("send", "UDP send on a connected socket, 64 B, loopback", "us/op"))),
        case_cls("net-start", case_net_start, 5, (
            M("sandbox", "start-to-exit /bin/true, --network=sandbox (default)", "ms"),
            M("none", "start-to-exit /bin/true, --network=none", "ms"),
            M("host", "start-to-exit /bin/true, --network=host", "ms"),
            M("bridge", "start-to-exit /bin/true, --network=bridge", "ms"),
            M("pyroute2", "pyroute2 package import (`from pyroute2 import IPRoute`)", "ms"),
            M("pyroute2_light", "the set-up helper's import (backstop: rtnetlink encoded by hand)", "ms"))),
    ]


if __name__ == "__main__":
    sys.exit("benchmarks: run `python -m benchmarks.run --cases net-throughput,net-connect,net-start`")
