#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""twisted-web: the Twisted peer for scripts/bench http.

twisted.web on the epoll reactor: a Site whose root Resource answers every
GET with "Hello, World!" (text/plain), the body coil-httpd's /plaintext
sends. HTTP/1.1 keep-alive and pipelining are twisted.web's own.

    /usr/bin/python3 scripts/peers/twisted_web.py --addr 127.0.0.1 --port 0

Prints "twisted-web: listening on ADDR:PORT" to stderr once bound (PORT is
the real port when --port 0). SIGINT/SIGTERM stop the reactor; exit 0.
"""
import argparse
import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import reactor  # noqa: E402
from twisted.web import resource, server  # noqa: E402

BODY = b"Hello, World!"


class Plaintext(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"text/plain")
        return BODY


def main():
    ap = argparse.ArgumentParser(description="twisted.web plaintext server")
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    site = server.Site(Plaintext())
    site.displayTracebacks = False
    # No access log: coil-httpd, nginx and h2o run without one too.
    site.log = lambda request: None
    port = reactor.listenTCP(args.port, site, backlog=1024,
                             interface=args.addr)
    host = port.getHost()
    sys.stderr.write("twisted-web: listening on %s:%d\n"
                     % (host.host, host.port))
    sys.stderr.flush()
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
