"""The VAT service: VAT numbers checked locally and against their register (port 8101).

A request goes ``api.check`` → ``checks.VatChecker.check`` (local format, cache, circuit
breaker, concurrency slot) → ``vies.ZeepVies.check`` (SOAP; ``vies_rest.RestVies`` when SOAP
fails) → back the same way. GB, CH and NO numbers go to ``outside.OutsideChecker`` →
``hmrc.HmrcVat`` / ``uid.UidRegister`` / ``brreg_mva.BrregMva``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from services.vat import api
from services.vat.brreg_mva import BrregMva
from services.vat.cache import VatCache
from services.vat.checks import Limits, VatChecker
from services.vat.hmrc import HmrcVat
from services.vat.outside import OutsideChecker, Rate
from services.vat.sources import VatSource
from services.vat.uid import UidRegister
from services.vat.vies import Vies, ZeepVies
from services.vat.vies_rest import MemberStateStatus, RestVies
from shared import health, outbound
from shared.breaker import CircuitBreaker
from shared.factory import create_base_app
from shared.limits import ConcurrencyLimiter, RateLimiter
from shared.redis_client import Store

log = logging.getLogger(__name__)


#: Why a GB number is unverifiable when HMRC is not configured.
HMRC_NOT_CONFIGURED = (
    "HMRC's Check a UK VAT number API is not configured (TRACE30_HMRC_CLIENT_ID and "
    "TRACE30_HMRC_CLIENT_SECRET): the GB number was not checked; a person must verify it."
)


def _rest_fallback(c: Mapping[str, Any], store: Store) -> dict[str, Any]:
    """The VIES REST adapter, its breaker and the member-state status, as settings say."""
    rest: Vies | None = c.get("VIES_REST")
    if rest is None and c["VIES_REST_URL"]:
        outbound.check_url(c["VIES_REST_URL"], "VIES_REST_URL")
        rest = RestVies(c["VIES_REST_URL"], connect_timeout_s=c["VIES_CONNECT_TIMEOUT_S"],
                        read_timeout_s=c["VIES_READ_TIMEOUT_S"])
    if rest is None:
        return {}
    breaker = CircuitBreaker(store, "vies-rest", c["VIES_BREAKER_THRESHOLD"],
                             c["VIES_BREAKER_COOLDOWN_S"])
    status = (MemberStateStatus(rest, store, c["VIES_STATUS_TTL_S"], c["VIES_STATUS_TIMEOUT_S"])
              if isinstance(rest, RestVies) else None)
    return {"rest": rest if c["VIES_REST_FALLBACK"] else None, "rest_breaker": breaker,
            "status": status}


def _outside(c: Mapping[str, Any], store: Store) -> OutsideChecker:
    """The checker of GB, CH and NO numbers, with the sources the settings configure."""
    timeouts = {"connect_timeout_s": c["VAT_SOURCES_CONNECT_TIMEOUT_S"],
                "read_timeout_s": c["VAT_SOURCES_READ_TIMEOUT_S"]}
    sources: dict[str, VatSource] = {}
    unconfigured: dict[str, str] = {}
    if c["HMRC_CLIENT_ID"] and c["HMRC_CLIENT_SECRET"]:
        outbound.check_url(c["HMRC_URL"], "HMRC_URL")
        sources["gb"] = HmrcVat(c["HMRC_URL"], c["HMRC_CLIENT_ID"], c["HMRC_CLIENT_SECRET"],
                                **timeouts)
    else:
        unconfigured["gb"] = HMRC_NOT_CONFIGURED
        log.warning("TRACE30_HMRC_CLIENT_ID/SECRET are not set: GB VAT numbers are "
                    "'unverifiable' (a person checks them)")
    outbound.check_url(c["UID_URL"], "UID_URL")
    sources["ch"] = UidRegister(c["UID_URL"], **timeouts)
    outbound.check_url(c["VAT_NO_BRREG_URL"], "VAT_NO_BRREG_URL")
    sources["no"] = BrregMva(c["VAT_NO_BRREG_URL"], **timeouts)
    sources.update(c.get("VAT_SOURCES") or {})  # tests pass fakes here
    requester = (c["HMRC_REQUESTER_VRN"] or "").upper().removeprefix("GB").replace(" ", "")
    return OutsideChecker(
        sources=sources,
        unconfigured=unconfigured,
        rates={"hmrc": Rate(c["HMRC_RATE_PER_S"], 1.0, burst=3),
               "uid": Rate(c["UID_RATE_PER_MIN"], 60.0, burst=max(1, int(c["UID_RATE_PER_MIN"])),
                           calls_per_check=2),
               "brreg": Rate(c["VAT_NO_BRREG_RATE_PER_S"], 1.0, burst=3)},
        limiter=RateLimiter(store, "vat-sources"),
        breaker=CircuitBreaker(store, "vat-sources", c["VAT_SOURCES_BREAKER_THRESHOLD"],
                               c["VAT_SOURCES_BREAKER_COOLDOWN_S"]),
        deadline_s=c["VIES_DEADLINE_S"],
        retry_base_s=c["VIES_RETRY_BASE_S"],
        retry_max_s=c["VIES_RETRY_MAX_S"],
        requesters={"gb": requester or None},
        retries=c["VAT_SOURCES_RETRIES"],
    )


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the VAT service. ``config`` overrides settings (and may pass ``VIES``, a fake)."""
    app, openapi = create_base_app(
        __name__, "vat", config, title="trace30 VAT service",
        description="VAT numbers checked with python-stdnum, then VIES (SOAP, REST fallback), "
        "HMRC (GB), the Swiss UID register (CH) or Brønnøysund (NO).",
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
    outside = _outside(c, store)
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
            caps=c["VIES_MS_CONCURRENCY_OVERRIDES"],
            min_call_s=c["VIES_MIN_CALL_S"],
            abandoned_hold_s=c["VIES_ABANDONED_HOLD_S"],
        ),
        sandbox=c["SANDBOX"],
        default_requester=c["REQUESTER_VAT_NUMBER"],
        **_rest_fallback(c, store),
        outside=outside,
    )
    if not c["REQUESTER_VAT_NUMBER"]:
        log.warning(
            "TRACE30_REQUESTER_VAT_NUMBER is not set: VIES answers will carry no consultation "
            "number, the proof of each check a tax authority or regulator may ask for"
        )
    health.add_check(app, "vies_wsdl", vies.ready)
    for scheme, source in outside.sources.items():
        health.add_check(app, f"vat_source_{scheme}", source.ready)
    # A request that could not be built: a 400 naming the field, never a verdict.
    outbound.init_app(app, "VIES")
    openapi.register_blueprint(api.bp)
    return app
