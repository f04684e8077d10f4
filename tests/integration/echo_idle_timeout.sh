#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# --idle-timeout: a connection accepted after the server slept for longer
# than the timeout still echoes (regression: io_uring callbacks once saw the
# clock from before the sleep and closed it at once), and a connection is
# closed about one timeout after its last input, not before.
#
# usage: echo_idle_timeout.sh <coil-echo> <echo-integrity> <idle-conns>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lib_init echo_idle_timeout "$@"

start_server --cores 1 --poll never --idle-timeout 1000
sleep 1.5   # the loop sleeps longer than the timeout
OUT=$(/usr/bin/python3 - "$SERVER_PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
time.sleep(0.5)
s.sendall(b"ping")
s.settimeout(5)
echo = s.recv(16)
t0 = time.monotonic()
s.sendall(b"more")           # activity moves the deadline
s.recv(16)
eof = s.recv(16)
print(echo.decode(), repr(eof), round(time.monotonic() - t0, 2))
PY
) || fail "client failed: $OUT"
read -r ECHO EOF SECS <<<"$OUT"
[ "$ECHO" = ping ] || fail "no echo on a connection accepted after an idle sleep (got '$ECHO')"
[ "$EOF" = "b''" ] || fail "expected the server to close the idle connection, got $EOF"
awk -v s="$SECS" 'BEGIN { exit !(s >= 0.9 && s <= 2.5) }' ||
	fail "idle connection closed after ${SECS} s, want about 1 s"
echo "echoed after an idle sleep; closed ${SECS} s after the last input"
stop_server
echo "PASS: echo_idle_timeout"
