"""The default mapping documents shipped in ``mappings/defaults/`` (one per system)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from mappings.document import MappingDocument
from mappings.errors import MappingDocumentError
from mappings.schema import load_document
from mappings.validate import validate

DEFAULTS_DIR = Path(__file__).parent / "defaults"
_NOT_DOCUMENTS = frozenset({"taxonomy"})


def default_systems() -> tuple[str, ...]:
    """System keys that have a default document, sorted."""
    return tuple(sorted(p.stem for p in DEFAULTS_DIR.glob("*.yaml") if p.stem not in _NOT_DOCUMENTS))


def default_document_path(system: str) -> Path:
    """Path of the default document of ``system`` (``FileNotFoundError`` if there is none)."""
    path = DEFAULTS_DIR / f"{system}.yaml"
    if system in _NOT_DOCUMENTS or not path.is_file():
        raise FileNotFoundError(f"no default mapping document for '{system}'")
    return path


def load_document_text(text: str) -> MappingDocument:
    """Load and fully validate a document; ``MappingDocumentError`` lists every issue."""
    doc = load_document(text)
    issues = validate(doc)
    if issues:
        raise MappingDocumentError(issues)
    return doc


@lru_cache(maxsize=16)
def load_default(system: str) -> MappingDocument:
    """The validated default document of ``system``, parsed once per process."""
    return load_document_text(default_document_path(system).read_text(encoding="utf-8"))
