#!/usr/bin/env bash
# make bench: every benchmark, one table each, on 127.0.0.1 (nginx, wrk, tftp-hpa from Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/sbin/in.tftpd ] || need+=(tftpd-hpa)
command -v atftp >/dev/null || need+=(atftp)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/tmp/provisor-apt.log 2>&1
fi
echo "## HTTP"; .venv/bin/python bench/http_bench.py --seconds "${BENCH_SECONDS:-10}"
echo; echo "## TFTP"; .venv/bin/python bench/tftp_bench.py
echo; echo "## Phone workers"; .venv/bin/python bench/workers_bench.py --seconds "${BENCH_SECONDS:-10}" --rounds 2
echo; echo "## Phone workers: one shared socket or SO_REUSEPORT"; .venv/bin/python bench/socket_bench.py --seconds 5 --rounds 3
echo; echo "## REST API"; .venv/bin/python bench/api_bench.py --devices "${BENCH_DEVICES:-100000}" --seconds "${BENCH_SECONDS:-10}"
echo; echo "## One sequential client, and find by MAC on a store filled while the server runs"
.venv/bin/python bench/store_bench.py --devices "${BENCH_DEVICES:-100000}" --synchronous FULL
.venv/bin/python bench/store_bench.py --creations-only --synchronous NORMAL
