"""Prometheus metrics of every trace30 service: the one home of their names, labels and buckets.

Every metric is declared here and moved through the small functions below
(:func:`upstream_check`, :func:`cache_lookup`, ...), so an instrumented module adds one line and
never spells a metric name. :func:`init_app` (called by :func:`shared.factory.create_base_app`)
counts every request by route and status with its latency, and serves ``/metrics``.

Processes. Under gunicorn each worker is a process of its own: prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set up by ``deploy/gunicorn.conf.py``) has
every worker write its values to files in that folder, and ``/metrics``, whichever worker
answers, reads them all. Without the variable (tests, ``trace30 run``, a single process) the
process's own registry is served.

Scrape-time gauges. What is counted from a store (the evidence log's pending backlog and
webhook outbox, the RQ queue, batch runs) is read when Prometheus scrapes, by collectors a
service adds with :func:`add_collector` (the gateway's are in
:mod:`services.gateway.gauges`). A collector that fails is reported as
``trace30_scrape_collector_up{collector} 0``; the scrape still answers.

Exposure (``TRACE30_METRICS``): ``off`` serves no ``/metrics``; ``public`` serves it to anyone
(sandbox's default); ``internal`` (the default outside sandbox) only to a request with the
internal bearer token (``Authorization: Bearer $TRACE30_INTERNAL_TOKEN``) or from a network of
``TRACE30_METRICS_NETWORKS`` that no proxy relayed (no ``X-Forwarded-For``). The gateway's nginx
never passes ``/metrics`` on (``deploy/nginx/gateway.conf.template``).

Labels never carry personal data or request paths: a request is labelled with its URL rule
(``/v1/verifications/<verification_id>``), an upstream with its name and key (a member state,
a register, ``vop``), and any label value outside a short safe alphabet becomes ``other``.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from shared.auth import bearer_token
from shared.errors import Unauthorized

log = logging.getLogger(__name__)

EXTENSION = "trace30.metrics"
PATH = "/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: The text format every Prometheus reads (our names are all of its classic alphabet).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: ``TRACE30_METRICS`` values.
EXPOSURES = ("off", "internal", "public")

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UPSTREAM_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 20.0, 30.0)
SLOT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

# -- the metrics ---------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "trace30_http_requests_total", "HTTP requests answered, by route (the URL rule) and status.",
    ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "trace30_http_request_duration_seconds", "Time to answer an HTTP request, by route.",
    ["service", "method", "route"], buckets=HTTP_BUCKETS)
UPSTREAM_CHECKS = Counter(
    "trace30_upstream_checks_total",
    "Guarded checks of an upstream, by outcome: answered, a fault (timeout, unreachable, "
    "outage, bad_response, throttled, refused, rejected, invalid, cannot_check), "
    "circuit_open, no_slot or error; code is the fault's code.",
    ["upstream", "key", "outcome", "code"])
UPSTREAM_CHECK_LATENCY = Histogram(
    "trace30_upstream_check_duration_seconds",
    "Time of a guarded check, every attempt, wait and backoff included.",
    ["upstream", "key"], buckets=UPSTREAM_BUCKETS)
UPSTREAM_ATTEMPTS = Counter(
    "trace30_upstream_attempts_total", "Calls made to an upstream, by outcome.",
    ["upstream", "key", "outcome"])
UPSTREAM_ATTEMPT_LATENCY = Histogram(
    "trace30_upstream_attempt_duration_seconds", "Time of one call to an upstream.",
    ["upstream", "key"], buckets=UPSTREAM_BUCKETS)
SLOT_WAIT = Histogram(
    "trace30_upstream_slot_wait_seconds",
    "Time waited for a shared concurrency slot or rate-limit turn before a call.",
    ["upstream", "key"], buckets=SLOT_BUCKETS)
SLOT_TIMEOUTS = Counter(
    "trace30_upstream_slot_timeouts_total",
    "Waits for a slot or turn that ended at the deadline without one.", ["upstream", "key"])
BREAKER_STATE = Gauge(
    "trace30_breaker_state",
    "Circuit breaker state last seen by the service: 0 closed, 1 half open, 2 open.",
    ["breaker", "key"], multiprocess_mode="mostrecent")
BREAKER_OPENED = Counter(
    "trace30_breaker_opened_total", "Times a circuit breaker opened (or was tripped).",
    ["breaker", "key"])
CACHE_LOOKUPS = Counter(
    "trace30_cache_lookups_total", "Cache lookups, by cache and result (hit or miss).",
    ["cache", "result"])
VERDICTS = Counter(
    "trace30_verdicts_total", "Verifications settled, by verdict and priority.",
    ["verdict", "priority"])
WEBHOOK_ATTEMPTS = Counter(
    "trace30_webhook_attempts_total",
    "Webhook delivery attempts, by event and outcome: delivered, retrying (failed, will be "
    "tried again) or failed (failed, given up).",
    ["event", "outcome"])

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}

_SAFE = re.compile(r"[A-Za-z0-9_.:-]{1,48}")


def label(value: object) -> str:
    """A label value: ``value`` if short and of a safe alphabet, else ``other``; None is ``""``.

    >>> label("DE"), label(None), label("jane@example.com"), label("x" * 60)
    ('DE', '', 'other', 'other')
    """
    if value is None:
        return ""
    text = str(getattr(value, "value", value))
    return text if _SAFE.fullmatch(text) else "other"


@functools.lru_cache(maxsize=8192)
def _child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, kept: the hot paths skip prometheus-client's checks and lock
    after the first time (a few microseconds a call)."""
    return metric.labels(*values)


