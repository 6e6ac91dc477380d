"""Mail rules without IRC, on SQLite and PostgreSQL: addresses and codes, what events queue.

The confirmation code's rules (expiry, wrong tries, no mail-bombing), the escalation rule
and its month-simulation face (:func:`first_reach`), the digest's week, and what the
workflow's audit events put in the out-of-band queue: a webhook post per event, and an
escalation mail taken back when the trainee is promoted before it went.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from ircbot_plugins.livechat import contact, escalation, workflow
from ircbot_plugins.livechat.digest import week_start
from ircbot_plugins.livechat.store import OutboxNotifier, Subject, Unit, person_by_key
from sqlalchemy import select

from ircbot.outbound import Outbound, OutOfBand
from ircbot.storage import transaction

T = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)  # a Monday


def test_first_reach_is_irc_when_in_time_else_the_mail():
    hour = dt.timedelta(hours=1)
    assert escalation.first_reach(T, T + hour, 4) == (T + hour, "irc")
    assert escalation.first_reach(T, T + 5 * hour, 4) == (T + 4 * hour, "mail")
    assert escalation.first_reach(T, None, 4) == (T + 4 * hour, "mail")
    assert escalation.first_reach(T, T + 5 * hour, 4, mail=False) == (T + 5 * hour, "irc")
    assert escalation.first_reach(T, None, 4, mail=False) == (None, None)
    assert not escalation.should_escalate(T, None, T + 3 * hour, 4)
    assert escalation.should_escalate(T, None, T + 4 * hour, 4)
    assert not escalation.should_escalate(T, T + 4.5 * hour, T + 5 * hour, 4)


def test_the_digest_week_starts_at_the_configured_day_and_hour():
    assert week_start(T, "monday", 8) == T.replace(hour=8)
    assert week_start(T, "monday", 10) == T.replace(hour=10) - dt.timedelta(days=7)
    assert week_start(T, "friday", 0) == dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "text",
    ["bob", "a@b", "a b@c.org", "a@b.org,c@d.org", "<a@b.org>", "a@b.org\r\nBcc: c@d.org",
     "é@exämple.de", "a@b.org."],
)  # fmt: skip
def test_an_address_is_plain_ascii_with_one_at_and_a_dotted_domain(text):
    with pytest.raises(contact.BadAddress):
        contact.normal_address(text)


def unit_for(team, *, mail: bool = True, webhook: bool = True):
    class Opened:
        def __enter__(self) -> Unit:
            self.cm = transaction(team.db.factory)
            session = self.cm.__enter__()
            now = team.clock.now()
            oob = OutOfBand(mail=mail, webhook=webhook)
            return Unit(session, now, team.rules, OutboxNotifier(session, now, oob), ".")

        def __exit__(self, *exc):
            return self.cm.__exit__(*exc)

    return Opened()


def test_a_code_confirms_once_within_a_day_and_five_tries(team):
    with unit_for(team) as u:
        _, code = contact.request_email(u, person_by_key(u.session, "carol"), "Carol@Example.org")
    assert re.fullmatch(r"[A-HJKMNP-Z2-9]{8}", code)
    with unit_for(team) as u, pytest.raises(workflow.WorkflowError, match="a moment ago"):
        contact.request_email(u, person_by_key(u.session, "carol"), "other@example.org")
    for left in (4, 3, 2, 1):
        with unit_for(team) as u:
            tried = contact.confirm_email(u, person_by_key(u.session, "carol"), "AAAAAAAA")
            assert tried == (None, left)
    with unit_for(team) as u:
        carol = person_by_key(u.session, "carol")
        assert contact.confirm_email(u, carol, code.lower()) == ("Carol@example.org", 0)
    with unit_for(team) as u, pytest.raises(workflow.Nothing, match=r"say \.email ADDRESS"):
        contact.confirm_email(u, person_by_key(u.session, "carol"), code)

    team.clock.advance(minutes=2)
    with unit_for(team) as u:
        _, code = contact.request_email(u, person_by_key(u.session, "carol"), "new@example.org")
    for _ in range(5):  # five wrong tries: the address waits no more
        with unit_for(team) as u:
            contact.confirm_email(u, person_by_key(u.session, "carol"), "AAAAAAAA")
    with unit_for(team) as u, pytest.raises(workflow.Nothing):
        contact.confirm_email(u, person_by_key(u.session, "carol"), code)

    team.clock.advance(minutes=2)
    with unit_for(team) as u:
        _, code = contact.request_email(u, person_by_key(u.session, "carol"), "new@example.org")
    team.clock.advance(hours=25)
    with unit_for(team) as u, pytest.raises(workflow.WorkflowError, match="expired"):
        contact.confirm_email(u, person_by_key(u.session, "carol"), code)
    with unit_for(team) as u:
        assert person_by_key(u.session, "carol").email == "Carol@example.org"


def outbound_rows(team) -> list[Outbound]:
    with transaction(team.db.factory) as session:
        rows = list(session.scalars(select(Outbound).order_by(Outbound.id)))
        session.expunge_all()
        return rows


def test_events_queue_posts_and_a_promotion_takes_back_unsent_mail(team):
    with unit_for(team) as u:
        contact.set_email(u, person_by_key(u.session, "carol"), "carol@example.org", None)
    team.register("alice")
    team.vouch("bob", "alice", "kind")
    with unit_for(team) as u:
        workflow.vouch(
            u, person_by_key(u.session, "erin"), Subject("alice", person_by_key(u.session, "alice"))
        )
    team.clock.advance(hours=4)
    with unit_for(team) as u:
        assert escalation.run_escalations(u, channel="#livechat") != []
    with unit_for(team) as u:
        workflow.promote(
            u,
            person_by_key(u.session, "carol"),
            Subject("alice", person_by_key(u.session, "alice")),
        )

    rows = outbound_rows(team)
    assert [(r.channel, r.kind) for r in rows] == [
        ("webhook", "ready"),
        ("mail", "escalation"),
        ("webhook", "promoted"),
    ]
    ready, mail, promoted = rows
    assert json.loads(ready.body)["vouchers"] == ["bob", "erin"]
    assert mail.recipient == "carol@example.org" and mail.cancelled_at is not None
    assert "    .promote alice\n" in mail.body
    assert json.loads(promoted.body)["by"] == "carol"


def test_without_mail_or_webhook_nothing_is_queued(team):
    team.register("alice")
    team.vouch("bob", "alice")
    team.vouch("erin", "alice")
    team.clock.advance(hours=5)
    with unit_for(team, mail=False, webhook=False) as u:
        assert escalation.run_escalations(u, channel=None) == []
    assert outbound_rows(team) == []
