"""A circuit breaker per upstream key (a VIES member state, a register), shared through Redis.

Closed: calls go through and outage faults are counted. After ``threshold`` consecutive outage
faults the circuit opens: for ``cooldown_s`` callers are answered at once without calling the
upstream (an outage must not eat every request's deadline). Then one caller is let through as a
probe: success closes the circuit, failure opens it again for another cool-down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from shared.redis_client import Store


@dataclass(frozen=True)
class Decision:
    """Whether a call may go through; if not, when to try again and why the circuit opened."""

    allowed: bool
    retry_after_s: float = 0.0
    code: str | None = None
    probe: bool = False


class CircuitBreaker:
    """Circuit breakers named ``name``, one per key, their state in Redis."""

    def __init__(self, store: Store, name: str, threshold: int, cooldown_s: float) -> None:
        self.store = store
        self.name = name
        self.threshold = threshold
        self.cooldown_s = cooldown_s

    def _key(self, key: str) -> str:
        return self.store.key("breaker", self.name, key)

    def allow(self, key: str) -> Decision:
        """Decide whether a call for ``key`` may go to the upstream now."""
        state = cast(dict[str, str], self.store.client.hgetall(self._key(key)))
        open_until = float(state.get("open_until", 0) or 0)
        if not open_until:
            return Decision(True)
        now = time.time()
        code = state.get("code")
        if now < open_until:
            return Decision(False, open_until - now, code)
        # Half-open: exactly one caller gets to probe; the others keep getting the fast answer.
        probe_key = self._key(key) + ":probe"
        if self.store.client.set(probe_key, "1", nx=True, px=int(self.cooldown_s * 1000) or 1):
            return Decision(True, code=code, probe=True)
        return Decision(False, self.cooldown_s, code)

    def record_success(self, key: str) -> None:
        """The upstream answered: close the circuit."""
        k = self._key(key)
        if self.store.client.exists(k):
            self.store.client.delete(k, k + ":probe")

    def record_failure(self, key: str, code: str) -> bool:
        """Count an outage fault; return True when this opened the circuit."""
        k = self._key(key)
        pipe = self.store.client.pipeline()
        pipe.hincrby(k, "failures", 1)
        pipe.expire(k, int(self.cooldown_s * 10) + 60)
        failures = pipe.execute()[0]
        if failures < self.threshold:
            return False
        pipe = self.store.client.pipeline()
        pipe.hset(k, mapping={"open_until": time.time() + self.cooldown_s, "code": code})
        pipe.delete(k + ":probe")
        pipe.execute()
        return True

    def state(self, key: str) -> str:
        """``closed``, ``open`` or ``half_open``, for health pages and tests."""
        d = self.store.client.hgetall(self._key(key))
        open_until = float(d.get("open_until", 0) or 0)
        if not open_until:
            return "closed"
        return "open" if time.time() < open_until else "half_open"
