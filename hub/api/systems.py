"""Systems, plugins, mapping versions."""

from __future__ import annotations

import logging
from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.api.auth import ADMINS, READERS, audited, fail, hub_ctx, load_caller, require_role
from hub.api.schemas import (
    ConnectionReportSchema,
    MappingCreateArgs,
    MappingVersionSchema,
    PluginSchema,
    ReconcileArgs,
    ReconcileReportSchema,
    SystemHealthSchema,
    SystemSchema,
)
from hub.facade import error_kind
from hub.models import CircuitBreaker, InboundEvent, MappingVersion, SyncLog, System, Ticket, utcnow
from hub.plugin.manager import describe_plugins
from hub.services import circuit, mapping_versions
from hub.services.health import system_health
from hub.services.reconcile import reconcile_system
from hub.services.systems import SystemNotFound, connector_for, get_system, list_systems

log = logging.getLogger(__name__)

blp = Blueprint("systems", __name__, url_prefix="/api/v1", description="Department systems and plugins")
blp.before_request(load_caller)


def _system_row(s: Session, system: System) -> dict[str, Any]:
    ctx = hub_ctx()
    stype = ctx.registry.get(system.plugin) if system.plugin in ctx.registry else None
    active = s.scalar(select(MappingVersion.version).where(MappingVersion.system_key == system.key,
                                                          MappingVersion.active.is_(True)))
    last = s.scalar(select(SyncLog).where(SyncLog.system_key == system.key)
                    .order_by(SyncLog.id.desc()).limit(1))
    counts = dict(s.execute(select(InboundEvent.status, func.count(InboundEvent.id))
                            .where(InboundEvent.system_key == system.key)
                            .group_by(InboundEvent.status)).all())
    counts["tickets"] = s.scalar(select(func.count(Ticket.id)).where(Ticket.system_key == system.key)) or 0
    return {
        "key": system.key, "plugin": system.plugin, "name": system.name, "base_url": system.base_url,
        "enabled": system.enabled, "poll_interval_s": system.poll_interval_s,
        "push": bool(stype and stype.push), "pull": bool(stype and stype.pull),
        "webhook_url": f"{ctx.config.public_url}/hooks/{system.key}" if stype and stype.push else None,
        "credential_fields": list(stype.credential_fields) if stype else [],
        "active_mapping_version": active,
        "last_poll": None if last is None else {
            "ok": last.ok, "at": last.finished_at.isoformat(), "detail": last.detail,
            "error_kind": last.error_kind},
        "counts": counts,
    }


