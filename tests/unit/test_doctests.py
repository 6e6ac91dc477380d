"""The bundled plugins' doctests, run under the name the plugins are installed as.

``--doctest-modules`` (pyproject.toml) collects the core's doctests from ``ircbot/``. The
bundled plugins live in ``plugins/`` but are installed as ``ircbot_plugins``: collected from
the folder they would be imported a second time as ``plugins.livechat``, declaring their
tables twice. So they run here, from the installed modules.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import ircbot_plugins
import pytest


def _modules_with_doctests() -> list[str]:
    found = []
    for info in pkgutil.walk_packages(ircbot_plugins.__path__, "ircbot_plugins."):
        module = importlib.import_module(info.name)
        if doctest.DocTestFinder().find(module):
            tests = doctest.DocTestFinder().find(module)
            if any(t.examples for t in tests):
                found.append(info.name)
    return found


MODULES = _modules_with_doctests()


def test_the_plugins_have_doctests_to_run() -> None:
    assert "ircbot_plugins.livechat.roles" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
