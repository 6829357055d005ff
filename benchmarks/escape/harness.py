"""Build bundles per capability profile, run every probe in its own container,
check the host afterwards, and report a verdict matrix.

Verdicts
    BLOCKED  the attempt was refused (errno, masked file, missing interface)
    ALLOWED  the call succeeded but stayed inside the sandbox (own namespaces,
             own files) or only reached kernel attack surface (bpf, io_uring...)
    ESCAPED  host data or host state was reached: the host marker was read,
             a host-global knob was written, a permission check guarding host
             state passed (modules, kexec), a host tty got input, the host
             hostname changed, real host kernel addresses were printed
    ERROR    the container did not run the probe (the runtime failed); not a verdict

Profiles
    runc-default    `runc spec`'s capabilities, masked and read-only paths
    docker-default  Docker's capability set
    all-caps        every capability the harness holds and the runtime
                    knows, noNewPrivileges false
    privileged      what `docker run --privileged` gives: all-caps, and no
                    masked or read-only paths, every device allowed in the
                    devices cgroup, device nodes for the host disk holding
                    the marker, /dev/mem and /dev/kmsg, /sys and the cgroup
                    mount read-write, the host's cgroup namespace (Docker's
                    default on a cgroup v1 host), plus the host's /proc
                    bind-mounted at /hostproc (`-v /proc:/hostproc`)

The probe prints its own view; the harness overrides it with ESCAPED when a
host check fails (marker content seen in the output, hostname, core_pattern
or another probed knob changed, bytes injected into the host-side pty).  The
host holds three markers: a secret file, a helper process whose command line
and environment hold the secret (for /hostproc), and a key in the harness's
own process keyring (for /proc/keys).  Every container is deleted, every
file removed, every knob restored, whatever happens.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import glob
import json
import os
import pty
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._runtimes import KNOWN, binary
from runsc_py.busybox import build_rootfs
from runsc_py.spec import CAPABILITIES, default_spec

HERE = Path(__file__).resolve().parent
PROBE_DIR = HERE / "probes"

DOCKER_CAPS = ["CAP_" + c for c in (
    "CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP "
    "NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE").split()]
PROFILES = {
    "runc-default": None,              # runc spec's capabilities, untouched
    "docker-default": DOCKER_CAPS,
    "all-caps": list(CAPABILITIES),    # and noNewPrivileges false
    "privileged": list(CAPABILITIES),  # and the rest of `docker run --privileged` (_privileged)
}
ALL_CAPS_PROFILES = ("all-caps", "privileged")
VERDICTS = ("BLOCKED", "ALLOWED", "ESCAPED", "ERROR")
CORE_PATTERN = "/proc/sys/kernel/core_pattern"
# Host-wide knobs the probes write (the value already there): compared after
# every probe and restored if changed.  Cgroup files at each v1 hierarchy's
# root are added by Host (release_agent, notify_on_release).
KNOBS = (CORE_PATTERN, "/proc/sys/vm/dirty_ratio", "/sys/kernel/mm/ksm/pages_to_scan",
         "/sys/module/printk/parameters/time", "/sys/kernel/uevent_helper",
         "/proc/sys/fs/binfmt_misc/status")
# Character devices the privileged profile lists (path, major, minor), as
# Docker's --privileged lists every host device.
PRIVILEGED_CHAR_DEVICES = (("/dev/mem", 1, 1), ("/dev/kmsg", 1, 11))


def build_probes(dest: Path) -> dict[str, str]:
    """Compile every probes/*.c statically into DEST; return probe -> binary name."""
    dest.mkdir(parents=True, exist_ok=True)
    table: dict[str, str] = {}
    for src in sorted(PROBE_DIR.glob("*.c")):
        out = dest / f"escape-{src.stem}"
        subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(src)], check=True,
                       capture_output=True, text=True)
        names = subprocess.run([str(out), "--list"], check=True, capture_output=True,
                               text=True).stdout.split()
        for n in names:
            table[n] = out.name
    return table


def _mountpoint(path: str) -> str:
    p = os.path.dirname(os.path.realpath(path))
    while not os.path.ismount(p):
        p = os.path.dirname(p)
    return p


def _blockdev_of(path: str) -> str:
    st = os.stat(path)
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"


def _blockdev_name(dev: str) -> str:
    """/dev/NAME of the block device MAJOR:MINOR (its uevent's DEVNAME)."""
    try:
        for line in Path(f"/sys/dev/block/{dev}/uevent").read_text().splitlines():
            if line.startswith("DEVNAME="):
                return "/dev/" + line.split("=", 1)[1]
    except OSError:
        pass
    return "/dev/escape-blk"


_libc = ctypes.CDLL(None, use_errno=True)
_SYS_ADD_KEY, _SYS_KEYCTL = 248, 250          # x86_64
_KEY_SPEC_PROCESS_KEYRING, _KEYCTL_INVALIDATE = -2, 21


class Host:
    """The host markers: a secret file, a helper process holding the secret
    in its command line and environment (read through /hostproc), a key in
    this process's own keyring (listed in /proc/keys), the hostname, and the
    host-wide knobs the probes write (KNOBS)."""

    def __init__(self) -> None:
        token = secrets.token_hex(8)
        self.marker = f"/tmp/escape-marker-{token}"
        self.content = f"host-secret-{secrets.token_hex(12)}"
        self.helper: subprocess.Popen[bytes] | None = None
        self.key = -1
        fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, self.content.encode() + b"\n")
        os.close(fd)
        try:
            self.hostname = socket.gethostname()
            self.knobs = {p: v for p in self._knob_paths() if (v := _read(p)) is not None}
            # `sh -c 'sleep; :'` stays a shell (no exec of the last command),
            # so its own argv and environment keep the secret.
            self.helper = subprocess.Popen(
                ["/bin/sh", "-c", "sleep 86400; :", "escape-host-helper", self.content],
                env={"PATH": "/usr/bin:/bin", "ESCAPE_HOST_SECRET": self.content},
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            self.key_desc = f"escape-host-key-{token}"
            # The process keyring: this process's alone (never a keyring
            # other host processes share), gone when it exits.
            self.key = _libc.syscall(_SYS_ADD_KEY, b"user", self.key_desc.encode(), b"x", 1,
                                     _KEY_SPEC_PROCESS_KEYRING)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _knob_paths() -> list[str]:
        roots = sorted(glob.glob("/sys/fs/cgroup/*/release_agent"))
        roots += sorted(glob.glob("/sys/fs/cgroup/*/notify_on_release"))
        return [*KNOBS, *roots]

    def env(self) -> list[str]:
        mp = _mountpoint(self.marker)
        dev = _blockdev_of(self.marker)
        return [f"ESCAPE_MARKER_PATH={self.marker}", f"ESCAPE_MARKER_CONTENT={self.content}",
                f"ESCAPE_MARKER_FSREL={os.path.relpath(self.marker, mp)}",
                f"ESCAPE_BLOCKDEV={dev}", f"ESCAPE_BLOCKDEV_PATH={_blockdev_name(dev)}",
                f"ESCAPE_HOST_PID={self.helper.pid if self.helper else 1}",
                f"ESCAPE_HOST_KEY={self.key_desc if self.key > 0 else ''}"]

    def check(self) -> list[str]:
        """What changed on the host; restores it."""
        bad = []
        if socket.gethostname() != self.hostname:
            bad.append(f"host hostname changed to {socket.gethostname()!r}")
            socket.sethostname(self.hostname)
        for path, was in self.knobs.items():
            now = _read(path)
            if now != was:
                bad.append(f"host {path} changed to {now!r}")
                if now is not None:
                    _restore(path, was)
        if not os.path.exists(self.marker):
            bad.append("host marker deleted")
        if self.helper is not None and self.helper.poll() is not None:
            bad.append(f"host helper process killed ({self.helper.returncode})")
        return bad

    def close(self) -> None:
        """Remove the markers and restore every knob (whatever check() saw)."""
        for path, was in getattr(self, "knobs", {}).items():
            if _read(path) != was:
                _restore(path, was)
        if self.helper is not None:
            _killpg(self.helper.pid)
            self.helper.wait()
        if self.key > 0:
            _libc.syscall(_SYS_KEYCTL, _KEYCTL_INVALIDATE, self.key)
        try:
            os.unlink(self.marker)
        except OSError:
            pass


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _restore(path: str, value: str) -> None:
    try:
        Path(path).write_text(value)
    except OSError as e:
        print(f"warning: cannot restore {path} to {value!r}: {e}", file=sys.stderr)


