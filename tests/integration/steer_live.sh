#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Live changes to eBPF steering lose nothing: while echo-integrity runs
# (new connections every wave, every byte checked) and 20 idle connections
# are held open, switch the policy (least -> cpu -> hash), load the example
# user program (bpf/examples/steer_subnet.bpf.c), give it a rule sending
# 127.0.0.0/8 to loop 1 (then loop 0 gets no new connection at all),
# unload it (loop 0 gets connections again), and switch back to least.
# Then: a user program given at start (--steer FILE) with no rule keeps
# the built-in policy; a file that is not a BPF object stops the server
# with a clear error; coil-steer load of one leaves the server as it was.
#
# usage: steer_live.sh <coil-echo> <echo-integrity> <idle-conns>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/steer_lib.sh"
lib_init steer_live "$@"
steer_require_bpf
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs"
BPFTOOL=${COIL_BPFTOOL:-bpftool}
command -v "$BPFTOOL" >/dev/null || skip "no bpftool to write the example's rules"

steer_start_ebpf --steer least
hold old 20

# Enough waves to outlast every switch below on any machine; SIGUSR1 after
# the last switch ends it after the wave in progress.
WAVES=100000
echo "== echo-integrity: 8 conns, waves until the switches are done, in the background"
timeout -k 5 130 "$ECHO_INTEGRITY" --addr 127.0.0.1 --port "$SERVER_PORT" --timeout 120 \
	--conns 8 --waves "$WAVES" --msgs 20 --min-size 1 --max-size 65536 --seed 33 \
	>"$TMP_DIR/integrity.out" 2>&1 &
INTEGRITY_PID=$!
BG_PIDS+=("$INTEGRITY_PID")
sleep 0.3

steer policy cpu
sleep 0.3
steer policy hash
sleep 0.3

echo "== load the example user program, then a rule 127.0.0.0/8 -> loop 1"
steer load "$COIL_STEER_EXAMPLE"
steer_counts
[ "$USER" = steer_subnet.bpf.o ] || fail "stats shows user program '$USER'"
[ -e "$STEER_DIR/subnet_loop" ] || fail "the example's rule map is not pinned in $STEER_DIR"
"$BPFTOOL" map update pinned "$STEER_DIR/subnet_loop" key 8 0 0 0 127 0 0 0 value 1 0 0 0
steer_counts
b0=$A0 b1=$A1
hold new 20
sleep 0.3
steer_counts
[ "$A0" -eq "$b0" ] || fail "user program: loop 0 still got $((A0 - b0)) new connections"
[ $((A1 - b1)) -ge 20 ] || fail "user program: loop 1 got only $((A1 - b1)) new connections"

echo "== unload: the built-in policy (hash) again"
steer unload
steer_counts
[ "$USER" = - ] || fail "stats still shows user program '$USER'"
[ ! -e "$STEER_DIR/subnet_loop" ] || fail "unload left the example's map pinned"
b0=$A0
hold after 20
steer_counts
[ "$A0" -gt "$b0" ] || fail "after unload loop 0 got none of 20 hashed connections"
steer policy least

kill -0 "$INTEGRITY_PID" 2>/dev/null ||
	fail "echo-integrity ended before the last switch: $(cat "$TMP_DIR/integrity.out")"
pkill -USR1 -P "$INTEGRITY_PID" -x echo-integrity || fail "could not signal echo-integrity"
rc=0
wait "$INTEGRITY_PID" || rc=$?
cat "$TMP_DIR/integrity.out"
[ "$rc" -eq 0 ] || fail "echo-integrity exited with status $rc across the switches"
grep -q " mismatched=0 missing=0 errors=0 " "$TMP_DIR/integrity.out" ||
	fail "bytes lost or corrupted across the switches"
for t in old new after; do release "$t"; done
echo "held connections: none closed by the server across the switches"
check_server_log

echo "== coil-steer load of a file that is not a BPF object"
printf 'not an ELF file\n' >"$TMP_DIR/bad.bpf.o"
out=$(steer load "$TMP_DIR/bad.bpf.o" 2>&1) && fail "coil-steer loaded garbage"
echo "$out" | tail -n 1
grep -q "cannot open $TMP_DIR/bad.bpf.o" <<<"$out" || fail "unclear error: $out"
steer_counts
[ "$USER" = - ] || fail "a failed load changed the user program to '$USER'"
run_integrity "after a failed load" 30 --conns 10 --waves 2 --msgs 4 --max-size 16384 --seed 34
stop_server
[ ! -e "$STEER_DIR" ] || fail "$STEER_DIR still there after exit"

echo "== --steer FILE at start, no rule: the built-in policy (least) decides"
steer_start_ebpf --steer "$COIL_STEER_EXAMPLE"
grep -q "user program $COIL_STEER_EXAMPLE" <<<"$STEER_LINE" || fail "log does not name the program"
steer_counts
[ "$USER" = steer_subnet.bpf.o ] || fail "stats shows user program '$USER'"
hold s 20
steer_counts
[ "$C0" -ge 5 ] && [ "$C1" -ge 5 ] || fail "least under a rule-less user program: $C0/$C1"
release s
stop_server
[ ! -e "$STEER_DIR" ] || fail "$STEER_DIR (with the user's pins) still there after exit"

echo "== --steer FILE that does not load: a clear error, no server"
rc=0
"$COIL_ECHO" --addr 127.0.0.1 --port 0 --cores 2 --steer "$TMP_DIR/bad.bpf.o" \
	>"$TMP_DIR/bad.out" 2>&1 </dev/null || rc=$?
cat "$TMP_DIR/bad.out"
[ "$rc" -eq 1 ] || fail "coil-echo --steer garbage exited $rc, want 1"
grep -q "steering: cannot open $TMP_DIR/bad.bpf.o" "$TMP_DIR/bad.out" || fail "no clear error"
rc=0
"$COIL_ECHO" --steer /nonexistent/x.bpf.o >"$TMP_DIR/bad.out" 2>&1 </dev/null || rc=$?
[ "$rc" -eq 2 ] && grep -q "cannot read /nonexistent/x.bpf.o" "$TMP_DIR/bad.out" ||
	fail "missing file: status $rc, $(cat "$TMP_DIR/bad.out")"
echo "PASS: steer_live"
