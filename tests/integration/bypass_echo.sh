#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Kernel bypass end to end: coil-load --dpdk against coil-echo --dpdk over a
# kernel-free link (net_memif between the two processes, hugepages reserved
# and given back by scripts/tools/bypass-link). No kernel TCP anywhere: both
# ends run coil's own stack.
#
#  1. coil-load echo --verify, messages of 1 B to 64 KiB on 1 and on 500
#     connections: every echoed byte compared, zero mismatches, every
#     connection established, no errors;
#  2. the server killed (SIGKILL) mid-load: coil-load ends on its own at the
#     end of its run, exit status 1, with the failure in its figures
#     (timeouts / connect errors), not a hang;
#  2b. with no server, coil-load ends at start (status 2, the reason); with
#     a peer that does not answer (memif), it waits --link-wait for the
#     link, then ends the same way (no run on a link that is not up);
#  3. the client killed mid-load: the server carries on (a new coil-load run
#     over a new link session verifies clean) and exits 0 on SIGTERM.
# Each coil-load run is bounded by `timeout`; the whole test takes ~40 s.
#
# COIL_BYPASS_KIND=vhost runs the same over net_vhost (the vhost-user
# backend a hypervisor runs) + net_virtio_user (the virtio PMD a VM's guest
# runs) instead of memif, on fewer sizes (COIL_BYPASS_SIZES).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
KIND=${COIL_BYPASS_KIND:-memif}
lib_init "bypass_echo-$KIND" "$@"
. "$(dirname "$0")/bypass_lib.sh"
bypass_up "$KIND"
SIZES=${COIL_BYPASS_SIZES:-1 100 1460 1461 4096 65536}
PORT=7000
TARGET=$BYPASS_SERVER_IP:$PORT

bypass_server coil-echo "$COIL_ECHO" "$PORT" --drain-ms 2000

echo "== 1. --verify, 1 B .. 64 KiB, 1 and 500 connections"
for size in $SIZES; do
	for conns in 1 500; do
		bypass_load "echo-$size-$conns" 20 echo "$TARGET" -c "$conns" --size "$size" \
			--verify -d 1s --timeout 3000
		check_clean "echo-$size-$conns" "$conns"
		check_server_alive
	done
done
# several messages in flight per connection (the send queue, not one at a time)
bypass_load echo-depth 20 echo "$TARGET" -c 50 --size 3000 --depth 8 --verify -d 1s
check_clean echo-depth 50

echo "== 2. the server killed mid-load"
t0=$(now_ms)
bypass_load_bg killed 40 echo "$TARGET" -c 50 --size 512 --verify -d 6s --timeout 1000
# The run starts once the link is up (EAL start-up takes seconds on a
# loaded machine): kill the server 2 s into it, not 2 s after the launch.
wait_for 30 grep -q "link up" "$TMP_DIR/killed.err" ||
	fail "coil-load's link did not come up within 30 s"
sleep 2
check_server_alive
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
rc=0
wait "$LOAD_PID" || rc=$?
BG_PIDS=()
cat "$TMP_DIR/killed.out"
sed 's/^/coil-load stderr: /' "$TMP_DIR/killed.err" | grep -v 'EAL: \|TELEMETRY' | tail -20
echo "coil-load ended after $(($(now_ms) - t0)) ms with status $rc"
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "coil-load hung after the server died"
[ "$rc" -eq 1 ] || fail "coil-load exited $rc with its server gone (want 1: errors)"
lost=$(json_get "$TMP_DIR/killed.json" 'j["errors"]["timeout"] + j["errors"]["connect"] + j["errors"]["read"]')
[ "$lost" -gt 0 ] || fail "coil-load reported no timeout/connect/read errors with its server gone"
grep -q "errors .*timeout [1-9]" "$TMP_DIR/killed.out" ||
	grep -q "errors *connect [1-9]" "$TMP_DIR/killed.out" ||
	fail "the text report does not show the failure"

echo "== 2b. no peer: coil-load ends at start with the reason"
bypass_load nopeer 20 echo "$TARGET" -c 5 -d 1s --link-wait 1500
echo "coil-load without a server: status $LOAD_RC: $(grep -v 'EAL:\|TELEMETRY' "$TMP_DIR/nopeer.err" | tail -n 1)"
[ "$LOAD_RC" -eq 2 ] || fail "coil-load without a server exited $LOAD_RC (want 2)"
grep -q "cannot create the engine" "$TMP_DIR/nopeer.err" ||
	fail "coil-load without a server did not say why"
# A peer that takes the connection but never brings the link up (a listener
# on the memif socket that says nothing): coil-load gives up after
# --link-wait instead of running on a link that is not up. (A coil-echo
# stopped with SIGSTOP would do the same, but DPDK 22.11's EAL interrupt
# thread panics in that server when it resumes: epoll_ctl on the fd memif
# closed after a send to the departed client, a DPDK defect.)
if [ "$KIND" = memif ]; then
	rm -f "$BYPASS_SOCK"
	python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1]); s.listen(8)
conns = []
end = time.monotonic() + 30
while time.monotonic() < end:
    s.settimeout(0.5)
    try:
        conns.append(s.accept()[0])
    except socket.timeout:
        pass' "$BYPASS_SOCK" &
	SILENT_PID=$!
	BG_PIDS+=("$SILENT_PID")
	until [ -S "$BYPASS_SOCK" ]; do sleep 0.05; done
	t0=$(now_ms)
	bypass_load stalled 20 echo "$TARGET" -c 5 -d 1s --link-wait 1500
	el=$(($(now_ms) - t0))
	kill "$SILENT_PID"; wait "$SILENT_PID" 2>/dev/null || true
	BG_PIDS=()
	echo "coil-load with a silent peer: status $LOAD_RC after $el ms: $(grep -v 'EAL:\|TELEMETRY' "$TMP_DIR/stalled.err" | tail -n 1)"
	[ "$LOAD_RC" -eq 2 ] || fail "coil-load with a silent peer exited $LOAD_RC (want 2)"
	grep -q "link is not up after 1500 ms" "$TMP_DIR/stalled.err" ||
		fail "coil-load with a silent peer did not say why"
	# it waited the whole --link-wait (EAL start-up comes on top)
	[ "$el" -ge 1500 ] || fail "coil-load gave up on the link after $el ms (--link-wait 1500)"
fi

echo "== 3. the client killed mid-load"
bypass_server coil-echo "$COIL_ECHO" "$PORT" --drain-ms 2000
# (no `timeout` wrapper: the SIGKILL must reach coil-load itself; -d bounds it)
"$COIL_LOAD" echo "$TARGET" -c 50 --size 512 --verify -d 20s \
	--quiet --cores "$BYPASS_CLIENT_CPU" --dpdk "$BYPASS_CLIENT_EAL" \
	--ip "$BYPASS_CLIENT_IP/$BYPASS_PREFIX" >/dev/null 2>"$TMP_DIR/victim.err" &
LOAD_PID=$!
BG_PIDS+=("$LOAD_PID")
wait_for 30 grep -q "link up" "$TMP_DIR/victim.err" ||
	fail "coil-load's link did not come up within 30 s"
sleep 2
kill -KILL "$LOAD_PID"
wait "$LOAD_PID" 2>/dev/null || true
BG_PIDS=()
check_server_alive
bypass_load after-kill 20 echo "$TARGET" -c 50 --size 512 --verify -d 1s --timeout 3000
check_clean after-kill 50
bypass_stop_server
echo "PASS: bypass_echo ($KIND)"
