"""No import cycle among ``ircbot/`` and ``plugins/`` modules, function-level imports included.

``scripts/import_cycles.py`` builds the graph from the source text (``ast``), so an import
moved into a function to dodge the cycle at import time is still an edge. The checker is
tried first on a small tree with exactly such a hidden cycle: a check that cannot fail proves
nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "import_cycles.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_cycle_hidden_in_a_function_and_a_relative_one_are_found(tmp_path):
    write(
        tmp_path,
        {
            "ircbot/__init__.py": "",
            "ircbot/plugin.py": "def load():\n    from ircbot import builtin\n",
            "ircbot/builtin.py": "from ircbot.plugin import load\n",
            "ircbot/clean.py": "from ircbot import plugin\n",
            "plugins/__init__.py": "",
            "plugins/chat/__init__.py": "from . import commands\nplugin = 1\n",
            "plugins/chat/commands.py": "from . import plugin\n",
            "plugins/chat/models.py": "from ircbot_plugins.chat import commands\n",
        },
    )
    result = run("--root", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cycle: ircbot.builtin -> ircbot.plugin -> ircbot.builtin" in result.stdout
    assert "cycle: plugins.chat -> plugins.chat.commands -> plugins.chat" in result.stdout
    assert "2 cycles" in result.stdout  # ircbot.clean and the absolute import close none


def test_the_import_graph_of_ircbot_and_plugins_has_no_cycle():
    result = run("--graph")
    assert result.returncode == 0, result.stdout + result.stderr
    # The graph is the real one: the function-level import of the CLI is in it.
    assert "ircbot.cli -> ircbot.bot" in result.stdout
    assert "plugins.livechat.admin -> plugins.livechat.declaration" in result.stdout
    assert "0 cycles" in result.stdout
