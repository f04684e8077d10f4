#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Clients for httpd_harden.sh: what nginx survives, checked on coil-httpd.

Subcommands (each exits 0 pass, 1 fail and prints one line per figure):
  sigterm-fresh  N connections accepted, the server gets SIGTERM, each then
                 sends a GET: every one must be answered (200, full body).
  sigterm-churn  clients with Connection: close at full speed; SIGTERM in
                 the middle: no request whose connection was accepted may go
                 unanswered (a refused connect is fine: never accepted).
  idle-memory    N keep-alive connections, each answered once, then idle:
                 the server's VmRSS per connection must stay under a limit.
  headers        a request with --count header lines must get --want.
  send-timeout   a download whose client stops reading must be reset after
                 --send-timeout-ms (not the other timeouts), and one that
                 reads slowly but steadily must get all of its bytes.
"""
import argparse
import errno
import os
import selectors
import signal
import socket
import sys
import threading
import time


def rss_kb(pid):
    """Resident memory: VmRSS plus the huge pages the process touched
    (HugetlbPages: not in VmRSS; coil's regions use huge pages when the
    machine has some reserved, and RSS alone would then read 0 per
    connection)."""
    rss = huge = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("HugetlbPages:"):
                huge = int(line.split()[1])
    if rss is None:
        raise RuntimeError("no VmRSS")
    return rss + (huge or 0)


def read_response(sock, timeout=5.0):
    """One response (Content-Length framed): (status, headers, body) or None
    if the connection ended (EOF/reset) before a complete response."""
    sock.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            d = sock.recv(65536)
            if not d:
                return None
            buf += d
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            hdrs[k.strip().lower().decode()] = v.strip().decode()
        n = int(hdrs.get("content-length", "0"))
        while len(body) < n:
            d = sock.recv(65536)
            if not d:
                return None
            body += d
        return status, hdrs, body
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        return None


def get(path, close=False):
    return (f"GET {path} HTTP/1.1\r\nHost: t\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


def cmd_sigterm_fresh(a):
    want = open(os.path.join(a.root, "hello.txt"), "rb").read()
    socks = [socket.create_connection(("127.0.0.1", a.port)) for _ in range(a.conns)]
    time.sleep(0.3)  # all accepted by the server
    os.kill(a.pid, getattr(signal, "SIG" + a.signal))
    time.sleep(0.001)
    for s in socks:
        s.sendall(get("/hello.txt"))
    ok = 0
    for s in socks:
        r = read_response(s)
        if r and r[0] == 200 and r[2] == want:
            ok += 1
        s.close()
    print(f"sigterm-fresh: answered {ok} of {a.conns}")
    return 0 if ok == a.conns else 1


def cmd_sigterm_churn(a):
    stop = threading.Event()
    stats = {"ok": 0, "lost": 0, "refused": 0}
    lock = threading.Lock()

    def worker():
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
            except OSError:
                with lock:
                    stats["refused"] += 1
                time.sleep(0.001)
                continue
            try:
                s.sendall(get("/hello.txt", close=True))
                r = read_response(s)
            except OSError:
                r = None
            s.close()
            with lock:
                stats["ok" if r and r[0] == 200 else "lost"] += 1

    ts = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in ts:
        t.start()
    time.sleep(a.before)
    os.kill(a.pid, signal.SIGTERM)
    time.sleep(0.5)
    stop.set()
    for t in ts:
        t.join()
    print(f"sigterm-churn: answered {stats['ok']}, lost {stats['lost']}, "
          f"refused connects {stats['refused']}")
    return 0 if stats["lost"] == 0 and stats["ok"] > 0 else 1


def cmd_idle_memory(a):
    # Warm-up: what the loop sets aside once is not a per-connection cost;
    # the kernel hands out the receive pool's buffers in ring order, so it
    # becomes resident only as --warm requests cycle through it.
    for _ in range(a.warm // 100):
        ws = []
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", a.port))
            s.sendall(get("/hello.txt"))
            ws.append(s)
        for s in ws:
            if not read_response(s):
                print("idle-memory: warm-up request unanswered")
                return 1
            s.close()
    time.sleep(0.3)
    rss0 = rss_kb(a.pid)
    socks = []
    sel = selectors.DefaultSelector()
    pending = {}
    for i in range(a.conns):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.sendall(get("/hello.txt"))
        socks.append(s)
        s.setblocking(False)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
        if len(pending) >= 200 or i == a.conns - 1:
            deadline = time.time() + 30
            while pending and time.time() < deadline:
                for key, _ in sel.select(1.0):
                    d = key.fileobj.recv(65536)
                    if not d:
                        print("idle-memory: connection closed early")
                        return 1
                    pending[key.fileobj] += d
                    b = pending[key.fileobj]
                    if b"\r\n\r\n" in b and b.endswith(b"\n") and b" 200 " in b:
                        sel.unregister(key.fileobj)
                        del pending[key.fileobj]
            if pending:
                print("idle-memory: responses missing")
                return 1
    time.sleep(0.5)
    rss1 = rss_kb(a.pid)
    per = (rss1 - rss0) * 1024 // a.conns
    print(f"idle-memory: {a.conns} keep-alive connections answered once: "
          f"rss {rss0} -> {rss1} kB, rss_per_conn={per} B (limit {a.limit})")
    for s in socks:
        s.close()
    return 0 if per <= a.limit else 1


def cmd_headers(a):
    s = socket.create_connection(("127.0.0.1", a.port))
    req = "GET /hello.txt HTTP/1.1\r\nHost: t\r\n"
    req += "".join(f"X-H{i}: {i}\r\n" for i in range(a.count - 1))
    s.sendall((req + "\r\n").encode())
    r = read_response(s)
    s.close()
    got = r[0] if r else None
    print(f"headers: {a.count} header lines -> {got} (want {a.want})")
    return 0 if got == a.want else 1


def cmd_send_timeout(a):
    size = os.path.getsize(os.path.join(a.root, "big.bin"))
    # A client that stops reading.
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", a.port))
    t0 = time.time()
    s.sendall(get("/big.bin"))
    s.recv(1024)
    # Probe until the server gives up: it resets, so reading reports the
    # reset (or EOF) before the whole file.
    dropped = None
    while time.time() - t0 < a.limit_s:
        time.sleep(0.1)
        if os.path.exists(f"/proc/{a.pid}") and conn_count(a.port) == 0:
            dropped = time.time() - t0
            break
    s.close()
    ok = dropped is not None and dropped >= a.send_timeout_ms / 1000 * 0.9
    print(f"send-timeout: stalled download dropped after "
          f"{'never' if dropped is None else f'{dropped:.2f} s'} "
          f"(send timeout {a.send_timeout_ms} ms, limit {a.limit_s} s)")
    if not ok:
        return 1
    # A slow but steady reader (256 KiB every 0.1 s, about 2.5 MB/s: slower
    # than the whole download takes to queue, so the server's sends wait on
    # it; the kernel wakes a sender only after a third of its socket buffer
    # drained, up to 4 MiB here, hence not slower).
    s = socket.socket()
    s.connect(("127.0.0.1", a.port))
    s.sendall(get("/big.bin"))
    got = 0
    s.settimeout(10)
    t0 = time.time()
    try:
        while True:
            d = s.recv(256 << 10, socket.MSG_WAITALL)
            if not d:
                break
            got += len(d)
            if got >= size:
                break
            time.sleep(0.1)
    except OSError as e:
        print(f"send-timeout: slow reader: {e}")
    s.close()
    print(f"send-timeout: slow reader got {got} B of >= {size} in "
          f"{time.time() - t0:.2f} s")
    return 0 if got >= size else 1


def cmd_storm(a):
    """--conns slowloris connections send an incomplete head at once, so
    their header timeouts (--timeout-ms) fall due together; meanwhile a good
    client sends requests on 10 keep-alive connections. Prints the good
    client's p50/p99 over the whole run and the longest wait (the stall)
    around the due time; each slowloris connection must be closed without
    a byte of answer (--silent) within the timeout + 2 s."""
    lor = []
    for i in range(a.conns):
        try:
            s = socket.create_connection(("127.0.0.1", a.port))
        except OSError as e:
            print(f"storm: connect {i}: {e}")
            return 1
        lor.append(s)
    t_sent = time.monotonic()
    for s in lor:
        s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    due = t_sent + a.timeout_ms / 1000
    good = [socket.create_connection(("127.0.0.1", a.port)) for _ in range(10)]
    for s in good:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat = []
    end = due + 2.0
    i = 0
    while time.monotonic() < end:
        s = good[i % 10]
        i += 1
        t0 = time.monotonic()
        s.sendall(get(a.path))
        r = read_response(s, timeout=10)
        t1 = time.monotonic()
        if not r or r[0] != 200:
            print("storm: good client request failed")
            return 1
        lat.append((t0, t1 - t0))
        if a.rate:
            time.sleep(max(0, 1 / a.rate - (t1 - t0)))
    ls = sorted(x for _, x in lat)
    p50 = ls[len(ls) // 2] * 1000
    p99 = ls[min(len(ls) - 1, len(ls) * 99 // 100)] * 1000
    stall = max((x for t, x in lat if due - 0.5 <= t <= due + 1.5), default=0) * 1000
    if a.verbose:
        top = sorted(lat, key=lambda x: -x[1])[:8]
        print("storm: longest waits (s after the due time, ms):",
              " ".join(f"{t - due:+.3f}:{x * 1000:.1f}" for t, x in top))
    print(f"storm: {a.conns} slowloris, good client {len(lat)} requests: "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, stall at the timeouts {stall:.1f} ms")
    # Every slowloris connection is gone by now, without an answer.
    answered = open_ = 0
    for s in lor:
        s.setblocking(False)
        try:
            d = s.recv(4096)
            answered += bool(d)
        except BlockingIOError:
            open_ += 1
        except OSError:
            pass
        s.close()
    for s in good:
        s.close()
    print(f"storm: slowloris connections answered {answered}, still open {open_}")
    ok = open_ == 0 and (not a.silent or answered == 0)
    if a.max_stall_ms and stall > a.max_stall_ms:
        print(f"storm: stall {stall:.1f} ms > {a.max_stall_ms} ms")
        ok = False
    return 0 if ok else 1


def conn_count(port):
    """Established TCP connections with local port `port` (the server side)."""
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[3] == "01" and int(p[1].split(":")[1], 16) == port:
                        n += 1
        except FileNotFoundError:
            pass
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--root", default="")
    ap.add_argument("--conns", type=int, default=20)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--before", type=float, default=1.0)
    ap.add_argument("--limit", type=int, default=512)
    ap.add_argument("--warm", type=int, default=3000)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--want", type=int, default=200)
    ap.add_argument("--send-timeout-ms", type=int, default=1000)
    ap.add_argument("--limit-s", type=float, default=5.0)
    ap.add_argument("--timeout-ms", type=int, default=2000)
    ap.add_argument("--path", default="/hello.txt")
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--silent", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--signal", default="TERM",
                    help="the graceful stop signal (nginx: QUIT)")
    ap.add_argument("--max-stall-ms", type=float, default=0)
    a = ap.parse_args()
    fn = {"sigterm-fresh": cmd_sigterm_fresh, "sigterm-churn": cmd_sigterm_churn,
          "idle-memory": cmd_idle_memory, "headers": cmd_headers,
          "send-timeout": cmd_send_timeout, "storm": cmd_storm}[a.cmd]
    return fn(a)


if __name__ == "__main__":
    sys.exit(main())
