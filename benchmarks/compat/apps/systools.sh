#!/bin/sh
# procps, iproute2, dpkg and friends, each must exit 0 and print something sane.
set -eu
sleep 30 & sp=$!
ps aux | grep -q '[s]leep 30'
ps -eo pid,ppid,user,stat,comm >/dev/null
top -b -n1 | head -5 | grep -q '^top'
free -m | grep -q '^Mem:'
uptime
ip addr show lo | grep -q 'inet 127.0.0.1'
ip route show >/dev/null
ip link show >/dev/null
python3 -m http.server --bind 127.0.0.1 8765 >/dev/null 2>&1 & hp=$!
i=0; until ss -tln | grep -q ':8765' || [ $i -ge 50 ]; do sleep 0.2; i=$((i+1)); done
ss -tln | grep -q '127.0.0.1:8765'
kill $hp
dpkg -l | grep -q '^ii  python3 '
test "$(dpkg -l | grep -c '^ii')" -gt 100
df -h / >/dev/null
mount >/dev/null
id
hostname
kill $sp
echo OK
