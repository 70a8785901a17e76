"""The check of a VAT number VIES does not hold: GB (HMRC), CH (UID register), NO (Brønnøysund).

:class:`OutsideChecker` is what :class:`services.vat.checks.VatChecker` calls for a number whose
:attr:`~services.vat.numbers.ParsedVat.scheme` is not ``vies``. For one number it:

1. answers ``unverifiable`` (never ``invalid``) when no source can check it: a prefix with no
   online register (``US``, ``AU``, ...), or a source that is not configured (GB without HMRC
   credentials); the gateway sends such a trader to a person (``needs_review``);
2. asks the source's circuit breaker (shared through Redis, one per source); while it is open
   the answer is ``unavailable`` at once;
3. waits for the source's shared rate limit (every process together), within the deadline;
4. calls the adapter with what is left of the deadline, and retries an outage with jittered
   backoff, at most ``TRACE30_VAT_SOURCES_RETRIES`` times and while the deadline allows (a
   throttle only when the source said how long to wait).

The answer says which source answered (``source``: ``hmrc``, ``uid``, ``brreg``). A throttle,
an outage or a timeout is ``unavailable`` (``retryable``), never ``invalid``; the breaker
counts one outcome per check, not per attempt.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from services.vat import numbers
from services.vat.results import VatCheckResult, VatResultBase
from services.vat.sources import SourceAnswer, SourceCannotCheck, SourceError, VatSource
from services.vat.vies import FaultKind
from shared.breaker import CircuitBreaker, Outcome
from shared.limits import RateLimiter
from shared.upstream import backoff_s

log = logging.getLogger(__name__)

#: What a caller is told to wait before asking again, by kind of failure.
RETRY_AFTER_S = {FaultKind.THROTTLE: 5, FaultKind.OUTAGE: 30}


@dataclass(frozen=True)
class Rate:
    """A source's published rate limit, and how many calls one check makes at most."""

    calls: float
    period_s: float
    burst: int = 1
    calls_per_check: int = 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


#: Why a number of a scheme with no source configured cannot be checked, for a person.
NO_SOURCE_DETAIL = (
    "No online VAT register is checked for country {cc}: the number was not checked; a person "
    "must verify it (a VAT registration certificate)."
)


