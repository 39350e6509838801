"""The transactional outbox: idempotent enqueue, per-(case, system) ordering, backoff with
Retry-After, the dead letter and replay, secrets kept out of stored errors."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import func, select

from hub.config import HubConfig
from hub.context import HubContext
from hub.facade import (
    ConnectionReport,
    OutboundEffect,
    RawRecord,
    SystemConfig,
    SystemType,
    SystemTypeRegistry,
    hookimpl,
)
from hub.models import CircuitBreaker, CircuitState, OutboundMessage, OutboundStatus, SyncLog, Ticket
from hub.models.base import utcnow
from hub.services import circuit, outbox
from hub.services.systems import connector_for, get_system, upsert_system
from tests.support.fake_system import MAPPING, FakeConnector, record
from tests.unit.hub.conftest import ingest, make_fake_ctx

T0 = datetime(2030, 1, 1, 8, 0, tzinfo=utcnow().tzinfo)  # later than any enqueue: everything is due


def fake_connector(ctx: HubContext, key: str = "fake") -> FakeConnector:
    with ctx.db.read_session() as s:
        return cast(FakeConnector, connector_for(ctx, get_system(s, key)))


def case_of(ctx: HubContext, ext_id: str) -> int:
    ingest(ctx, record(ext_id))
    with ctx.db.read_session() as s:
        case_id = s.scalar(select(Ticket.case_id).where(Ticket.external_id == ext_id))
    assert case_id is not None
    return case_id


def put(ctx: HubContext, key: str, case_id: int | None = None, system_key: str = "fake",
        operation: str = "status", **payload: Any) -> int:
    with ctx.db.session() as s:
        return outbox.enqueue(s, case_id=case_id, system_key=system_key, operation=operation,
                              payload=payload or {"status": "DOING"}, idempotency_key=key).id


def row(ctx: HubContext, message_id: int) -> OutboundMessage:
    with ctx.db.read_session() as s:
        m = s.get(OutboundMessage, message_id)
        assert m is not None
        return m


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The full-jitter draw at its maximum: delays are the exponential ceiling itself."""
    monkeypatch.setattr(outbox.random, "random", lambda: 1.0)


def test_enqueue_is_idempotent_and_part_of_the_callers_transaction(fake_ctx: HubContext) -> None:
    case_id = case_of(fake_ctx, "A1")
    with fake_ctx.db.session() as s:
        first = outbox.enqueue(s, case_id=case_id, system_key="fake", operation="status",
                               payload={"status": "DOING"}, idempotency_key="k1")
        again = outbox.enqueue(s, case_id=case_id, system_key="fake", operation="status",
                               payload={"status": "DOING"}, idempotency_key="k1")
        assert again is first
    assert put(fake_ctx, "k1", case_id) == first.id  # a later transaction gets the same row
    with pytest.raises(RuntimeError), fake_ctx.db.session() as s:
        outbox.enqueue(s, case_id=case_id, system_key="fake", operation="status", payload={},
                       idempotency_key="k2")
        raise RuntimeError("the case change failed")
    with fake_ctx.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(OutboundMessage)) == 1  # k2 rolled back with it
    m = row(fake_ctx, first.id)
    assert (m.status, m.attempts, m.payload) == (OutboundStatus.PENDING, 0, {"status": "DOING"})
    with pytest.raises(ValueError), fake_ctx.db.session() as s:
        outbox.enqueue(s, case_id=None, system_key="fake", operation="status", payload={}, idempotency_key="")


def test_delivers_due_messages_once_with_their_idempotency_key(fake_ctx: HubContext) -> None:
    case_id = case_of(fake_ctx, "A1")
    m1 = put(fake_ctx, "A1:accept", case_id, status="ACCEPTED")
    assert outbox.deliver_due(fake_ctx, now=T0) == {"sent": 1, "failed": 0, "dead": 0, "deferred": 0}
    conn = fake_connector(fake_ctx)
    assert [e.idempotency_key for e in conn.delivered] == ["A1:accept"]
    effect = conn.delivered[0]
    assert (effect.message_id, effect.case_id, effect.system_key, effect.operation, effect.attempt,
            effect.payload) == (m1, case_id, "fake", "status", 1, {"status": "ACCEPTED"})
    m = row(fake_ctx, m1)
    assert (m.status, m.sent_at, m.attempts, m.error_kind, m.last_error) == (OutboundStatus.SENT, T0, 1, "", "")
    assert outbox.deliver_due(fake_ctx, now=T0 + timedelta(days=1)) == {
        "sent": 0, "failed": 0, "dead": 0, "deferred": 0}
    assert len(conn.calls) == 1
    with fake_ctx.db.read_session() as s:
        log = s.scalars(select(SyncLog).where(SyncLog.operation == "deliver")).one()
        assert (log.system_key, log.ok, log.error_kind) == ("fake", True, "")


