"""The VAT check: local format first, then the cache, then VIES within its limits.

:class:`VatChecker` is what the API calls. For one number it:

1. checks format and check digits locally (python-stdnum); a failure is ``invalid`` and VIES
   is not called;
2. serves a fresh cached ``valid``/``invalid`` answer unless ``max_age_s`` forbids it;
3. asks the member state's circuit breaker; while the state is down the answer is
   ``unavailable`` at once;
4. takes a slot of the member state's concurrency cap, shared by every process through Redis,
   and calls VIES with what is left of the deadline as read timeout;
5. retries transient faults (outages, throttling) with jittered exponential backoff until the
   deadline (:class:`shared.upstream.GuardedCall`); ``INVALID_INPUT`` is ``invalid``; blocked
   requester, IP or number is ``unavailable`` with ``retryable: false`` and logged for a person
   to look at. The breaker counts the check once (one success or one failure), however many
   attempts it made.

A request that cannot be built (text VIES cannot carry, a fault of zeep or lxml before anything
is sent) is :class:`shared.outbound.NotSent`, raised to the API (a 400 naming the field): it is
not an upstream fault, so it is not retried, not counted by the breaker, never ``unavailable``.

When SOAP fails with an outage for a member state (or its circuit is open), the check asks the
VIES REST API once, within what is left of the same deadline and in a slot of the same cap
(:meth:`VatChecker._rest_fallback`); the answer says which front end answered (``source``:
``vies-soap`` or ``vies-rest``). VIES's own check-status, when it reports a member state
unavailable, opens that state's circuit before a check pays for a failing call.

A number VIES does not hold (GB, CH, NO, any other prefix) goes to
:class:`~services.vat.outside.OutsideChecker` instead: its own source, rate limit and breaker.

An upstream fault is never ``invalid`` and is never cached; during an outage a cached ``valid``
is served, marked ``stale``, only to a caller that sets ``allow_stale``.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from services.vat import numbers
from services.vat.cache import VatCache
from services.vat.outside import NO_SOURCE_DETAIL, OutsideChecker
from services.vat.results import VatCheckResult, VatResultBase
from services.vat.vies import TraderQuery, Vies, ViesAnswer
from services.vat.vies_rest import MemberStateStatus
from shared.breaker import CircuitBreaker
from shared.limits import ConcurrencyLimiter
from shared.upstream import Fault, GuardedCall, Retry, UpstreamError

log = logging.getLogger(__name__)

#: Codes of our own, for an answer VIES was not asked for.
CIRCUIT_OPEN = "CIRCUIT_OPEN"
CONCURRENCY_LIMIT = "CONCURRENCY_LIMIT"
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
#: The breaker code of a circuit opened because VIES's check-status reports the state down.
STATUS_UNAVAILABLE = "MS_UNAVAILABLE_CHECK_STATUS"
#: Faults of the member state itself, not of the SOAP front end: with the circuit open for one
#: of these, the REST front end would fail the same way, so it is not asked.
MEMBER_STATE_FAULTS = frozenset({"MS_UNAVAILABLE", "TIMEOUT", STATUS_UNAVAILABLE})
#: Which VIES front end answered.
SOAP, REST = "vies-soap", "vies-rest"

#: What a caller is told to wait before asking again, by kind of failure.
RETRY_AFTER_S = {Fault.THROTTLED: 2}


@dataclass(frozen=True)
class CheckRequest:
    """One VAT check as the API received it."""

    vat_number: str
    requester_vat_number: str | None = None
    trader: TraderQuery | None = None
    max_age_s: int | None = None
    allow_stale: bool = False
    #: ``batch`` work (re-verification, retries) yields VIES slots to ``interactive`` checks.
    priority: str = "interactive"


@dataclass(frozen=True)
class Limits:
    """Timing and capacity settings of the VIES calls."""

    deadline_s: float
    retry_base_s: float
    retry_max_s: float
    default_cap: int
    caps: dict[str, int]
    #: Don't start a VIES call with less time than this left: it could only time out.
    min_call_s: float = 0.0
    #: How long a slot stays taken after a call we gave up on (VIES still works on it).
    abandoned_hold_s: float = 0.0

    def cap(self, country_code: str) -> int:
        """The member state's concurrency cap."""
        return self.caps.get(country_code, self.default_cap)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _MemberStateSlot:
    """A slot of a member state's VIES cap (:class:`~shared.upstream.Slot`), shared by the
    SOAP and REST front ends. A call we gave up on (our timeout) keeps it ``hold_s`` longer:
    VIES may still be working on it and still counts it."""

    def __init__(self, limiter: ConcurrencyLimiter, country_code: str, cap: int,
                 background: bool, hold_s: float) -> None:
        self.limiter = limiter
        self.country_code = country_code
        self.cap = cap
        self.background = background
        self.hold_s = hold_s

    def acquire(self, deadline: float) -> str | None:
        return self.limiter.acquire(self.country_code, self.cap, deadline,
                                    background=self.background)

    def release(self, token: str, error: UpstreamError | None) -> None:
        if error is not None and error.fault is Fault.TIMEOUT and self.hold_s:
            self.limiter.hold(self.country_code, token, self.hold_s)
        else:
            self.limiter.release(self.country_code, token)


