"""The month on the real bot: ngircd, the livechat plugin, real connections, simulated time.

Why the bot's injectable clock, in this process, rather than libfaketime on a bot process:
the simulation is a list of events in simulated time (someone arrives, a helper vouches, a
coordinator promotes); the clock jumps to the next event and the run then waits on markers
(the bot's answer, a ``!ping`` round trip), never on sleeps, so a month of quiet hours costs
nothing. With libfaketime every jump looks to the bot's transport like a silent server (its
monotonic clock moves too) and makes it reconnect, hundreds of times a month, and reading a
timestamp file on every clock call slows everything. In process, :class:`SimClock` moves
``now()`` (what is stored and shown) and the job runner's clock (:mod:`ircbot.jobs`: SLA
reminders, the delivery sweep), while ``monotonic()``, which the transport, the WHOIS
resolver and the rate limits read, stays real: socket timeouts and ``select`` keep real time.

The restart mid-month is a hard kill of the in-process bot, the closest to SIGKILL a thread
allows: between two turns of its loop the socket is closed with a reset (no QUIT, nothing
flushed: lines still in its output queue are lost, as in a crash) and the loop is unwound by
an exception; a new bot then starts on the same database. Its limit, said plainly: the kill
cannot land between a line going onto the socket and its delivery being recorded (that
window is a few microseconds in one turn); ``tests/livechat/test_irc_hostmask_resilience``
kills a bot process with SIGKILL for that.

What is measured is what the coordinators' connections received, stamped with the simulated
time at which their reader thread got the line, and the bot's audit log; never what the bot
believes it sent.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import heapq
import itertools
import logging
import re
import socket
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ircbot_plugins.livechat.cli import trainee as trainee_cli
from ircbot_plugins.livechat.models import READY, Attempt, Event, Person
from sqlalchemy import select
from sqlalchemy.orm import aliased

from ircbot.cli import App
from ircbot.storage import transaction
from tests.support.botthread import BotThread, bot_config
from tests.support.client import IRCTestClient, decode_line, parse_message
from tests.support.ngircd import NgircdServer

from .scenario import Member, Plan, decision, window_at

__all__ = ["ABOUT", "CATCH_UP", "AuditRow", "Observations", "SimClock", "about", "run_bot"]

logger = logging.getLogger(__name__)

BOT = "lcbot"
CHAN = "#livechat"
HOST = "127.0.0.1"
TICK = dt.timedelta(minutes=30)  # a quiet wake-up: the bot's jobs run at least this often
WAIT = 30.0  # seconds: the bound of every wait on a marker


class SimClock:
    """Simulated wall time and job clock; real monotonic time for sockets and timeouts."""

    def __init__(self, start: dt.datetime) -> None:
        self._start = self._now = start
        self._mono0 = time.monotonic()

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return time.monotonic()

    def job_monotonic(self) -> float:
        """The job runner's clock: seconds of simulated time (never goes back)."""
        return self._mono0 + (self._now - self._start).total_seconds()

    def set(self, when: dt.datetime) -> None:
        if when > self._now:
            self._now = when


class _HardKill(BaseException):
    """Unwinds the bot's loop from inside, as a crash would (not an Exception: not caught)."""


class Observed(IRCTestClient):
    """A client that stamps each private message from the bot with the simulated time."""

    sink: Callable[[str], None] | None = None

    def _on_line(self, raw: bytes) -> None:
        super()._on_line(raw)
        sink = self.sink
        if sink is None:
            return
        msg = parse_message(decode_line(raw))
        if msg.command == "PRIVMSG" and msg.nick == BOT and msg.target == self.current_nick:
            sink(msg.text)


@dataclass(frozen=True)
class AuditRow:
    at: dt.datetime
    kind: str
    attempt_id: int | None
    person: str
    actor: str | None
    detail: str | None


