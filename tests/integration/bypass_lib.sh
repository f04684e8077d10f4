# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared by the bypass_* tests: a kernel-free link (scripts/tools/bypass-link,
# net_memif between two DPDK processes), a coil server on one side and
# coil-load on the other, both on coil's own TCP. Sourced after lib.sh's
# lib_init; sets LINK_DIR and the BYPASS_* variables of the link's env.

BYPASS_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BYPASS_REPO=$(cd "$BYPASS_HERE/../.." && pwd)
BYPASS_LINK=$BYPASS_REPO/scripts/tools/bypass-link
COIL_LOAD=${COIL_LOAD:-}
LINK_DIR=

# bypass_up [memif|vhost]: check what the test needs, bring the link up (skip
# with its reason when hugepages cannot be had), and arrange for it to go
# down on any exit, after the processes the test started.
bypass_up() {
	local kind=${1:-memif} rc=0 why
	[ "${COIL_HAVE_DPDK:-0}" = 1 ] || skip "coil was built without libdpdk (meson feature dpdk)"
	[ -x "$COIL_LOAD" ] || fail "COIL_LOAD is not an executable: '$COIL_LOAD'"
	[ -x "$BYPASS_LINK" ] || fail "no $BYPASS_LINK"
	[ "$(id -u)" -eq 0 ] || skip "needs root (hugepages: vm.nr_hugepages, a hugetlbfs mount)"
	export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$BYPASS_HERE/dpdk_lsan.supp"
	LINK_DIR=$TMP_DIR/link
	trap 'rc=$?; bypass_cleanup $rc' EXIT
	why=$("$BYPASS_LINK" up "$LINK_DIR" --kind "$kind" 2>&1) || rc=$?
	echo "$why"
	[ "$rc" -eq 3 ] && skip "${why#bypass-link: }"
	[ "$rc" -eq 0 ] || fail "bypass-link up failed ($rc)"
	# shellcheck disable=SC1091
	. "$LINK_DIR/env"
}

bypass_cleanup() {
	trap - EXIT
	set +e
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null
	done
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID"
		wait_exit "$SERVER_PID" 5 || kill -KILL "$SERVER_PID"
		wait "$SERVER_PID" 2>/dev/null
		SERVER_PID=
	fi
	# the processes first: their hugepage files must be unused
	[ -n "$LINK_DIR" ] && "$BYPASS_LINK" down "$LINK_DIR"
	(exit "$1")
	lib_cleanup
}

# bypass_server NAME BINARY PORT <args...>: start a coil app on the link's
# server side (its CPU, its EAL arguments); wait for "NAME: listening on".
bypass_server() {
	SERVER_NAME=$1
	local bin=$2 port=$3 deadline=$((SECONDS + 30))
	shift 3
	SERVER_LOG=$TMP_DIR/$SERVER_NAME.log
	rm -f "$BYPASS_SOCK"
	COIL_STATS=1 taskset -c "$BYPASS_SERVER_CPU" "$bin" --cores 1 --port "$port" \
		--dpdk "$BYPASS_SERVER_EAL" --ip "$BYPASS_SERVER_IP/$BYPASS_PREFIX" \
		"$@" 2>"$SERVER_LOG" </dev/null &
	SERVER_PID=$!
	until grep -q "^$SERVER_NAME: listening on $BYPASS_SERVER_IP:$port" "$SERVER_LOG"; do
		check_server_alive
		[ $SECONDS -ge $deadline ] && fail "$SERVER_NAME did not listen within 30 s"
		sleep 0.1
	done
	grep -q "(net_memif)\|(net_vhost)" "$SERVER_LOG" || fail "$SERVER_NAME is not on the link's port"
	echo "$SERVER_NAME (pid $SERVER_PID) listening on $BYPASS_SERVER_IP:$port over $BYPASS_KIND"
}

# bypass_stop_server: SIGTERM; fail unless it exits 0 within 10 s, and on
# sanitizer reports (lib.sh's stop_server, httpd_lib.sh's httpd_stop); then
# show the server's TCP counters.
bypass_stop_server() {
	local log=$SERVER_LOG
	if [ "$SERVER_NAME" = coil-httpd ]; then
		httpd_stop 10
	else
		stop_server 10
	fi
	grep -E "tcp: " "$log" | head -n 2 || true
}

