"""Client API keys with scopes, for the gateway's public ``/v1`` routes.

Keys are configured in ``TRACE30_GATEWAY_API_KEYS`` as JSON, each with the SHA-256 of the key
(the key itself is never stored), its scopes (``onboarding``, ``ops``, ``batch``) and where its
webhooks go. In sandbox the documented key ``trace30-sandbox-key`` has every scope; outside
sandbox there is no default key.

Each client belongs to a **tenant** (a marketplace, or a brand of a group kept apart; optional
``"tenant"`` key, default ``default``): traders, verifications, linkage, the dashboard, batch
runs, the purge and webhooks are the tenant's. Clients of one tenant share its traders; a
client of another tenant is answered 404 for them, as if they did not exist.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from flask import Flask, current_app, g, request

from shared.auth import bearer_token
from shared.clients import (
    DEFAULT_TENANT,
    SCOPES,
    TENANT_ID,
    Client,
    key_digest,
    valid_tenant,
)
from shared.errors import ConfigError, Forbidden, Unauthorized

__all__ = ["DEFAULT_TENANT", "SCOPES", "TENANT_ID", "Client", "client_by_id", "client_for_key",
           "init_app", "load_clients", "require", "valid_tenant"]

SANDBOX_KEY = "trace30-sandbox-key"
SANDBOX_WEBHOOK_SECRET = "trace30-sandbox-webhook-secret"  # noqa: S105 (documented, sandbox only)
EXTENSION = "trace30.gateway.clients"

P = ParamSpec("P")
R = TypeVar("R")


def load_clients(configured: Sequence[Client], *, sandbox: bool,
                 sandbox_webhook_url: str | None) -> list[Client]:
    """The clients of ``TRACE30_GATEWAY_API_KEYS`` (parsed and checked by
    :func:`shared.clients.parse_api_keys` when the settings were loaded), with the sandbox's;
    raise :class:`ConfigError` if outside sandbox there is none."""
    clients = list(configured)
    if sandbox:
        clients.append(Client("sandbox", key_digest(SANDBOX_KEY), SCOPES, sandbox_webhook_url,
                              SANDBOX_WEBHOOK_SECRET))
    if not clients:
        raise ConfigError("TRACE30_GATEWAY_API_KEYS lists no client: outside sandbox every "
                          "client needs a key (see README, 'Access').")
    return clients


def client_for_key(key: str) -> Client | None:
    """The configured client whose API key is ``key`` (compared in constant time)."""
    digest = key_digest(key)
    clients: list[Client] = current_app.extensions[EXTENSION]
    for client in clients:
        if hmac.compare_digest(client.key_sha256, digest):
            return client
    return None


def _authenticate() -> None:
    if not request.path.startswith("/v1/"):
        return
    token = bearer_token()
    if token is None:
        raise Unauthorized("This route needs an 'Authorization: Bearer <api key>' header.")
    client = client_for_key(token)
    if client is None:
        raise Unauthorized("The API key is not valid.")
    g.client = client


def require(*scopes: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let the view run only for a client holding one of ``scopes``."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not set(scopes) & g.client.scopes:
                raise Forbidden(f"This route needs the scope {' or '.join(scopes)}.")
            return view(*args, **kwargs)

        return wrapper

    return decorator


def client_by_id(client_id: str) -> Client | None:
    """The configured client ``client_id`` (for webhook secrets)."""
    clients: list[Client] = current_app.extensions[EXTENSION]
    for client in clients:
        if client.id == client_id:
            return client
    return None


def init_app(app: Flask) -> list[Client]:
    """Load the clients and authenticate every ``/v1`` request."""
    clients = load_clients(app.config["GATEWAY_API_KEYS"], sandbox=app.config["SANDBOX"],
                           sandbox_webhook_url=app.config["GATEWAY_SANDBOX_WEBHOOK_URL"])
    app.extensions[EXTENSION] = clients
    app.before_request(_authenticate)
    return clients
