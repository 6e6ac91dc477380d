"""Pure logic of the core, no sockets: casemapping, line splitting, token buckets, usage
parsing, reconnect backoff and the CAP/SASL state machine fed with replayed server lines."""

from __future__ import annotations

import base64
import doctest
import random

import pytest

from ircbot import identity
from ircbot.capabilities import CapNegotiator, SaslFailed, sasl_plain_chunks
from ircbot.casemapping import CaseMapping
from ircbot.clock import ManualClock
from ircbot.dispatch import RateLimiter
from ircbot.identity import identity_key
from ircbot.lines import MAX_LINE_BYTES, sanitize, split_message, text_budget
from ircbot.plugin import Command, Plugin, UsageError, parse_usage, split_args
from ircbot.ratelimit import TokenBucket
from ircbot.transport import Backoff

# ------------------------------------------------------------------------- casemapping


def test_rfc1459_folds_the_scandinavian_brackets_and_tilde():
    rfc = CaseMapping.from_name("rfc1459")
    assert rfc.fold("Nick[A]\\B~") == "nick{a}|b^"
    assert rfc.equal("[Bot]", "{bot}")
    assert rfc.equal("a~b", "A^B")


def test_strict_rfc1459_folds_brackets_but_not_tilde():
    strict = CaseMapping.from_name("strict-rfc1459")
    assert strict.fold("Nick[A]\\B~") == "nick{a}|b~"
    assert strict.equal("[Bot]", "{BOT}")
    assert not strict.equal("a~b", "a^b")


def test_ascii_folds_letters_only():
    ascii_ = CaseMapping.from_name("ascii")
    assert ascii_.fold("Nick[A]\\B~") == "nick[a]\\b~"
    assert not ascii_.equal("[bot]", "{bot}")
    assert not ascii_.equal("ÄBC", "äbc")  # str.lower() would say equal


def test_missing_casemapping_means_rfc1459_and_unknown_means_ascii():
    assert CaseMapping.from_name(None).name == "rfc1459"
    # ascii never merges nicks the server keeps apart (see tests/impersonation)
    assert CaseMapping.from_name("unicode-magic").name == "ascii"
    assert CaseMapping.from_name("ASCII").name == "ascii"


def test_masks_with_brackets_match_literally_and_fold_by_the_server_rules():
    rfc = CaseMapping.from_name("rfc1459")
    ascii_ = CaseMapping.from_name("ascii")
    mask = "Nick[Away]!*@*.example.net"
    assert rfc.match(mask, "nick{away}!~u@host.example.net")
    assert not ascii_.match(mask, "nick{away}!~u@host.example.net")
    assert ascii_.match(mask, "NICK[AWAY]!~u@host.example.net")
    # "[ab]" is not a character class: it matches only the four characters themselves.
    assert not ascii_.match("x[ab]y!*@*", "xay!u@h")
    assert ascii_.match("x[ab]y!*@*", "x[ab]y!u@h")


def test_mask_wildcards_and_anchoring():
    m = CaseMapping.from_name("ascii")
    assert m.match("*!*@127.0.0.1", "alice!~alice@127.0.0.1")
    assert m.match("al?ce!*@*", "alice!a@h")
    assert not m.match("al?ce!*@*", "allice!a@h")
    assert not m.match("*!*@127.0.0.1", "alice!~alice@127.0.0.10")  # anchored at the end
    assert not m.match("*.*", "abc")  # "." is literal


def test_identity_keys_fold_letters_only_whatever_the_server():
    assert doctest.testmod(identity).failed == 0
    assert identity_key("IKHelp[M]") == identity_key("ikhelp[m]") == "ikhelp[m]"
    assert identity_key("a[b]") != identity_key("a{b}")  # two accounts on an ascii network


# ---------------------------------------------------------------------- line splitting


@pytest.mark.parametrize("unsafe", ["\r", "\n", "\r\n", "\0", "\r\n\0\r\n"])
def test_sanitize_turns_line_breaks_and_nul_into_one_space(unsafe):
    assert sanitize(f"hi{unsafe}QUIT :pwned") == "hi QUIT :pwned"


def test_split_keeps_short_text_whole_and_drops_empty_text():
    assert split_message("hello world", 50) == ["hello world"]
    assert split_message("", 50) == []


def test_split_prefers_spaces():
    assert split_message("aaaa bbbb cccc", 9) == ["aaaa bbbb", "cccc"]


