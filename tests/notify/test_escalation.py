"""Coordinators reached outside IRC: the livechat story on a real ngircd, with real mail.

The bot runs in-process (its wall clock is a :class:`ShiftClock` the test moves) with the
livechat plugin, in hostmask mode, on the session's ngircd, its prefix ``.``; its
``[notify]`` points at aiosmtpd (STARTTLS on the test CA, a login) and at a webhook
receiver that checks signatures, each a process of its own. Real client connections speak
for two coordinators, two helpers and two trainees. The tests run in file order and tell
one story:

1. esc_c1 sets an address by ``.email`` in private, and confirms it with the code mailed
   there; esc_c2's is set from the shell (``ircbot coordinator set-email``).
2. esc_t1 becomes ready while no coordinator is in the channel: 4 hours later both
   coordinators get one mail naming the trainee, the vouchers and ``.promote esc_t1``.
3. esc_t2 becomes ready while esc_c1 is present and reads the ping: 4 hours later nobody is
   mailed about esc_t2.
4. The SLA reminders are mailed too: esc_t1's past the 24 h promise, esc_t2's first, at
   12 h, before it.
5. Ready, overdue, promoted and rejected reach the webhook, signed.
6. esc_c1 opts in to the weekly digest and gets it, with the funnel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from ircbot_plugins.livechat.models import Attempt, Event, Person
from sqlalchemy import select
from sqlalchemy.orm import Session

from ircbot.cli import main
from ircbot.outbound import Outbound
from ircbot.storage import transaction
from tests.notify.conftest import HOOK_SECRET, SMTP_PASSWORD, smtp_url
from tests.support.botthread import BotThread, bot_config
from tests.support.certs import make_certs
from tests.support.client import IRCTestClient
from tests.support.hookserver import HookServer
from tests.support.mailserver import MailServer, Received
from tests.support.ngircd import NgircdServer, free_port

pytestmark = pytest.mark.timeout(90)

BOT = "escbot"
CHAN = "#escalate"
IDENTS = {
    "esc_c1": "escc1",
    "esc_c2": "escc2",
    "esc_h1": "esch1",
    "esc_h2": "esch2",
    "esc_t1": "esct1",
    "esc_t2": "esct2",
}


class Story:
    def __init__(self, bot: BotThread, server: NgircdServer, smtp: MailServer, hook: HookServer):
        self.bot, self.server, self.smtp, self.hook = bot, server, smtp, hook
        self.clients: dict[str, IRCTestClient] = {}

    def connect(self, nick: str, *, join: bool = True) -> IRCTestClient:
        client = IRCTestClient.connect(self.server.host, self.server.port, nick, user=IDENTS[nick])
        self.clients[nick] = client
        if join:
            client.join(CHAN)
        return client

    def __getattr__(self, name: str) -> IRCTestClient:
        try:
            return self.clients[f"esc_{name}"]
        except KeyError:
            raise AttributeError(name) from None

    def query(self, fn: Callable[[Session], Any]) -> Any:
        def read() -> Any:
            with transaction(self.bot.bot.session_factory) as session:
                return fn(session)

        return self.bot.call(read)

    def run_jobs(self) -> None:
        """Every job of the bot, now, on its thread (returns once they have run)."""
        self.bot.run_jobs()

    def mails(self, subject: str) -> list[Received]:
        return [m for m in self.smtp.messages() if subject in str(m.message["Subject"])]

    def outbound(self, kind: str) -> list[Outbound]:
        def read(session: Session) -> list[Outbound]:
            rows = list(session.scalars(select(Outbound).where(Outbound.kind == kind)))
            session.expunge_all()
            return rows

        return self.query(read)


@pytest.fixture(scope="module")
def story(ngircd: NgircdServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    folder = tmp_path_factory.mktemp("escalation")
    certs = make_certs(folder / "certs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(certs.ca))
        smtp = MailServer(
            free_port(), folder / "mail", certs.cert, certs.key,
            login="livechat-bot", password=SMTP_PASSWORD,
        ).start()  # fmt: skip
        hook = HookServer(free_port(), folder / "hook", HOOK_SECRET).start()
        config = bot_config(
            ngircd.host,
            ngircd.port,
            f"sqlite:///{folder / 'bot.db'}",
            irc={"nick": BOT, "channels": [CHAN]},
            bot={"plugins": ["livechat"], "prefix": ".", "user_burst": 1000, "user_rate": 100.0},
            livechat={
                "threshold": 2,
                "helpers": ["*!~esch1@127.0.0.1", "*!~esch2@127.0.0.1"],
                "coordinators": ["*!~escc1@127.0.0.1", "*!~escc2@127.0.0.1"],
                "escalate_hours": 4,
                "sla_hours": 24,
                "reminder_hours": 12,
            },
            notify={
                "smtp_url": smtp_url(smtp),
                "mail_from": "livechat-bot@example.org",
                "smtp_password_env": "ESC_SMTP_PASSWORD",
                "webhook_url": hook.url,
                "webhook_secret_env": "ESC_HOOK_SECRET",
                "retry_min": 0.5,
            },
        )
        env = {"ESC_SMTP_PASSWORD": SMTP_PASSWORD, "ESC_HOOK_SECRET": HOOK_SECRET}
        bot = BotThread(config, env=env)
        story = Story(bot, ngircd, smtp, hook)
        try:
            bot.start()
            for nick in IDENTS:
                story.connect(nick)
            yield story
        finally:
            for client in story.clients.values():
                client.quit(timeout=1)
            bot.stop()
            smtp.stop()
            hook.stop()


def said(client: IRCTestClient, text: str) -> str:
    """``client`` says ``text`` in the channel; the bot's answer there."""
    client.say(CHAN, text)
    prefix = f"{client.current_nick}: "
    return client.expect(rf"^{re.escape(prefix)}", source=BOT, target=CHAN).text[len(prefix) :]


