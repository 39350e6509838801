"""Console pages for mapping documents: versions, diff, activation and rollback, and the editor
(forms and raw YAML over one draft) with a live preview and a dry-run replay on stored payloads.

Admins change mappings; operators and auditors may look. The draft lives in the posted form
until it is saved as a new (inactive, or at once active) version; preview and dry-run write
nothing. Stored payloads are decoded and mapped exactly as ingestion does (``stype.decode`` then
``map_payload``); the reporter's identity never reaches the page.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import case as sql_case
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from admin.mapping_forms import (
    DOCUMENT,
    FIELD_LABELS_ZH,
    FormView,
    RecordChange,
    compare_records,
    form_view,
    place_issues,
    resolve_draft,
    shown,
)
from admin.views import SHANGHAI, _check_csrf, _ctx, bp, nav, roles
from hub.facade import SystemType
from hub.models import Case, InboundEvent, InboundStatus, MappingVersion, System, Ticket
from hub.services import audit, mapping_versions
from hub.services.redact import redact_text
from hub.services.systems import SystemNotFound, get_system, list_systems, system_type_of
from mappings import MappingDocument, load_document, load_taxonomy, map_payload, preview
from mappings.canonical import PII_FIELDS
from mappings.errors import Issue, MappingDocumentError, MappingError
from mappings.yamlio import load_yaml

VIEWERS = ("admin", "operator", "auditor")
PREVIEW_CHOICES = 30  # stored payloads offered for the preview
DRY_RUN_DEFAULT, DRY_RUN_MAX = 50, 500


# ----------------------------------------------------------------------------- look-ups


def _system(s: Session, key: str) -> System:
    try:
        return get_system(s, key)
    except SystemNotFound:
        abort(404)


def _version(s: Session, key: str, number: int) -> MappingVersion:
    row = s.scalar(select(MappingVersion).where(MappingVersion.system_key == key,
                                                MappingVersion.version == number))
    if row is None:
        abort(404)
    return row


def _events(key: str, limit: int, *, quarantined_first: bool = False, event_id: int | None = None) -> Any:
    """Stored inbound events of the system the caller may see: a scoped account sees only those
    of cases in its jurisdiction (a quarantined payload belongs to no case yet)."""
    q = select(InboundEvent).where(InboundEvent.system_key == key)
    scope = g.caller["scope"]
    if scope:
        q = (q.join(Ticket, Ticket.id == InboundEvent.ticket_id).join(Case, Case.id == Ticket.case_id)
             .where(Case.grid_code.startswith(scope)))
    if event_id is not None:
        q = q.where(InboundEvent.id == event_id)
    if quarantined_first:
        q = q.order_by(sql_case((InboundEvent.status == InboundStatus.QUARANTINED, 0), else_=1))
    return q.order_by(InboundEvent.id.desc()).limit(limit)


# ----------------------------------------------------------------------------- versions, diff, activation


@bp.get("/mappings")
@roles(*VIEWERS)
def mapping_index() -> str:
    with _ctx().db.read_session() as s:
        rows = [(system, mapping_versions.active_version(s, system.key)) for system in list_systems(s)]
        return render_template("console/mapping_index.html", rows=rows)


@bp.get("/systems/<key>/mapping")
@roles(*VIEWERS)
def mapping_versions_page(key: str) -> str:
    with _ctx().db.read_session() as s:
        system = _system(s, key)
        versions = mapping_versions.list_versions(s, key)
        active = next((v.version for v in versions if v.active), None)
        return render_template("console/mapping_versions.html", system=system, versions=versions,
                               active=active)


@bp.post("/systems/<key>/mapping/<int(max=2147483647):version>/activate")
@roles("admin")
def mapping_activate(key: str, version: int) -> Response:
    _check_csrf()
    with _ctx().db.session() as s:
        _system(s, key)
        row = _version(s, key, version)
        before = mapping_versions.active_version(s, key)
        if before is not None and before.id == row.id:
            flash(_("版本 %(version)s 已是启用版本", version=version))
        else:
            mapping_versions.activate_version(s, row)
            audit.record(s, g.caller["name"], "mapping.activate", "mapping", key,
                         {"active_version": before.version if before else None}, {"active_version": version},
                         request.remote_addr or "")
            flash(_("已启用映射版本 %(version)s（之前：%(before)s）", version=version,
                    before=before.version if before else _("无")))
    return redirect(url_for("console.mapping_versions_page", key=key))


@bp.get("/systems/<key>/mapping/diff")
@roles(*VIEWERS)
def mapping_diff(key: str) -> str:
    a, b = request.args.get("a", type=int), request.args.get("b", type=int)
    if a is None or b is None:
        abort(404)
    with _ctx().db.read_session() as s:
        system = _system(s, key)
        old, new = _version(s, key, a), _version(s, key, b)
        lines = list(difflib.unified_diff(old.document.splitlines(), new.document.splitlines(),
                                          f"版本 {a}", f"版本 {b}", lineterm="", n=3))
        return render_template("console/mapping_diff.html", system=system, a=a, b=b, lines=lines,
                               versions=[v.version for v in mapping_versions.list_versions(s, key)])


# ----------------------------------------------------------------------------- the editor


@dataclass
class EditorPage:
    """Everything the editor template shows besides the draft itself."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    issues: list[str] = field(default_factory=list)  # summary: every message with its place
    notice: str = ""
    valid: bool = False
    preview: dict[str, Any] | None = None
    dry_run: dict[str, Any] | None = None


