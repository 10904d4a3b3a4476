#!/bin/sh
# Kea run_script hook: send each lease to provisor's /0.2/dev_mgr/dhcpinfo.
#
# In kea-dhcp4.conf:
#   "hooks-libraries": [{
#     "library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_run_script.so",
#     "parameters": { "name": "/usr/local/lib/provisor/provisor-kea-hook.sh", "sync": false }
#   }]
#
# Kea runs this script with the hook point as its first argument and the lease in its
# environment, and nothing else: settings come from provisor-kea-hook.env beside this script
# (shell assignments), e.g.
#   PROVISOR=/opt/provisor/.venv/bin/provisor
#   PROVISOR_URL=http://127.0.0.1:8666
#   PROVISOR_TOKEN_FILE=/etc/provisor/dhcp.token   # a token with the dhcpinfo ACL, mode 0600
PROVISOR=/usr/local/bin/provisor
PROVISOR_URL=http://127.0.0.1:8666
PROVISOR_TOKEN_FILE=/etc/provisor/dhcp.token
conf="$(dirname "$0")/provisor-kea-hook.env"
# shellcheck disable=SC1090
[ -r "$conf" ] && . "$conf"
export PROVISOR_URL PROVISOR_TOKEN_FILE
# $PROVISOR may be a command with arguments (e.g. "python3 -m provisor.cli").
exec $PROVISOR dhcp notify --kea-hook "$1"
