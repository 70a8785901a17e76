"""Limits that hold across every process and host, kept in Redis.

- :class:`ConcurrencyLimiter`: at most ``cap`` calls in flight per key (VIES answers
  ``MS_MAX_CONCURRENT_REQ`` past its undisclosed per-member-state cap). A slot is a lease: if a
  process dies holding it, the slot frees itself when the lease runs out.
- :class:`RateLimiter`: at most ``rate`` calls per ``period_s`` per key (the registers' published
  rate limits), by the generic cell rate algorithm. A caller that must wait reserves its turn
  in the same script and sleeps until it: one round trip per call, and no herd of waiters
  asking again together each time a turn comes (each turn went to one of them; the others
  asked again, every call of theirs a Redis script and a wake-up).

Waiting for a slot does not spin: a release pushes a wake-up onto a short Redis list and
waiters block on it (``BLPOP``, served first come first served), trying again at least every
``poll_s`` for slots freed by a lapsed lease. With dozens of batch workers waiting on a
member state, polling every few milliseconds burnt the CPU the verifications needed.

Interactive callers (a seller signing up) go before background ones (batch re-verification,
retries of pending verdicts): while an interactive caller waits for a key, no background
caller takes a slot of it and every freed slot wakes an interactive waiter. So a signup waits
for at most the next free slot, not behind every batch job queued on that member state.

Both use Redis server time inside Lua scripts, so hosts with skewed clocks agree.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from shared.redis_client import Store

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local background = ARGV[4] == '1'
if background and redis.call('ZCARD', KEYS[2]) > 0 then
  return 0
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 1
end
if not background then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[3])
  redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[5]) * 1000) + 1000)
end
return 0
"""

_RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  local t = redis.call('TIME')
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(t[1]) + tonumber(t[2]) / 1000000)
  local wake = KEYS[4]
  if redis.call('ZCARD', KEYS[2]) > 0 then wake = KEYS[3] end
  redis.call('LPUSH', wake, '1')
  redis.call('LTRIM', wake, 0, tonumber(ARGV[2]) - 1)
  redis.call('PEXPIRE', wake, 60000)
end
return 1
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

# GCRA with a reservation: a call whose turn comes within ARGV[3] seconds takes that turn now
# (the next caller's turn comes one interval later) and is told how long to sleep before it;
# one whose turn is further off takes nothing and is told how far off it is, negated. (With
# ARGV[3] = 0: plain GCRA, a call allowed now or not.)
_GCRA_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - interval * burst - now
if wait < 0 then wait = 0 end
if wait > tonumber(ARGV[3]) then
  return tostring(-wait)
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return tostring(wait)
"""


class ConcurrencyLimiter:
    """At most ``cap`` concurrent holders of a slot per key, across all processes."""

    #: Wake-ups kept for nobody waiting yet (a waiter that finds one tries again at once).
    MAX_WAKEUPS = 16

    def __init__(self, store: Store, name: str, lease_s: float, poll_s: float = 0.2) -> None:
        self.store = store
        self.name = name
        self.lease_s = lease_s
        # Below the Redis read timeout, so that a blocked BLPOP is never taken for a dead server.
        self.poll_s = poll_s
        self._acquire = store.client.register_script(_ACQUIRE)
        self._release = store.client.register_script(_RELEASE)
        self._hold = store.client.register_script(_HOLD)

    def _key(self, key: str) -> str:
        return self.store.key("limit", self.name, key)

    def _keys(self, key: str) -> list[str]:
        """The slots, the interactive waiters, and the two wake-up lists of ``key``."""
        base = self._key(key)
        return [base, base + ":waiting", base + ":wake", base + ":wake-background"]

    def try_acquire(self, key: str, cap: int, *, background: bool = False,
                    token: str | None = None, wait_s: float = 0.0) -> str | None:
        """Take a slot now if one is free; return its token, or None.

        A background caller gets none while an interactive one waits. An interactive caller
        that gets none is counted as waiting for ``wait_s`` seconds (with ``token``).
        """
        token = token or uuid.uuid4().hex
        keys = self._keys(key)
        got = self._acquire(keys=keys[:2], args=[self.lease_s, cap, token,
                                                  "1" if background else "0", wait_s])
        return token if got else None

    def acquire(self, key: str, cap: int, deadline: float, *,
                background: bool = False) -> str | None:
        """Wait until a slot is free or ``deadline`` (a ``time.monotonic()`` value) passes.

        ``background`` (batch work) yields to every interactive caller waiting for ``key``.
        """
        token = uuid.uuid4().hex
        keys = self._keys(key)
        wake = keys[3] if background else keys[2]
        got: str | None = None
        try:
            while True:
                left = deadline - time.monotonic()
                got = self.try_acquire(key, cap, background=background, token=token,
                                       wait_s=max(left, 0.0) + self.poll_s)
                if got or left <= 0:
                    return got
                wait = min(self.poll_s, left)
                if wait >= 0.01:
                    self.store.client.blpop([wake], timeout=wait)
                else:
                    time.sleep(wait)
        finally:
            # A slot taken leaves the waiters in the same script; one not taken, here.
            if not background and got is None:
                self.store.client.zrem(keys[1], token)

    def release(self, key: str, token: str) -> None:
        """Give the slot back and wake the longest waiter (an interactive one first)."""
        self._release(keys=self._keys(key), args=[token, self.MAX_WAKEUPS])

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
    def slot(self, key: str, cap: int, deadline: float, *,
             background: bool = False) -> Iterator[bool]:
        """Hold a slot for the ``with`` block; yields False when none came free in time."""
        token = self.acquire(key, cap, deadline, background=background)
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
        self._gcra_reserve = store.client.register_script(_GCRA_RESERVE)

    def try_acquire(self, key: str, rate: float, period_s: float, burst: int = 1) -> float:
        """Take one call now: return 0.0 when allowed, else the seconds to wait before retrying."""
        return abs(self._turn(key, rate, period_s, 0.0, burst))

    def reserve(self, key: str, rate: float, period_s: float, within_s: float,
                burst: int = 1) -> float | None:
        """Take the next turn if it comes within ``within_s`` seconds: the seconds until it
        (0.0: now), the turn being the caller's alone; None (nothing taken) if it comes later."""
        wait = self._turn(key, rate, period_s, within_s, burst)
        return wait if wait >= 0.0 else None

    def _turn(self, key: str, rate: float, period_s: float, within_s: float,
              burst: int) -> float:
        """:data:`_GCRA_RESERVE`'s answer: the seconds until the turn taken, or, negated, until
        the next one when it comes later than ``within_s`` (nothing taken)."""
        return float(self._gcra_reserve(
            keys=[self.store.key("rate", self.name, key)],
            args=[period_s / rate, max(0, burst - 1), max(0.0, within_s)]))

    def acquire(
        self, key: str, rate: float, period_s: float, deadline: float, burst: int = 1
    ) -> bool:
        """Wait for a call's turn until ``deadline`` (``time.monotonic()``); False if it passes.

        The turn is reserved at once and slept for: it is this caller's, whoever asks next."""
        wait = self.reserve(key, rate, period_s, deadline - time.monotonic(), burst)
        if wait is None:
            return False
        if wait > 0.0:
            time.sleep(wait)
        return True
