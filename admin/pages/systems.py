"""Console pages for the connected department systems and what is stuck between them and the hub.

* 系统: every system's link health (refreshed every 10 s), the installed plugins, and the totals of
  quarantined inbound payloads and dead outbound messages; admins add and edit systems, test the
  connection for real, reset a circuit breaker and start a reconciliation.
* 隔离区与重放: quarantined inbound payloads (reporter identity masked), replayed after a mapping fix.
* 外发队列: outbound messages by status, dead letters replayed by admins.

Systems are not scoped (everyone who may open the page sees every system); anything tied to a case
is: outbound rows of cases outside the caller's jurisdiction are hidden (a 404 when named), and a
quarantined payload, which belongs to no case yet, is shown to unscoped accounts only. Credentials
are write-only: an empty field keeps the stored value, and no value ever reaches a page or the audit
log. Every change is audited.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import yaml
from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from admin.views import _check_csrf, _ctx, bp, nav, roles
from hub.facade import SystemType, error_kind
from hub.models import (
    Case,
    CircuitBreaker,
    InboundEvent,
    InboundStatus,
    OutboundStatus,
    System,
    Ticket,
    utcnow,
)
from hub.plugin.manager import describe_plugins
from hub.services import audit, circuit, mapping_versions, outbox
from hub.services.health import system_health
from hub.services.reconcile import reconcile_system
from hub.services.redact import redact_text
from hub.services.systems import (
    SECRET_PLACEHOLDER,
    SystemNotFound,
    connector_for,
    export_system,
    get_system,
    list_systems,
    system_config,
    upsert_system,
)
from mappings.errors import MappingDocumentError
from mappings.yamlio import load_yaml

VIEWERS = ("admin", "operator", "auditor")
INBOUND_VIEWERS = ("admin", "auditor")
PER_PAGE = 50
REPLAY_LIMIT = 500  # one click replays at most this many (each is a full ingestion)
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
RESERVED_KEYS = frozenset({"new"})  # /console/systems/new is the form
POLL_MIN_S, POLL_MAX_S = 5, 86400
SECRET_MAX = 2000

HEALTH_LABELS = {"ok": _l("正常"), "degraded": _l("异常"), "down": _l("中断"), "disabled": _l("已停用")}
CIRCUIT_LABELS = {"closed": _l("闭合（正常）"), "open": _l("断开（暂停外发）"), "half_open": _l("半开（试探中）")}
OUTBOUND_STATUSES = {"dead": _l("死信"), "failed": _l("待重试"), "pending": _l("待发送"), "sent": _l("已送达"),
                     "all": _l("全部")}
OPERATION_LABELS = {"status": _l("状态同步"), "create": _l("建档"), "note": _l("补充说明"), "merge": _l("合并")}
ERROR_KINDS = {"transient": _l("暂时性故障"), "permanent": _l("对方拒绝"), "mapping": _l("映射错误"),
               "schema": _l("报文格式错误")}
INBOUND_RESULTS = {"processed": _l("已处理"), "quarantined": _l("仍在隔离区"), "stale": _l("旧版本（无变化）")}


# ----------------------------------------------------------------------------- shared look-ups


def _system(s: Session, key: str) -> System:
    try:
        return get_system(s, key)
    except SystemNotFound:
        abort(404)


def _secrets_of(system: System) -> list[str]:
    """The stored credential values: masked out of anything a system answered."""
    return [str(v) for v in system_config(_ctx(), system).credentials.values()]


def _actor() -> tuple[str, str]:
    return str(g.caller["name"]), request.remote_addr or ""


def _ids(name: str = "ids") -> list[int]:
    """Posted ids (checkboxes); anything that is not a positive number is refused."""
    values = request.form.getlist(name)
    if not all(v.isdigit() and 0 < int(v) <= 2147483647 for v in values):
        abort(400)
    return sorted({int(v) for v in values})


def _quarantined_query() -> Select[Any]:
    """Quarantined events the caller may see: a quarantined payload belongs to no case yet, so a
    scoped account sees only those already linked to a case in its jurisdiction."""
    q = select(InboundEvent).where(InboundEvent.status == InboundStatus.QUARANTINED)
    scope = g.caller["scope"]
    if scope:
        q = (q.join(Ticket, Ticket.id == InboundEvent.ticket_id).join(Case, Case.id == Ticket.case_id)
             .where(Case.grid_code.startswith(scope)))
    return q



# ----------------------------------------------------------------------------- 系统: health and plugins


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """A lag in words a person reads at a glance: 45 秒, 12 分, 3 小时 5 分."""
    if not seconds:
        return _("%(n)s 秒", n=0)
    s = int(seconds)
    if s < 60:
        return _("%(n)s 秒", n=s)
    if s < 3600:
        return _("%(n)s 分", n=s // 60)
    if s < 86400:
        return _("%(h)s 小时 %(m)s 分", h=s // 3600, m=s % 3600 // 60)
    return _("%(d)s 天 %(h)s 小时", d=s // 86400, h=s % 86400 // 3600)


def _plugins() -> list[dict[str, Any]]:
    ctx = _ctx()
    rows = describe_plugins(ctx.pm)
    for row in rows:
        row["system_types"] = [t.key for t in ctx.registry.all() if ctx.registry.owner(t.key) == row["name"]]
    return rows


def _totals(s: Session) -> dict[str, int]:
    """What the caller can act on: counted as the inbound and outbound pages will list it."""
    quarantined = s.scalar(select(func.count()).select_from(_quarantined_query().subquery())) or 0
    dead, _ = outbox.list_messages(s, OutboundStatus.DEAD, per_page=1, scope=str(g.caller["scope"] or ""))
    return {"quarantined": quarantined, "dead": dead}


def _systems_page(test: dict[str, Any] | None = None) -> str:
    with _ctx().db.read_session() as s:
        rows = [(system, system_health(s, system)) for system in list_systems(s)]
        totals = _totals(s)
    return render_template("console/systems.html", rows=rows, plugins=_plugins(), totals=totals, test=test,
                           updated_at=utcnow(), health_labels=HEALTH_LABELS, circuit_labels=CIRCUIT_LABELS,
                           can_edit=g.caller["role"] == "admin",
                           can_see_inbound=g.caller["role"] in INBOUND_VIEWERS)


@bp.get("/systems")
@roles(*VIEWERS)
def systems() -> str:
    return _systems_page()


@bp.post("/systems/<key>/test")
@roles("admin")
def system_test(key: str) -> str:
    """Call the real system with the stored credentials (as ``POST /api/v1/systems/{key}/test-connection``)."""
    _check_csrf()
    ctx = _ctx()
    with ctx.db.read_session() as s:
        system = _system(s, key)
        connector, secrets, name = connector_for(ctx, system), _secrets_of(system), system.name
    try:
        report = connector.test_connection()
        ok, message, detail = report.ok, report.message, dict(report.detail)
    except Exception as exc:  # the system's answer, classified, is what the admin asked for
        ok, message, detail = False, f"{type(exc).__name__}: {exc}", {"kind": error_kind(exc)}
    return _systems_page(test={"key": key, "name": name, "ok": ok, "message": redact_text(str(message), secrets),
                               "detail": {str(k): redact_text(str(v), secrets) for k, v in detail.items()}})


# ----------------------------------------------------------------------------- add / edit a system


def _plugin_choices() -> list[SystemType]:
    return sorted(_ctx().registry.all(), key=lambda t: t.key)


def _system_type(plugin: str) -> SystemType | None:
    registry = _ctx().registry
    return registry.get(plugin) if plugin and plugin in registry else None


def _form_of(exported: dict[str, Any]) -> dict[str, Any]:
    settings = exported["settings"]
    return {"key": exported["key"], "plugin": exported["plugin"], "name": exported["name"],
            "base_url": exported["base_url"], "poll_interval_s": str(exported["poll_interval_s"]),
            "enabled": exported["enabled"],
            "settings": yaml.safe_dump(settings, allow_unicode=True, sort_keys=False) if settings else ""}


def _posted_form() -> dict[str, Any]:
    form: dict[str, Any] = {k: request.form.get(k, "").strip()
                            for k in ("key", "plugin", "name", "base_url", "poll_interval_s")}
    form["settings"] = request.form.get("settings", "")
    form["enabled"] = "enabled" in request.form
    return form


def _parse_settings(text: str) -> dict[str, Any]:
    """YAML or JSON (a YAML subset) object; stored as JSON, so it must be plain data."""
    if not text.strip():
        return {}
    try:
        value = load_yaml(text)
    except MappingDocumentError as exc:
        raise ValueError(_("格式错误：%(error)s", error=exc)) from exc
    if not isinstance(value, dict):
        raise ValueError(_("设置须为键值对（YAML 映射或 JSON 对象）"))
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(_("设置只能包含文字、数字、真假值、列表和键值对（日期请写成带引号的文字）")) from exc
    return value


def _check_base_url(url: str) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _("须为 http:// 或 https:// 开头的完整地址")
    if parts.username or parts.password:
        return _("地址中不能含用户名或密码，请填写在下方凭据字段")
    return "" if len(url) <= 500 else _("地址过长（最多 500 字符）")


def _validated(form: dict[str, Any], stype: SystemType, new: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``upsert_system`` data for the posted form, and the errors by field (Chinese)."""
    errors: dict[str, str] = {}
    if new:
        if not KEY_RE.match(form["key"]) or form["key"] in RESERVED_KEYS:
            errors["key"] = _("标识须为 1–64 位小写字母、数字、下划线或连字符，以字母或数字开头（不能为 new）")
        else:
            with _ctx().db.read_session() as s:
                if s.scalar(select(System.id).where(System.key == form["key"])) is not None:
                    errors["key"] = _("标识 %(key)s 已被使用", key=form["key"])
    if not form["name"] or len(form["name"]) > 200:
        errors["name"] = _("请填写名称（最多 200 字）")
    if problem := _check_base_url(form["base_url"]):
        errors["base_url"] = problem
    interval = int(form["poll_interval_s"]) if form["poll_interval_s"].isdigit() else 0
    if not POLL_MIN_S <= interval <= POLL_MAX_S:
        errors["poll_interval_s"] = _("须为 %(min)s–%(max)s 之间的整数（秒）", min=POLL_MIN_S, max=POLL_MAX_S)
    settings: dict[str, Any] = {}
    try:
        settings = _parse_settings(form["settings"])
    except ValueError as exc:
        errors["settings"] = str(exc)
    for name in stype.credential_fields:
        if len(request.form.get(f"cred-{name}", "")) > SECRET_MAX:
            errors[f"cred-{name}"] = _("过长（最多 %(n)s 字符）", n=SECRET_MAX)
    data = {"name": form["name"], "base_url": form["base_url"], "poll_interval_s": interval,
            "enabled": form["enabled"], "settings": settings}
    return data, errors


