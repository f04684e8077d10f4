# SPDX-License-Identifier: MIT
"""Small helpers shared by the Python integration clients (imported from
the script's own folder, which Python puts first on sys.path)."""


def read_to_eof(sock, chunk=65536):
    """Everything the peer sends until it closes; returns bytes."""
    parts = []
    while True:
        d = sock.recv(chunk)
        if not d:
            return b"".join(parts)
        parts.append(d)
