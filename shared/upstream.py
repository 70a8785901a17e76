"""What every call to an outside system shares: its faults, the HTTP plumbing, the backoff
between attempts and the guarded call (breaker, limiter, retries, deadline).

- :class:`Fault` and :class:`UpstreamError`: the one catalogue of what can go wrong with an
  upstream and the one exception every adapter raises (VIES, the national VAT sources, the
  registers, payee verification). ``fault`` is the catalogue entry, from which ``retryable``
  (asking again later may help) and ``outage`` (the circuit breaker counts it) follow;
  ``code`` is the stable code the API answers as ``error.code`` (``UPSTREAM_TIMEOUT``, or the
  protocol's own, such as VIES's ``MS_UNAVAILABLE``); ``retry_after_s`` is how long the
  upstream asked us to wait. Adapters only translate their protocol's answers and faults.
- :func:`send`, :func:`http_fault`, :func:`json_of`, :func:`retry_after`: one HTTP call with
  its exceptions translated, the fault of an HTTP status no adapter reads as an answer, a JSON
  body or ``bad_response``, a ``Retry-After`` header in seconds.
- :func:`backoff_s`: the pause after a failed attempt, doubling from a base up to a maximum
  with "equal jitter" (between half and all of it), so the retries of many workers spread out
  and no pause ever passes the maximum. The guarded call and the webhook deliveries pause by it.
- :func:`new_session`: a ``requests.Session`` with a connection pool (keep-alive saves a TLS
  handshake per call) and no urllib3 retries (retries are the caller's, within its deadline).
- :func:`internal_pool`: the same pool for calls inside the deployment (the gateway to its
  services), used through urllib3 itself: requests' layers (its session, cookies, hooks and
  request preparation) were 1,200 of the 1,900 Python calls of each of those requests.
- :class:`GuardedCall`: the one loop of every check that asks an upstream (see its doc).
"""

from __future__ import annotations

import email.utils
import enum
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import certifi
import redis
import requests
import urllib3
from requests.adapters import HTTPAdapter

from shared import metrics, outbound
from shared.breaker import CircuitBreaker, Decision, Outcome
from shared.limits import RateLimiter

log = logging.getLogger(__name__)

T = TypeVar("T")


class Fault(enum.Enum):
    """The catalogue of upstream faults: ``(value, retryable, outage, default code)``."""

    #: The upstream did not answer within the timeout (ours; or its own, e.g. VIES's TIMEOUT).
    TIMEOUT = ("timeout", True, True, "UPSTREAM_TIMEOUT")
    #: It could not be reached (connection refused or reset, DNS, TLS, a proxy's error page).
    UNREACHABLE = ("unreachable", True, True, "UPSTREAM_UNREACHABLE")
    #: It answered that it is down (a 5xx, VIES's MS_UNAVAILABLE, an undocumented fault).
    OUTAGE = ("outage", True, True, "UPSTREAM_SERVER_ERROR")
    #: It answered something that is not an answer of its protocol (unparsable, wrong shape).
    BAD_RESPONSE = ("bad_response", True, True, "UPSTREAM_BAD_RESPONSE")
    #: It asked us to slow down (HTTP 429, VIES's MS_MAX_CONCURRENT_REQ): not an outage.
    THROTTLED = ("throttled", True, False, "UPSTREAM_THROTTLED")
    #: It refused *us* (credentials, requester, IP): a person must look; never retried.
    REFUSED = ("refused", False, False, "UPSTREAM_REFUSED")
    #: It refused the request itself (another 4xx): asking again will not help.
    REJECTED = ("rejected", False, False, "UPSTREAM_REJECTED")
    #: It refused the number itself (VIES's INVALID_INPUT): an answer, the caller's to read.
    INVALID = ("invalid", False, False, "INVALID_INPUT")
    #: It does not check numbers of this kind (HMRC and a GBGD number): a person decides.
    CANNOT_CHECK = ("cannot_check", False, False, "NOT_CHECKABLE")

    def __init__(self, name: str, retryable: bool, outage: bool, code: str) -> None:
        self.label = name
        self.retryable = retryable
        self.outage = outage
        self.code = code


