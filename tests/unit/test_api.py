"""The public API: ``ircbot`` exports what a plugin author needs, and importing it is cheap."""

from __future__ import annotations

import inspect
import subprocess
import sys

import ircbot


def test_every_exported_name_resolves_to_where_it_is_defined() -> None:
    assert ircbot.__all__ == sorted(ircbot.__all__)
    for name in ircbot.__all__:
        value = getattr(ircbot, name)
        if inspect.isclass(value) or inspect.isfunction(value):  # RoleResolver is an alias
            assert value.__name__ == name, name
            assert value.__module__.startswith("ircbot."), (name, value.__module__)
    assert {"Plugin", "CommandContext", "JobContext", "NetworkView", "Refusal"} <= set(
        ircbot.__all__
    )
    assert {"UsageError", "Clock", "Target", "Identity", "option", "Role"} <= set(ircbot.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        ircbot.Dispatcher  # noqa: B018  (internal: not exported)
    except AttributeError as exc:
        assert "Dispatcher" in str(exc)
    else:
        raise AssertionError("ircbot.Dispatcher should not be exported")


def test_importing_ircbot_loads_neither_sqlalchemy_nor_irc() -> None:
    code = (
        "import sys, ircbot; print(ircbot.__all__);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'irc', "
        "'alembic', 'click'} or m.startswith('ircbot.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert out[0] == repr(ircbot.__all__)
    assert out[1] == "[]", f"import ircbot loaded {out[1]}"
