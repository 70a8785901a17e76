"""``create_base_app``: the Flask app every service starts from, with the shared pieces applied.

Order matters: configuration first (later pieces read it), then logging, errors, the Host check,
auth, Redis, health and OpenAPI. Each service's ``create_app`` calls this, then adds its own
blueprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from shared import auth, config, errors, health, hosts, inputs, logs, openapi, redis_client, tracing


def create_base_app(
    import_name: str,
    service: str,
    config_overrides: Mapping[str, Any] | None = None,
    *,
    title: str,
    description: str = "",
    internal_auth: bool = True,
) -> tuple[Flask, openapi.Api]:
    """Build ``service``'s app with settings, JSON logs, problem errors, auth, Redis, health.

    ``internal_auth=False`` is for the gateway, whose ``/v1`` routes take client API keys.
    """
    app = Flask(import_name)
    app.name = service
    config.init_app(app, config_overrides)
    tracing.init_app(app, service)  # before logs: the request's span first, then its log context
    logs.init_app(app, service)
    errors.init_app(app)
    hosts.init_app(app)  # before auth: a Host not allowed is refused whatever else is wrong
    inputs.init_app(app)  # before auth: a malformed path or an oversized body is refused first
    if internal_auth:
        auth.init_app(app)
    store = redis_client.init_app(app)
    health.init_app(app)
    health.add_check(app, "redis", store.ping)
    api = openapi.init_app(app, title=title, description=description)
    return app, api
