"""The registry service: business-registration numbers checked locally and against official
registers, and the trader's legal name compared with the registered one (port 8102).

A request goes ``api.check`` → ``checks.RegistryChecker.check`` (kind, format, cache, throttle
mark, circuit breaker, rate limit) → one adapter of :mod:`services.registry.registers` (GLEIF,
Recherche d'entreprises, Brønnøysund, Companies House, CVR, ARES, KRS) → back the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from services.registry import api
from services.registry.cache import RegistryCache
from services.registry.checks import Limits, RegistryChecker
from services.registry.registers import Register
from services.registry.registers.cz_ares import CzAres
from services.registry.registers.dk_cvr import DkCvr
from services.registry.registers.fr_recherche import FrRecherche
from services.registry.registers.gb_companies_house import CompaniesHouse
from services.registry.registers.gleif import Gleif
from services.registry.registers.http import new_session
from services.registry.registers.no_brreg import NoBrreg
from services.registry.registers.pl_krs import PlKrs
from shared import outbound
from shared.breaker import CircuitBreaker
from shared.factory import create_base_app
from shared.limits import RateLimiter

#: The settings of the registers' endpoints, checked at start-up.
REGISTER_URLS = (
    "REGISTRY_GLEIF_URL", "REGISTRY_FR_RECHERCHE_URL", "REGISTRY_NO_BRREG_URL",
    "REGISTRY_CZ_ARES_URL", "REGISTRY_PL_KRS_URL", "REGISTRY_GB_COMPANIES_HOUSE_URL",
    "REGISTRY_DK_CVR_URL",
)


def build_registers(c: Mapping[str, Any]) -> tuple[dict[str, Register], dict[str, str]]:
    """The adapters the settings allow, and why each missing one is missing."""
    timeouts = {"connect_timeout_s": c["REGISTRY_CONNECT_TIMEOUT_S"],
                "read_timeout_s": c["REGISTRY_READ_TIMEOUT_S"]}

    def session() -> Any:
        return new_session(c["REGISTRY_POOL_SIZE"])

    registers: list[Register] = [
        Gleif(c["REGISTRY_GLEIF_URL"], session=session(), **timeouts),
        FrRecherche(c["REGISTRY_FR_RECHERCHE_URL"], session=session(), **timeouts),
        NoBrreg(c["REGISTRY_NO_BRREG_URL"], session=session(), **timeouts),
        CzAres(c["REGISTRY_CZ_ARES_URL"], session=session(), **timeouts),
        PlKrs(c["REGISTRY_PL_KRS_URL"], session=session(), **timeouts),
    ]
    missing: dict[str, str] = {}
    if c["COMPANIES_HOUSE_API_KEY"]:
        registers.append(CompaniesHouse(c["REGISTRY_GB_COMPANIES_HOUSE_URL"],
                                        api_key=c["COMPANIES_HOUSE_API_KEY"],
                                        session=session(), **timeouts))
    else:
        missing["gb_companies_house"] = (
            "UK Companies House lookups need an API key (TRACE30_COMPANIES_HOUSE_API_KEY), "
            "which is not configured."
        )
    if c["CVR_USERNAME"] and c["CVR_PASSWORD"]:
        registers.append(DkCvr(c["REGISTRY_DK_CVR_URL"], username=c["CVR_USERNAME"],
                               password=c["CVR_PASSWORD"], session=session(), **timeouts))
    else:
        missing["dk_cvr"] = (
            "CVR lookups need system-to-system credentials (TRACE30_CVR_USERNAME, "
            "TRACE30_CVR_PASSWORD), which are not configured."
        )
    return {r.source: r for r in registers}, missing


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the registry service. ``config`` overrides settings (and may pass ``REGISTERS``,
    a mapping of register id to a fake adapter)."""
    app, openapi = create_base_app(
        __name__, "registry", config, title="trace30 registry service",
        description="Business-registration numbers checked with python-stdnum and the "
        "project's own rules, then against official registers; legal names compared.",
    )
    c = app.config
    store = app.extensions["trace30.redis"]
    if c.get("REGISTERS") is not None:
        registers, missing = dict(c["REGISTERS"]), dict[str, str]()
    else:
        for setting in REGISTER_URLS:
            outbound.check_url(c[setting], setting)
        registers, missing = build_registers(c)
    app.extensions[api.EXTENSION] = RegistryChecker(
        registers=registers,
        missing=missing,
        cache=RegistryCache(
            store, c["REGISTRY_CACHE_POSITIVE_TTL_S"], c["REGISTRY_CACHE_NEGATIVE_TTL_S"]
        ),
        limiter=RateLimiter(store, "registry"),
        breaker=CircuitBreaker(
            store, "registry", c["REGISTRY_BREAKER_THRESHOLD"], c["REGISTRY_BREAKER_COOLDOWN_S"]
        ),
        store=store,
        limits=Limits(
            deadline_s=c["REGISTRY_DEADLINE_S"],
            retries=c["REGISTRY_RETRIES"],
            retry_base_s=c["REGISTRY_RETRY_BASE_S"],
            retry_max_s=c["REGISTRY_RETRY_MAX_S"],
            burst=c["REGISTRY_RATE_BURST"],
            rates={
                "gleif": c["REGISTRY_GLEIF_RATE_PER_S"],
                "fr_recherche": c["REGISTRY_FR_RECHERCHE_RATE_PER_S"],
                "no_brreg": c["REGISTRY_NO_BRREG_RATE_PER_S"],
                "gb_companies_house": c["REGISTRY_GB_COMPANIES_HOUSE_RATE_PER_S"],
                "dk_cvr": c["REGISTRY_DK_CVR_RATE_PER_S"],
                "cz_ares": c["REGISTRY_CZ_ARES_RATE_PER_S"],
                "pl_krs": c["REGISTRY_PL_KRS_RATE_PER_S"],
            },
        ),
        sandbox=c["SANDBOX"],
    )
    # A request that could not be built: a 400 naming the field, never a verdict.
    outbound.init_app(app, "the register")
    openapi.register_blueprint(api.bp)
    return app
