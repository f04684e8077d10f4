#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The client side of TLS (issue 16): coil-load over TLS, and certificates a
# verifying client must refuse. A test CA and certificates are made here
# with openssl (an expired one with `openssl ca` and dates in 2020).
#  1. coil-load https:// against coil-httpd --tls-cert: status and framing
#     checked, the certificate verified (--ca, host name localhost and IP
#     127.0.0.1), ALPN; --handshakes --no-resume makes only full handshakes,
#     --handshakes alone resumes (tickets, TLS 1.3).
#  2. h2load --h1 over TLS, and coil-load against nginx over TLS, where
#     they are installed.
#  3. Refused by a verifying client (coil-load --ca, curl): an expired
#     certificate, one for another host, a self-signed one; each with its
#     reason in coil-load's log and a non-zero exit.
#  4. coil-load echo --tls --verify against coil-echo --tls-cert: 1 B to
#     256 KiB messages on 1 and 1,000 connections, every byte compared.
# COIL_BACKEND=epoll runs both sides on epoll.
#
# usage: tls_client.sh <coil-echo> <coil-httpd>   (COIL_LOAD: coil-load)
set -euo pipefail
ECHO=$(realpath "$1") HTTPD=$(realpath "$2")
LOAD=$(realpath "${COIL_LOAD:?COIL_LOAD: the coil-load binary}")
BE=()
[[ -n ${COIL_BACKEND:-} ]] && BE=(--backend "$COIL_BACKEND")
command -v openssl >/dev/null || { echo "SKIP: no openssl"; exit 77; }
T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
fail() { echo "FAIL: tls_client: $*" >&2; for f in "$T"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -5 "$f" >&2; }; done; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cd "$T"
# ---- certificates ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout ca.key -out ca.pem -days 2 -subj /CN=coil-test-ca 2>/dev/null
csr() { # name cn san
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
	printf 'subjectAltName=%s\n' "$3" >"$1.ext"
}
mkcert() { # name cn san
	csr "$@"
	openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key \
		-CAcreateserial -days 2 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
mkcert good localhost DNS:localhost,IP:127.0.0.1
mkcert other other.example DNS:other.example
# Expired: valid for one day in 2020, signed by the same CA.
csr expired localhost DNS:localhost,IP:127.0.0.1
cat >ca.cnf <<'CNF'
[ca]
default_ca = d
[d]
database = index.txt
new_certs_dir = .
serial = serial.txt
default_md = sha256
policy = p
[p]
commonName = supplied
CNF
: >index.txt
echo 01 >serial.txt
openssl ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key \
	-in expired.csr -out expired.pem -extfile expired.ext \
	-startdate 20200101000000Z -enddate 20200102000000Z 2>/dev/null ||
	fail "openssl ca: cannot make the expired certificate"
openssl x509 -in expired.pem -noout -checkend 0 >/dev/null &&
	fail "the expired certificate is not expired"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout self.key -out self.pem -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost 2>/dev/null

start() { # log prog args... -> sets PORT
	local log=$1
	shift
	: >"$log"   # before the fork: no stale "listening on" line
	"$@" "${BE[@]}" --cores 1 --addr 127.0.0.1 --port 0 >"$log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 200); do
		PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | cut -d: -f2 || true)
		[[ -n $PORT ]] && return 0
		kill -0 "${PIDS[-1]}" 2>/dev/null || break
		sleep 0.05
	done
	fail "$1 did not start"
}
stop_last() {
	kill "${PIDS[-1]}"
	wait "${PIDS[-1]}" || fail "server exit status"
	unset 'PIDS[-1]'
}
# jget FILE EXPR: a field of coil-load's JSON (python: j is the object).
jget() { /usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
# load NAME ARGS...: coil-load, bounded; its status in RC, output in NAME.out
load() {
	local name=$1
	shift
	RC=0
	timeout -k 5 120 "$LOAD" "$@" "${BE[@]}" -t 1 --quiet --json "$name.json" \
		>"$name.out" 2>"$name.log" || RC=$?
}

# ---- 0. coil-load's TLS options: status 2 and the reason ----
bad_args() { # reason args...
	local why=$1 rc=0
	shift
	"$LOAD" "$@" >args.out 2>&1 || rc=$?
	[[ $rc == 2 ]] || fail "coil-load $*: exit $rc, expected 2"
	grep -q -- "$why" args.out || fail "coil-load $*: no '$why' in: $(cat args.out)"
}
bad_args "goes with TLS" http http://127.0.0.1:1/ --ca ca.pem
bad_args "goes with TLS" echo 127.0.0.1:1 --handshakes
bad_args "is an echo option" http https://127.0.0.1:1/ --tls
bad_args "not with --dpdk" http https://127.0.0.1:1/ --dpdk "--no-pci" --ip 10.0.0.1/24
bad_args "missing.pem" http https://127.0.0.1:1/ --ca missing.pem -d 1s
bad_args "no PEM certificate" http https://127.0.0.1:1/ --ca good.key -d 1s

# ---- 1. coil-load https:// against coil-httpd ----
start httpd.log "$HTTPD" --tls-cert good.pem --tls-key good.key
for host in localhost 127.0.0.1; do
	load ka http "https://$host:$PORT/plaintext" --ca ca.pem -c 4 -d 1s
	[[ $RC == 0 ]] || fail "keep-alive over TLS to $host: exit $RC: $(cat ka.out)"
	[[ $(jget ka.json 'j["status"].get("200", 0) > 0 and j["done"] == j["status"]["200"]') == True ]] ||
		fail "keep-alive over TLS: not all 200: $(cat ka.out)"
	[[ $(jget ka.json 'j["tls"]["verified"] and j["tls"]["version"].startswith("TLSv1.")') == True ]] ||
		fail "keep-alive over TLS: not verified: $(cat ka.out)"
	# keep-alive: one handshake per connection (a reconnect would add more)
	[[ $(jget ka.json 'j["tls"]["handshakes"]') == 4 ]] ||
		fail "keep-alive over TLS: $(jget ka.json 'j["tls"]["handshakes"]') handshakes, expected 4"
done
load full http "https://localhost:$PORT/plaintext" --ca ca.pem -c 2 -d 2s \
	--handshakes --no-resume
[[ $RC == 0 ]] || fail "--handshakes --no-resume: exit $RC: $(cat full.out)"
[[ $(jget full.json 'j["tls"]["handshakes"] >= 10 and j["tls"]["resumed"] == 0 and j["done"] >= j["tls"]["handshakes"] - 2') == True ]] ||
	fail "--handshakes --no-resume: $(cat full.out)"
load res http "https://localhost:$PORT/plaintext" --ca ca.pem -c 1 -d 2s \
	--handshakes
[[ $RC == 0 ]] || fail "--handshakes: exit $RC: $(cat res.out)"
# one connection at a time: every handshake after the first resumes
[[ $(jget res.json 'j["tls"]["handshakes"] >= 10 and j["tls"]["resumed"] >= j["tls"]["handshakes"] - 2') == True ]] ||
	fail "--handshakes did not resume: $(cat res.out)"
# a plain-HTTP client on the TLS port gets no response: an error, not a hang
load plain http "http://127.0.0.1:$PORT/plaintext" -c 1 -d 1s --timeout 2000
[[ $RC == 1 ]] || fail "plain HTTP to a TLS port: exit $RC"

# ---- 2. h2load and nginx ----
if command -v h2load >/dev/null; then
	out=$(timeout -k 5 60 h2load --h1 -n 400 -c 4 -t 1 \
		"https://127.0.0.1:$PORT/plaintext" 2>&1) || fail "h2load: $out"
	grep -q "400 succeeded, 0 failed, 0 errored" <<<"$out" || fail "h2load: $out"
	grep -q "TLS Protocol: TLSv1" <<<"$out" || fail "h2load: not TLS: $out"
	echo "h2load --h1 over TLS: ok"
else
	echo "h2load not installed: skipping it (Debian nghttp2-client)"
fi
stop_last
if command -v nginx >/dev/null; then
	NPORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p nginx
	NUSER=''
	(($(id -u) == 0)) && NUSER='user root root;'
	cat >nginx/nginx.conf <<CONF
$NUSER
daemon off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx.log error;
events { worker_connections 1024; }
http {
	access_log off;
	keepalive_requests 100000000;
	client_body_temp_path $T/nginx/cb;
	proxy_temp_path $T/nginx/px;
	fastcgi_temp_path $T/nginx/fc;
	uwsgi_temp_path $T/nginx/uw;
	scgi_temp_path $T/nginx/sc;
	server {
		listen 127.0.0.1:$NPORT ssl;
		ssl_certificate $T/good.pem;
		ssl_certificate_key $T/good.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		location /plaintext {
			default_type text/plain;
			return 200 "Hello, World!";
		}
	}
}
CONF
	nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx.log" &
	PIDS+=($!)
	for _ in $(seq 100); do
		curl -s --cacert ca.pem "https://localhost:$NPORT/plaintext" >/dev/null && break
		kill -0 "${PIDS[-1]}" 2>/dev/null || fail "nginx did not start"
		sleep 0.05
	done
	load ngx http "https://localhost:$NPORT/plaintext" --ca ca.pem -c 4 -d 1s
	[[ $RC == 0 ]] || fail "coil-load against nginx over TLS: exit $RC: $(cat ngx.out)"
	[[ $(jget ngx.json 'j["status"].get("200", 0) > 0 and j["done"] == j["status"]["200"] and j["tls"]["handshakes"] == 4') == True ]] ||
		fail "coil-load against nginx over TLS: $(cat ngx.out)"
	load ngxh http "https://localhost:$NPORT/plaintext" --ca ca.pem -c 1 -d 2s --handshakes
	[[ $RC == 0 && $(jget ngxh.json 'j["tls"]["handshakes"] >= 10 and j["tls"]["resumed"] >= 1') == True ]] ||
		fail "coil-load --handshakes against nginx: exit $RC: $(cat ngxh.out)"
	stop_last
	echo "coil-load against nginx over TLS: ok"
else
	echo "nginx not installed: skipping it (Debian nginx-light)"
fi

# ---- 3. certificates a verifying client refuses ----
refused() { # cert key url-host reason
	start "bad-$1.log" "$HTTPD" --tls-cert "$1.pem" --tls-key "$2.key"
	load "bad-$1" http "https://$3:$PORT/plaintext" --ca ca.pem -c 1 -d 500ms
	[[ $RC == 1 ]] || fail "$1: coil-load exit $RC, expected 1: $(cat "bad-$1.out")"
	[[ $(jget "bad-$1.json" 'j["done"] == 0 and j["errors"]["tls_handshake"] > 0') == True ]] ||
		fail "$1: not refused: $(cat "bad-$1.out")"
	grep -Eq "$4" "bad-$1.log" || fail "$1: no reason '$4' in: $(head -3 "bad-$1.log")"
	# without --ca (no verification) the same server is fine
	load "ok-$1" http "https://$3:$PORT/plaintext" -c 1 -d 300ms
	[[ $RC == 0 ]] || fail "$1: unverified coil-load failed: $(cat "ok-$1.out")"
	if command -v curl >/dev/null; then
		RC=0
		curl -sS --max-time 10 --cacert ca.pem "https://$3:$PORT/plaintext" \
			>/dev/null 2>curl.err || RC=$?
		[[ $RC == 60 ]] || fail "$1: curl exit $RC, expected 60: $(cat curl.err)"
	fi
	stop_last
	echo "$1 certificate refused: ok"
}
refused expired expired localhost "certificate has expired"
refused other other localhost "hostname mismatch"
refused self self localhost "self.signed certificate"
# and a python ssl client refuses the expired one too
start py.log "$HTTPD" --tls-cert expired.pem --tls-key expired.key
/usr/bin/python3 - "$PORT" <<'PY' || fail "python ssl accepted the expired certificate"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile="ca.pem")
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
        ctx.wrap_socket(s, server_hostname="localhost")
