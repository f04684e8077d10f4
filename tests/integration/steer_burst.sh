#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bursts of connections under eBPF `least` (issue 17): the program counts a
# connection against a loop the moment it picks it, so a burst that arrives
# before any loop has accepted is still spread. On coil-echo with 2 and 4
# loops (4 share the 2 CPUs here), per-loop placement read back with
# coil-steer stats --json:
#   burst   400 connections at once from one client thread, then 2,000 from
#           4 client processes at once, and 2,000 from one with 4 threads
#           (coil-load): every loop gets at least half of its fair share
#           (before the fix one loop got 399 of 400)
#   waves   4 waves of 400: each opens while the previous one closes; every
#           wave, and what is open after it, is spread the same way
#   drain   a draining loop gets none of a burst; the others share it
#   leak    64 handshakes that never complete (raw SYNs, answered by RST)
#           are counted when steered and written off by the loops' periodic
#           reconcile: nothing stays owed, and the next burst is spread
# Registered once per backend (COIL_BACKEND: io_uring, epoll).
#
# usage: steer_burst.sh <coil-echo> <echo-integrity> <idle-conns>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/steer_lib.sh"
lib_init steer_burst "$@"
steer_require_bpf
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs"

NLOOPS=0
declare -a ACC ACT OWED

# loops_read: ACC[i] (accepted) and ACT[i] (active) of every loop.
loops_read() {
	local out line i=0
	out=$(steer --json stats) || fail "coil-steer stats failed"
	while read -r line; do
		read -r "ACC[i]" "ACT[i]" <<<"$line"
		i=$((i + 1))
	done < <(/usr/bin/python3 -c '
import json, sys
for l in json.load(sys.stdin)["loops"]:
    print(l["accepted"], l["active"])' <<<"$out") || fail "bad stats JSON: $out"
	NLOOPS=$i
}

# loops_owed: OWED[i] = "pending steered" of every loop (coil-steer stats).
loops_owed() {
	local out line i=0
	out=$(steer --json stats) || fail "coil-steer stats failed"
	while read -r line; do
		OWED[i]=$line
		i=$((i + 1))
	done < <(/usr/bin/python3 -c '
import json, sys
for l in json.load(sys.stdin)["loops"]:
    print(l["pending"], l["steered"])' <<<"$out") || fail "bad stats JSON: $out"
}

# burst <tag> <n> <procs>: open n connections at once from procs client
# processes (one thread each, every connect issued before any is proven
# accepted), hold them until burst_release <tag>.
burst() {
	local tag=$1 n=$2 procs=$3 per p deadline pids=()
	per=$((n / procs))
	rm -f "$TMP_DIR/burst.$tag"
	mkfifo "$TMP_DIR/burst.$tag"
	for ((p = 0; p < procs; p++)); do
		timeout -k 5 120 "$IDLE_CONNS" --addr 127.0.0.1 --port "$SERVER_PORT" \
			--conns "$per" --batch "$per" --timeout 60 \
			<"$TMP_DIR/burst.$tag" >"$TMP_DIR/burst.$tag.$p" &
		pids+=($!)
		BG_PIDS+=($!)
	done
	exec {BURST_FD}>"$TMP_DIR/burst.$tag"
	eval "BURST_FD_$tag=$BURST_FD BURST_PIDS_$tag=\"${pids[*]}\""
	deadline=$((SECONDS + 30))
	for ((p = 0; p < procs; p++)); do
		until grep -q -x ready "$TMP_DIR/burst.$tag.$p"; do
			kill -0 "${pids[p]}" 2>/dev/null || fail "idle-conns ($tag.$p) exited before ready"
			[ $SECONDS -ge $deadline ] && fail "idle-conns ($tag.$p) not ready within 30 s"
			sleep 0.02
		done
	done
}

# burst_close <tag>: tell its clients to close; burst_wait <tag>: wait for
# them to finish; burst_release: both.
burst_close() {
	local fd
	eval "fd=\$BURST_FD_$1"
	exec {fd}>&-
}

burst_wait() {
	local pids pid rc
	eval "pids=\$BURST_PIDS_$1"
	for pid in $pids; do
		rc=0
		wait "$pid" || rc=$?
		[ "$rc" -eq 0 ] || fail "idle-conns ($1) exited with status $rc"
	done
}

burst_release() {
	burst_close "$1"
	burst_wait "$1"
}

# check_spread <what> <n> <skip-loop|-1> <counts...>: every loop but skip
# has at least half of its fair share of n.
check_spread() {
	local what=$1 n=$2 skip=$3 i fair min others=0
	shift 3
	local c=("$@")
	for ((i = 0; i < NLOOPS; i++)); do [ "$i" -ne "$skip" ] && others=$((others + 1)); done
	fair=$((n / others))
	min=$((fair / 2))
	echo "$what: ${c[*]} (fair share $fair, want >= $min each)"
	for ((i = 0; i < NLOOPS; i++)); do
		[ "$i" -eq "$skip" ] && continue
		[ "${c[i]}" -ge "$min" ] || fail "$what: loop $i got ${c[i]} of $n (${c[*]})"
	done
}

# deltas <before...>: DELTA[i] = ACC[i] - before[i] after a fresh read.
deltas() {
	local b=("$@") i
	loops_read
	DELTA=()
	for ((i = 0; i < NLOOPS; i++)); do DELTA[i]=$((ACC[i] - b[i])); done
}

# wait_idle: every loop back to 0 active connections.
wait_idle() {
	local deadline=$((SECONDS + 10)) i busy
	while :; do
		loops_read
		busy=0
		for ((i = 0; i < NLOOPS; i++)); do busy=$((busy + ACT[i])); done
		[ "$busy" -eq 0 ] && return 0
		[ $SECONDS -ge $deadline ] && fail "still ${ACT[*]} active after 10 s"
		sleep 0.05
	done
}

# raw_syns <n>: n SYNs from raw sockets to the server; the SYN-ACKs find no
# socket, the kernel answers RST, and the handshakes never complete.
raw_syns() {
	/usr/bin/python3 - "$SERVER_PORT" "$1" <<'PY'
import random, socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
src = dst = socket.inet_aton("127.0.0.1")
for i in range(n):
    sport = 20000 + random.randrange(20000)
    hdr = struct.pack("!HHIIBBHHH", sport, port, random.getrandbits(32), 0,
                      5 << 4, 0x02, 65535, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(hdr))
    hdr = hdr[:16] + struct.pack("!H", csum(pseudo + hdr)) + hdr[18:]
    s.sendto(hdr, ("127.0.0.1", port))
PY
}

for cores in 2 4; do
	echo "===== $cores loops"
	STEER_CORES=$cores steer_start_ebpf --steer least
	loops_read
	[ "$NLOOPS" -eq "$cores" ] || fail "stats show $NLOOPS loops, want $cores"

	echo "== one client thread, 400 connections at once"
	b=("${ACC[@]}")
	burst one 400 1
	deltas "${b[@]}"
	check_spread "burst of 400 (1 thread)" 400 -1 "${DELTA[@]}"
	burst_release one
	wait_idle

	echo "== 4 client processes, 2,000 connections at once"
	b=("${ACC[@]}")
	burst many 2000 4
	deltas "${b[@]}"
	check_spread "burst of 2000 (4 processes)" 2000 -1 "${DELTA[@]}"
	burst_release many
	wait_idle

	if [ -x "${COIL_LOAD:-}" ]; then
		echo "== one client process, 4 threads (coil-load echo), 2,000 connections at once"
		loops_read
		b=("${ACC[@]}")
		rc=0
		timeout -k 5 60 "$COIL_LOAD" echo "127.0.0.1:$SERVER_PORT" -c 2000 -t 4 -d 1 \
			--quiet >"$TMP_DIR/load.out" 2>&1 || rc=$?
		[ "$rc" -eq 0 ] || { cat "$TMP_DIR/load.out"; fail "coil-load echo exited $rc"; }
		deltas "${b[@]}"
		check_spread "burst of 2000 (4 threads)" 2000 -1 "${DELTA[@]}"
		wait_idle
	fi

	echo "== waves: each 400 opens while the previous 400 close"
	b=("${ACC[@]}")
	burst w0 400 1
	for w in 1 2 3 4; do
		loops_read
		b=("${ACC[@]}")
		burst_close "w$((w - 1))"
		burst "w$w" 400 1
		burst_wait "w$((w - 1))"
		deltas "${b[@]}"
		check_spread "wave $w" 400 -1 "${DELTA[@]}"
		check_spread "open after wave $w" 400 -1 "${ACT[@]}"
	done
	burst_release w4
	wait_idle

	echo "== drain: loop 1 draining gets none of a burst"
	steer drain 1
	b=("${ACC[@]}")
	burst d 400 1
	deltas "${b[@]}"
	[ "${DELTA[1]}" -eq 0 ] || fail "draining loop 1 accepted ${DELTA[1]} (${DELTA[*]})"
	check_spread "burst of 400, loop 1 draining" 400 1 "${DELTA[@]}"
	burst_release d
	steer undrain 1
	wait_idle

	echo "== leak: 64 handshakes that never complete"
	loops_owed
	s0=0
	for ((i = 0; i < NLOOPS; i++)); do s0=$((s0 + ${OWED[i]#* })); done
	b=("${ACC[@]}")
	raw_syns 64
	sleep 0.5   # > 2 reconcile periods (100 ms)
	loops_owed
	loops_read
	s1=0 acc=0
	for ((i = 0; i < NLOOPS; i++)); do
		s1=$((s1 + ${OWED[i]#* }))
		acc=$((acc + ACC[i] - b[i]))
	done
	echo "steered $((s1 - s0)) raw SYNs, accepted $acc, still owed: ${OWED[*]% *}"
	[ $((s1 - s0)) -eq 64 ] || fail "the program counted $((s1 - s0)) of 64 SYNs"
	[ "$acc" -eq 0 ] || fail "$acc raw SYNs became connections"
	for ((i = 0; i < NLOOPS; i++)); do
		[ "${OWED[i]% *}" -eq 0 ] || fail "loop $i still owed ${OWED[i]% *} after reconcile (${OWED[*]})"
	done
	b=("${ACC[@]}")
	burst after 400 1
	deltas "${b[@]}"
	check_spread "burst of 400 after the leak" 400 -1 "${DELTA[@]}"
	burst_release after
	stop_server
done
echo "PASS: steer_burst"
