"""A real IRC services network (InspIRCd 3 + Atheme 7.2) on loopback, for tests.

Why: account mode and SASL can only be proven against a server that really has services
accounts. ngircd has none, so the tests that care about ``account-tag``, ``extended-join``,
``account-notify``, WHOIS 330 and SASL PLAIN start this network instead.

Clients are :class:`~tests.support.client.IRCTestClient` s, the same client as the ngircd tests
use. Everything here is stdlib only and bounded in time: every wait has a deadline, every process is
stopped (terminate, then kill) at teardown.

Facts about InspIRCd 3.15 that shape this module (measured on these machines):

- A client's registration (NICK/USER, or CAP END) completes only in the server's once-a-second
  housekeeping pass (``UserManager::DoBackgroundUserStuff``), which runs when the main loop sees
  the wall-clock second change. The loop waits in ``epoll_wait`` for up to 1000 ms, so on an idle
  server a client waits about 1 s. No configuration setting changes this. A client can wake the
  loop just after the next second boundary with an empty line (which the server ignores), which
  brings the wait down to the time left until that boundary (0-1 s, 0.5 s on average).
  :func:`wait_registered` does exactly that, for any number of clients at once.
- ``sasl`` is offered in ``CAP LS`` only while the services server is linked, which makes it the
  readiness signal for the whole network (about 0.03 s after InspIRCd is launched).
- ``threshold``/``commandrate``/``fakelag`` are not the only throttle: InspIRCd reads a client
  in ``<performance netbuffersize>`` chunks (default 10240 bytes) and, when one read fills the
  buffer, leaves the rest for the next second's tick, so a burst of more than 10 KB was read at
  10 KB/s. ``netbuffersize`` accepts 1024-65534 only (other values silently fall back to
  10240); at 65534 a 330 KB burst goes through in 0.2 s. A burst over 64 KB sent within
  ~0.1 s of registration can still wait one tick.
- Before registration, ``900`` is ``900 * <uuid>!<uuid>@127.0.0.1 <account> :...`` (the nick is
  ``*``); with ``chghost`` negotiated a ``CHGHOST`` (ident UUID -> user) precedes ``001``.

Atheme 7.2 facts: run with ``-n`` it sends every connecting user a NOTICE from the *server*
(``services.test``, tag ``inspircd.org/service``) saying it runs in debug mode; count only
NickServ's NOTICEs. Without a crypto module, passwords are stored in plain text (fast: REGISTER
takes ~10 ms). A REGISTER password must not contain spaces nor equal the nick.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tests.support.client import IRCTestClient
from tests.support.ports import free_port

INSPIRCD_BIN = "/usr/sbin/inspircd"
ATHEME_BIN = "/usr/bin/atheme-services"

#: Capabilities a test client asks for by default: everything the bot relies on.
DEFAULT_CAPS: tuple[str, ...] = (
    "account-notify",
    "account-tag",
    "away-notify",
    "chghost",
    "extended-join",
    "message-tags",
    "multi-prefix",
    "server-time",
    "userhost-in-names",
)


def binaries_available() -> bool:
    """Tell whether both daemons are installed, so a fixture can skip with a clear reason."""
    return os.access(INSPIRCD_BIN, os.X_OK) and os.access(ATHEME_BIN, os.X_OK)


def wake(client: IRCTestClient) -> None:
    """Send an empty line: InspIRCd ignores it, but it ends the server's epoll wait."""
    client.send_raw(b"")


def wait_registered(clients: Sequence[IRCTestClient], timeout: float = 5.0) -> None:
    """Wait until every client got 001, waking the server just after each second boundary.

    Why the wake-up: InspIRCd completes registrations only in its once-a-second housekeeping
    pass, and an idle server notices the new second only when ``epoll_wait`` (1000 ms) returns.
    An empty line sent 3 ms after the boundary ends that wait, so all pending clients are
    welcomed at the boundary itself instead of up to a second later. A registration error
    fails at once (see ``IRCTestClient.welcome``).
    """
    deadline = time.monotonic() + timeout
    next_wake = math.floor(time.time()) + 1.003
    for client in clients:
        while not client.registration_ended(
            max(0.0, min(next_wake - time.time(), deadline - time.monotonic()))
        ):
            if time.monotonic() >= deadline:
                names = ", ".join(c.current_nick for c in clients if not c.registration_ended())
                raise TimeoutError(f"no 001 within {timeout}s for: {names}")
            if time.time() >= next_wake:
                wake(client)
                next_wake = math.floor(time.time()) + 1.003
        client.welcome(timeout=0)


