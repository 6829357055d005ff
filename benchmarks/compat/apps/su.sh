#!/bin/sh
# su and runuser to another user (PAM: pam_limits, pam_env...), useradd.
set -eu
useradd -m -s /bin/sh alice
test "$(su alice -c 'id -un')" = alice
test "$(su - alice -c 'pwd')" = /home/alice
test "$(runuser -u alice -- id -u)" = "$(id -u alice)"
su alice -c 'touch ~/made-by-alice'
test "$(stat -c %U /home/alice/made-by-alice)" = alice
echo OK