# shellcheck disable=SC2034 # LOAD_OUT, LOAD_RC: for the sourcing test
# bypass_load LABEL TIMEOUT_S <coil-load args...>: coil-load on the link's
# client side, JSON into $TMP_DIR/LABEL.json, output into LOAD_OUT; sets
# LOAD_RC (the load's exit status; 124 when `timeout` had to stop it).
bypass_load() {
	local label=$1 t=$2
	shift 2
	LOAD_JSON=$TMP_DIR/$label.json
	LOAD_RC=0
	rm -f "$LOAD_JSON"
	LOAD_OUT=$(timeout -k 3 "$t" "$COIL_LOAD" "$@" --quiet --cores "$BYPASS_CLIENT_CPU" \
		--dpdk "$BYPASS_CLIENT_EAL" --ip "$BYPASS_CLIENT_IP/$BYPASS_PREFIX" \
		--json "$LOAD_JSON" 2>"$TMP_DIR/$label.err") || LOAD_RC=$?
}

# bypass_load_bg LABEL TIMEOUT_S <coil-load args...>: the same in the
# background (output in $TMP_DIR/LABEL.out and .err, JSON in LABEL.json);
# sets LOAD_PID and adds it to BG_PIDS. TIMEOUT_S 0: no `timeout` wrapper
# (the load must end by itself; the caller bounds the wait).
bypass_load_bg() {
	local label=$1 t=$2 wrap=()
	shift 2
	[ "$t" -gt 0 ] && wrap=(timeout -k 3 "$t")
	"${wrap[@]}" "$COIL_LOAD" "$@" --quiet --cores "$BYPASS_CLIENT_CPU" \
		--dpdk "$BYPASS_CLIENT_EAL" --ip "$BYPASS_CLIENT_IP/$BYPASS_PREFIX" \
		--json "$TMP_DIR/$label.json" \
		>"$TMP_DIR/$label.out" 2>"$TMP_DIR/$label.err" &
	LOAD_PID=$!
	BG_PIDS+=("$LOAD_PID")
}

# json_get FILE EXPR: a Python expression over the JSON object `j`.
json_get() {
	python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2"
}

# check_clean LABEL CONNS: the last bypass_load (coil-load echo --verify)
# ran clean: exit 0, every connection established, messages echoed and
# compared, zero mismatched bytes, zero errors. How many messages a run of
# -d 1s completes depends on the CPU it got (a loaded machine echoes a few
# hundred 64 KiB messages on 500 connections, fewer than one each), so
# only "some" is required of the count, never a rate.
check_clean() {
	local label=$1 conns=$2 r n mism errs est
	[ "$LOAD_RC" -eq 0 ] || {
		echo "$LOAD_OUT"
		cat "$TMP_DIR/$label.err"
		fail "$label: coil-load exited $LOAD_RC"
	}
	r=$(json_get "$LOAD_JSON" \
		'"%d %d %d %d" % (j["done"], j["errors"]["mismatched_bytes"], j["errors"]["total"], j["connections_established"])')
	read -r n mism errs est <<<"$r"
	echo "$label: $n messages echoed, $mism mismatched bytes, $errs errors, $est connections"
	[ "$mism" -eq 0 ] || fail "$label: $mism mismatched bytes"
	[ "$errs" -eq 0 ] || fail "$label: $errs errors"
	[ "$n" -gt 0 ] || fail "$label: no message echoed"
	[ "$est" -ge "$conns" ] || fail "$label: $est of $conns connections established"
}

# cpu_pressure SECONDS: one busy loop per CPU we may use, each ending by
# itself after SECONDS (and killed with the test's other background
# processes), so that the link's two processes get preempted anywhere,
# the interrupt thread included.
cpu_pressure() {
	local n i
	n=$(nproc)
	for ((i = 0; i < n; i++)); do
		(
			end=$((SECONDS + $1))
			while [ $SECONDS -lt $end ]; do :; done
		) &
		BG_PIDS+=("$!")
	done
}
