#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The engine's flags are one layer (coil/options.h) in every app: coil-echo,
# coil-httpd and coil-load refuse the same bad values with the same message
# and exit status 2, list the flags they take in --help, and accept the
# same good spellings (checked by how far the app gets: a good engine flag
# followed by an app-level error must reach that app-level error).
#
# usage: app_flags.sh <coil-echo> <coil-httpd> <coil-load>
set -u
ECHO=$1 HTTPD=$2 LOAD=$3
fail() { echo "FAIL: app_flags: $*"; exit 1; }
for b in "$ECHO" "$HTTPD" "$LOAD"; do [ -x "$b" ] || fail "not an executable: $b"; done

# expect STATUS MESSAGE -- CMD...: CMD exits STATUS and says MESSAGE (a
# whole line) on stderr, within 10 s, with nothing on stdout.
expect() {
	local want=$1 msg=$2 rc=0 out err
	shift 3
	err=$(timeout 10 "$@" 2>&1 >/dev/null) || rc=$?
	out=$(timeout 10 "$@" 2>/dev/null) || true
	[ "$rc" -eq "$want" ] || fail "$*: exit $rc, want $want ($err)"
	grep -qxF -- "$msg" <<<"$err" || fail "$*: said '$err', want '$msg'"
	[ -z "$out" ] || fail "$*: wrote to stdout: $out"
}

for app in "$ECHO" "$HTTPD" "load"; do
	name=$(basename "$app")
	run=("$app")
	if [ "$app" = load ]; then name=coil-load; run=("$LOAD" http http://127.0.0.1:9/); fi
	# --backend and --poll: every app.
	expect 2 "$name: --poll: expected always, adaptive or never, got 'often'" -- "${run[@]}" --poll often
	expect 2 "$name: --poll: needs a value" -- "${run[@]}" --poll
	expect 2 "$name: --backend: expected auto, uring, epoll or dpdk, got 'kqueue'" -- "${run[@]}" --backend kqueue
	if [ "$name" = coil-load ]; then
		# DPDK (coil's own TCP) needs the EAL's arguments and an address
		expect 2 "coil-load: --backend dpdk needs --dpdk 'EAL ARGS'" -- "${run[@]}" --backend dpdk
		expect 2 "coil-load: --dpdk needs the port's address: --ip A.B.C.D/NN" -- "${run[@]}" --dpdk '--no-huge'
		expect 2 "coil-load: --mbufs: expected a number in 512..1048576, got '1'" -- "${run[@]}" --mbufs 1
		"$LOAD" --help | grep -q "^  --dpdk 'EAL ARGS' " || fail "coil-load --help: no --dpdk"
	fi
	"${run[@]}" --help | grep -q '^  --poll M  *how an idle loop waits' || fail "$name --help: no --poll"
	"${run[@]}" --help | grep -q '^  --backend B  ' || fail "$name --help: no --backend"
	[ "$name" = coil-load ] && continue
	# The server flags: coil-echo and coil-httpd.
	expect 2 "$name: --cores: expected a number in 1..1024, got '0'" -- "$app" --cores 0
	expect 2 "$name: --poll-us: expected a number in 1..1000000, got '0'" -- "$app" --poll-us=0
	expect 2 "$name: --coalesce-us: expected a number in 0..100000, got '-1'" -- "$app" --coalesce-us -1
	expect 2 "$name: --bufs: expected a number in 1..32768, got '1x'" -- "$app" --bufs 1x
	expect 2 "$name: --buf-size: expected a number in 64..1048576, got '32'" -- "$app" --buf-size 32
	expect 2 "$name: --max-conns: expected a number in 1..16777216, got '0'" -- "$app" --max-conns 0
	expect 2 "$name: --drain-ms: expected a number in 1..4294967295, got '0'" -- "$app" --drain-ms 0
	expect 2 "$name: --steer: expected auto, hash, cpu, least, none or FILE.bpf.o, got 'rr'" -- "$app" --steer rr
	# Good engine flags, anywhere on the line, then an app error.
	expect 2 "$name: unexpected argument 'extra'" -- "$app" --cores 1 --backend=epoll --poll never \
		--poll-us 10 --coalesce-us 0 --steer none --bufs 64 --buf-size 2048 --max-conns 8 \
		--drain-ms 100 extra
	for f in cores backend poll poll-us coalesce-us steer bufs buf-size max-conns drain-ms; do
		"$app" --help | grep -q "^  --$f " || fail "$name --help: no --$f"
	done
	# DPDK flags: coil-echo and coil-httpd (TCP on coil's own stack)
	expect 2 "$name: --mbufs: expected a number in 512..1048576, got '1'" -- "$app" --mbufs 1
	"$app" --help | grep -q "^  --dpdk 'EAL ARGS' " || fail "$name --help: no --dpdk"
done
# coil-load's own --cores is a CPU list, not the engine's loop count.
expect 2 "coil-load: --cores: expected a CPU list like 1 or 0,2-3 (each CPU once), got '0x'" -- \
	"$LOAD" http http://127.0.0.1:9/ --cores 0x
echo "PASS: app_flags"
