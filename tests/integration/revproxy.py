#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The upstream and the client of httpd_revproxy.sh (coil-httpd --proxy).

    revproxy.py upstream PORT_FILE
        an HTTP/1.1 keep-alive upstream on 127.0.0.1 (port written to
        PORT_FILE) that counts the connections it accepted:
          GET  /up/headers  the request's header fields as JSON; answers
                            with hop-by-hop fields of its own
          GET  /up/count    connections accepted so far
          GET  /up/big?n=N  N deterministic bytes, chunked, in 64 KiB pieces
          POST /up/echo     the body back
          GET  /up/sleep    answers after 3 s
          GET  /up/cut      announces 100000 bytes, sends 1000, closes

    revproxy.py client PROXY_PORT UPSTREAM_PORT
        the checks through the proxy; exits 0, or 1 with FAIL lines.
"""
import hashlib
import http.client
import http.server
import json
import socket
import sys
import threading
import time

FAILS = []


def fail(msg):
    print("FAIL: " + msg, flush=True)
    FAILS.append(msg)


def pattern(n):
    block = hashlib.sha256(b"coil").digest() * 2048   # 64 KiB
    out = bytearray()
    while len(out) < n:
        out += block
    return bytes(out[:n])


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    conns = 0
    lock = threading.Lock()

    def setup(self):
        with Upstream.lock:
            Upstream.conns += 1
        super().setup()

    def log_message(self, *args):
        pass

    def send(self, status, body, extra=()):
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path
        if path == "/up/headers":
            body = json.dumps([[k, v] for k, v in self.headers.items()])
            self.send(200, body.encode(), [
                ("Connection", "X-Up-Hop"), ("X-Up-Hop", "secret"),
                ("Keep-Alive", "timeout=5"), ("X-Up-Keep", "yes"),
                ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        elif path == "/up/count":
            self.send(200, str(Upstream.conns).encode())
        elif path.startswith("/up/big?n="):
            n = int(path.split("=", 1)[1])
            block = pattern(65536)
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, n, 65536):
                piece = block[:min(65536, n - i)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/up/sleep":
            time.sleep(3)
            self.send(200, b"late")
        elif path == "/up/cut":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.send(404, b"no")

    def do_HEAD(self):
        # the head GET /up/big would have: chunked, no body
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.send(200, self.rfile.read(n))


def upstream(port_file):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    srv.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


def get(port, path, method="GET", body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def dechunk(raw, h, final=False):
    """Consume complete chunks from the front of raw into hash h; returns
    the data bytes consumed."""
    n = 0
    while True:
        eol = raw.find(b"\r\n")
        if eol < 0:
            return n
        size = int(raw[:eol].split(b";")[0], 16)
        if size == 0:
            return n
        if len(raw) < eol + 2 + size + 2:
            return n
        h.update(raw[eol + 2:eol + 2 + size])
        del raw[:eol + 2 + size + 2]
        n += size


def big_digest(n):
    h = hashlib.sha256()
    block = pattern(65536)
    for i in range(0, n, 65536):
        h.update(block[:min(65536, n - i)])
    return h.hexdigest()


def client(port, uport, proxy_pid=0):
    # keep-alive clients, many requests: the upstream sees few connections
    n = 0
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10)
             for _ in range(4)]
    for i in range(50):
        for c in conns:
            c.request("GET", "/up/headers")
            r = c.getresponse()
            r.read()
            if r.status != 200:
                fail("GET /up/headers #%d: status %d" % (n, r.status))
            n += 1
    for c in conns:
        c.close()
    r, data = get(port, "/up/count")
    up = int(data)
    print("pool reuse: %d proxied requests, %d upstream connections" % (n, up))
    if up > 4:
        fail("%d requests took %d upstream connections (want <= 4)" % (n, up))

    # hop-by-hop fields go neither way; forwarding fields are added
    r, data = get(port, "/up/headers", headers={
        "Connection": "X-Secret", "X-Secret": "1", "Keep-Alive": "300",
        "TE": "trailers", "X-Forwarded-For": "10.0.0.1", "Via": "1.0 front",
        "X-Plain": "kept"})
    seen = {k.lower(): v for k, v in json.loads(data)}
    for h in ("x-secret", "keep-alive", "te", "connection", "transfer-encoding"):
        if h in seen:
            fail("request field %s reached the upstream: %r" % (h, seen[h]))
    want = {"x-forwarded-for": "10.0.0.1, 127.0.0.1", "x-forwarded-proto": "http",
            "via": "1.0 front, 1.1 coil", "x-plain": "kept",
            "host": "127.0.0.1:%d" % uport}
    for k, v in want.items():
        if seen.get(k) != v:
            fail("upstream saw %s: %r, want %r" % (k, seen.get(k), v))
    for h in ("X-Up-Hop", "Keep-Alive"):
        if r.getheader(h) is not None:
            fail("response field %s reached the client" % h)
    if r.getheader("X-Up-Keep") != "yes" or "1.1 coil" not in (r.getheader("Via") or ""):
        fail("end-to-end response fields lost: %r" % r.getheaders())
    if r.msg.get_all("Set-Cookie") != ["a=1", "b=2"]:
        fail("Set-Cookie not relayed twice: %r" % r.msg.get_all("Set-Cookie"))

    # many Connection options (beyond the proxy's on-stack set), named in
    # another case than the fields they drop: every one of them stays
    opts = ["X-Opt-%d" % i for i in range(40)]
    hdrs = {o: str(i) for i, o in enumerate(opts)}
    hdrs["Connection"] = " , ".join(o.upper() for o in opts)
    hdrs["X-Plain"] = "kept"
    r, data = get(port, "/up/headers", headers=hdrs)
    seen = {k.lower(): v for k, v in json.loads(data)}
    left = [o for o in opts if o.lower() in seen]
    if r.status != 200 or left or seen.get("x-plain") != "kept":
        fail("Connection options: status %d, reached the upstream: %r, "
             "x-plain %r" % (r.status, left, seen.get("x-plain")))

    # HEAD of a chunked resource: the client sees the framing GET would
    # have (Transfer-Encoding: chunked), not a Content-Length: 0
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("HEAD", "/up/big?n=10")
    r = c.getresponse()
    r.read()
    c.close()
    if (r.status != 200 or r.getheader("Content-Length") is not None or
            (r.getheader("Transfer-Encoding") or "").lower() != "chunked"):
        fail("HEAD of a chunked resource: status %d, fields %r"
             % (r.status, r.getheaders()))

    # bodies both ways, byte-identical
    body = pattern(300000)[::-1]
    r, data = get(port, "/up/echo", "POST", body)
    if r.status != 200 or data != body:
        fail("POST /up/echo: status %d, %d bytes back of %d" % (r.status, len(data), len(body)))
    big = 3 * 1024 * 1024 + 17
    r, data = get(port, "/up/big?n=%d" % big)
    if r.status != 200 or data != pattern(big):
        fail("GET /up/big: status %d, %d bytes, identical %s" % (r.status, len(data), data == pattern(big)))

    # a client slower than the upstream: the proxy pauses the upstream
    # (back-pressure), its memory stays bounded
    if proxy_pid:
        big = 128 << 20
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /up/big?n=%d HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n" % big)
        got, rss, want = 0, 0, hashlib.sha256()
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        body = head.split(b"\r\n\r\n", 1)[1]
        raw = bytearray(body)
        i = 0
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
            i += 1
            if i % 64 == 0:
                time.sleep(0.05)
                with open("/proc/%d/status" % proxy_pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss = max(rss, int(line.split()[1]))
            if len(raw) > (1 << 20):
                got += dechunk(raw, want)
        got += dechunk(raw, want, final=True)
        ok = want.hexdigest() == big_digest(big)
        print("slow reader: %d MiB through the proxy, identical %s, proxy "
              "max RSS %d KiB" % (got >> 20, ok, rss))
        if got != big or not ok:
            fail("slow reader: %d bytes of %d, identical %s; head %r" % (got, big, ok, head[:200]))
        if rss > 64 * 1024:
            fail("proxy RSS %d KiB while relaying to a slow reader (want "
                 "< 64 MiB: no back-pressure?)" % rss)

    # a slow upstream: 504 after the proxy's timeout (1 s)
    t = time.monotonic()
    r, data = get(port, "/up/sleep")
    took = time.monotonic() - t
    if r.status != 504 or took > 2.5:
        fail("GET /up/sleep: status %d after %.2f s (want 504 within 2.5 s)" % (r.status, took))

    # an upstream that dies mid-body: the client's answer is cut, no hang
    t = time.monotonic()
    try:
        r, data = get(port, "/up/cut")
        fail("GET /up/cut: a complete answer of %d bytes" % len(data))
    except (http.client.IncompleteRead, ConnectionError) as e:
        print("GET /up/cut: cut as it should be (%s)" % type(e).__name__)
    if time.monotonic() - t > 5:
        fail("GET /up/cut took %.1f s" % (time.monotonic() - t))

    # nothing listens behind /dead/: 502
    r, data = get(port, "/dead/x")
    if r.status != 502:
        fail("GET /dead/x: status %d, want 502" % r.status)
    # and the proxy still serves
    r, data = get(port, "/up/count")
    if r.status != 200:
        fail("GET /up/count at the end: status %d" % r.status)
    return 1 if FAILS else 0


if __name__ == "__main__":
    if sys.argv[1] == "upstream":
        upstream(sys.argv[2])
    else:
        sys.exit(client(int(sys.argv[2]), int(sys.argv[3]),
                        int(sys.argv[4]) if len(sys.argv) > 4 else 0))
