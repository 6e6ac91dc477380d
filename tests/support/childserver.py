"""A test server run as a process of its own, started and stopped by the test.

The SMTP server and the webhook receiver run this way: a real server in another process, as
a team's would be, so the bot's sender meets real sockets, and a test can stop it ("the
endpoint was down") and start it again on the same port and folder. The child prints
``READY`` on stdout once it listens; its log goes to a file beside its output folder. It is
run as a module (``python -m tests.support.hookserver``) with the checkout on its path, so
it shares this module with the test that starts it.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Self

__all__ = ["ChildServer"]

CHECKOUT = Path(__file__).resolve().parents[2]


class ChildServer:
    """The module ``module`` run with ``args`` and ``env``; :meth:`start` again after
    :meth:`stop` reuses the port and folder."""

    what = "the server"

    def __init__(self, module: str, args: Sequence[str], env: Mapping[str, str], out: Path):
        self.out = out
        self._command = [sys.executable, "-m", module, *args]
        path = [str(CHECKOUT), *filter(None, [env.get("PYTHONPATH")])]
        self._env = {**env, "PYTHONPATH": os.pathsep.join(path)}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 15) -> Self:
        self._log = (self.out.parent / f"{self.out.name}.log").open("ab")
        self._proc = subprocess.Popen(
            self._command, stdout=subprocess.PIPE, stderr=self._log, env=self._env
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        line = self._proc.stdout.readline() if ready else b""
        if line.strip() != b"READY":
            self.stop()
            raise AssertionError(f"{self.what} did not start: {line!r}")
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._proc = None