class UpstreamError(Exception):
    """The upstream gave no answer about the request. ``code`` is stable and safe to show
    (no personal data); ``fault`` says what it means (:class:`Fault`)."""

    def __init__(self, message: str, fault: Fault = Fault.UNREACHABLE, *,
                 code: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.fault = fault
        self.code = code or fault.code
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        """Asking again later may help."""
        return self.fault.retryable

    @property
    def outage(self) -> bool:
        """The fault counts towards the upstream's circuit breaker."""
        return self.fault.outage

    def __repr__(self) -> str:
        return f"UpstreamError({str(self)!r}, {self.fault.name}, code={self.code!r})"


# -- HTTP ----------------------------------------------------------------------------------------

def new_session(user_agent: str | None, pool_size: int = 10, *,
                accept: str | None = None) -> requests.Session:
    """A pooled session sending ``user_agent`` and ``accept`` (None: requests' own), with no
    urllib3 retries, for calls to outside systems: the environment's proxies, ``NO_PROXY`` and
    ``.netrc`` are consulted (an egress proxy is common). Calls inside the deployment go
    through :func:`internal_pool`."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if user_agent is not None:
        session.headers["User-Agent"] = user_agent
    if accept is not None:
        session.headers["Accept"] = accept
    return session


#: What urllib3 does on a failure of an internal call: nothing more (requests' own default).
NO_RETRIES = urllib3.Retry(0, read=False)


def internal_pool(url: str, pool_size: int = 10) -> urllib3.HTTPConnectionPool:
    """A pool of kept-alive connections to the host of ``url``, one of the deployment's own
    services: no proxy and no ``.netrc`` (requests reads the environment again on every call,
    a quarter of each call's CPU time in ``bench/load.py``), no retries, requests' CA bundle
    (certifi) for https, and none of requests' layers. Each call passes its timeout;
    ``NO_RETRIES`` is the pool's."""
    tls = {"ca_certs": certifi.where()} if url.lower().startswith("https:") else {}
    return urllib3.connection_from_url(url, maxsize=pool_size, block=False, retries=NO_RETRIES,
                                       **tls)


def send(session: requests.Session, method: str, url: str, *, title: str,
         timeout: tuple[float, float], **kwargs: Any) -> requests.Response:
    """One HTTP call (:func:`shared.outbound.send`); a timeout is :data:`Fault.TIMEOUT`, a
    connection failure :data:`Fault.UNREACHABLE`, a request that cannot leave the process
    :class:`~shared.outbound.NotSent`. The response, whatever its status, is the adapter's."""
    try:
        return outbound.send(session, method, url, timeout=timeout, what=title, **kwargs)
    except requests.Timeout as e:
        raise UpstreamError(f"{title} did not answer in time", Fault.TIMEOUT) from e
    except requests.RequestException as e:
        raise UpstreamError(f"{title} could not be reached: {type(e).__name__}",
                            Fault.UNREACHABLE) from e


def retry_after(value: str | None) -> float | None:
    """Seconds to wait, from a ``Retry-After`` header (seconds or an HTTP date).

    >>> retry_after("3"), retry_after(None), retry_after("soon")
    (3.0, None, None)
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class HttpFaults:
    """How one family of adapters names the HTTP statuses it does not read as answers (the
    codes its API has always answered): 429 is :data:`Fault.THROTTLED` with ``Retry-After``,
    401/403 :data:`Fault.REFUSED`, 5xx :data:`Fault.OUTAGE`, another 2xx
    :data:`Fault.BAD_RESPONSE`, another 4xx ``client_error``."""

    #: The code of a 5xx; None: ``UPSTREAM_HTTP_<status>``.
    server_code: str | None = None
    #: The code of a 401/403.
    refused_code: str = Fault.REFUSED.code
    #: What another 4xx is; with ``Fault.OUTAGE`` its code is ``UPSTREAM_HTTP_<status>``.
    client_error: Fault = Fault.OUTAGE
    #: Whether a 5xx's ``Retry-After`` is kept.
    server_retry_after: bool = True

    def fault(self, response: requests.Response, title: str) -> UpstreamError:
        """The fault of ``response``'s status.

        >>> r = requests.Response(); r.status_code = 503
        >>> HttpFaults().fault(r, "X").code, HttpFaults(server_code="DOWN").fault(r, "X").code
        ('UPSTREAM_HTTP_503', 'DOWN')
        """
        status = response.status_code
        wait = retry_after(response.headers.get("Retry-After"))
        if status == 429:
            return UpstreamError(f"{title} throttled the call (HTTP 429)", Fault.THROTTLED,
                                 retry_after_s=wait)
        if status in (401, 403):
            return UpstreamError(f"{title} refused our credentials (HTTP {status})",
                                 Fault.REFUSED, code=self.refused_code)
        if status >= 500:
            return UpstreamError(f"{title} answered HTTP {status}", Fault.OUTAGE,
                                 code=self.server_code or f"UPSTREAM_HTTP_{status}",
                                 retry_after_s=wait if self.server_retry_after else None)
        if 200 <= status < 300:
            return UpstreamError(f"{title} answered HTTP {status}", Fault.BAD_RESPONSE)
        if self.client_error is Fault.OUTAGE:
            return UpstreamError(f"{title} answered HTTP {status}", Fault.OUTAGE,
                                 code=f"UPSTREAM_HTTP_{status}")
        return UpstreamError(f"{title} refused the request (HTTP {status})", self.client_error)


def json_of(response: requests.Response, title: str) -> Any:
    """The JSON body of ``response``, or :data:`Fault.BAD_RESPONSE`."""
    try:
        return response.json()
    except ValueError as e:
        raise UpstreamError(f"{title} answered content that is not JSON",
                            Fault.BAD_RESPONSE) from e


# -- retries -------------------------------------------------------------------------------------

def backoff_s(
    attempt: int, base_s: float, max_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first).

    ``base_s`` doubles with each attempt up to ``max_s``; the wait is drawn between half and
    all of that ("equal jitter").

    >>> [backoff_s(n, 5, 3600, rand=lambda: 1.0) for n in (1, 2, 3, 12)]
    [5.0, 10.0, 20.0, 3600.0]
    >>> backoff_s(1, 5, 3600, rand=lambda: 0.0)
    2.5
    >>> max(backoff_s(n, 0.2, 2.0) for n in range(1, 100)) <= 2.0
    True
    """
    ceiling: float = min(max_s, base_s * 2 ** min(attempt - 1, 60))
    return ceiling / 2 + rand() * ceiling / 2


@dataclass(frozen=True)
class Retry:
    """How a guarded call retries."""

    base_s: float
    max_s: float
    #: Retries after the first attempt at most; None: as many as the deadline allows.
    retries: int | None = None
    #: Don't start an attempt with less time than this left: it could only time out.
    min_call_s: float = 0.0
    #: Retry a throttle only when the upstream said how long to wait (a source whose every
    #: attempt spends its quota).
    throttle_needs_wait: bool = False


class Slot(Protocol):
    """A turn of a shared limiter, taken before each attempt and given back after it."""

    def acquire(self, deadline: float) -> Any:
        """A token (anything but None), or None when no turn came before ``deadline``."""
        ...

    def release(self, token: Any, error: UpstreamError | None) -> None:
        """Give the turn back; ``error`` is the attempt's fault, None when it answered."""
        ...


class RateSlot:
    """A shared rate limit (:class:`shared.limits.RateLimiter`) as a :class:`Slot`: a turn is
    ``calls_per_turn`` calls of ``calls`` per ``period_s``; nothing to give back (a call spent
    is spent)."""

    def __init__(self, limiter: RateLimiter, key: str, calls: float, period_s: float = 1.0,
                 burst: int = 1, calls_per_turn: int = 1) -> None:
        self.limiter = limiter
        self.key = key
        self.calls = calls
        self.period_s = period_s
        self.burst = burst
        self.calls_per_turn = calls_per_turn

    def acquire(self, deadline: float) -> bool | None:
        """True once every call of the turn is allowed; None when the deadline came first."""
        return all(self.limiter.acquire(self.key, self.calls, self.period_s, deadline,
                                        self.burst)
                   for _ in range(self.calls_per_turn)) or None

    def release(self, token: Any, error: UpstreamError | None) -> None:
        """Nothing to give back."""


#: The message of the fault answered when no time was left for a first attempt.
NO_TIME_LEFT = "No time was left for a call."
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"


@dataclass
class Guarded(Generic[T]):
    """What a guarded call came to: an answer (``value``) or why there is none."""

    value: T | None = None
    #: The last fault (None with an answer, a denial or no slot).
    error: UpstreamError | None = None
    #: The breaker's decision when the circuit was open: nothing was asked.
    denied: Decision | None = None
    #: The limiter gave no turn before the deadline: nothing was asked.
    no_slot: bool = False
    attempts: int = 0

    @property
    def answered(self) -> bool:
        """Whether ``value`` is the answer."""
        return self.error is None and self.denied is None and not self.no_slot

    @property
    def outcome(self) -> tuple[str, str | None]:
        """What the check came to, as metrics name it: (outcome, fault code)."""
        if self.denied is not None:
            return "circuit_open", self.denied.code
        if self.no_slot:
            return "no_slot", None
        if self.error is not None:
            return self.error.fault.label, self.error.code
        return "answered", None


class GuardedCall:
    """The one loop of every check that asks an upstream.

    :meth:`run` asks ``breaker`` (an open circuit asks nothing: :attr:`Guarded.denied`), then
    for each attempt takes a turn of ``slot`` (a shared concurrency slot or rate limit) and
    calls ``attempt`` with what is left of the deadline as timeout. The breaker learns one
    outcome per check (answered, or an outage fault), however many attempts it made. Only a
    retryable fault is retried: after :func:`backoff_s`, never less than the ``Retry-After`` the
    upstream asked for, at most ``retry.retries`` times, and never past the deadline (when the
    wait would pass it, the check stops with the last fault, whose ``retry_after_s`` the caller
    answers). An outage fault stops a probe, and any check once the circuit opened.
    :class:`~shared.outbound.NotSent` (nothing was sent) is raised at once: never retried, never
    counted. Redis errors are the caller's, unless ``store_optional`` (the upstream is then
    asked without the breaker). ``clock`` and ``sleep`` are injectable for tests.

    Metrics (:mod:`shared.metrics`), labelled ``name`` and ``key``: each check's outcome, fault
    code and time, each attempt's outcome and time, each wait for a turn of ``slot``.
    """

    def __init__(self, breaker: CircuitBreaker | None, retry: Retry, *, name: str = "upstream",
                 store_optional: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random) -> None:
        self.breaker = breaker
        self.retry = retry
        self.name = name
        self.store_optional = store_optional
        self.clock = clock
        self.sleep = sleep
        self.rand = rand

    def run(self, key: str, deadline: float, attempt: Callable[[float, int], T], *,
            slot: Slot | None = None,
            on_fault: Callable[[UpstreamError, int], T | None] | None = None) -> Guarded[T]:
        """Ask ``attempt(timeout_s, attempt_number)`` until it answers (its return value) or
        raises an :class:`UpstreamError` that ends the check. ``on_fault(error, attempts)``,
        after each fault is counted, may end the check with an answer of its own (a fallback),
        or log it and return None."""
        started = time.perf_counter()
        result: Guarded[T] | None = None
        try:
            decision = self._allow(key)
            if decision is not None and not decision.allowed:
                result = Guarded(denied=decision)
                return result
            outcome = None
            if decision is not None and self.breaker is not None:
                outcome = self.breaker.outcome(key, decision)
            try:
                result = self._attempts(key, deadline, attempt, slot, on_fault, decision, outcome)
                return result
            finally:
                self._record(key, outcome)
        finally:
            # Raised (a request not sent, the store down): counted as "error".
            ended, code = result.outcome if result is not None else ("error", None)
            metrics.upstream_check(self.name, key, ended, code, time.perf_counter() - started)

    def _attempts(self, key: str, deadline: float, attempt: Callable[[float, int], T],
                  slot: Slot | None, on_fault: Callable[[UpstreamError, int], T | None] | None,
                  decision: Decision | None, outcome: Outcome | None) -> Guarded[T]:
        retry = self.retry
        attempts = 0
        last: UpstreamError | None = None
        while True:
            if slot is not None:
                waited = time.perf_counter()
                token = slot.acquire(deadline)
                metrics.slot_wait(self.name, key, time.perf_counter() - waited,
                                  got=token is not None)
            else:
                token = True
            if token is None:
                if last is None:
                    return Guarded(no_slot=True)
                break
            if retry.min_call_s and deadline - self.clock() < retry.min_call_s:
                if slot is not None:
                    slot.release(token, None)
                last = last or UpstreamError(NO_TIME_LEFT, Fault.TIMEOUT, code=DEADLINE_EXCEEDED)
                break
            attempts += 1
            error: UpstreamError | None = None
            called = time.perf_counter()
            try:
                value = attempt(max(0.05, deadline - self.clock()), attempts)
            except UpstreamError as e:
                error = e
            finally:
                if slot is not None:
                    slot.release(token, error)
            metrics.upstream_attempt(self.name, key, error.fault.label if error else "answered",
                                     time.perf_counter() - called)
            if error is None:
                if outcome is not None:
                    outcome.answered()
                return Guarded(value=value, attempts=attempts)
            last = error
            if error.outage and outcome is not None:
                outcome.failed(error.code)
            if on_fault is not None:
                fallback = on_fault(error, attempts)
                if fallback is not None:
                    return Guarded(value=fallback, attempts=attempts)
            if not error.retryable:
                break
            if retry.retries is not None and attempts > retry.retries:
                break
            if (error.fault is Fault.THROTTLED and retry.throttle_needs_wait
                    and error.retry_after_s is None):
                break  # no time to wait given: asking again only adds to the load
            if error.outage and decision is not None and self.breaker is not None and (
                    decision.probe or self.breaker.is_open(key)):
                break  # a probe asks once; any check stops once others opened the circuit
            pause = backoff_s(attempts, retry.base_s, retry.max_s, self.rand)
            if error.retry_after_s is not None:
                pause = max(pause, error.retry_after_s)  # never less than it asked for
            if self.clock() + pause + retry.min_call_s >= deadline:
                break
            self.sleep(pause)
        return Guarded(error=last, attempts=attempts)

    def _allow(self, key: str) -> Decision | None:
        if self.breaker is None:
            return None
        try:
            return self.breaker.allow(key)
        except redis.RedisError as e:
            if not self.store_optional:
                raise
            log.warning("breaker unavailable", extra={"upstream": self.name,
                                                      "error": type(e).__name__})
            return None

    def _record(self, key: str, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        try:
            if outcome.record():
                log.warning("circuit opened", extra={"upstream": self.name, "key": key,
                                                     "fault": outcome.fault})
        except redis.RedisError as e:
            if not self.store_optional:
                raise
            log.warning("breaker unavailable", extra={"upstream": self.name,
                                                      "error": type(e).__name__})
