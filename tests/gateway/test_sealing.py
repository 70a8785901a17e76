"""Sealing at rest: round trip, key rotation, wrong or altered tokens, key configuration."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from services.gateway.sealing import SANDBOX_KEY, Sealer, SealingError, check_keys, parse_keys
from shared.config import load
from shared.errors import ConfigError

SUBMISSION = {
    "trader_id": "t-1",
    "email": "anna.mueller@example.de",
    "phone": "+49 30 1234567",
    "payment": {"iban": "DE89370400440532013000", "account_holder": "Anna Müller"},
}


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_round_trip_keeps_the_document_and_hides_it() -> None:
    sealer = Sealer(new_key())
    token = sealer.seal(SUBMISSION)
    assert sealer.unseal(token) == SUBMISSION
    for secret in ("DE89370400440532013000", "anna.mueller", "1234567", "Müller"):
        assert secret not in token
    assert token.isascii()
    # a fresh IV each time: equal submissions do not give equal tokens
    assert sealer.seal(SUBMISSION) != token


def test_rotation_first_key_seals_every_key_unseals() -> None:
    old, new = new_key(), new_key()
    old_token = Sealer(old).seal(SUBMISSION)
    rotated = Sealer(f"{new},{old}")
    assert rotated.unseal(old_token) == SUBMISSION
    new_token = rotated.seal(SUBMISSION)
    assert Sealer(new).unseal(new_token) == SUBMISSION  # sealed with the first key
    with pytest.raises(SealingError):
        Sealer(old).unseal(new_token)
    resealed = rotated.reseal(old_token)
    assert Sealer(new).unseal(resealed) == SUBMISSION  # the old key may now be dropped


def test_wrong_key_or_altered_token_fails() -> None:
    token = Sealer(new_key()).seal(SUBMISSION)
    with pytest.raises(SealingError):
        Sealer(new_key()).unseal(token)
    sealer = Sealer(new_key())
    token = sealer.seal(SUBMISSION)
    altered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(SealingError):
        sealer.unseal(altered)
    with pytest.raises(SealingError):
        sealer.unseal("not a token é")


@pytest.mark.parametrize("keys", ["", " , ", "short", "x" * 44, f"{SANDBOX_KEY},nope"])
def test_bad_keys_stop_start_up_without_echoing_them(keys: str) -> None:
    with pytest.raises(ConfigError) as e:
        Sealer(keys)
    if keys.strip(" ,"):
        assert "nope" not in str(e.value) and "short" not in str(e.value)


def test_parse_keys_drops_blanks() -> None:
    a, b = new_key(), new_key()
    assert parse_keys(f" {a} ,, {b} ") == [a, b]


def test_check_keys() -> None:
    assert check_keys(None, sandbox=True) == SANDBOX_KEY
    own = new_key()
    assert check_keys(own, sandbox=False) == own
    assert check_keys(own, sandbox=True) == own
    with pytest.raises(ConfigError, match="not set"):
        check_keys("", sandbox=False)
    with pytest.raises(ConfigError, match="sandbox key"):
        check_keys(f"{own},{SANDBOX_KEY}", sandbox=False)


def test_the_sandbox_default_setting_is_the_sandbox_key() -> None:
    assert load({"TRACE30_SANDBOX": "1"})["EVIDENCE_SEALING_KEYS"] == SANDBOX_KEY
    assert load({})["EVIDENCE_SEALING_KEYS"] is None
    Sealer(SANDBOX_KEY).unseal(Sealer(SANDBOX_KEY).seal({"ok": True}))
