#!/bin/sh
# nginx as its package runs it: `nginx` with Debian's default config (master
# daemonizes, workers as www-data, epoll), then a page fetched over loopback.
set -eu
nginx -t
nginx
i=0; until [ -s /run/nginx.pid ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done
curl -sS --max-time 10 -o /tmp/page.html -w 'HTTP %{http_code}\n' http://127.0.0.1/
grep -q 'Welcome to nginx' /tmp/page.html
echo 'compat test' > /var/www/html/t.txt
test "$(curl -sS --max-time 10 http://127.0.0.1/t.txt)" = "compat test"
test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 http://127.0.0.1/missing)" = 404
nginx -s quit
i=0; while [ -e /run/nginx.pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
echo OK
