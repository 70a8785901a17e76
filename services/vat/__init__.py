"""The VAT service: EU VAT numbers checked locally and against VIES (port 8101).

A request goes ``api.check`` → ``checks.VatChecker.check`` (local format, cache, circuit
breaker, concurrency slot) → ``vies.ZeepVies.check`` (SOAP) → back the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from services.vat import api
from services.vat.cache import VatCache
from services.vat.checks import Limits, VatChecker
from services.vat.vies import ZeepVies
from shared import health, outbound
from shared.breaker import CircuitBreaker
from shared.config import parse_caps
from shared.factory import create_base_app
from shared.limits import ConcurrencyLimiter

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the VAT service. ``config`` overrides settings (and may pass ``VIES``, a fake)."""
    app, openapi = create_base_app(
        __name__, "vat", config, title="trace30 VAT service",
        description="EU VAT numbers checked with python-stdnum and VIES.",
    )
    c = app.config
    store = app.extensions["trace30.redis"]
    if not c.get("VIES"):
        outbound.check_url(c["VIES_URL"], "VIES_URL")
    vies = c.get("VIES") or ZeepVies(
        c["VIES_URL"],
        connect_timeout_s=c["VIES_CONNECT_TIMEOUT_S"],
        read_timeout_s=c["VIES_READ_TIMEOUT_S"],
    )
    app.extensions[api.EXTENSION] = VatChecker(
        vies=vies,
        cache=VatCache(
            store, c["VAT_CACHE_VALID_TTL_S"], c["VAT_CACHE_INVALID_TTL_S"],
            c["VAT_STALE_MAX_AGE_S"], local_ttl_s=c["VAT_LOCAL_CACHE_TTL_S"],
        ),
        # A lease outlives the longest call, so a crashed worker's slot frees itself.
        # Waiters block on Redis for a release, for less than a Redis read timeout at a time.
        limiter=ConcurrencyLimiter(store, "vies", lease_s=c["VIES_DEADLINE_S"] + 5,
                                   poll_s=min(0.2, c["REDIS_TIMEOUT_S"] / 2)),
        breaker=CircuitBreaker(
            store, "vies", c["VIES_BREAKER_THRESHOLD"], c["VIES_BREAKER_COOLDOWN_S"]
        ),
        limits=Limits(
            deadline_s=c["VIES_DEADLINE_S"],
            retry_base_s=c["VIES_RETRY_BASE_S"],
            retry_max_s=c["VIES_RETRY_MAX_S"],
            default_cap=c["VIES_MS_CONCURRENCY"],
            caps=parse_caps(c["VIES_MS_CONCURRENCY_OVERRIDES"]),
            min_call_s=c["VIES_MIN_CALL_S"],
            abandoned_hold_s=c["VIES_ABANDONED_HOLD_S"],
        ),
        sandbox=c["SANDBOX"],
        default_requester=c["REQUESTER_VAT_NUMBER"],
    )
    if not c["REQUESTER_VAT_NUMBER"]:
        log.warning(
            "TRACE30_REQUESTER_VAT_NUMBER is not set: VIES answers will carry no consultation "
            "number, the proof of each check a tax authority or regulator may ask for"
        )
    health.add_check(app, "vies_wsdl", vies.ready)
    # A request that could not be built: a 400 naming the field, never a verdict.
    outbound.init_app(app, "VIES")
    openapi.register_blueprint(api.bp)
    return app
