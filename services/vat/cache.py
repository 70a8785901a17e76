"""The VAT answer cache in Redis: definitive answers only, never an outage.

``valid`` answers stay fresh for ``TRACE30_VAT_CACHE_VALID_TTL_S`` and ``invalid`` ones for
``TRACE30_VAT_CACHE_INVALID_TTL_S``. A ``valid`` answer is kept longer, up to
``TRACE30_VAT_STALE_MAX_AGE_S``, only so that it can be served *marked stale* during an outage
to a caller that allows it. Keys are digests: a sole trader's VAT number is personal data.

In front of Redis each process keeps the answers it has seen for a few seconds
(``TRACE30_VAT_LOCAL_CACHE_TTL_S``, 0 turns it off): a resubmitted signup form is then served
without a Redis round trip, which is most of the cost of a cached check. A newer answer stored
by another process (a forced refresh) or a deletion (retention purge) reaches this process
within that TTL; ``max_age_s`` is always judged against the answer's own age.

An answer's age is measured by ``clock`` (wall-clock seconds, ``time.time`` by default: another
process may have stored it); tests pass a fake one. How long Redis keeps an entry is a Redis TTL
on the server's own time, and the local copy's TTL is cachetools' own (``time.monotonic``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import redis
from cachetools import TTLCache

from services.vat.results import VatCheckResult
from shared import metrics
from shared.redis_client import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedAnswer:
    """A stored answer and its age in seconds."""

    result: VatCheckResult
    age_s: float


class VatCache:
    """Get and put VAT check results; Redis errors make it a miss, never a failure."""

    def __init__(self, store: Store, valid_ttl_s: int, invalid_ttl_s: int, stale_max_s: int,
                 local_ttl_s: float = 0, local_size: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.ttl = {"valid": valid_ttl_s, "invalid": invalid_ttl_s}
        self.keep = {"valid": max(valid_ttl_s, stale_max_s), "invalid": invalid_ttl_s}
        self._local: TTLCache[str, str] | None = (
            TTLCache(local_size, local_ttl_s) if local_ttl_s > 0 else None
        )
        self._lock = threading.Lock()

    def key(self, *parts: str | None) -> str:
        """The cache key of a check: a digest of the number and what was asked with it."""
        # surrogatepass: a lone surrogate in a trader's name is a distinct key, not a crash
        raw = "\x1f".join(p or "" for p in parts).encode(errors="surrogatepass")
        digest = hashlib.sha256(raw).hexdigest()[:40]
        return self.store.key("vat", "check", digest)

    def get(self, key: str) -> CachedAnswer | None:
        """The stored answer under ``key``, whatever its age, or None."""
        raw = self._local_get(key)
        if raw is None:
            try:
                raw = cast(str | None, self.store.client.get(key))
            except redis.RedisError as e:
                log.warning("vat cache unavailable", extra={"error": type(e).__name__})
                metrics.cache_lookup("vat", False)
                return None
            if not raw:
                metrics.cache_lookup("vat", False)
                return None
            self._local_put(key, raw)
        metrics.cache_lookup("vat", True)
        entry = json.loads(raw)
        return CachedAnswer(entry["result"], self.clock() - entry["stored_at"])

    def is_fresh(self, cached: CachedAnswer, max_age_s: int | None) -> bool:
        """Whether ``cached`` may be served as a current answer."""
        ttl = self.ttl.get(cached.result["status"], 0)
        limit = ttl if max_age_s is None else min(ttl, max_age_s)
        return cached.age_s <= limit

    def put(self, key: str, result: VatCheckResult) -> None:
        """Store a definitive (``valid``/``invalid``) result; anything else is refused."""
        status = result["status"]
        if status not in self.keep:
            raise ValueError(f"only definitive answers are cached, not {status!r}")
        entry = json.dumps({"stored_at": self.clock(), "result": result})
        self._local_put(key, entry)
        try:
            self.store.client.set(key, entry, ex=self.keep[status])
        except redis.RedisError as e:
            log.warning("vat cache unavailable", extra={"error": type(e).__name__})

    def _local_get(self, key: str) -> str | None:
        if self._local is None:
            return None
        with self._lock:
            raw: str | None = self._local.get(key)
            return raw

    def _local_put(self, key: str, raw: str) -> None:
        if self._local is not None:
            with self._lock:
                self._local[key] = raw