def asked(client: IRCTestClient, text: str, pattern: str | None = None) -> str:
    """``client`` says ``text`` to the bot in private; its private answer."""
    client.say(BOT, text)
    return client.expect(pattern, source=BOT, target=client.current_nick).text


def person(story: Story, nick: str) -> Person:
    def read(session: Session) -> Person:
        found = session.scalar(select(Person).where(Person.last_nick == nick))
        assert found is not None
        session.expunge(found)
        return found

    return story.query(read)


def attempt(story: Story, nick: str) -> Attempt:
    def read(session: Session) -> Attempt:
        found = session.scalar(
            select(Attempt)
            .join(Person, Person.id == Attempt.person_id)
            .where(Person.last_nick == nick)
            .order_by(Attempt.id.desc())
        )
        assert found is not None
        session.expunge(found)
        return found

    return story.query(read)


def make_ready(story: Story, trainee: IRCTestClient, note: str) -> None:
    nick = trainee.current_nick
    assert said(trainee, ".newhelper").startswith("welcome")
    assert "1/2" in said(story.h1, f".vouch {nick} {note}")
    assert "ready" in said(story.h2, f".vouch {nick}")


# -- 1. addresses ----------------------------------------------------------------------------------
def test_an_address_said_in_the_channel_is_refused_and_not_kept(story):
    assert "private message" in said(story.c1, ".email c1@example.org")
    assert person(story, "esc_c1").email_pending is None


def test_a_coordinator_confirms_an_address_with_the_code_mailed_there(story):
    answer = asked(story.c1, ".email c1@example.org", "code")
    assert answer.startswith("a code is on its way to c1@example.org")
    (mail,) = story.smtp.wait_for(1)
    assert mail.meta["rcpt_tos"] == ["c1@example.org"] and mail.meta["tls"] is True
    assert "http" not in mail.text  # no link to follow
    code = re.search(r"\.email confirm ([A-Z0-9]{8})\b", mail.text)
    assert code is not None, mail.text

    assert asked(story.c1, ".email confirm WRONGCODE") == "wrong code (4 tries left)"
    assert asked(story.c1, ".email confirm WRONGCODE") == "wrong code (3 tries left)"  # kept
    assert person(story, "esc_c1").email is None
    confirmed = asked(story.c1, f".email confirm {code[1].lower()}")
    assert confirmed == "confirmed: when IRC does not reach you, mail goes to c1@example.org"
    me = person(story, "esc_c1")
    assert (me.email, me.email_pending, me.email_code) == ("c1@example.org", None, None)


def test_the_shell_sets_an_address_as_given(story):
    assert ".ready" not in said(story.c2, ".ready")  # seen and answered: a coordinator
    result = CliRunner().invoke(
        main, ["-c", str(story.bot.path), "coordinator", "set-email", "esc_c2", "c2@Example.ORG"]
    )
    assert result.exit_code == 0, result.output
    assert "esc_c2: mail goes to c2@example.org" in result.output
    assert person(story, "esc_c2").email == "c2@example.org"
    bad = CliRunner().invoke(
        main,
        [
            "-c",
            str(story.bot.path),
            "coordinator",
            "set-email",
            "esc_c2",
            "c2@x.org\r\nBcc: y@z.org",
        ],
    )
    assert bad.exit_code == 2 and "is not a mail address" in bad.output
    assert person(story, "esc_c2").email == "c2@example.org"


