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
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || need+=(chromium)  # console browser tests
command -v firefox-esr >/dev/null || [ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)  # tests/console/test_firefox.py
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${need[*]}"
  # the packages' own services (nginx on :80, a broker, a database) are not started: the
  # tests start their own on 127.0.0.1 (policy-rc.d 101 = "not now"), only during this install
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    policy=/usr/sbin/policy-rc.d
  fi
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/tmp/provisor-apt.log 2>&1 \
    || { echo "apt-get install failed; see /tmp/provisor-apt.log"; tail -5 /tmp/provisor-apt.log; }
  [ -n "$policy" ] && rm -f "$policy"
fi
# promtool (tests/ops/test_dashboard.py) is in Debian's prometheus package, whose install
# would start a Prometheus server on all addresses: its files are unpacked into .venv instead
PROMTOOL=.venv/opt/prometheus/usr/bin/promtool
if ! command -v promtool >/dev/null && [ ! -x "$PROMTOOL" ] && command -v apt-get >/dev/null; then
  echo "unpacking Debian's prometheus package for promtool"
  deb=$(mktemp -d)
  (cd "$deb" && { apt-get download prometheus || { apt-get update -qq && apt-get download prometheus; }; } \
    && mkdir -p "$OLDPWD/.venv/opt/prometheus" && dpkg-deb -x prometheus_*.deb "$OLDPWD/.venv/opt/prometheus") >/tmp/provisor-promtool.log 2>&1 \
    || { echo "promtool unpack failed; see /tmp/provisor-promtool.log"; tail -5 /tmp/provisor-promtool.log; }
  rm -rf "$deb"
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
