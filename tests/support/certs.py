"""A throwaway certificate authority and a server certificate for 127.0.0.1, by ``openssl``.

Why a CA and not one self-signed certificate: the bot checks certificates as it would in
production (``ssl.create_default_context()``: the CA store, then the host name), so a test
points ``SSL_CERT_FILE`` at this CA and the server presents a certificate it signed for
``127.0.0.1`` and ``localhost``. The ``openssl`` command comes with Debian (package
``openssl``, which ``scripts/test`` installs when missing); the ``cryptography`` package is
not a dependency of the project.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TestCerts", "make_certs"]


@dataclass(frozen=True)
class TestCerts:
    ca: Path  # the CA's certificate: what SSL_CERT_FILE points at
    cert: Path  # the server's certificate (for 127.0.0.1 and localhost)
    key: Path  # the server's key


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(folder: Path) -> TestCerts:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = folder / "server.ext"
    ext.write_text(
        "basicConstraints = CA:FALSE\n"
        "keyUsage = digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n",
        encoding="ascii",
    )
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=livechat-bot test CA", "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
        cwd=folder,
    )  # fmt: skip
    return TestCerts(folder / "ca.pem", folder / "server.pem", folder / "server.key")
