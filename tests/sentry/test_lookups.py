"""The lookup cache's own rules (sentry/lookups.py), on real fds.

The containers' view (the sandbox's changes seen, the host's not) is in
tests/test_gofer.py; here: what an entry is, when it stops being one, and
that only its owner thread's calls close its fds.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from sentry.lookups import (ADDS_NAMES, KEEPS_TREE, MAX_ENTRIES, REPORTS_ITSELF, LookupCache,
                            TreeEpoch)
from sentry.lookups import ADDS, CHANGES, REPORTS
from sentry.supervisor import build_dispatch, handler_names


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as e:
        assert e.errno == errno.EBADF
        return False
    return True


def _o_path(p: Path) -> int:
    return os.open(p, os.O_PATH | os.O_CLOEXEC)


def test_a_hit_is_the_cached_fd_itself_until_the_tree_changes(tmp_path: Path) -> None:
    epoch = TreeEpoch()
    cache = LookupCache(epoch, os.stat(tmp_path).st_dev)
    key = (b"/f", os.O_PATH, ("creds",))
    (tmp_path / "f").write_text("x")
    fd = _o_path(tmp_path / "f")
    cache.put(key, fd, cache.since())
    os.close(fd)  # the cache holds its own copy
    hit = cache.get(key)
    assert hit is not None and hit >= 0 and _fd_open(hit)
    assert os.fstat(hit).st_ino == os.stat(tmp_path / "f").st_ino
    assert cache.get(key) == hit  # lent again, never duplicated
    assert not os.get_inheritable(hit)
    assert cache.get((b"/f", os.O_PATH, ("other creds",))) is None

    epoch.bump()  # another thread's rename, say
    assert cache.get(key) is None
    assert not _fd_open(hit)  # closed by its owner, at its own next lookup


def test_enoent_is_kept_and_other_errors_are_not(tmp_path: Path) -> None:
    epoch = TreeEpoch()
    cache = LookupCache(epoch, 0)
    cache.put((b"/missing",), -errno.ENOENT, cache.since())
    cache.put((b"/denied",), -errno.EACCES, cache.since())
    assert cache.get((b"/missing",)) == -errno.ENOENT
    assert cache.get((b"/denied",)) is None


def test_a_lookup_in_flight_when_the_tree_changed_is_not_entered(tmp_path: Path) -> None:
    epoch = TreeEpoch()
    cache = LookupCache(epoch, 0)
    since = cache.since()
    fd = _o_path(tmp_path)
    epoch.bump()  # the tree changed while the lookup was resolving
    cache.put((b"/",), fd, since)
    cache.put((b"/gone",), -errno.ENOENT, since)
    assert cache.get((b"/",)) is None
    assert cache.get((b"/gone",)) is None
    os.close(fd)


def test_the_cache_holds_at_most_max_entries_fds(tmp_path: Path) -> None:
    epoch = TreeEpoch()
    cache = LookupCache(epoch, 0)
    fd = _o_path(tmp_path)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(MAX_ENTRIES * 2 + 3):
        cache.put((b"/%d" % i,), fd, cache.since())
    assert len(os.listdir("/proc/self/fd")) - before <= MAX_ENTRIES
    cache.close()
    assert len(os.listdir("/proc/self/fd")) == before
    os.close(fd)


def test_a_name_added_makes_only_the_kept_enoents_stale(tmp_path: Path) -> None:
    """mkdir, creates, links... fail rather than replace a name: what was
    found is still found, only what was missing may now exist."""
    epoch = TreeEpoch()
    cache = LookupCache(epoch, 0)
    fd = _o_path(tmp_path)
    cache.put((b"/found",), fd, cache.since())
    cache.put((b"/missing",), -errno.ENOENT, cache.since())
    in_flight = cache.since()
    epoch.names_added()
    cache.put((b"/late",), -errno.ENOENT, in_flight)  # resolved before the add: not kept
    cache.put((b"/late-found",), fd, in_flight)       # a found object stays found
    assert cache.get((b"/missing",)) is None
    assert cache.get((b"/late",)) is None
    assert cache.get((b"/found",)) is not None
    assert cache.get((b"/late-found",)) is not None
    epoch.bump()  # a rename, an unlink, a chmod: everything goes
    assert cache.get((b"/found",)) is None
    os.close(fd)


def test_every_listed_handler_exists() -> None:
    """A misspelt name would silently bump the epoch (KEEPS_TREE) or, worse,
    not be treated as adding names: every entry must name a real handler."""
    from sentry.policy import PolicyOptions
    named = set()
    for opts in (PolicyOptions(), PolicyOptions(uname_release="4.4.0")):  # handlers options add
        named |= set(handler_names(build_dispatch(opts)).values())
    assert KEEPS_TREE <= named, KEEPS_TREE - named
    assert ADDS_NAMES <= named, ADDS_NAMES - named
    assert REPORTS_ITSELF <= named, REPORTS_ITSELF - named
    assert not KEEPS_TREE & ADDS_NAMES and not REPORTS_ITSELF & (KEEPS_TREE | ADDS_NAMES)


def test_a_file_removed_makes_only_lookups_of_non_directories_stale(tmp_path: Path) -> None:
    """A name that is neither a directory nor a symlink can only be the last
    step of a resolution: directory lookups and missing names stay."""
    epoch = TreeEpoch()
    cache = LookupCache(epoch, 0)
    (tmp_path / "f").write_text("x")
    dfd, ffd = _o_path(tmp_path), _o_path(tmp_path / "f")
    cache.put((b"/d",), dfd, cache.since(), is_dir=True)
    cache.put((b"/f",), ffd, cache.since())
    cache.put((b"/missing",), -errno.ENOENT, cache.since())
    in_flight = cache.since()
    epoch.begin()  # the unlink's call
    epoch.file_removed(epoch.alone())
    epoch.end(REPORTS)
    cache.put((b"/late-f",), ffd, in_flight)                # maybe the removed one: not kept
    cache.put((b"/late-d",), dfd, in_flight, is_dir=True)   # a directory is kept
    assert cache.get((b"/f",)) is None
    assert cache.get((b"/late-f",)) is None
    assert cache.get((b"/d",)) is not None
    assert cache.get((b"/late-d",)) is not None
    assert cache.get((b"/missing",)) == -errno.ENOENT
    os.close(dfd)
    os.close(ffd)


def test_a_file_removed_while_another_change_ran_counts_as_any_change() -> None:
    """Another tree-changing call in progress between the unlink's lstat and
    the unlink may have put a symlink or a directory at that name."""
    epoch = TreeEpoch()
    epoch.begin()               # the unlink
    mark = epoch.alone()
    epoch.begin()               # a rename starts meanwhile...
    epoch.file_removed(mark)
    epoch.end(REPORTS)
    assert epoch.removed == 0 and epoch.value == 1
    epoch.end(CHANGES)          # ...and counts itself when it ends
    assert epoch.value == 2

    epoch.begin()               # a rename in progress when the unlink starts
    epoch.begin()
    mark = epoch.alone()
    assert mark is None
    epoch.file_removed(mark)
    epoch.end(REPORTS)
    epoch.end(ADDS)
    assert epoch.removed == 0 and epoch.value == 3 and epoch.added == 1

    epoch.begin()               # a rename that started and ended in between
    mark = epoch.alone()
    epoch.begin()
    epoch.end(CHANGES)
    epoch.file_removed(mark)
    epoch.end(REPORTS)
    assert epoch.removed == 0 and epoch.value == 5


def test_a_removal_during_a_put_that_empties_the_cache_is_still_applied(tmp_path: Path) -> None:
    """put() may drop everything (full cache) and read the epoch again: a
    file removed in between must still drop the entry it is entering."""
    epoch = TreeEpoch()
    cache = LookupCache(epoch, 0)
    fd = _o_path(tmp_path)
    for i in range(MAX_ENTRIES):
        cache.put((b"/%d" % i,), fd, cache.since())
    since = cache.since()
    drop_all = cache._drop_all

    def removal_meanwhile() -> None:
        epoch.begin()
        epoch.file_removed(epoch.alone())  # another thread's unlink lands here
        epoch.end(REPORTS)
        drop_all()

    cache._drop_all = removal_meanwhile  # type: ignore[method-assign]
    cache.put((b"/f",), fd, since)       # a file resolved before that unlink
    cache._drop_all = drop_all           # type: ignore[method-assign]
    assert cache.get((b"/f",)) is None
    cache.close()
    os.close(fd)


def test_out_of_fds_is_not_kept_and_not_an_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    epoch = TreeEpoch()
    cache = LookupCache(epoch, 0)
    fd = _o_path(tmp_path)

    def emfile(_fd: int) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr("sentry.lookups.os.dup", emfile)
    cache.put((b"/d",), fd, cache.since(), is_dir=True)
    monkeypatch.undo()
    assert cache.get((b"/d",)) is None
    os.close(fd)
