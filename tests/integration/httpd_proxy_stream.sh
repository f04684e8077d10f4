#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coil-httpd --proxy streams request bodies: 256 MiB uploaded through the
# proxy, with Content-Length and chunked (uneven chunks, re-chunked by the
# proxy), to a Python upstream (proxy_stream.py) that stalls 2 s after the
# first MiB and then checksums what it reads. The checksums match, and the
# proxy's peak RSS (VmHWM) stays under 64 MiB (160 MiB under ASan, whose
# shadow and quarantine inflate it): the body flows with back-pressure
# instead of being collected.
#
# usage: httpd_proxy_stream.sh <coil-httpd>
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
httpd_init httpd_proxy_stream "$@"

HERE=$(dirname "$0")
MIB=${COIL_PROXY_STREAM_MIB:-256}
MAX_HWM=$((64 * 1024))
[ "$SANITIZED" = 1 ] && MAX_HWM=$((160 * 1024))

"$PY" "$HERE/proxy_stream.py" upstream "$TMP_DIR/up.port" </dev/null &
BG_PIDS+=($!)
wait_for 10 test -s "$TMP_DIR/up.port" || fail "the upstream did not start"
UPORT=$(cat "$TMP_DIR/up.port")

httpd_start --cores 1 --max-body 1G --cache-size 0 \
	--proxy "/up/=http://127.0.0.1:$UPORT"
timeout -k 5 150 "$PY" "$HERE/proxy_stream.py" client "$SERVER_PORT" \
	"$SERVER_PID" "$MIB" "$MAX_HWM" ||
	fail "proxy_stream.py client checks failed (see above)"
httpd_stop
echo "PASS: httpd_proxy_stream"
