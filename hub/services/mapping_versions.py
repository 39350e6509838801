"""Versioned mapping documents per system: install the plugin default, activate, look up."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.facade import HubError
from hub.models import MappingVersion, System
from hub.services.systems import system_type_of
from mappings import load_document_text, validate
from mappings.errors import MappingDocumentError


class MappingInvalid(HubError):
    def __init__(self, issues: list[Any]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def check_document(text: str) -> Any:
    """Parse and validate a document; raise MappingInvalid with every issue found."""
    try:
        doc = load_document_text(text)
    except MappingDocumentError as exc:
        raise MappingInvalid(list(exc.issues)) from exc
    issues = validate(doc)
    if issues:
        raise MappingInvalid(list(issues))
    return doc


def create_version(session: Session, system_key: str, text: str, *, comment: str = "",
                   created_by: str = "system", activate: bool = False) -> MappingVersion:
    check_document(text)
    latest = session.scalar(select(func.max(MappingVersion.version))
                            .where(MappingVersion.system_key == system_key)) or 0
    version = MappingVersion(system_key=system_key, version=latest + 1, document=text,
                             checksum=_checksum(text), comment=comment, created_by=created_by)
    session.add(version)
    session.flush()
    if activate:
        activate_version(session, version)
    return version


def activate_version(session: Session, version: MappingVersion) -> None:
    session.execute(update(MappingVersion).where(MappingVersion.system_key == version.system_key)
                    .values(active=False))
    version.active = True
    session.flush()


def active_version(session: Session, system_key: str) -> MappingVersion | None:
    """The system's active mapping version, if it has one yet."""
    return session.scalar(select(MappingVersion).where(MappingVersion.system_key == system_key,
                                                       MappingVersion.active.is_(True)))


def ensure_default_mapping(ctx: HubContext, session: Session, system: System) -> MappingVersion:
    """The active version; installs the plugin's default document as version 1 on first use."""
    active = active_version(session, system.key)
    if active is not None:
        return active
    text = system_type_of(ctx, system).default_mapping.read_text(encoding="utf-8")
    return create_version(session, system.key, text, comment="plugin default", activate=True)


def parsed(ctx: HubContext, version: MappingVersion) -> Any:
    """The parsed document of a version, cached in the context by checksum."""
    return parsed_in(ctx.cache, version)


def parsed_in(cache: dict[str, Any], version: MappingVersion, limit: int = 256) -> Any:
    """The parsed document of a version, cached in ``cache`` by checksum (for callers without a
    context, e.g. the sync planner inside refresh_case); the cache is emptied past ``limit``
    mapping entries (a document is immutable: its checksum names it)."""
    key = f"mapping:{version.checksum}"
    doc = cache.get(key)
    if doc is None:
        if sum(1 for k in cache if k.startswith("mapping:")) >= limit:
            for stale in [k for k in cache if k.startswith("mapping:")]:
                del cache[stale]
        doc = cache[key] = check_document(version.document)
    return doc


def list_versions(session: Session, system_key: str) -> list[MappingVersion]:
    return list(session.scalars(select(MappingVersion).where(MappingVersion.system_key == system_key)
                                .order_by(MappingVersion.version.desc())))
