"""The check of a VAT number VIES does not hold: GB (HMRC), CH (UID register), NO (Brønnøysund).

:class:`OutsideChecker` is what :class:`services.vat.checks.VatChecker` calls for a number whose
:attr:`~services.vat.numbers.ParsedVat.scheme` is not ``vies``. For one number it:

1. answers ``unverifiable`` (never ``invalid``) when no source can check it: a prefix with no
   online register (``US``, ``AU``, ...), or a source that is not configured (GB without HMRC
   credentials); the gateway sends such a trader to a person (``needs_review``);
2. asks the source's circuit breaker (shared through Redis, one per source); while it is open
   the answer is ``unavailable`` at once;
3. waits for the source's shared rate limit (every process together), within the deadline;
4. calls the adapter with what is left of the deadline (:class:`shared.upstream.GuardedCall`),
   and retries an outage with jittered backoff, at most ``TRACE30_VAT_SOURCES_RETRIES`` times
   and while the deadline allows (a throttle only when the source said how long to wait, and
   never sooner than that).

The answer says which source answered (``source``: ``hmrc``, ``uid``, ``brreg``). A throttle,
an outage or a timeout is ``unavailable`` (``retryable``), never ``invalid``; the breaker
counts one outcome per check, not per attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from services.vat import numbers
from services.vat.results import VatCheckResult, VatResultBase
from services.vat.sources import SourceAnswer, VatSource
from shared.breaker import CircuitBreaker
from shared.limits import RateLimiter
from shared.upstream import Fault, GuardedCall, RateSlot, Retry, UpstreamError

log = logging.getLogger(__name__)

#: What a caller is told to wait before asking again, by kind of failure.
RETRY_AFTER_S = {Fault.THROTTLED: 5}


#: Don't start a call with less time than this left (nor retry into it).
MIN_CALL_S = 0.05


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
        # Each attempt spends the source's quota (the UID register: 20 a minute): a throttle is
        # retried only when the source said how long to wait.
        self.call = GuardedCall(breaker, Retry(retry_base_s, retry_max_s, retries=retries,
                                               min_call_s=MIN_CALL_S, throttle_needs_wait=True),
                                name="vat-source")

    def check(self, parsed: numbers.ParsedVat, base: VatResultBase) -> VatCheckResult:
        """Check ``parsed`` (format-valid, scheme not ``vies``); never raises for a fault."""
        source = self.sources.get(parsed.scheme)
        if source is None:
            detail = self.unconfigured.get(parsed.scheme) or NO_SOURCE_DETAIL.format(
                cc=parsed.country_code)
            return self._unverifiable(base, "local", detail)
        started = time.monotonic()
        deadline = started + self.deadline_s
        requester = self.requesters.get(parsed.scheme)

        def attempt(timeout_s: float, attempts: int) -> SourceAnswer:
            try:
                return source.check(parsed.number, requester=requester, timeout_s=timeout_s)
            except UpstreamError as e:
                if e.fault is not Fault.INVALID:
                    raise
                # It answered (it is up): the source refused the number.
                return SourceAnswer(False, detail=f"{source.name} refused the number ({e.code}).")

        rate = self.rates.get(source.name)
        slot = RateSlot(self.limiter, source.name, rate.calls, rate.period_s, rate.burst,
                        rate.calls_per_check) if rate else None
        try:
            run = self.call.run(source.name, deadline, attempt, slot=slot)
        except redis.RedisError as e:
            log.error("redis unavailable during VAT check", extra={"error": type(e).__name__})
            return self._unavailable(base, source.name, "STORE_UNAVAILABLE", True, 5, 0,
                                     "The shared limiter is unavailable.")
        if run.denied is not None:
            return self._unavailable(
                base, source.name, "CIRCUIT_OPEN", True, run.denied.retry_after_s, 0,
                f"{source.name} is failing ({run.denied.code}); not asked again until the "
                "circuit closes.")
        if run.no_slot:
            return self._unavailable(
                base, source.name, "RATE_LIMITED", True, RETRY_AFTER_S[Fault.THROTTLED], 0,
                f"The shared rate limit of {source.name} left no call before the deadline.")
        if run.value is not None:
            return self._log(self._answer(base, source.name, run.value, run.attempts), started)
        error = run.error
        assert error is not None
        if error.fault is Fault.CANNOT_CHECK:  # not asked: the breaker learnt nothing
            return self._unverifiable(base, source.name, str(error))
        if not error.retryable:
            log.error("VAT source refused our request: needs attention",
                      extra={"source": source.name, "fault": error.code,
                             "vat": numbers.mask(parsed.vat_number)})
            return self._log(self._unavailable(base, source.name, error.code, False, None,
                                               run.attempts, str(error)), started)
        retry_after = error.retry_after_s or RETRY_AFTER_S.get(error.fault, 30)
        return self._log(self._unavailable(base, source.name, error.code, True, retry_after,
                                           run.attempts, str(error)), started)

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
