"""A real IRC services network (InspIRCd 3 + Atheme 7.2) on loopback, for tests.

Why: account mode and SASL can only be proven against a server that really has services
accounts. ngircd has none, so the tests that care about ``account-tag``, ``extended-join``,
``account-notify``, WHOIS 330 and SASL PLAIN start this network instead.

Everything here is stdlib only and bounded in time: every wait has a deadline, every process is
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

import base64
import contextlib
import math
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

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

_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


def binaries_available() -> bool:
    """Tell whether both daemons are installed, so a fixture can skip with a clear reason."""
    return os.access(INSPIRCD_BIN, os.X_OK) and os.access(ATHEME_BIN, os.X_OK)


def _unescape_tag(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append(_TAG_UNESCAPES.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


@dataclass
class Line:
    """One parsed IRC line; tests assert on fields rather than on raw text."""

    raw: str
    tags: dict[str, str] = field(default_factory=dict)
    source: str = ""
    command: str = ""
    params: list[str] = field(default_factory=list)

    @property
    def nick(self) -> str:
        """The nick part of the source (``nick!user@host``)."""
        return self.source.split("!", 1)[0]

    @classmethod
    def parse(cls, raw: str) -> Line:
        """Parse per the IRCv3 message-tags grammar (tags, source, command, params)."""
        rest = raw
        tags: dict[str, str] = {}
        if rest.startswith("@"):
            tag_text, _, rest = rest[1:].partition(" ")
            for item in tag_text.split(";"):
                if item:
                    key, _, value = item.partition("=")
                    tags[key] = _unescape_tag(value)
            rest = rest.lstrip(" ")
        source = ""
        if rest.startswith(":"):
            source, _, rest = rest[1:].partition(" ")
            rest = rest.lstrip(" ")
        params: list[str] = []
        while rest:
            if rest.startswith(":"):
                params.append(rest[1:])
                break
            word, _, rest = rest.partition(" ")
            params.append(word)
            rest = rest.lstrip(" ")
        command = params.pop(0).upper() if params else ""
        return cls(raw=raw, tags=tags, source=source, command=command, params=params)


class RawClient:
    """A plain-socket IRC client: what the server really sends, no library in between.

    Why not jaraco ``irc``: these tests prove the network itself, so they must see the exact
    lines (``AUTHENTICATE +``, numerics, tags) and never depend on the code under test.
    """

    def __init__(self, host: str, port: int, nick: str, *, timeout: float = 5.0) -> None:
        self.nick = nick
        self.user = nick  # our user name (see _learn_user): tells our NICK from others'
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lines: list[Line] = []  # every line received, in order
        self.caps: set[str] = set()  # capabilities the server acknowledged
        self.welcomed = False
        self._buffer = b""
        self._queue: list[Line] = []  # received but not yet consumed by expect()

    # -- low level -------------------------------------------------------------------------
    def send(self, line: str) -> None:
        """Send one line; CR/LF inside it are a test bug, so refuse them loudly."""
        if "\r" in line or "\n" in line:
            raise ValueError(f"line contains CR/LF: {line!r}")
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def wake(self) -> None:
        """Send an empty line: InspIRCd ignores it, but it ends the server's epoll wait."""
        self.sock.sendall(b"\r\n")

    def fileno(self) -> int:
        """Let ``select`` wait on several clients at once."""
        return self.sock.fileno()

    def _fill(self, timeout: float) -> bool:
        """Read what is available within ``timeout``; return False on timeout."""
        ready, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
        if not ready:
            return False
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"{self.nick}: server closed the connection")
        self._buffer += data
        while b"\n" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\n", 1)
            text = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if not text:
                continue
            line = Line.parse(text)
            self.lines.append(line)
            if line.command == "PING":
                self.send("PONG :" + (line.params[-1] if line.params else ""))
                continue
            if line.command == "001":
                self.welcomed = True
                self._learn_user(line.params[-1].rsplit(" ", 1)[-1])
            elif line.command == "CHGHOST" and line.nick == self.nick and line.params:
                self.user = line.params[0]
            self._queue.append(line)
        return True

    def _learn_user(self, mask: str) -> None:
        """The user name the server gave us (``nick!user@host`` in 001): it may differ from
        what USER sent (InspIRCd cuts it to USERLEN=10)."""
        if "!" in mask and "@" in mask:
            self.user = mask.split("!", 1)[1].split("@", 1)[0].lstrip("~")

    def expect(
        self,
        predicate: Callable[[Line], bool] | None = None,
        *,
        command: str | None = None,
        timeout: float = 5.0,
    ) -> Line:
        """Return the first unconsumed line matching ``command`` and/or ``predicate``.

        Lines that don't match stay queued for later calls, so a test can wait for replies in
        any order. Raises ``TimeoutError`` listing the last lines seen, which is what one needs
        to debug a failing wait.
        """
        deadline = time.monotonic() + timeout
        while True:
            for index, line in enumerate(self._queue):
                if command is not None and line.command != command.upper():
                    continue
                if predicate is not None and not predicate(line):
                    continue
                del self._queue[index]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = "\n".join(line.raw for line in self.lines[-15:])
                raise TimeoutError(
                    f"{self.nick}: no line with command={command!r} within {timeout}s; "
                    f"last lines:\n{tail}"
                )
            self._fill(remaining)

    def expect_any(self, commands: Iterable[str], *, timeout: float = 5.0) -> Line:
        """Return the first unconsumed line whose command is one of ``commands``."""
        wanted = {c.upper() for c in commands}
        return self.expect(lambda line: line.command in wanted, timeout=timeout)

    def drain(self, quiet: float = 0.05) -> list[Line]:
        """Consume and return everything queued plus what arrives within ``quiet`` seconds."""
        while self._fill(quiet):
            pass
        drained, self._queue = self._queue, []
        return drained

    def expect_none(self, predicate: Callable[[Line], bool], *, within: float = 0.5) -> None:
        """Assert that no line matching ``predicate`` arrives within ``within`` seconds.

        The one wait that runs for its whole window (absence can only be seen by waiting); it
        also fails on a matching line already queued. Nothing is consumed.
        """
        deadline = time.monotonic() + within
        while True:
            for line in self._queue:
                if predicate(line):
                    raise AssertionError(f"{self.nick}: unexpected line {line.raw!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._fill(remaining)

    # -- talking ------------------------------------------------------------------------------
    def say(self, target: str, text: str) -> None:
        """PRIVMSG ``text`` to a nick or channel (no wait)."""
        self.send(f"PRIVMSG {target} :{text}")

    def join(self, channel: str, timeout: float = 5.0) -> None:
        """JOIN and wait for the end of NAMES, so the channel state is settled."""
        self.send(f"JOIN {channel}")
        self.expect(lambda ln: ln.command == "366" and ln.params[1:2] == [channel], timeout=timeout)

    def part(self, channel: str, timeout: float = 5.0) -> None:
        """PART and wait for the server's echo."""
        self.send(f"PART {channel}")
        self.expect(
            lambda ln: ln.command == "PART" and ln.nick == self.nick and ln.params[:1] == [channel],
            timeout=timeout,
        )

    def change_nick(self, new: str, timeout: float = 5.0) -> None:
        """NICK ``new`` and wait for the server's confirmation; a refusal raises at once.

        Our own NICK line is told from a channel neighbour's by the user name too: someone
        else may have left ``old`` a moment ago, and that line may still be queued.
        """
        mine = f"{self.nick}!{self.user}@"
        self.send(f"NICK {new}")
        line = self.expect(
            lambda ln: (
                (ln.command == "NICK" and ln.source.replace("!~", "!").startswith(mine))
                or ln.command in {"431", "432", "433", "436", "437", "438", "484"}
            ),
            timeout=timeout,
        )
        if line.command != "NICK":
            raise RuntimeError(f"{self.nick}: NICK {new} refused: {line.raw}")
        self.nick = line.params[0]

    def nickserv_identify(self, account: str, password: str, *, timeout: float = 5.0) -> None:
        """Log in with NickServ IDENTIFY and wait for 900 (sent with the ACCOUNT broadcast,
        so once it is here every other user's ``account-notify`` line has been written)."""
        self.send(f"PRIVMSG NickServ :IDENTIFY {account} {password}")

        def outcome(ln: Line) -> bool:
            if ln.command == "900":
                return True
            text = ln.params[-1].lower() if ln.params else ""
            refused = ("invalid", "not registered", "not a registered", "failed", "frozen")
            return (
                ln.command == "NOTICE" and ln.nick == "NickServ" and any(w in text for w in refused)
            )

        line = self.expect(outcome, timeout=timeout)
        if line.command != "900":
            raise RuntimeError(f"{self.nick}: NickServ refused IDENTIFY: {line.raw}")
        # NickServ's own confirmation precedes 900: consume it so it can't answer a later wait.
        self.expect(lambda ln: ln.command == "NOTICE" and ln.nick == "NickServ", timeout=timeout)

    def nickserv_logout(self, *, timeout: float = 5.0) -> None:
        """Log out with NickServ LOGOUT and wait for 901 (see :meth:`nickserv_identify`).

        NickServ's NOTICE comes *before* the server applies the logout, so a test that waited
        only for the NOTICE could still be seen as logged in by its next line.
        """
        self.send("PRIVMSG NickServ :LOGOUT")
        self.expect(command="901", timeout=timeout)
        self.expect(lambda ln: ln.command == "NOTICE" and ln.nick == "NickServ", timeout=timeout)

    def close(self) -> None:
        """QUIT politely (best effort) and close the socket."""
        with contextlib.suppress(OSError):
            self.send("QUIT :bye")
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- registration steps ------------------------------------------------------------------
    def cap_ls(self, timeout: float = 5.0) -> dict[str, str]:
        """Send ``CAP LS 302`` and collect the (possibly multi-line) list: name -> value."""
        self.send("CAP LS 302")
        caps: dict[str, str] = {}
        while True:
            line = self.expect(
                lambda ln: ln.command == "CAP" and len(ln.params) >= 3 and ln.params[1] == "LS",
                timeout=timeout,
            )
            for item in line.params[-1].split():
                name, _, value = item.partition("=")
                caps[name] = value
            if not (len(line.params) >= 4 and line.params[2] == "*"):
                return caps

    def cap_req(self, caps: Sequence[str], timeout: float = 5.0) -> None:
        """Request capabilities; a NAK is a test-setup error, so raise."""
        if not caps:
            return
        self.send("CAP REQ :" + " ".join(caps))
        line = self.expect(
            lambda ln: (
                ln.command == "CAP" and len(ln.params) >= 3 and ln.params[1] in {"ACK", "NAK"}
            ),
            timeout=timeout,
        )
        if line.params[1] == "NAK":
            raise RuntimeError(f"{self.nick}: server refused capabilities: {line.raw}")
        self.caps.update(line.params[-1].split())

    def sasl_plain(self, account: str, password: str, timeout: float = 5.0) -> Line:
        """Run SASL PLAIN; return the final numeric line (903 success, 904 failure, ...)."""
        self.send("AUTHENTICATE PLAIN")
        self.expect(
            lambda ln: ln.command == "AUTHENTICATE" and ln.params[:1] == ["+"], timeout=timeout
        )
        payload = f"{account}\0{account}\0{password}".encode()
        self.send("AUTHENTICATE " + base64.b64encode(payload).decode("ascii"))
        return self.expect_any(["903", "904", "905", "906", "907"], timeout=timeout)

    def begin(
        self,
        *,
        caps: Sequence[str] = (),
        sasl: tuple[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Negotiate capabilities (and SASL), then send NICK/USER; don't wait for 001.

        Split from :func:`wait_registered` so that many clients can be started first and then
        all finish registration in the same server tick.
        """
        wanted = list(caps)
        if sasl is not None and "sasl" not in wanted:
            wanted.append("sasl")
        if wanted:
            offered = self.cap_ls(timeout)
            missing = [c for c in wanted if c not in offered]
            if missing:
                raise RuntimeError(f"{self.nick}: server does not offer {missing}: {offered}")
            self.cap_req(wanted, timeout)
            if sasl is not None:
                result = self.sasl_plain(*sasl, timeout=timeout)
                if result.command != "903":
                    raise RuntimeError(f"{self.nick}: SASL login failed: {result.raw}")
            self.send("CAP END")
        self.send(f"NICK {self.nick}")
        self.user = self.nick
        self.send(f"USER {self.user} 0 * :{self.user} test client")

    def nickserv_register(self, password: str, *, timeout: float = 5.0) -> None:
        """REGISTER the current nick with NickServ; Atheme logs this connection in at once.

        The confirmation is a NOTICE from NickServ containing ``is now registered``; any other
        NickServ NOTICE is a refusal. Atheme's ``-n`` debug-mode NOTICE comes from the server
        name, not from NickServ, so it never matches.
        """
        self.send(f"PRIVMSG NickServ :REGISTER {password} {self.nick}@example.org")
        line = self.expect(
            lambda ln: ln.command == "NOTICE" and ln.nick == "NickServ", timeout=timeout
        )
        if "is now registered" not in line.params[-1]:
            raise RuntimeError(f"NickServ refused to register {self.nick}: {line.params[-1]}")


def wait_registered(clients: Sequence[RawClient], timeout: float = 5.0) -> None:
    """Wait until every client got 001, waking the server just after each second boundary.

    Why the wake-up: InspIRCd completes registrations only in its once-a-second housekeeping
    pass, and an idle server notices the new second only when ``epoll_wait`` (1000 ms) returns.
    An empty line sent 3 ms after the boundary ends that wait, so all pending clients are
    welcomed at the boundary itself instead of up to a second later.
    """
    deadline = time.monotonic() + timeout
    pending = [c for c in clients if not c.welcomed]
    next_wake = math.floor(time.time()) + 1.003
    while pending:
        now = time.monotonic()
        if now >= deadline:
            names = ", ".join(c.nick for c in pending)
            raise TimeoutError(f"no 001 within {timeout}s for: {names}")
        wall = time.time()
        if wall >= next_wake:
            pending[0].wake()
            next_wake = math.floor(wall) + 1.003
        wait = min(next_wake - wall, deadline - now)
        ready, _, _ = select.select(pending, [], [], max(wait, 0.0))
        for client in ready:
            client._fill(0)
            for line in client._queue:
                if line.command in {"ERROR", "432", "433", "436", "465"}:
                    raise RuntimeError(f"{client.nick}: registration refused: {line.raw}")
        pending = [c for c in pending if not c.welcomed]


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
        self.client: RawClient | None = None
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
                client.wake()
                client._fill(0)  # answers PING; nothing else is kept
                client._queue.clear()
            except (OSError, ConnectionError):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        if self.client is not None:
            self.client.close()

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
            with contextlib.suppress(OSError, TimeoutError, ConnectionError):
                with RawClient(self.host, self.port, "probe", timeout=1.0) as probe:
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
    def client(self, nick: str, *, timeout: float = 5.0) -> RawClient:
        """Open an unregistered raw connection (the caller drives CAP/NICK/USER itself)."""
        return RawClient(self.host, self.port, nick, timeout=timeout)

    def connect_many(
        self,
        nicks: Sequence[str],
        *,
        caps: Sequence[str] = (),
        logins: Mapping[str, str | tuple[str, str]] | None = None,
        timeout: float = 10.0,
    ) -> list[RawClient]:
        """Connect and register several clients in one server tick (~0.5 s for all of them).

        ``logins`` maps a nick to its account password, or to ``(account, password)`` for an
        account not named after the nick: that client logs in with SASL PLAIN before
        registration.
        """
        clients: list[RawClient] = []
        try:
            for nick in nicks:
                client = self.client(nick)
                clients.append(client)
                login = (logins or {}).get(nick)
                sasl = (nick, login) if isinstance(login, str) else login
                client.begin(caps=caps, sasl=sasl or None)
            wait_registered(clients, timeout)
        except BaseException:
            for client in clients:
                client.close()
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
    ) -> RawClient:
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
    ) -> dict[str, RawClient]:
        """Connect ``nicks`` in one tick and REGISTER those in ``accounts`` (nick -> password).

        Registering logs the connection in at once, so this gives logged-in and anonymous
        users for the price of one server tick, where :meth:`register_accounts` followed by
        SASL logins costs two. The accounts are named after the nicks and live as long as the
        network. Returns the clients by nick.
        """
        clients = self.connect_many(nicks, caps=caps, timeout=timeout)
        try:
            for client in clients:
                if client.nick in accounts:
                    password = accounts[client.nick]
                    client.send(f"PRIVMSG NickServ :REGISTER {password} {client.nick}@example.org")
            for client in clients:
                if client.nick in accounts:
                    line = client.expect(
                        lambda ln: ln.command == "NOTICE" and ln.nick == "NickServ",
                        timeout=timeout,
                    )
                    if "is now registered" not in line.params[-1]:
                        raise RuntimeError(f"NickServ refused {client.nick}: {line.params[-1]}")
                    client.expect(command="900", timeout=timeout)
        except BaseException:
            for client in clients:
                client.close()
            raise
        return {client.nick: client for client in clients}

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
                client.nickserv_register(accounts[client.nick], timeout=timeout)
        finally:
            for client in clients:
                client.close()
