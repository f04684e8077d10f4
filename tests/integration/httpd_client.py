#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Python clients for the coil-httpd integration scripts (httpd_*.sh).

    httpd_client.py <check> --port PORT --root DIR --secret MARK [options]

Checks (each exits 0 when every expectation holds, 1 with a FAIL line that
names the request, what was expected and what came back):

  httpclient   the standard library's http.client: keep-alive, several
               requests on one connection, HEAD, HTTP/1.0 with and without
               keep-alive, Connection: close
  pipeline     raw pipelined requests: many in one write, responses in order
               (also with a 5 MiB file in the middle and random splits)
  body         chunked request bodies with trailers and Expect: 100-continue,
               followed by pipelined requests (no smuggling)
  bad          malformed requests: the right status, then the connection is
               closed and nothing after the bad request is answered
  timeouts     slowloris (a byte per 100 ms), a silent connection and an
               idle keep-alive connection are cut off by the timeouts
  hammer       bad and abusive clients in threads while a good client keeps
               getting fast, correct answers
  traversal    attempts to leave the document root never return the content
               of a file outside it

Only the standard library; the system /usr/bin/python3.
"""
import argparse
import http.client
import multiprocessing
import os
import random
import socket
import statistics
import struct
import sys
import threading
import time

PLAINTEXT = b"Hello, World!"
JSON = b'{"message":"Hello, World!"}'
# the server's address: 127.0.0.1, or coil on DPDK across a veth (dpdk_tcp)
HOST = os.environ.get("COIL_HTTPD_HOST", "127.0.0.1")


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def show(b, limit=120):
    """A request or response shortened for a message."""
    if isinstance(b, str):
        b = b.encode("latin-1")
    s = repr(b[:limit])
    return s + ("...(%d bytes)" % len(b) if len(b) > limit else "")


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(lower-case name, value)]
        self.body = body

    def get(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def closes(self):
        return "close" in [t.strip().lower()
                           for t in (self.get("connection") or "").split(",")]

    def __repr__(self):
        return "%s %d %s, %d body bytes" % (self.version, self.status,
                                            self.reason, len(self.body))


class Raw:
    """A client socket that reads HTTP/1.1 responses by hand."""

    def __init__(self, port, timeout=10.0):
        self.s = socket.create_connection((HOST, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.s.close()

    def reset(self):
        """Close with RST (SO_LINGER 0)."""
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          struct.pack("ii", 1, 0))
        self.s.close()

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise EOFError("connection closed by the server")
        self.buf += d

    def _until(self, sep, limit=1 << 20):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return out
            check(len(self.buf) < limit, "no %r within %d bytes" % (sep, limit))
            self._fill()

    def _n(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, method="GET", interim=False):
        """Read one response; 1xx are skipped unless interim is true."""
        while True:
            head = self._until(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            parts = lines[0].decode("latin-1").split(" ", 2)
            check(len(parts) >= 2 and parts[0].startswith("HTTP/1.")
                  and parts[1].isdigit() and len(parts[1]) == 3,
                  "bad status line %s" % show(lines[0]))
            status = int(parts[1])
            headers = []
            for ln in lines[1:]:
                name, sep, value = ln.decode("latin-1").partition(":")
                check(sep and name and name == name.strip(),
                      "bad header line %s" % show(ln))
                headers.append((name.lower(), value.strip()))
            r = Response(parts[0], status, parts[2] if len(parts) > 2 else "",
                         headers, b"")
            if 100 <= status < 200:
                if interim:
                    return r
                continue
            break
        te = (r.get("transfer-encoding") or "").lower()
        cl = r.get("content-length")
        if method == "HEAD" or status in (204, 304):
            pass
        elif "chunked" in te:
            body = []
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    while self._until(b"\r\n"):
                        pass
                    break
                body.append(self._n(size))
                check(self._n(2) == b"\r\n", "chunk not followed by CRLF")
            r.body = b"".join(body)
        elif cl is not None:
            r.body = self._n(int(cl))
        else:
            while True:
                try:
                    self._fill()
                except EOFError:
                    break
            r.body, self.buf = self.buf, b""
        return r

    def closed_within(self, secs):
        """True once the server closes (FIN or RST) within secs; raises
        if it sends more bytes first; False on timeout."""
        deadline = time.monotonic() + secs
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.s.settimeout(left)
                d = self.s.recv(65536)
                if not d:
                    return True
                self.buf += d
                raise Fail("unexpected bytes after the response: %s"
                           % show(self.buf))
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.s.settimeout(10.0)


def req(method, target, headers=(), body=b"", version="HTTP/1.1",
        host=True):
    lines = ["%s %s %s" % (method, target, version)]
    if host:
        lines.append("Host: 127.0.0.1")
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def file_bytes(root, name):
    with open(os.path.join(root, name), "rb") as f:
        return f.read()


def expect_response(r, what, status, body=None, ctype=None):
    check(r.status == status, "%s: status %d, want %d (%r)"
          % (what, r.status, status, r))
    if body is not None:
        check(r.body == body, "%s: body %s, want %s"
              % (what, show(r.body), show(body)))
    if ctype is not None:
        got = (r.get("content-type") or "").split(";")[0].strip().lower()
        check(got == ctype, "%s: Content-Type %r, want %r" % (what, got, ctype))


# ---- httpclient ---------------------------------------------------------


class HTTP10Connection(http.client.HTTPConnection):
    _http_vsn = 10
    _http_vsn_str = "HTTP/1.0"


def do_httpclient(a):
    hello = file_bytes(a.root, "hello.txt")
    big_size = os.path.getsize(os.path.join(a.root, "big.bin"))
    c = http.client.HTTPConnection(HOST, a.port, timeout=10)
    plan = [
        ("GET", "/plaintext", 200, PLAINTEXT, "text/plain"),
        ("GET", "/json", 200, JSON, "application/json"),
        ("GET", "/hello.txt", 200, hello, "text/plain"),
        ("HEAD", "/big.bin", 200, b"", None),
        ("GET", "/no-such-file", 404, None, None),
        ("GET", "/sub/dir/file.txt", 200, b"nested file\n", "text/plain"),
        ("HEAD", "/plaintext", 200, b"", "text/plain"),
        ("GET", "/space%20name.txt", 200, b"a name with a space\n", None),
    ] * 3
    sock = None
    port = None
    for i, (m, path, status, body, ctype) in enumerate(plan):
        what = "http.client request %d on one connection: %s %s" % (i + 1, m, path)
        c.request(m, path)
        if sock is None:
            sock = c.sock
            port = sock.getsockname()[1]
        check(c.sock is sock and sock.getsockname()[1] == port,
              "%s: http.client had to reconnect (the server closed a "
              "keep-alive connection)" % what)
        r = c.getresponse()
        data = r.read()
        check(r.status == status, "%s: status %d, want %d" % (what, r.status, status))
        if body is not None:
            check(data == body, "%s: body %s, want %s" % (what, show(data), show(body)))
        if ctype:
            got = (r.getheader("Content-Type") or "").split(";")[0].strip()
            check(got == ctype, "%s: Content-Type %r, want %r" % (what, got, ctype))
        if m == "HEAD" and path == "/big.bin":
            check(r.getheader("Content-Length") == str(big_size),
                  "%s: Content-Length %r, want %d"
                  % (what, r.getheader("Content-Length"), big_size))
        check(r.getheader("Date"), "%s: no Date header" % what)
        check(not r.will_close, "%s: the server will close the connection "
              "(Connection: %r)" % (what, r.getheader("Connection")))
    print("http.client: %d requests on one keep-alive connection" % len(plan))

    # Connection: close on 1.1: answered, then closed.
    c.request("GET", "/plaintext", headers={"Connection": "close"})
    r = c.getresponse()
    data = r.read()
    check(r.status == 200 and data == PLAINTEXT,
          "GET /plaintext with Connection: close: %d %s" % (r.status, show(data)))
    check(r.will_close, "GET /plaintext with Connection: close: response does "
          "not say Connection: close")
    c.close()
    print("http.client: Connection: close honoured")

    # HTTP/1.0 without keep-alive: one response, then the server closes.
    c = HTTP10Connection(HOST, a.port, timeout=10)
    c.request("GET", "/plaintext")
    r = c.getresponse()
    data = r.read()
    check(r.status == 200 and data == PLAINTEXT,
          "HTTP/1.0 GET /plaintext: %d %s" % (r.status, show(data)))
    check(r.will_close, "HTTP/1.0 GET /plaintext without keep-alive: the "
          "response does not end the connection (Connection: %r)"
          % r.getheader("Connection"))
    c.close()
    # http.client closes its end itself; see that the server closes too.
    c = Raw(a.port)
    c.send(b"GET /plaintext HTTP/1.0\r\n\r\n")
    expect_response(c.response(), "raw HTTP/1.0 GET /plaintext", 200, PLAINTEXT)
    check(c.closed_within(3), "HTTP/1.0 GET /plaintext without keep-alive: the "
          "server did not close the connection within 3 s")
    c.close()
    print("http.client: HTTP/1.0 without keep-alive closed after the response")

    # HTTP/1.0 with Connection: keep-alive: several on one connection.
    c = HTTP10Connection(HOST, a.port, timeout=10)
    sock = None
    for i in range(5):
        what = "HTTP/1.0 keep-alive request %d" % (i + 1)
        c.request("GET", "/json" if i % 2 else "/hello.txt",
                  headers={"Connection": "keep-alive"})
        if sock is None:
            sock = c.sock
        check(c.sock is sock, "%s: http.client had to reconnect" % what)
        r = c.getresponse()
        data = r.read()
        check(r.status == 200 and data == (JSON if i % 2 else hello),
              "%s: %d %s" % (what, r.status, show(data)))
        check("keep-alive" in (r.getheader("Connection") or "").lower(),
              "%s: response lacks Connection: keep-alive (got %r)"
              % (what, r.getheader("Connection")))
        check(not r.will_close, "%s: server will close" % what)
    c.close()
    print("http.client: HTTP/1.0 keep-alive: 5 requests on one connection")


# ---- pipeline -----------------------------------------------------------


def do_pipeline(a):
    hello = file_bytes(a.root, "hello.txt")
    big = file_bytes(a.root, "big.bin")
    css = file_bytes(a.root, "style.css")
    data = file_bytes(a.root, "data.json")
    ten = [
        ("GET", "/plaintext", 200, PLAINTEXT),
        ("GET", "/json", 200, JSON),
        ("GET", "/hello.txt", 200, hello),
        ("HEAD", "/big.bin", 200, b""),
        ("GET", "/no-such-file", 404, None),
        ("GET", "/sub/dir/file.txt", 200, b"nested file\n"),
        ("GET", "/style.css", 200, css),
        ("GET", "/json", 200, JSON),
        ("HEAD", "/plaintext", 200, b""),
        ("GET", "/data.json", 200, data),
    ]

    def run(conn, plan, label, chunks=None):
        wire = b"".join(req(m, t) for m, t, _, _ in plan)
        if chunks is None:
            conn.send(wire)
        else:
            i = 0
            while i < len(wire):
                n = chunks()
                conn.send(wire[i:i + n])
                i += n
                if random.random() < 0.2:
                    time.sleep(0.001)
        for i, (m, t, status, body) in enumerate(plan):
            what = "%s: response %d of %d (%s %s)" % (label, i + 1, len(plan), m, t)
            try:
                r = conn.response(m)
            except (EOFError, ConnectionResetError, socket.timeout) as e:
                raise Fail("%s: %s" % (what, e))
            expect_response(r, what, status, body)
            if m == "HEAD" and t == "/big.bin":
                check(r.get("content-length") == str(len(big)),
                      "%s: Content-Length %r" % (what, r.get("content-length")))

    c = Raw(a.port)
    run(c, ten, "10 pipelined requests in one write")
    print("pipeline: 10 requests in one write, 10 responses in order")
    hundred = [("GET", "/plaintext", 200, PLAINTEXT), ("GET", "/json", 200, JSON)] * 50
    run(c, hundred, "100 pipelined requests in one write")
    print("pipeline: 100 more on the same connection, in order")
    mixed = [("GET", "/plaintext", 200, PLAINTEXT), ("GET", "/big.bin", 200, big),
             ("GET", "/json", 200, JSON), ("HEAD", "/big.bin", 200, b""),
             ("GET", "/big.bin", 200, big), ("GET", "/hello.txt", 200, hello)]
    run(c, mixed, "pipelined with two 5 MiB files in the middle")
    print("pipeline: 5 MiB files between small responses, in order, byte-identical")
    rnd = random.Random(a.seed)
    run(c, ten * 5, "50 pipelined requests in random splits",
        chunks=lambda: rnd.randint(1, 40))
    print("pipeline: 50 requests split at random byte boundaries, in order")
    c.close()

    # 1000 in one write on a fresh connection, read only once all are sent.
    c = Raw(a.port)
    plan = [("GET", "/plaintext", 200, PLAINTEXT)] * 1000
    sender = threading.Thread(target=lambda: c.send(
        b"".join(req(m, t) for m, t, _, _ in plan)))
    sender.start()
    run_read_only = plan
    for i, (m, t, status, body) in enumerate(run_read_only):
        r = c.response(m)
        expect_response(r, "1000 pipelined: response %d" % (i + 1), status, body)
    sender.join()
    c.close()
    print("pipeline: 1000 requests in one write, 1000 responses in order")


# ---- body ---------------------------------------------------------------
# POST|PUT /echo answers 200 with the request body (engine/http/builtin.c);
# other routes without a body handler read and discard a body after their
# response.


def after_body(c, first, label):
    """The request after a body on the same connection: either answered
    (GET /json) or the connection was closed and the first response said so."""
    if first.closes():
        check(c.closed_within(3), "%s: response said Connection: close but "
              "the connection stayed open" % label)
        return "closed after the response (Connection: close)"
    try:
        r = c.response()
    except EOFError:
        raise Fail("%s: connection closed without Connection: close in the "
                   "response to the request with a body" % label)
    expect_response(r, "%s: the pipelined GET /json after the body" % label,
                    200, JSON)
    return "next request answered on the same connection"


def chunked(body, size):
    out = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
           for i in range(0, len(body), size)]
    return b"".join(out) + b"0\r\n\r\n"


def send_and_read(c, wire):
    """Send `wire` from a thread while reading the response, so that a
    server that answers early (413) and stops reading cannot deadlock us."""
    def push():
        try:
            c.send(wire)
        except OSError:
            pass  # the server closed after answering; its response counts
    th = threading.Thread(target=push, daemon=True)
    th.start()
    try:
        return c.response()
    finally:
        th.join(10)


def do_body(a):
    nxt = req("GET", "/json")
    rnd = random.Random(a.seed)
    blob = bytes(rnd.getrandbits(8) for _ in range(min(a.max_body, 100000)))
    cases = [
        # label, request, status, echoed body
        ("POST /echo, chunked with extensions and a trailer",
         req("POST", "/echo", ["Transfer-Encoding: chunked"],
             b"5\r\nhello\r\n6;ext=1;q=\"x\"\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
         200, b"hello world"),
        ("POST /echo, chunked, %d bytes in 100-byte chunks" % len(blob),
         req("POST", "/echo", ["Transfer-Encoding: chunked"], chunked(blob, 100)),
         200, blob),
        ("PUT /echo, chunked, upper-case hex sizes",
         req("PUT", "/echo", ["Transfer-Encoding: chunked"],
             b"A\r\n0123456789\r\n00000\r\n\r\n"), 200, b"0123456789"),
        ("POST /echo, Content-Length",
         req("POST", "/echo", ["Content-Length: 11"], b"hello world"),
         200, b"hello world"),
        ("POST /echo, Content-Length %d (--max-body)" % a.max_body,
         req("POST", "/echo", ["Content-Length: %d" % a.max_body],
             bytes(a.max_body)), 200, bytes(a.max_body)),
        ("POST /echo, Content-Length: 0",
         req("POST", "/echo", ["Content-Length: 0"]), 200, b""),
        ("POST /plaintext with a chunked body (405, body discarded)",
         req("POST", "/plaintext", ["Transfer-Encoding: chunked"],
             chunked(blob[:5000], 1000)), 405, None),
        ("DELETE /hello.txt with a Content-Length body (405, body discarded)",
         req("DELETE", "/hello.txt", ["Content-Length: 5000"], blob[:5000]),
         405, None),
        ("GET /plaintext with a Content-Length body (discarded)",
         req("GET", "/plaintext", ["Content-Length: 5"], b"hello"), 200, PLAINTEXT),
    ]
    for label, wire, status, body in cases:
        c = Raw(a.port)
        r = send_and_read(c, wire + nxt)
        expect_response(r, label, status, body)
        if status == 405:
            check(r.get("allow"), "%s: 405 without an Allow header" % label)
        print("body: %s: %d, %s" % (label, r.status, after_body(c, r, label)))
        c.close()

    # Over --max-body with a Content-Length: 413 before reading; then the
    # connection closes.
    over = a.max_body + 1
    label = "POST /echo, Content-Length %d > --max-body" % over
    c = Raw(a.port)
    try:
        r = send_and_read(c, req("POST", "/echo", ["Content-Length: %d" % over],
                                 bytes(over)) + nxt)
    except (EOFError, ConnectionResetError) as e:
        raise Fail("%s: no response (%s)" % (label, e))
    expect_response(r, label, 413)
    check(c.closed_within(3), "%s: 413 but the connection stayed open" % label)
    c.close()
    print("body: %s: 413, closed" % label)
    # A chunked body passing the limit: /echo streams, so its 200 may have
    # started; then the only honest end is an abort. Never a complete echo
    # of more than --max-body bytes.
    label = "POST /echo, chunked %d bytes > --max-body" % (over + 1000)
    c = Raw(a.port)
    try:
        r = send_and_read(c, req("POST", "/echo", ["Transfer-Encoding: chunked"],
                                 chunked(bytes(over + 1000), 4096)) + nxt)
        check(r.status == 413, "%s: a complete %d response with %d bytes (the "
              "limit was not enforced)" % (label, r.status, len(r.body)))
        check(c.closed_within(3), "%s: 413 but the connection stayed open" % label)
        how = "413, closed"
    except (EOFError, ConnectionResetError) as e:
        how = "response cut off (%s)" % e
    c.close()
    print("body: %s: %s" % (label, how))

    # Expect: 100-continue: 100 before the body where the body is wanted; a
    # final status at once where it is not (then the client may still send
    # the body and go on, or the server closes).
    for method, target, n, want in (("POST", "/echo", 10, 100),
                                    ("POST", "/echo", over, 413),
                                    ("POST", "/plaintext", 10, 405),
                                    ("PUT", "/hello.txt", 10, 405)):
        label = "%s %s, Content-Length %d, Expect: 100-continue" % (method, target, n)
        c = Raw(a.port, timeout=3)
        c.send(req(method, target, ["Content-Length: %d" % n, "Expect: 100-continue"]))
        try:
            r = c.response(interim=True)
        except socket.timeout:
            raise Fail("%s: neither 100 Continue nor a final status within 3 s"
                       % label)
        check(r.status == want, "%s: status %d first, want %d" % (label, r.status, want))
        if r.status == 100:
            c.send(b"0123456789" + nxt)
            f = c.response()
            expect_response(f, label + ", after 100 Continue and the body", 200,
                            b"0123456789")
            print("body: %s: 100 Continue, then %d, %s"
                  % (label, f.status, after_body(c, f, label)))
        elif r.closes() or r.status == 413:
            check(c.closed_within(3), "%s: %d, but the connection stayed open"
                  % (label, r.status))
            print("body: %s: %d without 100 Continue, closed" % (label, r.status))
        else:
            c.send(b"0123456789" + nxt)
            print("body: %s: %d without 100 Continue, %s"
                  % (label, r.status, after_body(c, r, label)))
        c.close()


# ---- bad ----------------------------------------------------------------

H = "Host: 127.0.0.1"


def bad_cases():
    big = "X-Big: " + "a" * (16 * 1024)
    many = ["X-H%d: v" % i for i in range(200)]
    return [
        ("missing Host in HTTP/1.1", req("GET", "/plaintext", host=False), (400,)),
        ("two Host fields", req("GET", "/plaintext", ["Host: other"]), (400,)),
        ("Content-Length with Transfer-Encoding",
         req("POST", "/plaintext", ["Content-Length: 5", "Transfer-Encoding: chunked"],
             b"0\r\n\r\n"), (400,)),
        ("Transfer-Encoding with Content-Length",
         req("POST", "/plaintext", ["Transfer-Encoding: chunked", "Content-Length: 5"],
             b"0\r\n\r\n"), (400,)),
        ("differing duplicate Content-Length",
         req("POST", "/plaintext", ["Content-Length: 5", "Content-Length: 6"], b"hello!"),
         (400,)),
        ("non-numeric Content-Length",
         req("POST", "/plaintext", ["Content-Length: 5x"], b"hello"), (400,)),
        ("negative Content-Length",
         req("POST", "/plaintext", ["Content-Length: -1"]), (400,)),
        ("invalid chunk size",
         req("POST", "/echo", ["Transfer-Encoding: chunked"],
             b"zz\r\nhello\r\n0\r\n\r\n"), (400,)),
        ("chunk size over 2^64",
         req("POST", "/echo", ["Transfer-Encoding: chunked"],
             b"1ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), (400,)),
        ("chunk extension with a control byte",
         req("POST", "/echo", ["Transfer-Encoding: chunked"],
             b"5;a=\x01\r\nhello\r\n0\r\n\r\n"), (400,)),
        ("chunk data not followed by CRLF",
         req("POST", "/echo", ["Transfer-Encoding: chunked"],
             b"5\r\nhelloXX0\r\n\r\n"), (400,)),
        ("chunked in HTTP/1.0",
         req("POST", "/plaintext", ["Transfer-Encoding: chunked"], b"0\r\n\r\n",
             version="HTTP/1.0"), (400,)),
        # RFC 9112 6.3: chunked not the final coding -> 400; 6.1: a coding
        # the server does not know, before the final chunked -> 501.
        ("Transfer-Encoding: gzip (chunked not last)",
         req("POST", "/plaintext", ["Transfer-Encoding: gzip"]), (400,)),
        ("Transfer-Encoding: gzip, chunked",
         req("POST", "/plaintext", ["Transfer-Encoding: gzip, chunked"],
             b"0\r\n\r\n"), (501,)),
        # The same bad chunk where no body handler is: the 405 may go out
        # before the body is read; either way the connection ends.
        ("invalid chunk size after POST /plaintext",
         req("POST", "/plaintext", ["Transfer-Encoding: chunked"],
             b"zz\r\nhello\r\n0\r\n\r\n"), (400, 405)),
        ("obs-fold",
         req("GET", "/plaintext", ["X-Folded: a", " b"]), (400,)),
        ("obs-fold with a tab",
         req("GET", "/plaintext", ["X-Folded: a", "\tb"]), (400,)),
        ("space before the colon",
         req("GET", "/plaintext", ["X-Space : a"]), (400,)),
        ("tab before the colon",
         req("GET", "/plaintext", ["X-Tab\t: a"]), (400,)),
        ("space in a header name",
         req("GET", "/plaintext", ["X Space: a"]), (400,)),
        ("control byte in a header value",
         req("GET", "/plaintext", ["X-Ctl: a\x01b"]), (400,)),
        ("NUL in a header value",
         req("GET", "/plaintext", ["X-Nul: a\x00b"]), (400,)),
        ("header line without a colon",
         req("GET", "/plaintext", ["X-No-Colon"]), (400,)),
        ("bad method token", req("GE(T", "/plaintext"), (400,)),
        ("HTTP/0.9 request line", b"GET /plaintext\r\n\r\n", (400,)),
        ("bad version", req("GET", "/plaintext", version="HTTP/1.x"), (400,)),
        ("version HTTP/2.0", req("GET", "/plaintext", version="HTTP/2.0"), (505,)),
        ("version HTTP/3.1", req("GET", "/plaintext", version="HTTP/3.1"), (505,)),
        ("TLS ClientHello",
         b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(32)) + b"\r\n\r\n",
         (400,)),
        ("space in the request target", b"GET /plain text HTTP/1.1\r\n" + H.encode()
         + b"\r\n\r\n", (400,)),
        ("huge header field (16 KiB)", req("GET", "/plaintext", [big]), (431,)),
        ("200 header fields", req("GET", "/plaintext", many), (431,)),
        ("request target of 16 KiB",
         req("GET", "/" + "a" * (16 * 1024)), (414,)),
        ("request target of 64 KiB",
         req("GET", "/" + "a" * (64 * 1024)), (414,)),
    ]


def do_bad(a):
    failures = []
    for label, wire, want in bad_cases():
        try:
            bad_one(a, label, wire, want)
        except Fail as e:
            print("FAIL: %s" % e)
            failures.append(label)
    check(not failures, "%d of %d bad requests mishandled: %s"
          % (len(failures), len(bad_cases()), "; ".join(failures)))
    # Still serving.
    c = Raw(a.port)
    c.send(req("GET", "/plaintext"))
    expect_response(c.response(), "GET /plaintext after the bad requests", 200,
                    PLAINTEXT)
    c.close()


def bad_one(a, label, wire, want):
    c = Raw(a.port, timeout=5)
    # What follows the bad request must never be answered.
    try:
        c.send(wire + req("GET", "/json"))
    except (ConnectionResetError, BrokenPipeError):
        pass
    try:
        r = c.response()
    except (EOFError, ConnectionResetError) as e:
        raise Fail("%s: request %s: want %s, got no response (%s%s)"
                   % (label, show(wire), "/".join(map(str, want)), e,
                      "; reset before the response: no graceful close?"
                      if isinstance(e, ConnectionResetError) else ""))
    except socket.timeout:
        raise Fail("%s: request %s: want %s, got no response within 5 s"
                   % (label, show(wire), "/".join(map(str, want))))
    check(r.status in want, "%s: request %s: want %s, got %d %s"
          % (label, show(wire), "/".join(map(str, want)), r.status, r.reason))
    try:
        closed = c.closed_within(3)
    except Fail as e:
        raise Fail("%s: after the %d: %s (the request after the bad one was "
                   "answered?)" % (label, r.status, e))
    check(closed, "%s: request %s: got %d but the connection stayed open "
          "for 3 s (want it closed)" % (label, show(wire), r.status))
    c.close()
    print("bad: %-40s -> %d %s, closed%s" % (
        label, r.status, r.reason,
        "" if r.closes() else " (no Connection: close header)"))


# ---- timeouts -----------------------------------------------------------


def slowloris(port, stop_after):
    """Send a header a byte per 100 ms; returns seconds until the server cut
    the connection off (None if it did not within stop_after)."""
    try:
        c = Raw(port, timeout=5)
    except OSError:
        return None
    c.s.settimeout(0.1)
    line = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
        b"X-Slow-%d: v\r\n" % i for i in range(1000))
    t0 = time.monotonic()
    try:
        for b in line:
            if time.monotonic() - t0 > stop_after:
                return None
            c.s.send(bytes([b]))
            try:
                d = c.s.recv(4096)
                if not d:
                    return time.monotonic() - t0
                c.buf += d  # e.g. a 408; the close follows
            except socket.timeout:
                pass
        return None
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - t0
    finally:
        c.close()


def do_timeouts(a):
    ht = a.header_timeout_ms / 1000.0
    kt = a.keepalive_timeout_ms / 1000.0
    slack = a.slack
    # A slowloris header: cut off by the header timeout, counted from the
    # first byte, not reset by each new byte.
    t = slowloris(a.port, ht + slack + 5)
    check(t is not None, "slowloris (a byte per 100 ms): still connected after "
          "%.1f s with --header-timeout %d ms" % (ht + slack + 5, a.header_timeout_ms))
    check(ht * 0.8 <= t <= ht + slack, "slowloris: cut off after %.2f s, want "
          "%.1f..%.1f s (--header-timeout %d ms)" % (t, ht * 0.8, ht + slack,
                                                     a.header_timeout_ms))
    print("timeouts: slowloris cut off after %.2f s (--header-timeout %d ms)"
          % (t, a.header_timeout_ms))

    # Twenty at once, while a good client is served in between.
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        slowloris(a.port, ht + slack + 5))) for _ in range(20)]
    for th in threads:
        th.start()
    time.sleep(0.3)
    c = Raw(a.port)
    t0 = time.monotonic()
    for _ in range(20):
        c.send(req("GET", "/plaintext"))
        expect_response(c.response(), "GET /plaintext during 20 slowloris "
                        "clients", 200, PLAINTEXT)
    good = time.monotonic() - t0
    c.close()
    for th in threads:
        th.join()
    check(all(r is not None and r <= ht + slack for r in results),
          "20 slowloris clients: cut off after %s s, want <= %.1f s"
          % (sorted(results, key=lambda x: x or 1e9), ht + slack))
    print("timeouts: 20 slowloris clients cut off after %.2f..%.2f s; 20 good "
          "requests meanwhile in %.0f ms" % (min(results), max(results), good * 1e3))

    # A connection that never sends a byte is not held forever.
    c = Raw(a.port)
    t0 = time.monotonic()
    limit = max(ht, kt) + slack
    check(c.closed_within(limit), "silent connection: still open after %.1f s "
          "(--header-timeout %d ms, --keepalive-timeout %d ms)"
          % (limit, a.header_timeout_ms, a.keepalive_timeout_ms))
    print("timeouts: silent connection closed after %.2f s" % (time.monotonic() - t0))
    c.close()

    # Idle keep-alive: closed after the keep-alive timeout, not before the
    # request was answered, and not long after.
    c = Raw(a.port)
    c.send(req("GET", "/plaintext"))
    expect_response(c.response(), "GET /plaintext before idling", 200, PLAINTEXT)
    t0 = time.monotonic()
    check(c.closed_within(kt + slack), "idle keep-alive connection: still open "
          "after %.1f s (--keepalive-timeout %d ms)" % (kt + slack,
                                                        a.keepalive_timeout_ms))
    t = time.monotonic() - t0
    check(t >= kt * 0.8, "idle keep-alive connection closed after %.2f s, before "
          "--keepalive-timeout %d ms" % (t, a.keepalive_timeout_ms))
    print("timeouts: idle keep-alive connection closed after %.2f s "
          "(--keepalive-timeout %d ms)" % (t, a.keepalive_timeout_ms))
    c.close()

    # A keep-alive connection that keeps working is not cut off by either
    # timeout: requests spaced below the keep-alive timeout for longer than
    # both timeouts together.
    c = Raw(a.port)
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < ht + kt + 0.5:
        c.send(req("GET", "/plaintext"))
        try:
            expect_response(c.response(), "GET /plaintext every %.1f s" % (kt / 3),
                            200, PLAINTEXT)
        except EOFError:
            raise Fail("a busy keep-alive connection (a request every %.2f s) was "
                       "closed after %.2f s" % (kt / 3, time.monotonic() - t0))
        n += 1
        time.sleep(kt / 3)
    c.close()
    print("timeouts: busy keep-alive connection survived %d requests over %.1f s"
          % (n, time.monotonic() - t0))


# ---- linger -------------------------------------------------------------


def do_linger(a):
    """Error responses survive a client that keeps sending: the server
    closes lingering (FIN, then reads and drops input), never with a reset
    that would make the client's kernel throw the unread response away."""
    pad = b"x" * (256 << 10)
    for rnd in range(3):
        # 413 on the headers while the body is still coming.
        c = Raw(a.port)
        c.send(req("POST", "/plaintext",
                   ["Content-Length: %d" % (a.max_body + len(pad))]))
        time.sleep(0.05)   # the 413 and the close happen now
        try:
            c.send(pad)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Fail("linger: sending the rest of a refused body: %r (the "
                       "server reset instead of lingering)" % e)
        try:
            r = c.response()
        except (EOFError, ConnectionResetError) as e:
            raise Fail("linger: 413 lost: %r" % e)
        check(r.status == 413, "linger: got %d, want 413" % r.status)
        check(c.closed_within(5), "linger: no close after the 413")
        c.close()
        # A bad request in the middle of a pipeline, more requests behind.
        c = Raw(a.port)
        c.send(req("GET", "/plaintext") + b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n")
        time.sleep(0.05)
        try:
            c.send(req("GET", "/plaintext") * 2000)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Fail("linger: pipelining after a 400: %r" % e)
        try:
            r1, r2 = c.response(), c.response()
        except (EOFError, ConnectionResetError) as e:
            raise Fail("linger: responses before the 400 lost: %r" % e)
        check(r1.status == 200 and r2.status == 400,
              "linger: got %d, %d, want 200, 400" % (r1.status, r2.status))
        check(c.closed_within(5), "linger: no close after the 400")
        c.close()
    # The case the kernel really loses: close() with unread input resets
    # at once and drops the response still queued in the server's socket.
    # A slow reader fetches a large file with Connection: close and sends
    # a little more meanwhile; every byte must arrive, then a clean EOF.
    want = file_bytes(a.root, "big.bin")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 10)
    s.connect((HOST, a.port))
    s.settimeout(10)
    s.sendall(req("GET", "/big.bin", ["Connection: close"]))
    time.sleep(0.2)
    s.sendall(b"z" * 4096)   # lands after the server stopped reading
    got = bytearray()
    try:
        while True:
            d = s.recv(16 << 10)
            if not d:
                break
            got += d
            if len(got) < (1 << 20):
                time.sleep(0.001)   # slow at first: the response queues up
    except ConnectionResetError:
        raise Fail("linger: reset after %d bytes of a %d-byte response "
                   "(closed with unread input)" % (len(got), len(want)))
    finally:
        s.close()
    body = bytes(got).split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in got else b""
    check(body == want, "linger: got %d body bytes of %d, or different ones"
          % (len(body), len(want)))
    print("linger: 413 and a 400 in a pipeline arrive whole while the client "
          "keeps sending (3 rounds); a %d-byte response to a slow reader "
          "that sent more arrives whole" % len(want))


