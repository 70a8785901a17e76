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
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from shared.auth import bearer_token
from shared.errors import ConfigError, Forbidden, Unauthorized

SCOPES = frozenset({"onboarding", "ops", "batch"})
SANDBOX_KEY = "trace30-sandbox-key"
SANDBOX_WEBHOOK_SECRET = "trace30-sandbox-webhook-secret"  # noqa: S105 (documented, sandbox only)
EXTENSION = "trace30.gateway.clients"
DEFAULT_TENANT = "default"
#: What a tenant id looks like: short, lower case, safe in keys, job ids and file names.
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Client:
    """A marketplace integration calling the gateway."""

    id: str
    key_sha256: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    tenant: str = DEFAULT_TENANT


def valid_tenant(tenant: object) -> bool:
    """Whether ``tenant`` is a tenant id (:data:`TENANT_ID`).

    >>> valid_tenant("shop-eu_2"), valid_tenant("Shop"), valid_tenant(""), valid_tenant("a:b")
    (True, False, False, False)
    """
    return isinstance(tenant, str) and TENANT_ID.fullmatch(tenant) is not None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_clients(raw: str, *, sandbox: bool, sandbox_webhook_url: str | None) -> list[Client]:
    """Parse ``TRACE30_GATEWAY_API_KEYS``; raise :class:`ConfigError` naming what is wrong."""
    try:
        entries = json.loads(raw or "[]")
        if not isinstance(entries, list):
            raise ValueError("not a list")
        clients = []
        for e in entries:
            scopes = frozenset(e.get("scopes", []))
            if not scopes <= SCOPES:
                raise ValueError(f"unknown scopes {sorted(scopes - SCOPES)}")
            digest = e.get("key_sha256") or (_digest(e["key"]) if e.get("key") else None)
            if not e.get("id") or not digest:
                raise ValueError("every key needs 'id' and 'key_sha256'")
            tenant = e.get("tenant", DEFAULT_TENANT)
            if not valid_tenant(tenant):
                raise ValueError(f"client {e['id']!r}: 'tenant' must be a short id of lower-case "
                                 "letters, digits, '-' and '_' (e.g. 'shop-eu'), at most 63 "
                                 "characters")
            clients.append(Client(e["id"], digest.lower(), scopes, e.get("webhook_url"),
                                  e.get("webhook_secret"), tenant))
    except (ValueError, TypeError, AttributeError) as e:
        raise ConfigError(f"TRACE30_GATEWAY_API_KEYS is not valid: {e}") from e
    if sandbox:
        clients.append(Client("sandbox", _digest(SANDBOX_KEY), SCOPES, sandbox_webhook_url,
                              SANDBOX_WEBHOOK_SECRET))
    if not clients:
        raise ConfigError("TRACE30_GATEWAY_API_KEYS lists no client: outside sandbox every "
                          "client needs a key (see README, 'Access').")
    return clients


def client_for_key(key: str) -> Client | None:
    """The configured client whose API key is ``key`` (compared in constant time)."""
    digest = _digest(key)
    for client in current_app.extensions[EXTENSION]:
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


def require(*scopes: str) -> Callable[[F], F]:
    """Let the view run only for a client holding one of ``scopes``."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not set(scopes) & g.client.scopes:
                raise Forbidden(f"This route needs the scope {' or '.join(scopes)}.")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def client_by_id(client_id: str) -> Client | None:
    """The configured client ``client_id`` (for webhook secrets)."""
    for client in current_app.extensions[EXTENSION]:
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
