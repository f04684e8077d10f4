#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""eventlet-echo: the Eventlet peer for scripts/bench echo.

The textbook Eventlet echo server: one green thread per connection doing
recv -> sendall on the default hub (epoll). TCP_NODELAY is set on accepted
connections, as coil-echo and epoll-echo do, so that no server pays for
Nagle.

    /usr/bin/python3 scripts/peers/eventlet_echo.py --addr 127.0.0.1 --port 0

Prints "eventlet-echo: listening on ADDR:PORT" to stderr once bound (PORT is
the real port when --port 0). SIGINT/SIGTERM exit 0 at once (open
connections are dropped).
"""
import socket
import sys

import eventlet

from eventlet_listen import listen


def handle(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    sock = listen("eventlet-echo", "Eventlet TCP echo server")
    pool = eventlet.GreenPool(100000)
    while True:
        conn, _ = sock.accept()
        pool.spawn_n(handle, conn)


if __name__ == "__main__":
    sys.exit(main())
