#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coil-echo --udp on the socket backends: thousands of datagrams of 1..1472
# bytes and some up to 8 KiB (loopback MTU), every echoed byte compared, on
# 1 and 2 loops; datagrams above --max-datagram are dropped and counted.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init udp_echo "$@"
UDP_INTEGRITY=${COIL_UDP_INTEGRITY:-}
[ -x "$UDP_INTEGRITY" ] || fail "COIL_UDP_INTEGRITY is not an executable: '$UDP_INTEGRITY'"

run_udp() {
	local label=$1 rc=0 out
	shift
	echo "== $label: udp-integrity $*"
	out=$(timeout -k 5 60 "$UDP_INTEGRITY" --addr 127.0.0.1 --port "$SERVER_PORT" \
		--timeout 40 "$@") || rc=$?
	echo "$out"
	check_server_alive
	check_server_log
	[ "$rc" -eq 0 ] || fail "$label: udp-integrity exited with status $rc"
	case $out in
	*" mismatched=0 missing=0 errors=0 "*) ;;
	*) fail "$label: unexpected summary: $out" ;;
	esac
}

for cores in 1 2; do
	COIL_STATS=1 start_server --udp --cores "$cores"
	run_udp "$cores loop(s), 1..1472 B" --count 5000 --window 32 --seed "$cores"
	run_udp "$cores loop(s), with 8 KiB" --count 2000 --big 300 --window 16 --seed 7
	stop_server
	grep -E 'udp [0-9]+: rx' "$SERVER_LOG"
	rx=$(awk '/udp [0-9]+: rx/ { for (i = 1; i < NF; i++) if ($i == "rx") n += $(i + 1) } END { print n + 0 }' "$SERVER_LOG")
	tx=$(awk '/udp [0-9]+: rx/ { for (i = 1; i < NF; i++) if ($i == "tx") n += $(i + 1) } END { print n + 0 }' "$SERVER_LOG")
	[ "$rx" -ge 7300 ] || fail "server counted $rx datagrams received, want >= 7300"
	[ "$rx" = "$tx" ] || fail "server received $rx datagrams but sent $tx"
done

# 8 receive buffers against 32 datagrams in flight: the io_uring
# multishot recvmsg runs the ring dry (-ENOBUFS) and is re-armed; epoll
# reads 8 at a time. What waits stays in the socket's receive queue (up
# to its size: beyond, the kernel drops and udp-integrity resends); every
# echoed byte must still be right.
COIL_STATS=1 start_server --udp --cores 1 --bufs 8
run_udp "8 receive buffers" --count 3000 --big 100 --window 32 --seed 9
stop_server

# Larger than the service's max_datagram (9216 by default): dropped and
# counted, the server goes on.
COIL_STATS=1 start_server --udp --cores 1
/usr/bin/python3 - "$SERVER_PORT" <<'PY' || fail "oversized datagram check"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
port = int(sys.argv[1])
s.sendto(b"a" * 9217, ("127.0.0.1", port))
s.sendto(b"b" * 9216, ("127.0.0.1", port))
data, _ = s.recvfrom(65536)
assert data == b"b" * 9216, ("wrong echo", len(data))
try:
    data, _ = s.recvfrom(65536)
    raise SystemExit("an oversized datagram was echoed (%d B)" % len(data))
except socket.timeout:
    pass
print("oversized datagram dropped, the next one echoed")
PY
stop_server
grep -q 'rx_dropped 1,' "$SERVER_LOG" || fail "the oversized datagram was not counted as dropped"
echo "PASS: udp_echo"
