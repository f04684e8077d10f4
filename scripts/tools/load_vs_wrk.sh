#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# load_vs_wrk.sh: coil-load against wrk, side by side, on one client core,
# against the same coil-httpd /plaintext.
#
#   scripts/tools/load_vs_wrk.sh [--reps N] [--duration S] [--conns C]
#                                [--pipeline D] [--build DIR]
#                                [--server-cpu N] [--client-cpu N]
#
# coil-httpd --cores 1 --poll never runs pinned to CPU 0 (taskset); each
# client runs pinned to CPU 1 with one thread (wrk -t1; coil-load -t 1
# --cores 1). Every rep runs both clients back to back, alternating which
# goes first, after one unmeasured warm-up run of each. With --pipeline D
# (default 1), wrk sends D requests per write through a Lua script, as
# scripts/bench http does, and coil-load gets --pipeline D. The table shows
# each run, then the medians over reps and their ratio (coil-load / wrk).
# Any client error or non-2xx response fails the run (exit 1). Needs wrk
# (Debian package wrk) and a build of coil (default: build/).
set -euo pipefail
cd "$(dirname "$0")/../.."

REPS=5 DUR=5 CONNS=50 PIPE=1 BUILD=build SCPU=0 CCPU=1
while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift 2 ;;
	--duration) DUR=$2; shift 2 ;;
	--conns) CONNS=$2; shift 2 ;;
	--pipeline) PIPE=$2; shift 2 ;;
	--build) BUILD=$2; shift 2 ;;
	--server-cpu) SCPU=$2; shift 2 ;;
	--client-cpu) CCPU=$2; shift 2 ;;
	-h | --help) sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "load_vs_wrk: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
for v in "$REPS" "$DUR" "$CONNS" "$PIPE" "$SCPU" "$CCPU"; do
	[[ $v =~ ^[0-9]+$ ]] || { echo "load_vs_wrk: expected a number, got '$v'" >&2; exit 2; }
done
[ "$REPS" -ge 1 ] && [ "$DUR" -ge 1 ] && [ "$CONNS" -ge 1 ] && [ "$PIPE" -ge 1 ] ||
	{ echo "load_vs_wrk: --reps, --duration, --conns and --pipeline must be >= 1" >&2; exit 2; }
command -v wrk >/dev/null || { echo "load_vs_wrk: wrk not found (Debian package wrk)" >&2; exit 1; }
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" >/dev/null
fi
ninja -C "$BUILD" apps/coil-httpd apps/coil-load >/dev/null

TMP=$(mktemp -d "${TMPDIR:-/tmp}/load_vs_wrk.XXXXXX")
SERVER_PID=
cleanup() {
	if [ -n "$SERVER_PID" ]; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

taskset -c "$SCPU" "$BUILD/apps/coil-httpd" --addr 127.0.0.1 --port 0 --cores 1 \
	--poll never --root apps/coil-httpd/demo 2>"$TMP/server.log" </dev/null &
SERVER_PID=$!
PORT=
for _ in $(seq 1 200); do
	PORT=$(sed -n 's/^coil-httpd: listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/server.log")
	[ -n "$PORT" ] && break
	kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log"; echo "load_vs_wrk: coil-httpd exited" >&2; exit 1; }
	sleep 0.05
done
[ -n "$PORT" ] || { echo "load_vs_wrk: coil-httpd did not report its port" >&2; exit 1; }
URL=http://127.0.0.1:$PORT/plaintext

WRK_SCRIPT=()
if [ "$PIPE" -gt 1 ]; then
	cat >"$TMP/pipeline.lua" <<LUA
init = function(args)
	local r = {}
	for i = 1, $PIPE do r[i] = wrk.format(nil, wrk.path) end
	req = table.concat(r)
end
request = function() return req end
LUA
	WRK_SCRIPT=(-s "$TMP/pipeline.lua")
fi

# run_wrk SECONDS: prints requests/s
run_wrk() {
	taskset -c "$CCPU" wrk -t1 -c"$CONNS" -d"$1s" --timeout 5s "${WRK_SCRIPT[@]}" "$URL" >"$TMP/wrk.out" 2>&1 ||
		{ cat "$TMP/wrk.out" >&2; echo "load_vs_wrk: wrk failed" >&2; exit 1; }
	if grep -E -q 'Socket errors|Non-2xx' "$TMP/wrk.out"; then
		cat "$TMP/wrk.out" >&2
		echo "load_vs_wrk: wrk reported errors" >&2
		exit 1
	fi
	sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TMP/wrk.out"
}

# run_load SECONDS: prints requests/s
run_load() {
	taskset -c "$CCPU" "$BUILD/apps/coil-load" http "$URL" -c "$CONNS" -d "$1" -t 1 \
		--cores "$CCPU" --pipeline "$PIPE" --quiet --json "$TMP/load.json" \
		>"$TMP/load.out" 2>&1 ||
		{ cat "$TMP/load.out" >&2; echo "load_vs_wrk: coil-load failed (errors above)" >&2; exit 1; }
	sed -n 's/^  "per_second": \([0-9.]*\),$/\1/p' "$TMP/load.json"
}

median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "coil-httpd /plaintext on CPU $SCPU; clients on CPU $CCPU, one thread each;" \
	"$CONNS connections, pipeline $PIPE, $REPS reps of ${DUR}s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
run_wrk 1 >/dev/null
run_load 1 >/dev/null
: >"$TMP/wrk.all"
: >"$TMP/load.all"
for rep in $(seq 1 "$REPS"); do
	if [ $((rep % 2)) -eq 1 ]; then
		w=$(run_wrk "$DUR")
		l=$(run_load "$DUR")
	else
		l=$(run_load "$DUR")
		w=$(run_wrk "$DUR")
	fi
	echo "$w" >>"$TMP/wrk.all"
	echo "$l" >>"$TMP/load.all"
	printf 'rep %d/%d  wrk %12.1f req/s  coil-load %12.1f req/s  (%.2fx)\n' \
		"$rep" "$REPS" "$w" "$l" "$(awk -v a="$l" -v b="$w" 'BEGIN { print a / b }')"
done
W=$(median <"$TMP/wrk.all")
L=$(median <"$TMP/load.all")
printf 'median  wrk %12.1f req/s  coil-load %12.1f req/s\n' "$W" "$L"
printf 'ratio coil-load / wrk: %.2fx (load after: %s)\n' \
	"$(awk -v a="$L" -v b="$W" 'BEGIN { print a / b }')" "$(cut -d' ' -f1-3 /proc/loadavg)"
