# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers for the steering suites (steer_*.sh), sourced after lib.sh.
# meson passes the coil-steer binary and the example user program in
# COIL_STEER and COIL_STEER_EXAMPLE (empty when built without BPF).

declare -A HOLD_PID HOLD_FD

# steer_require_bpf: skip unless this build has eBPF steering and we are
# root (the only reasons eBPF steering may be unavailable here).
steer_require_bpf() {
	[ -x "${COIL_STEER:-}" ] || skip "no coil-steer binary"
	[ -n "${COIL_STEER_EXAMPLE:-}" ] || skip "built without BPF (libbpf, clang or bpftool missing)"
	[ "$(id -u)" -eq 0 ] || skip "eBPF steering needs root (CAP_BPF, CAP_NET_ADMIN)"
}

# steer_wait_line: wait for the server's "steering:" log line; sets STEER_LINE.
steer_wait_line() {
	local deadline=$((SECONDS + 10))
	STEER_LINE=
	until STEER_LINE=$(grep -m 1 "^$SERVER_NAME: steering: " "$SERVER_LOG"); do
		check_server_alive
		[ $SECONDS -ge $deadline ] && fail "no 'steering:' line in the log within 10 s"
		sleep 0.05
	done
	echo "log: $STEER_LINE"
	[ "$(grep -c "^$SERVER_NAME: steering: " "$SERVER_LOG")" -eq 1 ] ||
		fail "more than one 'steering:' line for one service"
}

# steer_start_ebpf <coil-echo args...>: start coil-echo --cores 2 (or
# STEER_CORES) and
# require eBPF steering (skip when the machine truly cannot; fail when it
# could but did not).
steer_start_ebpf() {
	start_server --cores "${STEER_CORES:-2}" "$@"
	steer_wait_line
	case $STEER_LINE in
	*"steering: eBPF, "*) ;;
	*"not permitted"* | *"built without libbpf"*) skip "eBPF steering unavailable: $STEER_LINE" ;;
	*) fail "expected eBPF steering: $STEER_LINE" ;;
	esac
	STEER_DIR=$(sed -n 's/.*maps in \([^ ]*\) .*/\1/p' <<<"$STEER_LINE")
	[ -d "$STEER_DIR" ] || fail "pin directory $STEER_DIR missing"
}

steer() {
	"$COIL_STEER" --pid "$SERVER_PID" "$@"
}

# steer_counts: A0 A1 (accepted) C0 C1 (active) POLICY USER from stats --json.
steer_counts() {
	local out
	out=$(steer --json stats) || fail "coil-steer stats failed"
	read -r A0 A1 C0 C1 POLICY USER < <(/usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
l = d["loops"]
u = d["user_program"]
print(l[0]["accepted"], l[1]["accepted"], l[0]["active"], l[1]["active"],
      d["policy"], u["name"] if u else "-")' <<<"$out") || fail "bad stats JSON: $out"
	echo "stats: policy=$POLICY user=$USER accepted=$A0/$A1 active=$C0/$C1"
}

# steer_wait_active <c0> <c1>: until the loops report these active counts.
steer_wait_active() {
	local deadline=$((SECONDS + 10))
	while :; do
		steer_counts >/dev/null
		[ "$C0" -eq "$1" ] && [ "$C1" -eq "$2" ] && break
		[ $SECONDS -ge $deadline ] && { steer_counts; fail "active $C0/$C1, want $1/$2"; }
		sleep 0.1
	done
	steer_counts
}

# hold <tag> <n> [cpu]: open n connections (from CPU cpu: its SYNs are
# handled there on loopback) and keep them until release <tag>.
hold() {
	local tag=$1 n=$2 cpu=${3:-} pre=() fd pid deadline
	[ -n "$cpu" ] && pre=(taskset -c "$cpu")
	mkfifo "$TMP_DIR/hold.$tag"
	# The child must not inherit the other holds' fifo ends, or closing
	# ours would not reach them.
	(
		for fd in "${HOLD_FD[@]}"; do exec {fd}>&-; done
		exec "${pre[@]}" timeout -k 5 120 "$IDLE_CONNS" --addr 127.0.0.1 \
			--port "$SERVER_PORT" --conns "$n" --batch 1 --timeout 60 \
			<"$TMP_DIR/hold.$tag" >"$TMP_DIR/idle.$tag"
	) &
	pid=$!
	BG_PIDS+=("$pid")
	exec {fd}>"$TMP_DIR/hold.$tag"
	HOLD_PID[$tag]=$pid
	HOLD_FD[$tag]=$fd
	deadline=$((SECONDS + 30))
	until grep -q -x ready "$TMP_DIR/idle.$tag"; do
		kill -0 "$pid" 2>/dev/null || fail "idle-conns ($tag) exited before ready"
		[ $SECONDS -ge $deadline ] && fail "idle-conns ($tag) not ready within 30 s"
		sleep 0.05
	done
	echo "holding $n connections ($tag${cpu:+, from CPU $cpu})"
}

# release <tag>: close them; fail if the server had closed any.
release() {
	local tag=$1 rc=0 closed fd=${HOLD_FD[$1]}
	exec {fd}>&-
	wait "${HOLD_PID[$tag]}" || rc=$?
	[ "$rc" -eq 0 ] || fail "idle-conns ($tag) exited with status $rc"
	closed=$(sed -n 's/^closed_by_server=\([0-9]*\)$/\1/p' "$TMP_DIR/idle.$tag")
	[ "$closed" = 0 ] || fail "the server closed $closed held connections ($tag)"
}
