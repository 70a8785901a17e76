"""A circuit breaker per upstream key (a VIES member state, a register), shared through Redis.

Closed: calls go through and outage faults are counted. After ``threshold`` consecutive
failed checks the circuit opens: for ``cooldown_s`` callers are answered at once without calling
the upstream (an outage must not eat every request's deadline). Then one caller is let through
as a probe: success closes the circuit, failure opens it again for another cool-down.

The breaker counts checks, not attempts: a check retries within its deadline, and counting each
attempt let one request open a member state's circuit for everybody. A check takes an
:class:`Outcome` (:meth:`CircuitBreaker.outcome`), notes what each attempt learnt, and records
it once when it ends: one success, or one failure, or (nothing reached the upstream: no slot,
a request that could not be built) nothing but the release of its probe.

When a circuit is open is judged by ``clock`` (wall-clock seconds, ``time.time`` by default:
every process and host compares the same stored ``open_until``); tests pass a fake one to end
a cool-down without waiting. The probe's lease and the keys' expiry are Redis TTLs, which run
on the Redis server's own time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from shared import metrics
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

    def __init__(self, store: Store, name: str, threshold: int, cooldown_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.name = name
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock

    def _key(self, key: str) -> str:
        return self.store.key("breaker", self.name, key)

    def allow(self, key: str) -> Decision:
        """Decide whether a call for ``key`` may go to the upstream now."""
        state = cast(dict[str, str], self.store.client.hgetall(self._key(key)))
        open_until = float(state.get("open_until", 0) or 0)
        if not open_until:
            metrics.breaker_state(self.name, key, "closed")
            return Decision(True)
        now = self.clock()
        code = state.get("code")
        if now < open_until:
            metrics.breaker_state(self.name, key, "open")
            return Decision(False, open_until - now, code)
        metrics.breaker_state(self.name, key, "half_open")
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
        metrics.breaker_state(self.name, key, "closed")

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
        pipe.hset(k, mapping={"open_until": self.clock() + self.cooldown_s, "code": code})
        pipe.delete(k + ":probe")
        pipe.execute()
        metrics.breaker_state(self.name, key, "open", opened=True)
        return True

    def trip(self, key: str, code: str) -> None:
        """Open the circuit of ``key`` now, for a cool-down: the upstream itself said it is
        down (VIES's check-status), so no check needs to fail first."""
        k = self._key(key)
        pipe = self.store.client.pipeline()
        pipe.hset(k, mapping={"open_until": self.clock() + self.cooldown_s, "code": code,
                              "failures": self.threshold})
        pipe.expire(k, int(self.cooldown_s * 10) + 60)
        pipe.delete(k + ":probe")
        pipe.execute()
        metrics.breaker_state(self.name, key, "open", opened=True)

    def is_open(self, key: str) -> bool:
        """Whether the circuit of ``key`` is open now (a check stops retrying then)."""
        return self.state(key) == "open"

    def release_probe(self, key: str) -> None:
        """Let another caller probe at once: this probe never reached the upstream."""
        self.store.client.delete(self._key(key) + ":probe")

    def outcome(self, key: str, decision: Decision) -> Outcome:
        """The :class:`Outcome` of one check of ``key`` that ``decision`` let through."""
        return Outcome(self, key, decision.probe)

    def state(self, key: str) -> str:
        """``closed``, ``open`` or ``half_open``, for health pages and tests."""
        d = self.store.client.hgetall(self._key(key))
        open_until = float(d.get("open_until", 0) or 0)
        if not open_until:
            return "closed"
        return "open" if self.clock() < open_until else "half_open"


class Outcome:
    """What one check learnt about an upstream, recorded in the breaker once when it ends.

    Each attempt says :meth:`answered` (the upstream gave an answer, whatever it was) or
    :meth:`failed` (an outage fault); :meth:`record` then writes one success (if any attempt
    was answered) or one failure (if an outage fault was seen), however many attempts there
    were. A check that never reached the upstream records nothing and, if it was the probe,
    gives the probe back.
    """

    def __init__(self, breaker: CircuitBreaker, key: str, probe: bool) -> None:
        self.breaker = breaker
        self.key = key
        self.probe = probe
        self.up = False
        self.fault: str | None = None
        self._recorded = False

    def answered(self) -> None:
        """The upstream answered (a verdict, or a refusal that shows it is up)."""
        self.up = True

    def failed(self, code: str) -> None:
        """An outage fault (``code``) of one attempt."""
        self.fault = code

    def record(self) -> bool:
        """Record this check once; True when its failure opened the circuit."""
        if self._recorded:
            return False
        self._recorded = True
        if self.up:
            self.breaker.record_success(self.key)
        elif self.fault is not None:
            return self.breaker.record_failure(self.key, self.fault)
        elif self.probe:
            self.breaker.release_probe(self.key)
        return False
