# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers for the coil-load suites (load_*.sh); sourced after lib.sh or
# httpd_lib.sh. meson passes coil-load in $COIL_LOAD.

PY=${COIL_TEST_PYTHON:-/usr/bin/python3}

# load_check_tool: fail unless $COIL_LOAD is an executable; skip without python.
load_check_tool() {
	[ -n "${COIL_LOAD:-}" ] && [ -x "$COIL_LOAD" ] ||
		fail "COIL_LOAD is not an executable: '${COIL_LOAD:-}'"
	[ -x "$PY" ] || skip "$PY not found (reads coil-load's JSON)"
}

# run_load <want-rc> <coil-load args...>: run coil-load (bounded in time, on
# the suite's backend) with --json $TMP_DIR/load.json; fail unless it exits
# with want-rc. Its output is in $LOAD_OUT.
run_load() {
	local want=$1 rc=0
	shift
	rm -f "$TMP_DIR/load.json"
	echo "== coil-load $*"
	LOAD_OUT=$(timeout -k 5 120 "$COIL_LOAD" "$@" --backend "${COIL_BACKEND:-auto}" \
		--quiet --json "$TMP_DIR/load.json" 2>"$TMP_DIR/load.err") || rc=$?
	echo "$LOAD_OUT"
	if grep -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP_DIR/load.err"; then
		cat "$TMP_DIR/load.err"
		fail "sanitizer report from coil-load"
	fi
	[ "$rc" -eq "$want" ] || { cat "$TMP_DIR/load.err"; fail "coil-load $* exited $rc, want $want"; }
	[ -s "$TMP_DIR/load.json" ] || fail "coil-load $* wrote no JSON"
}

# jget <python expression over j>: a value from the last run's JSON.
jget() {
	"$PY" -c 'import json, sys
j = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$TMP_DIR/load.json" "$1"
}

# expect <what> <python condition over j>
expect() {
	[ "$(jget "bool($2)")" = True ] || fail "$1: not ($2); JSON: $(cat "$TMP_DIR/load.json")"
	echo "ok: $1"
}
