#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# apps/examples/web.c, the twisted.web-style example: two instances, B
# proxying /remote/ to A. Through B: the JSON resource (its own and A's,
# which sees B as the client), the timer resource (answers after its delay,
# in order inside a pipeline of two), and a client leaving before the timer
# (B must stay up and answer the next request).
#
# usage: example_web.sh <coil-example-web>
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
httpd_init example_web "$@"
need_tool curl curl
EXAMPLE=$COIL_HTTPD

start_named_server coil-example-web "$EXAMPLE"
APORT=$SERVER_PORT
BG_PIDS+=("$SERVER_PID")
SERVER_PID=
start_named_server coil-example-web "$EXAMPLE" --upstream "127.0.0.1:$APORT"
B=http://127.0.0.1:$SERVER_PORT

out=$(ccurl -D "$TMP_DIR/h" "$B/hello")
[ "$out" = '{"hello":"world","you":"127.0.0.1"}' ] || fail "GET /hello: '$out'"
[ "$(header Content-Type "$TMP_DIR/h")" = application/json ] || fail "GET /hello: not JSON"
[ "$(header Cache-Control "$TMP_DIR/h")" = no-store ] || fail "GET /hello: no Cache-Control"
out=$(ccurl -D "$TMP_DIR/h" "$B/remote/hello")
[ "$out" = '{"hello":"world","you":"127.0.0.1"}' ] || fail "GET /remote/hello: '$out'"
[ "$(header Via "$TMP_DIR/h")" = "1.1 coil" ] || fail "GET /remote/hello: no Via"

t0=$(now_ms)
out=$(ccurl "$B/later?ms=300")
t=$(($(now_ms) - t0))
[ "$out" = later ] || fail "GET /later: '$out'"
[ "$t" -ge 300 ] || fail "GET /later answered after $t ms (want >= 300)"
echo "GET /later?ms=300 answered after $t ms"

# two pipelined on one connection: answers in request order
out=$("$PY" - "$SERVER_PORT" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /later?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"}"):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print("later-first" if data.find(b"later\n") < data.find(b"hello") else "wrong-order")
PYEOF
)
[ "$out" = later-first ] || fail "pipelined answers out of order"

# a client that leaves before its timer: cancelled, the server goes on
timeout 1 curl -s "$B/later?ms=3000" >/dev/null 2>&1 || true
out=$(ccurl "$B/later?ms=10")
[ "$out" = later ] || fail "GET /later after a cancelled one: '$out'"
httpd_stop
echo "PASS: example_web"
