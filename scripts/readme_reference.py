"""Rewrite the README's generated tables (commands, configuration) from the declarations.

Run after adding or changing a command or a config key: ``python scripts/readme_reference.py``.
tests/unit/test_readme.py fails while the README and the code disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name} -->\n).*?(<!-- /{name} -->)", re.DOTALL)


def config_reference() -> str:
    from ircbot.config import CORE_SECTIONS, reference_table
    from ircbot.loading import installed

    return reference_table({**CORE_SECTIONS, **installed().schemas()})


def command_reference() -> str:
    """One row per IRC command, in declaration order, with who may use it."""
    from ircbot.builtin import plugin as builtin
    from ircbot.loading import installed

    rows = ["| command | who | what it does |", "| --- | --- | --- |"]
    for plug in [builtin, *installed().plugins.values()]:
        for command in plug.commands:
            if command.role is not None:
                who = plug.role_names(command.role)
            elif command.identified:
                who = "anyone identified"
            else:
                who = "anyone"
            usage = f"!{command.name} {command.shown_usage}".strip()
            rows.append(f"| `{usage}` | {who} | {command.help_text('!')} |")
    return "\n".join(rows)


def render(text: str) -> str:
    text = _block("commands").sub(lambda m: f"{m[1]}{command_reference()}\n{m[2]}", text)
    return _block("config-reference").sub(lambda m: f"{m[1]}{config_reference()}\n{m[2]}", text)


if __name__ == "__main__":
    old = README.read_text(encoding="utf-8")
    new = render(old)
    README.write_text(new, encoding="utf-8")
    print("README.md updated" if new != old else "README.md already current", file=sys.stderr)
