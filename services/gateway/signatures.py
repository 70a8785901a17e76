"""Webhook signatures: how trace30 signs a webhook and how a receiver checks it.

This module imports nothing but the standard library, so a marketplace can vendor or import it
to check trace30's webhooks without installing the rest of trace30 (a test proves it).

Every request carries::

    Content-Type: application/json
    Trace30-Event: verification.completed
    Trace30-Delivery: whd_5f0c...          (the same on every retry: deduplicate on it)
    Trace30-Signature: t=1735689600,v1=3b1f...
    User-Agent: trace30-webhooks/0.1

Beside them, the three headers of `Standard Webhooks <https://www.standardwebhooks.com>`_, so
that any of its off-the-shelf verifiers (the ``standardwebhooks`` libraries) can check a
delivery::

    webhook-id: whd_5f0c...                 (the delivery id: the same on every retry)
    webhook-timestamp: 1735689600
    webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=

``v1,`` is followed by the base64 HMAC-SHA256 of ``f"{id}.{timestamp}."`` and the body. Its key
is the secret as Standard Webhooks reads it: for a ``whsec_<base64>`` secret the bytes the
base64 encodes; for any other secret its UTF-8 bytes (give those bytes to the library:
``Webhook(secret.encode())``). During a rotation ``webhook-signature`` holds one signature per
secret, separated by spaces. :func:`verify_standard` checks them with the standard library.

``v1`` is the hex HMAC-SHA256, keyed with the client's webhook secret, of the timestamp, a dot
and the exact body bytes (``f"{t}.".encode() + body``). During a secret rotation the header holds
one ``v1`` per secret; a receiver accepts the request if any of them matches. A receiver must
also reject a timestamp more than five minutes away from its clock, so a captured request
cannot be replayed later. With Flask, a receiver is::

    from services.gateway.signatures import WebhookSignatureError, verify

    @app.post("/trace30-webhook")
    def trace30_webhook():
        try:
            verify(SECRET, request.headers.get("Trace30-Signature", ""), request.get_data())
        except WebhookSignatureError:
            abort(400)
        event = request.get_json()          # parse only after verifying the raw bytes
        if already_seen(request.headers["Trace30-Delivery"]):
            return "", 204                  # a retry of a delivery already handled
        handle(event)
        return "", 204                      # any 2xx: delivered; anything else: retried

"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

SIGNATURE_HEADER = "Trace30-Signature"
EVENT_HEADER = "Trace30-Event"
DELIVERY_HEADER = "Trace30-Delivery"
#: How far a signature's timestamp may be from the receiver's clock, either way.
DEFAULT_TOLERANCE_S = 300

Secrets = str | Sequence[str]


class WebhookSignatureError(ValueError):
    """The request does not prove it comes from trace30; the receiver must reject it."""


class InvalidSignature(WebhookSignatureError):
    """The header is missing or malformed, or no signature in it matches the body."""


class StaleSignature(WebhookSignatureError):
    """The signature is genuine but its timestamp is outside the tolerance (a replay)."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}."`` followed by ``body``, keyed with ``secret``.

    >>> sign("whsec_test", 1700000000, b'{"event":"verification.completed"}')[:16]
    '3e676f269f45c30d'
    """
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _secrets(secret: Secrets) -> list[str]:
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets or not all(secrets):
        raise ValueError("a webhook secret must not be empty")
    return secrets


def signature_header(secret: Secrets, body: bytes, now: float | None = None) -> str:
    """The ``Trace30-Signature`` value for ``body``: ``t=<unix seconds>,v1=<hex>``.

    Given several secrets (a rotation), one ``v1`` per secret, in order.

    >>> signature_header("whsec_test", b"{}", now=1700000000.9)[:16]
    't=1700000000,v1='
    >>> signature_header(["new", "old"], b"{}", now=1700000000).count("v1=")
    2
    """
    timestamp = int(time.time() if now is None else now)
    return ",".join(
        [f"t={timestamp}"] + [f"v1={sign(s, timestamp, body)}" for s in _secrets(secret)]
    )


def parse_header(header: str) -> tuple[int, list[str]]:
    """The timestamp and the ``v1`` signatures of a ``Trace30-Signature`` value.

    Unknown schemes are ignored, so a later ``v2`` does not break today's receivers.

    >>> parse_header("t=1700000000, v1=ab, v0=zz, v1=cd")
    (1700000000, ['ab', 'cd'])
    >>> parse_header("v1=ab")
    Traceback (most recent call last):
    ...
    services.gateway.signatures.InvalidSignature: the signature header has no timestamp
    """
    timestamp: int | None = None
    signatures: list[str] = []
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not _seconds(value):
                raise InvalidSignature("the signature header's timestamp is not a number")
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None:
        raise InvalidSignature("the signature header has no timestamp")
    if not signatures:
        raise InvalidSignature("the signature header has no v1 signature")
    return timestamp, signatures


def verify(
    secret: Secrets,
    header: str,
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a webhook's ``Trace30-Signature`` against the raw ``body``; return if it is genuine.

    Raises :class:`InvalidSignature` when no ``v1`` in ``header`` matches (a forged or
    altered request, or the wrong secret) and :class:`StaleSignature` when the signature
    matches but its timestamp is more than ``tolerance_s`` away from ``now`` (a replay, or a
    clock far off). ``secret`` may be a list: any of them may match (the receiver's side of a
    rotation).

    >>> body = b'{"event":"verification.completed"}'
    >>> header = signature_header("whsec_test", body, now=1700000000)
    >>> verify("whsec_test", header, body, now=1700000100)
    >>> verify("whsec_test", header, body + b" ", now=1700000100)
    Traceback (most recent call last):
    ...
    services.gateway.signatures.InvalidSignature: no signature matches the body
    >>> verify("whsec_test", header, body, now=1700000000 + 301)
    Traceback (most recent call last):
    ...
    services.gateway.signatures.StaleSignature: the signature is 301 s old (tolerance 300 s)
    """
    timestamp, signatures = parse_header(header)
    expected = [sign(s, timestamp, body) for s in _secrets(secret)]
    matched = False
    for candidate in signatures:
        for good in expected:
            # every pair is compared (no early exit), each in constant time
            matched |= hmac.compare_digest(candidate.encode(), good.encode())
    if not matched:
        raise InvalidSignature("no signature matches the body")
    age = int(time.time() if now is None else now) - timestamp
    if age > tolerance_s:
        raise StaleSignature(f"the signature is {age} s old (tolerance {tolerance_s:g} s)")
    if -age > tolerance_s:
        raise StaleSignature(
            f"the signature is dated {-age} s in the future (tolerance {tolerance_s:g} s)"
        )



