"""The console's mapping editor: the form keeps documents intact, validation errors sit next to
their row, preview and dry-run run stored payloads through the posted draft without writing,
activation and rollback are audited, and only admins change anything (with CSRF)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from admin.mapping_forms import apply_form, dump_document
from hub.config import HubConfig
from hub.context import HubContext
from hub.models import AuditEntry, InboundEvent, MappingVersion
from hub.services import mapping_versions
from mappings import DEFAULTS_DIR, default_systems, load_document_text
from mappings.yamlio import load_yaml
from tests.support import console
from tests.support.fake_system import MAPPING, record
from tests.unit.hub.conftest import ingest, make_fake_ctx

EDIT = "/console/systems/fake/mapping/edit"


@pytest.fixture
def ctx(hub_config: HubConfig) -> Iterator[HubContext]:
    context = make_fake_ctx(hub_config)
    yield context
    context.close()


class _FormReader(HTMLParser):
    """What a browser would post from ``#mapping-form`` (no button: the test adds the action)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._in_form = False
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._in_form = a.get("id") == "mapping-form"
        if not self._in_form or "disabled" in a:
            return
        if tag == "input" and a.get("name") and (a.get("type") != "checkbox" or "checked" in a):
            self.values[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select, self._first_option = a.get("name"), None
        elif tag == "option" and self._select:
            if self._first_option is None:
                self._first_option = a.get("value", "")
                self.values[self._select] = self._first_option
            if "selected" in a:
                self.values[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.values[a["name"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data.removeprefix("\n") if not self.values[self._textarea] else data


def form_of(page: str) -> dict[str, str]:
    reader = _FormReader()
    reader.feed(page)
    return reader.values


def draft_of(page: str) -> str:
    return form_of(page)["yaml"]


def signed_in(ctx: HubContext, username: str = "admin1", role: str = "admin", scope: str = "") -> Any:
    return console.signed_in(ctx, role, scope, username)


def post_draft(client: Any, form: dict[str, str], action: str, **extra: str) -> Any:
    return client.post(EDIT, data={**form, "action": action, **extra})


def row_of(form: dict[str, str], prefix: str, code: str) -> str:
    """The form name prefix (``ct.0.3`` / ``st.2``) of the row holding ``code``."""
    for name, value in form.items():
        if name.startswith(prefix) and name.endswith(".code") and value == code:
            return name.removesuffix(".code")
    raise AssertionError(f"no row {code} under {prefix}")


def audit_actions(ctx: HubContext) -> list[tuple[str, Any, Any]]:
    with ctx.db.read_session() as s:
        return [(e.action, e.before, e.after) for e in s.scalars(
            select(AuditEntry).where(AuditEntry.target_type == "mapping").order_by(AuditEntry.id))]


def version_count(ctx: HubContext) -> int:
    with ctx.db.read_session() as s:
        return s.scalar(select(func.count(MappingVersion.id)).where(MappingVersion.system_key == "fake")) or 0


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("system", default_systems())
def test_the_form_gives_back_each_default_document_unchanged(ctx: HubContext, system: str) -> None:
    text = (DEFAULTS_DIR / f"{system}.yaml").read_text(encoding="utf-8")
    with ctx.db.session() as s:
        number = mapping_versions.create_version(s, "fake", text, comment=system).version
    client = signed_in(ctx)
    page = client.get(f"{EDIT}?from={number}").get_data(as_text=True)
    form = form_of(page)
    assert form["base"] == text and "fld.external_id.path" in form and "st.count" in form
    # the untouched form keeps the text itself (comments included) …
    again = post_draft(client, form, "check")
    assert again.status_code == 200 and draft_of(again.get_data(as_text=True)) == text
    # … and what the form says, dumped anew, is the same document (documents compare by identity;
    # the fingerprint names their content)
    applied, problems = apply_form(load_yaml(text), form)
    assert problems == {}
    again_doc, original = load_document_text(dump_document(applied)), load_document_text(text)
    assert again_doc.fingerprint == original.fingerprint
    assert (again_doc.fields, again_doc.code_tables, again_doc.status_map) == \
        (original.fields, original.code_tables, original.status_map)


def test_a_form_edit_changes_only_what_was_edited(ctx: HubContext) -> None:
    client = signed_in(ctx)
    form = form_of(client.get(EDIT).get_data(as_text=True))
    row = row_of(form, "ct.0.", "B")
    form[f"{row}.value"] = "garbage_collection"
    form["fld.title.transforms"] = "clean_text, strip"
    form["fld.address.path"] = "addr | street"
    page = post_draft(client, form, "check").get_data(as_text=True)
    assert 'id="draft-valid"' in page, page
    draft = load_yaml(draft_of(page))
    expected = load_yaml(MAPPING.read_text(encoding="utf-8"))
    expected["code_tables"]["category"]["B"] = "garbage_collection"
    expected["fields"]["title"]["transforms"] = ["clean_text", "strip"]
    expected["fields"]["address"]["path"] = ["addr", "street"]
    assert draft == expected


def test_a_status_left_unmapped_shows_its_error_next_to_it_and_cannot_be_saved(ctx: HubContext) -> None:
    client = signed_in(ctx)
    form = form_of(client.get(EDIT).get_data(as_text=True))
    form[f"{row_of(form, 'st.', 'HOLD')}.value"] = ""
    form["comment"] = "drop HOLD"
    answer = post_draft(client, form, "save")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and version_count(ctx) == 1
    hold_row = re.search(r'<tr id="st-\d+" data-code="HOLD" class="invalid">(.*?)</tr>', page, re.S)
    assert hold_row is not None and "neither mapped nor ignored" in hold_row.group(1)
    assert 'role="alert"' in hold_row.group(1) and 'aria-invalid="true"' in hold_row.group(1)
    assert 'id="draft-issues"' in page and "status_map.inbound.HOLD" in page  # and in the summary
    # "ignore" is an explicit choice: then it validates
    form = form_of(page)
    form[f"{row_of(form, 'st.', 'HOLD')}.value"] = "__ignore__"
    fixed = post_draft(client, form, "check").get_data(as_text=True)
    assert 'id="draft-valid"' in fixed and load_yaml(draft_of(fixed))["status_map"]["ignore"] == ["HOLD"]


def test_a_system_code_missing_from_its_table_is_flagged_on_its_row(ctx: HubContext) -> None:
    client = signed_in(ctx)
    form = form_of(client.get(EDIT).get_data(as_text=True))
    form[f"{row_of(form, 'ct.0.', 'B')}.del"] = "1"
    page = post_draft(client, form, "check").get_data(as_text=True)
    row = re.search(r'<tr id="ct-0-\d+" data-code="B" class="invalid">(.*?)</tr>', page, re.S)
    assert row is not None and "code &#39;B&#39; of fakesys is not mapped" in row.group(1) and "未映射" in row.group(1)


def test_raw_yaml_edits_the_same_draft_and_yaml_errors_are_shown(ctx: HubContext) -> None:
    client = signed_in(ctx)
    form = form_of(client.get(EDIT).get_data(as_text=True))
    form["yaml"] = form["yaml"].replace('"B": garbage_exposed', '"B": garbage_exposed, "C": noise_social')
    page = post_draft(client, form, "check").get_data(as_text=True)
    assert 'id="draft-notice"' in page and 'data-code="C"' in page  # the form shows the YAML's row
    form = form_of(page)
    form["yaml"] = "system: [unclosed"
    broken = post_draft(client, form, "check").get_data(as_text=True)
    assert 'id="form-unavailable"' in broken and "YAML:" in broken


# ----------------------------------------------------------------------------- preview and dry run


def test_preview_maps_a_stored_payload_with_the_draft_and_masks_the_reporter(ctx: HubContext) -> None:
    ingest(ctx, record("P1", name="张三丰", phone="13812345678", text="请联系13812345678张三丰"))
    client = signed_in(ctx)
    form = form_of(client.get(EDIT).get_data(as_text=True))
    with ctx.db.read_session() as s:
        event_id = s.scalar(select(InboundEvent.id).where(InboundEvent.external_id == "P1"))
    form["fld.title.path"] = "addr"  # the draft, not the stored version, is previewed
    page = post_draft(client, form, "preview", event=str(event_id)).get_data(as_text=True)
    assert 'id="preview-outcome"' in page and "用草稿映射成功" in page
    title = re.search(r'<tr id="preview-title"\s*>(.*?)</tr>', page, re.S)
    assert title is not None and "斜土路" in title.group(1) and "<code>addr</code>" in title.group(1)
    assert "13812345678" not in page and "张三丰" not in page
    name = re.search(r'<tr id="preview-reporter_name"\s*>(.*?)</tr>', page, re.S)
    assert name is not None and "***" in name.group(1)


def test_preview_of_an_event_out_of_reach_is_404(ctx: HubContext) -> None:
    ingest(ctx, record("FAR", grid="310104002001001"))
    client = signed_in(ctx, "street_admin", scope="310104001")
    form = form_of(client.get(EDIT).get_data(as_text=True))
    with ctx.db.read_session() as s:
        event_id = s.scalar(select(InboundEvent.id).where(InboundEvent.external_id == "FAR"))
    assert post_draft(client, form, "preview", event=str(event_id)).status_code == 404


def test_dry_run_shows_a_quarantined_payload_rescued_by_the_fix_and_writes_nothing(ctx: HubContext) -> None:
    ingest(ctx, record("OK1"), record("BAD1", cat="C"), record("OK2", cat="B"))
    with ctx.db.read_session() as s:
        bad = s.scalar(select(InboundEvent).where(InboundEvent.external_id == "BAD1"))
        assert bad is not None and bad.status == "quarantined"
    client = signed_in(ctx)
    page = client.get(EDIT).get_data(as_text=True)
    assert re.search(rf'<option value="{bad.id}"[^>]*>#{bad.id} BAD1 · 隔离区', page)  # offered first
    form = form_of(page)
    blank = next(n for n, v in form.items() if n.startswith("ct.0.") and n.endswith(".code") and not v)
    form[blank], form[blank.replace(".code", ".value")] = "C", "noise_social"
    form[f"{row_of(form, 'ct.0.', 'B')}.value"] = "garbage_collection"
    result = post_draft(client, form, "dry_run", count="50").get_data(as_text=True)
    assert 'id="count-rescued">草稿可修复（原来失败） 1<' in result
    assert 'id="count-changed">字段有变化 1<' in result and 'id="count-same">结果不变 1<' in result
    rescued = re.search(rf'<tr id="dry-run-{bad.id}" data-outcome="rescued">(.*?)</tr>', result, re.S)
    assert rescued is not None and "代码表中没有该值" in rescued.group(1)
    assert "garbage_exposed</span> → <span class=\"add\">garbage_collection" in result
    with ctx.db.read_session() as s:
        assert s.get(InboundEvent, bad.id).status == "quarantined"  # type: ignore[union-attr]
    assert version_count(ctx) == 1 and audit_actions(ctx) == []


# ----------------------------------------------------------------------------- save, activate, roll back


def test_saving_activating_and_rolling_back_are_audited(ctx: HubContext) -> None:
    client = signed_in(ctx)
    form = form_of(client.get(EDIT).get_data(as_text=True))
    form[f"{row_of(form, 'ct.0.', 'B')}.value"] = "garbage_collection"
    saved = post_draft(client, form, "save", comment="B 改为清运不及时")
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/console/systems/fake/mapping")
    with ctx.db.read_session() as s:
        versions = {v.version: v for v in mapping_versions.list_versions(s, "fake")}
        assert versions[2].comment == "B 改为清运不及时" and versions[2].created_by == "admin1"
        assert versions[1].active and not versions[2].active
    listing = client.get("/console/systems/fake/mapping").get_data(as_text=True)
    assert 'id="activate-2"' in listing and "启用此版本" in listing and "启用中" in listing
    token = form["csrf"]
    assert client.post("/console/systems/fake/mapping/2/activate", data={"csrf": token}).status_code == 302
    listing = client.get("/console/systems/fake/mapping").get_data(as_text=True)
    assert 'id="activate-1"' in listing and "回滚到此版本" in listing
    assert client.post("/console/systems/fake/mapping/1/activate", data={"csrf": token}).status_code == 302
    assert client.post("/console/systems/fake/mapping/9/activate", data={"csrf": token}).status_code == 404
    form = form_of(client.get(f"{EDIT}?from=2").get_data(as_text=True))
    assert post_draft(client, form, "activate", comment="again").status_code == 302
    actions = audit_actions(ctx)
    assert actions[0][0] == "mapping.create" and actions[0][1] == {"active_version": 1}
    assert actions[0][2]["version"] == 2 and actions[0][2]["active"] is False
    assert actions[1:3] == [("mapping.activate", {"active_version": 1}, {"active_version": 2}),
                            ("mapping.activate", {"active_version": 2}, {"active_version": 1})]
    assert [a[0] for a in actions[3:]] == ["mapping.create", "mapping.activate"]
    assert actions[4][1:] == ({"active_version": 1}, {"active_version": 3})
    with ctx.db.read_session() as s:
        active = mapping_versions.active_version(s, "fake")
        assert active is not None and active.version == 3


def test_diff_shows_the_changed_lines_escaped(ctx: HubContext) -> None:
    text = MAPPING.read_text(encoding="utf-8")
    with ctx.db.session() as s:
        mapping_versions.create_version(s, "fake", text.replace("title: 测试系统", "title: 测试<b>系统</b>"))
    client = signed_in(ctx, "reader", role="auditor")
    page = client.get("/console/systems/fake/mapping/diff?a=1&b=2").get_data(as_text=True)
    assert '<span class="del">-title: 测试系统</span>' in page
    assert '<span class="add">+title: 测试&lt;b&gt;系统&lt;/b&gt;</span>' in page
    assert client.get("/console/systems/fake/mapping/diff?a=1&b=7").status_code == 404


def test_operators_may_look_but_not_change(ctx: HubContext) -> None:
    client = signed_in(ctx, "op1", role="operator")
    assert client.get("/console/mappings").status_code == 200
    listing = client.get("/console/systems/fake/mapping").get_data(as_text=True)
    assert "启用中" in listing and 'id="activate-' not in listing
    page = client.get(EDIT).get_data(as_text=True)
    assert 'id="draft-fieldset"' in page and "disabled" in page and 'id="draft-save-button"' not in page
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    assert client.post(EDIT, data={"csrf": token.group(1), "action": "save", "yaml": "x"}).status_code == 403
    assert client.post("/console/systems/fake/mapping/1/activate", data={"csrf": token.group(1)}).status_code == 403
    worker = signed_in(ctx, "gw1", role="grid_worker")
    assert worker.get("/console/systems/fake/mapping").status_code == 403
    assert signed_in(ctx, "admin2").get("/console/systems/nope/mapping").status_code == 404


def test_changes_need_the_csrf_token(ctx: HubContext) -> None:
    client = signed_in(ctx)
    form = form_of(client.get(EDIT).get_data(as_text=True))
    del form["csrf"]
    assert post_draft(client, form, "save", comment="x").status_code == 400
    assert client.post("/console/systems/fake/mapping/1/activate").status_code == 400
    assert version_count(ctx) == 1 and audit_actions(ctx) == []


def test_the_mapping_script_is_bundled() -> None:
    script = Path(__file__).parents[3] / "admin" / "static" / "mapping.js"
    assert "data-confirm" in script.read_text(encoding="utf-8")
