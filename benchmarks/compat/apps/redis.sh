#!/bin/sh
# redis-server daemonized (epoll event loop), then redis-cli over loopback.
set -eu
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --dir /tmp --logfile /tmp/redis.log
i=0; until redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG; do
  i=$((i+1)); if [ $i -ge 50 ]; then cat /tmp/redis.log; exit 1; fi; sleep 0.1; done
test "$(redis-cli -h 127.0.0.1 set greeting hello)" = OK
test "$(redis-cli -h 127.0.0.1 get greeting)" = hello
redis-cli -h 127.0.0.1 incr counter >/dev/null
test "$(redis-cli -h 127.0.0.1 incr counter)" = 2
redis-cli -h 127.0.0.1 rpush l a b c >/dev/null
test "$(redis-cli -h 127.0.0.1 lrange l 0 -1 | tr '\n' ,)" = "a,b,c,"
test "$(redis-cli -h 127.0.0.1 bgsave)" = "Background saving started"
redis-cli -h 127.0.0.1 shutdown nosave || true
echo OK