# ---- hammer -------------------------------------------------------------


def do_hammer(a):
    """Abusive clients, each kind in its own process (so that none of them
    slows the good client through Python's GIL), against the server while
    the good client in this process keeps sending requests."""
    cases = bad_cases()
    t_end = time.monotonic() + a.seconds

    def bad_request(rnd):
        label, wire, _ = rnd.choice(cases)
        c = Raw(a.port, timeout=2)
        try:
            c.send(wire)
            c.response()
        finally:
            c.close()

    def garbage(rnd):
        c = Raw(a.port, timeout=2)
        try:
            c.send(rnd.randbytes(rnd.randint(1, 3000)))
            c.closed_within(0.2)
        finally:
            c.reset()

    def reset_mid_request(rnd):
        c = Raw(a.port, timeout=2)
        w = req("GET", "/plaintext", ["X-Pad: " + "p" * rnd.randint(0, 500)])
        c.send(w[:rnd.randint(1, len(w) - 1)])
        c.reset()

    def abort_download(rnd):
        c = Raw(a.port, timeout=2)
        c.send(req("GET", "/big.bin"))
        c.s.recv(rnd.randint(1, 65536))
        c.reset()

    def flood_no_read(rnd):
        c = Raw(a.port, timeout=2)
        try:
            c.send(req("GET", "/plaintext") * 2000)
        finally:
            c.reset()

    def slow(rnd):
        # Eight slowloris connections at once, in threads of one process.
        ths = [threading.Thread(target=slowloris, args=(a.port, 1.0))
               for _ in range(8)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()

    def abuser(name, fn, seed, q):
        rnd = random.Random(seed)
        n, err = 0, None
        while time.monotonic() < t_end:
            try:
                fn(rnd)
            except (OSError, EOFError, Fail):
                pass  # the server may cut abusive clients off
            except Exception as e:  # noqa: BLE001 - a bug in this script
                err = repr(e)
                break
            n += 1
        q.put((name, n, err))

    mp = multiprocessing.get_context("fork")
    q = mp.Queue()
    kinds = [("bad-request", bad_request), ("garbage", garbage),
             ("reset-mid-request", reset_mid_request),
             ("abort-download", abort_download),
             ("flood-no-read", flood_no_read), ("slowloris-x8", slow)]
    if a.kinds:
        kinds = [(name, fn) for name, fn in kinds if name in a.kinds.split(",")]
    procs = [mp.Process(target=abuser, args=(name, fn, a.seed + i, q), daemon=True)
             for i, (name, fn) in enumerate(kinds)]
    for p in procs:
        p.start()

    lat = []
    c = Raw(a.port)
    n = 0
    try:
        while time.monotonic() < t_end:
            n += 1
            if n % 50 == 0:  # a fresh connection now and then
                c.close()
                c = Raw(a.port)
            t0 = time.monotonic()
            c.send(req("GET", "/plaintext" if n % 3 else "/hello.txt"))
            try:
                r = c.response()
            except (EOFError, OSError) as e:
                raise Fail("good client, request %d while bad clients hammer: %s"
                           % (n, e))
            lat.append(time.monotonic() - t0)
            check(r.status == 200, "good client, request %d: status %d" % (n, r.status))
            time.sleep(0.005)
    finally:
        c.close()
        results = []
        for _ in procs:
            try:
                results.append(q.get(timeout=15))
            except Exception:  # noqa: BLE001 - queue.Empty: a stuck abuser
                break
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
    errors = ["%s: %s" % (name, err) for name, _, err in results if err]
    check(len(results) == len(procs), "only %d of %d abusive clients reported "
          "back" % (len(results), len(procs)))
    check(not errors, "hammer client errors: %s" % errors)
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1]
    print("hammer: %s" % ", ".join("%s=%d" % (name, k) for name, k, _ in sorted(results)))
    print("hammer: good client: %d requests, median %.2f ms, p99 %.2f ms, max %.2f ms"
          % (len(lat), statistics.median(lat) * 1e3, p99 * 1e3, lat[-1] * 1e3))
    check(lat[-1] <= a.max_latency, "good client: slowest request took %.0f ms "
          "(limit %.0f ms) while bad clients hammered"
          % (lat[-1] * 1e3, a.max_latency * 1e3))