def held_caps() -> set[str]:
    """The capabilities this process can grant (its bounding set): a profile
    asking for more fails at capset in every runtime (this machine's own
    sandbox withholds CAP_SYS_RESOURCE)."""
    from runsc_py.spec import CAP_NUMBERS
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return {c for c, n in CAP_NUMBERS.items() if mask >> n & 1}
    return set(CAPABILITIES)


def make_bundle(work: Path, profile: str, rootfs: Path, env: list[str],
                known: set[str] | None = None, name: str | None = None) -> Path:
    """A bundle for PROFILE in WORK; KNOWN limits the capabilities to those
    the runtime accepts (see runtime_caps)."""
    bundle = work / (name or f"bundle-{profile}")
    bundle.mkdir()
    spec = default_spec()
    spec["root"]["path"] = str(rootfs)      # shared by the profiles (runc refuses a symlink)
    proc = spec["process"]
    proc["terminal"] = False
    proc["env"] = proc["env"] + env
    caps = PROFILES[profile]
    if caps is not None:
        caps = [c for c in caps if c in held_caps() and (known is None or c in known)]
        # As Docker does: no ambient set (root needs none; ambient would need inheritable).
        proc["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    if profile in ALL_CAPS_PROFILES:
        proc["noNewPrivileges"] = False
    if profile == "privileged":
        _privileged(spec, dict(e.split("=", 1) for e in env))
    spec["hostname"] = "escape-sandbox"
    (bundle / "config.json").write_text(json.dumps(spec, indent=1))
    return bundle


def _privileged(spec: dict, env: dict[str, str]) -> None:
    """The rest of `docker run --privileged -v /proc:/hostproc` (capabilities
    and noNewPrivileges are set by the caller)."""
    lin = spec["linux"]
    # Docker's default on a cgroup v1 host (this one's controllers are v1):
    # the host's cgroup namespace, so a new v1 mount shows a hierarchy's root.
    lin["namespaces"] = [n for n in lin["namespaces"] if n["type"] != "cgroup"]
    lin["maskedPaths"] = []
    lin["readonlyPaths"] = []
    lin.setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]
    devices = []
    if "ESCAPE_BLOCKDEV" in env:
        major, minor = (int(x) for x in env["ESCAPE_BLOCKDEV"].split(":"))
        devices.append({"path": env.get("ESCAPE_BLOCKDEV_PATH", "/dev/escape-blk"), "type": "b",
                        "major": major, "minor": minor, "fileMode": 0o660, "uid": 0, "gid": 0})
    for path, major, minor in PRIVILEGED_CHAR_DEVICES:
        devices.append({"path": path, "type": "c", "major": major, "minor": minor,
                        "fileMode": 0o600, "uid": 0, "gid": 0})
    lin["devices"] = devices
    for m in spec["mounts"]:
        if m["destination"] in ("/sys", "/sys/fs/cgroup"):
            m["options"] = [o for o in m.get("options", []) if o != "ro"] + ["rw"]
    spec["mounts"].append({"destination": "/hostproc", "type": "bind", "source": "/proc",
                           "options": ["rbind", "rw"]})


