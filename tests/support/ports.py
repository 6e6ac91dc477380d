"""A free TCP port for a server a test starts (ngircd, InspIRCd, its services link)."""

from __future__ import annotations

import socket

__all__ = ["free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago: the kernel picks it, so parallel runs differ.

    A race with another process is possible between this and the server's bind: the servers'
    start-up retries with a new port when the bind fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
