"""The floor: the least a bot can do. A bare socket that answers ``!ping`` with ``pong``.

No IRC library, no parsing beyond a substring test: whatever our bot's latency is above this
is the cost of our code (and jaraco ``irc``), not of the server or the loopback.
"""

from __future__ import annotations

import socket
import sys


def main(host: str, port: int, nick: str) -> None:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :floor\r\n".encode())
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        buf += data
        *lines, buf = buf.split(b"\r\n")
        out = []
        for line in lines:
            if line.startswith(b"PING "):
                out.append(b"PONG " + line[5:])
            elif b" PRIVMSG " in line and b" :!ping" in line:
                sender = line[1 : line.index(b"!")]
                out.append(b"PRIVMSG " + sender + b" :pong")
            elif b" 001 " in line:
                out.append(b"JOIN #livechat")
        if out:
            sock.sendall(b"\r\n".join(out) + b"\r\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
