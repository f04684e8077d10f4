#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Upstreams and client checks of httpd_proxy_balance.sh (coil-httpd
--proxy with several upstreams per prefix).

    proxy_balance.py upstream NAME PORT_FILE [PORT]
        an HTTP/1.1 keep-alive upstream on 127.0.0.1:PORT (0: any; the port
        is written to PORT_FILE):
          GET /b/id        answers NAME (head and body in one write, so a
                           kill leaves an answer whole or absent)
          GET /b/sleep?s=S answers NAME after S seconds
          GET /b/busy      how many sleeps are in progress (not proxied)

    proxy_balance.py rr PROXY_PORT N NAMES   N GETs in turn: each of the
        comma-separated NAMES answers N/len +- 20 %
    proxy_balance.py lc PROXY_PORT UP_PORTS   one slow GET held (seen
        in progress at one of the comma-separated UP_PORTS) while 10 quick
        ones go: least-conn sends none of them to the busy upstream
    proxy_balance.py hammer PROXY_PORT SECS   4 keep-alive clients GET
        /b/id for SECS seconds; every answer must be a 200 (prints the
        answers by name)
    proxy_balance.py spread PROXY_PORT N NAME  N GETs: NAME answers some
    Each exits 0, or 1 with FAIL lines.
"""
import http.client
import http.server
import sys
import threading
import time
from collections import Counter

from proxy_stream import serve

FAILS = []


def fail(msg):
    print("FAIL: " + msg, flush=True)
    FAILS.append(msg)


def upstream(name, port_file, port):
    busy = [0]
    lock = threading.Lock()

    class Up(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            body = name.encode()
            if self.path.startswith("/b/sleep?s="):
                with lock:
                    busy[0] += 1
                time.sleep(float(self.path.split("=", 1)[1]))
                with lock:
                    busy[0] -= 1
            elif self.path == "/b/busy":
                body = str(busy[0]).encode()
            elif self.path != "/b/id":
                self.send_error(404)
                return
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))

    serve(Up, port_file, port)


def get(c, path):
    c.request("GET", path)
    r = c.getresponse()
    return r.status, r.read().decode(errors="replace")


def rr(port, n, names):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    seen = Counter()
    for _ in range(n):
        status, body = get(c, "/b/id")
        seen[body if status == 200 else "status %d" % status] += 1
    print("round robin: %d GETs: %s" % (n, dict(seen)))
    want = n / len(names)
    for name in names:
        if abs(seen[name] - want) > 0.2 * want:
            fail("round robin: %s answered %d of %d (want %.0f +- 20 %%)"
                 % (name, seen[name], n, want))
    if sum(seen.values()) != sum(seen[x] for x in names):
        fail("round robin: other answers: %r" % dict(seen))


def busy_somewhere(ports):
    for p in ports:
        c = http.client.HTTPConnection("127.0.0.1", p, timeout=10)
        if get(c, "/b/busy")[1] != "0":
            return True
    return False


def lc(port, ports):
    slow = {}

    def hold():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        slow["answer"] = get(c, "/b/sleep?s=6")

    t = threading.Thread(target=hold)
    t.start()
    end = time.monotonic() + 10
    while not busy_somewhere(ports) and time.monotonic() < end:
        time.sleep(0.05)   # until the slow request is in flight upstream
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    quick = Counter(get(c, "/b/id")[1] for _ in range(10))
    still = t.is_alive()
    t.join()
    if not still:
        fail("least-conn: the slow GET ended before the quick ones did")
    busy = slow.get("answer", (0, ""))[1]
    print("least-conn: the slow GET on %r, the quick ones on %s"
          % (busy, dict(quick)))
    if slow.get("answer", (0,))[0] != 200:
        fail("least-conn: the slow GET got %r" % (slow.get("answer"),))
    if not busy or busy in quick:
        fail("least-conn: quick GETs went to %s while %r was busy"
             % (dict(quick), busy))


def hammer(port, secs):
    seen, errors, lock = Counter(), [], threading.Lock()
    end = time.monotonic() + secs

    def run():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < end:
            try:
                status, body = get(c, "/b/id")
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(repr(e))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            with lock:
                if status == 200:
                    seen[body] += 1
                else:
                    errors.append("status %d: %s" % (status, body.strip()))

    ts = [threading.Thread(target=run) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("hammer: %s, %d errors %s" % (dict(seen), len(errors), errors[:5]),
          flush=True)
    if errors:
        fail("hammer: %d client errors while an upstream died: %s"
             % (len(errors), errors[:5]))
    if sum(seen.values()) < 20:
        fail("hammer: only %d answers in %s s" % (sum(seen.values()), secs))


def spread(port, n, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    seen = Counter(get(c, "/b/id")[1] for _ in range(n))
    print("spread: %s" % dict(seen))
    if not seen[name]:
        fail("%s got none of %d GETs (not back after the fail timeout?)"
             % (name, n))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "upstream":
        upstream(args[0], args[1], int(args[2]) if len(args) > 2 else 0)
    elif cmd == "rr":
        rr(int(args[0]), int(args[1]), args[2].split(","))
    elif cmd == "lc":
        lc(int(args[0]), [int(x) for x in args[1].split(",")])
    elif cmd == "hammer":
        hammer(int(args[0]), float(args[1]))
    elif cmd == "spread":
        spread(int(args[0]), int(args[1]), args[2])
    sys.exit(1 if FAILS else 0)
