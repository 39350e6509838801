"""The layer rules of design.md, checked on the imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
OURS = {"hub", "plugins", "adapters", "mappings", "admin", "sandbox"}
ALLOWED = {
    "hub": {"hub", "mappings", "admin"},  # admin: the console blueprint is registered by the app factory
    "mappings": {"mappings"},
    "adapters": {"adapters"},
    "sandbox": {"sandbox"},
    "admin": {"admin", "hub", "mappings"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & OURS


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_design_allows(layer: str) -> None:
    bad = {str(p.relative_to(REPO)): sorted(_imports(p) - ALLOWED[layer])
           for p in (REPO / layer).rglob("*.py") if _imports(p) - ALLOWED[layer]}
    assert not bad, f"{layer} imports across the layer rules: {bad}"


def test_plugins_use_only_the_hub_facade() -> None:
    bad = []
    for path in (REPO / "plugins").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hub") \
                    and node.module != "hub.facade":
                bad.append(f"{path.relative_to(REPO)}: {node.module}")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in {"admin", "sandbox"}:
                bad.append(f"{path.relative_to(REPO)}: {node.module}")
    assert not bad, bad
