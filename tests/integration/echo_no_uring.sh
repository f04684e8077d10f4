#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# io_uring blocked the way a container blocks it: coil-echo --backend auto
# under a seccomp filter that fails io_uring_setup/enter/register with EPERM
# (no_uring.c, passed in $COIL_NO_URING) must start on epoll, say in one log
# line that it fell back and why, and then echo every byte: waves on the
# default pool, waves with mid-stream resets, and waves on a tiny pool.
#
# usage: echo_no_uring.sh <coil-echo> <echo-integrity> <idle-conns>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lib_init echo_no_uring "$@"
require_nofile 2100
unset COIL_BACKEND # this test picks --backend auto itself

NO_URING=${COIL_NO_URING:-}
if [ -z "$NO_URING" ] || [ ! -x "$NO_URING" ]; then
	fail "COIL_NO_URING is not an executable: '$NO_URING'"
fi
rc=0
"$NO_URING" true || rc=$?
[ "$rc" -eq 77 ] && skip "cannot install a seccomp filter here"
[ "$rc" -eq 0 ] || fail "no-uring true exited with status $rc"

# start_server runs "$COIL_ECHO"; put the filter in front of it. Every exec
# keeps the PID, so SERVER_PID is coil-echo's.
export NO_URING REAL_COIL_ECHO=$COIL_ECHO
COIL_ECHO=$TMP_DIR/coil-echo-no-uring
# shellcheck disable=SC2016 # expanded by the wrapper, from its environment
printf '#!/bin/sh\nexec "$NO_URING" "$REAL_COIL_ECHO" "$@"\n' >"$COIL_ECHO"
chmod +x "$COIL_ECHO"

FALLBACK='^coil-echo: io_uring unavailable \(.+\): falling back to epoll$'

# check_fallback: the server under the filter is on epoll, said so once,
# and named the reason (EPERM from io_uring_setup).
check_fallback() {
	local n line
	check_backend epoll
	n=$(grep -c -E "$FALLBACK" "$SERVER_LOG" || true)
	[ "$n" -eq 1 ] || fail "want exactly one fallback line, found $n"
	line=$(grep -E "$FALLBACK" "$SERVER_LOG")
	echo "log: $line"
	case $line in
	*"io_uring_setup: Operation not permitted"*) ;;
	*) fail "the fallback line does not name EPERM from io_uring_setup: $line" ;;
	esac
	[ "$(awk '/^Seccomp:/ { print $2 }' "/proc/$SERVER_PID/status")" = 2 ] ||
		fail "coil-echo does not run under a seccomp filter"
	if grep -q -E '^coil-echo: loop [0-9]+ on CPU [0-9]+: backend io_uring' "$SERVER_LOG"; then
		fail "a loop started on io_uring"
	fi
}

start_server --cores 2 --backend auto
check_fallback
run_integrity "default pool: 1 conn, 1 B-256 KiB" 30 \
	--conns 1 --waves 5 --msgs 60 --min-size 1 --max-size 262144 --seed 700
run_integrity "default pool: 100 conns, 1 B-256 KiB" 30 \
	--conns 100 --waves 5 --msgs 8 --min-size 1 --max-size 262144 --seed 701
run_integrity "default pool: 2000 conns, 1 B-16 KiB" 30 \
	--conns 2000 --waves 3 --msgs 4 --min-size 1 --max-size 16384 --seed 702
run_integrity "resets: 200 conns, 100 reset mid-stream" 40 \
	--conns 200 --waves 5 --resets 100 --msgs 4 --min-size 1 --max-size 65536 --seed 703
run_integrity "clean wave after resets" 30 \
	--conns 100 --waves 1 --msgs 4 --max-size 65536 --seed 704
stop_server

start_server --cores 2 --backend auto --bufs 16 --buf-size 512
check_fallback
run_integrity "tiny pool: 100 conns, 1 B-256 KiB" 30 \
	--conns 100 --waves 3 --msgs 2 --min-size 1 --max-size 262144 --seed 710
run_integrity "tiny pool: 2000 conns, 1 B-16 KiB" 30 \
	--conns 2000 --waves 3 --msgs 1 --min-size 1 --max-size 16384 --seed 711
stop_server

# Control: without the filter, auto must not fall back where io_uring works
# (the probe must not refuse a good kernel).
COIL_ECHO=$REAL_COIL_ECHO
start_server --cores 1 --backend auto
check_backend auto
if grep -q -E "$FALLBACK" "$SERVER_LOG"; then
	echo "note: io_uring is unavailable here even without the filter:" \
		"$(grep -E "$FALLBACK" "$SERVER_LOG")"
else
	check_backend io_uring
fi
stop_server

echo "PASS: echo_no_uring"
