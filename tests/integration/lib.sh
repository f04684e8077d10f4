# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers shared by the integration scripts; sourced, never run directly.
#
# Every script is called by meson as
#   <script> <coil-echo> <echo-integrity> <idle-conns>
# and exits 0 (pass), 1 (fail) or 77 (skip, with the reason printed).
# It starts its own server on 127.0.0.1 --port 0, reads the port from the
# server's stderr and, on exit, stops only the processes it started itself.

SERVER_PID=
SERVER_PORT=
SERVER_LOG=
BG_PIDS=()
TMP_DIR=

# lib_init <script-name> "$@": check arguments, make a scratch dir, set traps.
lib_init() {
	TEST_NAME=$1
	shift
	if [ $# -ne 3 ]; then
		echo "usage: $TEST_NAME <coil-echo> <echo-integrity> <idle-conns>" >&2
		exit 1
	fi
	COIL_ECHO=$1
	ECHO_INTEGRITY=$2
	IDLE_CONNS=$3
	local b
	for b in "$COIL_ECHO" "$ECHO_INTEGRITY" "$IDLE_CONNS"; do
		[ -x "$b" ] || { echo "FAIL: $TEST_NAME: not an executable: $b"; exit 1; }
	done
	[ -r /proc/self/status ] || skip "no /proc"
	# Run in a private network namespace where we may (root, unshare and ip
	# available; COIL_TEST_NETNS=0 opts out): no port or TIME_WAIT clashes
	# with anything else on the machine, and /proc/net/sockstat's "sockets:
	# used" then counts only our sockets (see net_sockets_used).
	if [ "${COIL_IN_NETNS:-0}" != 1 ] && [ "${COIL_TEST_NETNS:-1}" != 0 ] &&
		command -v unshare >/dev/null && command -v ip >/dev/null &&
		unshare -n true 2>/dev/null; then
		exec env COIL_IN_NETNS=1 unshare -n -- bash -c \
			'ip link set lo up && exec "$@"' coil-netns "$0" "$@"
	fi
	TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/coil-$TEST_NAME.XXXXXX")
	trap lib_cleanup EXIT
	trap 'exit 1' INT TERM HUP
	# Servers and clients inherit the raised soft limit.
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	# Set by meson for -Db_sanitize builds; relaxes only what ASan distorts.
	SANITIZED=${COIL_SANITIZED:-0}
	echo "$TEST_NAME: coil-echo=$COIL_ECHO sanitized=$SANITIZED nofile=$(ulimit -n)" \
		"private-netns=${COIL_IN_NETNS:-0}"
}

skip() {
	echo "SKIP: $TEST_NAME: $*"
	exit 77
}

fail() {
	echo "FAIL: $TEST_NAME: $*"
	if [ -n "$SERVER_LOG" ] && [ -s "$SERVER_LOG" ]; then
		if grep -q -E '^==[0-9]+==ERROR|runtime error:' "$SERVER_LOG"; then
			echo "--- sanitizer report in the server's stderr ($SERVER_LOG) ---"
			grep -m 1 -A 60 -E '^==[0-9]+==ERROR|runtime error:' "$SERVER_LOG"
		else
			echo "--- last lines of the server's stderr ($SERVER_LOG) ---"
			tail -n 40 "$SERVER_LOG"
		fi
		echo "---"
	fi
	exit 1
}

# require_nofile <n>: skip unless this process may raise its fd limit to n.
require_nofile() {
	local hard
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt "$1" ]; then
		skip "RLIMIT_NOFILE hard limit $hard < $1 needed"
	fi
}

lib_cleanup() {
	local rc=$? pid
	for pid in "${BG_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait_exit "$SERVER_PID" 5 || kill -KILL "$SERVER_PID" 2>/dev/null || true
	fi
	for pid in "${BG_PIDS[@]}"; do
		wait_exit "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
	done
	[ -n "$TMP_DIR" ] && rm -rf "$TMP_DIR"
	exit "$rc"
}