# Standard Webhooks (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
#: The prefix of a Standard Webhooks secret; the rest is the key in base64.
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def _seconds(text: str) -> bool:
    """Whether ``text`` is a Unix time in seconds as sent: ASCII digits only (``isdigit`` alone
    takes "²", which ``int`` refuses), and not absurdly long (``int`` refuses 4,300 digits).

    >>> _seconds("1700000000"), _seconds("²"), _seconds("9" * 5000), _seconds("")
    (True, False, False, False)
    """
    return 0 < len(text) <= 12 and text.isascii() and text.isdigit()


def standard_key(secret: str) -> bytes:
    """The HMAC key of ``secret`` as Standard Webhooks reads it: the bytes after ``whsec_``
    (base64), or the UTF-8 bytes of a secret without that prefix.

    >>> standard_key("whsec_dGVzdA=="), standard_key("plain")
    (b'test', b'plain')
    """
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
        except binascii.Error as e:
            raise ValueError("a whsec_ secret must be base64 after the prefix") from e
        if not key:  # an empty key: anyone could sign
            raise ValueError("a whsec_ secret must hold a key after the prefix")
        return key
    return secret.encode()


def standard_sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``webhook-signature`` entry: ``v1,`` and the base64 HMAC-SHA256 of
    ``f"{msg_id}.{timestamp}."`` followed by ``body``.

    >>> standard_sign("whsec_dGVzdA==", "whd_1", 1700000000, b"{}")
    'v1,BjLQm9x613YJ/8jZ+HJhuVRozpmb0TF8mHvB+veNs40='
    """
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_headers(secret: Secrets, msg_id: str, body: bytes,
                     now: float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers of a delivery; one signature per secret.

    >>> standard_headers(["whsec_dGVzdA==", "old"], "whd_1", b"{}", now=1700000000.5)
    ... # doctest: +NORMALIZE_WHITESPACE +ELLIPSIS
    {'webhook-id': 'whd_1', 'webhook-timestamp': '1700000000',
     'webhook-signature': 'v1,BjLQm9x613YJ/8jZ+HJhuVRozpmb0TF8mHvB+veNs40= v1,...'}
    """
    timestamp = int(time.time() if now is None else now)
    signatures = " ".join(standard_sign(s, msg_id, timestamp, body) for s in _secrets(secret))
    return {STANDARD_ID_HEADER: msg_id, STANDARD_TIMESTAMP_HEADER: str(timestamp),
            STANDARD_SIGNATURE_HEADER: signatures}


def verify_standard(
    secret: Secrets,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a delivery's Standard Webhooks headers against the raw ``body`` (for receivers
    that prefer them to ``Trace30-Signature``); raise as :func:`verify` does.

    ``headers`` is looked up with the lower-case names (pass ``request.headers``, which ignores
    case, or a dict with lower-case keys).

    >>> hs = standard_headers("whsec_dGVzdA==", "whd_1", b"{}", now=1700000000)
    >>> verify_standard("whsec_dGVzdA==", hs, b"{}", now=1700000010)
    >>> verify_standard("whsec_dGVzdA==", hs, b"{ }", now=1700000010)
    Traceback (most recent call last):
    ...
    services.gateway.signatures.InvalidSignature: no signature matches the body
    """
    msg_id = headers.get(STANDARD_ID_HEADER) or ""
    stamp = headers.get(STANDARD_TIMESTAMP_HEADER) or ""
    if not msg_id or not _seconds(stamp):
        raise InvalidSignature("the webhook-id or webhook-timestamp header is missing or not "
                               "a number of seconds")
    timestamp = int(stamp)
    expected = [standard_sign(s, msg_id, timestamp, body) for s in _secrets(secret)]
    matched = False
    for candidate in (headers.get(STANDARD_SIGNATURE_HEADER) or "").split():
        for good in expected:
            matched |= hmac.compare_digest(candidate.encode(), good.encode())
    if not matched:
        raise InvalidSignature("no signature matches the body")
    age = int(time.time() if now is None else now) - timestamp
    if abs(age) > tolerance_s:
        raise StaleSignature(f"the signature is {age} s old (tolerance {tolerance_s:g} s)")
