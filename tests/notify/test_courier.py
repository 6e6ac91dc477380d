"""The out-of-band queue and its sender, against a real SMTP server and a real receiver.

Rows are written to a real SQLite database as a plugin's transaction would; the sender
(:class:`ircbot.courier.Courier`) reads them and sends them over real sockets to
aiosmtpd (STARTTLS on the test CA's certificate, a login with the password) and to the
standard library's HTTP server, each in a process of its own. The sender's one pass
(``run_once``) is called by the test, on a clock the test moves, so each retry is a step
the test takes; one test runs the thread itself, woken by a commit.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from ircbot import outbound
from ircbot.clock import ManualClock
from ircbot.context import JobContext
from ircbot.courier import Courier, backoff
from ircbot.mailer import Mailer, SmtpTarget
from ircbot.outbound import Outbound, OutOfBand
from ircbot.storage import reading, transaction
from ircbot.webhook import WebhookPoster, signature, verify
from tests.notify.conftest import HOOK_SECRET, SMTP_PASSWORD, SMTP_USER, smtp_url

pytestmark = pytest.mark.timeout(90)


def mailer(url: str, password: str = SMTP_PASSWORD) -> Mailer:
    return Mailer(SmtpTarget.from_url(url), password=password, timeout=10)


def courier(factory, clock, **kwargs) -> Courier:
    kwargs.setdefault("retry_min", 1.0)
    kwargs.setdefault("retry_max", 8.0)
    return Courier(factory, clock, mail_from="bot@livechat.test", draw=lambda: 1.0, **kwargs)


def queue_mail(factory, clock, to="carol@example.org", subject="Hello", body="Hi there\n"):
    with transaction(factory) as session:
        row = outbound.enqueue_mail(
            session, to=to, subject=subject, body=body, now=clock.now(), kind="test"
        )
        session.flush()
        return row.id, row.message_id


def row(factory, row_id) -> Outbound:
    with reading(factory) as session:
        found = session.get(Outbound, row_id)
        session.expunge(found)
        return found


# -- pure parts ------------------------------------------------------------------------------------
def test_backoff_doubles_up_to_the_longest_with_jitter_between_half_and_all():
    assert [backoff(n, 30, 3600, lambda: 1.0) for n in range(1, 9)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600,
    ]  # fmt: skip
    assert backoff(3, 30, 3600, lambda: 0.0) == 60
    assert backoff(1000, 30, 3600, lambda: 0.5) == 2700


def test_a_signature_is_the_hmac_of_the_exact_body():
    body = b'{"event": "ready"}'
    header = signature("k", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify("k", body, header)
    assert not verify("k", body + b" ", header)
    assert not verify("other", body, header)
    assert not verify("k", body, None)


# -- mail ------------------------------------------------------------------------------------------
def test_a_mail_is_delivered_over_starttls_with_a_login_and_its_stable_id(factory, mail_server):
    server = mail_server()
    clock = ManualClock(dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC))
    row_id, message_id = queue_mail(factory, clock, subject="Ärger: alice is ready")
    sender = courier(factory, clock, mailer=mailer(smtp_url(server)))

    assert sender.run_once() == 1

    (got,) = server.wait_for(1)
    assert got.meta == {
        "mail_from": "bot@livechat.test",
        "rcpt_tos": ["carol@example.org"],
        "tls": True,  # STARTTLS, offered by the server, taken by the bot
        "login": SMTP_USER,
    }
    assert got.message_id == f"<{message_id}>"
    assert got.message["Subject"] == "Ärger: alice is ready"
    assert got.text == "Hi there\n"
    sent = row(factory, row_id)
    assert (sent.sent_at, sent.attempts) == (clock.now(), 1)
    assert sender.run_once() == 0  # recorded: never sent again


def test_smtps_is_tls_from_the_first_byte(factory, mail_server):
    server = mail_server(implicit_tls=True)
    clock = ManualClock()
    queue_mail(factory, clock)
    courier(factory, clock, mailer=mailer(smtp_url(server, "smtps"))).run_once()
    (got,) = server.wait_for(1)
    assert (got.meta["tls"], got.meta["login"]) == (True, SMTP_USER)


def test_a_server_down_is_retried_with_backoff_and_the_same_id(factory, mail_server):
    server = mail_server(start=False)  # the port is chosen, nobody listens yet
    clock = ManualClock()
    row_id, message_id = queue_mail(factory, clock)
    sender = courier(factory, clock, mailer=mailer(smtp_url(server)))

    assert sender.run_once() == 1  # tried: refused
    first = row(factory, row_id)
    assert first.sent_at is None and first.attempts == 1
    assert "ConnectionRefusedError" in first.last_error
    assert first.next_attempt_at == clock.now() + dt.timedelta(seconds=1)  # retry_min
    assert sender.run_once() == 0  # not due yet

    clock.advance(1)
    sender.run_once()  # refused again: the wait doubles
    assert row(factory, row_id).next_attempt_at == clock.now() + dt.timedelta(seconds=2)

    server.start()
    clock.advance(2)
    assert sender.run_once() == 1
    (got,) = server.wait_for(1)
    assert got.message_id == f"<{message_id}>"
    done = row(factory, row_id)
    assert (done.attempts, done.last_error, done.sent_at) == (3, None, clock.now())


def test_a_wrong_password_is_retried_not_dropped(factory, mail_server):
    server = mail_server()
    clock = ManualClock()
    row_id, _ = queue_mail(factory, clock)
    courier(factory, clock, mailer=mailer(smtp_url(server), "wrong")).run_once()
    failed = row(factory, row_id)
    assert failed.sent_at is None and failed.failed_at is None and failed.attempts == 1
    assert "login refused: 535" in failed.last_error
    assert server.messages() == []


def test_the_thread_sends_what_a_commit_wrote_at_once(factory, mail_server):
    server = mail_server()
    clock = ManualClock()
    sender = courier(factory, clock, mailer=mailer(smtp_url(server)))
    sender.start()
    try:
        ctx = JobContext(
            session_factory=factory,
            config=None,
            clock=clock,
            network=None,
            out_of_band=OutOfBand(mail=True, wake=sender.wake),
        )
        assert ctx.mail("dave@example.org", "Now", "at once\n", kind="test")
        ctx.finish(commit=True)  # the commit wakes the thread: no wait for its poll
        (got,) = server.wait_for(1, timeout=10)
        assert got.meta["rcpt_tos"] == ["dave@example.org"]
    finally:
        sender.stop()


def test_without_smtp_nothing_is_queued():
    ctx = JobContext(session_factory=None, config=None, clock=ManualClock(), network=None)
    assert ctx.mail("dave@example.org", "Now", "text", kind="test") is False
    assert ctx.post_event("ready", {}) is False


# -- webhook ---------------------------------------------------------------------------------------
def queue_post(factory, clock, event="ready", payload=None):
    with transaction(factory) as session:
        row = outbound.enqueue_post(
            session, event=event, payload=payload or {"trainee": {"nick": "alice"}}, now=clock.now()
        )
        session.flush()
        return row.id, row.message_id


def test_a_post_is_signed_and_the_receiver_verifies_it(factory, hook_server):
    hook = hook_server()
    clock = ManualClock(dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC))
    row_id, key = queue_post(factory, clock)
    sender = courier(factory, clock, poster=WebhookPoster(hook.url, HOOK_SECRET, timeout=10))

    assert sender.run_once() == 1

    (got,) = hook.wait_for(1)
    assert got["verified"] is True and got["status"] == 204
    assert got["path"] == "/livechat/hook"
    assert got["headers"]["Idempotency-Key"] == key
    assert got["headers"]["X-Livechat-Event"] == "ready"
    assert got["json"] == {
        "id": key,
        "event": "ready",
        "at": "2026-03-02T09:00:00+00:00",
        "trainee": {"nick": "alice"},
    }
    assert row(factory, row_id).sent_at == clock.now()


def test_a_wrong_secret_is_refused_by_the_receiver_and_not_retried(factory, hook_server):
    hook = hook_server()
    clock = ManualClock()
    row_id, _ = queue_post(factory, clock)
    courier(factory, clock, poster=WebhookPoster(hook.url, "not the secret", timeout=10)).run_once()
    (got,) = hook.wait_for(1)
    assert (got["verified"], got["status"]) == (False, 401)
    failed = row(factory, row_id)
    assert failed.failed_at == clock.now() and failed.last_error.startswith("HTTP 401")


def test_a_receiver_down_then_failing_is_retried_until_it_takes_the_post(factory, hook_server):
    hook = hook_server(start=False, fail=2)  # down, then two 503s, then fine
    clock = ManualClock()
    row_id, key = queue_post(factory, clock, "promoted")
    sender = courier(factory, clock, poster=WebhookPoster(hook.url, HOOK_SECRET, timeout=10))

    sender.run_once()
    assert "ConnectionRefusedError" in row(factory, row_id).last_error
    hook.start()
    for step in (1, 2, 4):
        clock.advance(step)
        sender.run_once()
    posts = hook.wait_for(3)
    assert [p["status"] for p in posts] == [503, 503, 204]
    assert {p["headers"]["Idempotency-Key"] for p in posts} == {key}
    assert len({p["body"] for p in posts}) == 1  # the very same bytes each time
    done = row(factory, row_id)
    assert (done.attempts, done.sent_at) == (4, clock.now())


def test_rows_of_a_channel_the_bot_has_not_wait_and_do_not_block_others(factory, hook_server):
    hook = hook_server()
    clock = ManualClock()
    mail_id, _ = queue_mail(factory, clock)
    post_id, _ = queue_post(factory, clock)
    sender = courier(factory, clock, poster=WebhookPoster(hook.url, HOOK_SECRET, timeout=10))
    assert sender.run_once() == 1
    hook.wait_for(1)
    assert row(factory, post_id).sent_at is not None
    assert row(factory, mail_id).attempts == 0  # waits for a [notify] smtp_url
    with reading(factory) as session:
        bodies = [
            json.loads(b)
            for b in session.scalars(select(Outbound.body).where(Outbound.channel == "webhook"))
        ]
    assert bodies[0]["event"] == "ready"