def _source_text(s: Session, system: System, start: str | None) -> tuple[str, str]:
    """The text a draft starts from and its name: a version, the active one, or the plugin default."""
    if start and start.isdigit():
        return _version(s, system.key, int(start)).document, _("版本 %(version)s", version=start)
    active = mapping_versions.active_version(s, system.key) if start != "default" else None
    if active is not None:
        return active.document, _("版本 %(version)s（启用中）", version=active.version)
    return system_type_of(_ctx(), system).default_mapping.read_text(encoding="utf-8"), _("插件默认文档")


def _form_of(text: str) -> FormView | None:
    """The form for a draft, when its structure allows one (else the YAML tab alone)."""
    try:
        load_document(text)
    except MappingDocumentError:
        return None
    return form_view(load_yaml(text), load_taxonomy())


def _checked(text: str, problems: dict[str, list[str]], form: FormView | None, page: EditorPage) -> None:
    issues: list[Issue] = []
    try:
        mapping_versions.check_document(text)
    except mapping_versions.MappingInvalid as exc:
        issues = list(exc.issues)
    page.valid = not issues and not problems
    page.errors = place_issues(issues, problems, form.keys() if form else {DOCUMENT})
    page.issues = [str(i) for i in issues] + [m for messages in problems.values() for m in messages]


def _render_editor(system: System, text: str, origin: str, page: EditorPage, events: list[Any],
                   status: int = 200) -> tuple[str, int]:
    form = _form_of(text)
    return render_template("console/mapping_edit.html", system=system, text=text, origin=origin, form=form,
                           page=page, events=events, readonly=g.caller["role"] != "admin",
                           field_labels=FIELD_LABELS_ZH,
                           dry_run_default=DRY_RUN_DEFAULT, dry_run_max=DRY_RUN_MAX), status


def _event_choices(key: str) -> list[dict[str, Any]]:
    with _ctx().db.read_session() as s:
        return [{"id": e.id, "external_id": e.external_id, "status": e.status, "kind": e.error_kind}
                for e in s.scalars(_events(key, PREVIEW_CHOICES, quarantined_first=True))]


@bp.get("/systems/<key>/mapping/edit")
@roles(*VIEWERS)
def mapping_edit(key: str) -> tuple[str, int]:
    with _ctx().db.read_session() as s:
        system = _system(s, key)
        text, origin = _source_text(s, system, request.args.get("from"))
    page = EditorPage()
    form = _form_of(text)
    _checked(text, {}, form, page)
    events = _event_choices(key) if g.caller["role"] == "admin" else []
    return _render_editor(system, text, origin, page, events)


@bp.post("/systems/<key>/mapping/edit")
@roles("admin")
def mapping_draft(key: str) -> Response | tuple[str, int]:
    _check_csrf()
    with _ctx().db.read_session() as s:
        system = _system(s, key)
    posted = request.form.to_dict()
    draft = resolve_draft(posted.get("base", ""), posted.get("yaml"), posted)
    page = EditorPage(notice=draft.notice)
    _checked(draft.text, draft.problems, _form_of(draft.text), page)
    action = posted.get("action", "check")
    origin = (posted.get("origin") or _("草稿"))[:100]
    if action in ("save", "activate"):
        if page.valid:
            return _save(system, draft.text, posted.get("comment", "").strip()[:500], action == "activate")
        page.notice = (page.notice + " " + _("草稿有错误，未保存。")).strip()
        return _render_editor(system, draft.text, origin, page, _event_choices(key), 422)
    if action == "preview":
        page.preview = _preview(system, draft.text, request.form.get("event", type=int))
    elif action == "dry_run":
        page.dry_run = _dry_run(system, draft.text, request.form.get("count", DRY_RUN_DEFAULT, type=int))
    return _render_editor(system, draft.text, origin, page, _event_choices(key))


