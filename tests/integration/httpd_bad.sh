#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bad and abusive clients against coil-httpd (httpd_client.py):
#  - malformed requests (missing Host, CL + TE, bad chunk sizes, obs-fold,
#    whitespace before the colon, a 16 KiB header -> 431, a 16 KiB target
#    -> 414, ...) each get their status and a closed connection, and the
#    request pipelined after them is never answered;
#  - slowloris (a byte per 100 ms) is cut off by --header-timeout, a silent
#    connection and an idle keep-alive one by the timeouts, a busy
#    keep-alive connection is not;
#  - while bad requests, garbage, resets, aborted downloads, unread floods
#    and slowloris clients hammer one loop (all together, then the unread
#    pipelined floods alone), a good client on the same loop keeps getting
#    correct answers within a second; the server never crashes.
#
# usage: httpd_bad.sh <coil-httpd>
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
httpd_init httpd_bad "$@"

HT=1000 KT=1500
SLACK=1.5 MAX_LAT=1.0
[ "$SANITIZED" = 1 ] && SLACK=3 MAX_LAT=3.0
httpd_start --cores 1 --header-timeout $HT --keepalive-timeout $KT
# All three run, so that one report shows every problem.
failed=()
pyclient_try bad || failed+=(bad)
pyclient_try timeouts --header-timeout-ms $HT --keepalive-timeout-ms $KT --slack $SLACK ||
	failed+=(timeouts)
# Lingering close: error responses and a large response to a slow reader
# survive a client that keeps sending after the server closed.
pyclient_try linger || failed+=(linger)
# All abusive kinds together but the unread flood (see below).
pyclient_try hammer --seconds 8 --max-latency $MAX_LAT --seed "$RANDOM" \
	--kinds bad-request,garbage,reset-mid-request,abort-download,slowloris-x8 ||
	failed+=(hammer)
# The heaviest abuser alone, at full rate: connections that pipeline 2000
# requests, never read and reset. Their work must not starve (or time
# out) the good client's keep-alive connection on the same loop.
pyclient_try hammer --seconds 4 --max-latency $MAX_LAT --kinds flood-no-read --seed "$RANDOM" ||
	failed+=(hammer-flood)
# Everything the hammer opened is gone again (cut off or closed).
gone() { [ "$(server_established)" -eq 0 ]; }
wait_for 10 gone || fail "$(server_established) connections still established 10 s after the hammer"
ccurl -o "$TMP_DIR/p" "$BASE/plaintext" || fail "GET /plaintext after the hammer failed"
expect_eq "GET /plaintext after the hammer" "$(cat "$TMP_DIR/p")" "Hello, World!"
httpd_stop
((${#failed[@]} == 0)) || fail "httpd_client.py checks failed: ${failed[*]} (see above)"
echo "PASS: httpd_bad"
