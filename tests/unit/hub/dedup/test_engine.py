"""The dedup model, scoring, blocking, training and the store-backed engine inside ingestion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.config import HubConfig
from hub.context import HubContext
from hub.crypto import SecretBox, generate_key
from hub.dedup.blocking import MemoryIndex, file_keys, lookup_keys
from hub.dedup.model import DedupModel, Thresholds, load_model, model_from_dict
from hub.dedup.normalize import normalize
from hub.dedup.scoring import LINK, NEW, RECURRENCE, REVIEW, Member, compare, decide, score_members
from hub.dedup.train import Labelled, fit_weights, learn_pin_errors, learn_windows, train
from hub.models import Case, DedupKey, MatchRecord, ReviewStatus, Ticket
from mappings import load_taxonomy
from sandbox import scenario
from tests.support.fake_system import record
from tests.unit.hub.conftest import ingest, make_fake_ctx

TAXONOMY = load_taxonomy()
BOX = SecretBox(generate_key())


def _row(ext: str, **over: Any) -> dict[str, Any]:
    row = {"system": "hotline12345", "external_id": ext, "reported_at": "2026-11-23T09:00:00+08:00",
           "category_code": "0403", "title": "私设地锁", "description": "斜土路1175号门口有人私设地锁",
           "address": "徐汇区斜土路1175号", "lng": 121.4532, "lat": 31.1921}
    row.update(over)
    return row


def _norm(ext: str, **over: Any) -> Any:
    return normalize(_row(ext, **over), taxonomy=TAXONOMY, hasher=BOX.keyed_hash)


def test_shipped_model_loads_and_reads_sensibly() -> None:
    model = load_model()
    assert model.weight("address", "same_place") > 3 > model.weight("address", "different")
    assert model.weight("distance", "pin_0.35") > 0 > model.weight("distance", "far")
    # a grid worker's GPS pin is tighter than a citizen's pin on the 12345 map
    assert model.pin_error_m["grid"] < model.pin_error_m["hotline12345"]
    assert model.weight("margin", "alone") > 0 > model.weight("margin", "behind")
    assert model.weight("time", "beyond") < -3
    # parking: hours; garbage: days; illegal construction: weeks
    assert model.window_h("street_vending") < model.window_h("garbage_exposed") \
        < model.window_h("illegal_construction")
    assert 0 < model.default_thresholds.review <= model.default_thresholds.auto < 1


@pytest.mark.parametrize(("raw", "message"), [
    ({"weights": {"smell": {"x": 1}}}, "unknown feature"),
    ({"weights": {"phone": {"maybe": 1}}}, "unknown level"),
    ({"weights": {"phone": {"same": float("nan")}}}, "finite"),
    ({"weights": {}, "default_thresholds": {"auto": 0.5, "review": 0.9}}, "review <= auto"),
    ({"weights": {}, "windows_h": {"ground_lock": 0}}, "positive"),
])
def test_model_validation_says_what_is_wrong(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model_from_dict(raw)


def test_model_round_trips_through_yaml(tmp_path: Path) -> None:
    model = load_model()
    model.save(tmp_path / "m.yaml", header="# test")
    again = load_model(tmp_path / "m.yaml")
    assert again.to_dict() == model.to_dict()


def test_compare_levels_distinguish_conflict_from_missing_detail() -> None:
    a = _norm("A")
    assert compare(a, _norm("B"), 0.5, 100)["address"] == "same_place"
    road_only = _norm("C", address="徐汇区斜土路", description="斜土路上有地锁")
    assert compare(a, road_only, 0.5, 100)["address"] == "same_road"
    assert compare(a, _norm("D", address="斜土路1180号", description=""), 0.5, 100)["address"] == "near_number"
    assert compare(a, _norm("E", address="斜土路1375号", description=""), 0.5, 100)["address"] == "different"
    inside = _norm("F", address="日晖四村3号楼", description="")
    assert compare(inside, _norm("G", address="日晖四村5号楼", description=""), 1, 100)["address"] == "other_building"
    assert compare(inside, _norm("H", address="日晖四村", description=""), 1, 100)["address"] == "same_compound"
    assert compare(a, _norm("I", lng=None, lat=None), 1, 100)["distance"] == "weak"
    assert compare(a, a, 200, 100)["time"] == "beyond"


def test_distance_is_read_in_units_of_the_pairs_pin_error() -> None:
    # ~55 m apart: close for two citizens' pins, another spot for two grid workers' GPS
    a = _norm("A", system="grid", lng=121.4532, lat=31.1921)
    b = _norm("B", system="grid", lng=121.4532, lat=31.19260)
    model = DedupModel(weights={}, pin_error_m={"grid": 12.0, "hotline12345": 45.0})
    assert compare(a, b, 1, 100, model.pin_scale_m("grid", "grid"))["distance"] in ("pin_6", "pin_3")
    assert compare(a, b, 1, 100, model.pin_scale_m("hotline12345", "hotline12345"))["distance"] == "pin_1"
    assert compare(a, b, 1, 100)["distance"] == "le_80m"  # a model without pin errors: metres
    assert model.pin_scale_m("nobody", "grid") == pytest.approx((30.0**2 + 12.0**2) ** 0.5)  # default error


def test_pin_errors_are_learned_per_system_from_labelled_pairs() -> None:
    data = []
    for k in range(30):  # grid pins 6 m apart, hotline pins 60 m apart, mixed pairs in between
        lat = 31.19 + k * 0.001
        for ext, system, dlat in (("g1", "grid", 0.0), ("g2", "grid", 0.000054), ("h1", "hotline12345", 0.00027),
                                  ("h2", "hotline12345", -0.00027)):
            t = _norm(f"{ext}-{k}", system=system, lng=121.45, lat=lat + dlat)
            data.append(Labelled(t, f"C{k}", ext))
    errors, default = learn_pin_errors(data)
    assert errors["grid"] < 10 < 30 < errors["hotline12345"]
    assert default in errors.values()


def test_margin_says_whether_the_case_is_a_clear_favourite() -> None:
    model = load_model()
    ticket = _norm("T", reported_at="2026-11-23T10:00:00+08:00")
    near = Member(1, 10, _norm("A"))
    assert dict((c.feature, c.level) for c in score_members(model, ticket, [near])[0].contributions)["margin"] \
        == "alone"
    look_alike = Member(2, 20, _norm("B", reported_at="2026-11-23T09:10:00+08:00"))
    levels = {c.case_id: dict((x.feature, x.level) for x in c.contributions)
              for c in score_members(model, ticket, [near, look_alike])}
    assert {levels[10]["margin"], levels[20]["margin"]} <= {"ahead_0", "behind"}


def _levels(model: Any, ticket: Any, members: list[Member]) -> dict[int, dict[str, str]]:
    return {c.case_id: {x.feature: x.level for x in c.contributions} for c in score_members(model, ticket, members)}


def test_place_cases_counts_the_open_cases_of_the_group_in_the_named_compound() -> None:
    model = load_model()
    at = {"address": "日晖新城小区内", "description": "", "lng": 121.4532, "lat": 31.1921}
    ticket = _norm("T", reported_at="2026-11-23T10:00:00+08:00", **at)
    members = [Member(i, 10 * i, _norm(f"M{i}", **at)) for i in range(1, 4)]
    assert {lv["place_cases"] for lv in _levels(model, ticket, members[:1]).values()} == {"le_1"}
    assert {lv["place_cases"] for lv in _levels(model, ticket, members).values()} == {"three_four"}
    # a road address names no compound
    road = _norm("R", reported_at="2026-11-23T10:00:00+08:00")
    assert {lv["place_cases"] for lv in _levels(model, road, [Member(9, 90, _norm("A"))]).values()} \
        == {"no_compound"}


def test_compound_distance_reads_the_pins_of_two_reports_in_one_compound() -> None:
    model = load_model()
    ticket = _norm("T", address="日晖新城小区内", description="", lng=121.4532, lat=31.1921)
    close = Member(1, 10, _norm("C", address="日晖新城3号楼", description="", lng=121.4533, lat=31.1921))
    apart = Member(2, 20, _norm("F", address="日晖新城5号楼", description="", lng=121.4552, lat=31.1921))
    levels = _levels(model, ticket, [close, apart])
    assert levels[10]["compound_distance"] == "close"
    assert levels[20]["compound_distance"] == "far_apart"  # ~190 m: three pin errors and more
    road = _levels(model, _norm("R"), [Member(3, 30, _norm("A"))])
    assert road[30]["compound_distance"] == "not_compound"


def test_runner_up_tells_a_split_incident_from_another_one() -> None:
    model = load_model()
    ticket = _norm("T", reported_at="2026-11-23T10:00:00+08:00")
    one = Member(1, 10, _norm("A"))
    split = Member(2, 20, _norm("B", reported_at="2026-11-23T09:10:00+08:00"))
    levels = _levels(model, ticket, [one, split])
    assert levels[10]["runner_up"] == levels[20]["runner_up"] == "twin_place"  # one incident, two cases
    other = Member(3, 30, _norm("C", address="斜土路1181号", description="", reported_at="2026-11-23T09:10:00+08:00"))
    assert _levels(model, ticket, [one, other])[10]["runner_up"] in {"distinct", "clear"}
    assert _levels(model, ticket, [one])[10]["runner_up"] == "clear"


def test_a_numbered_report_meets_the_road_only_report_of_its_road() -> None:
    road_only = _norm("R", address="斜土路近东安路", description="", lng=None, lat=None)
    numbered = _norm("N", address="斜土路1153号", description="", lng=None, lat=None)
    assert set(file_keys(road_only)) & set(lookup_keys(numbered))
    # but not every numbered report of the road: only those that name no number
    other = _norm("O", address="斜土路1375号", description="", lng=None, lat=None)
    assert not {k for k in set(file_keys(other)) & set(lookup_keys(numbered)) if "|addr|" in k}


def test_decide_links_reviews_and_opens_from_the_case_best_member() -> None:
    model = load_model()
    ticket = _norm("NEW", reported_at="2026-11-23T10:00:00+08:00")
    same = Member(1, 10, _norm("OLD"), "REPORTED", datetime(2026, 11, 23, 1, tzinfo=UTC))
    elsewhere = Member(2, 20, _norm("FAR", address="斜土路480号", description="", lng=121.47, lat=31.20))
    decision = decide(model, ticket, [elsewhere, same])
    assert decision.action == LINK and decision.best is not None and decision.best.case_id == 10
    assert {c.feature for c in decision.best.contributions} >= {"distance", "time", "address", "category"}
    assert decide(model, ticket, [elsewhere]).action == NEW
    assert decide(model, ticket, []).action == NEW
    # a person rejected case 10 for this ticket: it is not proposed again
    assert decide(model, ticket, [same], rejected_cases=frozenset({10})).action == NEW
    # between the thresholds: review
    best = score_members(model, ticket, [same])[0]
    wary = DedupModel(weights=model.weights, prior=model.prior, windows_h=model.windows_h,
                      group_weights=model.group_weights, group_priors=model.group_priors,
                      pin_error_m=model.pin_error_m, default_pin_error_m=model.default_pin_error_m,
                      default_thresholds=Thresholds(0.9999999, best.probability - 1e-6))
    assert decide(wary, ticket, [same]).action == REVIEW
    # a strong match to a closed case is a recurrence
    closed = Member(1, 10, _norm("OLD"), "CLOSED", datetime(2026, 11, 1, tzinfo=UTC),
                    datetime(2026, 11, 22, tzinfo=UTC))
    assert decide(model, ticket, [closed]).action == RECURRENCE
    # a merged-away case is never a candidate
    cancelled = Member(1, 10, _norm("OLD"), "CANCELLED")
    assert decide(model, ticket, [cancelled]).action == NEW


def test_memory_blocking_uses_cells_addresses_phones_and_the_window() -> None:
    model = load_model()
    index = MemoryIndex(model, TAXONOMY)
    index.add(1, 1, _norm("PINNED"))
    index.add(2, 2, _norm("NOPIN", lng=None, lat=None))
    index.add(3, 3, _norm("NOISE", category_code="0502", description="噪声", address="徐汇区斜土路1181号"))
    index.add(4, 4, _norm("OLD", reported_at="2026-09-01T09:00:00+08:00"))
    found = {m.ticket_id for m in index.candidates(_norm("Q"))}
    assert found == {1, 2}  # not another group (elsewhere on the road), not outside the window
    # another group at the very same house number: a mistyped category still meets its incident
    index.add(5, 5, _norm("MISTYPED", category_code="0502", description="噪声"))
    assert {m.ticket_id for m in index.candidates(_norm("Q3"))} == {1, 2, 5}
    # a ticket without a pin meets the others through its address
    assert {m.ticket_id for m in index.candidates(_norm("Q2", lng=None, lat=None))} == {1, 2, 5}


def test_training_learns_windows_weights_and_thresholds_from_labels() -> None:
    rows = scenario.generate(1500, seed=5, days=30)
    model, result, data = train(rows, TAXONOMY, BOX.keyed_hash, base=DedupModel(weights={}), version="t")
    assert model.version == "t" and model.weight("address", "same_place") > 0 > model.weight("time", "beyond")
    assert learn_windows(data, 72.0)  # categories with enough examples get their own window
    links = [d for d in result.decisions if d[1] == LINK]
    assert links and sum(d[3] for d in links) / len(links) > 0.95
    truth_pairs = sum(1 for d in data) - len({d.cluster for d in data})
    assert len(links) > truth_pairs / 3  # it does link, and mostly correctly


def test_fit_weights_prefers_evidence_seen_with_matches() -> None:
    levels_match = ("le_15m", "le_0.1w", "exact", "ge_0.5", "same_place", "missing", "other", "none", "alone",
                    "no_compound", "not_compound", "clear")
    levels_other = ("far", "le_1w", "group", "none", "different", "missing", "other", "several", "behind",
                    "no_compound", "not_compound", "distinct")
    from collections import Counter
    counts: Counter[tuple[tuple[str, ...], bool]] = Counter({(levels_match, True): 200, (levels_match, False): 2,
                                                             (levels_other, False): 500, (levels_other, True): 1})
    weights, _prior = fit_weights(counts, iterations=1500)
    assert weights["address"]["same_place"] > 0 > weights["address"]["different"]
    assert weights["address"]["near_number"] == 0.0  # never seen: no evidence


def _cases(ctx: HubContext) -> dict[str, int | None]:
    with ctx.db.read_session() as s:
        return {t.external_id: t.case_id for t in s.scalars(select(Ticket))}


def test_engine_links_similar_reports_and_stores_why(hub_config: HubConfig) -> None:
    ctx = make_fake_ctx(hub_config)
    try:
        here = {"addr": "斜土路1175号", "lng": 121.4532, "lat": 31.1921}
        ingest(ctx, record("A1", **here), record("A2", at="2026-11-23 09:40:00", **here), record("B1"))
        cases = _cases(ctx)
        assert cases["A1"] == cases["A2"] != cases["B1"]
        with ctx.db.read_session() as s:
            records = {r.ticket_id: r for r in s.scalars(select(MatchRecord))}
            a2 = s.scalar(select(Ticket).where(Ticket.external_id == "A2"))
            assert a2 is not None
            why = records[a2.id]
            assert why.action == "link" and why.matcher == "dedup" and why.probability is not None
            assert {c["feature"] for c in why.contributions} >= {"distance", "address", "time"}
            assert s.scalars(select(DedupKey.key).where(DedupKey.ticket_id == a2.id)).all()
    finally:
        ctx.close()


def test_engine_queues_ambiguous_pairs_for_review(hub_config: HubConfig, tmp_path: Path) -> None:
    model = load_model()
    wary = DedupModel(weights=model.weights, prior=model.prior, windows_h=model.windows_h,
                      default_thresholds=Thresholds(0.9999999, 0.05), version="wary")
    wary.save(tmp_path / "wary.yaml")
    ctx = make_fake_ctx(HubConfig(**{**hub_config.__dict__, "dedup_model": str(tmp_path / "wary.yaml")}))
    try:
        here = {"addr": "斜土路1175号", "lng": 121.4532, "lat": 31.1921}
        ingest(ctx, record("A1", **here), record("A2", at="2026-11-23 10:00:00", **here))
        cases = _cases(ctx)
        assert cases["A1"] != cases["A2"]
        with ctx.db.read_session() as s:
            pending = s.scalars(select(MatchRecord).where(MatchRecord.review_status == ReviewStatus.PENDING)).all()
            assert [(p.case_id, p.candidate_case_id, p.action) for p in pending] == [
                (cases["A2"], cases["A1"], "review")]
            case = s.get(Case, cases["A2"])
            assert case is not None and [e.kind for e in case.events] == ["case_opened", "task_list", "match_review"]
    finally:
        ctx.close()


def test_engine_treats_a_report_after_closure_as_a_recurrence(hub_config: HubConfig) -> None:
    ctx = make_fake_ctx(hub_config)
    try:
        here = {"addr": "斜土路1175号", "lng": 121.4532, "lat": 31.1921}
        ingest(ctx, record("A1", **here))
        with ctx.db.session() as s:
            case = s.scalar(select(Case))
            assert case is not None
            case.status, case.closed_at = "CLOSED", datetime(2026, 11, 24, tzinfo=UTC)
        later = (datetime(2026, 11, 24, 10) + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")
        ingest(ctx, record("A2", at=later, **here))
        cases = _cases(ctx)
        assert cases["A1"] != cases["A2"]
        with ctx.db.read_session() as s:
            again = s.get(Case, cases["A2"])
            assert again is not None and again.recurrence_of_id == cases["A1"]
    finally:
        ctx.close()


def test_a_relayed_ticket_is_matched_as_from_its_origin_system() -> None:
    from hub.dedup.engine import origin_system
    from hub.facade import TicketView

    relayed = TicketView(1, "replay", "jsonl_replay", "grid:WG1", None, {"origin_system": "grid"}, {})
    assert origin_system(relayed) == "grid"  # its pin is a grid worker's GPS, not "the replay's"
    direct = TicketView(2, "12345", "hotline12345", "GD1", None, {"source": "1", "origin_system": " "}, {})
    assert origin_system(direct) == "hotline12345"  # a system's own source code is not a system
