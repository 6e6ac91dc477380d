"""What a handler gets: the request, the database session, and ways to answer.

Replies are collected, not sent, and go out only after the command's transaction commits:
a handler that fails half-way must not have told anyone something the database then forgot.
Durable messages (:meth:`BaseContext.notify`) go to the outbox table inside the same
transaction, and so do mail and webhook posts (:meth:`BaseContext.mail`,
:meth:`BaseContext.post_event`, the :mod:`ircbot.outbound` queue), whose sender is woken
once the transaction has committed.

A handler sees what it needs and no more: the request (who is asking, where), the session,
config and clock, ways to answer, a read-only :class:`NetworkView` and, for ``!help``, a
read-only :class:`CommandCatalog`. The dispatcher, the network state and the transport stay
out of reach.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Self

from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from ircbot import outbound, outbox, storage
from ircbot.clock import Clock
from ircbot.identity import Identity
from ircbot.identity_policy import IdentityPolicy
from ircbot.outbound import OutOfBand

if TYPE_CHECKING:
    from ircbot.plugin import Command

__all__ = [
    "BaseContext",
    "CommandCatalog",
    "CommandContext",
    "JobContext",
    "LiveNetworkView",
    "NetworkView",
    "Outgoing",
]


_WROTE_OUTBOUND = "ircbot.wrote_outbound"  # Session.info: wake the sender after commit


class NetworkView(Protocol):
    """The read-only view of the IRC network a plugin may use."""

    def fold(self, name: str) -> str:
        """Canonical form of a nick or channel under the server's CASEMAPPING."""

    def match(self, mask: str, value: str) -> bool:
        """Glob match under the server's CASEMAPPING (for ``nick!user@host`` masks)."""

    def nick_of(self, key: str) -> str | None:
        """The current nick of the person with identity ``key``, if the bot sees them."""

    def is_reachable(self, key: str) -> bool:
        """Present in a channel with the bot and not away: a message now would be read."""

    @property
    def home_channel(self) -> str | None:
        """The first configured channel: where announcements go by default."""


class CommandCatalog(Protocol):
    """The declared commands, read-only: what ``!help`` needs to answer one person."""

    def find(self, name: str) -> Command | None:
        """The command called ``name`` or having it as an alias (a leading prefix is ignored)."""

    def usable_by(self, ctx: CommandContext) -> Sequence[Command]:
        """Each command the person asking may use (their role looked up if need be), once."""

    def describe(self, command: Command) -> str:
        """``!vouch <nick> [note...]: <help text> (helpers)``: the usage, help and role."""


class LiveNetworkView:
    """The bot's :class:`NetworkView`: questions only, answered by the identity policy and
    the network state, neither of which a plugin can reach through it."""

    __slots__ = ("_policy",)

    def __init__(self, policy: IdentityPolicy) -> None:
        self._policy = policy

    def fold(self, name: str) -> str:
        return self._policy.network.fold(name)

    def match(self, mask: str, value: str) -> bool:
        return self._policy.network.match(mask, value)

    def nick_of(self, key: str) -> str | None:
        return self._policy.nick_of(key)

    def is_reachable(self, key: str) -> bool:
        return self._policy.is_reachable(key)

    @property
    def home_channel(self) -> str | None:
        return self._policy.network.home_channel


@dataclass(frozen=True)
class Outgoing:
    """One message to send once the transaction has committed.

    An announcement counts against the channel's share of the output, not against the
    share of whoever's command caused it (see :mod:`ircbot.outqueue`).
    """

    command: str  # PRIVMSG or NOTICE
    target: str
    text: str
    announcement: bool = False