class Waker:
    """Wakes InspIRCd just after every second boundary, from its own idle connection.

    Why: any client registering (the bot included, which the test cannot make send an empty
    line) waits for the server's housekeeping tick; see :func:`wait_registered`. With a waker
    running, every registration completes at the next boundary, 0.5 s on average instead of
    about 1 s. The empty lines are ignored by the server and harmless to every test.
    """

    def __init__(self, network: ServicesNetwork, nick: str = "waker") -> None:
        self.network = network
        self.nick = nick
        self.client: IRCTestClient | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inspircd-waker", daemon=True)

    def start(self) -> Waker:
        self.client = self.network.connect(self.nick)
        self._thread.start()
        return self

    def _run(self) -> None:
        client = self.client
        assert client is not None
        while True:
            boundary = math.floor(time.time()) + 1.003
            if self._stop.wait(max(0.0, boundary - time.time())):
                return
            while time.time() < boundary:  # Event.wait may return a hair early
                time.sleep(0.001)
            try:
                wake(client)  # the client's reader thread answers PING
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        if self.client is not None:
            self.client.quit()

    def __enter__(self) -> Waker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServicesNetwork:
    """InspIRCd 3 with Atheme 7.2 linked to it, on free 127.0.0.1 ports, in a temp folder.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``host``/``port`` is the
    client port. Accounts are created with :meth:`register_account`; clients with
    :meth:`connect` / :meth:`connect_many`. Logs of both daemons stay in ``workdir``.
    """

    host = "127.0.0.1"
    server_name = "irc.test"
    services_name = "services.test"
    network_name = "TestNet"

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        *,
        startup_timeout: float = 15.0,
    ) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp())
        self.startup_timeout = startup_timeout
        self.port = 0
        self.link_port = 0
        self.link_password = "linkpass-" + os.urandom(6).hex()
        self.inspircd_conf = self.workdir / "inspircd.conf"
        self.atheme_conf = self.workdir / "atheme.conf"
        self.inspircd_log = self.workdir / "inspircd.log"
        self.inspircd_out = self.workdir / "inspircd.out"
        self.atheme_log = self.workdir / "atheme.log"
        self.atheme_out = self.workdir / "atheme.out"
        self.atheme_data = self.workdir / "atheme-data"
        #: Seconds from launching InspIRCd until ``sasl`` was offered (set by :meth:`start`).
        self.startup_seconds: float | None = None
        self._inspircd: subprocess.Popen[bytes] | None = None
        self._atheme: subprocess.Popen[bytes] | None = None

    # -- configs ---------------------------------------------------------------------------
    def inspircd_config(self) -> str:
        """The InspIRCd 3 config: IRCv3 caps, accounts, SASL, a services link, no flood limits."""
        w = self.workdir
        return f"""\
<server name="{self.server_name}" description="livechat-bot test server"
        network="{self.network_name}" id="1TS">
<admin name="tests" nick="tests" email="tests@example.org">
<path configdir="{w}" datadir="{w}" logdir="{w}">
<bind address="{self.host}" port="{self.port}" type="clients">
<bind address="{self.host}" port="{self.link_port}" type="servers">

<connect name="tests" allow="{self.host}" maxchans="1000" timeout="60" pingfreq="10m"
         hardsendq="16M" softsendq="16M" recvq="16M"
         threshold="1000000" commandrate="1000000" fakelag="no"
         localmax="100000" globalmax="100000" limit="100000" maxconnwarn="no"
         resolvehostnames="no" useident="no" usednsbl="no" uniqueusername="no">
<cidr ipv4clone="32" ipv6clone="128">
<dns server="127.0.0.1" timeout="1">
<performance netbuffersize="65534" clonesonconnect="no" quietbursts="yes" timeskipwarn="0">
<options syntaxhints="no" announcets="yes" hostintopic="yes" defaultmodes="nt">
<security hideulines="no" announceinvites="dynamic" maxtargets="20">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{self.inspircd_log}">

<module name="cap">
<module name="ircv3">
<module name="ircv3_accounttag">
<module name="ircv3_batch">
<module name="ircv3_capnotify">
<module name="ircv3_chghost">
<module name="ircv3_ctctags">
<module name="ircv3_echomessage">
<module name="ircv3_servertime">
<module name="services_account">
<module name="sasl">
<module name="spanningtree">
<module name="namesx">
<module name="uhnames">
<module name="chghost">
<module name="svshold">
<ircv3 accountnotify="yes" awaynotify="yes" extendedjoin="yes">
<sasl target="{self.services_name}" requiressl="no">

<link name="{self.services_name}" ipaddr="{self.host}" port="{self.link_port}"
      allowmask="127.0.0.1/32" timeout="30s"
      sendpass="{self.link_password}" recvpass="{self.link_password}">
<uline server="{self.services_name}" silent="yes">
"""

    def atheme_config(self) -> str:
        """The Atheme 7.2 config: NickServ REGISTER/IDENTIFY, SaslServ PLAIN, no limits."""
        return f"""\
loadmodule "modules/protocol/inspircd";
loadmodule "modules/backend/opensex";
loadmodule "modules/nickserv/main";
loadmodule "modules/nickserv/register";
loadmodule "modules/nickserv/identify";
loadmodule "modules/nickserv/logout";
loadmodule "modules/nickserv/info";
loadmodule "modules/saslserv/main";
loadmodule "modules/saslserv/plain";

serverinfo {{
    name = "{self.services_name}";
    desc = "livechat-bot test services";
    numeric = "00T";
    recontime = 1;
    netname = "{self.network_name}";
    hidehostsuffix = "users.test";
    adminname = "tests";
    adminemail = "tests@example.org";
    registeremail = "tests@example.org";
    loglevel = {{ all; }};
    maxlogins = 1000;
    maxusers = 1000;
    mdlimit = 100;
    emaillimit = 1000;
    emailtime = 1;
    auth = none;
    casemapping = rfc1459;
}};

uplink "{self.server_name}" {{
    host = "{self.host}";
    port = {self.link_port};
    password = "{self.link_password}";
}};

nickserv {{
    nick = "NickServ";
    user = "NickServ";
    host = "{self.services_name}";
    real = "Nickname Services";
    maxnicks = 5;
    expire = 0;
}};

saslserv {{
    nick = "SaslServ";
    user = "SaslServ";
    host = "{self.services_name}";
    real = "SASL Authentication Agent";
}};

general {{
    flood_msgs = 0;
    flood_time = 10;
    kline_time = 7;
    commit_interval = 5;
    uplink_sendq_limit = 10485760;
    language = "en";
    immune_level = immune;
}};
"""

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Write both configs, start InspIRCd, then Atheme, and wait until SASL is offered.

        Raises ``RuntimeError`` with the tails of both daemons' logs if the network is not up
        within ``startup_timeout``: a broken network must be a test error, not a silent skip.
        """
        if not binaries_available():
            raise FileNotFoundError(f"{INSPIRCD_BIN} or {ATHEME_BIN} is missing")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.atheme_data.mkdir(exist_ok=True)
        started = time.monotonic()
        deadline = started + self.startup_timeout
        try:
            for attempt in range(1, 4):
                self._write_configs()
                self._inspircd = self._launch(
                    [
                        INSPIRCD_BIN,
                        "--config",
                        str(self.inspircd_conf),
                        "--nofork",
                        "--runasroot",
                        "--nopid",
                    ],
                    self.inspircd_out,
                )
                failed = self._wait_bound(deadline)
                if not failed:
                    break
                # Another process took a port between free_port() and the bind: try new ones.
                self._stop_process("_inspircd")
                if attempt == 3:
                    raise RuntimeError(f"could not bind {failed} after {attempt} attempts")
            self._atheme = self._launch(
                [
                    ATHEME_BIN,
                    "-n",
                    "-c",
                    str(self.atheme_conf),
                    "-D",
                    str(self.atheme_data),
                    "-l",
                    str(self.atheme_log),
                    "-p",
                    str(self.workdir / "atheme.pid"),
                ],
                self.atheme_out,
            )
            self._wait_sasl_offered(deadline)
        except BaseException as exc:
            tails = self.log_tails()
            self.stop()
            raise RuntimeError(f"services network did not start: {exc}\n{tails}") from exc
        self.startup_seconds = time.monotonic() - started

    def _write_configs(self) -> None:
        self.port = free_port(self.host)
        self.link_port = free_port(self.host)
        while self.link_port == self.port:
            self.link_port = free_port(self.host)
        self.inspircd_log.unlink(missing_ok=True)  # _wait_bound reads this attempt's lines
        self.inspircd_conf.write_text(self.inspircd_config())
        self.atheme_conf.write_text(self.atheme_config())

    @staticmethod
    def _launch(argv: list[str], out: Path) -> subprocess.Popen[bytes]:
        with out.open("ab") as sink:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is pytest's, not theirs
            )

    def _check_alive(self) -> None:
        for name, proc in (("inspircd", self._inspircd), ("atheme", self._atheme)):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with status {proc.returncode}")

    def _wait_bound(self, deadline: float) -> list[int]:
        """Wait until InspIRCd's log reports both listeners; return the ports it failed to bind.

        Why the log and not a connect(): a foreign process holding the port would accept the
        connect, while InspIRCd logs ``Added a listener on`` / ``Failed to listen on`` for each
        ``<bind>`` as soon as it reads the config (the log is flushed line by line).
        """
        ports = {self.port, self.link_port}
        while True:
            self._check_alive()
            try:
                text = self.inspircd_log.read_text(errors="replace")
            except FileNotFoundError:
                text = ""
            done = {p for p in ports if f"{self.host}:{p}" in text}
            if done == ports:
                return sorted(p for p in ports if f"Failed to listen on {self.host}:{p}" in text)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"InspIRCd did not report its listeners {sorted(ports)}")
            time.sleep(0.005)

    def _wait_sasl_offered(self, deadline: float) -> None:
        """Poll ``CAP LS 302`` until ``sasl`` appears, i.e. until services are linked."""
        last: dict[str, str] = {}
        while True:
            self._check_alive()
            # AssertionError: the probe's wait failed (no CAP LS reply, connection closed).
            with contextlib.suppress(OSError, AssertionError):
                with IRCTestClient.open(self.host, self.port, "probe", timeout=1.0) as probe:
                    last = probe.cap_ls(timeout=1.0)
                if "sasl" in last:
                    return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"sasl not offered within {self.startup_timeout}s; CAP LS {last}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop services first (so InspIRCd doesn't log a split storm), then the server."""
        self._stop_process("_atheme")
        self._stop_process("_inspircd")
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop_process(self, attr: str) -> None:
        """SIGTERM one daemon, SIGKILL it after 5 s, and reap it: no process outlives a test."""
        proc: subprocess.Popen[bytes] | None = getattr(self, attr)
        if proc is None:
            return
        setattr(self, attr, None)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def __enter__(self) -> ServicesNetwork:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of each daemon's logs: what one needs when startup fails.

        ``*.out`` is the daemon's stdout/stderr (InspIRCd's bind warnings, Atheme's config
        errors); ``atheme.out`` repeats ``atheme.log`` under ``-n``, so only its tail is shown.
        """
        parts = []
        for path, count in (
            (self.inspircd_out, lines),
            (self.inspircd_log, lines),
            (self.atheme_log, lines),
            (self.atheme_out, 10),
        ):
            try:
                text = path.read_text(errors="replace").splitlines()[-count:]
            except OSError as exc:
                text = [f"<unreadable: {exc}>"]
            parts.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(parts)

    # -- clients and accounts --------------------------------------------------------------
    def client(self, nick: str, *, timeout: float = 5.0) -> IRCTestClient:
        """Open an unregistered connection (the caller drives CAP/NICK/USER itself)."""
        return IRCTestClient.open(self.host, self.port, nick, timeout=timeout)

    def connect_many(
        self,
        nicks: Sequence[str],
        *,
        caps: Sequence[str] = (),
        logins: Mapping[str, str | tuple[str, str]] | None = None,
        timeout: float = 10.0,
    ) -> list[IRCTestClient]:
        """Connect and register several clients in one server tick (~0.5 s for all of them).

        ``logins`` maps a nick to its account password, or to ``(account, password)`` for an
        account not named after the nick: that client logs in with SASL PLAIN before
        registration.
        """
        clients: list[IRCTestClient] = []
        try:
            for nick in nicks:
                client = self.client(nick)
                clients.append(client)
                login = (logins or {}).get(nick)
                sasl = (nick, login) if isinstance(login, str) else login
                client.begin(caps=list(caps) or None, sasl=sasl or None, timeout=timeout)
            wait_registered(clients, timeout)
        except BaseException:
            for client in clients:
                client.quit()
            raise
        return clients

    def connect(
        self,
        nick: str,
        *,
        caps: Sequence[str] = (),
        password: str | None = None,
        account: str | None = None,
        timeout: float = 10.0,
    ) -> IRCTestClient:
        """Connect and register one client, logged in with SASL when ``password`` is given
        (as ``account``, by default the account named after the nick)."""
        logins = {nick: (account or nick, password)} if password else None
        return self.connect_many([nick], caps=caps, logins=logins, timeout=timeout)[0]

    def connect_accounts(
        self,
        nicks: Sequence[str],
        *,
        accounts: Mapping[str, str],
        caps: Sequence[str] = DEFAULT_CAPS,
        timeout: float = 10.0,
    ) -> dict[str, IRCTestClient]:
        """Connect ``nicks`` in one tick and REGISTER those in ``accounts`` (nick -> password).

        Registering logs the connection in at once, so this gives logged-in and anonymous
        users for the price of one server tick, where :meth:`register_accounts` followed by
        SASL logins costs two. The accounts are named after the nicks and live as long as the
        network. Returns the clients by nick.
        """
        clients = self.connect_many(nicks, caps=caps, timeout=timeout)
        try:
            registering = [c for c in clients if c.current_nick in accounts]
            for client in registering:
                password = accounts[client.current_nick]
                client.say("NickServ", f"REGISTER {password} {client.current_nick}@example.org")
            for client in registering:
                client.expect_nickserv_registered(timeout)
                client.expect(command="900", timeout=timeout)
        except BaseException:
            for client in clients:
                client.quit()
            raise
        return {client.current_nick: client for client in clients}

    def waker(self, nick: str = "waker") -> Waker:
        """A :class:`Waker` on this network (start it, or use it as a context manager)."""
        return Waker(self, nick)

    def register_account(self, nick: str, password: str, *, timeout: float = 10.0) -> None:
        """Register a NickServ account named ``nick`` (email ``<nick>@example.org``).

        Connects a client with that nick, sends REGISTER, waits for NickServ's confirmation and
        disconnects; any other NickServ answer (already registered, bad password...) raises.
        """
        self.register_accounts({nick: password}, timeout=timeout)

    def register_accounts(self, accounts: Mapping[str, str], *, timeout: float = 10.0) -> None:
        """Register several accounts (nick -> password) for the price of one server tick."""
        clients = self.connect_many(list(accounts), timeout=timeout)
        try:
            for client in clients:
                client.nickserv_register(accounts[client.current_nick], timeout=timeout)
        finally:
            for client in clients:
                client.quit()
