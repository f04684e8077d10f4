#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpus of fuzz_httpd (tests/fuzz/fuzz_httpd.c):
    /usr/bin/python3 tests/fuzz/make_corpus_httpd.py tests/fuzz/corpus/httpd
Each file is one configuration byte, then NUL-separated commands (see the
comment at the top of fuzz_httpd.c)."""
import os
import sys


def cfg(buf=3, cache=True, log=False, small_hw=False, limits=2):
    """The configuration byte: receive buffer size index (64, 256, 1024,
    4096), cache, access log, small high-water mark, limit set (0: line
    64 / head 128 / 4 headers, 1: 256 / 512 / 8, 2: 1024 / 2048 / 16)."""
    return bytes([buf | (0 if cache else 4) | (8 if log else 0) |
                  (16 if small_hw else 0) | (limits << 5)])


def get(path, extra="", method="GET", version="1.1", host=True):
    head = f"{method} {path} HTTP/{version}\r\n"
    if host:
        head += "Host: x\r\n"
    return head + extra + "\r\n"


def seed(config, *cmds):
    return config + b"\0".join(c.encode("latin-1") if isinstance(c, str)
                                else c for c in cmds)


SEEDS = {
    "pipelined": seed(cfg(log=True),
        "a" + get("/plaintext") + get("/json") + get("/small.txt") +
        get("/big.bin", method="HEAD") + get("/mid.bin") +
        get("/sub/") + get("/link.txt")),
    "pipelined-small-bufs": seed(cfg(buf=0, small_hw=True),
        "a" + get("/big.bin") * 3 + get("/mid.bin") * 2 + get("/plaintext"),
        "s\x07", "T", "t\x05", "s\x00"),
    "chunked-upload": seed(cfg(buf=1),
        "aPOST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Expect: 100-continue\r\n\r\n",
        "a5\r\nhello\r\n",
        "a6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n" + get("/json")),
    "echo-content-length": seed(cfg(),
        "aPUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234",
        "a56789" + get("/plaintext"),
        "aPOST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n"),
    "ranges": seed(cfg(),
        "a" + get("/small.txt", "Range: bytes=0-4\r\n") +
        get("/mid.bin", "Range: bytes=-100\r\n") +
        get("/big.bin", "Range: bytes=100-199\r\n") +
        get("/big.bin", "Range: bytes=30000-\r\n") +
        get("/small.txt", "Range: bytes=0-1,3-4\r\n") +
        get("/small.txt", "Range: bytes=2-\r\nIf-Range: \"x\"\r\n") +
        get("/small.txt", "Range: bytes=2-\r\n"
            "If-Range: Tue, 02 Jan 2024 03:04:05 GMT\r\n")),
    "conditional": seed(cfg(log=True),
        "a" + get("/small.txt", "If-None-Match: *\r\n") +
        get("/small.txt", "If-Match: \"nope\"\r\n") +
        get("/small.txt", "If-Match: *\r\n") +
        get("/small.txt", "If-Unmodified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n") +
        get("/mid.bin", "If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT\r\n") +
        get("/big.bin", "If-None-Match: W/\"a\", \"b\"\r\n"
            "If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT\r\n") +
        get("/small.txt", "If-Match: \"a\"\r\nIf-Match: W/\"b\"\r\n"
            "Range: bytes=1-2\r\n")),
    "bad-requests": seed(cfg(limits=0),
        "a" + get("/plaintext", host=False),
        "b" + get("/plaintext", "Content-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n"),
        "R",
        "b" + get("/" + "x" * 80),
        "r",
        "a" + get("/json", "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n"),
        "r",
        "aGET / HTTP/1.1\r\nHost: x\r\nFold: a\r\n b\r\n\r\n"),
    "bad-body": seed(cfg(limits=1),
        "aPOST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "zz\r\n",
        "bPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
        "R",
        "bPOST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "200\r\n" + "y" * 64),
    "traversal": seed(cfg(log=True),
        "a" + get("/../secret.txt") + get("/%2e%2e/secret.txt") +
        get("/out") + get("/abs") + get("/updir/secret.txt") +
        get("/sub/../../secret.txt") + get("/sub/%2E%2E/%2e%2e/secret.txt") +
        get("/link.txt") + get("//out") + get("/sub/..%2fout")),
    "two-conns-one-turn": seed(cfg(buf=2),
        "A" + get("/mid.bin") + get("/plaintext"),
        "B" + get("/big.bin", "Range: bytes=10-20\r\n") + get("/json"),
        "T", "S\x81", "a" + get("/small.txt"), "T", "S\x00", "T",
        "b" + get("/sub")),
    "timeouts": seed(cfg(),
        "bPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
        "aGET /plaintext HTTP/1.1\r\nHo", "t\x19", "r", "R",
        "aGET /small.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n12",
        "bPOST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        "t\x28", "R", "b" + get("/json"), "t\x3c"),
    "eof-and-reset": seed(cfg(buf=1, small_hw=True),
        "a" + get("/big.bin") + get("/plaintext"), "e",
        "s\x80", "b" + get("/big.bin") * 2, "R", "t\x64"),
    "methods-and-dirs": seed(cfg(log=True),
        "a" + get("/sub") + get("/sub/") + get("*", method="OPTIONS") +
        get("/plaintext", method="DELETE") + get("/x", method="BREW") +
        get("/plaintext", method="OPTIONS") +
        get("/json", version="1.0", extra="Connection: keep-alive\r\n") +
        get("/json", version="1.0")),
    "cache-evict": seed(cfg(),
        "a" + get("/mid.bin") + get("/alias/mid.bin") + get("/mid-link.bin") +
        get("/alias/alias/mid.bin") + get("/mid.bin", "Range: bytes=5000-\r\n"),
        "t\x05", "a" + get("/alias/mid-link.bin") + get("/mid.bin")),
    "shutdown": seed(cfg(buf=1, small_hw=True),
        "s\x80", "a" + get("/big.bin") + get("/mid.bin") * 4,
        "bGET /json HTTP/1.1\r\nHost: x\r\n", "q", "b\r\n", "s\x00",
        "r", "T"),
    "split-small": seed(cfg(buf=0),
        "aGET /sm", "aall.tx", "at HTTP/1", "a.1\r\nHost", "a: x\r\n\r",
        "a\nGET /big.bin HTTP/1.1\r\nHost: x\r\n", "T", "a\r\n"),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus/httpd"
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
