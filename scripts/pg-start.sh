#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on 127.0.0.1 and print its URL (for the tests).
set -euo pipefail
INITDB=$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)
PGBIN=$(dirname "$INITDB")
DIR=${PROVISOR_PG_DIR:-/tmp/provisor-pg}
PORT=${PROVISOR_PG_PORT:-55432}
RUNAS=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  RUNAS=(runuser -u postgres --)
fi
if [ -f "$DIR/postmaster.pid" ]; then
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DIR" stop -m immediate >/dev/null 2>&1 || true
fi
rm -rf "$DIR"; mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
"${RUNAS[@]}" "$PGBIN/initdb" -D "$DIR" -U provisor --auth=trust -E UTF8 >/tmp/provisor-pg-init.log 2>&1
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off -c max_connections=300" \
  start >/dev/null
echo "postgresql+asyncpg://provisor@127.0.0.1:$PORT/postgres"
