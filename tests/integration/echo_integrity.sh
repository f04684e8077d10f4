#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Byte-exact echo integrity: 1, 100 and 2000 concurrent connections, several
# waves each, against coil-echo --cores 2 with its default buffer pool and
# then with a tiny pool (16 x 512 B per loop) that runs dry all the time and
# must apply back-pressure rather than lose or corrupt data.
#
# usage: echo_integrity.sh <coil-echo> <echo-integrity> <idle-conns>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lib_init echo_integrity "$@"
require_nofile 2100

# scenario <label> <seed base> <msgs scale divisor>
scenarios() {
	local label=$1 seed=$2 div=$3
	run_integrity "$label: 1 conn, 1 B-256 KiB" 30 \
		--conns 1 --waves 5 --msgs $((120 / div)) --min-size 1 --max-size 262144 --seed "$seed"
	run_integrity "$label: 100 conns, 1 B-256 KiB" 30 \
		--conns 100 --waves 5 --msgs $((8 / div)) --min-size 1 --max-size 262144 --seed $((seed + 1))
	run_integrity "$label: 2000 conns, 1 B-16 KiB" 30 \
		--conns 2000 --waves 5 --msgs $((4 / div)) --min-size 1 --max-size 16384 --seed $((seed + 2))
}

start_server --cores 2
scenarios "default pool" 100 1
stop_server

start_server --cores 2 --bufs 16 --buf-size 512
scenarios "tiny pool" 200 4
stop_server

echo "PASS: echo_integrity"