# -- what instrumented modules call --------------------------------------------------------------

def upstream_check(upstream: str, key: str, outcome: str, code: str | None,
                   seconds: float) -> None:
    """One guarded check of ``upstream`` for ``key`` ended so (``GuardedCall``)."""
    upstream, key = label(upstream), label(key)
    _child(UPSTREAM_CHECKS, upstream, key, label(outcome), label(code)).inc()
    _child(UPSTREAM_CHECK_LATENCY, upstream, key).observe(seconds)


def upstream_attempt(upstream: str, key: str, outcome: str, seconds: float) -> None:
    """One call to ``upstream`` was answered (``answered``) or failed with a fault."""
    upstream, key = label(upstream), label(key)
    _child(UPSTREAM_ATTEMPTS, upstream, key, label(outcome)).inc()
    _child(UPSTREAM_ATTEMPT_LATENCY, upstream, key).observe(seconds)


def slot_wait(upstream: str, key: str, seconds: float, *, got: bool) -> None:
    """A wait for a slot of ``upstream``'s limiter took ``seconds``; ``got``: a slot came."""
    upstream, key = label(upstream), label(key)
    _child(SLOT_WAIT, upstream, key).observe(seconds)
    if not got:
        _child(SLOT_TIMEOUTS, upstream, key).inc()


def breaker_state(breaker: str, key: str, state: str, *, opened: bool = False) -> None:
    """The breaker ``breaker`` of ``key`` was seen in ``state``; ``opened``: it opened now."""
    breaker, key = label(breaker), label(key)
    _child(BREAKER_STATE, breaker, key).set(BREAKER_STATES[state])
    if opened:
        _child(BREAKER_OPENED, breaker, key).inc()


def cache_lookup(cache: str, hit: bool) -> None:
    """A lookup in ``cache`` found an entry (``hit``) or not."""
    _child(CACHE_LOOKUPS, label(cache), "hit" if hit else "miss").inc()


def verdict(value: object, priority: str) -> None:
    """A verification settled with ``value`` (a :class:`~services.gateway.verdicts.Verdict`)."""
    _child(VERDICTS, label(value), label(priority)).inc()


def webhook_attempt(event: str, outcome: str) -> None:
    """A webhook attempt ended: ``delivered``, ``retrying`` or ``failed``."""
    _child(WEBHOOK_ATTEMPTS, label(event), label(outcome)).inc()


# -- scrape-time collectors ----------------------------------------------------------------------

class NamedCollector(Protocol):
    """A collector a service adds (:func:`add_collector`): its name and its metrics."""

    name: str

    def collect(self) -> Iterable[Metric]:
        """The metric families, read now."""
        ...


def add_collector(app: Flask, collector: NamedCollector) -> None:
    """Have ``/metrics`` of ``app`` also report what ``collector`` reads at each scrape."""
    app.extensions[EXTENSION]["collectors"].append(collector)


