"""Test harness shared by every integration test of the project.

Integration tests run against real things (an ngircd process, plain-socket IRC clients, the
bot as a subprocess) because the failures worth catching live in the protocol, not in mocks.
Everything here is standard library only, binds to 127.0.0.1 only, and every wait is bounded
and ends on an event, so a broken bot makes a test fail quickly with a readable message
instead of hanging the run.

- `ngircd.NgircdServer`: a throwaway ngircd on a free port.
- `client.IRCTestClient`: a conversational IRC client for assertions (`expect`, `expect_none`).
- `fakeserver.ScriptedServer`: a one-client raw listener to replay exact server lines.
- `botproc.BotProcess`: the bot under test as a subprocess with a generated TOML config.
"""

from __future__ import annotations

from tests.support.botproc import BotProcess, dump_toml
from tests.support.client import IRCTestClient, Message, parse_message
from tests.support.fakeserver import ScriptedServer
from tests.support.ngircd import NgircdServer

__all__ = [
    "BotProcess",
    "IRCTestClient",
    "Message",
    "NgircdServer",
    "ScriptedServer",
    "dump_toml",
    "parse_message",
]
