#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Mid-stream resets must not leak: waves in which half the connections stop
# inside a message and close with SO_LINGER {1, 0} (RST) while the server is
# still echoing to them. Afterwards the server's descriptor count must be
# exactly the baseline, no socket may stay allocated (checked in a private
# netns; this also sees io_uring direct descriptors, which /proc/PID/fd does
# not), and VmRSS may not grow beyond a small tolerance (see below).
#
# usage: echo_resets.sh <coil-echo> <echo-integrity> <idle-conns>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lib_init echo_resets "$@"
require_nofile 1100

CONNS=200		# per wave
RESETS=100		# of those, reset mid-stream
WAVES=10		# measured waves, after as many warm-up waves
# RSS tolerance. The warm-up runs the same load first, so every pool, slab
# and allocator arena the load needs is already touched when the baseline is
# taken; what can still move is allocator slack and a few lazily faulted
# text/data pages (tens of KiB). The warm-up is as long as the measurement
# because a free-stack pool (epoll takes receive buffers last-freed first;
# io_uring's ring cycles through all of them) or slab is resident up to the
# most it ever had in use at once, and that peak depends on timing: after
# 2 waves, later waves still raised it by 1-5 MiB half the time on epoll
# (bounded: it stops at the pool size); after 10, mostly by tens of KiB but
# now and then by more than the tolerance, hence the second block below.
# 1 MiB is far below what a leak in the reset path would cost over
# WAVES * CONNS = 2000 connections (1000 of them reset): one leaked receive
# buffer (>= 4 KiB) per reset is >= 4 MiB, one leaked
# 512-byte connection record per connection is 1 MiB.
RSS_TOLERANCE_KB=1024

fds_back_to() { [ "$(server_fd_count)" -eq "$1" ]; }
sockets_back_to() { [ "$(net_sockets_used)" -le "$1" ]; }

check_no_leaks() {
	local what=$1
	if ! wait_for 10 fds_back_to "$FD_BASE"; then
		ls -l "/proc/$SERVER_PID/fd" || true
		fail "$what: server holds $(server_fd_count) descriptors, baseline $FD_BASE"
	fi
	if [ -n "$SOCK_BASE" ] && ! wait_for 10 sockets_back_to "$SOCK_BASE"; then
		fail "$what: $(net_sockets_used) sockets allocated, baseline $SOCK_BASE" \
			"(leaked sockets, e.g. io_uring direct descriptors never closed)"
	fi
	if [ -n "$SOCK_BASE" ]; then
		echo "$what: fds=$(server_fd_count) (baseline $FD_BASE)," \
			"sockets=$(net_sockets_used) (baseline $SOCK_BASE)"
	else
		echo "$what: fds=$(server_fd_count) (baseline $FD_BASE), sockets unchecked (not in a private netns)"
	fi
}

# settled <command>: print its output once two samples 0.2 s apart agree.
settled() {
	local a b deadline=$((SECONDS + 5))
	b=$("$@")
	while :; do
		sleep 0.2
		a=$b
		b=$("$@")
		if [ "$a" = "$b" ] || [ $SECONDS -ge $deadline ]; then break; fi
	done
	echo "$b"
}

start_server --cores 2
# Baseline after one clean wave: the server may still be setting up loops
# (rings, eventfds) right after it reports its port.
run_integrity "settle" 30 --conns 50 --waves 1 --msgs 2 --max-size 4096 --seed 200
FD_BASE=$(settled server_fd_count)
SOCK_BASE=$(settled net_sockets_used)
echo "baseline: fds=$FD_BASE sockets=${SOCK_BASE:-unchecked} rss_kb=$(server_rss_kb)"

run_integrity "warm-up" 40 --conns $CONNS --waves $WAVES --resets $RESETS \
	--msgs 4 --min-size 1 --max-size 65536 --seed 300
check_no_leaks "after warm-up"
RSS_WARM=$(server_rss_kb)
echo "rss after warm-up: ${RSS_WARM} kB"

# measure_block <seed>: WAVES waves with resets; GROWTH = RSS growth (kB)
# over them.
measure_block() {
	local rss_end
	run_integrity "resets" 40 --conns $CONNS --waves $WAVES --resets $RESETS \
		--msgs 4 --min-size 1 --max-size 65536 --seed "$1"
	check_no_leaks "after $WAVES waves with resets"
	rss_end=$(server_rss_kb)
	GROWTH=$((rss_end - RSS_WARM))
	echo "rss after resets: ${rss_end} kB, growth ${GROWTH} kB (tolerance ${RSS_TOLERANCE_KB} kB)"
	RSS_WARM=$rss_end
}
measure_block 400
if [ "$GROWTH" -gt "$RSS_TOLERANCE_KB" ] && [ "$SANITIZED" != 1 ]; then
	# A leak grows again in every block; a new peak of the resident
	# high-water (see RSS tolerance above) seldom does twice in a row.
	echo "note: RSS grew ${GROWTH} kB; judging by one more block"
	measure_block 450
fi

# The server must still serve normally after all that.
run_integrity "clean wave after resets" 30 --conns 100 --waves 1 --msgs 4 --max-size 65536 --seed 500
check_no_leaks "after the clean wave"

if [ "$GROWTH" -gt "$RSS_TOLERANCE_KB" ]; then
	if [ "$SANITIZED" = 1 ]; then
		# ASan's quarantine and shadow memory make RSS meaningless; leaks are
		# LeakSanitizer's job at exit (stop_server checks the report).
		echo "note: RSS grew ${GROWTH} kB; not failing in a sanitized build"
	else
		fail "server RSS grew ${GROWTH} kB over $WAVES waves with resets (tolerance ${RSS_TOLERANCE_KB} kB)"
	fi
fi
stop_server
echo "PASS: echo_resets"