now_ms() {
	if [ -n "${EPOCHREALTIME:-}" ]; then
		local t=${EPOCHREALTIME/[.,]/}
		echo $((10#$t / 1000))
	else
		date +%s%3N
	fi
}

# wait_exit <pid> <seconds>: wait until pid is gone; 1 if it is still there.
wait_exit() {
	local pid=$1 deadline=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null; do
		# A zombie child counts as gone; it is reaped by wait.
		[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && return 0
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.05
	done
	return 0
}

# start_named_server NAME BINARY <args...>: start a coil app on 127.0.0.1
# with an ephemeral port; sets SERVER_NAME, SERVER_PID, SERVER_PORT,
# SERVER_LOG. Fails if it does not say "NAME: listening on 127.0.0.1:PORT"
# within 20 s. With COIL_BACKEND set (meson registers every suite once per
# backend), the server gets --backend "$COIL_BACKEND" (a --backend in the
# arguments still wins) and must report that backend on its loops.
start_named_server() {
	local be_args=()
	SERVER_NAME=$1
	local bin=$2
	shift 2
	SERVER_N=$((${SERVER_N:-0} + 1))
	SERVER_LOG=$TMP_DIR/server.$SERVER_N.log
	: >"$SERVER_LOG" # exists before the background redirection opens it
	[ -n "${COIL_BACKEND:-}" ] && be_args=(--backend "$COIL_BACKEND")
	"$bin" --addr 127.0.0.1 --port 0 "${be_args[@]}" "$@" 2>"$SERVER_LOG" </dev/null &
	SERVER_PID=$!
	echo "started $SERVER_NAME${be_args[*]:+ ${be_args[*]}} $* (pid $SERVER_PID)"
	local deadline=$((SECONDS + 20))
	SERVER_PORT=
	while [ -z "$SERVER_PORT" ]; do
		SERVER_PORT=$(sed -n "s/^$SERVER_NAME: listening on 127\.0\.0\.1:\([0-9][0-9]*\).*\$/\1/p" \
			"$SERVER_LOG" | head -n 1) || true
		[ -n "$SERVER_PORT" ] && break
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			local rc=0
			wait "$SERVER_PID" || rc=$?
			SERVER_PID=
			fail "$SERVER_NAME $* exited with status $rc before listening"
		fi
		[ $SECONDS -ge $deadline ] && fail "$SERVER_NAME $* did not report its port within 20 s"
		sleep 0.05
	done
	echo "$SERVER_NAME listening on port $SERVER_PORT"
	case " $* " in
	*" --backend "*) ;; # the script chose; it checks what it wants
	*) [ -n "${COIL_BACKEND:-}" ] && check_backend "$COIL_BACKEND" ;;
	esac
	return 0
}

# start_server <coil-echo args...>: start_named_server for coil-echo.
start_server() {
	start_named_server coil-echo "$COIL_ECHO" "$@"
}

# check_backend <auto|uring|io_uring|epoll>: fail unless loop 0 of the
# current server reports that backend within 10 s ("auto": any).
check_backend() {
	local want=$1 deadline=$((SECONDS + 10))
	[ "$want" = uring ] && want=io_uring
	[ "$want" = auto ] && want='[a-z_]*'
	until grep -q -E "^$SERVER_NAME: loop 0 on CPU -?[0-9]+: backend $want " "$SERVER_LOG"; do
		check_server_alive
		[ $SECONDS -ge $deadline ] &&
			fail "loop 0 did not report backend $1 within 10 s"
		sleep 0.05
	done
	echo "$SERVER_NAME runs on $(sed -n "s/^$SERVER_NAME: loop 0 on CPU -*[0-9]*: backend \([a-z_]*\) .*/\1/p" "$SERVER_LOG")"
}

# check_server_log: fail on sanitizer reports in the server's stderr.
check_server_log() {
	if grep -E -q 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$SERVER_LOG"; then
		fail "sanitizer report in the server's stderr"
	fi
}

# check_server_alive: fail if the server has exited (crashed) meanwhile.
check_server_alive() {
	if ! kill -0 "$SERVER_PID" 2>/dev/null ||
		[ "$(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null)" = Z ]; then
		local rc=0
		wait "$SERVER_PID" || rc=$?
		SERVER_PID=
		fail "${SERVER_NAME:-coil-echo} died unexpectedly (status $rc)"
	fi
}

# shellcheck disable=SC2120 # the grace argument is optional
# stop_server [grace-seconds]: SIGTERM; fail unless it exits 0 within the grace.
stop_server() {
	local grace=${1:-10} rc=0 t0
	t0=$(now_ms)
	check_server_alive
	kill -TERM "$SERVER_PID"
	if ! wait_exit "$SERVER_PID" "$grace"; then
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=
		fail "coil-echo did not exit within ${grace} s of SIGTERM"
	fi
	wait "$SERVER_PID" || rc=$?
	SERVER_PID=
	echo "--- coil-echo stderr (first lines) ---"
	head -n 20 "$SERVER_LOG"
	echo "---"
	check_server_log
	[ "$rc" -eq 0 ] || fail "coil-echo exited with status $rc after SIGTERM (want 0)"
	echo "coil-echo exited 0 after SIGTERM in $(($(now_ms) - t0)) ms"
}

# run_integrity <label> <timeout-s> <echo-integrity args...>: run the client
# against the current server; fail unless it reports a clean run.
run_integrity() {
	local label=$1 limit=$2 rc=0 out
	shift 2
	echo "== $label: echo-integrity $*"
	out=$(timeout -k 5 "$((limit + 10))" "$ECHO_INTEGRITY" --addr 127.0.0.1 \
		--port "$SERVER_PORT" --timeout "$limit" "$@") || rc=$?
	echo "$out"
	check_server_alive
	check_server_log
	[ "$rc" -eq 0 ] || fail "$label: echo-integrity exited with status $rc"
	case $out in
	*" mismatched=0 missing=0 errors=0 "*) ;;
	*) fail "$label: unexpected summary: $out" ;;
	esac
}

