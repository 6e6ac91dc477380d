"""The README tells the truth about the configuration and the quick start."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _reference_script():
    spec = importlib.util.spec_from_file_location(
        "readme_reference", ROOT / "scripts" / "readme_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_reference_matches_the_code():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    script = _reference_script()
    assert script.render(readme) == readme, "run: python scripts/readme_reference.py"
    assert "`[irc] sasl_password_env`" in readme


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/test" in ci.split()
    assert "scripts/test    # run the whole test suite" in readme
    assert "scripts/run     # run the bot" in readme
