"""bench/metrics_bench.py on a few thousand cases: the fill, the rollup and every timed question
work, and the figures the API gives add up to the cases that were made (merged ones excluded)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.metrics_bench import _cases, report, run
from hub.services.metrics import local_day


def test_a_small_run_answers_every_question(tmp_path: Path) -> None:
    result = run(3000, "", 2, 1, tmp_path)
    assert 0 < result["merged"] < 100 and result["filed_total"] == 3000 - result["merged"]
    assert result["rollup_rows"] > 0 and result["rollup_days"] >= 700
    assert len(result["timings"]) == 8 and all(p95 > 0 for _p50, p95 in result["timings"].values())
    assert "p95 ms" in report(result)


def test_the_spread_is_two_years_of_300_grids() -> None:
    cases = [c for chunk, _t in _cases(5000, 2, datetime(2026, 6, 1, tzinfo=UTC)) for c in chunk]
    days = {local_day(c["reported_at"]) for c in cases}
    assert len({c["grid_code"] for c in cases}) == 300 and len({c["category"] for c in cases}) >= 25
    assert (max(days) - min(days)).days >= 700
