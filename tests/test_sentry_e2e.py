"""A busybox script doing file and /proc work in a real container: under the
sentry (runsc-py run) the output must equal runc's, line for line."""

from __future__ import annotations


SCRIPT = r"""
cd /tmp
mkdir -p a/b/c && echo mkdir-ok
touch a/f && echo touch-ok
echo hello > a/f
mv a/f a/g && echo mv-ok
ln a/g a/hard && echo ln-ok
ln -s g a/soft && echo ln-s-ok
ln -s /etc/passwd a/abs && echo ln-abs-ok
readlink a/soft
cat a/soft
head -1 a/abs
chmod 640 a/g && stat -c '%a %h %s %F' a/g
stat -c '%F' a/soft
rm a/hard && echo rm-ok
rmdir a/b/c && echo rmdir-ok
rmdir a 2>/dev/null || echo rmdir-nonempty
mkfifo a/p && stat -c '%F' a/p
touch -d '2001-02-03 04:05:06' a/g && stat -c '%y' a/g
ls a
grep '^Name:' /proc/self/status
grep -c '^Pid:' /proc/self/status
readlink /proc/self/exe
ls -l /proc/self/fd/ 2>/dev/null | awk 'NR>1 && $9 == 1 {print $1, $9, $10, $11}' | sed 's/:\[[0-9]*\]//' | sort
cat /proc/self/fd/0 </etc/hostname >/dev/null && echo fd0-ok
cd /proc && grep '^Name:' self/status
cd /tmp && rm -r a && echo cleanup-ok
ls /tmp
"""


def test_busybox_file_script_matches_runc(runtime, bundle) -> None:  # type: ignore[no-untyped-def]
    b = bundle(SCRIPT, config={"root": {"readonly": False}})
    r = runtime.run_container(b)
    assert r.returncode == 0, str(r)
    out = r.stdout.splitlines()
    expected = [
        "mkdir-ok", "touch-ok", "mv-ok", "ln-ok", "ln-s-ok", "ln-abs-ok", "g", "hello",
        "root:x:0:0:root:/root:/bin/sh", "640 2 6 regular file", "symbolic link", "rm-ok",
        "rmdir-ok", "rmdir-nonempty", "fifo", "2001-02-03 04:05:06.000000000 +0000",
        "abs", "b", "g", "p", "soft", "Name:\tgrep", "1", "/bin/busybox",
        "l-wx------ 1 -> pipe",
        "fd0-ok", "Name:\tgrep", "cleanup-ok",
    ]
    # Checked against runc (RUNSC_PY_TEST_RUNTIME=/usr/sbin/runc).
    assert out == expected, str(r)

