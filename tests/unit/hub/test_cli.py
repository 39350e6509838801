"""The `hub` command line over a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hub.cli import main
from hub.config import HubConfig


@pytest.fixture
def env(hub_config: HubConfig, monkeypatch: pytest.MonkeyPatch) -> HubConfig:
    monkeypatch.setenv("GRIDHUB_DATABASE_URL", hub_config.database_url)
    monkeypatch.setenv("GRIDHUB_BROKER_URL", hub_config.broker_url)
    monkeypatch.setenv("GRIDHUB_VAR_DIR", hub_config.var_dir)
    monkeypatch.setenv("GRIDHUB_SECRET_KEY", hub_config.secret_key)
    monkeypatch.setenv("GRIDHUB_INGEST_MODE", "inline")
    return hub_config


def run(*args: str) -> str:
    result = CliRunner().invoke(main, ["--log-level", "WARNING", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_systems_import_export_round_trip_masks_secrets(env: HubConfig, tmp_path: Path) -> None:
    source = tmp_path / "systems.yaml"
    source.write_text(yaml.safe_dump({"systems": [{
        "key": "hotline12345", "plugin": "hotline12345", "name": "12345 热线",
        "base_url": "http://127.0.0.1:1/openapi/v2", "poll_interval_s": 7,
        "credentials": {"app_key": "demo-app", "app_secret": "TOP-SECRET-42"},
        "settings": {"units": ["斜土路街道"]}}]}, allow_unicode=True), encoding="utf-8")
    assert "imported hotline12345" in run("systems", "import", str(source))
    exported = yaml.safe_load(run("systems", "export"))
    (system,) = exported["systems"]
    assert system["credentials"] == {"app_key": "***", "app_secret": "***"}
    assert system["poll_interval_s"] == 7 and system["settings"] == {"units": ["斜土路街道"]}
    assert "TOP-SECRET-42" not in json.dumps(exported, ensure_ascii=False)


def test_unknown_plugin_is_a_clear_error(env: HubConfig, tmp_path: Path) -> None:
    source = tmp_path / "bad.yaml"
    source.write_text(yaml.safe_dump([{"key": "x", "plugin": "no_such_plugin"}]), encoding="utf-8")
    result = CliRunner().invoke(main, ["systems", "import", str(source)])
    assert result.exit_code != 0 and "no_such_plugin" in str(result.exception)


def test_tokens_and_plugins(env: HubConfig) -> None:
    token = run("tokens", "create", "ops", "--role", "operator").strip()
    assert token.startswith("gh_") and len(token) > 30
    listing = run("plugins", "list")
    for name in ("hotline12345", "police_patrol", "city_management", "law_enforcement",
                 "hub.plugin.builtin_matchers"):
        assert name in listing
    assert json.loads(run("inbound", "replay")) == {}
    assert len(run("keygen").strip()) == 44


def test_users_create_takes_the_password_from_stdin_never_an_argument(env: HubConfig) -> None:
    runner = CliRunner()
    made = runner.invoke(main, ["users", "create", "chen", "--role", "operator", "--scope", "310104001",
                                "--password-stdin"], input="a-long-password-1\n", catch_exceptions=False)
    assert made.exit_code == 0 and "created chen" in made.output
    weak = runner.invoke(main, ["users", "create", "qian", "--role", "admin", "--password-stdin"], input="short\n")
    assert weak.exit_code != 0 and "至少" in weak.output
    bad_scope = runner.invoke(main, ["users", "create", "sun", "--role", "admin", "--scope", "12",
                                     "--password-stdin"], input="a-long-password-1\n")
    assert bad_scope.exit_code != 0 and "辖区" in bad_scope.output


def test_sync_health_and_reconcile_print_json(env: HubConfig, tmp_path: Path) -> None:
    health = json.loads(run("sync", "health"))
    assert health == []  # no systems yet
    assert run("sync", "reconcile") == ""
    assert json.loads(run("sync", "replay")) == {"replayed": 0}
