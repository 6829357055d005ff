#!/bin/sh
# git: init, several commits, a branch and merge, gc, fsck, a local clone.
set -eu
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
d=/tmp/repo; git init -q -b main $d; cd $d
for i in 1 2 3 4 5; do seq 1 $((i * 200)) > f$i.txt; git add f$i.txt; git commit -q -m "commit $i"; done
git checkout -q -b topic; echo topic > topic.txt; git add topic.txt; git commit -q -m topic
git checkout -q main; git merge -q --no-edit topic
test "$(git rev-list --count HEAD)" = 6
git gc -q --aggressive
git fsck --full --strict
git clone -q $d /tmp/clone; test -f /tmp/clone/topic.txt
echo OK
