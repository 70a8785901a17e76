"""The gateway's app factory: ``create_app`` wires the API, the dashboard, the evidence log, the
verifier, the webhook sender and the sweeper; ``shutdown`` stops them.

A request goes ``api.create_verification`` → ``verifications.Verifier.submit`` (cache,
single-flight) → ``Verifier._fan_out`` (``upstreams.ServiceClient`` to the VAT, registry and
payment services, concurrently) → ``verdicts.decide`` → ``evidence.EvidenceLog.save`` → the
answer, and a webhook (``webhooks.WebhookSender``) when the caller did not wait for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Flask

from services.gateway import access, api, dashboard, policy, sealing
from services.gateway.cache import VerdictCache
from services.gateway.evidence import EvidenceLog
from services.gateway.upstreams import ServiceClient
from services.gateway.verifications import RetryLoop, Settings, Verifier
from services.gateway.webhooks import WebhookSender, WebhookWorker
from shared import health
from shared.errors import store_unavailable
from shared.factory import create_base_app


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the gateway. ``config`` overrides settings."""
    app, openapi = create_base_app(
        __name__, "gateway", config, title="trace30 gateway",
        description="Trader traceability verdicts (DSA Art 30) for EU marketplaces.",
        internal_auth=False,
    )
    c = app.config
    clients = access.init_app(app)
    dashboard.init_app(app)  # the staff dashboard at /ops (not part of the /v1 API)
    keys = sealing.check_keys(c["EVIDENCE_SEALING_KEYS"], sandbox=c["SANDBOX"])
    evidence = EvidenceLog(c["DATABASE_URL"], keys)
    evidence.migrate()
    token = c["INTERNAL_TOKEN"]
    upstream = {
        name: ServiceClient(name, c[f"GATEWAY_{name.upper()}_URL"].rstrip("/") + path,
                            token=token, connect_timeout_s=c["GATEWAY_CONNECT_TIMEOUT_S"],
                            read_timeout_s=c[f"GATEWAY_{name.upper()}_TIMEOUT_S"])
        for name, path in (("vat", "/v1/vat/check"), ("registry", "/v1/registry/check"),
                           ("payment", "/v1/payment/check"))
    }
    by_id = {client.id: client for client in clients}

    def webhook_url(client_id: str) -> str | None:
        client = by_id.get(client_id)
        return client.webhook_url if client else None

    def webhook_secret(client_id: str) -> str | None:
        client = by_id.get(client_id)
        return client.webhook_secret if client else None

    verifier = Verifier(
        clients=upstream, evidence=evidence,
        cache=VerdictCache(app.extensions["trace30.redis"], c["GATEWAY_VERDICT_TTL_S"],
                           lock_ttl_s=c["GATEWAY_DEADLINE_S"] + 10,
                           local_ttl_s=c["GATEWAY_LOCAL_CACHE_TTL_S"]),
        settings=Settings(deadline_s=c["GATEWAY_DEADLINE_S"],
                          verdict_ttl_s=c["GATEWAY_VERDICT_TTL_S"],
                          retry_schedule_s=c["GATEWAY_PENDING_RETRY_S"],
                          correction_days=c["GATEWAY_CORRECTION_DAYS"],
                          recover_after_s=c["GATEWAY_RECOVER_AFTER_S"]),
        webhook_target=webhook_url, threads=c["GATEWAY_THREADS"],
    )
    verifier.policy = policy.load(c["GATEWAY_POLICY"])  # checked at start-up: ConfigError
    app.extensions[api.EXTENSION] = verifier
    sender = WebhookSender(evidence, webhook_secret, timeout_s=c["WEBHOOK_TIMEOUT_S"],
                           max_attempts=c["WEBHOOK_MAX_ATTEMPTS"],
                           backoff_base_s=c["WEBHOOK_BACKOFF_BASE_S"],
                           backoff_max_s=c["WEBHOOK_BACKOFF_MAX_S"])
    app.extensions["trace30.webhooks"] = sender
    background: list[WebhookWorker | RetryLoop] = []
    if c["GATEWAY_BACKGROUND"]:
        # Started here, i.e. in each gunicorn worker after the fork (no preload).
        background = [WebhookWorker(sender, poll_s=c["WEBHOOK_POLL_S"]),
                      RetryLoop(verifier, poll_s=c["GATEWAY_SWEEP_POLL_S"])]
        for thread in background:
            thread.start()
    app.extensions["trace30.gateway.background"] = background
    health.add_check(app, "database", evidence.ping)
    # The evidence log down (or SQLite locked past its busy timeout): 503 with Retry-After.
    for exc in (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError):
        app.register_error_handler(exc, store_unavailable("the evidence log"))
    openapi.register_blueprint(api.bp)
    return app


def shutdown(app: Flask) -> None:
    """Stop the background threads and close pools and connections (tests, shutdown)."""
    for thread in app.extensions.get("trace30.gateway.background", []):
        thread.stop()
    app.extensions[api.EXTENSION].close()
    app.extensions["trace30.webhooks"].close()
    app.extensions[api.EXTENSION].evidence.close()
