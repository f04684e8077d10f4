#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The virtio path a VM uses, without a VM: coil-echo --udp on DPDK's
# virtio PMD (net_virtio_user0) attached to a vhost-user socket served by
# dpdk-testpmd (net_vhost0), which forwards (io mode) between that socket
# and a tap interface (net_tap0) whose kernel side is the client. ping,
# ARP and every byte of thousands of UDP datagrams go through virtio.
#
# vhost-user shares guest memory, so this needs hugepages (--no-huge
# cannot work): the test reserves 512 x 2 MiB, mounts a private
# hugetlbfs, and puts vm.nr_hugepages back as it found it, on any exit.
# (The kernel's vhost backend, /dev/vhost-net, is not needed.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lib_init dpdk_virtio "$@"
UDP_INTEGRITY=${COIL_UDP_INTEGRITY:-}

[ "${COIL_HAVE_DPDK:-0}" = 1 ] || skip "coil was built without libdpdk (meson feature dpdk)"
[ "$(id -u)" -eq 0 ] || skip "needs root (hugepages, tap)"
[ -x "$UDP_INTEGRITY" ] || fail "COIL_UDP_INTEGRITY is not an executable: '$UDP_INTEGRITY'"
TESTPMD=$(command -v dpdk-testpmd) || skip "no dpdk-testpmd (Debian package dpdk-dev)"
grep -qw hugetlbfs /proc/filesystems || skip "the kernel has no hugetlbfs"
[ -w /proc/sys/vm/nr_hugepages ] || skip "vm.nr_hugepages is not writable here"

# ASan build: a leak inside libxdp is not ours (same as dpdk_udp).
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$(dirname "$0")/dpdk_lsan.supp"

PAGES=512
OLD_PAGES=$(cat /proc/sys/vm/nr_hugepages)
HUGE=$TMP_DIR/huge
SOCK=$TMP_DIR/vhost.sock
TAP=cdv$$
PMD_PID=
SERVER_IP=10.77.0.1
CLIENT_IP=10.77.0.2

restore() {
	local rc=$?
	trap - EXIT
	set +e
	if [ -n "$PMD_PID" ]; then
		kill -TERM "$PMD_PID" 2>/dev/null
		wait_exit "$PMD_PID" 5 || kill -KILL "$PMD_PID" 2>/dev/null
		wait "$PMD_PID" 2>/dev/null
	fi
	# the server goes first: its hugepage files must be unused
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID"
		wait_exit "$SERVER_PID" 5 || kill -KILL "$SERVER_PID"
		wait "$SERVER_PID" 2>/dev/null
		SERVER_PID=
	fi
	mountpoint -q "$HUGE" && umount "$HUGE"
	echo "$OLD_PAGES" >/proc/sys/vm/nr_hugepages
	echo "vm.nr_hugepages back to $(cat /proc/sys/vm/nr_hugepages)"
	(exit "$rc")
	lib_cleanup
}
trap restore EXIT

echo "$PAGES" >/proc/sys/vm/nr_hugepages
got=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
[ "$got" -ge 256 ] || skip "could reserve only $got free 2 MiB hugepages (want 256+)"
mkdir -p "$HUGE"
mount -t hugetlbfs -o pagesize=2M nodev "$HUGE" || skip "cannot mount hugetlbfs"

echo "== dpdk-testpmd: net_vhost0 <-> net_tap0 ($TAP), io forwarding"
"$TESTPMD" -l 0,1 --no-pci --file-prefix="coil-vhost-$$" --huge-dir="$HUGE" -m 256 \
	--vdev "net_vhost0,iface=$SOCK,queues=1" --vdev "net_tap0,iface=$TAP" -- \
	--forward-mode=io --nb-cores=1 --total-num-mbufs=8192 --stats-period 10 \
	>"$TMP_DIR/testpmd.log" 2>&1 </dev/null &
PMD_PID=$!
wait_for 20 test -S "$SOCK" || { cat "$TMP_DIR/testpmd.log"; fail "testpmd did not create $SOCK"; }

SERVER_LOG=$TMP_DIR/server.log
SERVER_NAME=coil-echo
COIL_STATS=1 "$COIL_ECHO" --udp --port 7000 --cores 1 --ip "$SERVER_IP/24" --idle-sleep-us 20 \
	--dpdk "--no-pci --file-prefix=coil-virtio-$$ --huge-dir=$HUGE -m 256 --single-file-segments --vdev=net_virtio_user0,path=$SOCK,queues=1" \
	2>"$SERVER_LOG" </dev/null &
SERVER_PID=$!
wait_for 30 grep -q "listening on $SERVER_IP:7000 (udp)" "$SERVER_LOG" || {
	check_server_alive
	fail "coil-echo on virtio-user did not start"
}
grep "dpdk: port" "$SERVER_LOG"
grep -q "(net_virtio_user)" "$SERVER_LOG" || fail "not on the virtio PMD"
SERVER_MAC=$(sed -n 's/.*dpdk: port [0-9]* ([a-z_]*) \([0-9a-f:]*\) .*/\1/p' "$SERVER_LOG")

wait_for 10 ip link show "$TAP" >/dev/null 2>&1 || fail "no $TAP from testpmd"
ip addr add "$CLIENT_IP/24" dev "$TAP"
ip link set "$TAP" up
sysctl -q -w "net.ipv6.conf.$TAP.disable_ipv6=1" >/dev/null 2>&1 || true
ethtool -K "$TAP" tx off >/dev/null 2>&1 || true

echo "== ping through virtio"
timeout 30 ping -c 3 -i 0.3 -W 3 "$SERVER_IP" || fail "no ping replies through virtio"
neigh=$(ip neigh show "$SERVER_IP" dev "$TAP")
echo "$neigh"
case $neigh in
*"lladdr $SERVER_MAC "*) ;;
*) fail "ARP did not resolve $SERVER_IP to $SERVER_MAC" ;;
esac
echo "== udp-integrity through virtio"
out=$(timeout -k 2 90 "$UDP_INTEGRITY" --addr "$SERVER_IP" --port 7000 --count 3000 \
	--max-size 1472 --window 16 --timeout 60) || fail "udp-integrity: $out"
echo "$out"
check_server_alive
stop_server
grep -E 'net: |udp [0-9]+: rx|dpdk port' "$SERVER_LOG"
echo "PASS: dpdk_virtio"