def test_split_never_cuts_a_multibyte_character():
    text = "é" * 10  # 20 bytes, no spaces
    pieces = split_message(text, 5)  # an odd budget lands mid-character
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= 5 for p in pieces)
    assert pieces[0] == "éé"


def test_split_sanitises_what_it_splits():
    pieces = split_message("one\r\nQUIT :x\0two", 100)
    assert pieces == ["one QUIT :x two"]


def test_split_rejects_a_budget_that_cannot_hold_a_character():
    with pytest.raises(ValueError):
        split_message("abc", 3)


def test_split_random_text_is_within_budget_and_loses_nothing():
    rng = random.Random(1459)
    alphabet = ["a", "Z", " ", "é", "€", "𝄞", "日", "\x02"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        budget = rng.randint(4, 120)
        pieces = split_message(text, budget)
        for piece in pieces:
            assert 0 < len(piece.encode()) <= budget
        # Only spaces at the cuts may go; every other character survives, in order.
        assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


def test_budget_leaves_room_for_the_longest_relay_prefix():
    target = "#livechat"
    budget = text_budget("PRIVMSG", target)
    worst_prefix = ":" + "n" * 30 + "!" + "~" + "u" * 10 + "@" + "h" * 63 + " "
    line = f"{worst_prefix}PRIVMSG {target} :{'x' * budget}\r\n"
    assert len(line.encode()) <= MAX_LINE_BYTES


# ------------------------------------------------------------------------ token bucket


def test_bucket_allows_the_burst_then_refuses():
    clock = ManualClock()
    bucket = TokenBucket(3, 1.0, clock.monotonic)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time() == pytest.approx(1.0)


def test_bucket_refills_at_its_rate_and_never_above_its_burst():
    clock = ManualClock()
    bucket = TokenBucket(2, 0.5, clock.monotonic)
    bucket.take(), bucket.take()
    clock.advance(2.0)  # one token at 0.5/s
    assert bucket.take()
    assert not bucket.take()
    clock.advance(3600)
    assert bucket.is_full()
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_bucket_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        TokenBucket(0, 1.0, ManualClock().monotonic)
    with pytest.raises(ValueError):
        TokenBucket(1, 0, ManualClock().monotonic)


def test_rate_limiter_warns_once_per_flood_and_keeps_people_apart():
    clock = ManualClock()
    limiter = RateLimiter(2, 0.1, clock.monotonic)
    assert [limiter.allow("a@h") for _ in range(4)] == [True, True, False, None]
    assert limiter.allow("b@h") is True
    clock.advance(10)  # one token back: served, and the next flood is warned about again
    assert limiter.allow("a@h") is True
    assert limiter.allow("a@h") is False


# ------------------------------------------------------------------ usage and arguments


def test_usage_required_optional_and_rest():
    params = parse_usage("<who:nick> [reason...]")
    assert [(p.name, p.required, p.rest, p.is_nick) for p in params] == [
        ("who", True, False, True),
        ("reason", False, True, False),
    ]
    assert split_args(params, "bob") == ["bob", None]
    assert split_args(params, "  bob   was  great ") == ["bob", "was  great"]


def test_usage_is_shown_without_argument_kinds():
    command = Command("x", print, "p", "h", usage="<who:nick> [them:nick...] <a|b> [why...]")
    assert command.shown_usage == "<who> [them...] <a|b> [why...]"


def test_usage_choices_are_case_insensitive_and_checked():
    params = parse_usage("<on|off>")
    assert params[0].choices == ("on", "off")
    assert split_args(params, "ON") == ["on"]
    with pytest.raises(UsageError, match="must be one of: on, off"):
        split_args(params, "maybe")


def test_missing_and_extra_arguments_are_usage_errors():
    params = parse_usage("<a> [b]")
    with pytest.raises(UsageError, match="missing <a>"):
        split_args(params, "   ")
    with pytest.raises(UsageError, match="too many arguments"):
        split_args(params, "1 2 3")
    assert split_args((), "") == []


@pytest.mark.parametrize(
    "usage",
    ["<a", "[a>", "<a...> <b>", "[a] <b>", "word"],
)
def test_malformed_usage_is_a_programming_error(usage):
    with pytest.raises(ValueError):
        parse_usage(usage)


def test_a_command_cannot_be_declared_without_help():
    plugin = Plugin("t")
    with pytest.raises(ValueError, match="needs help"):
        plugin.command("x", help="  ")


# ------------------------------------------------------------------------------ backoff


def test_backoff_doubles_up_to_its_cap():
    backoff = Backoff(2.0, 30.0, rng=lambda: 1.0)  # the top of each jitter range
    assert [backoff.next_delay() for _ in range(6)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_backoff_jitter_stays_between_half_and_all_of_the_ceiling():
    rng = random.Random(7)
    backoff = Backoff(1.0, 8.0, rng=rng.random)
    for attempt in range(12):
        ceiling = min(8.0, 2.0**attempt)
        assert ceiling / 2 <= backoff.next_delay() <= ceiling


def test_backoff_reset_starts_again_from_the_minimum():
    backoff = Backoff(0.5, 60.0, rng=lambda: 1.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_with_a_maximum_below_its_minimum_uses_the_minimum():
    assert Backoff(5.0, 1.0, rng=lambda: 1.0).next_delay() == 5.0


# --------------------------------------------------------------------- CAP negotiation

WANTED = ["sasl", "account-tag", "account-notify", "multi-prefix", "away-notify"]
INSPIRCD_LS = (
    "account-notify account-tag away-notify batch cap-notify chghost echo-message "
    "extended-join message-tags multi-prefix sasl=PLAIN server-time userhost-in-names"
)


def negotiator(**kwargs) -> tuple[CapNegotiator, list[str]]:
    sent: list[str] = []
    kwargs.setdefault("wanted", WANTED)
    return CapNegotiator(send=sent.append, **kwargs), sent


def test_requests_only_wanted_caps_the_server_offers():
    neg, sent = negotiator()
    neg.on_cap(["LS", "multi-prefix away-notify batch"])
    assert sent == ["CAP REQ :multi-prefix away-notify"]


def test_no_sasl_request_without_credentials():
    neg, sent = negotiator()
    neg.on_cap(["LS", INSPIRCD_LS])
    assert sent == ["CAP REQ :account-tag account-notify multi-prefix away-notify"]


def test_nothing_wanted_on_offer_ends_negotiation_at_once():
    neg, sent = negotiator()
    neg.on_cap(["LS", "batch echo-message"])
    assert sent == ["CAP END"]
    assert neg.done


def test_multiline_ls_is_collected_before_requesting():
    neg, sent = negotiator()
    neg.on_cap(["LS", "*", "account-notify batch"])
    assert sent == []
    neg.on_cap(["LS", "multi-prefix"])
    assert sent == ["CAP REQ :account-notify multi-prefix"]
    assert set(neg.offered) == {"account-notify", "batch", "multi-prefix"}


def test_ack_with_a_trailing_space_completes_the_request():
    neg, sent = negotiator()
    neg.on_cap(["LS", "account-tag multi-prefix"])
    neg.on_cap(["ACK", "account-tag multi-prefix "])
    assert neg.enabled == {"account-tag", "multi-prefix"}
    assert sent[-1] == "CAP END"


def test_nak_of_several_caps_asks_again_one_by_one():
    neg, sent = negotiator()
    neg.on_cap(["LS", "account-tag multi-prefix away-notify"])
    neg.on_cap(["NAK", "account-tag multi-prefix away-notify"])
    assert sent[1:] == ["CAP REQ :account-tag", "CAP REQ :multi-prefix", "CAP REQ :away-notify"]
    neg.on_cap(["ACK", "account-tag"])
    neg.on_cap(["NAK", "multi-prefix"])
    assert not neg.done
    neg.on_cap(["ACK", "away-notify"])
    assert sent[-1] == "CAP END"
    assert neg.enabled == {"account-tag", "away-notify"}


def test_sasl_plain_flow_with_inspircd_lines():
    neg, sent = negotiator(sasl_username="lcbot", sasl_password="hunter2")
    neg.on_cap(["LS", INSPIRCD_LS])
    assert sent[-1] == "CAP REQ :sasl account-tag account-notify multi-prefix away-notify"
    neg.on_cap(["ACK", "sasl account-tag account-notify multi-prefix away-notify"])
    assert sent[-1] == "AUTHENTICATE PLAIN"
    neg.on_authenticate("+")
    payload = base64.b64encode(b"lcbot\0lcbot\0hunter2").decode()
    assert sent[-1] == f"AUTHENTICATE {payload}"
    neg.on_numeric("900", ["lcbot!u@h", "lcbot", "You are now logged in as lcbot"])
    neg.on_numeric("903", ["SASL authentication successful"])
    assert sent[-1] == "CAP END"
    assert neg.account == "lcbot"
    assert neg.done


def test_sasl_not_offered_but_required_fails():
    neg, sent = negotiator(sasl_username="lcbot", sasl_password="pw")
    neg.on_cap(["LS", "multi-prefix"])
    assert sent == ["CAP REQ :multi-prefix"]
    with pytest.raises(SaslFailed, match="does not offer SASL"):
        neg.on_cap(["ACK", "multi-prefix"])
    assert "CAP END" not in sent


def test_sasl_without_plain_mechanism_fails():
    neg, _ = negotiator(sasl_username="lcbot", sasl_password="pw")
    neg.on_cap(["LS", "sasl=EXTERNAL,SCRAM-SHA-256"])
    with pytest.raises(SaslFailed, match="not PLAIN"):
        neg.on_cap(["ACK", "sasl"])


def test_sasl_904_required_raises_and_optional_ends_negotiation():
    for required in (True, False):
        neg, sent = negotiator(sasl_username="lcbot", sasl_password="pw", sasl_required=required)
        neg.on_cap(["LS", "sasl"])
        neg.on_cap(["ACK", "sasl"])
        neg.on_authenticate("+")
        if required:
            with pytest.raises(SaslFailed, match="904"):
                neg.on_numeric("904", ["SASL authentication failed"])
            assert "CAP END" not in sent
        else:
            neg.on_numeric("904", ["SASL authentication failed"])
            assert sent[-1] == "CAP END"
            assert neg.sasl_failure == "904 SASL authentication failed"


def test_timeout_during_sasl_aborts_the_exchange():
    neg, sent = negotiator(sasl_username="lcbot", sasl_password="pw", sasl_required=False)
    neg.on_cap(["LS", "sasl"])
    neg.on_cap(["ACK", "sasl"])
    neg.on_timeout()
    assert sent[-2:] == ["AUTHENTICATE *", "CAP END"]


def test_timeout_without_an_ls_answer():
    neg, sent = negotiator()
    neg.on_timeout()
    assert sent == ["CAP END"]
    required, _ = negotiator(sasl_username="lcbot", sasl_password="pw")
    with pytest.raises(SaslFailed, match="timed out"):
        required.on_timeout()


def test_server_without_cap_support_registers_us_directly():
    neg, sent = negotiator()
    neg.on_registered()
    assert neg.done
    assert sent == []


def test_authenticate_plus_before_sasl_is_ignored():
    neg, sent = negotiator(sasl_username="lcbot", sasl_password="pw")
    neg.on_authenticate("+")
    assert sent == []


def test_cap_new_after_negotiation_requests_wanted_caps_but_not_sasl():
    neg, sent = negotiator(sasl_username="lcbot", sasl_password="pw", sasl_required=False)
    neg.on_cap(["LS", "multi-prefix"])
    neg.on_cap(["ACK", "multi-prefix"])
    assert neg.done
    neg.on_cap(["NEW", "sasl=PLAIN away-notify"])
    assert sent[-1] == "CAP REQ :away-notify"


def test_cap_del_forgets_the_cap():
    neg, _ = negotiator()
    neg.on_cap(["LS", "multi-prefix away-notify"])
    neg.on_cap(["ACK", "multi-prefix away-notify"])
    neg.on_cap(["DEL", "away-notify"])
    assert neg.enabled == {"multi-prefix"}


def test_sasl_payload_is_split_in_400_byte_chunks():
    chunks = sasl_plain_chunks("lcbot", "p" * 450)
    assert [len(c) for c in chunks[:-1]] == [400] * (len(chunks) - 1)
    assert 0 < len(chunks[-1]) < 400
    decoded = base64.b64decode("".join(chunks))
    assert decoded == b"lcbot\0lcbot\0" + b"p" * 450


def test_a_payload_of_exactly_400_bytes_ends_with_plus():
    # 300 raw bytes encode to exactly 400 base64 characters.
    chunks = sasl_plain_chunks("u", "x" * (300 - len("u\0u\0")))
    assert [len(c) for c in chunks] == [400, 1]
    assert chunks[-1] == "+"


def test_the_sasl_payload_goes_only_through_send_secret():
    secret: list[str] = []
    neg, sent = negotiator(sasl_username="lcbot", sasl_password="pw", send_secret=secret.append)
    neg.on_cap(["LS", "sasl"])
    neg.on_cap(["ACK", "sasl"])
    neg.on_authenticate("+")
    payload = base64.b64encode(b"lcbot\0lcbot\0pw").decode()
    assert secret == [f"AUTHENTICATE {payload}"]
    assert sent == ["CAP REQ :sasl", "AUTHENTICATE PLAIN"]
