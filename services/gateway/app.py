"""The gateway's app factory: ``create_app`` wires the API and the dashboard to the verifier and
the webhook sender (built by :mod:`services.gateway.wiring`), checks the evidence log's schema
(migrates it in sandbox, ``TRACE30_MIGRATE_ON_START``) and starts the sweeper; ``shutdown``
stops them.

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

from services.gateway import (
    access,
    api,
    dashboard,
    disclosures_api,
    documents,
    gauges,
    idempotency,
    public,
    ratelimits,
    transparency,
)
from services.gateway.documents import views as _document_views  # noqa: F401 (its /ops routes)
from services.gateway.verifications import RetryLoop
from services.gateway.webhooks import WebhookWorker
from services.gateway.wiring import build_verifier, build_webhook_sender
from shared import health, metrics
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
    # After access (they need the client), before the blueprints (whose hooks come later).
    ratelimits.init_app(app, app.extensions["trace30.redis"])
    idempotency.init_app(app, app.extensions["trace30.redis"])
    ratelimits.document(openapi.spec)  # 429 and Idempotency-Key in /openapi.json
    idempotency.document(openapi.spec)
    dashboard.init_app(app)  # the staff dashboard at /ops (not part of the /v1 API)
    # The verifier and the webhook sender are built as the batch workers build theirs.
    verifier = build_verifier(c, store=app.extensions["trace30.redis"], clients=clients)
    evidence = verifier.evidence
    # Outside sandbox the schema is the release step's (`trace30 migrate`): only checked here.
    try:
        evidence.prepare_schema(migrate=c["MIGRATE_ON_START"], component="gateway")
    except BaseException:  # refused to start: release the pools it opened
        verifier.close()
        evidence.close()
        raise
    app.extensions[api.EXTENSION] = verifier
    sender = build_webhook_sender(c, evidence, clients)
    app.extensions["trace30.webhooks"] = sender
    background: list[WebhookWorker | RetryLoop] = []
    if c["GATEWAY_BACKGROUND"]:
        # Started here, i.e. in each gunicorn worker after the fork (no preload).
        background = [WebhookWorker(sender, poll_s=c["WEBHOOK_POLL_S"]),
                      RetryLoop(verifier, poll_s=c["GATEWAY_SWEEP_POLL_S"])]
        for thread in background:
            thread.start()
    app.extensions["trace30.gateway.background"] = background
    documents.init_app(app, evidence)  # supporting documents: storage, /v1 routes
    health.add_check(app, "database", evidence.ping)
    metrics.add_collector(app, gauges.EvidenceGauges(evidence))  # backlogs, read at each scrape
    metrics.add_collector(app, gauges.QueueGauges(app.extensions["trace30.redis"], c))
    # The evidence log down (or SQLite locked past its busy timeout): 503 with Retry-After.
    for exc in (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError):
        app.register_error_handler(exc, store_unavailable("the evidence log"))
    openapi.register_blueprint(api.bp)
    disclosures_api.init_app(app, openapi)  # Art 30(6) disclosures, legal holds
    public.init_app(app, openapi)  # the public trader card, /public/v1 (Art 30(7))
    openapi.register_blueprint(transparency.bp)  # GET /v1/reports/traceability
    return app


def shutdown(app: Flask) -> None:
    """Stop the background threads and close pools and connections (tests, shutdown)."""
    for thread in app.extensions.get("trace30.gateway.background", []):
        thread.stop()
    app.extensions[api.EXTENSION].close()
    app.extensions["trace30.webhooks"].close()
    app.extensions[api.EXTENSION].evidence.close()
