#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coil-echo --udp on the DPDK backend, without a NIC: a veth pair into a
# namespace (scripts/netns) with the engine on the outer end through
# net_af_packet, then net_af_xdp; then net_tap (the kernel end of the tap
# here). From the kernel side: ping gets replies, ARP resolves to the
# port's MAC, udp-integrity checks every byte of thousands of datagrams
# (1..1472 B), and malformed frames injected with a raw socket are dropped
# and counted by reason while the server keeps echoing. Everything is
# bounded (timeouts) and the namespace and interfaces go even on failure.
#
# Then two loops on two af_packet queues (qpairs=2, kernel fanout): 13
# flows, both loops must echo. COIL_DPDK_VDEVS="af_packet af_xdp tap
# af_packet_2q" picks the cases.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init dpdk_udp "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
UDP_INTEGRITY=${COIL_UDP_INTEGRITY:-}

[ "${COIL_HAVE_DPDK:-0}" = 1 ] || skip "coil was built without libdpdk (meson feature dpdk)"
[ "$(id -u)" -eq 0 ] || skip "needs root (veth pairs, namespaces, raw sockets)"
[ -x "$UDP_INTEGRITY" ] || fail "COIL_UDP_INTEGRITY is not an executable: '$UDP_INTEGRITY'"
command -v ping >/dev/null || fail "ping is missing (iputils-ping, scripts/deps.sh)"
[ -x /usr/bin/python3 ] || fail "/usr/bin/python3 is missing"
# ASan build: a leak inside libxdp (net_af_xdp) is not ours.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$HERE/dpdk_lsan.supp"

NS=coil-dpdk-$$
OUTER=cdp$$o
INNER=cdp$$i
TAP=cdt$$
PORT=7000
COUNT=5
SERVER_IP=10.77.0.1
CLIENT_IP=10.77.0.2

cleanup_net() {
	"$ROOT/scripts/netns" down "$NS" --outer "$OUTER" >/dev/null 2>&1 || true
}
# lib.sh's EXIT trap stops the server; the namespace goes after it.
trap 'rc=$?; lib_cleanup_net $rc' EXIT
lib_cleanup_net() {
	trap - EXIT
	set +e   # lib_cleanup reads the exit status from $?
	cleanup_net
	(exit "$1")
	lib_cleanup
}

# in_client CMD...: run CMD where the kernel side of the wire is.
in_client() {
	if [ "$VDEV_KIND" = tap ]; then
		"$@"
	else
		timeout -k 2 120 ip netns exec "$NS" "$@"
	fi
}

start_dpdk() {
	local vdev=$1 cores=${2:-1} deadline
	SERVER_N=$((${SERVER_N:-0} + 1))
	SERVER_LOG=$TMP_DIR/server.$SERVER_N.log
	SERVER_NAME=coil-echo
	: >"$SERVER_LOG"
	COIL_STATS=1 "$COIL_ECHO" --udp --port "$PORT" --cores "$cores" --ip "$SERVER_IP/24" \
		--dpdk "--no-huge -m 128 --no-pci --file-prefix=coil-dpdk-$$ --vdev=$vdev" \
		--mbufs 4096 2>"$SERVER_LOG" </dev/null &
	SERVER_PID=$!
	echo "started coil-echo on DPDK $vdev (pid $SERVER_PID)"
	deadline=$((SECONDS + 30))
	until grep -q "^coil-echo: listening on $SERVER_IP:$PORT (udp)" "$SERVER_LOG"; do
		check_server_alive
		[ $SECONDS -ge $deadline ] && fail "coil-echo on $vdev did not start within 30 s"
		sleep 0.1
	done
	grep -q "backend dpdk" "$SERVER_LOG" || sleep 0.5
	grep "dpdk: port" "$SERVER_LOG"
	SERVER_MAC=$(sed -n 's/.*dpdk: port [0-9]* ([a-z_]*) \([0-9a-f:]*\) .*/\1/p' "$SERVER_LOG")
	[ -n "$SERVER_MAC" ] || fail "no MAC in the server's log"
}

# stat_of NAME: the server's counter NAME (after it exited), summed over
# its loops.
stat_of() {
	awk -v k="$1" '/ net: / { n = split($0, w, /[ ;,]+/)
		for (i = 1; i < n; i++) if (w[i] == k) { v += w[i + 1]; seen = 1 } }
		END { if (seen) print v }' "$SERVER_LOG"
}

