"""The gateway's working parts built from its settings, without a Flask app.

:func:`build_verifier` makes the :class:`~services.gateway.verifications.Verifier` (the clients
of the VAT, registry and payment services, the evidence log, the verdict cache, the timing
settings, the clients' webhook targets, the verdict policy) and :func:`build_webhook_sender`
the sender of the evidence log's outbox. The web app (:func:`services.gateway.app.create_app`)
and the batch workers (:mod:`trace30.jobs`) both build theirs here, so a worker needs no Flask
app: it runs no dashboard, no request hooks and no sweeper threads.

``settings`` is what :func:`shared.config.load` returns (the Flask app's ``app.config``).
Building opens no connection; the evidence log is not migrated here (its caller does that).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from services.gateway import policy, sealing
from services.gateway.access import Client, load_clients
from services.gateway.cache import VerdictCache
from services.gateway.evidence import EvidenceLog
from services.gateway.upstreams import ServiceClient
from services.gateway.verifications import Settings, Verifier
from services.gateway.webhooks import WebhookSender
from shared.errors import ConfigError
from shared.redis_client import Store, open_store

#: The services the gateway asks, and the path of each one's check.
SERVICES = (("vat", "/v1/vat/check"), ("registry", "/v1/registry/check"),
            ("payment", "/v1/payment/check"))


def api_clients(settings: Mapping[str, Any]) -> list[Client]:
    """The API clients of ``TRACE30_GATEWAY_API_KEYS`` (and the sandbox's)."""
    return load_clients(settings["GATEWAY_API_KEYS"], sandbox=settings["SANDBOX"],
                        sandbox_webhook_url=settings["GATEWAY_SANDBOX_WEBHOOK_URL"])


def _by_id(clients: list[Client], read: Callable[[Client], Any]) -> Callable[[str], Any]:
    """``read`` of the client with an id, None for an id no client has."""
    by_id = {client.id: client for client in clients}

    def lookup(client_id: str) -> Any:
        client = by_id.get(client_id)
        return read(client) if client else None

    return lookup


def build_verifier(settings: Mapping[str, Any], *, store: Store | None = None,
                   clients: list[Client] | None = None) -> Verifier:
    """The verifier of ``settings``: ``store`` (default: the one the settings name) holds the
    verdict cache, ``clients`` (default: the configured ones) give the webhook URLs."""
    if not settings["INTERNAL_TOKEN"]:
        raise ConfigError("TRACE30_INTERNAL_TOKEN is not set: the gateway calls the services "
                          "with it (or set TRACE30_SANDBOX=1 to run against the simulators).")
    store = store or open_store(settings)
    clients = api_clients(settings) if clients is None else clients
    keys = sealing.check_keys(settings["EVIDENCE_SEALING_KEYS"], sandbox=settings["SANDBOX"])
    upstream = {
        name: ServiceClient(name, settings[f"GATEWAY_{name.upper()}_URL"].rstrip("/") + path,
                            token=settings["INTERNAL_TOKEN"],
                            connect_timeout_s=settings["GATEWAY_CONNECT_TIMEOUT_S"],
                            read_timeout_s=settings[f"GATEWAY_{name.upper()}_TIMEOUT_S"])
        for name, path in SERVICES
    }
    verifier = Verifier(
        clients=upstream, evidence=EvidenceLog(settings["DATABASE_URL"], keys,
                                                      chain=settings["EVIDENCE_CHAIN"]),
        cache=VerdictCache(store, settings["GATEWAY_VERDICT_TTL_S"],
                           lock_ttl_s=settings["GATEWAY_DEADLINE_S"] + 10,
                           local_ttl_s=settings["GATEWAY_LOCAL_CACHE_TTL_S"]),
        settings=Settings(deadline_s=settings["GATEWAY_DEADLINE_S"],
                          verdict_ttl_s=settings["GATEWAY_VERDICT_TTL_S"],
                          retry_schedule_s=settings["GATEWAY_PENDING_RETRY_S"],
                          correction_days=settings["GATEWAY_CORRECTION_DAYS"],
                          recover_after_s=settings["GATEWAY_RECOVER_AFTER_S"]),
        webhook_target=_by_id(clients, lambda c: c.webhook_url),
        threads=settings["GATEWAY_THREADS"],
    )
    verifier.policy = policy.load(settings["GATEWAY_POLICY"])  # checked at start-up: ConfigError
    return verifier


def _webhook_secrets(client: Client) -> str | tuple[str, ...] | None:
    """The client's webhook secret, or both during a rotation (each signs every request)."""
    return client.webhook_secrets if client.webhook_secret_previous else client.webhook_secret


def build_webhook_sender(settings: Mapping[str, Any], evidence: EvidenceLog,
                         clients: list[Client] | None = None) -> WebhookSender:
    """The sender of ``evidence``'s webhook outbox, signing with each client's secret."""
    clients = api_clients(settings) if clients is None else clients
    return WebhookSender(evidence, _by_id(clients, _webhook_secrets),
                         timeout_s=settings["WEBHOOK_TIMEOUT_S"],
                         max_attempts=settings["WEBHOOK_MAX_ATTEMPTS"],
                         backoff_base_s=settings["WEBHOOK_BACKOFF_BASE_S"],
                         backoff_max_s=settings["WEBHOOK_BACKOFF_MAX_S"])
