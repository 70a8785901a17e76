"""The verdict cache and single-flight lock, in Redis; the gateway works without them.

- A settled, non-pending verdict is cached under its submission fingerprint (which covers the
  tenant: :func:`services.gateway.submissions.fingerprint`) for
  ``TRACE30_GATEWAY_VERDICT_TTL_S``: a resubmission of the same data is answered without any
  upstream call. ``pending`` is never cached.
- Concurrent identical submissions run one fan-out: the first takes a lock on the fingerprint
  (``SET NX`` with the verification id), the others read the id from the lock and wait for that
  verification's result, which the leader publishes under its id for a short while.
- With Redis down every operation degrades to "no cache, no lock" and is logged: the gateway
  still answers, uncached, and never 500s because of Redis.

Its keys, under the suite's key prefix, are named by :class:`CacheKeys` and nowhere else:
``gateway:verdict:{fingerprint}``, ``gateway:inflight:{fingerprint}`` and
``gateway:result:{verification id}``; :meth:`CacheKeys.keys_for` lists those of a trader's
verifications (the retention purge deletes them).

A cached verdict is stored as the JSON the client receives (``cached: true`` included), so a
hit is served without decoding and re-encoding it; each process also keeps the verdicts it has
served for a few seconds (``TRACE30_GATEWAY_LOCAL_CACHE_TTL_S``), which saves the Redis round
trip on a resubmitted signup form. A forced re-verification or a purge reaches the other
processes within that TTL.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar, cast

import redis
from cachetools import TTLCache

from services.gateway.reasons import Verdict
from shared import metrics
from shared.redis_client import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

RESULT_TTL_S = 300

# Delete the single-flight lock only if it still names this verification: one round trip,
# and no window between reading the lock and deleting it for another leader to take it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class CacheKeys:
    """The Redis keys of the verdict cache in ``store``."""

    NAMESPACE: ClassVar[str] = "gateway"
    VERDICT: ClassVar[str] = "verdict"
    INFLIGHT: ClassVar[str] = "inflight"
    RESULT: ClassVar[str] = "result"
    #: the kinds :meth:`keys_for` returns, in that order
    KINDS: ClassVar[tuple[str, ...]] = ("gateway:verdict", "gateway:inflight", "gateway:result")

    def __init__(self, store: Store) -> None:
        self.store = store

    def verdict(self, fingerprint: str) -> str:
        """The cached verdict of a submission fingerprint."""
        return self.store.key(self.NAMESPACE, self.VERDICT, fingerprint)

    def inflight(self, fingerprint: str) -> str:
        """The single-flight lock of a fingerprint (holds the leader's verification id)."""
        return self.store.key(self.NAMESPACE, self.INFLIGHT, fingerprint)

    def result(self, verification_id: str) -> str:
        """A verification's result published for the waiters."""
        return self.store.key(self.NAMESPACE, self.RESULT, verification_id)

    def keys_for(self, *, fingerprints: Iterable[str],
                 verification_ids: Iterable[str]) -> dict[str, list[str]]:
        """Every key the cache may hold for these verifications (and their fingerprints), by
        kind of :data:`KINDS`."""
        fingerprints, verification_ids = list(fingerprints), list(verification_ids)
        return {
            "gateway:verdict": [self.verdict(fp) for fp in fingerprints],
            "gateway:inflight": [self.inflight(fp) for fp in fingerprints],
            "gateway:result": [self.result(v) for v in verification_ids],
        }


class VerdictCache:
    """Verdicts by fingerprint, and the single-flight protocol."""

    def __init__(self, store: Store, ttl_s: int, lock_ttl_s: float,
                 local_ttl_s: float = 0) -> None:
        self.store = store
        self.keys = CacheKeys(store)
        self.ttl_s = ttl_s
        self.lock_ttl_ms = int(lock_ttl_s * 1000)
        self._local: TTLCache[str, str] | None = (
            TTLCache(10_000, local_ttl_s) if local_ttl_s > 0 else None)
        self._lock = threading.Lock()
        self._release = store.client.register_script(_RELEASE)

    def _safe(self, what: str, fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except redis.RedisError as e:
            log.warning("redis unavailable: gateway answers uncached",
                        extra={"op": what, "error": type(e).__name__})
            return default

    def get(self, fingerprint: str) -> tuple[str, str] | None:
        """The cached verdict for ``fingerprint``: its verification id and its JSON."""
        raw: str | None = None
        if self._local is not None:
            with self._lock:
                raw = self._local.get(fingerprint)
        if raw is None:
            raw = self._safe("get", lambda: cast(str | None, self.store.client.get(
                self.keys.verdict(fingerprint))), None)
            if raw and self._local is not None:
                with self._lock:
                    self._local[fingerprint] = raw
        metrics.cache_lookup("gateway_verdict", bool(raw))
        if not raw:
            return None
        verification_id, _, body = raw.partition("\n")
        return verification_id, body

    def put(self, fingerprint: str, result: dict[str, Any]) -> None:
        """Cache a settled verdict; ``pending`` is refused."""
        if result.get("verdict") in (None, Verdict.PENDING):
            raise ValueError("only settled, non-pending verdicts are cached")
        raw = result["id"] + "\n" + json.dumps({**result, "cached": True})
        stored = self._safe("put", lambda: self.store.client.set(
            self.keys.verdict(fingerprint), raw, ex=self.ttl_s), None)
        # Only what Redis holds is kept locally: without Redis the gateway runs uncached.
        if stored and self._local is not None:
            with self._lock:
                self._local[fingerprint] = raw

    def drop(self, fingerprint: str) -> None:
        """Forget the cached verdict (a forced re-verification)."""
        if self._local is not None:
            with self._lock:
                self._local.pop(fingerprint, None)
        self._safe("drop", lambda: self.store.client.delete(self.keys.verdict(fingerprint)),
                   None)

    def lead(self, fingerprint: str, verification_id: str, *,
             take_over: bool = False) -> str | None:
        """Take the single-flight lock: None if we lead, else the leader's verification id.

        ``take_over`` (a forced re-verification) leads even if another run holds the lock,
        whose worker may have died. Without Redis everybody leads (no lock can be shared).
        """
        key = self.keys.inflight(fingerprint)

        def take() -> str | None:
            if self.store.client.set(key, verification_id, nx=not take_over,
                                     px=self.lock_ttl_ms):
                return None
            return cast(str | None, self.store.client.get(key)) or None

        return self._safe("lock", take, None)

    def release(self, fingerprint: str, verification_id: str) -> None:
        """Give the lock back (only if we still hold it)."""
        key = self.keys.inflight(fingerprint)
        self._safe("release", lambda: self._release(keys=[key], args=[verification_id]), None)

    def publish(self, verification_id: str, result: dict[str, Any]) -> None:
        """Make the leader's result visible to the waiters (any verdict, pending included)."""
        self._safe("publish", lambda: self.store.client.set(
            self.keys.result(verification_id), json.dumps(result), ex=RESULT_TTL_S), None)

    def wait(self, verification_id: str, timeout_s: float) -> dict[str, Any] | None:
        """The leader's published result, waiting up to ``timeout_s``."""
        end = time.monotonic() + timeout_s
        key = self.keys.result(verification_id)
        while True:
            raw = self._safe("wait", lambda: self.store.client.get(key), None)
            if raw:
                result: dict[str, Any] = json.loads(raw)
                return result
            if time.monotonic() >= end:
                return None
            time.sleep(0.02)
