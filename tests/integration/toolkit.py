#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Integration tests of the Twisted toolkit (issue 15): the examples in
apps/examples and the Prometheus metrics of coil-httpd and coil-echo.

usage: toolkit.py CASE BINARY [BINARY...]
  chat BIN        every line reaches every client exactly once, in each
                  sender's order, with clients on both of 2 loops
  defer BIN       (hashd) while 4 blocking jobs run on the pool, another
                  client's PING p99 stays under 5 ms; HASH is right; a full
                  queue answers "ERR busy" at once and the loop stays fast;
                  a graceful stop answers the job in flight
  int32 BIN       Int32-prefixed echo: sizes 0..1 MiB, byte for byte; an
                  oversized prefix closes the connection
  cache BIN       miss, then hit; two clients asking at once share one job
  metrics-httpd COIL_HTTPD COIL_LOAD   /metrics parses; 2xx and accepted
                  agree with coil-load's counts
  metrics-echo COIL_ECHO COIL_LOAD     the same for coil-echo --metrics-port
                  (bytes within what was in flight when it stopped)
Exit 0 pass, 1 fail, 77 skip. COIL_BACKEND=epoll runs on epoll."""
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from testlib import read_to_eof

BACKEND = os.environ.get("COIL_BACKEND", "")
# The latency bound of the acceptance criteria (5 ms) is for real builds;
# ASan/TSan builds (COIL_SANITIZED=1) run several times slower, so there it
# only shows the loop was never blocked by the 0.8-1.5 s jobs.
P99_MS = 25.0 if os.environ.get("COIL_SANITIZED") == "1" else 5.0
procs = []   # (process, its stderr lines)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def start(argv, pattern=r"listening on [0-9.]+:(\d+)", extra=()):
    """Start a server on 127.0.0.1 port 0; return (proc, port, log, more)."""
    if BACKEND:
        argv = argv + ["--backend", BACKEND]
    p = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    log, found = [], {}
    procs.append((p, log))
    want = [("port", pattern)] + list(extra)

    def reader():
        for line in p.stderr:
            log.append(line)
            for name, pat in want:
                m = re.search(pat, line)
                if m and name not in found:
                    found[name] = int(m.group(1))
    threading.Thread(target=reader, daemon=True).start()
    deadline = time.time() + 10
    while len(found) < len(want) and time.time() < deadline:
        if p.poll() is not None:
            fail("server exited: %s" % "".join(log))
        time.sleep(0.02)
    if len(found) < len(want):
        fail("server did not start: %s" % "".join(log))
    return p, found["port"], log, found


def stop_all():
    """SIGTERM every server; each must exit 0 with no sanitizer report."""
    mine = list(procs)
    procs.clear()
    for p, log in mine:
        if p.poll() is None:
            p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            fail("server did not stop on SIGTERM")
        time.sleep(0.05)   # the reader thread takes the last lines
        text = "".join(log)
        if p.returncode != 0 or "Sanitizer" in text:
            fail("server exited with %d: %s" % (p.returncode, text[-3000:]))


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Lines:
    def __init__(self, sock):
        self.s, self.buf = sock, b""

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed with %r pending" % self.buf)
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def ask(port_or_lines, text):
    ln = port_or_lines if isinstance(port_or_lines, Lines) else Lines(connect(port_or_lines))
    ln.s.sendall(text.encode() + b"\n")
    return ln.line()


def case_chat(binary):
    _, port, _, _ = start([binary, "--cores", "2", "--port", "0"])
    clients, loops = [], set()
    while len(clients) < 8 or (loops != {0, 1} and len(clients) < 64):
        ln = Lines(connect(port))
        hello = ln.line()
        m = re.match(r"\* loop (\d+)$", hello)
        if not m:
            fail("chat: greeting %r" % hello)
        loops.add(int(m.group(1)))
        clients.append(ln)
    if loops != {0, 1}:
        fail("chat: all %d clients landed on loops %s" % (len(clients), loops))
    per = 150
    n = len(clients)
    got = [[] for _ in clients]

    def reader(i):
        try:
            while len(got[i]) < n * per:
                got[i].append(clients[i].line())
        except (EOFError, OSError) as e:
            got[i].append("ERROR %s" % e)

    def writer(i):
        for k in range(per):
            clients[i].s.sendall(b"c%d %d\n" % (i, k))
    rs = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
    ws = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in rs + ws:
        t.start()
    for t in ws + rs:
        t.join(60)
    for i in range(n):
        lines = got[i]
        if len(lines) != n * per or len(set(lines)) != n * per:
            fail("chat: client %d got %d lines (%d distinct), want %d" %
                 (i, len(lines), len(set(lines)), n * per))
        for j in range(n):   # each sender's lines in its order
            seq = [int(x.split()[1]) for x in lines if x.split()[0] == "c%d" % j]
            if seq != list(range(per)):
                fail("chat: client %d saw sender %d out of order" % (i, j))
    # a line over 4 KiB closes only its sender
    s = clients[0].s
    s.sendall(b"x" * 5000 + b"\n")
    s.settimeout(5)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    if ask(clients[1], "still here") != "still here":
        fail("chat: others were disturbed by the long line")
    print("chat: %d clients on loops %s, %d lines each, all delivered once" %
          (n, sorted(loops), n * per))


def ping_times(port, seconds, out):
    ln = Lines(connect(port))
    end = time.time() + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        if ask(ln, "PING") != "PONG":
            out.append(None)
            return
        out.append(time.perf_counter() - t0)
        time.sleep(0.001)


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def case_defer(binary):
    # One loop: the PING client shares it with the blocking requests.
    _, port, _, _ = start([binary, "--cores", "1", "--defer-threads", "4", "--port", "0"])
    ask(port, "PING")
    # HASH against our own FNV-1a
    with tempfile.NamedTemporaryFile(delete=False) as f:
        data = os.urandom(300000)
        f.write(data)
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    want = "%016x %s" % (h, f.name)
    got = ask(port, "HASH " + f.name)
    os.unlink(f.name)
    if got != want:
        fail("defer: HASH answered %r, want %r" % (got, want))
    if not ask(port, "HASH /nonexistent/x").startswith("ERR "):
        fail("defer: HASH of a missing file did not answer ERR")
    # The machine is shared: a latency window may be spoiled by other
    # work. Up to 3 windows are measured; the best must meet the bound
    # (every window must still be correct).
    best = None
    for attempt in range(3):
        answers = []

        def blocker():
            t0 = time.time()
            answers.append((ask(port, "SLEEP 1500"), time.time() - t0))
        bs = [threading.Thread(target=blocker) for _ in range(4)]
        for t in bs:
            t.start()
        time.sleep(0.1)
        times = []
        ping_times(port, 1.2, times)
        for t in bs:
            t.join(10)
        if None in times or len(times) < 100:
            fail("defer: PING failed or too few (%d)" % len(times))
        if sorted(a for a, _ in answers) != ["SLEPT 1500"] * 4:
            fail("defer: blocking answers %r" % answers)
        q = p99(times) * 1000
        print("defer: %d PINGs while 4 jobs blocked the pool: p50 %.3f ms, p99 %.3f ms"
              % (len(times), sorted(times)[len(times) // 2] * 1000, q))
        best = q if best is None else min(best, q)
        if best < P99_MS:
            break
    if best >= P99_MS:
        fail("defer: PING p99 %.3f ms >= %g ms while the pool was busy (best of 3)"
             % (best, P99_MS))
    stop_all()

    # A full queue: 1 worker, 2 job records: 2 accepted, the rest "ERR busy"
    # at once, and the loop keeps answering.
    _, port, _, _ = start([binary, "--cores", "1", "--defer-threads", "1",
                           "--defer-queue", "2", "--port", "0"])
    best = None
    for attempt in range(3):
        res = []

        def sleeper():
            t0 = time.time()
            res.append((ask(port, "SLEEP 800"), time.time() - t0))
        ss = []
        for _ in range(6):
            t = threading.Thread(target=sleeper)
            t.start()
            ss.append(t)
            time.sleep(0.02)
        times = []
        ping_times(port, 0.5, times)
        for t in ss:
            t.join(10)
        busy = [d for a, d in res if a == "ERR busy"]
        slept = [a for a, _ in res if a == "SLEPT 800"]
        if len(busy) != 4 or len(slept) != 2:
            fail("defer: full queue answered %r" % res)
        if max(busy) > 0.5:
            fail("defer: 'ERR busy' took %.3f s (it must come at once)" % max(busy))
        if None in times:
            fail("defer: PING failed with a full queue")
        print("defer: full queue: 2 jobs ran, 4 refused in at most %.1f ms, PING p99 %.3f ms"
              % (max(busy) * 1000, p99(times) * 1000))
        best = p99(times) * 1000 if best is None else min(best, p99(times) * 1000)
        if best < P99_MS:
            break
    if best >= P99_MS:
        fail("defer: PING p99 %.3f ms with a full queue (best of 3)" % best)
    stop_all()

    # A graceful stop waits for the job in flight and answers it.
    p, port, _, _ = start([binary, "--cores", "1", "--defer-threads", "1", "--port", "0"])
    ln = Lines(connect(port))
    ln.s.sendall(b"SLEEP 700\n")
    time.sleep(0.2)
    p.terminate()
    try:
        got = ln.line()
    except (EOFError, OSError) as e:
        got = "closed: %s" % e
    if got != "SLEPT 700":
        fail("defer: a graceful stop did not answer the job in flight: %r" % got)
    print("defer: SIGTERM during a job: answered, then stopped")


def case_int32(binary):
    _, port, _, _ = start([binary, "--cores", "2", "--port", "0"])
    s = connect(port)

    def recv_exact(n):
        b = b""
        while len(b) < n:
            d = s.recv(n - len(b))
            if not d:
                raise EOFError
            b += d
        return b
    sizes = [0, 1, 3, 100, 4093, 4096, 70000, 1 << 20]
    msgs = [os.urandom(n) for n in sizes]
    for m in msgs:          # one at a time, then all pipelined
        s.sendall(struct.pack(">I", len(m)) + m)
        if recv_exact(4 + len(m)) != struct.pack(">I", len(m)) + m:
            fail("int32: echo of %d bytes differs" % len(m))
    blob = b"".join(struct.pack(">I", len(m)) + m for m in msgs[:-1])
    threading.Thread(target=s.sendall, args=(blob,)).start()
    if recv_exact(len(blob)) != blob:
        fail("int32: pipelined echo differs")
    s.sendall(struct.pack(">I", (1 << 20) + 1))
    s.settimeout(5)
    try:
        if s.recv(10) != b"":
            fail("int32: an oversized prefix got an answer")
    except ConnectionResetError:
        pass
    print("int32: sizes %s echoed, oversized prefix closed" % sizes)


def case_cache(binary):
    _, port, _, _ = start([binary, "--cores", "1", "--port", "0"])
    t0 = time.time()
    a = ask(port, "PRIME 100000")
    t1 = time.time()
    b = ask(port, "PRIME 100000")
    t2 = time.time()
    if a != "1299709 miss" or b != "1299709 hit":
        fail("cache: answers %r, %r" % (a, b))
    if t2 - t1 > (t1 - t0) / 2:
        fail("cache: the hit (%.3f s) was not faster than the miss (%.3f s)"
             % (t2 - t1, t1 - t0))
    res = []
    ts = [threading.Thread(target=lambda: res.append(ask(port, "PRIME 120000")))
          for _ in range(2)]
    for t in ts:
        t.start()
        time.sleep(0.01)
    for t in ts:
        t.join(30)
    if sorted(res) != ["1583539 miss", "1583539 wait"]:
        fail("cache: concurrent answers %r" % res)
    if ask(port, "nonsense") != "ERR what?":
        fail("cache: a bad request was not refused")
    print("cache: miss %.1f ms, hit %.2f ms, a concurrent request shared the job"
          % ((t1 - t0) * 1000, (t2 - t1) * 1000))


def scrape(port, path="/metrics"):
    """GET over a new connection; returns (families, request bytes,
    response bytes)."""
    from prometheus_client.parser import text_string_to_metric_families
    req = ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode()
    s = connect(port)
    s.sendall(req)
    resp = read_to_eof(s)
    s.close()
    head, _, body = resp.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0]:
        fail("metrics: answer %r" % head[:200])
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    return fams, len(req), len(resp)


def total(fams, name, **labels):
    f = fams.get(name)
    if f is None:
        fail("metrics: no family %s (have %s)" % (name, sorted(fams)))
    return sum(s.value for s in f.samples
               if all(s.labels.get(k) == v for k, v in labels.items()))


def load(coil_load, args):
    with tempfile.NamedTemporaryFile(suffix=".json") as j:
        r = subprocess.run([coil_load] + args + ["--json", j.name, "--quiet"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            fail("coil-load failed: %s %s" % (r.stdout, r.stderr))
        return json.load(open(j.name))


def case_metrics_httpd(httpd, coil_load):
    _, port, _, _ = start([httpd, "--addr", "127.0.0.1", "--port", "0", "--cores", "2",
                           "--metrics-path", "/metrics"])
    before, _, _ = scrape(port)
    for fam in ("coil_connections_accepted", "coil_http_responses",
                "coil_received_bytes", "coil_loop_turns", "coil_defer_queued"):
        if fam not in before:
            fail("metrics: %s missing" % fam)
    res = load(coil_load, ["http", "http://127.0.0.1:%d/plaintext" % port,
                           "-c", "4", "-d", "2s", "-t", "1"])
    time.sleep(0.3)
    after, _, _ = scrape(port)
    ok = total(after, "coil_http_responses", code="2xx") - \
        total(before, "coil_http_responses", code="2xx")
    acc = total(after, "coil_connections_accepted") - \
        total(before, "coil_connections_accepted")
    # + 1: the first scrape's own answer counts after it was rendered
    if not res["done"] + 1 <= ok <= res["sent"] + 1:
        fail("metrics: 2xx went up by %d, coil-load had %d answered of %d sent"
             % (ok, res["done"], res["sent"]))
    if acc != res["connections_established"] + 1:
        fail("metrics: accepted went up by %d, coil-load opened %d (+1 scrape)"
             % (acc, res["connections_established"]))
    print("metrics-httpd: %d families; 2xx +%d for coil-load's %d answers (%d sent), "
          "accepted +%d" % (len(after), ok, res["done"], res["sent"], acc))


def case_metrics_echo(echo, coil_load):
    _, port, _, found = start([echo, "--addr", "127.0.0.1", "--port", "0", "--cores", "2",
                               "--metrics-port", "0"],
                              extra=[("metrics", r"metrics on [0-9.]+:(\d+)")])
    mport = found["metrics"]
    before, _, before_resp = scrape(mport, "/")
    res = load(coil_load, ["echo", "127.0.0.1:%d" % port, "-c", "4", "-d", "2s",
                           "-t", "1", "--size", "100"])
    deadline = time.time() + 5
    while True:     # until every load connection is closed on our side
        after, after_req, _ = scrape(mport, "/")
        if total(after, "coil_connections_open") <= 1 or time.time() > deadline:
            break
        time.sleep(0.1)
    rx = total(after, "coil_received_bytes") - total(before, "coil_received_bytes")
    tx = total(after, "coil_sent_bytes") - total(before, "coil_sent_bytes")
    acc = total(after, "coil_connections_accepted") - \
        total(before, "coil_connections_accepted")
    # What was in flight when coil-load stopped (at most one 100-byte
    # message per connection) may or may not have been received and
    # echoed (a reset drops it): the counts agree within that window.
    scrapes = after_req * (acc - res["connections_established"])
    if res["tx_bytes"] - res["rx_bytes"] > 4 * 100:
        fail("metrics: coil-load sent %d but read %d" % (res["tx_bytes"], res["rx_bytes"]))
    if not res["rx_bytes"] <= rx - scrapes <= res["tx_bytes"]:
        fail("metrics: received +%d - %d (scrapes), coil-load sent %d, read %d"
             % (rx, scrapes, res["tx_bytes"], res["rx_bytes"]))
    if not res["rx_bytes"] <= tx - before_resp <= rx - scrapes:
        fail("metrics: sent +%d - %d (scrape), coil-load read %d, we received %d"
             % (tx, before_resp, res["rx_bytes"], rx - scrapes))
    print("metrics-echo: received +%d B = coil-load's %d B + scrapes; sent +%d B "
          "(coil-load read %d B); accepted +%d" % (rx, res["tx_bytes"], tx,
                                                  res["rx_bytes"], acc))


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    case, bins = sys.argv[1], sys.argv[2:]
    if case.startswith("metrics"):
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            print("SKIP: python3-prometheus-client is not installed (scripts/deps.sh)")
            sys.exit(77)
    fn = {"chat": case_chat, "defer": case_defer, "int32": case_int32,
          "cache": case_cache, "metrics-httpd": case_metrics_httpd,
          "metrics-echo": case_metrics_echo}[case]
    try:
        fn(*bins)
    finally:
        stop_all()
    print("PASS:", case)


if __name__ == "__main__":
    main()
