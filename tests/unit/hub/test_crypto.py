"""Secrets at rest: credentials and reporter identity are encrypted, never shown."""

from __future__ import annotations

from typing import Any

import pytest

from hub.context import HubContext
from hub.crypto import SecretBox, SecretBoxError, generate_key, normalize_phone


def test_secret_box_round_trip_and_wrong_key() -> None:
    box = SecretBox(generate_key())
    token = box.seal_json({"app_secret": "s3cret"})
    assert b"s3cret" not in token
    assert box.open_json(token) == {"app_secret": "s3cret"}
    with pytest.raises(SecretBoxError):
        SecretBox(generate_key()).open_json(token)
    assert "s3cret" not in repr(box)


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(SecretBoxError, match="GRIDHUB_SECRET_KEY"):
        SecretBox("")


def test_keyed_hash_of_normalized_phone_matches_across_formats() -> None:
    box = SecretBox(generate_key())
    assert box.keyed_hash(normalize_phone("021-6400 1234")) == box.keyed_hash(normalize_phone("02164001234"))
    assert normalize_phone("+86 138 1234 5678") == "13812345678"
    assert box.keyed_hash("13812345678") != SecretBox(generate_key()).keyed_hash("13812345678")


def test_system_credentials_are_encrypted_and_never_returned(hub_ctx: HubContext, client: Any,
                                                             admin_headers: dict[str, str]) -> None:
    from hub.services.systems import export_system, upsert_system

    with hub_ctx.db.session() as s:
        system = upsert_system(hub_ctx, s, {"key": "hotline12345", "plugin": "hotline12345",
                                            "base_url": "http://127.0.0.1:1/openapi/v2",
                                            "credentials": {"app_key": "k", "app_secret": "VERY-SECRET-1"}})
        assert system.credentials_encrypted and b"VERY-SECRET-1" not in system.credentials_encrypted
        exported = export_system(hub_ctx, system)
    assert exported["credentials"] == {"app_key": "***", "app_secret": "***"}
    body = client.get("/api/v1/systems", headers=admin_headers).get_data(as_text=True)
    assert "VERY-SECRET-1" not in body and "app_secret" in body  # the name, never the value
    # re-importing the masked export keeps the stored secret
    with hub_ctx.db.session() as s:
        system = upsert_system(hub_ctx, s, exported)
        assert hub_ctx.box.open_json(system.credentials_encrypted)["app_secret"] == "VERY-SECRET-1"