@dataclass
class BaseContext:
    """Shared by commands and jobs: database, config, clock, network, durable messages."""

    session_factory: sessionmaker[Session]
    config: Any
    clock: Clock
    network: NetworkView
    outgoing: list[Outgoing] = field(default_factory=list)
    notified: set[str] = field(default_factory=set)
    #: Take the write lock when the unit opens (see :mod:`ircbot.storage`): jobs do; a
    #: command runs deferred first and only its second attempt, if any, does.
    write: bool = False
    # ``[bot] prefix``: how a text spells a command, in a reply or a reminder a job writes.
    prefix: str = "!"
    #: Which out-of-band channels the bot has (mail, webhook), and its sender's wake-up.
    out_of_band: OutOfBand = field(default_factory=OutOfBand)
    _session: Session | None = None

    @property
    def session(self) -> Session:
        """The unit of work, opened on first use (a ``!ping`` never touches the database)."""
        if self._session is None:
            self._session = storage.begin(self.session_factory, write=self.write)
        return self._session

    @property
    def now(self) -> dt.datetime:
        return self.clock.now()

    def notify(
        self, recipient: str, text: str, *, kind: str = "message", ref: str | None = None
    ) -> None:
        """Tell a person (identity key) something durably: delivered when they're reachable."""
        outbox.enqueue(self.session, recipient, text, now=self.now, kind=kind, ref=ref)
        self.notified.add(recipient)

    def cancel_notifications(self, ref: str, kind: str | None = None) -> int:
        """Withdraw pending durable messages about ``ref`` (e.g. pings made moot by a promotion)."""
        return outbox.cancel(self.session, ref=ref, now=self.now, kind=kind)

    def mail(self, to: str, subject: str, body: str, *, kind: str, ref: str | None = None) -> bool:
        """Mail ``to`` durably (sent after commit, retried until the server takes it).

        False, and nothing written, when the bot has no ``[notify] smtp_url``.
        """
        if not self.out_of_band.mail:
            return False
        outbound.enqueue_mail(
            self.session, to=to, subject=subject, body=body, now=self.now, kind=kind, ref=ref
        )
        self.session.info[_WROTE_OUTBOUND] = True
        return True

    def post_event(self, event: str, payload: dict[str, Any], *, ref: str | None = None) -> bool:
        """Post ``event`` to the webhook durably; False when there is no ``webhook_url``."""
        if not self.out_of_band.webhook:
            return False
        outbound.enqueue_post(self.session, event=event, payload=payload, now=self.now, ref=ref)
        self.session.info[_WROTE_OUTBOUND] = True
        return True

    def cancel_mail(self, ref: str, kinds: tuple[str, ...]) -> int:
        """Withdraw unsent mail about ``ref`` of these kinds (made moot by a promotion)."""
        if not self.out_of_band.mail:
            return 0
        return outbound.cancel(self.session, ref=ref, now=self.now, kinds=kinds)

    def announce(self, text: str, channel: str | None = None) -> None:
        """Say something in a channel (the home channel by default) after commit."""
        target = channel or self.network.home_channel
        if target:
            self.outgoing.append(Outgoing("PRIVMSG", target, text, announcement=True))

    def with_config(self, config: Any) -> Self:
        """This same unit of work (session, replies, durable messages) seen with another
        plugin's config: for code of one plugin that runs within another's command."""
        return dataclasses.replace(self, config=config, _session=self.session)

    def finish(self, commit: bool) -> None:
        """Commit or roll back the unit of work; called by the dispatcher, not by handlers.

        A commit that fails (a lock wait run out: :func:`ircbot.storage.is_busy`) raises
        after the session is closed, its transaction rolled back: nothing half-written.
        """
        session, self._session = self._session, None
        if session is None:
            return
        wrote = session.info.pop(_WROTE_OUTBOUND, False)
        try:
            if commit:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()
        if commit and wrote:
            self.out_of_band.wake()


@dataclass
class _Kept:
    """What a refusal leaves in place: everything before the command's checkpoint.

    One object shared by a context and its :meth:`~BaseContext.with_config` copies (the role
    resolver runs with one), so a checkpoint taken through either counts for both.
    """

    savepoint: SessionTransaction | None = None
    replies: int = 0
    notified: frozenset[str] = frozenset()


@dataclass
class CommandContext(BaseContext):
    """One command from one person: who is asking (``nick``, ``sender``, ``role`` once a
    role was required), where (``channel``, None in private) and how commands are spelt
    (``prefix``)."""

    nick: str = ""
    sender: Identity | None = None
    channel: str | None = None
    role: Any = None
    #: The declared commands (``!help`` reads them); None in a context made by hand.
    commands: CommandCatalog | None = None
    _kept: _Kept = field(default_factory=_Kept)

    def checkpoint(self) -> None:
        """Keep what this command has done so far, even if it is then refused.

        For what the bot learns about the speaker before it judges the request (their row,
        the nick they use now, a role a config mask grants them): a
        :class:`~ircbot.errors.Refusal` raised after this undoes only what came after it,
        replies included. Without a checkpoint a refusal undoes the whole command. Opens the
        session if need be.
        """
        kept = self._kept
        if kept.savepoint is not None and kept.savepoint.is_active:
            kept.savepoint.commit()  # released: what it covered is kept as well
        kept.savepoint = self.session.begin_nested()
        kept.replies, kept.notified = len(self.outgoing), frozenset(self.notified)

    def finish_refused(self) -> None:
        """End a refused command: undo it back to its checkpoint and commit what was kept
        (nothing, if it took no checkpoint). Called by the dispatcher, not by handlers."""
        kept, self._kept = self._kept, _Kept()
        if kept.savepoint is None:
            self.outgoing.clear()
            self.notified.clear()
            self.finish(commit=False)
            return
        if kept.savepoint.is_active:
            kept.savepoint.rollback()
        del self.outgoing[kept.replies :]
        self.notified.intersection_update(kept.notified)
        self.finish(commit=True)

    def reply(self, text: str) -> None:
        """Answer where the command was said: in channel addressed to the sender, or in PM."""
        if self.channel:
            self.outgoing.append(Outgoing("PRIVMSG", self.channel, f"{self.nick}: {text}"))
        else:
            self.outgoing.append(Outgoing("PRIVMSG", self.nick, text))

    def private(self, text: str) -> None:
        """Answer the sender privately (long lists, history): never floods the channel."""
        self.outgoing.append(Outgoing("PRIVMSG", self.nick, text))

    def notice(self, text: str) -> None:
        self.outgoing.append(Outgoing("NOTICE", self.nick, text))


@dataclass
class JobContext(BaseContext):
    """One run of a periodic job or of a bot event handler (``start``, ``seen``).

    ``memory`` is the plugin's own dict for as long as the bot runs, the same one every time
    (gone at exit, and separate for each bot): for what a handler need not look up in the
    database again, such as whom it has already dealt with.
    """

    memory: dict[str, Any] = field(default_factory=dict)
