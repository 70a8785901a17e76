"""The cache of payee-verification answers in Redis: definitive answers only, never an outage.

Only the provider's answers (MTCH, CMTC, NMTC, NOAP) are stored, for
``TRACE30_PAYEE_CACHE_TTL_S``; an upstream fault never is. NOAP is kept at most
:data:`NOAP_TTL_S`: "verification not possible" is often the payee's bank being out of reach
for a while, not a lasting fact about the account. The IBAN is in neither the key nor
the value: the key is a SHA-256 digest of the account fingerprint (itself a keyed HMAC) and
the name asked about, and the value holds only the answer (and, with CMTC, the holder's name
the bank returned). The local IBAN checks are not cached: they cost microseconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import TypedDict

import redis

from services.payment.payee import RESULTS, PayeeAnswer
from shared.redis_client import Store

log = logging.getLogger(__name__)

#: The longest a NOAP answer is reused, seconds.
NOAP_TTL_S = 3600


class _Entry(TypedDict):
    """A stored answer: no IBAN, no name asked about."""

    stored_at: float
    result: str
    matched_name: str | None


class PayeeCache:
    """Get and put payee answers; Redis errors make it a miss, never a failure."""

    def __init__(self, store: Store, ttl_s: int) -> None:
        self.store = store
        self.ttl_s = ttl_s

    def key(self, fingerprint: str, name: str) -> str:
        """The key of one question: a digest of the account's fingerprint and the name."""
        # surrogatepass: a lone surrogate in a name is a distinct key, not a crash
        raw = f"{fingerprint}\x1f{name}".encode(errors="surrogatepass")
        digest = hashlib.sha256(raw).hexdigest()[:40]
        return self.store.key("payment", "payee", digest)

    def get(self, key: str) -> PayeeAnswer | None:
        """The stored answer under ``key``, or None."""
        try:
            raw = self.store.client.get(key)
        except redis.RedisError as e:
            log.warning("payee cache unavailable", extra={"error": type(e).__name__})
            return None
        if not raw:
            return None
        entry: _Entry = json.loads(raw)
        return PayeeAnswer(entry["result"], entry["matched_name"])

    def put(self, key: str, answer: PayeeAnswer) -> None:
        """Store a provider answer (only MTCH, CMTC, NMTC, NOAP exist as answers)."""
        if answer.result not in RESULTS:
            raise ValueError(f"not a payee answer: {answer.result!r}")
        entry: _Entry = {"stored_at": time.time(), "result": answer.result,
                         "matched_name": answer.matched_name}
        try:
            ttl = min(self.ttl_s, NOAP_TTL_S) if answer.result == "NOAP" else self.ttl_s
            self.store.client.set(key, json.dumps(entry), ex=ttl)
        except redis.RedisError as e:
            log.warning("payee cache unavailable", extra={"error": type(e).__name__})