# Linux 5.7's capabilities (CAP_PERFMON, CAP_BPF and CAP_CHECKPOINT_RESTORE came in 5.8/5.9).
_PRE_5_8_CAPS = set(CAPABILITIES[:CAPABILITIES.index("CAP_AUDIT_READ") + 1])


def runtime_caps(runner: Runner, rootfs: Path) -> tuple[set[str], str]:
    """The capabilities RUNNER's runtime accepts in a spec, and how that was found.

    A spec naming a capability the runtime does not know makes it fail before
    the probe runs (gVisor 2022-12-19: "creating loader: converting
    capabilities: unknown capability \"CAP_PERFMON\"", reported only in its
    debug log; the caller sees "cannot read client sync file: waiting for
    sandbox to start: EOF").  Asked with `features` (OCI runtime features,
    runc >= 1.1, runsc-py); runtimes without it get a trial container with
    every held capability, then with Linux 5.7's set."""
    rc, out, _, _ = runner.call("features", timeout=30)
    if rc == 0:
        try:
            listed = set(json.loads(out)["linux"]["capabilities"])
            if listed:
                return listed, "listed by its `features`"
        except (ValueError, KeyError, TypeError):
            pass
    held = held_caps()
    for label, caps in (("every held capability", held),
                        ("Linux 5.7's capabilities (up to CAP_AUDIT_READ)", held & _PRE_5_8_CAPS)):
        name = f"bundle-capcheck-{len(caps)}"
        bundle = make_bundle(runner.work, "all-caps", rootfs, [], known=caps, name=name)
        cfg = json.loads((bundle / "config.json").read_text())
        cfg["process"]["args"] = ["/bin/true"]
        (bundle / "config.json").write_text(json.dumps(cfg))
        cid = f"esc{runner.token}-capcheck-{secrets.token_hex(3)}"
        runner.ids.append(cid)
        try:
            rc, _, _, _ = runner.call("run", "--bundle", str(bundle), cid, timeout=runner.timeout)
        finally:
            runner.delete(cid)
            shutil.rmtree(bundle, ignore_errors=True)
        if rc == 0:
            return caps, f"no `features`; a trial container with {label} ran"
    return held, "no `features` and no trial container ran: every held capability"