def test_messages_not_yet_due_wait(fake_ctx: HubContext) -> None:
    put(fake_ctx, "k1")
    assert outbox.deliver_due(fake_ctx, now=utcnow() - timedelta(minutes=1))["sent"] == 0
    assert outbox.deliver_due(fake_ctx, now=T0)["sent"] == 1


def test_per_case_ordering_second_message_waits_for_the_first(fake_ctx: HubContext) -> None:
    a, b = case_of(fake_ctx, "A1"), case_of(fake_ctx, "B1")
    first = put(fake_ctx, "a:1", a, status="ACCEPTED")
    second = put(fake_ctx, "a:2", a, status="CLOSED")
    other = put(fake_ctx, "b:1", b, status="ACCEPTED")
    conn = fake_connector(fake_ctx)
    conn.fail_transient(1)
    counts = outbox.deliver_due(fake_ctx, now=T0)
    assert counts == {"sent": 1, "failed": 1, "dead": 0, "deferred": 0}
    assert [e.idempotency_key for e in conn.calls] == ["a:1", "b:1"]  # a:2 never attempted
    assert (row(fake_ctx, first).status, row(fake_ctx, second).status, row(fake_ctx, other).status) == (
        OutboundStatus.FAILED, OutboundStatus.PENDING, OutboundStatus.SENT)
    assert row(fake_ctx, second).attempts == 0
    # once the first goes through, the second follows in the same run
    assert outbox.deliver_due(fake_ctx, now=T0 + timedelta(hours=2))["sent"] == 2
    assert [e.idempotency_key for e in conn.delivered] == ["b:1", "a:1", "a:2"]


def test_ordering_is_per_case_and_system(fake_ctx: HubContext) -> None:
    with fake_ctx.db.session() as s:
        upsert_system(fake_ctx, s, {"key": "fake2", "plugin": "fakesys", "name": "测试二"})
    a = case_of(fake_ctx, "A1")
    put(fake_ctx, "fake:1", a)
    put(fake_ctx, "fake2:1", a, system_key="fake2")
    put(fake_ctx, "nocase:1", None)
    put(fake_ctx, "nocase:2", None)
    fake_connector(fake_ctx).fail_transient(1)
    counts = outbox.deliver_due(fake_ctx, now=T0)
    assert counts == {"sent": 3, "failed": 1, "dead": 0, "deferred": 0}  # the other system and caseless rows go ahead
    assert [e.idempotency_key for e in fake_connector(fake_ctx, "fake2").delivered] == ["fake2:1"]


def test_backoff_is_exponential_with_full_jitter_and_capped(fake_ctx: HubContext, no_jitter: None) -> None:
    m1 = put(fake_ctx, "k1")
    conn = fake_connector(fake_ctx)
    conn.fail_transient(3)
    now = T0
    for attempt, ceiling in ((1, 10), (2, 20), (3, 40)):
        assert outbox.deliver_due(fake_ctx, now=now)["failed"] == 1
        m = row(fake_ctx, m1)
        assert (m.status, m.attempts, m.error_kind) == (OutboundStatus.FAILED, attempt, "transient")
        assert "503" in m.last_error
        assert m.next_attempt_at == now + timedelta(seconds=ceiling)
        assert outbox.deliver_due(fake_ctx, now=m.next_attempt_at - timedelta(seconds=1)) == {
            "sent": 0, "failed": 0, "dead": 0, "deferred": 0}
        now = m.next_attempt_at
    assert outbox.deliver_due(fake_ctx, now=now)["sent"] == 1
    assert [e.attempt for e in conn.calls] == [1, 2, 3, 4]
    assert outbox.backoff_delay(1, rand=lambda: 0.5) == 5
    assert outbox.backoff_delay(5, rand=lambda: 1.0) == 160
    assert outbox.backoff_delay(12, rand=lambda: 1.0) == outbox.BACKOFF_CAP_S == 3600
    assert outbox.backoff_delay(40, rand=lambda: 1.0) == 3600
    assert 0 <= outbox.backoff_delay(3) <= 40