# -- 2. escalation ---------------------------------------------------------------------------------
def test_nobody_reached_on_irc_in_4_hours_gets_one_mail_each(story):
    story.c1.part(CHAN)
    story.c2.part(CHAN)
    make_ready(story, story.t1, "great with angry customers")

    story.bot.clock.advance(hours=3, minutes=59)
    story.run_jobs()
    assert story.outbound("escalation") == []
    assert attempt(story, "esc_t1").escalated_at is None

    story.bot.clock.advance(minutes=2)
    story.run_jobs()
    mails = story.smtp.wait_for(3)[1:]
    assert sorted(m.meta["rcpt_tos"][0] for m in mails) == ["c1@example.org", "c2@example.org"]
    mail = mails[0]
    assert mail.message["Subject"] == "esc_t1 is ready for promotion (4h waiting)"
    assert "reached no coordinator on IRC" in mail.text
    assert "Trainee: esc_t1 (~esct1@127.0.0.1)" in mail.text
    assert re.search(r"- esc_h1, .* UTC: \"great with angry customers\"", mail.text)
    assert re.search(r"- esc_h2, .* UTC\n", mail.text)
    assert "\n    .promote esc_t1\n" in mail.text  # the configured prefix
    assert f"in {CHAN} or to the bot" in mail.text
    assert mails[0].message_id != mails[1].message_id
    assert attempt(story, "esc_t1").escalated_at is not None

    story.run_jobs()  # once only
    assert len(story.outbound("escalation")) == 2


# -- 3. skipped ------------------------------------------------------------------------------------
def test_no_mail_when_a_coordinator_read_the_ping_in_time(story):
    story.c1.join(CHAN)
    story.c1.expect(r"esc_t1 .*is ready for promotion", source=BOT, target="esc_c1")
    make_ready(story, story.t2, "steady")
    story.c1.expect(r"esc_t2 .*is ready for promotion", source=BOT, target="esc_c1")
    story.c1.expect(r"^esc_c1: esc_t2 is ready for promotion", source=BOT, target=CHAN)

    story.bot.clock.advance(hours=4, minutes=1)
    story.run_jobs()  # the job ran and decided: the marker is its mark on the attempt
    assert attempt(story, "esc_t2").escalated_at is not None
    assert [r.ref for r in story.outbound("escalation")] == [
        f"trainee:{attempt(story, 'esc_t1').id}"
    ] * 2
    assert story.mails("esc_t2") == []


# -- 4. reminders ----------------------------------------------------------------------------------
def test_the_sla_reminders_are_mailed_too(story):
    story.bot.clock.advance(hours=16)  # esc_t1 ready for 24h 2m, esc_t2 for 20h 1m
    story.run_jobs()
    story.smtp.wait_for(7)
    late = story.mails("Reminder: esc_t1")
    assert sorted(m.meta["rcpt_tos"][0] for m in late) == ["c1@example.org", "c2@example.org"]
    assert late[0].message["Subject"] == (
        "Reminder: esc_t1 is waiting for promotion (24h, past the 24h promise)"
    )
    assert "the 24-hour promise has run out" in late[0].text
    assert "\n    .promote esc_t1\n" in late[0].text
    early = story.mails("Reminder: esc_t2")
    assert sorted(m.meta["rcpt_tos"][0] for m in early) == ["c1@example.org", "c2@example.org"]
    assert "the 24-hour promise runs out in 3h" in early[0].text


# -- 5. the webhook --------------------------------------------------------------------------------
def test_events_reach_the_webhook_signed(story):
    assert said(story.c1, ".promote esc_t1").startswith("esc_t1 is now a helper")
    assert said(story.c1, ".reject esc_t2 not this time").startswith("esc_t2")
    posts = story.hook.wait_for(5)  # esc_t2's reminder came before the promise ran out
    assert all(p["verified"] and p["status"] == 204 for p in posts)
    events = [(p["json"]["event"], p["json"]["trainee"]["nick"]) for p in posts]
    assert events == [
        ("ready", "esc_t1"),
        ("ready", "esc_t2"),
        ("overdue", "esc_t1"),
        ("promoted", "esc_t1"),
        ("rejected", "esc_t2"),
    ]
    ready, _, overdue, promoted, rejected = (p["json"] for p in posts)
    assert ready["vouchers"] == ["esc_h1", "esc_h2"] and ready["detail"] == "2/2"
    assert ready["trainee"]["account"] is None  # hostmask mode: no user@host goes out
    assert overdue["waiting_hours"] == 24.0
    assert (promoted["by"], rejected["by"], rejected["detail"]) == (
        "esc_c1",
        "esc_c1",
        "not this time",
    )
    assert len({p["headers"]["Idempotency-Key"] for p in posts}) == 5


# -- 6. the digest ---------------------------------------------------------------------------------
def test_a_coordinator_who_opts_in_gets_the_weekly_digest(story):
    answer = asked(story.c1, ".email digest on", "^weekly digest")
    assert answer == "weekly digest on to c1@example.org"
    story.run_jobs()
    story.smtp.wait_for(8)
    (digest,) = story.mails("Weekly digest")
    assert digest.meta["rcpt_tos"] == ["c1@example.org"]  # esc_c2 did not opt in
    assert "Nobody is waiting for promotion." in digest.text
    assert "All time: registered 2 -> ready 2 -> promoted 1" in digest.text
    story.run_jobs()  # once a week
    assert len(story.outbound("digest")) == 1

    def escalated(session: Session) -> list[str | None]:
        return list(session.scalars(select(Event.detail).where(Event.kind == "escalated")))

    assert story.query(escalated) == ["mailed to esc_c1, esc_c2"]
