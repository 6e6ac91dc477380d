"""A real webhook receiver for tests: the standard library's HTTP server in its own process.

It does what a team's bridge would: checks ``X-Livechat-Signature`` against the shared
secret (HMAC-SHA256 of the body, compared in constant time) and answers 401 when it does
not match, 204 when it does. ``--fail N`` answers 503 to the first N posts (an endpoint
having a bad moment). Every request is written to ``DIR`` as ``NNNN.json`` (headers, body,
whether the signature was right, the status answered), by rename. Prints ``READY`` once
listening. The secret comes from the environment variable ``HOOK_SECRET``.

    python hookserver.py --port P --out DIR [--fail N]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.childserver import ChildServer

__all__ = ["HookServer"]


def _serve(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    secret = os.environ["HOOK_SECRET"].encode()
    lock = threading.Lock()
    seen = {"n": len(list(out.glob("*.json")))}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            verified = hmac.compare_digest(expected, self.headers.get("X-Livechat-Signature", ""))
            with lock:
                seen["n"] += 1
                n = seen["n"]
            status = 503 if n <= args.fail else (204 if verified else 401)
            record = {
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body.decode("utf-8"),
                "verified": verified,
                "status": status,
            }
            tmp = out / f"{n:04d}.tmp"
            tmp.write_text(json.dumps(record), encoding="utf-8")
            tmp.rename(out / f"{n:04d}.json")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(format % args + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("READY", flush=True)
    server.serve_forever()
    server.server_close()


class HookServer(ChildServer):
    """The receiver process; :meth:`start` again after :meth:`stop` reuses port and folder."""

    what = "the webhook receiver"

    def __init__(self, port: int, out: Path, secret: str, *, fail: int = 0) -> None:
        args = ["--port", str(port), "--out", str(out), "--fail", str(fail)]
        super().__init__(
            "tests.support.hookserver", args, {**os.environ, "HOOK_SECRET": secret}, out
        )
        self.port = port
        self.url = f"http://127.0.0.1:{port}/livechat/hook"

    def requests(self) -> list[dict[str, Any]]:
        """Every post received so far, in order (``body`` as text, ``json`` parsed)."""
        found = []
        for path in sorted(self.out.glob("*.json")):
            record = json.loads(path.read_text(encoding="utf-8"))
            record["json"] = json.loads(record["body"]) if record["body"] else None
            found.append(record)
        return found

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        """Wait (bounded, polling the folder) until ``count`` posts have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests()
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f"{len(found)} of {count} posts arrived within {timeout} s")
            time.sleep(0.05)  # polling interval of a bounded wait on a folder

    def __enter__(self) -> HookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail", type=int, default=0)
    _serve(parser.parse_args())
