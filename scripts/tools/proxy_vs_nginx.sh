#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Reverse-proxy requests/s and CPU per request: coil-httpd --proxy against
# nginx proxy_pass with upstream keepalive, one worker each, in front of
# the same upstream (coil-httpd /plaintext), driven by wrk with keep-alive
# clients. A rough probe, not scripts/bench: run it on a quiet machine.
#
# usage: scripts/tools/proxy_vs_nginx.sh [BUILD_DIR] [SECONDS] [CONNS]
set -euo pipefail
BUILD=${1:-build-rel}
DUR=${2:-5}
CONNS=${3:-32}
HTTPD=$BUILD/apps/coil-httpd
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
port_of() { # wait for "listening on 127.0.0.1:PORT" in $1
	for _ in $(seq 100); do
		p=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1")
		[ -n "$p" ] && { echo "$p"; return; }
		sleep 0.05
	done
	echo "no port in $1" >&2
	exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

"$HTTPD" --addr 127.0.0.1 --port 0 --cores 1 --poll never 2>"$TMP/up.log" &
PIDS+=($!)
UP=$(port_of "$TMP/up.log")
"$HTTPD" --addr 127.0.0.1 --port 0 --cores 1 --poll never \
	--proxy "/p/=http://127.0.0.1:$UP/" 2>"$TMP/px.log" &
COIL=$!
PIDS+=($COIL)
CPORT=$(port_of "$TMP/px.log")
NPORT=$(free_port)
mkdir -p "$TMP/ngx"
cat >"$TMP/ngx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $TMP/ngx/nginx.pid;
error_log $TMP/ngx/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $TMP/ngx/cb;
	proxy_temp_path $TMP/ngx/px;
	fastcgi_temp_path $TMP/ngx/fc;
	uwsgi_temp_path $TMP/ngx/uw;
	scgi_temp_path $TMP/ngx/sc;
	upstream up { server 127.0.0.1:$UP; keepalive 16; }
	server {
		listen 127.0.0.1:$NPORT;
		location /p/ {
			proxy_pass http://up/;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
CONF
nginx -p "$TMP/ngx" -c "$TMP/ngx/nginx.conf" -e "$TMP/ngx/error.log" &
NGX=$!
PIDS+=($NGX)
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$NPORT/p/plaintext" && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$CPORT/p/plaintext" >/dev/null

run() { # name pid port
	local c0 c1 out rps
	wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$3/p/plaintext" >/dev/null
	c0=$(cpu_ticks "$2")
	out=$(wrk -t1 -c"$CONNS" -d"${DUR}s" "http://127.0.0.1:$3/p/plaintext")
	c1=$(cpu_ticks "$2")
	rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	awk -v n="$1" -v r="$rps" -v t=$((c1 - c0)) -v d="$DUR" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%-12s %10.0f req/s  %6.2f us CPU/request\n", n, r, t / hz * 1e6 / (r * d) }'
}
echo "wrk -t1 -c$CONNS -d${DUR}s /p/plaintext through each proxy (upstream: coil-httpd)"
run coil-httpd "$COIL" "$CPORT"
run nginx "$NGX" "$NPORT"
