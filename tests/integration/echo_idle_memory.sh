#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Idle connections must be cheap: with 15,000 connections open and idle
# (each accepted and echoed once) the server may use at most 1 KiB of
# VmRSS per connection more than after a 100-connection warm-up that cycled
# the whole receive pool. An idle connection holds no receive buffer, so
# what it costs is its record.
# Only registered for non-sanitized builds (ASan inflates RSS).
#
# usage: echo_idle_memory.sh <coil-echo> <echo-integrity> <idle-conns>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lib_init echo_idle_memory "$@"

N=15000
LIMIT=1024	# bytes of server RSS per idle connection

require_nofile $((N + 200))
read -r PORT_LO PORT_HI </proc/sys/net/ipv4/ip_local_port_range
[ $((PORT_HI - PORT_LO + 1)) -ge $((N + 1000)) ] ||
	skip "ephemeral port range $PORT_LO-$PORT_HI is too small for $N connections"

established_is() { [ "$(server_established)" -eq "$1" ]; }

start_server --cores 1
# The receive pool (2048 x 4 KiB per loop by default) is reserved at start
# and the kernel hands its buffers out in ring order, so it becomes resident
# as traffic cycles through it: a fixed cost, not a per-connection one.
# Push several pool-fulls through first so the baseline includes it.
run_integrity "warm-up" 60 --conns 100 --waves 1 --msgs 4 --min-size 65536 --max-size 262144 --seed 600
wait_for 10 established_is 0 ||
	fail "$(server_established) warm-up connections still established"
RSS0=$(server_rss_kb)
echo "rss after warm-up: ${RSS0} kB"

start_idle $N
wait_for 10 established_is $N ||
	fail "server has $(server_established) established connections, want $N"
check_server_alive
RSS1=$(server_rss_kb)
PER_CONN=$(((RSS1 - RSS0) * 1024 / N))
echo "rss with $N idle connections: ${RSS1} kB (+$((RSS1 - RSS0)) kB)"
echo "rss_per_conn=$PER_CONN"

release_idle
[ "$IDLE_CLOSED" = 0 ] || fail "server closed $IDLE_CLOSED idle connections while they were measured"
stop_server

[ "$PER_CONN" -le "$LIMIT" ] || fail "rss_per_conn=$PER_CONN bytes > $LIMIT"
echo "PASS: echo_idle_memory"
