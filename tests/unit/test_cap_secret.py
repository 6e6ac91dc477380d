"""The SASL password never shows in the negotiator's repr: a ``%r`` in a log line or an
assertion message would otherwise print the secret."""

from __future__ import annotations

import pytest

from ircbot.capabilities import CapNegotiator

pytestmark = pytest.mark.timeout(10)

PASSWORD = "Sup3r-Secret-Passw0rd"


def test_the_negotiator_repr_does_not_show_the_password():
    sent: list[str] = []
    negotiator = CapNegotiator(
        wanted=["sasl"], send=sent.append, sasl_username="lcbot", sasl_password=PASSWORD
    )
    shown = repr(negotiator)
    assert "sasl_username='lcbot'" in shown  # the repr is the dataclass's, with its fields
    assert PASSWORD not in shown
    assert PASSWORD not in f"{negotiator!r} {negotiator!s}"
    assert negotiator.wants_sasl  # the password is still there to be used