except ssl.SSLCertVerificationError as e:
    assert "expired" in str(e), e
    sys.exit(0)
sys.exit(1)
PY
stop_last

# ---- 4. echo over TLS, every byte compared ----
# (1,000 handshakes at once take seconds, more under ASan on a loaded
# machine: a generous handshake timeout; integrity is what is tested here)
start echo.log "$ECHO" --tls-cert good.pem --tls-key good.key \
	--tls-handshake-ms 120000
for c in 1 1000; do
	for size in 1 1000 16385 65536 262144; do
		# 1,000 connections: the extremes only (each run makes 1,000
		# full handshakes first: seconds on a loaded 2-core machine)
		[[ $c == 1000 && $size != 1 && $size != 262144 ]] && continue
		for d in 500ms 30s 60s; do
			[[ $c == 1000 && $d == 500ms ]] && d=10s
			load "e$c-$size" echo "localhost:$PORT" --tls --ca ca.pem \
				--verify --size "$size" -c "$c" -d "$d" --timeout 60000
			[[ $RC == 0 ]] || fail "echo $size B on $c: exit $RC: $(cat "e$c-$size.out")"
			# every connection got bytes back (its handshake is
			# counted at its first echoed bytes); else once more,
			# longer, on a slow machine
			[[ $(jget "e$c-$size.json" "j['tls']['handshakes']") == "$c" ]] && break
			echo "echo $size B on $c: $(jget "e$c-$size.json" "j['tls']['handshakes']") handshakes in $d, again for 30s"
		done
		[[ $(jget "e$c-$size.json" "j['done'] > 0 and j['errors']['mismatched_bytes'] == 0 and j['tls']['handshakes'] == $c and j['config']['verify']") == True ]] ||
			fail "echo $size B on $c connections: $(cat "e$c-$size.out")"
		echo "echo over TLS, $size B on $c connection(s): $(jget "e$c-$size.json" 'j["done"]') messages verified"
	done
done
stop_last
echo "tls_client: ok"