def test_retry_after_is_a_minimum(fake_ctx: HubContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox.random, "random", lambda: 0.0)
    m1 = put(fake_ctx, "k1")
    conn = fake_connector(fake_ctx)
    conn.rate_limit(120)
    outbox.deliver_due(fake_ctx, now=T0)
    m = row(fake_ctx, m1)
    assert (m.status, m.error_kind, m.next_attempt_at) == (OutboundStatus.FAILED, "transient",
                                                           T0 + timedelta(seconds=120))
    assert "429" in m.last_error
    assert outbox.deliver_due(fake_ctx, now=T0 + timedelta(seconds=119))["sent"] == 0
    assert outbox.deliver_due(fake_ctx, now=T0 + timedelta(seconds=120))["sent"] == 1
    assert outbox.backoff_delay(1, retry_after=5, rand=lambda: 1.0) == 10  # the backoff is longer
    assert outbox.backoff_delay(1, retry_after=float("nan"), rand=lambda: 0.0) == 0


def test_dead_after_the_attempt_cap(fake_ctx: HubContext) -> None:
    m1 = put(fake_ctx, "k1")
    conn = fake_connector(fake_ctx)
    conn.fail_transient(outbox.MAX_ATTEMPTS + 5)
    now = T0
    for _ in range(outbox.MAX_ATTEMPTS - 1):
        assert outbox.deliver_due(fake_ctx, now=now)["failed"] == 1
        now += timedelta(hours=2)
    assert outbox.deliver_due(fake_ctx, now=now) == {"sent": 0, "failed": 0, "dead": 1, "deferred": 0}
    m = row(fake_ctx, m1)
    assert outbox.MAX_ATTEMPTS == 8
    assert (m.status, m.attempts, m.error_kind) == (OutboundStatus.DEAD, 8, "transient")
    assert m.last_error.endswith("(gave up after 8 attempts)")
    assert outbox.deliver_due(fake_ctx, now=now + timedelta(days=30))["dead"] == 0
    assert len(conn.calls) == 8


@pytest.mark.parametrize("kind", ["permanent", "mapping"])
def test_permanent_and_mapping_failures_are_dead_at_once(fake_ctx: HubContext, kind: str) -> None:
    from hub.facade import DeliveryError

    a = case_of(fake_ctx, "A1")
    m1, m2 = put(fake_ctx, "a:1", a), put(fake_ctx, "a:2", a)
    fake_connector(fake_ctx).fail_with(DeliveryError(f"{kind} refusal: INVALID_STATE", kind))
    assert outbox.deliver_due(fake_ctx, now=T0) == {"sent": 1, "failed": 0, "dead": 1, "deferred": 0}
    m = row(fake_ctx, m1)
    assert (m.status, m.attempts, m.error_kind, m.last_error) == (OutboundStatus.DEAD, 1, kind,
                                                                 f"{kind} refusal: INVALID_STATE")
    assert row(fake_ctx, m2).status == OutboundStatus.SENT  # a dead message does not block its case
    with pytest.raises(ValueError):
        DeliveryError("x", "fatal")


def test_errors_that_carry_their_kind_and_plain_exceptions(fake_ctx: HubContext) -> None:
    class AdapterStyle(Exception):
        kind = "permanent"
        retry_after = None

    class Busy(Exception):
        kind = "transient"
        retry_after = 600

    m1, m2, m3 = put(fake_ctx, "k1"), put(fake_ctx, "k2"), put(fake_ctx, "k3")
    fake_connector(fake_ctx).fail_with(AdapterStyle("refused (code=2001)"), Busy("maintenance window"),
                                       KeyError("status"))
    assert outbox.deliver_due(fake_ctx, now=T0) == {"sent": 0, "failed": 2, "dead": 1, "deferred": 0}
    assert (row(fake_ctx, m1).status, row(fake_ctx, m1).error_kind) == (OutboundStatus.DEAD, "permanent")
    assert row(fake_ctx, m2).next_attempt_at >= T0 + timedelta(seconds=600)
    third = row(fake_ctx, m3)
    assert (third.status, third.error_kind, third.last_error) == (OutboundStatus.FAILED, "transient",
                                                                  "KeyError: 'status'")


