#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""eventlet-web: the Eventlet peer for scripts/bench http.

eventlet.wsgi on the default hub (epoll): a WSGI application that answers
every request with "Hello, World!" (text/plain), the body coil-httpd's
/plaintext sends. HTTP/1.1 keep-alive and pipelining are eventlet.wsgi's
own; no access log.

    /usr/bin/python3 scripts/peers/eventlet_web.py --addr 127.0.0.1 --port 0

Prints "eventlet-web: listening on ADDR:PORT" to stderr once bound (PORT is
the real port when --port 0). SIGINT/SIGTERM exit 0 at once.
"""
import sys

import eventlet.wsgi

from eventlet_listen import listen

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


class NoLog:
    def write(self, _):
        pass


def main():
    sock = listen("eventlet-web", "eventlet.wsgi plaintext server")
    eventlet.wsgi.server(sock, app, log=NoLog(), log_output=False,
                         max_size=100000, keepalive=True, debug=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
