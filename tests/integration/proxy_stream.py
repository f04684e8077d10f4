#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The upstream and the client of httpd_proxy_stream.sh: large request
bodies streamed through coil-httpd --proxy.

    proxy_stream.py upstream PORT_FILE
        an HTTP/1.1 upstream on 127.0.0.1 (port written to PORT_FILE):
          POST|PUT /up/sum[?stall=S]  reads the body as it comes
              (Content-Length or chunked), answers its length, SHA-256 and
              framing as "LEN HEX cl|chunked|none"; with stall, sleeps S seconds after the first
              MiB (a slow upstream: the proxy must stop reading its client
              rather than queue the body)

    proxy_stream.py client PROXY_PORT PROXY_PID MIB MAX_HWM_KIB
        uploads MIB MiB through the proxy with Content-Length, then chunked
        (uneven chunk sizes), each to a stalling upstream; checks the
        checksums and that the proxy's peak RSS (VmHWM) stayed under
        MAX_HWM_KIB; and a POST with Content-Length: 0 keeps it
        upstream. Exits 0, or 1 with FAIL lines.
"""
import hashlib
import http.server
import os
import socket
import sys
import time

from testlib import read_to_eof

FAILS = []


def fail(msg):
    print("FAIL: " + msg, flush=True)
    FAILS.append(msg)


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def pieces(self, left):
        """The next `left` bytes of the input, in pieces."""
        while left:
            d = self.rfile.read(min(left, 1 << 20))
            if not d:
                raise ConnectionError("body cut")
            left -= len(d)
            yield d

    def body_pieces(self):
        """The body's bytes, in pieces, framing removed."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if te != "chunked":
            yield from self.pieces(int(self.headers.get("Content-Length", "0")))
            return
        while True:
            size = int(self.rfile.readline(4096).split(b";")[0], 16)
            if size == 0:
                while self.rfile.readline(4096) not in (b"\r\n", b""):
                    pass
                return
            yield from self.pieces(size)
            if self.rfile.read(2) != b"\r\n":
                raise ValueError("bad chunk end")

    def do_POST(self):
        stall = 0.0
        if "?stall=" in self.path:
            stall = float(self.path.split("?stall=", 1)[1])
        h, n = hashlib.sha256(), 0
        for d in self.body_pieces():
            if stall and n < (1 << 20) <= n + len(d):
                time.sleep(stall)
            h.update(d)
            n += len(d)
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            framing = b"chunked"
        elif self.headers.get("Content-Length") is not None:
            framing = b"cl"
        else:
            framing = b"none"
        body = b"%d %s %s" % (n, h.hexdigest().encode(), framing)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST


def serve(handler, port_file, port=0):
    """Serve `handler` on 127.0.0.1:port (0: any), one thread per
    connection; the port goes to port_file (written whole, then renamed).
    Shared with proxy_balance.py."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    srv.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def upload(port, total, chunked, pid, stall):
    """Send `total` bytes; returns (answer, sha256 hex sent, secs)."""
    base = os.urandom(1 << 20)
    h = hashlib.sha256()
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    method = b"PUT" if chunked else b"POST"
    framing = (b"Transfer-Encoding: chunked" if chunked
               else b"Content-Length: %d" % total)
    s.sendall(b"%s /up/sum?stall=%.1f HTTP/1.1\r\nHost: x\r\n%s\r\n"
              b"Connection: close\r\n\r\n" % (method, stall, framing))
    t0 = time.monotonic()
    sizes = [1, 1000, 65536, 300000, 1 << 20, 7, 4096]
    sent, i = 0, 0
    while sent < total:
        # a different block each time (the counter), so a lost or
        # repeated piece changes the checksum
        n = min(sizes[i % len(sizes)] if chunked else 1 << 20, total - sent)
        block = (i.to_bytes(8, "little") + base)[:n]
        h.update(block)
        if chunked:
            s.sendall(b"%x\r\n" % n + block + b"\r\n")
        else:
            s.sendall(block)
        sent += n
        i += 1
    if chunked:
        s.sendall(b"0\r\n\r\n")
    resp = read_to_eof(s)
    s.close()
    return resp, h.hexdigest(), time.monotonic() - t0


def client(port, pid, mib, max_hwm):
    total = mib << 20
    start = vm(pid, "VmHWM")
    print("proxy VmHWM before: %d KiB" % start)
    for chunked in (False, True):
        what = "chunked" if chunked else "Content-Length"
        try:
            resp, want, secs = upload(port, total, chunked, pid, 2.0)
        except OSError as e:
            fail("%s upload: %r" % (what, e))
            continue
        head, _, body = resp.partition(b"\r\n\r\n")
        hwm = vm(pid, "VmHWM")
        print("%s: %d MiB in %.1f s, answer %r, proxy VmHWM %d KiB"
              % (what, mib, secs, body[:80], hwm), flush=True)
        if not head.startswith(b"HTTP/1.1 200"):
            fail("%s upload: answer %r" % (what, resp[:200]))
        elif body != b"%d %s %s" % (total, want.encode(),
                                    b"chunked" if chunked else b"cl"):
            fail("%s upload: upstream got %r, sent %d %s"
                 % (what, body, total, want))
        if hwm > max_hwm:
            fail("%s upload: proxy VmHWM %d KiB > %d KiB (the body was "
                 "buffered, not streamed with back-pressure)"
                 % (what, hwm, max_hwm))
    # no body, but a length: the upstream still sees Content-Length: 0
    resp, want, secs = upload(port, 0, False, pid, 0)
    body = resp.partition(b"\r\n\r\n")[2]
    if body != b"0 %s cl" % want.encode():
        fail("Content-Length: 0 POST: upstream answered %r" % resp[:300])
    return 1 if FAILS else 0


if __name__ == "__main__":
    if sys.argv[1] == "upstream":
        serve(Upstream, sys.argv[2])
    else:
        sys.exit(client(int(sys.argv[2]), int(sys.argv[3]),
                        int(sys.argv[4]), int(sys.argv[5])))