def test_secrets_never_reach_last_error(fake_ctx: HubContext) -> None:
    m1 = put(fake_ctx, "k1")
    leak = ("login with fake-secret-value failed; Authorization: Bearer eyJhbGciOi.abc; url ?token=tok123&x=1 "
            'body {"password": "hunter2"} reporter 13812345678 ' + "x" * 3000)
    fake_connector(fake_ctx).fail_with(RuntimeError(leak))
    outbox.deliver_due(fake_ctx, now=T0)
    m = row(fake_ctx, m1)
    assert m.last_error.startswith("RuntimeError: login with *** failed")
    for secret in ("fake-secret-value", "eyJhbGciOi", "tok123", "hunter2", "13812345678"):
        assert secret not in m.last_error
    assert len(m.last_error) <= outbox.ERROR_LIMIT
    with fake_ctx.db.read_session() as s:
        assert all("fake-secret-value" not in d for d in s.scalars(select(SyncLog.detail)))


def test_replay_brings_dead_messages_back_and_they_are_delivered(fake_ctx: HubContext,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    m1, m2, m3 = put(fake_ctx, "k1"), put(fake_ctx, "k2"), put(fake_ctx, "k3")
    conn = fake_connector(fake_ctx)
    conn.fail_permanent()
    conn.fail_permanent()
    outbox.deliver_due(fake_ctx, now=T0)
    assert [row(fake_ctx, i).status for i in (m1, m2, m3)] == ["dead", "dead", "sent"]
    assert outbox.replay(fake_ctx, ids=[m1, m3], actor="admin-1") == 1  # sent ones are not replayed
    m = row(fake_ctx, m1)
    assert (m.status, m.attempts) == (OutboundStatus.PENDING, 0)
    assert "admin-1" in caplog.text and "1 dead message" in caplog.text
    assert outbox.replay(fake_ctx, system_key="other") == 0
    assert outbox.replay(fake_ctx, system_key="fake") == 1
    assert outbox.deliver_due(fake_ctx)["sent"] == 2  # due now, real clock
    assert [row(fake_ctx, i).status for i in (m1, m2, m3)] == ["sent"] * 3
    assert sorted(e.idempotency_key for e in conn.delivered) == ["k1", "k2", "k3"]


def test_disabled_system_keeps_its_messages_pending(fake_ctx: HubContext) -> None:
    m1 = put(fake_ctx, "k1")
    with fake_ctx.db.session() as s:
        get_system(s, "fake").enabled = False
    assert outbox.deliver_due(fake_ctx, now=T0) == {"sent": 0, "failed": 0, "dead": 0, "deferred": 0}
    assert (row(fake_ctx, m1).status, row(fake_ctx, m1).attempts) == (OutboundStatus.PENDING, 0)
    with fake_ctx.db.session() as s:
        get_system(s, "fake").enabled = True
    assert outbox.deliver_due(fake_ctx, now=T0)["sent"] == 1


def test_unknown_system_is_permanent(fake_ctx: HubContext) -> None:
    m1 = put(fake_ctx, "k1", system_key="gone")
    assert outbox.deliver_due(fake_ctx, now=T0)["dead"] == 1
    assert (row(fake_ctx, m1).error_kind, row(fake_ctx, m1).last_error) == ("permanent", "no system 'gone'")


class MuteConnector:
    def __init__(self, config: SystemConfig) -> None:
        self.config = config

    def test_connection(self) -> ConnectionReport:
        return ConnectionReport(ok=True, message="mute")

    def fetch(self, external_id: str) -> RawRecord | None:
        return None


class MutePlugin:
    @hookimpl
    def hub_register_system_types(self, registry: SystemTypeRegistry) -> None:
        registry.register(SystemType(key="mutesys", title="只读系统", connector_factory=MuteConnector,
                                     default_mapping=MAPPING))


def test_a_connector_without_deliver_is_a_permanent_failure(hub_config: HubConfig) -> None:
    ctx = make_fake_ctx(hub_config, MutePlugin())
    try:
        with ctx.db.session() as s:
            upsert_system(ctx, s, {"key": "mute", "plugin": "mutesys", "name": "只读"})
        m1 = put(ctx, "k1", system_key="mute")
        assert outbox.deliver_due(ctx, now=T0)["dead"] == 1
        m = row(ctx, m1)
        assert (m.status, m.error_kind, m.last_error) == ("dead", "permanent", "system type of 'mute' cannot deliver")
    finally:
        ctx.close()


def test_a_lost_worker_is_retried_after_its_lease_and_a_stale_result_is_ignored(fake_ctx: HubContext) -> None:
    m1 = put(fake_ctx, "k1")
    claims, _ = outbox._claim(fake_ctx, T0, 10, set())  # a worker claims, then dies mid-call
    assert [c.id for c in claims] == [m1]
    assert outbox.deliver_due(fake_ctx, now=T0 + timedelta(seconds=10))["sent"] == 0  # still leased
    lease_end = T0 + timedelta(seconds=outbox.CLAIM_LEASE_S)
    assert outbox.deliver_due(fake_ctx, now=lease_end)["sent"] == 1
    assert fake_connector(fake_ctx).calls[0].attempt == 2
    # the dead worker's late failure does not turn the sent row back
    late = outbox._Outcome(False, "transient", "timeout")
    assert outbox._record(fake_ctx, claims[0], late, lease_end)[0] == ""
    assert row(fake_ctx, m1).status == OutboundStatus.SENT


def test_a_message_whose_worker_always_dies_goes_dead(fake_ctx: HubContext) -> None:
    m1 = put(fake_ctx, "k1")
    now = T0
    for _ in range(outbox.MAX_ATTEMPTS):
        assert len(outbox._claim(fake_ctx, now, 10, set())[0]) == 1
        now += timedelta(seconds=outbox.CLAIM_LEASE_S)
    assert outbox.deliver_due(fake_ctx, now=now)["dead"] == 1
    m = row(fake_ctx, m1)
    assert (m.status, m.attempts) == (OutboundStatus.DEAD, outbox.MAX_ATTEMPTS)
    assert "worker lost" in m.last_error and not fake_connector(fake_ctx).calls


def test_two_workers_deliver_each_message_once_in_case_order(fake_ctx: HubContext,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [case_of(fake_ctx, f"C{i}") for i in range(5)]
    for step in range(3):
        for i, case_id in enumerate(cases):
            put(fake_ctx, f"C{i}:{step}", case_id, step=step)
    conn = fake_connector(fake_ctx)  # built before the threads: both share it
    original = conn.deliver

    def slow(effect: OutboundEffect) -> Any:
        time.sleep(0.01)
        return original(effect)

    monkeypatch.setattr(conn, "deliver", slow)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(10):
                outbox.deliver_due(fake_ctx, limit=4)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(conn.calls) == 15 and len(conn.applied) == 15  # each once, none twice
    for i in range(5):
        assert [e.payload["step"] for e in conn.calls if e.case_id == cases[i]] == [0, 1, 2]
    with fake_ctx.db.read_session() as s:
        assert set(s.scalars(select(OutboundMessage.status))) == {OutboundStatus.SENT}


def test_listing_pages_and_filters(fake_ctx: HubContext) -> None:
    ids = [put(fake_ctx, f"k{i}") for i in range(5)]
    fake_connector(fake_ctx).fail_permanent()
    outbox.deliver_due(fake_ctx, now=T0)
    with fake_ctx.db.read_session() as s:
        total, items = outbox.list_messages(s, None, None, 1, 2)
        assert total == 5 and [m.id for m in items] == ids[::-1][:2]
        total, items = outbox.list_messages(s, "dead", "fake", 1, 50)
        assert total == 1 and [m.id for m in items] == [ids[0]]
        assert outbox.list_messages(s, "dead", "other", 1, 50) == (0, [])
        assert outbox.list_messages(s, None, None, 1, 50, scope="9999")[0] == 0



# ----- circuit breaker ------------------------------------------------------------------------------


def breaker(ctx: HubContext, key: str = "fake") -> CircuitBreaker | None:
    with ctx.db.read_session() as s:
        row_ = s.get(CircuitBreaker, key)
        if row_ is not None:
            s.expunge(row_)
        return row_


def test_breaker_opens_after_consecutive_transient_failures_and_holds_the_rest_back(fake_ctx: HubContext) -> None:
    keys = [f"c{i}" for i in range(8)]
    ids = [put(fake_ctx, k, case_of(fake_ctx, f"X{i}")) for i, k in enumerate(keys)]
    conn = fake_connector(fake_ctx)
    conn.fail_transient(circuit.FAILURE_THRESHOLD)
    counts = outbox.deliver_due(fake_ctx, now=T0)
    # five calls failed, the breaker opened, the three claimed after it were handed back untouched
    assert counts == {"sent": 0, "failed": circuit.FAILURE_THRESHOLD, "dead": 0, "deferred": 3}
    assert len(conn.calls) == circuit.FAILURE_THRESHOLD
    b = breaker(fake_ctx)
    assert b is not None and (b.state, b.failures, b.trips) == (CircuitState.OPEN, 5, 1)
    assert b.retry_at == T0 + timedelta(seconds=circuit.OPEN_BASE_S)
    held = row(fake_ctx, ids[-1])  # due, but held back by the open breaker, not by its own clock
    assert (held.status, held.attempts, held.next_attempt_at) == (OutboundStatus.PENDING, 0, T0)
    # while open nothing of the system is claimed, whatever is due
    assert outbox.deliver_due(fake_ctx, now=T0 + timedelta(seconds=20)) == {
        "sent": 0, "failed": 0, "dead": 0, "deferred": 0}
    assert len(conn.calls) == circuit.FAILURE_THRESHOLD
    with fake_ctx.db.read_session() as s:
        assert circuit.state_of(s.get(CircuitBreaker, "fake"), T0 + timedelta(seconds=20)) == CircuitState.OPEN
        assert circuit.state_of(s.get(CircuitBreaker, "fake"), T0 + timedelta(seconds=31)) == CircuitState.HALF_OPEN


def test_failed_half_open_trial_reopens_for_longer_and_a_success_closes(fake_ctx: HubContext) -> None:
    ids = [put(fake_ctx, f"h{i}", case_of(fake_ctx, f"H{i}")) for i in range(3)]
    conn = fake_connector(fake_ctx)
    conn.fail_transient(circuit.FAILURE_THRESHOLD + 1)
    outbox.deliver_due(fake_ctx, now=T0)  # h0, h1, h2 fail ... not enough yet: retried below
    later = T0 + timedelta(hours=2)  # every backoff has run out
    outbox.deliver_due(fake_ctx, now=later)
    b = breaker(fake_ctx)
    assert b is not None and b.state == CircuitState.OPEN and b.trips == 1
    calls = len(conn.calls)
    trial = b.retry_at + timedelta(seconds=1)  # type: ignore[operator]
    outbox.deliver_due(fake_ctx, now=trial)  # the trial fails: open again, twice as long
    assert len(conn.calls) == calls + 1
    b = breaker(fake_ctx)
    assert b is not None and (b.state, b.trips) == (CircuitState.OPEN, 2)
    assert b.retry_at == trial + timedelta(seconds=2 * circuit.OPEN_BASE_S)
    outbox.deliver_due(fake_ctx, now=b.retry_at + timedelta(hours=2))  # type: ignore[operator]
    b = breaker(fake_ctx)
    assert b is not None and (b.state, b.failures, b.trips) == (CircuitState.CLOSED, 0, 0)
    assert all(row(fake_ctx, i).status == OutboundStatus.SENT for i in ids)


def test_a_refusal_is_an_answer_not_an_outage(fake_ctx: HubContext) -> None:
    for i in range(6):
        put(fake_ctx, f"r{i}", case_of(fake_ctx, f"R{i}"))
    conn = fake_connector(fake_ctx)
    conn.fail_transient(4)
    conn.fail_permanent()
    conn.fail_transient(1)
    outbox.deliver_due(fake_ctx, now=T0)
    b = breaker(fake_ctx)
    # the refusal reset the count: one transient failure after it, still closed
    assert b is not None and (b.state, b.failures) == (CircuitState.CLOSED, 1)
    assert circuit.open_until(1) == circuit.OPEN_BASE_S and circuit.open_until(99) == circuit.OPEN_CAP_S
