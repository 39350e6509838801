"""Every hook is documented (docs/plugins.md heading = its exact name) and tested
(a ``test_hook_<name>`` somewhere under tests/). Adding a hook without both fails here."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from hub.plugin import hookspecs

REPO = Path(__file__).resolve().parents[3]
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
               if name.startswith("hub_"))


def test_there_are_hooks() -> None:
    assert len(HOOKS) >= 5


def test_every_hook_has_a_docstring_contract() -> None:
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 40, f"{name} has no real docstring"


def test_every_hook_is_documented() -> None:
    docs = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (\w+)$", docs, flags=re.M))
    missing = [h for h in HOOKS if h not in headings]
    assert not missing, f"undocumented hooks (add '### name' to docs/plugins.md): {missing}"
    stale = sorted(h for h in headings if h.startswith("hub_") and h not in HOOKS)
    assert not stale, f"docs/plugins.md documents hooks that do not exist: {stale}"


def test_every_hook_is_tested() -> None:
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "tests").rglob("test_*.py"))
    missing = [h for h in HOOKS if f"def test_hook_{h}" not in sources]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"
