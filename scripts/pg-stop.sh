#!/usr/bin/env bash
# Stop the throw-away PostgreSQL cluster of pg-start.sh.
DIR=${PROVISOR_PG_DIR:-/tmp/provisor-pg}
INITDB=$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)
PGBIN=$(dirname "$INITDB")
RUNAS=()
[ "$(id -u)" = 0 ] && RUNAS=(runuser -u postgres --)
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DIR" stop -m fast >/dev/null 2>&1 || true
