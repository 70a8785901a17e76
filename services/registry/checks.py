"""The business-registration check: format first, then the cache, then the register.

:class:`RegistryChecker` is what the API calls. For one number it:

1. resolves the kind (given, or inferred from the country and the number's shape) and checks
   format and check digits locally (:mod:`services.registry.kinds`); a failure is ``invalid``
   and no register is asked;
2. answers ``unverifiable`` when no live register covers the kind, or when the register needs
   credentials that are not configured: the marketplace must then ask the trader for a
   register extract (DSA Art 30(2) allows documents as the means of verification);
3. serves a fresh cached answer (found: 24 h, not found: 1 h) unless ``max_age_s`` forbids it;
4. answers ``unavailable`` at once while the register is known to throttle us (a 429 with
   ``Retry-After`` is remembered in Redis for every process) or its circuit is open;
5. waits for the register's rate limit (shared by every process through Redis) and calls it
   with what is left of the deadline as timeout, retrying transient faults (timeouts,
   refused connections, 5xx, 429) with jittered backoff up to ``TRACE30_REGISTRY_RETRIES``
   times within the deadline, never sooner than a ``Retry-After``
   (:class:`shared.upstream.GuardedCall`); the register's circuit breaker counts the check once
   (one success or one failure), however many attempts it made;
6. compares the trader's declared name with the registered one (:func:`shared.names.compare`).

An upstream fault is ``unavailable`` with ``error {code, retryable}`` and ``retry_after_s``,
never ``not_found`` and never cached. A request that cannot be built
(:class:`shared.outbound.NotSent`) is not an upstream fault: it is raised to the API (a 400
naming the field, or a 500 for our own configuration), never retried, never counted.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from services.registry import kinds
from services.registry.cache import RegistryCache
from services.registry.registers import Register, RegisterRecord
from services.registry.results import (
    NameMatch,
    RegistryCheckResult,
    RegistryResultBase,
    Source,
    Status,
)
from shared import names
from shared.breaker import CircuitBreaker
from shared.limits import RateLimiter
from shared.redis_client import Store
from shared.upstream import Fault, GuardedCall, RateSlot, Retry, UpstreamError

log = logging.getLogger(__name__)

#: Codes of our own, for an answer the register was not asked for.
CIRCUIT_OPEN = "CIRCUIT_OPEN"
RATE_LIMITED = "RATE_LIMITED"
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"

#: What a caller is told to wait before asking again after an outage, seconds.
OUTAGE_RETRY_AFTER_S = 30.0
#: Assumed wait after a 429 that came without ``Retry-After``.
THROTTLE_RETRY_AFTER_S = 1.0

ASK_FOR_EXTRACT = (
    "Ask the trader for a recent extract of the register (or an equivalent official "
    "document) and verify it by hand."
)


@dataclass(frozen=True)
class CheckRequest:
    """One check as the API received it."""

    number: str
    country_code: str | None = None
    kind: str | None = None
    register: str | None = None
    name: str | None = None
    max_age_s: int | None = None


@dataclass(frozen=True)
class Limits:
    """Timing and pace of the register calls."""

    deadline_s: float
    retries: int
    retry_base_s: float
    retry_max_s: float
    burst: int
    rates: Mapping[str, float]  # calls per second, by register id

    def rate(self, source: str) -> float:
        """Calls per second allowed to ``source``."""
        return self.rates.get(source, 1.0)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def name_match(declared: str | None, registered: str | None, country: str | None,
               registered_form: str | None = None) -> NameMatch | None:
    """The name comparison as the API shows it; None without both names.

    Registers often keep the legal form apart from the name (France's ``BOULANGERIE MARTIN``
    with ``nature_juridique`` 5710, SAS). When the registered name carries no form but the
    register's form description reads as one, that form is compared with the declared one, so
    a trader declaring a SARL that is registered as a SAS gets ``close``, not ``match``.
    """
    if not declared or not registered:
        return None
    if registered_form and names.normalise(registered, country).legal_form is None:
        code = register_form_code(registered_form, country)
        if code and names.normalise(f"{registered} {code}", country).legal_form == code:
            registered = f"{registered} {code}"
    m = names.compare(declared, registered, country)
    return {
        "score": m.score,
        "verdict": m.verdict,
        "declared": m.a,
        "registered": m.b,
        "legal_forms": {"declared": m.legal_forms[0], "registered": m.legal_forms[1]},
    }


def register_form_code(description: str, country: str | None) -> str | None:
    """The legal-form code of a register's form description, or None.

    >>> register_form_code("5710 SAS, société par actions simplifiée", "FR")
    'SAS'
    >>> register_form_code("AS (Aksjeselskap)", "NO"), register_form_code("2HBR", "DE")
    ('AS', None)
    """
    words = description.replace(",", " ").replace("(", " ").replace(")", " ").split()
    words = [w for w in words if not w.isdigit()]  # INSEE codes such as 5710
    return names.normalise(" ".join(["x", *words]), country).legal_form


class RegistryChecker:
    """Checks registration numbers; one per process, shared by its threads."""

    def __init__(
        self,
        *,
        registers: Mapping[str, Register],
        missing: Mapping[str, str],
        cache: RegistryCache,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        store: Store,
        limits: Limits,
        sandbox: bool = False,
    ) -> None:
        self.registers = dict(registers)
        self.missing = dict(missing)
        self.cache = cache
        self.limiter = limiter
        self.breaker = breaker
        self.store = store
        self.limits = limits
        self.sandbox = sandbox
        self.call = GuardedCall(breaker, Retry(limits.retry_base_s, limits.retry_max_s,
                                               retries=limits.retries), name="registry")

    # -- the whole check -----------------------------------------------------------------------

    def check(self, req: CheckRequest) -> RegistryCheckResult:
        """Check one number. Raises :class:`kinds.KindError` for a request that does not fit
        (the API answers 400); an upstream fault is an ``unavailable`` answer, never raised."""
        country = kinds.country_code(req.country_code)
        try:
            kind = kinds.resolve(country, req.kind, req.number)
        except kinds.NoKindFits as e:
            return {**self._answer(self._base(None, country, kinds.clean(req.number), False),
                                   "invalid"), "reason": "format", "detail": str(e)}
        if req.register and not (kind and kind.takes_register):
            raise kinds.KindError("register", "register is only used with a kind that names "
                                  "its register court (handelsregisternummer).")
        if kind is None:
            return {
                **self._answer(self._base(None, country, kinds.clean(req.number), None),
                               "unverifiable"),
                "detail": f"trace30 knows no registration number format of {country}. "
                + ASK_FOR_EXTRACT,
            }
        parsed = kinds.check_format(kind, req.number, req.register)
        base = self._base(kind.name, country or kind.country, parsed.normalised,
                          parsed.format_valid)
        if not parsed.format_valid:
            return {**self._answer(base, "invalid"), "reason": parsed.reason,
                    "detail": parsed.detail}
        if kind.source is None or kind.source not in self.registers:
            where = f" of {kind.country}" if kind.country else ""
            why = self.missing.get(kind.source or "") or (
                f"No official register{where} that can be queried for free is connected "
                f"for {kind.name} numbers."
            )
            return {**self._answer(base, "unverifiable"), "detail": f"{why} {ASK_FOR_EXTRACT}"}
        register = self.registers[kind.source]
        key = self.cache.key(register.source, kind.name, parsed.normalised)
        cached = self.cache.get(key, req.max_age_s) if req.max_age_s != 0 else None
        result: RegistryCheckResult
        if cached:
            result = {**cached.result, "cached": True}
        else:
            result = self._lookup(register, kind.name, parsed.normalised, base)
            if result["status"] in ("active", "inactive", "not_found"):
                self.cache.put(key, result)
        result["name_match"] = name_match(
            req.name, result["registered_name"], result["country_code"], result["legal_form"]
        )
        return result

    # -- steps ---------------------------------------------------------------------------------

    def _base(self, kind: str | None, country: str | None, normalised: str,
              format_valid: bool | None) -> RegistryResultBase:
        return {
            "kind": kind,
            "country_code": country,
            "normalised": normalised,
            "format_valid": format_valid,
            "reason": None,
            "detail": None,
            "registered_name": None,
            "legal_form": None,
            "address": None,
            "registered_address": None,
            "status_raw": None,
            "status_detail": None,
            "ceased_on": None,
            "registered_as": None,
            "source": None,
            "name_match": None,
            "error": None,
            "retry_after_s": None,
            "attempts": 0,
            "cached": False,
            "sandbox": self.sandbox,
        }

    def _answer(self, base: RegistryResultBase, status: Status) -> RegistryCheckResult:
        return {**base, "status": status, "checked_at": _now()}

    def _source(self, register: Register, url: str | None) -> Source:
        return {"id": register.source, "name": register.title, "url": url}

    def _throttled_key(self, source: str) -> str:
        return self.store.key("registry", "throttled", source)

    def _lookup(self, register: Register, kind: str, number: str,
                base: RegistryResultBase) -> RegistryCheckResult:
        source = register.source
        started = time.monotonic()
        deadline = started + self.limits.deadline_s

        def attempt(timeout_s: float, attempts: int) -> RegisterRecord | None:
            return register.lookup(kind=kind, number=number, timeout_s=timeout_s)

        def on_fault(error: UpstreamError, attempts: int) -> None:
            if error.fault is Fault.THROTTLED:  # every process waits as long as it asked
                pause_ms = math.ceil((error.retry_after_s or THROTTLE_RETRY_AFTER_S) * 1000)
                self.store.client.set(self._throttled_key(source), "1", px=pause_ms)
            elif error.fault is Fault.REFUSED:
                log.error("register refused our credentials: needs attention",
                          extra={"source": source})

        try:
            wait_ms = self.store.client.pttl(self._throttled_key(source))
            if wait_ms and wait_ms > 0:
                return self._unavailable(
                    base, register, "UPSTREAM_THROTTLED", True, wait_ms / 1000, 0,
                    f"{register.title} asked us to slow down; not asked again until then.",
                )
            rate = self.limits.rate(source)
            run = self.call.run(source, deadline, attempt,
                                slot=RateSlot(self.limiter, source, rate, 1.0, self.limits.burst),
                                on_fault=on_fault)
        except redis.RedisError as e:
            # Without Redis the shared rate limits cannot be honoured; asking anyway could get
            # the platform's key blocked, so the honest answer is "try later".
            log.error("redis unavailable during registry check", extra={"error": type(e).__name__})
            return self._unavailable(base, register, STORE_UNAVAILABLE, True, 5.0, 0,
                                     "The shared rate limiter is unavailable.")
        if run.denied is not None:
            return self._unavailable(
                base, register, CIRCUIT_OPEN, True, run.denied.retry_after_s, 0,
                f"{register.title} is failing ({run.denied.code}); not asked again until "
                "the circuit closes.",
            )
        if run.no_slot:
            return self._unavailable(
                base, register, RATE_LIMITED, True, max(1.0, 1 / rate), 0,
                f"The rate limit of {register.title} left no slot within the deadline.",
            )
        last = run.error
        if last is None:
            return self._log(self._found(base, register, run.value, run.attempts), started)
        retry_after: float | None = None
        if last.retryable:
            retry_after = last.retry_after_s or (
                THROTTLE_RETRY_AFTER_S if last.fault is Fault.THROTTLED
                else OUTAGE_RETRY_AFTER_S
            )
        return self._log(self._unavailable(base, register, last.code, last.retryable,
                                           retry_after, run.attempts, str(last)), started)

    def _found(self, base: RegistryResultBase, register: Register,
               record: RegisterRecord | None, attempts: int) -> RegistryCheckResult:
        if record is None:
            return {
                **self._answer(base, "not_found"),
                "attempts": attempts,
                "source": self._source(register, None),
                "detail": f"{register.title} has no record of this number.",
            }
        return {
            **self._answer(base, record.status),
            "attempts": attempts,
            "source": self._source(register, record.url),
            "country_code": base["country_code"] or record.country,
            "registered_name": record.registered_name,
            "legal_form": record.legal_form,
            "address": record.address,
            "registered_address": record.address_parts,
            "status_raw": record.status_raw,
            "status_detail": record.status_detail,
            "ceased_on": record.ceased_on,
            "registered_as": record.registered_as,
        }

    def _unavailable(self, base: RegistryResultBase, register: Register, code: str,
                     retryable: bool, retry_after_s: float | None, attempts: int,
                     message: str) -> RegistryCheckResult:
        return {
            **self._answer(base, "unavailable"),
            "error": {"code": code, "retryable": retryable, "message": message},
            "retry_after_s": round(retry_after_s, 1) if retry_after_s is not None else None,
            "source": self._source(register, None),
            "attempts": attempts,
            "detail": f"{register.title} gave no answer; ask again later." if retryable else
            f"{register.title} refused our request; the operators must look at it.",
        }

    def _log(self, result: RegistryCheckResult, started: float) -> RegistryCheckResult:
        log.info(
            "registry check",
            extra={
                "kind": result["kind"],
                "country": result["country_code"],
                "number": kinds.mask(result["normalised"]),
                "status": result["status"],
                "source": result["source"]["id"] if result["source"] else None,
                "fault": result["error"]["code"] if result["error"] else None,
                "attempts": result["attempts"],
                "register_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return result
