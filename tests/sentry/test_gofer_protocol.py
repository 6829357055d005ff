"""The gofer process against bad input: malformed requests, paths that try
to leave the root, loops, over-long names.  Each gets an errno, and the
gofer keeps serving the same channel.  A real gofer process (the one
`create` starts), attached to a mount namespace rooted at a scratch root."""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

import pytest
from harness import _files

from gofer import protocol
from gofer.protocol import HEADER, ROOT, VERSION, Op, WireCreds
from sentry.creds import ThreadCreds
from sentry.errors import SysError
from sentry.hostcalls import Scratch

O_PATH = os.O_PATH | os.O_CLOEXEC


@pytest.fixture
def gofer(tmp_path: Path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hello").write_text("hello-root\n")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "up").symlink_to("/../../../../../../../..")
    with _files(str(root), "gofer") as (files, _holder):
        yield files.for_thread(Scratch(), ThreadCreds()), root


def _raw(ops, msg: bytes, fds: list[int] = ()) -> int:
    protocol.send(ops.sock, msg, list(fds))
    data, rfds = protocol.recv(ops.sock)
    for fd in rfds:
        os.close(fd)
    assert len(data) >= HEADER.size + 12, data
    return struct.unpack_from("<q", data, HEADER.size)[0]


def _still_serves(ops) -> None:
    fd = ops.resolve(ROOT, b"/etc/hello", os.O_RDONLY, 0)
    assert fd >= 0, fd
    try:
        assert not os.get_inheritable(fd)  # received close-on-exec (MSG_CMSG_CLOEXEC)
        assert os.read(fd, 100) == b"hello-root\n"
    finally:
        os.close(fd)


def test_malformed_requests_get_errors_and_the_gofer_keeps_serving(gofer):
    ops, _root = gofer
    creds = WireCreds(0, 0, 0)
    good = protocol.encode_request(Op.MKDIRAT, 7, [creds, ROOT, b"d", 0o755], 0)
    cases = {
        "short": (b"\x01\x00", [], errno.EPROTO),
        "bad version": (struct.pack("<HHIQ", VERSION + 1, Op.MKDIRAT, 0, 1), [], errno.EPROTONOSUPPORT),
        "unknown op": (struct.pack("<HHIQ", VERSION, 999, 0, 1), [], errno.EINVAL),
        "length lies": (good[:4] + struct.pack("<I", 5000) + good[8:], [], errno.EPROTO),
        "truncated body": (HEADER.pack(VERSION, Op.MKDIRAT, 4, 1) + b"\0\0\0\0", [], errno.EPROTO),
        "trailing bytes": (HEADER.pack(VERSION, Op.MKDIRAT, len(good) - 16 + 1, 1) + good[16:] + b"x",
                           [], errno.EPROTO),
        "handle without fd": (protocol.encode_request(Op.MKDIRAT, 2, [creds, ROOT, b"d", 0], 0)
                              .replace(struct.pack("<i", ROOT), struct.pack("<i", 3), 1), [], errno.EBADF),
        "control op on a channel": (protocol.encode_request(Op.CHANNEL, 3, [ROOT], 0), [], errno.EINVAL),
        "not a single name": (protocol.encode_request(Op.MKDIRAT, 4, [creds, ROOT, b"a/../../x", 0], 0),
                              [], errno.EINVAL),
        "dot-dot name": (protocol.encode_request(Op.UNLINKAT, 5, [creds, ROOT, b"..", 0], 0),
                         [], errno.EINVAL),
        "unknown resolve bits": (protocol.encode_request(Op.RESOLVE, 8, [creds, ROOT, b"/", 0, 0, 4], 0),
                                 [], errno.EINVAL),
        "probe with no-symlinks": (protocol.encode_request(Op.RESOLVE, 9, [creds, ROOT, b"/", 0, 0, 3], 0),
                                   [], errno.EINVAL),
    }
    for what, (msg, fds, want) in cases.items():
        assert _raw(ops, msg, fds) == -want, what
        _still_serves(ops)
    # Over the size limit: cut short by the socket, still answered (the
    # sender waits for its reply), and the next request is served.
    big = HEADER.pack(VERSION, Op.MKDIRAT, protocol.MAX_MESSAGE, 11) + bytes(protocol.MAX_MESSAGE)
    protocol.send(ops.sock, big)
    ops.sock.settimeout(10)  # a gofer that drops it never answers: fail, do not hang
    try:
        data, rfds = protocol.recv(ops.sock)
    finally:
        ops.sock.settimeout(None)
    assert not rfds and protocol.decode_reply(data, 11, [])[0] == -errno.EMSGSIZE
    _still_serves(ops)
    # An fd passed but not named by any handle: refused, and closed.
    r, w = os.pipe()
    try:
        assert _raw(ops, protocol.encode_request(Op.MKDIRAT, 6, [creds, ROOT, b"d", 0], 0), [r]) == -errno.EBADF
    finally:
        os.close(r)
        os.close(w)
    _still_serves(ops)


def test_paths_stay_in_the_root(gofer):
    ops, root = gofer
    assert ops.resolve(ROOT, b"/../../../../etc/hello", O_PATH, 0) >= 0  # ".." stops at the root
    for path in (b"/up/etc/passwd", b"/../../../../etc/passwd", b"up/proc/1/root/etc/passwd"):
        assert ops.resolve(ROOT, path, O_PATH, 0) == -errno.ENOENT, path
    assert ops.resolve(ROOT, b"/loop1", O_PATH, 0) == -errno.ELOOP
    assert ops.resolve(ROOT, b"/" + b"a" * 300, O_PATH, 0) == -errno.ENAMETOOLONG
    # Over PATH_MAX: refused by the gofer's unmarshalling.
    assert ops.resolve(ROOT, b"/" + b"a/" * 3000, O_PATH, 0) == -errno.ENAMETOOLONG
    _still_serves(ops)
    # Directory changes land inside the root only.
    assert ops.mkdirat(ROOT, b"made", 0o755) == 0
    assert (root / "made").is_dir()
    assert ops.symlinkat(b"/../../../../tmp", ROOT, b"sl") == 0
    assert ops.mkdirat(ROOT, b"sl", 0o755) == -errno.EEXIST
    assert ops.resolve(ROOT, b"/sl/" + os.fsencode(root.name), O_PATH, 0) == -errno.ENOENT


def test_requests_run_with_the_callers_credentials(gofer):
    ops, root = gofer
    os.chmod(root, 0o755)
    os.chmod(root / "etc" / "hello", 0o600)
    creds = ThreadCreds()
    creds.current = (1000, 1000, (), 0)  # what the sentry would send for uid 1000
    ops.creds = creds
    assert ops.resolve(ROOT, b"/etc/hello", os.O_RDONLY, 0) == -errno.EACCES
    assert ops.mkdirat(ROOT, b"x", 0o755) == -errno.EACCES  # root dir is 0755 root


def test_dotdot_above_the_start_needs_only_search_permission(gofer):
    """"../x" from a directory whose parent the caller may search but not
    read: the gofer names the start directory by walking up with "..", and
    that walk must not need read permission the caller lacks (it answered
    EIO)."""
    ops, root = gofer
    sub = root / "etc" / "sub"
    sub.mkdir()
    os.chmod(root / "etc", 0o711)
    os.chmod(root / "etc" / "hello", 0o644)
    creds = ThreadCreds()
    creds.current = (1000, 1000, (), 0)
    ops.creds = creds
    start = os.open(sub, O_PATH | os.O_DIRECTORY)
    try:
        fd = ops.resolve(start, b"../hello", os.O_RDONLY, 0)
        assert fd >= 0, fd
        assert os.read(fd, 100) == b"hello-root\n"
        os.close(fd)
        assert ops.resolve(start, b"../missing", O_PATH, 0) == -errno.ENOENT
    finally:
        os.close(start)
    os.chmod(root / "etc", 0o700)  # no search permission either: EACCES, as natively
    start = os.open(sub, O_PATH | os.O_DIRECTORY)
    try:
        assert ops.resolve(start, b"../hello", os.O_RDONLY, 0) == -errno.EACCES
    finally:
        os.close(start)


def test_thousands_of_supplementary_groups(gofer):
    """A caller's groups travel with each request: 5,000 of them (more than
    the first protocol's 16 KiB messages held) are served; more than a
    message holds (~14,000) is an error, not a request cut short and a
    sentry thread waiting forever for its answer."""
    ops, root = gofer
    os.chmod(root / "etc" / "hello", 0o640)
    os.chown(root / "etc" / "hello", 0, 4999)
    creds = ThreadCreds()
    creds.current = (1000, 1000, tuple(range(100, 5100)), 0)
    ops.creds = creds
    fd = ops.resolve(ROOT, b"/etc/hello", os.O_RDONLY, 0)
    assert fd >= 0, fd
    os.close(fd)
    creds.current = (1000, 1000, tuple(range(100, 20100)), 0)
    with pytest.raises(SysError) as e:
        ops.resolve(ROOT, b"/etc/hello", os.O_RDONLY, 0)
    assert e.value.errno == errno.ENOMEM
    creds.current = (0, 0, (), 0)
    _still_serves(ops)


def test_channel_reply_names_the_serving_thread_which_follows_our_cpu(gofer):
    """CHANNEL answers the tid of the gofer thread serving the channel; each
    request keeps that thread on the requester's CPU (sentry/cpu.py), and
    the requester's own mask is back to what it was after the reply."""
    ops, _root = gofer
    tid = ops.peer_tid
    assert tid > 0
    status = dict(ln.split(":\t", 1) for ln in Path(f"/proc/{tid}/status").read_text().splitlines()
                  if ":\t" in ln)
    assert status["Name"] == "runsc-gofer" and int(status["Tgid"]) != tid, status  # not the main thread
    own = os.sched_getaffinity(0)
    if len(own) < 2:
        pytest.skip("one CPU: nothing to place")
    for cpu in sorted(own)[:2]:
        os.sched_setaffinity(0, {cpu})
        try:
            ops.placement = type(ops.placement)()  # our mask is now {cpu}
            _still_serves(ops)
            assert os.sched_getaffinity(tid) == {cpu}
            assert os.sched_getaffinity(0) == {cpu}
        finally:
            os.sched_setaffinity(0, own)
