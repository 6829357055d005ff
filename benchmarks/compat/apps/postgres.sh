#!/bin/sh
# PostgreSQL as its package starts it: pg_ctlcluster (the init script's way;
# it switches to the postgres user itself), queries through psql as the
# postgres user (setpriv: no PAM, so a PAM failure does not hide the result).
set -eu
pg_lsclusters
pg_lsclusters -h | grep -q '^15 *main' || pg_createcluster 15 main
pg_ctlcluster 15 main start
q() { setpriv --reuid=postgres --regid=postgres --init-groups psql -X -v ON_ERROR_STOP=1 -At -c "$1"; }
q "CREATE TABLE t (id serial PRIMARY KEY, name text NOT NULL)"
q "INSERT INTO t (name) SELECT 'row' || g FROM generate_series(1, 1000) g"
test "$(q 'SELECT count(*) FROM t')" = 1000
test "$(q "SELECT name FROM t WHERE id = 42")" = row42
q "CREATE INDEX ON t (name)"
q "VACUUM ANALYZE t"
pg_ctlcluster 15 main stop
echo OK