@blp.route("/systems")
class SystemList(MethodView):
    @require_role(*READERS)
    @blp.response(200, SystemSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """Connected systems (credentials are write-only and never returned)."""
        with hub_ctx().db.read_session() as s:
            return [_system_row(s, x) for x in list_systems(s)]


@blp.route("/systems/<text:key>")
class SystemDetail(MethodView):
    @require_role(*READERS)
    @blp.response(200, SystemSchema)
    @blp.alt_response(404, description="no such system")
    def get(self, key: str) -> dict[str, Any]:
        """One system."""
        with hub_ctx().db.read_session() as s:
            system = s.scalar(select(System).where(System.key == key))
            if system is None:
                fail(404, f"system {key!r} not found")
            return _system_row(s, system)


@blp.route("/systems/health")
class SystemHealthList(MethodView):
    @require_role(*READERS)
    @blp.response(200, SystemHealthSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """Link health of every system: backlog, lag, error rate, last success, circuit state."""
        with hub_ctx().db.read_session() as s:
            return [system_health(s, x) for x in list_systems(s)]


@blp.route("/systems/<text:key>/health")
class SystemHealth(MethodView):
    @require_role(*READERS)
    @blp.response(200, SystemHealthSchema)
    @blp.alt_response(404, description="no such system")
    def get(self, key: str) -> dict[str, Any]:
        """One system's link health: outbound backlog and lag, dead letters, delivery error rate
        over the last hour, last success each way, quarantined payloads, circuit state."""
        with hub_ctx().db.read_session() as s:
            system = s.scalar(select(System).where(System.key == key))
            if system is None:
                fail(404, f"system {key!r} not found")
            return system_health(s, system)


@blp.route("/systems/<text:key>/circuit/reset")
class SystemCircuitReset(MethodView):
    @require_role(*ADMINS)
    @blp.response(200, SystemHealthSchema)
    @blp.alt_response(404, description="no such system")
    def post(self, key: str) -> dict[str, Any]:
        """Close the system's circuit breaker by hand (the admin knows it is back); its waiting
        effects go out on the next delivery pass."""
        ctx = hub_ctx()
        with ctx.db.session() as s:
            system = s.scalar(select(System).where(System.key == key))
            if system is None:
                fail(404, f"system {key!r} not found")
            before = circuit.state_of(s.get(CircuitBreaker, key), utcnow())
            circuit.reset(s, key)
            audited("system.circuit_reset", "system", key, {"circuit": before}, {"circuit": "closed"}, s)
            log.warning("circuit of %s reset by %s", key, g.caller["name"])
        with ctx.db.read_session() as s:
            return system_health(s, get_system(s, key))


@blp.route("/systems/<text:key>/reconcile")
class SystemReconcile(MethodView):
    @require_role(*ADMINS)
    @blp.arguments(ReconcileArgs, location="query")
    @blp.response(200, ReconcileReportSchema)
    @blp.alt_response(404, description="no such system")
    def post(self, args: dict[str, Any], key: str) -> dict[str, Any]:
        """Re-read the system's linked records of unfinished cases now (after an outage) and
        report drift: records it no longer knows, dead-lettered writes it does not show."""
        ctx = hub_ctx()
        with ctx.db.read_session() as s:
            if s.scalar(select(System.id).where(System.key == key)) is None:
                fail(404, f"system {key!r} not found")
        log.warning("reconcile of %s requested by %s", key, g.caller["name"])
        report = reconcile_system(ctx, key, limit=args["limit"]).as_dict()
        audited("system.reconcile", "system", key, None,
                {k: report[k] for k in ("checked", "stored", "ok")})
        return report


@blp.route("/systems/<text:key>/test-connection")
class SystemTest(MethodView):
    @require_role(*ADMINS)
    @blp.response(200, ConnectionReportSchema)
    @blp.alt_response(404, description="no such system")
    def post(self, key: str) -> dict[str, Any]:
        """Call the real system with the stored credentials and report its answer."""
        ctx = hub_ctx()
        with ctx.db.read_session() as s:
            system = s.scalar(select(System).where(System.key == key))
            if system is None:
                fail(404, f"system {key!r} not found")
            connector = connector_for(ctx, system)
        try:
            report = connector.test_connection()
        except Exception as exc:  # the system's answer, classified; shown to the admin
            return {"ok": False, "message": f"{type(exc).__name__}: {exc}", "detail": {"kind": error_kind(exc)}}
        return {"ok": report.ok, "message": report.message, "detail": dict(report.detail)}


@blp.route("/plugins")
class PluginList(MethodView):
    @require_role(*READERS)
    @blp.response(200, PluginSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """Installed plugins, their versions, hooks and system types."""
        ctx = hub_ctx()
        rows = describe_plugins(ctx.pm)
        for row in rows:
            row["system_types"] = [t.key for t in ctx.registry.all() if ctx.registry.owner(t.key) == row["name"]]
        return rows


@blp.route("/systems/<text:key>/mappings")
class MappingVersions(MethodView):
    @require_role(*ADMINS)
    @blp.response(200, MappingVersionSchema(many=True))
    def get(self, key: str) -> list[MappingVersion]:
        """Every mapping version of a system, newest first."""
        with hub_ctx().db.read_session() as s:
            return mapping_versions.list_versions(s, key)

    @require_role(*ADMINS)
    @blp.arguments(MappingCreateArgs)
    @blp.response(201, MappingVersionSchema)
    @blp.alt_response(404, description="no such system")
    @blp.alt_response(422, description="the document is invalid; every issue is listed")
    def post(self, args: dict[str, Any], key: str) -> MappingVersion:
        """Store a new mapping version (validated), optionally activating it."""
        ctx = hub_ctx()
        with ctx.db.session() as s:
            try:
                get_system(s, key)
            except SystemNotFound:
                fail(404, f"system {key!r} not found")
            try:
                before = mapping_versions.active_version(s, key)
                row = mapping_versions.create_version(s, key, args["document"], comment=args["comment"],
                                                      created_by=str(g.caller["name"]), activate=args["activate"])
                audited("mapping.create", "mapping", key,
                        {"active_version": before.version if before else None},
                        {"version": row.version, "active": row.active, "comment": row.comment,
                         "checksum": row.checksum}, s)
                return row
            except mapping_versions.MappingInvalid as exc:
                fail(422, "mapping document is invalid",
                      errors={"document": [str(i) for i in exc.issues]})
        raise AssertionError("unreachable")


@blp.route("/systems/<text:key>/mappings/<int(max=2147483647):version>/activate")
class MappingActivate(MethodView):
    @require_role(*ADMINS)
    @blp.response(200, MappingVersionSchema)
    @blp.alt_response(404, description="no such version")
    def post(self, key: str, version: int) -> MappingVersion:
        """Make a version the active one (also a rollback)."""
        with hub_ctx().db.session() as s:
            row = s.scalar(select(MappingVersion).where(MappingVersion.system_key == key,
                                                        MappingVersion.version == version))
            if row is None:
                fail(404, f"mapping version {version} of {key!r} not found")
            before = mapping_versions.active_version(s, key)
            mapping_versions.activate_version(s, row)
            audited("mapping.activate", "mapping", key, {"active_version": before.version if before else None},
                    {"active_version": row.version}, s)
            return row
