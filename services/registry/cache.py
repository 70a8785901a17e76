"""The register answer cache in Redis: found records and "not found", never an outage.

A record the register knows (``active`` or ``inactive``) stays fresh for
``TRACE30_REGISTRY_CACHE_POSITIVE_TTL_S`` (24 h), a ``not_found`` for
``TRACE30_REGISTRY_CACHE_NEGATIVE_TTL_S`` (1 h: a company registered this morning must not be
"unknown" all day). ``unavailable``, ``invalid`` and ``unverifiable`` are never stored. Keys are
digests: a sole trader's registration number is personal data. The trader's declared name is
not part of the stored answer; the name match is computed for each request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass

import redis

from services.registry.results import RegistryCheckResult
from shared.redis_client import Store

log = logging.getLogger(__name__)

POSITIVE = frozenset({"active", "inactive"})
NEGATIVE = frozenset({"not_found"})


@dataclass(frozen=True)
class CachedAnswer:
    """A stored answer and its age in seconds."""

    result: RegistryCheckResult
    age_s: float


class RegistryCache:
    """Get and put register answers; Redis errors make it a miss, never a failure."""

    def __init__(self, store: Store, positive_ttl_s: int, negative_ttl_s: int) -> None:
        self.store = store
        self.ttl = {**dict.fromkeys(POSITIVE, positive_ttl_s),
                    **dict.fromkeys(NEGATIVE, negative_ttl_s)}

    def key(self, source: str, kind: str, normalised: str) -> str:
        """The cache key of a lookup: a digest of the register, the kind and the number."""
        raw = f"{source}\x1f{kind}\x1f{normalised}".encode(errors="surrogatepass")
        digest = hashlib.sha256(raw).hexdigest()[:40]
        return self.store.key("registry", "lookup", digest)

    def get(self, key: str, max_age_s: int | None = None) -> CachedAnswer | None:
        """The fresh answer under ``key`` (no older than ``max_age_s`` too), or None."""
        try:
            raw = self.store.client.get(key)
        except redis.RedisError as e:
            log.warning("registry cache unavailable", extra={"error": type(e).__name__})
            return None
        if not raw:
            return None
        entry = json.loads(raw)
        cached = CachedAnswer(entry["result"], time.time() - entry["stored_at"])
        limit = self.ttl.get(cached.result["status"], 0)
        if max_age_s is not None:
            limit = min(limit, max_age_s)
        return cached if cached.age_s <= limit else None

    def put(self, key: str, result: RegistryCheckResult) -> None:
        """Store a definitive answer (found or not found); anything else is refused."""
        status = result["status"]
        if status not in self.ttl:
            raise ValueError(f"only definitive answers are cached, not {status!r}")
        entry = json.dumps({"stored_at": time.time(), "result": result})
        try:
            self.store.client.set(key, entry, ex=self.ttl[status])
        except redis.RedisError as e:
            log.warning("registry cache unavailable", extra={"error": type(e).__name__})