class VatChecker:
    """Checks VAT numbers; one per process, shared by its threads."""

    def __init__(
        self,
        *,
        vies: Vies,
        cache: VatCache,
        limiter: ConcurrencyLimiter,
        breaker: CircuitBreaker,
        limits: Limits,
        sandbox: bool = False,
        default_requester: str | None = None,
        rest: Vies | None = None,
        rest_breaker: CircuitBreaker | None = None,
        status: MemberStateStatus | None = None,
        outside: OutsideChecker | None = None,
    ) -> None:
        self.rest = rest
        self.rest_breaker = rest_breaker
        self.status = status
        self.outside = outside
        self.vies = vies
        self.cache = cache
        self.limiter = limiter
        self.breaker = breaker
        self.limits = limits
        self.sandbox = sandbox
        self.default_requester = default_requester
        retry = Retry(limits.retry_base_s, limits.retry_max_s, min_call_s=limits.min_call_s)
        self.soap = GuardedCall(breaker, retry, name="vies")
        self.rest_call = GuardedCall(rest_breaker, Retry(
            limits.retry_base_s, limits.retry_max_s, retries=0, min_call_s=limits.min_call_s),
            name="vies-rest") if rest_breaker is not None else None

    # -- the whole check -----------------------------------------------------------------------

    def check(self, req: CheckRequest) -> VatCheckResult:
        """Check one number; always returns a result, never raises for an upstream fault.

        Raises :class:`shared.outbound.NotSent` when the VIES request cannot be built.
        """
        parsed = numbers.parse(req.vat_number, sandbox=self.sandbox)
        base = self._base(parsed)
        if not parsed.format_valid:
            return {**base, "status": "invalid", "reason": parsed.reason, "detail": parsed.detail,
                    "source": "local", "checked_at": _now()}

        requester = self._requester(req.requester_vat_number or self.default_requester)
        key = self.cache.key(
            parsed.vat_number,
            requester and "".join(requester),
            *(_trader_parts(req.trader)),
        )
        cached = self.cache.get(key)
        if cached and req.max_age_s != 0 and self.cache.is_fresh(cached, req.max_age_s):
            return {**cached.result, "cached": True, "stale": False}

        if parsed.scheme != numbers.VIES:
            result = (self.outside.check(parsed, base) if self.outside else
                      {**base, "status": "unverifiable", "reason": "no_source", "source": "local",
                       "detail": NO_SOURCE_DETAIL.format(cc=parsed.country_code),
                       "checked_at": _now()})
        else:
            result = self._ask_vies(parsed, req.trader, requester, base,
                                    background=req.priority == "batch")
        if result["status"] in ("valid", "invalid"):
            self.cache.put(key, result)
        elif req.allow_stale and cached and cached.result["status"] == "valid":
            if cached.age_s <= self.cache.keep["valid"]:
                return {**cached.result, "cached": True, "stale": True,
                        "error": result["error"], "retry_after_s": result["retry_after_s"]}
        return result

    # -- steps ---------------------------------------------------------------------------------

    def _base(self, parsed: numbers.ParsedVat) -> VatResultBase:
        return {
            "vat_number": parsed.vat_number,
            "country_code": parsed.country_code,
            "format_valid": parsed.format_valid,
            "reason": None,
            "detail": None,
            "name": None,
            "address": None,
            "trader": None,
            "match": None,
            "consultation_number": None,
            "request_date": None,
            "error": None,
            "retry_after_s": None,
            "attempts": 0,
            "cached": False,
            "stale": False,
            "sandbox": self.sandbox,
        }

    def _requester(self, raw: str | None) -> tuple[str, str] | None:
        return _requester_of(raw, self.sandbox) if raw else None

    def _ask_vies(
        self,
        parsed: numbers.ParsedVat,
        trader: TraderQuery | None,
        requester: tuple[str, str] | None,
        base: VatResultBase,
        background: bool = False,
    ) -> VatCheckResult:
        """Ask VIES through :class:`~shared.upstream.GuardedCall`, retrying transient faults
        until the deadline, in a slot of the member state's cap; at the first outage (or with
        the SOAP front end's circuit open) the REST front end once.

        The member state's breaker learns one outcome per check, not one per attempt. A
        request that cannot be built (:class:`~shared.outbound.NotSent`) is raised to the API:
        VIES was not asked, so it is neither retried nor counted.
        """
        cc = parsed.country_code
        started = time.monotonic()
        deadline = started + self.limits.deadline_s
        slot = _MemberStateSlot(self.limiter, cc, self.limits.cap(cc), background,
                                self.limits.abandoned_hold_s)
        tried_rest = False

        def attempt(timeout_s: float, attempts: int) -> VatCheckResult:
            return self._ask_front(self.vies, SOAP, parsed, trader, requester, base, timeout_s,
                                   attempts)

        def on_fault(error: UpstreamError, attempts: int) -> VatCheckResult | None:
            nonlocal tried_rest
            if error.outage and not tried_rest:  # the other front end, once, at the first outage
                tried_rest = True
                return self._rest_fallback(parsed, trader, requester, base, deadline, slot,
                                           attempts)
            return None

        try:
            if self.status is not None and self.status.unavailable(cc):
                self.breaker.trip(cc, STATUS_UNAVAILABLE)
            run = self.soap.run(cc, deadline, attempt, slot=slot, on_fault=on_fault)
            if run.denied is not None:
                decision = run.denied
                if decision.code not in MEMBER_STATE_FAULTS:  # the SOAP front end is failing
                    fallback = self._rest_fallback(parsed, trader, requester, base, deadline,
                                                   slot)
                    if fallback is not None:
                        return self._log(fallback, started)
                return self._unavailable(
                    base, CIRCUIT_OPEN, True, decision.retry_after_s, 0,
                    f"VIES for {cc} is failing ({decision.code}); not asked again until "
                    "the circuit closes.",
                )
        except redis.RedisError as e:
            # Without Redis the shared caps and breakers cannot be honoured: asking VIES anyway
            # could get the platform blocked, so the honest answer is "try later".
            log.error("redis unavailable during VAT check", extra={"error": type(e).__name__})
            return self._unavailable(base, STORE_UNAVAILABLE, True, 5, 0,
                                     "The shared limiter is unavailable.")
        if run.no_slot:
            return self._unavailable(
                base, CONCURRENCY_LIMIT, True, RETRY_AFTER_S[Fault.THROTTLED], 0,
                f"All {slot.cap} concurrent VIES slots for {cc} stayed busy.")
        if run.value is not None:
            return self._log(run.value, started)
        error = run.error
        assert error is not None
        if not error.retryable:
            log.error("VIES refused our request: needs attention",
                      extra={"fault": error.code, "country": cc,
                             "vat": numbers.mask(parsed.vat_number)})
            return self._log(self._unavailable(
                base, error.code, False, None, run.attempts, str(error)), started)
        retry_after = error.retry_after_s or RETRY_AFTER_S.get(error.fault, 30)
        return self._log(self._unavailable(base, error.code, True, retry_after, run.attempts,
                                           str(error)), started)

    def _ask_front(self, front: Vies, source: str, parsed: numbers.ParsedVat,
                   trader: TraderQuery | None, requester: tuple[str, str] | None,
                   base: VatResultBase, timeout_s: float, attempts: int) -> VatCheckResult:
        """One call of a VIES front end (SOAP or REST): its answer as a result; VIES refusing
        the number (``INVALID_INPUT``, an answer: the state is up) is ``invalid``."""
        try:
            answer = front.check(country_code=parsed.country_code, number=parsed.number,
                                 trader=trader, requester=requester, timeout_s=timeout_s)
        except UpstreamError as e:
            if e.fault is not Fault.INVALID:
                raise
            return {**base, "status": "invalid", "reason": "vies",
                    "detail": "VIES refused the number (INVALID_INPUT).", "source": source,
                    "attempts": attempts, "checked_at": _now()}
        return {**self._from_answer(base, answer, attempts), "source": source}

    def _rest_fallback(
        self,
        parsed: numbers.ParsedVat,
        trader: TraderQuery | None,
        requester: tuple[str, str] | None,
        base: VatResultBase,
        deadline: float,
        slot: _MemberStateSlot,
        attempts: int = 0,
    ) -> VatCheckResult | None:
        """Ask the VIES REST API once, within ``deadline``; its answer, or None when it gave
        none (the caller then answers with SOAP's fault). REST has its own breaker per member
        state; the call takes a slot of the member state's cap like a SOAP call."""
        if self.rest is None or self.rest_call is None:
            return None
        if deadline - time.monotonic() < self.limits.min_call_s:
            return None
        rest = self.rest

        def attempt(timeout_s: float, n: int) -> VatCheckResult:
            return self._ask_front(rest, REST, parsed, trader, requester, base, timeout_s,
                                   attempts + n)

        run = self.rest_call.run(parsed.country_code, deadline, attempt, slot=slot)
        if run.value is not None:
            log.info("VIES REST answered for a failing SOAP front end",
                     extra={"country": parsed.country_code})
        return run.value

    def _from_answer(self, base: VatResultBase, a: ViesAnswer, attempts: int) -> VatCheckResult:
        return {
            **base,
            "status": "valid" if a.valid else "invalid",
            "reason": None if a.valid else "vies",
            "detail": None if a.valid else "VIES reports the number as not valid.",
            "name": a.name,
            "address": a.address,
            "trader": a.trader or None,
            "match": a.match or None,
            "consultation_number": a.request_identifier,
            "request_date": a.request_date.isoformat()[:10] if a.request_date else None,
            "source": SOAP,
            "attempts": attempts,
            "checked_at": _now(),
        }

    def _unavailable(
        self,
        base: VatResultBase,
        code: str,
        retryable: bool,
        retry_after_s: float | None,
        attempts: int,
        message: str,
    ) -> VatCheckResult:
        return {
            **base,
            "status": "unavailable",
            "error": {"code": code, "retryable": retryable, "message": message},
            "retry_after_s": round(retry_after_s, 1) if retry_after_s is not None else None,
            "source": SOAP,
            "attempts": attempts,
            "checked_at": _now(),
        }

    def _log(self, result: VatCheckResult, started: float) -> VatCheckResult:
        log.info(
            "vat check",
            extra={
                "vat": numbers.mask(result["vat_number"]),
                "status": result["status"],
                "fault": result["error"]["code"] if result["error"] else None,
                "attempts": result["attempts"],
                "vies_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return result


def _trader_parts(trader: TraderQuery | None) -> tuple[str | None, ...]:
    if trader is None:
        return ()
    return (trader.name, trader.company_type, trader.street, trader.postcode, trader.city)


@functools.lru_cache(maxsize=256)
def _requester_of(raw: str, sandbox: bool) -> tuple[str, str] | None:
    """The requester's VIES (country, number), or None if ``raw`` is no VIES number: parsed once
    per number (it is most often the marketplace's own, the same on every request)."""
    p = numbers.parse(raw, sandbox=sandbox)
    return (p.country_code, p.number) if p.format_valid and p.scheme == numbers.VIES else None
