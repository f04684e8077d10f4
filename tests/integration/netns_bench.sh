#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/vm/netns-bench for 1 s: coil-echo and the echo load client in two
# namespaces over veth. It must exit 0, report echoed messages without
# errors and packets on the veth, and leave no namespace, link or process
# behind; on SIGTERM mid-run it must clean up just the same.
#
# usage: netns_bench.sh <coil-echo> <echo-integrity> <idle-conns>
#        (COIL_BUILD_DIR: the build directory; set by meson)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lib_init netns_bench "$@"

NETNS_BENCH=$(cd "$(dirname "$0")/../.." && pwd)/scripts/vm/netns-bench
[ "$(id -u)" -eq 0 ] || skip "needs root (ip netns, veth)"
command -v ip >/dev/null || skip "ip (iproute2) not installed"
ip netns add "coilbench-probe-$$" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "coilbench-probe-$$"

# leftovers PID: namespaces or links that run PID made and did not remove
# (listed, then removed so that a failure leaves nothing either).
leftovers() {
	local ns
	{ ip netns list | grep "coilbench-$1-" || true; } | tr '\n' ' '
	{ ip -o link show | grep -E " cb$1[sc][@:]" || true; } | tr '\n' ' '
	for ns in $(ip netns list | awk -v p="coilbench-$1-" 'index($1, p) == 1 { print $1 }'); do
		ip netns del "$ns" 2>/dev/null || true
	done
	ip link del "cb$1s" 2>/dev/null || true
}

OUT=$TMP_DIR/run.out
rc=0
COIL_ECHO=$COIL_ECHO "$NETNS_BENCH" echo --duration 1 --warmup 0.2 --conns 8 \
	--depth 2 --no-build >"$OUT" 2>&1 &
pid=$!
wait "$pid" || rc=$?
cat "$OUT"
[ "$rc" -eq 0 ] || fail "netns-bench exited with status $rc"
left=$(leftovers "$pid")
[ -z "$left" ] || fail "left behind: $left"
grep -q "in coilbench-$pid-srv (10.99.77.1:" "$OUT" || fail "no server line"
rx=$(sed -n 's/^# server veth: rx \([0-9]*\) packets.*/\1/p' "$OUT")
[ "${rx:-0}" -gt 100 ] || fail "server veth saw ${rx:-no} packets"
if grep -q '^msgs=' "$OUT"; then # coil-echobench
	line=$(grep '^msgs=' "$OUT")
	[[ $line == *" errors=0 "* ]] || fail "client errors: $line"
	awk -v l="$line" 'BEGIN { split(l, f, /[ =]/)
		for (i = 1; i < length(f); i += 2) v[f[i]] = f[i + 1]
		exit !(v["msgs"] > 100 && v["cpu_us_per_msg"] > 0) }' ||
		fail "implausible result: $line"
fi

# SIGTERM in the middle of a 30 s run: prompt exit, nothing left behind.
# (A new file: the background job truncates its output only once it runs.)
OUT=$TMP_DIR/term.out
: >"$OUT"
COIL_ECHO=$COIL_ECHO "$NETNS_BENCH" echo --duration 30 --no-build >"$OUT" 2>&1 &
pid=$!
for _ in $(seq 400); do # 20 s: set-up and server start on a busy machine
	grep -q '^#   client' "$OUT" && break
	sleep 0.05
done
grep -q '^#   client' "$OUT" || { cat "$OUT"; fail "the 30 s run did not start its client"; }
t0=$SECONDS
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 143 ] || { cat "$OUT"; fail "status $rc after SIGTERM, want 143"; }
[ $((SECONDS - t0)) -le 8 ] || fail "took $((SECONDS - t0)) s to stop after SIGTERM"
left=$(leftovers "$pid")
[ -z "$left" ] || fail "left behind after SIGTERM: $left"
echo "PASS: netns_bench: rx $rx packets; SIGTERM cleaned up"
