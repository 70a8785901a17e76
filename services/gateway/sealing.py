"""Encryption at rest of what the evidence log must keep but nobody should read casually.

The full submission of a trader (IBAN, e-mail, phone number) is kept in the evidence log as
evidence, but only *sealed*: encrypted and authenticated with Fernet (AES-128-CBC + HMAC-SHA256,
from ``cryptography``). A database dump, a backup or a staff query on the table shows an opaque
token; :meth:`Sealer.unseal` needs the key.

``TRACE30_EVIDENCE_SEALING_KEYS`` is a comma-separated list of Fernet keys. The first seals,
every one of them unseals, so a key is rotated by putting a new key first and keeping the old
ones until :meth:`Sealer.reseal` has been run over the stored tokens. A key is made with
``python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.errors import ConfigError

#: The key used in sandbox when none is configured: the URL-safe base64 of
#: ``b"trace30-sandbox-sealing-key-0001"``. It is public, so it is refused outside sandbox.
SANDBOX_KEY = "dHJhY2UzMC1zYW5kYm94LXNlYWxpbmcta2V5LTAwMDE="


_CANNOT_OPEN = "the sealed document cannot be opened with the configured keys"


class SealingError(ValueError):
    """A token cannot be unsealed: none of the keys opens it, or it was altered."""


def parse_keys(keys: str | None) -> list[str]:
    """The keys of a comma-separated list, blanks dropped; raise :class:`ConfigError` if one is bad.

    >>> parse_keys(SANDBOX_KEY + ", ") == [SANDBOX_KEY]
    True
    >>> parse_keys("not-a-key")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.ConfigError: TRACE30_EVIDENCE_SEALING_KEYS: key 1 is not a Fernet key ...
    """
    parsed = [k.strip() for k in (keys or "").split(",") if k.strip()]
    for i, key in enumerate(parsed, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raw = b""
        if len(raw) != 32:
            # the key itself is never echoed: it is a secret
            raise ConfigError(
                f"TRACE30_EVIDENCE_SEALING_KEYS: key {i} is not a Fernet key "
                "(32 bytes, URL-safe base64)"
            )
    return parsed


def check_keys(keys: str | None, *, sandbox: bool) -> str:
    """Return the keys to use, or raise :class:`ConfigError` saying what to set.

    >>> check_keys(None, sandbox=True) == SANDBOX_KEY
    True
    >>> check_keys(None, sandbox=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.ConfigError: TRACE30_EVIDENCE_SEALING_KEYS is not set. ...
    >>> check_keys(SANDBOX_KEY, sandbox=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.ConfigError: TRACE30_EVIDENCE_SEALING_KEYS holds the public sandbox key...
    """
    if sandbox and not keys:
        return SANDBOX_KEY
    if not parse_keys(keys):
        raise ConfigError(
            "TRACE30_EVIDENCE_SEALING_KEYS is not set. Outside sandbox the gateway seals the "
            "payment details and contact data it keeps as evidence: set it to a Fernet key "
            "(`python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`) and keep it: without it the sealed "
            "evidence cannot be read. Or set TRACE30_SANDBOX=1 to run against the simulators."
        )
    if not sandbox and SANDBOX_KEY in parse_keys(keys):
        raise ConfigError(
            "TRACE30_EVIDENCE_SEALING_KEYS holds the public sandbox key; outside sandbox use "
            "keys of your own."
        )
    return str(keys)


class Sealer:
    """Seals and unseals JSON documents with the first of its keys; opens with any of them."""

    def __init__(self, keys: str) -> None:
        parsed = parse_keys(keys)
        if not parsed:
            raise ConfigError("TRACE30_EVIDENCE_SEALING_KEYS is empty: no key to seal with")
        self._fernet = MultiFernet([Fernet(k) for k in parsed])

    def seal(self, document: dict[str, Any]) -> str:
        """Encrypt ``document`` (JSON-serialisable) into an opaque ASCII token."""
        plain = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return self._fernet.encrypt(plain).decode("ascii")

    def unseal(self, token: str) -> dict[str, Any]:
        """The document sealed in ``token``; :class:`SealingError` if no key opens it."""
        try:
            plain = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError) as e:
            raise SealingError(_CANNOT_OPEN) from e
        document = json.loads(plain)
        if not isinstance(document, dict):
            raise SealingError("the sealed document is not a JSON object")
        return document

    def seal_bytes(self, plain: bytes) -> bytes:
        """Encrypt a file (a supporting document) into an opaque token, with the first key."""
        return self._fernet.encrypt(plain)

    def unseal_bytes(self, token: bytes) -> bytes:
        """The file sealed in ``token``; :class:`SealingError` if no key opens it."""
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as e:
            raise SealingError(_CANNOT_OPEN) from e

    def reseal(self, token: str) -> str:
        """``token`` sealed again with the first key (after a rotation), same content."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError) as e:
            raise SealingError(_CANNOT_OPEN) from e
