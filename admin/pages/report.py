"""Console pages of the grid worker (网格员), made for a phone: report a problem once (上报) and
verify resolved cases on site (核查).

The report page asks for a category from the short list, a sentence, photos and the place: the
phone's position (WGS-84, the browser's geolocation) or a tap on the worker's grid map, drawn
here from the grid layer as SVG (no map tiles: the centre's network is closed). Before saving it
shows the open cases of a compatible category nearby ("already reported — add to it?"); choosing
one sends the report with ``attach_to``. The form carries a client-generated draft id: a phone on
a flaky connection resubmits the same draft and gets the first answer (``hub.services.reports``
is idempotent per reporter and draft id), and the page keeps the draft (text, category, place)
in the browser until the hub has it.

The verification page lists the resolved cases of the worker's jurisdiction waiting for an on-site
check; the verdict, its text and photos go through ``hub.services.reports.verify_case``, the same
as ``POST /api/v1/cases/{id}/verify`` (its form posts to the case page's verify action).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import abort, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from admin.views import _category_name, _check_csrf, _ctx, bp, nav, roles
from hub.api.reports import attachment_response
from hub.dedup.location import metres_per_degree
from hub.gridlayer import GridLayer
from hub.models import Case, User
from hub.models.work import GridReport
from hub.services import reports

REPORTERS = ("admin", "operator", "grid_worker")
READERS = ("admin", "operator", "department", "grid_worker", "auditor")
MAP_W = 360  # px: the grid map fits a phone's width
MAP_PAD = 8
MAX_MAP_GRIDS = 3000
OUTCOMES = {"new_case": _l("已新建案件"), "attached": _l("已补充到您选择的案件"),
            "linked": _l("系统判定为同一事件，已并入已有案件"),
            "quarantined": _l("已保存，但字段映射未通过，等待管理员处理后补录"),
            "pending": _l("已保存，正在处理")}

nav("console.report", "上报", *REPORTERS)
nav("console.verify_list", "核查", *REPORTERS)


# ----------------------------------------------------------------------------- the grid map


@dataclass(frozen=True)
class GridMap:
    """The grids of a jurisdiction projected to pixels (north up, equal metres on both axes); the
    page turns a tap back into WGS-84 with ``lng = lng0 + x / kx`` and ``lat = lat1 - y / ky``."""

    width: int
    height: int
    lng0: float
    lat1: float
    kx: float  # px per degree of longitude
    ky: float  # px per degree of latitude
    paths: list[tuple[str, str]]  # (grid code, SVG path)


def grid_map(layer: GridLayer, scope: str) -> GridMap | None:
    grids = [grid for grid in layer.grids if grid.code.startswith(scope)]
    if not grids or len(grids) > MAX_MAP_GRIDS:
        return None
    x0 = min(grid.bbox[0] for grid in grids)
    y0 = min(grid.bbox[1] for grid in grids)
    x1 = max(grid.bbox[2] for grid in grids)
    y1 = max(grid.bbox[3] for grid in grids)
    kx_m, ky_m = metres_per_degree((y0 + y1) / 2)
    width_m, height_m = max((x1 - x0) * kx_m, 1.0), max((y1 - y0) * ky_m, 1.0)
    px_per_m = (MAP_W - 2 * MAP_PAD) / max(width_m, height_m)
    kx, ky = kx_m * px_per_m, ky_m * px_per_m
    lng0, lat1 = x0 - MAP_PAD / kx, y1 + MAP_PAD / ky
    paths = []
    for grid in grids:
        d = " ".join("M" + " L".join(f"{(x - lng0) * kx:.1f},{(lat1 - y) * ky:.1f}" for x, y in ring) + " Z"
                     for ring in grid.rings)
        paths.append((grid.code, d))
    height = round(height_m * px_per_m + 2 * MAP_PAD)
    return GridMap(round(width_m * px_per_m + 2 * MAP_PAD), height, lng0, lat1, kx, ky, paths)


def _map_for(scope: str) -> GridMap | None:
    ctx = _ctx()
    key = f"report_map:{scope}"
    layer = ctx.grids()
    cached = ctx.cache.get(key)
    if cached is None or cached[0] is not layer:
        cached = ctx.cache[key] = (layer, grid_map(layer, scope))
    result: GridMap | None = cached[1]
    return result


# ----------------------------------------------------------------------------- reporting


def _reporter() -> User:
    with _ctx().db.read_session() as s:
        user = s.get(User, int(g.caller["id"]))
        if user is None:
            abort(403)
        s.expunge(user)
        return user


def _categories() -> list[tuple[str, str]]:
    return [(code, _category_name(code)) for code in reports.SHORT_LIST]


def uploaded_photos(name: str) -> list[reports.Photo]:
    """The photos of a multipart form field (the bytes, not the browser's word, decide the type)."""
    files: list[FileStorage] = [f for f in request.files.getlist(name) if f and f.filename]
    if len(files) > reports.MAX_PHOTOS:
        raise reports.ReportError(f"at most {reports.MAX_PHOTOS} photos", "photos")
    photos = []
    for f in files:
        data = f.stream.read(reports.MAX_PHOTO_BYTES + 1)
        photos.append(reports.Photo(data, f.mimetype or "", f.filename or ""))
    return photos


def _number(name: str) -> float:
    try:
        value = float(request.form.get(name, ""))
    except ValueError:
        raise reports.ReportError(_("请先定位：用手机定位，或在网格图上点选位置"), "lat") from None
    return value


REFUSAL_WORDS = {"category": _l("请选择问题类别"), "text": _l("请用一句话描述问题（1 到 500 字）"),
                 "lat": _l("位置不对：请重新定位，或在网格图上点选"),
                 "photos": _l("照片不合要求（JPEG/PNG/WebP，每张不超过 5 MB，最多 4 张）"),
                 "attach_to": _l("无法补充到该案件：它已办结、不存在或不在您的辖区"),
                 "client_id": _l("草稿编号无效，请刷新页面后重试"), "location_source": _l("位置来源无效")}


def _refusal_message(exc: reports.ReportError) -> str:
    """The person's words for a refusal, with the hub's own reason after them."""
    words = REFUSAL_WORDS.get(exc.field)
    return f"{words}（{exc}）" if words else str(exc)


def _wants_json() -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


@bp.get("/report")
@roles(*REPORTERS)
def report() -> str:
    scope = str(g.caller["scope"] or "")
    return render_template("console/report.html", categories=_categories(), client_id=uuid.uuid4().hex,
                           grid_map=_map_for(scope), scope=scope, max_photos=reports.MAX_PHOTOS)


@bp.post("/report")
@roles(*REPORTERS)
def report_submit() -> Response | tuple[Response, int] | tuple[str, int]:
    _check_csrf()
    f = request.form
    try:
        result = reports.submit_report(
            _ctx(), _reporter(), client_id=f.get("client_id", "").strip(), category=f.get("category", ""),
            text=f.get("text", ""), lat=_number("lat"), lng=_number("lng"),
            location_source=f.get("location_source", "gps"), photos=uploaded_photos("photos"),
            attach_to=f.get("attach_to", "").strip())
    except reports.ReportError as exc:
        message = _refusal_message(exc)
        if _wants_json():
            return jsonify({"ok": False, "field": exc.field, "message": message}), exc.status
        return render_template("console/report.html", categories=_categories(), client_id=f.get("client_id", ""),
                               grid_map=_map_for(str(g.caller["scope"] or "")), scope=str(g.caller["scope"] or ""),
                               max_photos=reports.MAX_PHOTOS, error=message, error_field=exc.field,
                               kept=f), exc.status
    done = url_for("console.report_done", report_id=result.report.id)
    if _wants_json():
        return jsonify({"ok": True, "outcome": result.outcome, "case_number": result.case_number,
                        "repeat": result.repeat, "url": done})
    return redirect(done)


@bp.get("/report/nearby")
@roles(*REPORTERS)
def report_nearby() -> Response | tuple[Response, int]:
    """Open cases of a compatible category within 200 m (JSON, for the page's check before saving)."""
    try:
        lat, lng = float(request.args.get("lat", "")), float(request.args.get("lng", ""))
        reports.check_point(lat, lng)
    except (ValueError, reports.ReportError):
        return jsonify({"items": [], "error": _("位置无效")}), 400
    category = request.args.get("category", "")[:64]
    scope = str(g.caller["scope"] or "")
    with _ctx().db.read_session() as s:
        found = reports.nearby_open_cases(s, lat=lat, lng=lng, category=category, scope=scope)
        items = [{"number": c.number, "title": c.title, "category": _category_name(c.category),
                  "status": c.status, "distance_m": round(d), "url": url_for("console.work_case", case_id=c.id)}
                 for c, d in found]
    return jsonify({"items": items, "grid_code": _ctx().grids().locate(lng, lat)})


@bp.get("/report/done/<int(max=2147483647):report_id>")
@roles(*REPORTERS)
def report_done(report_id: int) -> str:
    with _ctx().db.read_session() as s:
        report_row = s.get(GridReport, report_id)
        # one's own reports only (an admin or operator sees those of their jurisdiction)
        if report_row is None or not (report_row.reporter_id == g.caller["id"] or (
                g.caller["role"] in ("admin", "operator")
                and report_row.grid_code.startswith(str(g.caller["scope"] or "")))):
            abort(404)
        case = s.get(Case, report_row.case_id) if report_row.case_id is not None else None
        s.expunge_all()
    return render_template("console/report_done.html", report=report_row, case=case,
                           outcome=OUTCOMES.get(report_row.outcome or "pending", OUTCOMES["pending"]),
                           category=_category_name(report_row.category))


# ----------------------------------------------------------------------------- verification


@bp.get("/verify")
@roles(*REPORTERS)
def verify_list() -> str:
    ctx = _ctx()
    with ctx.db.read_session() as s:
        rows = reports.waiting_verification(ctx, s, str(g.caller["scope"] or ""))
        items = [{"case": r["case"], "asked_by": r["asked_by"], "category": _category_name(r["case"].category),
                  "photos": reports.case_photos(s, r["case"].id)} for r in rows]
        s.expunge_all()
    return render_template("console/verify.html", items=items, max_photos=reports.MAX_PHOTOS)


# ----------------------------------------------------------------------------- photos


@bp.get("/attachments/<int(max=2147483647):attachment_id>")
@roles(*READERS)
def attachment(attachment_id: int) -> Response:
    """A report's or a verification's photo, within the viewer's jurisdiction."""
    with _ctx().db.read_session() as s:
        found = reports.attachment_in_scope(s, attachment_id, str(g.caller["scope"] or ""))
        if found is None:
            abort(404)
        return attachment_response(found.data, found.mime)
