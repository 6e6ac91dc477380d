"""A throwaway ngircd (26) for integration tests.

Why a real server: the bot's hardest bugs (flood penalties, ping timeouts, registration order,
reconnects) only show against a real ircd. ngircd starts in a few milliseconds, so each test
that needs special settings can have its own.

Facts this module relies on (measured with ngircd 26.1):
- `-n` keeps it in the foreground and logs to stdout; we capture stdout+stderr to a file.
- Started as root it drops to nobody/nogroup by itself, so the config folder must be readable
  by them (mkdtemp makes 0700 folders: we chmod).
- Without `IncludeDir` it reads /etc/ngircd/conf.d; without `PAM = no` the Debian build asks
  PAM; `DNS = no` and `Ident = no` avoid lookups that slow every registration.
- `MaxNickLength` defaults to 9 (RFC 2812): we raise it so tests can use readable nicks.
- `PingTimeout` and `PongTimeout` below 5 are raised to 5 with only a warning in the log, and
  its timers tick once a second: PING comes about PingTimeout+1 s after the last activity.
- It sets SO_REUSEADDR: a restart can bind the same port at once, even with clients connected.
- If the port is taken it logs "Address already in use" and exits with status 1.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from tests.support.ports import free_port

__all__ = ["NgircdServer"]

DEFAULT_NGIRCD = "/usr/sbin/ngircd"
#: ngircd silently raises lower ping/pong timeouts to this.
MIN_TIMEOUT = 5


class NgircdServer:
    """One ngircd process on 127.0.0.1 with a config written into its own temp folder.

    `flood_penalty=False` (the default) sets `MaxPenaltyTime = 0` so tests can talk fast; pass
    True to keep ngircd's default penalty (about 3 lines/s per client after a short burst) for
    tests about the bot's output rate limiting. `extra_config` is appended verbatim (e.g. a
    `[Channel]` or `[Operator]` section).
    """

    def __init__(
        self,
        *,
        flood_penalty: bool = False,
        ping_timeout: int = 120,
        pong_timeout: int = 20,
        name: str = "irc.test",
        max_nick_length: int = 30,
        motd: str = "ngircd started by the livechat-bot test harness",
        extra_config: str = "",
        host: str = "127.0.0.1",
        executable: str | None = None,
        start_timeout: float = 5,
    ) -> None:
        """Prepare (not start) a server; `start()` or `with` runs it.

        Ping and pong timeouts under 5 s raise ValueError, because ngircd would quietly use 5
        and a test relying on the smaller value would wait for nothing.
        """
        if ping_timeout < MIN_TIMEOUT or pong_timeout < MIN_TIMEOUT:
            raise ValueError(f"ngircd enforces ping/pong timeouts of at least {MIN_TIMEOUT} s")
        self.flood_penalty = flood_penalty
        self.ping_timeout = ping_timeout
        self.pong_timeout = pong_timeout
        self.name = name
        self.max_nick_length = max_nick_length
        self.motd = motd
        self.extra_config = extra_config
        self.host = host
        self.executable = executable or shutil.which("ngircd") or DEFAULT_NGIRCD
        self.start_timeout = start_timeout
        self.port = 0
        self.tmpdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # --------------------------------------------------------------------------- files

    @property
    def config_path(self) -> Path:
        """The generated ngircd.conf (exists after the first `start()`)."""
        return self._dir() / "ngircd.conf"

    @property
    def log_path(self) -> Path:
        """ngircd's stdout+stderr, appended across restarts, for debugging failures."""
        return self._dir() / "ngircd.log"

    def _dir(self) -> Path:
        if self.tmpdir is None:
            self.tmpdir = Path(tempfile.mkdtemp(prefix="ngircd-"))
            # ngircd started as root drops to nobody/nogroup; mkdtemp made the folder 0700.
            self.tmpdir.chmod(0o755)
            include = self.tmpdir / "conf.d"
            include.mkdir()
            include.chmod(0o755)
        return self.tmpdir

    def config_text(self) -> str:
        """The ngircd.conf contents for the current settings and port."""
        penalty = "" if self.flood_penalty else "\tMaxPenaltyTime = 0\n"
        return (
            "[Global]\n"
            f"\tName = {self.name}\n"
            "\tInfo = livechat-bot test server\n"
            "\tAdminInfo1 = test harness\n"
            "\tAdminInfo2 = 127.0.0.1\n"
            "\tAdminEMail = nobody@example.invalid\n"
            f"\tListen = {self.host}\n"
            f"\tPorts = {self.port}\n"
            f"\tMotdPhrase = {self.motd}\n"
            "[Limits]\n"
            "\tMaxConnections = 0\n"  # 0 = unlimited
            "\tMaxConnectionsIP = 0\n"  # default 5: too few for a bot plus clients
            "\tMaxJoins = 0\n"
            f"\tMaxNickLength = {self.max_nick_length}\n"
            f"{penalty}"
            f"\tPingTimeout = {self.ping_timeout}\n"
            f"\tPongTimeout = {self.pong_timeout}\n"
            "[Options]\n"
            "\tPAM = no\n"
            "\tDNS = no\n"
            "\tIdent = no\n"
            f"\tIncludeDir = {self._dir() / 'conf.d'}\n"
            f"{self.extra_config}\n"
        )

    def log_text(self) -> str:
        """Everything ngircd logged so far (empty before the first start)."""
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """True while the ngircd process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port), ready for socket.create_connection."""
        return (self.host, self.port)

    def start(self) -> NgircdServer:
        """Write the config, run ngircd and return once the port accepts connections.

        The first start picks a free port (and picks again if another process grabbed it in
        the meantime); later starts reuse the same port.
        """
        if self.running:
            return self
        first = self.port == 0
        for _attempt in range(5):
            if first:
                self.port = free_port(self.host)
            if self._spawn_and_wait():
                return self
            if not (first and "Address already in use" in self.log_text()):
                break
        raise RuntimeError(
            f"ngircd did not start on {self.host}:{self.port}; log:\n{self._log_tail()}"
        )

    def _spawn_and_wait(self) -> bool:
        self.config_path.write_text(self.config_text())
        self.config_path.chmod(0o644)
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [self.executable, "-n", "-f", str(self.config_path.resolve())],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._reap()
                return False
            try:
                with socket.create_connection(self.address, timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.005)  # polling interval of a bounded wait for the port to open
                continue
            if self._proc.poll() is None:  # the port is ours, not another process's
                return True
        self.stop()
        return False

    def stop(self, timeout: float = 5) -> None:
        """Terminate ngircd (SIGTERM, then SIGKILL), bounded; safe to call any number of times."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> NgircdServer:
        """Stop and start again on the same port; connected clients are dropped."""
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        """Stop and delete the temp folder (config and log)."""
        self.stop()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def _log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> NgircdServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<NgircdServer {self.host}:{self.port} {state} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        """The ngircd process id while it runs."""
        return self._proc.pid if self._proc is not None else None
