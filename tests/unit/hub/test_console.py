"""The console: account sign-in with CSRF and lock-out, jurisdiction by URL, accounts managed by
admins and every change in the audit log (also over the API), sessions ended by a password change."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from hub.app import create_app
from hub.context import HubContext
from hub.models import AuditEntry, Ticket, User, utcnow
from hub.services import accounts
from tests.conftest import make_token
from tests.support.console import PASSWORD, csrf, make_user, sign_in
from tests.support.fake_system import record
from tests.unit.hub.conftest import ingest


def user(ctx: HubContext, username: str, role: str = "admin", scope: str = "", password: str = PASSWORD) -> None:
    make_user(ctx, username, role, scope, password)


def test_sign_in_needs_csrf_and_the_right_password(fake_ctx: HubContext) -> None:
    user(fake_ctx, "wang")
    client = create_app(context=fake_ctx).test_client()
    assert client.get("/console/").status_code == 302
    assert client.post("/console/login", data={"username": "wang", "password": PASSWORD}).status_code == 400
    wrong = sign_in(client, "wang", "nope-nope-1")
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.get_data(as_text=True)
    unknown = sign_in(client, "nobody")
    assert unknown.status_code == 401 and "用户名或密码错误" in unknown.get_data(as_text=True)  # same words
    assert sign_in(client, "wang").status_code == 302
    ingest(fake_ctx, record("C1"))
    page = client.get("/console/").get_data(as_text=True)
    assert "流动摊贩占道经营" in page and "fake" in page
    with fake_ctx.db.read_session() as s:
        stored = s.scalar(select(User.password_hash).where(User.username == "wang"))
        assert stored is not None and stored.startswith("scrypt$") and PASSWORD not in stored


def test_repeated_failures_lock_the_account(fake_ctx: HubContext) -> None:
    user(fake_ctx, "li")
    client = create_app(context=fake_ctx).test_client()
    for _ in range(accounts.MAX_FAILURES):
        sign_in(client, "li", "wrong-password-1")
    locked = sign_in(client, "li")  # even the right password, while locked
    assert locked.status_code == 401 and "锁定" in locked.get_data(as_text=True)
    with fake_ctx.db.session() as s:
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.target_id == "li").order_by(
            AuditEntry.id.desc())) == "user.locked"
        later = utcnow() + timedelta(minutes=accounts.LOCK_MINUTES + 1)
        assert accounts.sign_in(s, "li", PASSWORD, now=later).user is not None


def test_jurisdiction_is_enforced_by_url(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("IN", grid="310104001001001"), record("OUT", grid="310104002001001"))
    with fake_ctx.db.read_session() as s:
        cases = {t.external_id: t.case_id for t in s.scalars(select(Ticket))}
    user(fake_ctx, "street1", role="operator", scope="310104001")
    client = create_app(context=fake_ctx).test_client()
    sign_in(client, "street1")
    assert client.get(f"/console/cases/{cases['IN']}").status_code == 302  # the old address moved
    assert client.get(f"/console/cases/{cases['IN']}", follow_redirects=True).status_code == 200
    assert client.get(f"/console/cases/{cases['OUT']}", follow_redirects=True).status_code == 404
    assert client.get(f"/console/work/cases/{cases['OUT']}").status_code == 404
    listing = client.get("/console/").get_data(as_text=True)
    assert "标题IN" in listing and "标题OUT" not in listing
    for page in ("/console/inbound", "/console/users", "/console/audit"):
        assert client.get(page).status_code == 403
    api = create_app(context=fake_ctx).test_client()
    headers = {"Authorization": f"Bearer {make_token(fake_ctx, 'operator', scope='310104001')}"}
    assert api.get(f"/api/v1/cases/{cases['OUT']}", headers=headers).status_code == 404
    assert api.get("/api/v1/cases", headers=headers).json["total"] == 1


def test_admins_manage_accounts_and_every_change_is_audited(fake_ctx: HubContext) -> None:
    user(fake_ctx, "root")
    client = create_app(context=fake_ctx).test_client()
    sign_in(client, "root")
    token = csrf(client, "/console/users")
    bad = client.post("/console/users", data={"csrf": token, "username": "zhao", "role": "operator",
                                              "scope": "31010", "password": PASSWORD})
    assert bad.status_code == 422 and "辖区" in bad.get_data(as_text=True)  # shown next to the field
    weak = client.post("/console/users", data={"csrf": token, "username": "zhao", "role": "operator",
                                               "scope": "310104001", "password": "short"})
    assert weak.status_code == 422 and "至少" in weak.get_data(as_text=True)
    made = client.post("/console/users", data={"csrf": token, "username": "zhao", "role": "operator",
                                               "scope": "310104001", "password": PASSWORD, "display_name": "赵"})
    assert made.status_code == 302
    with fake_ctx.db.read_session() as s:
        zhao = s.scalar(select(User).where(User.username == "zhao"))
        assert zhao is not None and (zhao.role, zhao.scope) == ("operator", "310104001")
        zhao_id = zhao.id
    # zhao signs in elsewhere; the admin moves zhao to another street and resets the password:
    # zhao's session ends, the audit log shows before → after
    other = create_app(context=fake_ctx).test_client()
    assert sign_in(other, "zhao").status_code == 302 and other.get("/console/").status_code == 200
    edit = client.post(f"/console/users/{zhao_id}", data={
        "csrf": token, "role": "operator", "scope": "310104002", "display_name": "赵", "active": "on",
        "password": "new-password-77"})
    assert edit.status_code == 302
    assert other.get("/console/").status_code == 302  # signed out
    self_demote = client.post(f"/console/users/{_id(fake_ctx, 'root')}", data={
        "csrf": token, "role": "operator", "scope": "", "active": "on"})
    assert self_demote.status_code == 422
    user(fake_ctx, "auditor1", role="auditor")
    reader = create_app(context=fake_ctx).test_client()
    sign_in(reader, "auditor1")
    log = reader.get("/console/audit").get_data(as_text=True)
    assert "user.update" in log and "310104002" in log and "user.password" in log
    assert "new-password-77" not in log and PASSWORD not in log
    api = create_app(context=fake_ctx).test_client()
    entries = api.get("/api/v1/audit?target_type=user", headers={
        "Authorization": f"Bearer {make_token(fake_ctx, 'auditor')}"}).json
    update = next(e for e in entries["items"] if e["action"] == "user.update")
    assert (update["actor"], update["before"]["scope"], update["after"]["scope"]) == ("root", "310104001",
                                                                                       "310104002")
    assert api.get("/api/v1/audit", headers={
        "Authorization": f"Bearer {make_token(fake_ctx, 'operator')}"}).status_code == 403


def test_admin_api_changes_are_audited(fake_ctx: HubContext) -> None:
    api = create_app(context=fake_ctx).test_client()
    headers = {"Authorization": f"Bearer {make_token(fake_ctx, 'admin', name='ops-admin')}"}
    assert api.post("/api/v1/systems/fake/mappings/1/activate", headers=headers).status_code == 200
    assert api.post("/api/v1/outbound/replay", json={}, headers=headers).status_code == 200
    with fake_ctx.db.read_session() as s:
        actions = [(e.actor, e.action, e.target_id) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert ("ops-admin", "mapping.activate", "fake") in actions and ("ops-admin", "outbound.replay", "*") in actions


def _id(ctx: HubContext, username: str) -> int:
    with ctx.db.read_session() as s:
        found = s.scalar(select(User.id).where(User.username == username))
        assert found is not None
        return found
