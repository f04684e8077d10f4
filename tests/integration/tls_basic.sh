#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# TLS on coil-echo and coil-httpd (issue 16): a test CA and certificates
# made here with openssl; echo integrity 1 B..256 KiB on 1 and 50
# connections (python ssl, every byte compared); curl over HTTPS with the
# CA and ALPN http/1.1; a wrong-host and a self-signed certificate refused
# by the client; a client stalling mid-handshake cut at --tls-handshake-ms;
# a bad key failing at start with status 2; a 3 MB file (sendfile read
# through the encryptor), ticket resumption on TLS 1.2 and 1.3, and TLS 1.2
# renegotiation refused. COIL_BACKEND=epoll runs it on
# epoll.
#
# usage: tls_basic.sh <coil-echo> <coil-httpd>
set -euo pipefail
ECHO=$(realpath "$1") HTTPD=$(realpath "$2")
BE=()
[[ -n ${COIL_BACKEND:-} ]] && BE=(--backend "$COIL_BACKEND")
command -v openssl >/dev/null || { echo "SKIP: no openssl"; exit 77; }
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [[ -f $T/log ]] && tail -5 "$T/log" >&2; exit 1; }

cd "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout ca.key -out ca.pem -days 2 -subj /CN=coil-test-ca 2>/dev/null
mkcert() { # name cn
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
	printf 'subjectAltName=DNS:%s\n' "$2" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key \
		-CAcreateserial -days 2 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
mkcert good localhost
mkcert other other.example
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout self.key -out self.pem -days 2 -subj /CN=localhost 2>/dev/null

start() { # prog args... -> sets PORT
	# emptied here, before the fork: the loop below must not find the
	# previous server's "listening on" line before the child truncates it
	: >"$T/log"
	"$@" "${BE[@]}" --cores 1 --addr 127.0.0.1 --port 0 >"$T/log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do
		PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$T/log" | cut -d: -f2 || true)
		[[ -n $PORT ]] && return 0
		sleep 0.05
	done
	fail "$1 did not start"
}

# A bad key: status 2 and the reason.
set +e
"$ECHO" --tls-cert good.pem --tls-key other.key 2>err.txt
rc=$?
set -e
[[ $rc == 2 ]] || fail "bad key: exit $rc, expected 2"
grep -Eq "mismatch|does not match" err.txt || fail "bad key: no reason: $(cat err.txt)"
set +e
"$ECHO" --tls-cert missing.pem --tls-key good.key 2>err.txt
rc=$?
set -e
[[ $rc == 2 ]] && grep -q "missing.pem" err.txt || fail "missing cert: exit $rc"

# Echo, SNI (other.example gets its own certificate), integrity.
# (the default handshake timeout: 50 handshakes at once may take more than
# a second on a loaded machine under ASan)
start "$ECHO" --tls-cert good.pem --tls-key good.key \
	--tls-cert other.pem --tls-key other.key
grep -q "TLS stays in user space" "$T/log" || fail "no kTLS probe line"
/usr/bin/python3 - "$PORT" <<'PY' || fail "echo over TLS"
import asyncio, os, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context(cafile="ca.pem")
sizes = [1, 2, 100, 1000, 4096, 16384, 16385, 65536, 100000, 262144]
async def one(sizes, host="localhost"):
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                         server_hostname=host)
    for n in sizes:
        d = os.urandom(n)
        w.write(d)
        got = await r.readexactly(n)
        assert got == d, n
    w.close()
async def main():
    await asyncio.wait_for(one(sizes), 30)
    await asyncio.wait_for(one([10], "other.example"), 10)
    await asyncio.wait_for(asyncio.gather(*[one(sizes[:8]) for _ in range(50)]), 60)
    # wrong host and self-signed are refused by the client
    for host, cafile in (("wrong.example", "ca.pem"), ("localhost", None)):
        c = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
        try:
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=c, server_hostname=host), 10)
        except ssl.SSLCertVerificationError:
            continue
        raise SystemExit("accepted %s" % host)
asyncio.run(main())
print("echo ok")
PY

kill "${PIDS[-1]}"; wait "${PIDS[-1]}" || fail "echo exit status"

# A client that stops after a partial ClientHello is cut at the timeout.
start "$ECHO" --tls-cert good.pem --tls-key good.key --tls-handshake-ms 500
/usr/bin/python3 - "$PORT" <<'PY' || fail "handshake timeout"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x16\x03\x01\x02\x00\x01")
s.settimeout(10)
t = time.monotonic()
try:
    assert s.recv(100) == b"", "data"
except ConnectionResetError:
    pass   # cut with a reset (an abort)
el = time.monotonic() - t
assert 0.3 < el < 5, el   # the timer may fire late on a loaded machine
print("cut after %.2fs" % el)
PY
grep -q "handshake timed out" "$T/log" || fail "no timeout log line"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" || fail "echo exit status"

# coil-httpd over HTTPS: curl with the CA, ALPN http/1.1, keep-alive.
if command -v curl >/dev/null; then
	mkdir root
	head -c 3000000 /dev/urandom >root/big.bin
	start "$HTTPD" --tls-cert good.pem --tls-key good.key --root root
	# A file: sendfile falls back to reading through the encryptor.
	curl -sS --cacert ca.pem "https://localhost:$PORT/big.bin" -o got.bin ||
		fail "curl big.bin"
	cmp -s got.bin root/big.bin || fail "big.bin differs over TLS"
	curl -sS --cacert ca.pem --limit-rate 4M "https://localhost:$PORT/big.bin" \
		-o got.bin || fail "curl big.bin slowly"
	cmp -s got.bin root/big.bin || fail "big.bin differs over TLS (slow)"
	# Resumption with a session ticket, TLS 1.2 and 1.3.
	for v in -tls1_2 -tls1_3; do
		rm -f sess.pem
		(sleep 0.5) | openssl s_client -connect "127.0.0.1:$PORT" $v \
			-servername localhost -CAfile ca.pem -sess_out sess.pem \
			>/dev/null 2>&1 || true
		(sleep 0.5) | openssl s_client -connect "127.0.0.1:$PORT" $v \
			-servername localhost -CAfile ca.pem -sess_in sess.pem \
			2>/dev/null | grep -q "^Reused, TLSv1" ||
			fail "no resumption with $v"
	done
	# Renegotiation (TLS 1.2, s_client's R) is refused.
	out=$(echo R | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
		-tls1_2 -servername localhost -CAfile ca.pem 2>&1 || true)
	grep -q RENEGOTIATING <<<"$out" || fail "s_client did not renegotiate"
	grep -q "no renegotiation" <<<"$out" || fail "renegotiation not refused: $out"
	out=$(curl -sS --cacert ca.pem -v --http1.1 \
		"https://localhost:$PORT/plaintext" "https://localhost:$PORT/plaintext" 2>&1) ||
		fail "curl: $out"
	grep -q "ALPN: server accepted http/1.1" <<<"$out" || grep -q "ALPN, server accepted to use http/1.1" <<<"$out" ||
		fail "no ALPN http/1.1: $out"
	grep -q "Re-using existing connection" <<<"$out" || fail "no keep-alive"
	kill "${PIDS[-1]}"; wait "${PIDS[-1]}" || fail "httpd exit status"
fi
echo "tls_basic: ok"
