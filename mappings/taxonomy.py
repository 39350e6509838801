"""The canonical category taxonomy: codes, Chinese names, compatible groups, crosswalks.

Source: ``mappings/defaults/taxonomy.yaml``. Dedup blocks on ``group_of``: two records
can only be one incident if their categories share a group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mappings.errors import Issue, MappingDocumentError
from mappings.yamlio import load_yaml

TAXONOMY_PATH = Path(__file__).parent / "defaults" / "taxonomy.yaml"


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    group: str


@dataclass(frozen=True)
class Taxonomy:
    """Canonical categories (in file order), groups (code → Chinese name) and crosswalks
    (system → its code → canonical code)."""

    categories: Mapping[str, Category]
    groups: Mapping[str, str]
    crosswalks: Mapping[str, Mapping[str, str]]

    @property
    def codes(self) -> frozenset[str]:
        """Every canonical category code."""
        return frozenset(self.categories)

    def _category(self, code: str) -> Category:
        try:
            return self.categories[code]
        except KeyError:
            raise KeyError(f"unknown canonical category '{code}'") from None

    def group_of(self, code: str) -> str:
        """The compatible-category group of ``code``; ``KeyError`` for an unknown code."""
        return self._category(code).group

    def name_of(self, code: str) -> str:
        """The Chinese name of ``code``; ``KeyError`` for an unknown code."""
        return self._category(code).name

    def group_name(self, group: str) -> str:
        """The Chinese name of a group."""
        return self.groups[group]

    def compatible(self, a: str, b: str) -> bool:
        """True if two categories may describe the same incident (same group)."""
        return self.group_of(a) == self.group_of(b)

    def members(self, group: str) -> tuple[str, ...]:
        """The categories of a group, in file order."""
        return tuple(c.code for c in self.categories.values() if c.group == group)

    def crosswalk(self, system: str) -> Mapping[str, str]:
        """A system's codes → canonical codes; empty for a system without a crosswalk."""
        return self.crosswalks.get(system, {})


def parse_taxonomy(raw: Any) -> Taxonomy:
    """Build and check a taxonomy from its YAML data; ``MappingDocumentError`` lists problems."""
    if not isinstance(raw, Mapping):
        raise MappingDocumentError([Issue("", "the taxonomy is a mapping: groups, categories, crosswalk")])
    issues: list[Issue] = []
    groups = {str(k): str(v) for k, v in (raw.get("groups") or {}).items()}
    categories: dict[str, Category] = {}
    for code, spec in (raw.get("categories") or {}).items():
        if not isinstance(spec, Mapping) or not spec.get("name") or not spec.get("group"):
            issues.append(Issue(f"categories.{code}", "needs name and group"))
            continue
        if spec["group"] not in groups:
            issues.append(Issue(f"categories.{code}.group", f"unknown group '{spec['group']}'"))
        categories[code] = Category(code, str(spec["name"]), str(spec["group"]))
    crosswalks: dict[str, dict[str, str]] = {}
    for system, table in (raw.get("crosswalk") or {}).items():
        crosswalks[system] = {}
        for system_code, canonical in (table or {}).items():
            if canonical not in categories:
                issues.append(Issue(f"crosswalk.{system}.{system_code}", f"unknown category '{canonical}'"))
            crosswalks[system][system_code] = str(canonical)
    for group in groups:
        if not any(c.group == group for c in categories.values()):
            issues.append(Issue(f"groups.{group}", "no category belongs to this group"))
    if issues:
        raise MappingDocumentError(issues)
    return Taxonomy(categories, groups, crosswalks)


@lru_cache(maxsize=8)
def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The taxonomy (the packaged default unless ``path``), parsed once per process."""
    source = path or TAXONOMY_PATH
    return parse_taxonomy(load_yaml(source.read_text(encoding="utf-8")))
