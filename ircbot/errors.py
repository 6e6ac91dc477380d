"""Every exception the bot raises on purpose, in one tree.

.. code-block:: text

    IrcbotError                 the base: an expected failure, phrased for a person
    ├── Refusal                 a command refused; its text is the whole reply
    ├── UsageError              the words after a command don't fit its usage (a ValueError)
    ├── ConfigError             the configuration is wrong (the file, the environment)
    ├── DatabaseUnavailable     the database cannot be opened
    ├── DatabaseBusy            a lock wait ran out: nothing was written, try again
    ├── SaslFailed              the SASL login failed (the transport turns it into FatalError)
    └── FatalError              the bot must stop rather than carry on

A plugin raises :class:`Refusal` (or its own subclass of it: the livechat plugin's
``WorkflowError`` is one) to refuse a command. The dispatcher answers with the text alone and
undoes what the command began, keeping what the bot learnt before the command's checkpoint
(see :meth:`ircbot.context.CommandContext.checkpoint`). Any other exception from a handler
is a bug: one short apology in the channel, the traceback in the log.

The modules that raise these errors (:mod:`ircbot.config`, :mod:`ircbot.storage`, ...)
import them from here; importing this module costs nothing (no SQLAlchemy, no irc).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.exc import OperationalError

__all__ = [
    "ConfigError",
    "DatabaseBusy",
    "DatabaseUnavailable",
    "FatalError",
    "IrcbotError",
    "Refusal",
    "SaslFailed",
    "UsageError",
]


class IrcbotError(Exception):
    """The base of the bot's own exceptions: expected failures, each phrased for a person."""


class Refusal(IrcbotError):
    """Refuse the command: the message is the reply, and what the command began is undone.

    What was kept before the command's checkpoint (the speaker's row, say) stays; with no
    checkpoint the whole transaction is rolled back. Raised by handlers (and plugins' own
    subclasses of it); the dispatcher's own refusals (a role the sender lacks, words that
    don't fit the usage) are decided before the handler runs and keep nothing.
    """


class UsageError(IrcbotError, ValueError):
    """The words after a command don't fit its usage: answered with the usage line."""


class ConfigError(IrcbotError):
    """A configuration problem, phrased for the person who wrote the file."""


class DatabaseUnavailable(IrcbotError):
    """The database cannot be opened: one line naming it (password masked) and the reason.

    A server that is down, a wrong host or password, an SQLite file in a folder that does
    not exist: what the operator must fix, not a bug, so no traceback.
    """

    def __init__(self, engine: Engine, error: OperationalError) -> None:
        url = engine.url.render_as_string(hide_password=True)
        reason = str(error.orig or error).strip().partition("\n")[0]
        super().__init__(f"cannot open the database {url}: {reason}")


class DatabaseBusy(IrcbotError):
    """Another transaction held a lock past our wait: try again in a moment.

    Nothing was written (the unit was rolled back). The bot answers "the database is busy,
    try again in a moment"; the CLI prints one line and exits with code 1.
    """


class SaslFailed(IrcbotError):
    """SASL login did not succeed and the configuration says that is fatal."""


class FatalError(IrcbotError):
    """An error after which the bot must stop rather than carry on (e.g. SASL required).

    Its reason is logged where it is raised, so whoever catches it only stops the bot.
    """
