#!/bin/sh
# sqlite3 CLI and Python's sqlite3 on one database file (WAL, locking).
set -eu
db=/tmp/compat.db
sqlite3 "$db" 'PRAGMA journal_mode=WAL; CREATE TABLE t(a INTEGER, b TEXT);'
sqlite3 "$db" "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<5000) INSERT INTO t SELECT x, 'v'||x FROM c;"
test "$(sqlite3 "$db" 'SELECT count(*), sum(a) FROM t')" = "5000|12502500"
python3 - "$db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("CREATE INDEX i ON t(b)")
assert c.execute("SELECT a FROM t WHERE b='v77'").fetchone() == (77,)
with c:
    c.executemany("INSERT INTO t VALUES (?, ?)", [(i, "p") for i in range(100)])
assert c.execute("SELECT count(*) FROM t WHERE b='p'").fetchone() == (100,)
print("python sqlite3", sqlite3.sqlite_version)
PY
sqlite3 "$db" 'PRAGMA integrity_check' | grep -qx ok
echo OK
