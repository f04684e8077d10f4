#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# eBPF steering policies on coil-echo --cores 2, placement read back with
# coil-steer stats --json:
#   hash   200 connections: each loop gets 30%..70% (binomial sd is 3.5%,
#          so this fails only when hashing is broken)
#   cpu    connections from CPU k (taskset; loopback handles the SYN on the
#          connecting CPU) all land on loop k
#   least  with loop 0 preloaded by 40 long-lived connections, 30 new ones
#          all go to loop 1
#   drain  a draining loop gets nothing, under least and hash; undrained,
#          it gets connections again
# and the active counters return to 0 when the connections close, and the
# pins are gone after exit.
#
# usage: steer_policies.sh <coil-echo> <echo-integrity> <idle-conns>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/steer_lib.sh"
lib_init steer_policies "$@"
steer_require_bpf
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs"

steer_start_ebpf --steer hash
steer_counts
[ "$POLICY" = hash ] || fail "policy $POLICY, want hash"

echo "== hash: 200 connections"
hold h 200
steer_counts
[ "$C0" -ge 60 ] && [ "$C0" -le 140 ] && [ "$C1" -ge 60 ] && [ "$C1" -le 140 ] ||
	fail "hash: $C0/$C1 of 200, want each in 60..140"
release h
steer_wait_active 0 0

echo "== cpu: from CPU 0, then from CPU 1"
steer policy cpu
for k in 0 1; do
	steer_counts
	b0=$A0 b1=$A1
	hold "c$k" 20 "$k"
	steer_counts
	if [ "$k" = 0 ]; then
		[ $((A0 - b0)) -eq 20 ] && [ "$A1" -eq "$b1" ] ||
			fail "cpu: 20 connections from CPU 0 went $((A0 - b0))/$((A1 - b1))"
	else
		[ $((A1 - b1)) -eq 20 ] && [ "$A0" -eq "$b0" ] ||
			fail "cpu: 20 connections from CPU 1 went $((A0 - b0))/$((A1 - b1))"
	fi
	release "c$k"
done
steer_wait_active 0 0

echo "== least: loop 0 preloaded with 40 long-lived connections"
hold pre 40 0
steer_wait_active 40 0
steer policy least
hold l 30
steer_wait_active 40 30

echo "== drain: loop 1 draining gets nothing (least, then hash)"
steer drain 1
steer_counts
[ "$(steer --json stats | grep -c '"draining": true')" -eq 1 ] || fail "drain not shown in stats"
b1=$A1
hold d1 20
steer policy hash
hold d2 20
steer_counts
[ "$A1" -eq "$b1" ] || fail "draining loop 1 accepted $((A1 - b1)) connections"
[ "$C0" -eq 80 ] || fail "loop 0 has $C0 active, want 80"
steer undrain 1
hold d3 20
steer_counts
[ "$A1" -gt "$b1" ] || fail "undrained loop 1 got none of 20 hashed connections"

for t in pre l d1 d2 d3; do release "$t"; done
steer_wait_active 0 0

echo "== bad input"
out=$(steer policy bogus 2>&1) && fail "policy bogus accepted"
grep -q "expected hash, cpu or least" <<<"$out" || fail "policy bogus: $out"
out=$(steer drain 7 2>&1) && fail "drain 7 accepted"
grep -q "has 2 loops" <<<"$out" || fail "drain 7: $out"

stop_server
[ ! -e "$STEER_DIR" ] || fail "$STEER_DIR still there after exit"
echo "PASS: steer_policies"
