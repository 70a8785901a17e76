"""Limits that hold across every process and host, kept in Redis.

- :class:`ConcurrencyLimiter`: at most ``cap`` calls in flight per key (VIES answers
  ``MS_MAX_CONCURRENT_REQ`` past its undisclosed per-member-state cap). A slot is a lease: if a
  process dies holding it, the slot frees itself when the lease runs out.
- :class:`RateLimiter`: at most ``rate`` calls per ``period_s`` per key (the registers' published
  rate limits), by the generic cell rate algorithm.

Both use Redis server time inside Lua scripts, so hosts with skewed clocks agree.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from shared.redis_client import Store

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
  return 1
end
return 0
"""

_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
  return 1
end
return 0
"""

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - interval * burst
if allow_at > now then
  return tostring(allow_at - now)
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return '0'
"""


class ConcurrencyLimiter:
    """At most ``cap`` concurrent holders of a slot per key, across all processes."""

    def __init__(self, store: Store, name: str, lease_s: float) -> None:
        self.store = store
        self.name = name
        self.lease_s = lease_s
        self._acquire = store.client.register_script(_ACQUIRE)
        self._hold = store.client.register_script(_HOLD)

    def _key(self, key: str) -> str:
        return self.store.key("limit", self.name, key)

    def try_acquire(self, key: str, cap: int) -> str | None:
        """Take a slot now if one is free; return its token, or None."""
        token = uuid.uuid4().hex
        got = self._acquire(keys=[self._key(key)], args=[self.lease_s, cap, token])
        return token if got else None

    def acquire(self, key: str, cap: int, deadline: float) -> str | None:
        """Wait until a slot is free or ``deadline`` (a ``time.monotonic()`` value) passes."""
        while True:
            token = self.try_acquire(key, cap)
            if token or time.monotonic() >= deadline:
                return token
            # Jitter spreads waiting processes so they do not retry in lockstep.
            time.sleep(min(random.uniform(0.002, 0.01), max(0.0, deadline - time.monotonic())))

    def release(self, key: str, token: str) -> None:
        """Give the slot back."""
        self.store.client.zrem(self._key(key), token)

    def hold(self, key: str, token: str, seconds: float) -> None:
        """Keep the slot taken ``seconds`` longer, then let it free itself.

        For a call abandoned on our side (a client timeout): the upstream is still working on
        it and still counts it, so giving the slot to the next caller at once would exceed the
        upstream's own limit.
        """
        self._hold(keys=[self._key(key)], args=[seconds, token])

    def in_flight(self, key: str) -> int:
        """How many slots are held now (expired leases included until the next acquire)."""
        return int(self.store.client.zcard(self._key(key)))

    @contextmanager
    def slot(self, key: str, cap: int, deadline: float) -> Iterator[bool]:
        """Hold a slot for the ``with`` block; yields False when none came free in time."""
        token = self.acquire(key, cap, deadline)
        try:
            yield token is not None
        finally:
            if token:
                self.release(key, token)


class RateLimiter:
    """At most ``rate`` calls per ``period_s`` per key, with a burst of ``burst`` calls."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self._gcra = store.client.register_script(_GCRA)

    def try_acquire(self, key: str, rate: float, period_s: float, burst: int = 1) -> float:
        """Take one call now: return 0.0 when allowed, else the seconds to wait before retrying."""
        interval = period_s / rate
        wait = self._gcra(
            keys=[self.store.key("rate", self.name, key)], args=[interval, max(0, burst - 1)]
        )
        return float(wait)

    def acquire(
        self, key: str, rate: float, period_s: float, deadline: float, burst: int = 1
    ) -> bool:
        """Wait for a call's turn until ``deadline`` (``time.monotonic()``); False if it passes."""
        while True:
            wait = self.try_acquire(key, rate, period_s, burst)
            if wait == 0.0:
                return True
            if time.monotonic() + wait > deadline:
                return False
            time.sleep(wait + random.uniform(0, 0.005))