def _credentials(stype: SystemType, stored: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Every stored credential kept (the placeholder) unless the admin typed a new value; returns
    the credentials for ``upsert_system`` and the names of the fields given a new value."""
    typed = {name: request.form.get(f"cred-{name}", "") for name in stype.credential_fields}
    changed = sorted(name for name, value in typed.items() if value)
    return {**dict.fromkeys(stored, SECRET_PLACEHOLDER), **{n: typed[n] for n in changed}}, changed


def _render_form(form: dict[str, Any], stype: SystemType | None, errors: dict[str, str], *, new: bool,
                 stored: dict[str, str] | None = None, reconcile: dict[str, Any] | None = None,
                 circuit_state: str = "") -> tuple[str, int]:
    return render_template("console/systems_edit.html", form=form, stype=stype, errors=errors, new=new,
                           stored=stored or {}, plugins=_plugin_choices(), reconcile=reconcile,
                           circuit_state=circuit_state, circuit_labels=CIRCUIT_LABELS,
                           webhook_url=f"{_ctx().config.public_url}/hooks/{form['key']}"
                           if stype and stype.push and not new else ""), 422 if errors else 200


@bp.get("/systems/new")
@roles("admin")
def system_new() -> tuple[str, int]:
    """Step one picks the plugin (its credential fields make the form), step two is the form."""
    plugin = request.args.get("plugin", "")
    stype = _system_type(plugin)
    form = {"key": "", "plugin": plugin, "name": "", "base_url": "", "poll_interval_s": "30", "enabled": True,
            "settings": ""}
    return _render_form(form, stype, {}, new=True)


@bp.post("/systems/new")
@roles("admin")
def system_create() -> Response | tuple[str, int]:
    _check_csrf()
    form = _posted_form()
    stype = _system_type(form["plugin"])
    if stype is None:
        return _render_form(form, None, {"plugin": _("请选择插件类型")}, new=True)
    data, errors = _validated(form, stype, new=True)
    if errors:
        return _render_form(form, stype, errors, new=True)
    credentials, changed = _credentials(stype, {})
    return _save(form["key"], stype, {**data, "credentials": credentials}, changed, new=True)


@bp.get("/systems/<key>")
@roles("admin")
def system_edit(key: str) -> tuple[str, int]:
    return _edit_page(key)


def _edit_page(key: str, errors: dict[str, str] | None = None, form: dict[str, Any] | None = None,
               reconcile: dict[str, Any] | None = None) -> tuple[str, int]:
    ctx = _ctx()
    with ctx.db.read_session() as s:
        system = _system(s, key)
        exported = export_system(ctx, system)
        state = circuit.state_of(s.get(CircuitBreaker, key), utcnow())
    return _render_form(form or _form_of(exported), _system_type(system.plugin), errors or {}, new=False,
                        stored=exported["credentials"], reconcile=reconcile, circuit_state=state)


@bp.post("/systems/<key>")
@roles("admin")
def system_update(key: str) -> Response | tuple[str, int]:
    _check_csrf()
    ctx = _ctx()
    with ctx.db.read_session() as s:
        system = _system(s, key)
        stored = export_system(ctx, system)["credentials"]
        stype = _system_type(system.plugin)
    if stype is None:
        abort(409)  # the plugin is not installed: nothing here could be validated
    form = {**_posted_form(), "key": key, "plugin": system.plugin}  # neither is changed by this form
    data, errors = _validated(form, stype, new=False)
    if errors:
        return _edit_page(key, errors, form)
    credentials, changed = _credentials(stype, stored)
    return _save(key, stype, {**data, "credentials": credentials}, changed, new=False)


def _save(key: str, stype: SystemType, data: dict[str, Any], changed: list[str], *, new: bool) -> Response:
    """Store the system and its audit entry in one transaction (before → after as exported:
    credentials masked; ``credentials_set`` names the fields given a new value, never the value)."""
    ctx = _ctx()
    actor, addr = _actor()
    with ctx.db.session() as s:
        existing = s.scalar(select(System).where(System.key == key))
        if new and existing is not None:
            abort(409)  # created by someone else a moment ago
        before = export_system(ctx, existing) if existing is not None else None
        system = upsert_system(ctx, s, {"key": key, "plugin": stype.key, **data})
        if new:
            mapping_versions.ensure_default_mapping(ctx, s, system)
        after = {**export_system(ctx, system), "new_values_for": changed}
        audit.record(s, actor, "system.create" if new else "system.update", "system", key, before, after, addr)
    flash(_("已新增系统 %(key)s", key=key) if new else _("已保存系统 %(key)s", key=key))
    return redirect(url_for("console.system_edit", key=key))


@bp.post("/systems/<key>/circuit/reset")
@roles("admin")
def system_circuit_reset(key: str) -> Response:
    """Close the breaker by hand: the admin knows the system is back."""
    _check_csrf()
    actor, addr = _actor()
    with _ctx().db.session() as s:
        _system(s, key)
        before = circuit.state_of(s.get(CircuitBreaker, key), utcnow())
        circuit.reset(s, key)
        audit.record(s, actor, "system.circuit_reset", "system", key, {"circuit": before}, {"circuit": "closed"},
                     addr)
    flash(_("断路器已复位（之前：%(before)s），等待中的外发消息将在下一轮投递",
            before=CIRCUIT_LABELS.get(before, before)))
    return redirect(url_for("console.system_edit", key=key))


@bp.post("/systems/<key>/reconcile")
@roles("admin")
def system_reconcile(key: str) -> tuple[str, int]:
    """Re-read the system's records of unfinished cases now and show the drift found."""
    _check_csrf()
    ctx = _ctx()
    with ctx.db.read_session() as s:
        secrets = _secrets_of(_system(s, key))
    found = reconcile_system(ctx, key)
    report = found.as_dict() | {"errors": [redact_text(e, secrets) for e in found.errors]}
    actor, addr = _actor()
    with ctx.db.session() as s:
        audit.record(s, actor, "system.reconcile", "system", key, None,
                     {k: report[k] for k in ("checked", "stored", "ok")}, addr)
    return _edit_page(key, reconcile=report)


nav("console.systems", "系统", *VIEWERS)
