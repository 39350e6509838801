"""Encryption at rest (credentials, reporter identity) and keyed hashes for matching."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class SecretBoxError(Exception):
    pass


class SecretBox:
    """Fernet with the deployment's key. The key is never stored in the database or logged."""

    def __init__(self, key: str) -> None:
        if not key:
            raise SecretBoxError(
                "GRIDHUB_SECRET_KEY is not set: generate one with `hub keygen` and export it")
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as exc:
            raise SecretBoxError("GRIDHUB_SECRET_KEY is not a valid Fernet key") from exc
        self._hash_key = hashlib.sha256(b"gridhub-keyed-hash\0" + key.encode()).digest()

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal_json(self, value: Any) -> bytes:
        return self._fernet.encrypt(json.dumps(value, ensure_ascii=False).encode())

    def open_json(self, token: bytes | None) -> Any:
        if not token:
            return None
        try:
            return json.loads(self._fernet.decrypt(token))
        except InvalidToken as exc:
            raise SecretBoxError("cannot decrypt: wrong GRIDHUB_SECRET_KEY?") from exc

    def keyed_hash(self, value: str) -> str:
        """Stable, non-reversible fingerprint (e.g. a phone number) for matching."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()


def generate_key() -> str:
    return Fernet.generate_key().decode()


def normalize_phone(phone: str) -> str:
    """Digits only, mainland prefixes dropped, so 021-6400 1234 and +86 21 64001234 agree."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) > 11:
        digits = digits[2:]
    return digits