class OutsideChecker:
    """Checks non-VIES VAT numbers; one per process, shared by its threads."""

    def __init__(
        self,
        *,
        sources: Mapping[str, VatSource],
        unconfigured: Mapping[str, str],
        rates: Mapping[str, Rate],
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        deadline_s: float,
        retry_base_s: float,
        retry_max_s: float,
        requesters: Mapping[str, str | None] | None = None,
        retries: int = 2,
    ) -> None:
        self.retries = retries
        self.sources = dict(sources)
        self.unconfigured = dict(unconfigured)
        self.rates = dict(rates)
        self.limiter = limiter
        self.breaker = breaker
        self.deadline_s = deadline_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.requesters = dict(requesters or {})

    def check(self, parsed: numbers.ParsedVat, base: VatResultBase) -> VatCheckResult:
        """Check ``parsed`` (format-valid, scheme not ``vies``); never raises for a fault."""
        source = self.sources.get(parsed.scheme)
        if source is None:
            detail = self.unconfigured.get(parsed.scheme) or NO_SOURCE_DETAIL.format(
                cc=parsed.country_code)
            return self._unverifiable(base, "local", detail)
        started = time.monotonic()
        deadline = started + self.deadline_s
        attempts = 0
        try:
            decision = self.breaker.allow(source.name)
            if not decision.allowed:
                return self._unavailable(
                    base, source.name, "CIRCUIT_OPEN", True, decision.retry_after_s, attempts,
                    f"{source.name} is failing ({decision.code}); not asked again until the "
                    "circuit closes.")
            outcome = self.breaker.outcome(source.name, decision)
            try:
                result = self._ask(source, parsed, base, deadline, outcome)
            finally:
                if outcome.record():
                    log.warning("circuit opened",
                                extra={"source": source.name, "fault": outcome.fault})
        except redis.RedisError as e:
            log.error("redis unavailable during VAT check", extra={"error": type(e).__name__})
            return self._unavailable(base, source.name, "STORE_UNAVAILABLE", True, 5, attempts,
                                     "The shared limiter is unavailable.")
        return self._log(result, started)

    def _ask(self, source: VatSource, parsed: numbers.ParsedVat, base: VatResultBase,
             deadline: float, outcome: Outcome) -> VatCheckResult:
        """Call ``source`` until it answers, refuses, or the deadline leaves no retry."""
        rate = self.rates.get(source.name)
        attempts = 0
        last: SourceError | None = None
        while True:
            if rate and not all(
                self.limiter.acquire(source.name, rate.calls, rate.period_s, deadline,
                                     rate.burst)
                for _ in range(rate.calls_per_check)
            ):
                if last is not None:
                    break
                return self._unavailable(
                    base, source.name, "RATE_LIMITED", True, RETRY_AFTER_S[FaultKind.THROTTLE],
                    attempts, f"The shared rate limit of {source.name} left no call before the "
                    "deadline.")
            attempts += 1
            try:
                answer = source.check(
                    parsed.number, requester=self.requesters.get(parsed.scheme),
                    timeout_s=max(0.05, deadline - time.monotonic()))
            except SourceCannotCheck as e:  # not asked: the breaker learns nothing
                return self._unverifiable(base, source.name, str(e))
            except SourceError as e:
                last = e
            else:
                outcome.answered()
                return self._answer(base, source.name, answer, attempts)
            if last.kind is FaultKind.INVALID:
                outcome.answered()  # it answered: it is up
                return self._answer(base, source.name, SourceAnswer(
                    False, detail=f"{source.name} refused the number ({last.code})."), attempts)
            if last.kind is FaultKind.ATTENTION:
                log.error("VAT source refused our request: needs attention",
                          extra={"source": source.name, "fault": last.code,
                                 "vat": numbers.mask(parsed.vat_number)})
                return self._unavailable(base, source.name, last.code, False, None, attempts,
                                         str(last))
            if last.kind is FaultKind.OUTAGE:
                outcome.failed(last.code)
                if self.breaker.is_open(source.name):
                    break
            elif last.retry_after_s is None:
                break  # a throttle without a time to wait: asking again only adds to the load
            if attempts > self.retries:
                break  # each attempt spends the source's quota (the UID register: 20 a minute)
            if last.retry_after_s:
                pause = random.uniform(last.retry_after_s / 2, last.retry_after_s)  # noqa: S311
            else:
                pause = backoff_s(attempts, self.retry_base_s, self.retry_max_s)
            if time.monotonic() + pause >= deadline - 0.05:
                break
            time.sleep(pause)
        retry_after = last.retry_after_s or RETRY_AFTER_S.get(last.kind, 30)
        return self._unavailable(base, source.name, last.code, True, retry_after, attempts,
                                 str(last))

    # -- answers ---------------------------------------------------------------------------------

    @staticmethod
    def _answer(base: VatResultBase, source: str, a: SourceAnswer,
                attempts: int) -> VatCheckResult:
        return {
            **base,
            "status": "valid" if a.valid else "invalid",
            "reason": None if a.valid else source,
            "detail": None if a.valid else a.detail,
            "name": a.name,
            "address": a.address,
            "consultation_number": a.consultation_number,
            "request_date": a.request_date,
            "source": source,
            "attempts": attempts,
            "checked_at": _now(),
        }

    @staticmethod
    def _unverifiable(base: VatResultBase, source: str, detail: str) -> VatCheckResult:
        return {**base, "status": "unverifiable", "reason": "no_source", "detail": detail,
                "source": source, "checked_at": _now()}

    @staticmethod
    def _unavailable(base: VatResultBase, source: str, code: str, retryable: bool,
                     retry_after_s: float | None, attempts: int,
                     message: str) -> VatCheckResult:
        return {
            **base,
            "status": "unavailable",
            "error": {"code": code, "retryable": retryable, "message": message},
            "retry_after_s": round(retry_after_s, 1) if retry_after_s is not None else None,
            "source": source,
            "attempts": attempts,
            "checked_at": _now(),
        }

    @staticmethod
    def _log(result: VatCheckResult, started: float) -> VatCheckResult:
        log.info("vat check", extra={
            "vat": numbers.mask(result["vat_number"]),
            "status": result["status"],
            "source": result["source"],
            "fault": result["error"]["code"] if result["error"] else None,
            "attempts": result["attempts"],
            "source_ms": round((time.monotonic() - started) * 1000, 1),
        })
        return result