@dataclass
class Observations:
    """What the run saw: receipts by coordinator, presence intervals, the audit log."""

    received: dict[str, list[tuple[dt.datetime, str]]] = field(default_factory=dict)
    presence: dict[str, list[list[dt.datetime]]] = field(default_factory=dict)
    audit: list[AuditRow] = field(default_factory=list)
    removed_at: dict[str, dt.datetime] = field(default_factory=dict)
    events: int = 0
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class World:
    """Runs one :class:`Plan` on a real ngircd and the real bot; see the module docstring."""

    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.clock = SimClock(plan.start)
        self.obs = Observations()
        self.server = NgircdServer()
        self.clients: dict[str, IRCTestClient] = {}
        self.away: set[str] = set()
        self.bt: BotThread | None = None
        self.sync: IRCTestClient | None = None
        self._heap: list[tuple[dt.datetime, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._marker = itertools.count()
        self._scanned: dict[str, int] = {}
        self._reminder_wakes: set[str] = set()
        self.db_url = f"sqlite:///{workdir / 'month.db'}"
        self.members = {m.nick: m for m in [*plan.coordinators, *plan.helpers]}
        for c in plan.coordinators:
            self.obs.received[c.nick] = []
            self.obs.presence[c.nick] = []

    # -- the bot ------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        p = self.plan.params
        mask = "*!~{}@" + HOST
        return bot_config(
            self.server.host,
            self.server.port,
            self.db_url,
            irc={"nick": BOT, "channels": [CHAN]},
            bot={
                "plugins": ["livechat"],
                "log_level": "WARNING",
                "user_burst": 100000,
                "user_rate": 10000.0,
            },
            livechat={
                "threshold": p.threshold,
                "sla_hours": p.sla_hours,
                "first_reminder_hours": p.first_reminder_hours,
                "reminder_hours": p.reminder_hours,
                "coordinators": [mask.format(c.ident) for c in self.plan.coordinators],
                "helpers": [mask.format(h.ident) for h in self.plan.helpers],
            },
        )

    def start_bot(self) -> None:
        bt = BotThread(self.config(), clock=self.clock)
        bt.bot.jobs.clock = self.clock.job_monotonic  # jobs on simulated time (module doc)
        self.bt = bt.start(timeout=WAIT)

    def kill_bot(self) -> None:
        """Crash the in-process bot: socket reset, no QUIT, its queue and memory lost."""
        bt = self.bt
        assert bt is not None

        def die() -> None:
            sock = bt.bot.transport.connection.socket
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.close()
            raise _HardKill

        bt.bot.call_soon(die)
        error = bt.wait_exit(WAIT)
        assert isinstance(error, _HardKill), f"the bot stopped with {error!r}, not the kill"
        self.bt = None

    # -- people -------------------------------------------------------------------------------
    def connect(self, nick: str, ident: str, *, join: bool = True) -> IRCTestClient:
        old = self.clients.pop(nick, None)
        if old is not None:
            old.close()
        is_coordinator = nick in self.obs.received
        cls = Observed if is_coordinator else IRCTestClient
        client = cls.connect(HOST, self.server.port, nick, user=ident, timeout=WAIT)
        if is_coordinator:
            sink = self.obs.received[nick]
            client.sink = lambda text: sink.append((self.clock.now(), text))
        if join:
            client.join(CHAN, timeout=WAIT)
        self.clients[nick] = client
        return client

    def drop(self, nick: str) -> None:
        client = self.clients.pop(nick, None)
        if client is not None:
            client.quit(timeout=WAIT)

    def said(self, nick: str, text: str) -> str:
        """``nick`` says ``text`` in the channel; the bot's answer to them (the marker)."""
        client = self.clients[nick]
        client.say(CHAN, text)
        prefix = f"{client.current_nick}: "
        reply = client.expect(rf"^{re.escape(prefix)}", source=BOT, target=CHAN, timeout=WAIT)
        return reply.text[len(prefix) :]

    def arrive(self, m: Member) -> None:
        now = self.clock.now()
        if m.nick in self.obs.removed_at:
            return
        if m.away_mode and m.nick in self.clients:
            self.clients[m.nick].away(None, timeout=WAIT)
            self.away.discard(m.nick)
        else:
            self.connect(m.nick, m.ident)
        if m.nick in self.obs.presence:
            self.obs.presence[m.nick].append([now, self.plan.end])
            if m.away_mode:
                self.sweeps_after(now)

    def leave(self, m: Member) -> None:
        if m.nick not in self.clients:
            return
        if m.away_mode:
            self.clients[m.nick].away("off duty", timeout=WAIT)
            self.away.add(m.nick)
        else:
            self.drop(m.nick)
        if self.obs.presence.get(m.nick):
            self.obs.presence[m.nick][-1][1] = self.clock.now()

    # -- the event list -----------------------------------------------------------------------
    def at(self, when: dt.datetime, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), fn))

    def schedule(self) -> None:
        plan = self.plan
        for m in self.members.values():
            for w in m.windows:
                self.at(w.start, lambda m=m: self.arrive(m))
                self.at(w.end, lambda m=m: self.leave(m))
        for t in plan.trainees:
            self.at(t.arrives, lambda t=t: self.trainee_arrives(t.nick, t.ident))
            self.at(t.arrives + t.stays, lambda t=t: self.drop(t.nick))
            for helper, when in t.vouches:
                self.at(when, lambda h=helper, t=t: self.vouch(h, t.nick))
        self.at(plan.import_at, self.import_backlog)
        self.at(plan.leave_at, self.remove_coordinator)
        self.at(plan.kill_at, self.kill_and_restart)
        self.at(plan.server_restart_at, self.restart_server)
        t = plan.start + TICK
        while t < plan.end:
            self.at(t, lambda: None)
            t += TICK

    def trainee_arrives(self, nick: str, ident: str) -> None:
        self.connect(nick, ident)
        reply = self.said(nick, "!newhelper")
        assert "welcome" in reply, f"{nick}: !newhelper answered {reply!r}"

    def vouch(self, helper: str, trainee: str) -> None:
        if helper not in self.clients:
            self.obs.notes.append(f"{helper} was not there to vouch for {trainee}")
            return
        reply = self.said(helper, f"!vouch {trainee}")
        if ", ready;" in reply:
            self.ready_now(trainee)

    def ready_now(self, trainee: str) -> None:
        """Wake up when the promise runs out and at each reminder after it, so the reminder
        is issued on time (the timers job runs once a simulated minute while awake)."""
        p = self.plan.params
        first = self.clock.now() + dt.timedelta(hours=min(p.first_reminder_hours, p.sla_hours))
        step = dt.timedelta(hours=p.reminder_hours)
        t = first
        while t < self.plan.end:
            for s in (0, 60):  # the timers job runs at most a minute after the mark
                self.at(t + dt.timedelta(seconds=s), lambda: None)
            t += step

    def import_backlog(self) -> None:
        """``ircbot trainee import`` on the bot's database while it runs (the real command,
        on the simulated clock)."""
        path = self.workdir / "backlog.csv"
        with path.open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["account", "nick", "signed_up", "vouchers"])
            for b in self.plan.backlog:
                out.writerow(
                    [f"~{b.ident}@{HOST}", b.nick, b.signed_up.isoformat(), ";".join(b.vouchers)]
                )
        assert self.bt is not None
        app = App(str(self.bt.path), clock=self.clock)
        with contextlib.redirect_stdout(None):
            trainee_cli.main(["import", str(path)], obj=app, standalone_mode=False)
        for b in self.plan.backlog:
            self.ready_now(b.nick)
        self.sweeps_after(self.clock.now())

    def sweeps_after(self, t: dt.datetime) -> None:
        """Wake up through the next minute: the bot's delivery sweep (every ``away_poll``,
        60 s) is how it notices a return from away, and rows another process wrote."""
        for s in (20, 40, 60):
            self.at(t + dt.timedelta(seconds=s), lambda: None)

    def remove_coordinator(self) -> None:
        plan = self.plan
        if plan.remover not in self.clients:
            self.obs.notes.append("the remover was not there: nobody left the team")
            return
        reply = self.said(plan.remover, f"!coordinator remove {plan.leaver}")
        self.obs.notes.append(f"!coordinator remove {plan.leaver}: {reply}")
        self.obs.removed_at[plan.leaver] = self.clock.now()

    def kill_and_restart(self) -> None:
        """Kill the bot the moment a coordinator with messages waiting arrives."""
        m = self.members[self.plan.kill_arrival]
        if m.nick not in self.clients:
            self.connect(m.nick, m.ident)
        self.kill_bot()
        self.start_bot()
        self.obs.notes.append(f"bot killed and restarted at {self.clock.now():%d %H:%M}")

    def restart_server(self) -> None:
        self.server.restart()
        assert self.bt is not None
        self.bt.wait_joined(WAIT)
        present = [n for n in self.clients if n in self.members]
        for nick in list(self.clients):
            self.clients.pop(nick).close()
        self.sync = self.connect("sim_sync", "simsync", join=False)
        for nick in present:
            m = self.members[nick]
            client = self.connect(nick, m.ident)
            if nick in self.away:
                client.away("off duty", timeout=WAIT)
        self.obs.notes.append(f"ngircd restarted at {self.clock.now():%d %H:%M}")

    # -- coordinators acting on what they received ----------------------------------------------
    def coordinators_act(self) -> None:
        for nick, got in self.obs.received.items():
            start = self._scanned.get(nick, 0)
            self._scanned[nick] = len(got)
            for when, text in got[start:]:
                names = about(text)
                if CATCH_UP.match(text) and " more — " in text:  # a long list: see !ready
                    self.said(nick, "!ready")
                    names = self.waiting()
                for trainee in names:
                    acts, delay = decision(self.plan.params, nick, f"{text}/{trainee}")
                    if not acts:
                        continue
                    w = window_at(self.members[nick].windows, when)
                    act_at = when + delay
                    if w is not None:
                        act_at = min(act_at, w.end - dt.timedelta(seconds=30))
                    self.at(max(act_at, when), lambda n=nick, t=trainee: self.promote(n, t))

    def waiting(self) -> list[str]:
        """The trainees ready now, as ``!ready`` lists them to a coordinator."""
        assert self.bt is not None
        factory = self.bt.bot.session_factory

        def read() -> list[str]:
            with transaction(factory) as session:
                stmt = (
                    select(Person.last_nick)
                    .join(Attempt, Attempt.person_id == Person.id)
                    .where(Attempt.state == READY)
                    .order_by(Attempt.ready_at)
                )
                return [n for n in session.scalars(stmt) if n]

        return self.bt.call(read, timeout=WAIT)

    def promote(self, coordinator: str, trainee: str) -> None:
        if coordinator not in self.clients or coordinator in self.away:
            self.obs.notes.append(f"{coordinator} was gone before promoting {trainee}")
            return
        self.said(coordinator, f"!promote {trainee}")

    # -- waiting on markers ---------------------------------------------------------------------
    def _sync_once(self) -> None:
        n = next(self._marker)
        assert self.sync is not None
        self.sync.say(BOT, f"!ping s{n}")
        self.sync.expect(rf"^pong s{n}$", source=BOT, timeout=WAIT)

    def _bot_idle(self) -> bool:
        assert self.bt is not None
        bot = self.bt.bot
        return self.bt.call(lambda: len(bot.transport.queue) == 0 and not bot.resolver.busy)

    def settle(self) -> None:
        """Wait until the bot has acted on everything said so far and its lines have reached
        the coordinators' connections.

        A ``!ping`` round trip proves the bot read everything sent before it; the bot is idle
        when no WHOIS is in flight and its queue is empty; one more round trip puts whatever
        it sent meanwhile ahead of the coordinators' own PING to the server.
        """
        self._sync_once()
        for _ in range(200):
            if self._bot_idle():
                break
            self._sync_once()
        else:
            raise AssertionError("the bot never went idle")
        self._sync_once()
        for nick in self.obs.received:
            client = self.clients.get(nick)
            if client is None or client.closed:
                continue
            n = next(self._marker)
            client.send_raw(f"PING :c{n}")
            client.expect(rf"^c{n}$", command="PONG", timeout=WAIT)

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> Observations:
        began = time.monotonic()
        self.server.start()
        try:
            self.start_bot()
            self.sync = self.connect("sim_sync", "simsync", join=False)
            self.schedule()
            while self._heap:
                when, _, fn = heapq.heappop(self._heap)
                if when >= self.plan.end:
                    break
                self.clock.set(when)
                assert self.bt is not None
                self.bt.call(self.bt.bot.jobs.run_due, timeout=WAIT)
                fn()
                self.settle()
                self.coordinators_act()
                self.obs.events += 1
            self.clock.set(self.plan.end)
            self.obs.audit = self.read_audit()
        finally:
            for client in self.clients.values():
                client.close()
            if self.sync is not None:
                self.sync.close()
            if self.bt is not None:
                self.bt.stop()
            self.server.cleanup()
        self.obs.wall_seconds = time.monotonic() - began
        return self.obs

    def read_audit(self) -> list[AuditRow]:
        assert self.bt is not None
        actor = aliased(Person)

        def read() -> list[AuditRow]:
            with transaction(self.bt.bot.session_factory) as session:  # type: ignore[union-attr]
                stmt = (
                    select(Event, Person.last_nick, actor.last_nick)
                    .join(Person, Person.id == Event.person_id)
                    .outerjoin(actor, actor.id == Event.actor_id)
                    .order_by(Event.id)
                )
                return [
                    AuditRow(e.at, e.kind, e.attempt_id, who or "", by, e.detail)
                    for e, who, by in session.execute(stmt)
                ]

        return self.bt.call(read, timeout=WAIT)


#: A ping or a reminder about one trainee, as the coordinators receive them.
ABOUT = re.compile(
    r"^(?:Reminder: )?(?P<nick>\S+)(?: \([^()]*\))? (?:is ready for promotion|has been ready)"
)
#: The one message a new coordinator gets naming the trainees already waiting.
CATCH_UP = re.compile(r"^\d+ trainees? awaits? promotion: (?P<names>.+?)(?: and \d+ more)? — ")


def about(text: str) -> list[str]:
    """The trainees a message to a coordinator names: a ping, a reminder or a catch-up."""
    if m := ABOUT.match(text):
        return [m["nick"]]
    if m := CATCH_UP.match(text):
        return m["names"].split(", ")
    return []


def run_bot(plan: Plan) -> Observations:
    """Run ``plan`` on the real bot and server; the observations for :mod:`.figures`."""
    with tempfile.TemporaryDirectory(prefix="month-") as folder:
        return World(plan, Path(folder)).run()
