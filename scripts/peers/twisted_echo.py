#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""twisted-echo: the Twisted peer for scripts/bench.

The textbook Twisted echo server on the epoll reactor:
Protocol.dataReceived -> transport.write. TCP_NODELAY is set on accepted
connections, as coil-echo and epoll-echo do, so that no server pays for
Nagle.

    /usr/bin/python3 scripts/peers/twisted_echo.py --addr 127.0.0.1 --port 0

Prints "twisted-echo: listening on ADDR:PORT" to stderr once bound (PORT is
the real port when --port 0). SIGINT/SIGTERM stop the reactor; exit 0.
"""
import argparse
import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import protocol, reactor  # noqa: E402


class Echo(protocol.Protocol):
    def connectionMade(self):
        self.transport.setTcpNoDelay(True)

    def dataReceived(self, data):
        self.transport.write(data)


class EchoFactory(protocol.Factory):
    protocol = Echo


def main():
    ap = argparse.ArgumentParser(description="Twisted TCP echo server")
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    port = reactor.listenTCP(args.port, EchoFactory(), backlog=1024,
                             interface=args.addr)
    host = port.getHost()
    sys.stderr.write("twisted-echo: listening on %s:%d\n"
                     % (host.host, host.port))
    sys.stderr.flush()
    # The reactor installs SIGINT/SIGTERM handlers that stop it cleanly.
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
