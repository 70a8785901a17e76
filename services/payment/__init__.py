"""The payment service: a trader's payment account details checked (port 8103).

A request goes ``api.check`` → ``checks.PaymentChecker.check``: the IBAN (``ibans``, with
schwifty), the BIC (``bics``), SEPA (``sepa``), the account fingerprint (``fingerprints``), the
holder's name against the trader's (``shared.names``) and, when asked, the payee's bank through
Verification of Payee (``payee.HttpPayeeVerification``, answers cached by ``cache``).
Every code the service answers with is listed in ``codes``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask

from services.payment import api, ibans
from services.payment.cache import PayeeCache
from services.payment.checks import PaymentChecker
from services.payment.fingerprints import Fingerprinter, check_key
from services.payment.payee import HttpPayeeVerification
from shared import health, outbound
from shared.breaker import CircuitBreaker
from shared.factory import create_base_app

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the payment service. ``config`` overrides settings (and may pass ``PAYEE``, a fake).

    Raises :class:`~shared.errors.ConfigError` outside sandbox without
    ``TRACE30_PAYMENT_FINGERPRINT_KEY``.
    """
    app, openapi = create_base_app(
        __name__, "payment", config, title="trace30 payment service",
        description="Payment account details: IBAN and BIC with schwifty, SEPA, Verification "
        "of Payee.",
    )
    c = app.config
    key = check_key(c["PAYMENT_FINGERPRINT_KEY"], sandbox=c["SANDBOX"])
    store = app.extensions["trace30.redis"]
    if not c.get("PAYEE"):
        outbound.check_url(c["PAYEE_VERIFICATION_URL"], "PAYEE_VERIFICATION_URL")
    payee = c.get("PAYEE") or HttpPayeeVerification(
        c["PAYEE_VERIFICATION_URL"],
        connect_timeout_s=c["PAYEE_VERIFICATION_CONNECT_TIMEOUT_S"],
        read_timeout_s=c["PAYEE_VERIFICATION_READ_TIMEOUT_S"],
    )
    # schwifty reads its bank directory lazily, country by country; loading it all now keeps
    # that cost (about 0.1 s, see bench/payment_throughput.py) out of the first requests.
    started = time.perf_counter()
    banks = ibans.load_directory()
    log.info("bank directory loaded", extra={
        "banks": banks, "load_ms": round((time.perf_counter() - started) * 1000, 1)})
    app.extensions[api.EXTENSION] = PaymentChecker(
        payee=payee,
        cache=PayeeCache(store, c["PAYEE_CACHE_TTL_S"]),
        breaker=CircuitBreaker(
            store, "payee", c["PAYEE_BREAKER_THRESHOLD"], c["PAYEE_BREAKER_COOLDOWN_S"]
        ),
        fingerprint=Fingerprinter(key),
        sandbox=c["SANDBOX"],
    )
    health.add_check(app, "payee_client", payee.ready)
    # A request that could not be built: a 400 naming the field, never a verdict.
    outbound.init_app(app, "the payee-verification provider")
    openapi.register_blueprint(api.bp)
    return app