server_rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"
}

server_fd_count() {
	local fds=("/proc/$SERVER_PID/fd"/*)
	echo "${#fds[@]}"
}

# Sockets allocated in this network namespace ("sockets: used" in
# /proc/net/sockstat: every struct sock until it is freed). Unlike an fd
# count this also sees sockets held only as io_uring direct descriptors,
# including ones already reset. Meaningful only in our private namespace
# (prints nothing otherwise), where the only sockets are ours.
net_sockets_used() {
	[ "${COIL_IN_NETNS:-0}" = 1 ] || return 0
	awk '$1 == "sockets:" && $2 == "used" { print $3 }' /proc/net/sockstat
}

# Established TCP sockets whose local port is the server's (its accepted
# connections, however it holds them).
server_established() {
	local hex
	hex=$(printf '%04X' "$SERVER_PORT")
	awk -v p=":$hex" '$4 == "01" && substr($2, length($2) - 4) == p { n++ } END { print n + 0 }' \
		/proc/net/tcp
}

# wait_for <seconds> <command...>: poll until command succeeds; 1 on timeout.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
	return 0
}

# start_idle <n>: start idle-conns with n connections in the background,
# holding them until release_idle; waits for its "ready". Sets IDLE_PID.
start_idle() {
	local n=$1 deadline
	rm -f "$TMP_DIR/hold" "$TMP_DIR/idle.out"
	mkfifo "$TMP_DIR/hold"
	timeout -k 5 300 "$IDLE_CONNS" --addr 127.0.0.1 --port "$SERVER_PORT" --conns "$n" \
		--timeout 60 <"$TMP_DIR/hold" >"$TMP_DIR/idle.out" &
	IDLE_PID=$!
	BG_PIDS+=("$IDLE_PID")
	exec 3>"$TMP_DIR/hold" # idle-conns holds until this is closed
	deadline=$((SECONDS + 70))
	until grep -q -x ready "$TMP_DIR/idle.out"; do
		if ! kill -0 "$IDLE_PID" 2>/dev/null; then
			local rc=0
			wait "$IDLE_PID" || rc=$?
			check_server_alive
			fail "idle-conns ($n connections) exited with status $rc before ready"
		fi
		[ $SECONDS -ge $deadline ] && fail "idle-conns ($n connections) not ready within 70 s"
		sleep 0.1
	done
	echo "idle-conns: $n connections open, each echoed once"
}

# release_idle: let idle-conns close its connections; prints its
# closed_by_server count in IDLE_CLOSED and fails if it did not exit 0.
release_idle() {
	local rc=0
	exec 3>&-
	wait "$IDLE_PID" || rc=$?
	[ "$rc" -eq 0 ] || fail "idle-conns exited with status $rc"
	IDLE_CLOSED=$(sed -n 's/^closed_by_server=\([0-9]*\)$/\1/p' "$TMP_DIR/idle.out")
	echo "idle-conns released: closed_by_server=$IDLE_CLOSED"
}
