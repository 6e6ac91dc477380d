"""The resolver believes "nobody has that nick" for a while, and stops at any sign of it.

Pure logic: the resolver with a list for a socket and a clock the test moves.
"""

from __future__ import annotations

from ircbot.clock import ManualClock
from ircbot.dispatch import Dispatcher, RateLimiter
from ircbot.identity_policy import AccountPolicy
from ircbot.network import NetworkState
from ircbot.plugin import Plugin
from ircbot.resolver import OFFLINE_TTL, Resolver, WhoisResult


class Asked:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.results: list[dict[str, WhoisResult | None]] = []

    def send(self, line: str, on_sent: object = None) -> None:
        self.lines.append(line)

    def done(self, results: dict[str, WhoisResult | None]) -> None:
        self.results.append(results)


def offline_once() -> tuple[Resolver, Asked, ManualClock]:
    clock, asked = ManualClock(), Asked()
    resolver = Resolver(NetworkState(["#c"]), asked.send, clock.monotonic, 5.0)
    resolver.resolve(["Gone"], asked.done)
    resolver.on_no_such_nick("Gone")
    resolver.on_end_of_whois("Gone")
    assert asked.lines == ["WHOIS gone"] and asked.results[-1]["gone"].online is False
    return resolver, asked, clock


def test_a_nick_nobody_has_is_not_asked_again_for_a_while() -> None:
    resolver, asked, clock = offline_once()
    clock.advance(OFFLINE_TTL - 1)
    resolver.resolve(["GONE"], asked.done)
    assert asked.lines == ["WHOIS gone"]  # answered at once, from what the server said
    assert asked.results[-1]["gone"] == WhoisResult(nick="gone", online=False)
    clock.advance(1)
    resolver.resolve(["gone"], asked.done)
    assert asked.lines == ["WHOIS gone", "WHOIS gone"]  # past the while: asked again


def test_a_join_nick_change_or_reconnect_ends_the_belief() -> None:
    for end in ("seen", "cancel", "reset"):
        resolver, asked, _ = offline_once()
        if end == "reset":
            resolver.reset()
        else:
            getattr(resolver, end)("gone")
        resolver.resolve(["gone"], asked.done)
        assert asked.lines == ["WHOIS gone", "WHOIS gone"], end


def test_someone_online_is_always_asked_about() -> None:
    clock, asked = ManualClock(), Asked()
    resolver = Resolver(NetworkState(["#c"]), asked.send, clock.monotonic, 5.0)
    for _ in range(2):
        resolver.resolve(["amy"], asked.done)
        resolver.on_whois_user("amy", "~amy", "h")
        resolver.on_end_of_whois("amy")
    assert asked.lines == ["WHOIS amy", "WHOIS amy"]


def test_whoever_speaks_is_asked_about_even_if_their_nick_was_just_free() -> None:
    probe = Plugin("probe")
    probe.command("whoami", identified=True, help="Who am I.")(lambda ctx: None)
    resolver, asked, clock = offline_once()
    network = resolver.network
    policy = AccountPolicy(network)
    dispatcher = Dispatcher(
        [probe],
        plugin_configs={},
        prefix="!",
        policy=policy,
        resolver=resolver,
        view=None,  # type: ignore[arg-type]
        session_factory=None,  # type: ignore[arg-type]
        clock=clock,
        limiter=RateLimiter(10, 10, clock.monotonic),
        say=lambda *a, **k: None,
        notified=lambda keys: None,
    )
    dispatcher.on_message("gone", "~g", "h", None, "!whoami", {})  # Gone is back, and asks
    assert asked.lines == ["WHOIS gone", "WHOIS gone"]