def parse(name: str, out: str) -> tuple[str, str] | None:
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) >= 3 and parts[0] == "VERDICT" and parts[1] == name and parts[2] in VERDICTS:
            return parts[2], (parts[3] if len(parts) > 3 else "")
    return None


class Runner:
    """One runtime (argv: its command before --root; default KNOWN[runtime])."""

    def __init__(self, runtime: str, work: Path, timeout: float = 30,
                 argv: list[str] | None = None) -> None:
        if argv is None and runtime not in KNOWN:
            raise SystemExit(f"unknown runtime {runtime!r} (known: {', '.join(KNOWN)})")
        self.name = runtime
        self.argv = list(argv if argv is not None else KNOWN[runtime])
        self.root = work / f"root-{runtime}"
        self.root.mkdir()
        self.work = work
        self.timeout = timeout
        self.ids: list[str] = []
        self.token = secrets.token_hex(3)

    def call(self, *args: str, stdin: int | None = None, timeout: float = 60) -> tuple[int, str, str, bool]:
        argv = [*self.argv, "--root", str(self.root), *args]
        with tempfile.TemporaryFile("w+", dir=self.work) as out, \
                tempfile.TemporaryFile("w+", dir=self.work) as err:
            p = subprocess.Popen(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                 stdout=out, stderr=err, start_new_session=True)
            timed_out = False
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _killpg(p.pid)
                rc = p.wait()
            except BaseException:
                _killpg(p.pid)
                p.wait()
                raise
            out.seek(0)
            err.seek(0)
            return rc, out.read(), err.read(), timed_out

    def run_probe(self, bundle: Path, binary: str, probe: str, host: Host) -> dict[str, str]:
        cid = f"esc{self.token}-{probe.replace('_', '-')}-{secrets.token_hex(3)}"
        self.ids.append(cid)
        cfg = json.loads((bundle / "config.json").read_text())
        cfg["process"]["args"] = [f"/escape/{binary}", probe]
        cfg["process"]["env"].append(f"ESCAPE_PROBE_SELF=/escape/{binary}")
        (bundle / "config.json").write_text(json.dumps(cfg))
        master, slave = pty.openpty()       # stdin: a host-side tty (TIOCSTI probe)
        try:
            rc, out, err, timed_out = self.call("run", "--bundle", str(bundle), cid,
                                                stdin=slave, timeout=self.timeout)
            injected = _drain(slave)
        finally:
            os.close(master)
            os.close(slave)
            self.delete(cid)
        got = parse(probe, out)
        if got is None:
            why = "timed out" if timed_out else f"exit {rc}"
            last = (err.strip().splitlines() or out.strip().splitlines() or ["no output"])[-1]
            verdict, detail = "ERROR", f"{why}: {last[:160]}"
        else:
            verdict, detail = got
        alarms = host.check()
        if host.content in out or host.content in err:
            alarms.append("host marker content in the container's output")
        if "escape-probe-injected" in injected:
            alarms.append("TIOCSTI input reached the host-side pty")
        if alarms:
            verdict, detail = "ESCAPED", "; ".join(alarms) + f" (probe said: {detail})"
        return {"verdict": verdict, "detail": detail, "stdout": out[-2000:], "stderr": err[-2000:]}

    def delete(self, cid: str) -> None:
        try:
            self.call("delete", "--force", cid, timeout=60)
        finally:
            if cid in self.ids:
                self.ids.remove(cid)
            for d in _remove_cgroups(cid):
                # gVisor leaves the cgroups of a sandbox that failed to start.
                print(f"warning: {self.name} left cgroup {d} after delete; removed",
                      file=sys.stderr)

    def cleanup(self) -> None:
        for cid in list(self.ids):
            try:
                self.delete(cid)
            except Exception as e:  # keep cleaning the rest
                print(f"warning: delete {cid}: {e}", file=sys.stderr)


