"""`hub dedup eval` replays JSONL through the real engine (explicit references link tickets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.evaluation.replay import EvalInputError, prepare, replay

ROWS = [
    {"system": "hotline12345", "external_id": "GD1", "cluster": "A", "reported_at": "2026-11-23T09:00:00+08:00",
     "category_code": "0403", "description": "斜土路1175号有人私设地锁", "datum": "bd09",
     "lng": 121.4597, "lat": 31.1978, "phone": "13812345678"},
    {"system": "city_management", "external_id": "c-1", "cluster": "A", "reported_at": "2026-11-23T09:30:00+08:00",
     "category_code": "0511", "datum": "epsg4549", "x": 3452946.0, "y": 638213.0,
     "refs": [{"system": "hotline12345", "external_id": "GD1"}]},
    {"system": "police_patrol", "external_id": "J1", "cluster": "A", "reported_at": "2026-11-23T09:10:00+08:00",
     "category_code": "LD09", "lng": 121.4532, "lat": 31.1921},
    {"system": "law_enforcement", "external_id": "ZF-1", "cluster": "B",
     "reported_at": "2026-11-23T10:00:00+08:00", "category_code": "CG-0101", "datum": "gcj02",
     "lng": 121.4577, "lat": 31.1901},
]


def test_prepare_normalizes_category_and_datum() -> None:
    bd = prepare(ROWS[0], 1)
    assert bd["category"] == "ground_lock" and abs(bd["lng"] - 121.4597) > 0.004  # BD-09 offset removed
    gk = prepare(ROWS[1], 2)
    assert gk["category"] == "ground_lock" and 121.0 < gk["lng"] < 122.0 and 31.0 < gk["lat"] < 31.5
    with pytest.raises(EvalInputError, match=r"line 7: .*9999"):
        prepare({**ROWS[2], "category_code": "9999"}, 7)
    with pytest.raises(EvalInputError, match="offset"):
        prepare({**ROWS[2], "reported_at": "2026-11-23T09:10:00"}, 1)


def test_replay_scores_the_cases_the_engine_formed() -> None:
    report = replay(ROWS)
    # the built-in matcher links only the explicit reference (c-1 → GD1); J1 stays alone
    assert (report.tickets, report.clusters, report.cases, report.linked) == (4, 2, 3, 1)
    assert report.pairwise.precision == 1.0 and report.pairwise.recall == pytest.approx(1 / 3)
    assert report.bcubed.precision == 1.0 and report.bcubed.recall < 1.0


def test_cli(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["dedup", "eval", "--input", str(path)])
    assert result.exit_code == 0, result.output
    assert "B-cubed" in result.output and "pairwise" in result.output and "tickets/s" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"system": "x"}\nnot json\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["dedup", "eval", "--input", str(bad)])
    assert result.exit_code != 0 and "line 2" in result.output
