#!/bin/sh
# tar + xz with permissions and ownership: create files of several modes and
# owners, archive them, extract as root (ownership kept), compare stat lines.
set -eu
src=/tmp/src; mkdir -p $src/dir
echo a > $src/plain; chmod 0644 $src/plain
echo b > $src/secret; chmod 0600 $src/secret; chown 1000:1000 $src/secret
echo c > $src/setuid; chmod 4755 $src/setuid
echo d > $src/dir/owned; chown 33:33 $src/dir/owned; chmod 0640 $src/dir/owned
chmod 2775 $src/dir; chown 0:100 $src/dir
ln -s plain $src/link
mkfifo $src/fifo
touch -d '2001-02-03 04:05:06' $src/plain
tar -C $src -cpf - . | xz -T2 -6 > /tmp/a.tar.xz
xz -t /tmp/a.tar.xz
mkdir /tmp/dst
xz -dc /tmp/a.tar.xz | tar -C /tmp/dst -xpf - --same-owner
(cd $src && find . -exec stat -c '%n %a %u %g %F %s' {} + | sort) > /tmp/want
(cd /tmp/dst && find . -exec stat -c '%n %a %u %g %F %s' {} + | sort) > /tmp/got
diff -u /tmp/want /tmp/got
test "$(stat -c %Y /tmp/dst/plain)" = "$(stat -c %Y $src/plain)"
tar -tvJf /tmp/a.tar.xz | grep -q 'secret'
echo OK