# ---- traversal ----------------------------------------------------------

TRAVERSAL = [
    "/../etc/passwd",
    "/../../../../../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/..%2fetc/passwd",
    "/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/a/../../etc/passwd",
    "/sub/../../etc/passwd",
    "/./../etc/passwd",
    "/.%2e/etc/passwd",
    "/%2e./etc/passwd",
    "/%252e%252e/etc/passwd",
    "/..\\etc\\passwd",
    "/..%5cetc%5cpasswd",
    "//etc/passwd",
    "/etc/passwd",
    "/etc%2fpasswd",
    "/%2fetc%2fpasswd",
    "/passwd-link",
    "/secret-link",
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/sub/dir/../../../secret.txt",
    "/sub/dir/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "/.%2e/.%2e/secret.txt",
    "/..;/secret.txt",
    "/%00/../secret.txt",
    "/..%00/secret.txt",
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%af..%c0%af/secret.txt",
    "http://127.0.0.1/../secret.txt",
    "http://127.0.0.1/%2e%2e/etc/passwd",
]


def do_traversal(a):
    with open("/etc/passwd", "rb") as f:
        passwd_line = f.readline().strip()
    marks = [a.secret.encode(), passwd_line]
    for target in TRAVERSAL:
        for method in ("GET", "HEAD"):
            c = Raw(a.port, timeout=5)
            wire = req(method, target, ["Connection: close"])
            c.send(wire)
            try:
                r = c.response(method)
            except (EOFError, ConnectionResetError):
                r = None  # refused by closing: fine
            c.close()
            if r is None:
                print("traversal: %-45s %s -> closed" % (target, method))
                continue
            for m in marks:
                check(m not in r.body, "traversal: %s %s: got %d with the content "
                      "of a file outside the root (%s)" % (method, target, r.status,
                                                           show(m)))
            check(not 200 <= r.status < 300, "traversal: %s %s: got %d (%r), want "
                  "an error status" % (method, target, r.status, r))
            if method == "GET":
                print("traversal: %-45s -> %d" % (target, r.status))
    # The root itself still works.
    c = Raw(a.port)
    c.send(req("GET", "/hello.txt"))
    expect_response(c.response(), "GET /hello.txt after the traversal attempts",
                    200, file_bytes(a.root, "hello.txt"))
    c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("check", choices=["httpclient", "pipeline", "body", "bad",
                                      "timeouts", "hammer", "traversal",
                                      "linger"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--header-timeout-ms", type=int, default=1000)
    ap.add_argument("--keepalive-timeout-ms", type=int, default=1500)
    ap.add_argument("--slack", type=float, default=1.5,
                    help="seconds a timeout may fire late")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--max-body", type=int, default=1 << 20,
                    help="body: the server's --max-body")
    ap.add_argument("--kinds", default="",
                    help="hammer: comma-separated abusive clients (default all)")
    ap.add_argument("--max-latency", type=float, default=1.0,
                    help="hammer: seconds the good client may wait at most")
    a = ap.parse_args()
    random.seed(a.seed)
    try:
        globals()["do_" + a.check](a)
    except Fail as e:
        print("FAIL: %s" % e)
        return 1
    except Exception as e:  # noqa: BLE001 - say what broke, then the trace
        print("FAIL: %s: unexpected %r" % (a.check, e))
        raise
    print("ok: %s" % a.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
