"""Grid workers' reports: validation, idempotency, jurisdiction, nearby cases (hub.services.reports)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from hub.context import HubContext
from hub.facade import GRID_REPORT_TYPE
from hub.gridlayer import GridLayer
from hub.models import Case, InboundEvent, InboundStatus, System, Ticket, User
from hub.models.work import Attachment, GridReport
from hub.services import reports
from hub.services.reports import Photo, ReportError, submit_report
from mappings import load_document, validate
from mappings.documents import default_document_path
from mappings.taxonomy import load_taxonomy
from tests.support.console import make_user

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 32
WEBP = b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 16
GRID_A = "310104004023018"
GRID_B = "310104005000001"


def _square(code: str, lng: float, lat: float, size: float = 0.01) -> dict[str, Any]:
    ring = [[lng, lat], [lng + size, lat], [lng + size, lat + size], [lng, lat + size], [lng, lat]]
    return {"type": "Feature", "properties": {"code": code}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


@pytest.fixture
def ctx(hub_ctx: HubContext) -> HubContext:
    hub_ctx.cache["grid_layer"] = GridLayer.from_geojson(
        {"type": "FeatureCollection", "features": [_square(GRID_A, 121.40, 31.20), _square(GRID_B, 121.41, 31.20)]})
    return hub_ctx


def _user(ctx: HubContext, name: str = "worker", scope: str = "310104004") -> User:
    make_user(ctx, name, "grid_worker", scope)
    with ctx.db.read_session() as s:
        user = s.scalar(select(User).where(User.username == name))
        assert user is not None
        s.expunge(user)
        return user


def _submit(ctx: HubContext, user: User, **kw: Any) -> reports.ReportResult:
    args: dict[str, Any] = {"client_id": "c-1", "category": "group_rental", "text": "六楼隔成十间出租",
                            "lat": 31.205, "lng": 121.405, "location_source": "gps", "photos": [], "attach_to": ""}
    args.update(kw)
    return submit_report(ctx, user, **args)


def test_a_report_opens_a_case_through_the_inbox(ctx: HubContext) -> None:
    user = _user(ctx)
    result = _submit(ctx, user, photos=[Photo(PNG, "image/png", "a.png")])
    assert result.outcome == "new_case" and not result.repeat
    assert result.case_number.startswith("GH")
    with ctx.db.read_session() as s:
        system = s.scalar(select(System).where(System.key == "grid"))
        assert system is not None and system.plugin == GRID_REPORT_TYPE and system.enabled
        ev = s.get(InboundEvent, result.inbound_id)
        assert ev is not None and ev.system_key == "grid" and ev.status == InboundStatus.PROCESSED
        raw = json.loads(ev.payload)
        assert raw["reporter"] == str(user.id) and "worker" not in ev.payload  # the id, never a name
        assert raw["category"] == "group_rental" and raw["attachments"] == result.attachment_ids
        ticket = s.get(Ticket, result.ticket_id)
        assert ticket is not None and ticket.system_type == GRID_REPORT_TYPE and ticket.grid_code == GRID_A
        assert ticket.category == "group_rental" and ticket.status == "REPORTED"
        case = s.get(Case, result.case_id)
        assert case is not None and case.grid_code == GRID_A and case.category == "group_rental"
        photo = s.scalar(select(Attachment).where(Attachment.report_id == result.report.id))
        assert photo is not None and photo.mime == "image/png" and photo.case_id == case.id and photo.data == PNG


def test_a_repeat_of_the_same_draft_returns_the_first_result(ctx: HubContext) -> None:
    user = _user(ctx)
    first = _submit(ctx, user)
    again = _submit(ctx, user, text="changed on the phone meanwhile")
    assert again.repeat and again.report.id == first.report.id and again.case_id == first.case_id
    other = _submit(ctx, _user(ctx, "worker2"))  # the same client id from someone else is their own
    assert not other.repeat and other.report.id != first.report.id
    with ctx.db.read_session() as s:
        assert len(s.scalars(select(GridReport)).all()) == 2
        assert len(s.scalars(select(InboundEvent).where(InboundEvent.system_key == "grid")).all()) == 2


@pytest.mark.parametrize(("change", "field"), [
    ({"category": "policy_inquiry"}, "category"),
    ({"category": "nonsense"}, "category"),
    ({"text": "  "}, "text"),
    ({"text": "x" * 501}, "text"),
    ({"lat": 1.0}, "lat"),
    ({"lng": 2.0, "lat": 48.0}, "lat"),
    ({"lat": float("nan")}, "lat"),
    ({"location_source": "guess"}, "location_source"),
    ({"client_id": ""}, "client_id"),
    ({"photos": [Photo(PNG)] * 5}, "photos"),
    ({"photos": [Photo(b"GIF89a" + b"\0" * 10, "image/png")]}, "photos"),
    ({"photos": [Photo(b"")]}, "photos"),
    ({"photos": [Photo(PNG + b"\0" * (5 * 1024 * 1024))]}, "photos"),
])
def test_bad_input_is_refused_with_the_field(ctx: HubContext, change: dict[str, Any], field: str) -> None:
    with pytest.raises(ReportError) as err:
        _submit(ctx, _user(ctx), **change)
    assert err.value.field == field and err.value.status == 400
    with ctx.db.read_session() as s:
        assert s.scalars(select(GridReport)).all() == []


def test_jpeg_png_webp_are_recognised_by_their_bytes() -> None:
    assert [reports.sniff_image(b) for b in (JPEG, PNG, WEBP, b"<svg>")] == [
        "image/jpeg", "image/png", "image/webp", ""]


def test_a_point_outside_the_jurisdiction_is_refused(ctx: HubContext) -> None:
    user = _user(ctx)
    with pytest.raises(ReportError) as err:
        _submit(ctx, user, lng=121.415)  # grid B, another street
    assert err.value.status == 403 and GRID_B in str(err.value)
    with pytest.raises(ReportError) as err:
        _submit(ctx, user, lng=121.50)  # in China, outside every grid
    assert err.value.status == 403 and "outside every grid" in str(err.value)
    assert _submit(ctx, _user(ctx, "chief", scope=""), lng=121.415).outcome == "new_case"


def test_attach_to_joins_the_case_and_its_photo_goes_with_it(ctx: HubContext) -> None:
    user = _user(ctx)
    first = _submit(ctx, user, client_id="a", category="garbage_exposed", text="垃圾堆在路口")
    second = _submit(ctx, user, client_id="b", category="construction_waste", text="还有渣土",
                     lat=31.2051, lng=121.4051, attach_to=first.case_number, photos=[Photo(JPEG)])
    assert second.outcome == "attached" and second.case_id == first.case_id
    with ctx.db.read_session() as s:
        photo = s.get(Attachment, second.attachment_ids[0])
        assert photo is not None and photo.case_id == first.case_id
        ticket = s.get(Ticket, second.ticket_id)
        assert ticket is not None and [r.ref_external_id for r in ticket.references] == [first.case_number]


def test_attach_to_an_unknown_foreign_or_finished_case_is_refused(ctx: HubContext) -> None:
    user = _user(ctx)
    with pytest.raises(ReportError) as err:
        _submit(ctx, user, attach_to="GH-nope")
    assert err.value.status == 404
    other = _submit(ctx, _user(ctx, "chief", scope=""), client_id="o", lng=121.415)
    with pytest.raises(ReportError) as err:  # a case outside the worker's jurisdiction is unknown to them
        _submit(ctx, user, attach_to=other.case_number)
    assert err.value.status == 404
    mine = _submit(ctx, user, client_id="m")
    with ctx.db.session() as s:
        case = s.get(Case, mine.case_id)
        assert case is not None
        case.status = "CLOSED"
    with pytest.raises(ReportError) as err:
        _submit(ctx, user, client_id="n", attach_to=mine.case_number)
    assert err.value.status == 409


def test_a_report_the_mapping_refuses_is_quarantined_not_lost(ctx: HubContext) -> None:
    from hub.services.mapping_versions import create_version

    user = _user(ctx)
    _submit(ctx, user, client_id="first")  # installs the default mapping
    text = default_document_path("grid_report").read_text(encoding="utf-8")
    broken = text.replace("    group_rental: group_rental\n", "", 1).replace(
        "    category: [illegal_construction, group_rental, ", "    category: [illegal_construction, ", 1)
    assert broken.count("group_rental") == text.count("group_rental") - 3
    with ctx.db.session() as s:
        create_version(s, "grid", broken, comment="drop 群租", activate=True)
    result = _submit(ctx, user, client_id="second")
    assert result.outcome == "quarantined" and result.case_id is None and result.inbound_id is not None
    assert "group_rental" in result.reason
    with ctx.db.read_session() as s:
        ev = s.get(InboundEvent, result.inbound_id)
        assert ev is not None and ev.status == InboundStatus.QUARANTINED


def test_nearby_open_cases_are_compatible_open_and_nearest_first(ctx: HubContext) -> None:
    user = _user(ctx, scope="")
    near = _submit(ctx, user, client_id="1", category="garbage_exposed", text="a", lat=31.2050, lng=121.4050)
    nearer = _submit(ctx, user, client_id="2", category="construction_waste", text="b", lat=31.2051, lng=121.4051)
    _submit(ctx, user, client_id="3", category="noise_construction", text="c", lat=31.2051, lng=121.4051)
    _submit(ctx, user, client_id="4", category="garbage_exposed", text="d", lat=31.2090, lng=121.4050)  # ~440 m
    done = _submit(ctx, user, client_id="5", category="garbage_exposed", text="e", lat=31.2052, lng=121.4052)
    with ctx.db.session() as s:
        case = s.get(Case, done.case_id)
        assert case is not None
        case.status = "RESOLVED"
    with ctx.db.read_session() as s:
        found = reports.nearby_open_cases(s, lat=31.20512, lng=121.40512, category="garbage_exposed", scope="")
        assert [c.id for c, _ in found] == [nearer.case_id, near.case_id]
        assert found[0][1] < found[1][1] < 200
        assert reports.nearby_open_cases(s, lat=31.20512, lng=121.40512, category="garbage_exposed",
                                         scope=GRID_B) == []


def test_the_short_list_and_the_mapping_document_agree() -> None:
    doc = load_document(default_document_path("grid_report").read_text(encoding="utf-8"))
    assert validate(doc) == []
    assert sorted(doc.code_tables["category"]) == sorted(reports.SHORT_LIST)
    assert set(reports.SHORT_LIST) <= load_taxonomy().codes
    assert {"illegal_construction", "group_rental", "garbage_exposed"} <= set(reports.SHORT_LIST)
    assert 10 <= len(reports.SHORT_LIST) <= 16


def test_the_grid_report_type_is_built_in_and_never_delivered_to(hub_ctx: HubContext) -> None:
    stype = hub_ctx.registry.get(GRID_REPORT_TYPE)
    assert stype.operations == () and not stype.pull and not stype.push
    assert hub_ctx.registry.owner(GRID_REPORT_TYPE) == "hub.plugin.builtin_systems"


def test_reconciling_the_grid_system_is_refused_not_reported_missing(ctx: HubContext) -> None:
    from hub.services.reconcile import reconcile_system

    _submit(ctx, _user(ctx))
    report = reconcile_system(ctx, "grid")
    assert report.checked == 0 and report.missing == [] and "nothing to re-read" in report.errors[0]


def test_nearby_with_an_unknown_category_finds_nothing(ctx: HubContext) -> None:
    _submit(ctx, _user(ctx, scope=""), category="garbage_exposed")
    with ctx.db.read_session() as s:
        for category in ("nonsense", "bad\x00", ""):
            assert reports.nearby_open_cases(s, lat=31.205, lng=121.405, category=category, scope="") == []


def test_photos_of_a_merged_case_show_on_the_case_it_went_into(ctx: HubContext) -> None:
    user = _user(ctx, scope="")
    a = _submit(ctx, user, client_id="a", photos=[Photo(PNG)])
    b = _submit(ctx, user, client_id="b", lng=121.415, photos=[Photo(JPEG)])  # grid B
    with ctx.db.session() as s:
        merged = s.get(Case, a.case_id)
        assert merged is not None
        merged.merged_into_id = b.case_id
    with ctx.db.read_session() as s:
        assert [p["id"] for p in reports.case_photos(s, b.case_id)] == a.attachment_ids + b.attachment_ids
        assert [p["id"] for p in reports.case_photos(s, a.case_id)] == a.attachment_ids
        photo = a.attachment_ids[0]
        assert reports.attachment_in_scope(s, photo, GRID_A[:9]) is not None  # where it was reported
        assert reports.attachment_in_scope(s, photo, GRID_B[:9]) is not None  # where it is shown now
        assert reports.attachment_in_scope(s, photo, "310104009") is None
        assert reports.attachment_in_scope(s, b.attachment_ids[0], GRID_A[:9]) is None
