# SPDX-License-Identifier: MIT
"""What the Eventlet peers (eventlet_echo.py, eventlet_web.py) share: the
--addr/--port arguments, exit 0 on SIGINT/SIGTERM, the listening socket
and the "NAME: listening on ADDR:PORT" line scripts/bench waits for."""
import argparse
import os
import signal
import sys

import eventlet


def listen(name, description):
    """Parse --addr/--port, listen there (backlog 1024) and announce it on
    stderr; returns the green listening socket."""
    ap = argparse.ArgumentParser(prog=name, description=description)
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    # A Python signal handler runs between bytecodes of the main thread;
    # the hub's epoll_wait returns on EINTR for it, so this is prompt.
    # Open connections are dropped, which is all a benchmark peer needs.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: os._exit(0))
    sock = eventlet.listen((args.addr, args.port), backlog=1024)
    host, port = sock.getsockname()[:2]
    sys.stderr.write("%s: listening on %s:%d\n" % (name, host, port))
    sys.stderr.flush()
    return sock
