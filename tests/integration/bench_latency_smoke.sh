#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/bench-latency --smoke end to end (about 15 s): coil-httpd and
# nginx with 2 loops / workers, 1 s runs. Checks that it exits 0 and prints
# the capacity line and one row per load and server (rate, achieved rate,
# p50 <= p99 <= p99.9), that the binaries come by path (COIL_BIN_DIR,
# NGINX) and that bad arguments are refused with status 2. The run goes
# through `scripts/bench latency`, the bad arguments both ways. The figures
# are not judged: this machine may be busy.
#
# usage: bench_latency_smoke.sh <coil-echo> <echo-integrity> <idle-conns>
#        (COIL_BUILD_DIR: the build directory with coil-httpd and coil-load)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lib_init bench_latency_smoke "$@"

SCRIPTS=$(cd "$(dirname "$0")/../.." && pwd)/scripts
SCRIPT=$SCRIPTS/bench-latency
[ -n "${COIL_BUILD_DIR:-}" ] || fail "COIL_BUILD_DIR not set"
NGINX_BIN=$(command -v nginx) || skip "nginx not installed (Debian nginx-light)"

for bad in "--loops 0" "--nosuch"; do
	for cmd in "$SCRIPT" "$SCRIPTS/bench latency"; do
		rc=0
		# shellcheck disable=SC2086 # words on purpose
		COIL_BIN_DIR=$COIL_BUILD_DIR/apps NGINX=$NGINX_BIN $cmd $bad >"$TMP_DIR/bad.out" 2>&1 || rc=$?
		[ "$rc" -eq 2 ] || fail "$cmd $bad: status $rc, want 2: $(cat "$TMP_DIR/bad.out")"
	done
done
rc=0
COIL_BIN_DIR=/nonexistent NGINX=$NGINX_BIN "$SCRIPT" --smoke >"$TMP_DIR/bad.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "COIL_BIN_DIR" "$TMP_DIR/bad.out" ||
	fail "bench-latency without binaries: status $rc: $(cat "$TMP_DIR/bad.out")"

rc=0
# Not on PATH: the binaries come by path only.
env PATH=/usr/bin:/bin COIL_BIN_DIR="$COIL_BUILD_DIR/apps" NGINX="$NGINX_BIN" \
	timeout -k 5 150 "$SCRIPTS/bench" latency --smoke >"$TMP_DIR/out" 2>"$TMP_DIR/err" || rc=$?
cat "$TMP_DIR/out"
[ "$rc" -eq 0 ] || { cat "$TMP_DIR/err"; fail "bench-latency --smoke exited with status $rc"; }
grep -q "^# capacity (closed loop, 32 connections): nginx [1-9][0-9]*/s, coil-httpd [1-9][0-9]*/s$" "$TMP_DIR/out" ||
	fail "no capacity line"
/usr/bin/python3 - "$TMP_DIR/out" <<'PY' || fail "bad table"
import re, sys
rows = [l.split() for l in open(sys.argv[1]) if re.match(r"^(50|80)% ", l)]
def us(v, u):
    return float(v) * (1000 if u == "ms" else 1)
seen = set()
for r in rows:
    # load rate server achieved p50 unit p99 unit p99.9 unit behind
    assert len(r) == 11, r
    load, rate, server, got = r[0], int(r[1]), r[2], int(r[3])
    p50, p99, p999 = us(r[4], r[5]), us(r[6], r[7]), us(r[8], r[9])
    assert rate > 0 and got > 0, r
    assert p50 <= p99 <= p999, r
    assert r[10] in ("yes", "no"), r
    seen.add((load, server))
want = {(l, s) for l in ("50%", "80%") for s in ("nginx", "coil-httpd")}
assert seen == want, seen
PY
echo "PASS: bench_latency_smoke"