run_kind() {
	VDEV_KIND=$1
	local vdev iface
	echo "=== $VDEV_KIND"
	case $VDEV_KIND in
	af_packet | af_xdp | af_packet_2q)
		"$ROOT/scripts/netns" up "$NS" --outer "$OUTER" --inner "$INNER" \
			--ip "$CLIENT_IP/24" || fail "scripts/netns up failed"
		iface=$INNER
		case $VDEV_KIND in
		af_packet) vdev="net_af_packet0,iface=$OUTER" ;;
		af_xdp) vdev="net_af_xdp0,iface=$OUTER,start_queue=0,queue_count=1" ;;
		# two loops, one queue each: the kernel's fanout spreads flows
		af_packet_2q) vdev="net_af_packet0,iface=$OUTER,qpairs=2" ;;
		esac
		if [ "$VDEV_KIND" = af_packet_2q ]; then
			start_dpdk "$vdev" 2
			grep -q "2 queue pair(s)" "$SERVER_LOG" || fail "the port did not get 2 queue pairs"
		else
			start_dpdk "$vdev"
		fi
		;;
	tap)
		vdev="net_tap0,iface=$TAP"
		start_dpdk "$vdev"
		iface=$TAP
		ip addr add "$CLIENT_IP/24" dev "$TAP" || fail "cannot configure $TAP"
		ip link set "$TAP" up || fail "cannot bring $TAP up"
		sysctl -q -w "net.ipv6.conf.$TAP.disable_ipv6=1" >/dev/null 2>&1 || true
		ethtool -K "$TAP" tx off >/dev/null 2>&1 || true
		;;
	esac

	echo "== ping"
	in_client ping -c 3 -i 0.2 -W 2 "$SERVER_IP" || fail "$VDEV_KIND: no ping replies"
	echo "== ARP"
	local neigh
	neigh=$(in_client ip neigh show "$SERVER_IP" dev "$iface")
	echo "$neigh"
	case $neigh in
	*"lladdr $SERVER_MAC "*) ;;
	*) fail "$VDEV_KIND: ARP did not resolve $SERVER_IP to $SERVER_MAC" ;;
	esac

	echo "== udp-integrity"
	local out rc=0
	out=$(in_client "$UDP_INTEGRITY" --addr "$SERVER_IP" --port "$PORT" --count 4000 \
		--max-size 1472 --window 32 --timeout 60) || rc=$?
	echo "$out"
	check_server_alive
	[ "$rc" -eq 0 ] || fail "$VDEV_KIND: udp-integrity exited with status $rc"

	if [ "$VDEV_KIND" = af_packet_2q ]; then
		# 12 more flows (each run is a new source port): both loops
		# must have echoed some
		local f
		for f in $(seq 12); do
			out=$(in_client "$UDP_INTEGRITY" --addr "$SERVER_IP" --port "$PORT" \
				--count 300 --window 16 --timeout 30 --seed "$f") ||
				fail "$VDEV_KIND: flow $f: $out"
		done
		stop_server
		grep -E 'udp [0-9]+: rx' "$SERVER_LOG"
		local l
		for l in 0 1; do
			grep -q -E "loop $l: udp $PORT: rx [1-9]" "$SERVER_LOG" ||
				fail "$VDEV_KIND: loop $l echoed nothing (13 flows)"
		done
		cleanup_net
		echo "=== $VDEV_KIND: ok"
		return
	fi

	echo "== malformed frames"
	in_client /usr/bin/python3 "$HERE/dpdk_inject.py" "$iface" "$SERVER_MAC" \
		"$CLIENT_IP" "$SERVER_IP" "$PORT" "$COUNT" || fail "$VDEV_KIND: injection failed"
	sleep 0.5
	check_server_alive
	out=$(in_client "$UDP_INTEGRITY" --addr "$SERVER_IP" --port "$PORT" --count 200 \
		--window 8 --timeout 30) || fail "$VDEV_KIND: no echo after the malformed frames: $out"
	echo "after injection: $out"

	stop_server
	grep -E 'net: |udp [0-9]+: rx|dpdk port' "$SERVER_LOG"
	local k v
	local kinds="ip_csum ip_opts ip_ttl udp_csum udp_bad no_port proto arp_bad ethertype"
	# DPDK's af_packet PMD joins a fanout group with PACKET_FANOUT_FLAG_DEFRAG:
	# the kernel reassembles (or, for a lone fragment, holds and expires)
	# fragments before the PMD sees them, so only the other vdevs see ours.
	[ "$VDEV_KIND" = af_packet ] || kinds="$kinds ip_frag"
	for k in $kinds; do
		v=$(stat_of "$k")
		[ -n "$v" ] || fail "$VDEV_KIND: no counter $k in the stats"
		[ "$v" -ge "$COUNT" ] || fail "$VDEV_KIND: $k counted $v, want >= $COUNT"
	done
	# a runt frame: "short" as is, "ip_bad" where the wire pads it
	v=$(($(stat_of short) + $(stat_of ip_bad)))
	[ "$v" -ge $((2 * COUNT)) ] || fail "$VDEV_KIND: short+ip_bad counted $v, want >= $((2 * COUNT))"
	grep -q "icmp echo [1-9]" "$SERVER_LOG" || fail "$VDEV_KIND: no ICMP echo counted"
	cleanup_net
	echo "=== $VDEV_KIND: ok"
}

for kind in ${COIL_DPDK_VDEVS:-af_packet af_xdp tap af_packet_2q}; do
	run_kind "$kind"
done
echo "PASS: dpdk_udp"