def _save(system: System, text: str, comment: str, activate: bool) -> Response:
    actor, addr = g.caller["name"], request.remote_addr or ""
    with _ctx().db.session() as s:  # the version and its audit entries commit together
        before = mapping_versions.active_version(s, system.key)
        previous = before.version if before else None
        row = mapping_versions.create_version(s, system.key, text, comment=comment, created_by=actor,
                                              activate=activate)
        audit.record(s, actor, "mapping.create", "mapping", system.key, {"active_version": previous},
                     {"version": row.version, "active": row.active, "comment": row.comment,
                      "checksum": row.checksum}, addr)
        if activate:
            audit.record(s, actor, "mapping.activate", "mapping", system.key, {"active_version": previous},
                         {"active_version": row.version}, addr)
        number = row.version
    flash(_("已保存为映射版本 %(version)s并已启用", version=number) if activate
          else _("已保存为映射版本 %(version)s（未启用）", version=number))
    return redirect(url_for("console.mapping_versions_page", key=system.key))


# ----------------------------------------------------------------------------- preview and dry run


def _draft_document(text: str) -> MappingDocument | None:
    try:
        return load_document(text)
    except MappingDocumentError:
        return None


def _decoded(stype: SystemType | None, ev: InboundEvent) -> tuple[Any, str]:
    """The payload as ingestion hands it to the mapping, or the reason it cannot be read."""
    if stype is None:
        return None, "该系统的插件未加载 / plugin not loaded"
    try:
        return stype.decode(ev.payload), ""
    except ValueError as exc:  # MappingError included: the payload itself is unreadable
        return None, f"报文无法解码 / payload cannot be decoded: {exc}"


def _system_type(system: System) -> SystemType | None:
    registry = _ctx().registry
    return registry.get(system.plugin) if system.plugin in registry else None


def _preview(system: System, text: str, event_id: int | None) -> dict[str, Any]:
    doc = _draft_document(text)
    if event_id is None:
        return {"error": _("请先选择一条入站记录")}
    with _ctx().db.read_session() as s:
        ev = s.scalar(_events(system.key, 1, event_id=event_id))
        if ev is None:
            abort(404)
        event = {"id": ev.id, "external_id": ev.external_id, "status": ev.status,
                 "reason": redact_text(ev.error_reason)}
        payload, error = _decoded(_system_type(system), ev)
    if doc is None:
        return {"event": event, "error": _("草稿结构有误，无法预览（见上方错误）")}
    if error:
        return {"event": event, "error": error}
    rows = preview(doc, payload)
    pii = [str(r.value) for r in rows if r.field in PII_FIELDS and r.value] + \
          [str(r.raw_value) for r in rows if r.field in PII_FIELDS and r.raw_value]
    try:
        map_payload(doc, payload)
        outcome = ""
    except MappingError as exc:
        outcome = redact_text(str(exc), pii)
    return {"event": event, "outcome": outcome, "rows": [
        {"field": r.field, "value": shown(r.field, r.value, SHANGHAI, pii), "path": r.path or "",
         "raw": shown(r.field, r.raw_value, SHANGHAI, pii), "transforms": " → ".join(r.transforms),
         "table": r.table or "", "required": r.required, "error": redact_text(r.error or "", pii)} for r in rows]}


def _mapped(doc: MappingDocument | None, payload: Any, decode_error: str) -> tuple[dict[str, Any] | None, str]:
    if decode_error:
        return None, decode_error
    if doc is None:
        return None, _("没有可用的映射文档")
    try:
        return dict(map_payload(doc, payload).fields), ""
    except MappingError as exc:  # PII values are masked by the error itself; free text is not
        return None, redact_text(str(exc))


def _dry_run(system: System, text: str, count: int | None) -> dict[str, Any]:
    count = max(1, min(count or DRY_RUN_DEFAULT, DRY_RUN_MAX))
    draft = _draft_document(text)
    if draft is None:
        return {"error": _("草稿结构有误，无法试运行（见上方错误）")}
    stype = _system_type(system)
    ctx = _ctx()
    with ctx.db.read_session() as s:
        active = mapping_versions.active_version(s, system.key)
        current = mapping_versions.parsed(ctx, active) if active is not None else None
        events = list(s.scalars(_events(system.key, count)))
        changes = [_change(ev, stype, current, draft) for ev in events]
    counts = {kind: sum(1 for c in changes if c.outcome == kind)
              for kind in ("same", "changed", "rescued", "broken", "failing")}
    return {"count": len(changes), "counts": counts, "active": active.version if active else None,
            "changes": [c for c in changes if c.outcome != "same"]}


def _change(ev: InboundEvent, stype: SystemType | None, current: MappingDocument | None,
            draft: MappingDocument) -> RecordChange:
    payload, decode_error = _decoded(stype, ev)
    old, old_error = _mapped(current, payload, decode_error)
    new, new_error = _mapped(draft, payload, decode_error)
    outcome, differences = compare_records(old, new, SHANGHAI)
    return RecordChange(ev.id, ev.external_id, ev.status, outcome, differences, old_error, new_error)


nav("console.mapping_index", "映射配置", *VIEWERS)
