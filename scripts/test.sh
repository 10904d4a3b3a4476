#!/usr/bin/env bash
# Run the whole test suite on SQLite, then again on a real PostgreSQL server started here.
# Installs the Debian tools the tests use when running as root and they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

need=()
command -v tftp >/dev/null || need+=(tftp-hpa)
command -v atftp >/dev/null || need+=(atftp)
[ -x /usr/sbin/in.tftpd ] || need+=(tftpd-hpa)
command -v initdb >/dev/null || [ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v openssl >/dev/null || need+=(openssl)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v kea-dhcp4 >/dev/null || [ -x /usr/sbin/kea-dhcp4 ] || need+=(kea-dhcp4-server)
command -v dhcpd >/dev/null || [ -x /usr/sbin/dhcpd ] || need+=(isc-dhcp-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
command -v dhclient >/dev/null || [ -x /usr/sbin/dhclient ] || need+=(isc-dhcp-client)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || need+=(iproute2)
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || need+=(chromium)  # console browser tests
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${need[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/tmp/provisor-apt.log 2>&1 \
    || { echo "apt-get install failed; see /tmp/provisor-apt.log"; tail -5 /tmp/provisor-apt.log; }
fi

echo "== mypy --strict over src/"
$BIN/mypy

echo "== test suite on SQLite"
$BIN/pytest -q -rs -p no:randomly "$@"

if [ "${PROVISOR_SKIP_PG:-0}" = 1 ]; then
  echo "PROVISOR_SKIP_PG=1: PostgreSQL run skipped"
  exit 0
fi
PGURL=$(bash scripts/pg-start.sh) || { echo "could not start PostgreSQL"; exit 1; }
trap 'bash scripts/pg-stop.sh' EXIT
echo "== test suite on PostgreSQL ($PGURL)"
PROVISOR_TEST_DATABASE_URL="$PGURL" $BIN/pytest -q -rs -p no:randomly "$@"