def _remove_cgroups(cid: str) -> list[str]:
    """rmdir the (empty) cgroup directories named CID, at most two levels
    below a hierarchy's root; return the ones removed."""
    removed = []
    base = Path("/sys/fs/cgroup")
    for top in (p for p in base.iterdir() if p.is_dir()) if base.is_dir() else ():
        for d in (top / cid, *top.glob(f"*/{cid}")):
            if d.is_dir():
                try:
                    os.rmdir(d)
                    removed.append(str(d))
                except OSError:
                    pass
    return removed


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _drain(fd: int) -> str:
    fl = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    data = b""
    try:
        while len(data) < 65536:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data.decode(errors="replace")


class Suite:
    """The scratch space of one or more runtimes' runs: the host markers, the
    busybox rootfs with the probes, a Runner per runtime.  A context
    manager: on exit every container is deleted, the knobs restored, the
    markers and files removed, whatever happened."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="escape-", dir="/var/tmp"))
        self.host: Host | None = None
        self.runners: list[Runner] = []
        try:
            os.chmod(self.work, 0o755)
            self.host = Host()
            self.rootfs = self.work / "rootfs"
            build_rootfs(str(self.rootfs))
            (self.rootfs / "hostproc").mkdir()     # the privileged profile's mount point
            self.table = build_probes(self.rootfs / "escape")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Suite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            for r in self.runners:
                r.cleanup()
        finally:
            if self.host:
                self.host.close()
            shutil.rmtree(self.work, ignore_errors=True)

    def run(self, runtime: str, profiles: list[str], probes: list[str] | None = None,
            log=None, argv: list[str] | None = None) -> dict:
        """Run PROBES (default all) under every profile with RUNTIME (argv:
        its command, default KNOWN[runtime]); return the results dict."""
        assert self.host is not None
        names = probes or list(self.table)
        unknown = [n for n in names if n not in self.table]
        if unknown:
            raise SystemExit(f"unknown probes: {', '.join(unknown)} (known: {', '.join(self.table)})")
        runner = Runner(runtime, self.work, argv=argv)
        self.runners.append(runner)
        results: dict = {"runtime": runtime, "argv": runner.argv, "profiles": profiles, "probes": names,
                         "work": str(self.work), "marker": self.host.marker,
                         "kernel": os.uname().release, "date": time.strftime("%Y-%m-%d %H:%M"),
                         "results": {}, "capabilities": {}}
        known: set[str] | None = None
        if any(p in ALL_CAPS_PROFILES for p in profiles):
            known, how = runtime_caps(runner, self.rootfs)
            left_out = [c for c in CAPABILITIES if c in held_caps() and c not in known]
            for p in profiles:
                if p in ALL_CAPS_PROFILES:
                    results["capabilities"][p] = {"known": how, "left_out": left_out}
            if log and left_out:
                log(f"{runtime}: all-caps and privileged leave out {', '.join(left_out)} ({how})")
        for profile in profiles:
            bundle = make_bundle(self.work, profile, self.rootfs, self.host.env(), known=known,
                                 name=f"bundle-{profile}-{runner.token}")
            row = results["results"].setdefault(profile, {})
            for name in names:
                r = runner.run_probe(bundle, self.table[name], name, self.host)
                row[name] = r
                if log:
                    log(f"{runtime} {profile} {name}: {r['verdict']} {r['detail']}")
        return results


def run_suite(runtime: str, profiles: list[str], probes: list[str] | None = None,
              log=None) -> dict:
    """Run PROBES (default all) under every profile; return the results dict."""
    with Suite() as suite:
        return suite.run(runtime, profiles, probes, log=log)


def markdown(results: dict) -> str:
    profiles = results["profiles"]
    argv = results.get("argv") or [results["runtime"]]
    cmd = " ".join([os.path.basename(binary(argv)), *(argv[1:] if argv[0] != "unshare" else [])])
    lines = [f"### {results['runtime']} (`{cmd}`, kernel {results['kernel']}, {results['date']})", "",
             "| probe | " + " | ".join(profiles) + " |", "|---" * (len(profiles) + 1) + "|"]
    for name in results["probes"]:
        cells = [results["results"][p][name]["verdict"] for p in profiles]
        cells = [f"**{c}**" if c == "ESCAPED" else c for c in cells]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for profile, c in results.get("capabilities", {}).items():
        if c["left_out"]:
            lines += ["", f"{profile}: {', '.join(c['left_out'])} left out: unknown to this "
                          f"runtime ({c['known']})."]
    lines += ["", "<details><summary>details</summary>", ""]
    for p in profiles:
        for name in results["probes"]:
            r = results["results"][p][name]
            lines.append(f"- {p} / {name}: {r['verdict']} - {r['detail'].replace('|', '/')}")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.escape")
    ap.add_argument("--runtime", required=True, choices=sorted(KNOWN))
    ap.add_argument("--profile", default="all", choices=[*PROFILES, "all"])
    ap.add_argument("--probes", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--out", help="directory for results.md and results.json")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the runtimes need root")
    # SIGTERM/SIGHUP unwind through the finally blocks (cleanup).
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda n, f: sys.exit(128 + n))
    profiles = list(PROFILES) if a.profile == "all" else [a.profile]
    probes = [p for p in a.probes.split(",") if p] or None
    log = None if a.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    res = run_suite(a.runtime, profiles, probes, log=log)
    md = markdown(res)
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"results-{a.runtime}.md").write_text(md)
        (out / f"results-{a.runtime}.json").write_text(json.dumps(res, indent=1))
    print(md)
    escaped = [(p, n) for p, row in res["results"].items() for n, r in row.items()
               if r["verdict"] == "ESCAPED"]
    return 0 if not escaped or not a.runtime.startswith("runsc-py") else 3