class _Scrape(Collector):
    """What one scrape reports: the process's (or every worker's) metrics, then the app's."""

    def __init__(self, collectors: list[NamedCollector]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            yield from MultiProcessCollector(None, path=directory).collect()  # type: ignore[no-untyped-call]
        else:
            yield from REGISTRY.collect()
        if not self.collectors:
            return
        up = GaugeMetricFamily("trace30_scrape_collector_up",
                               "Whether a scrape-time collector could read its store (1) or not.",
                               labels=["collector"])
        for collector in self.collectors:
            try:
                families = list(collector.collect())
            except Exception as e:  # a store down must not fail the whole scrape
                log.warning("metrics collector failed",
                            extra={"collector": collector.name, "error": type(e).__name__})
                up.add_metric([collector.name], 0)
                continue
            up.add_metric([collector.name], 1)
            yield from families
        yield up


def exposition(collectors: list[NamedCollector] | None = None) -> bytes:
    """The text exposition of a scrape, with ``collectors``' metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(list(collectors or [])))
    return generate_latest(registry)


# -- settings ------------------------------------------------------------------------------------

def parse_exposure(text: str) -> str:
    """``TRACE30_METRICS``: off, internal or public.

    >>> parse_exposure(" Internal ")
    'internal'
    >>> parse_exposure("yes")
    Traceback (most recent call last):
    ...
    ValueError: 'yes' is not one of off, internal, public
    """
    value = text.strip().lower()
    if value not in EXPOSURES:
        raise ValueError(f"{text.strip()!r} is not one of {', '.join(EXPOSURES)}")
    return value


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``TRACE30_METRICS_NETWORKS``: comma-separated addresses or CIDR networks.

    >>> parse_networks("10.0.0.0/8, ::1")
    (IPv4Network('10.0.0.0/8'), IPv6Network('::1/128'))
    >>> parse_networks("10.0.0.0/33")
    Traceback (most recent call last):
    ...
    ValueError: '10.0.0.0/33' is not an address or network (write e.g. 10.0.0.0/8)
    """
    networks: list[Network] = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not an address or network "
                             "(write e.g. 10.0.0.0/8)") from None
    return tuple(networks)


# -- HTTP ----------------------------------------------------------------------------------------

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request that matched no route (a 404, a path refused before routing).
UNMATCHED = "<unmatched>"

bp = Blueprint("metrics", __name__)


def _from_allowed_network() -> bool:
    networks: tuple[Network, ...] = current_app.config["METRICS_NETWORKS"]
    if not networks or request.headers.get("X-Forwarded-For") is not None:
        return False  # a request a proxy relayed is never let in by its address
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


def _check_access() -> None:
    if current_app.config["METRICS"] == "public" or _from_allowed_network():
        return
    token = bearer_token()
    if token is None:
        raise Unauthorized("/metrics needs an 'Authorization: Bearer <token>' header with the "
                           "internal token, or a request from TRACE30_METRICS_NETWORKS.")
    expected: str = current_app.config["INTERNAL_TOKEN"]
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("The bearer token is not valid.")


@bp.get(PATH)
def scrape() -> Response:
    """The metrics in Prometheus's text format."""
    _check_access()
    body = exposition(current_app.extensions[EXTENSION]["collectors"])
    return Response(body, content_type=CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})


def _start_timer() -> None:
    g.trace30_metrics_started = time.perf_counter()


def _count(response: Response) -> Response:
    started = g.pop("trace30_metrics_started", None)
    service = current_app.name
    method = request.method if request.method in _METHODS else "other"
    rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    _child(HTTP_REQUESTS, service, method, rule, str(response.status_code)).inc()
    if started is not None:
        _child(HTTP_LATENCY, service, method, rule).observe(time.perf_counter() - started)
    return response


def init_app(app: Flask) -> None:
    """Count ``app``'s requests and serve ``/metrics`` as ``TRACE30_METRICS`` says.

    Called right after the settings are loaded, so that the timer starts before any other
    check of the request."""
    collectors: list[NamedCollector] = []
    app.extensions[EXTENSION] = {"collectors": collectors}
    app.before_request(_start_timer)
    app.after_request(_count)
    if app.config["METRICS"] != "off":
        app.register_blueprint(bp)

