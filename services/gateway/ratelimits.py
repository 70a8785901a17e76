"""Per-client rate limits on the gateway's ``/v1`` routes (Flask-Limiter on the suite's Redis).

Each API client has its own budget, counted in Redis under the suite's key prefix so that every
gateway process and host shares it: the limits of its entry in ``TRACE30_GATEWAY_API_KEYS``
(``"rate_limit": "600/minute;20/second"``), else ``TRACE30_GATEWAY_RATE_LIMIT``. Requests are
counted by client id (never by the key, which is a secret), across every ``/v1`` route together,
with the sliding-window-counter strategy. A request over the budget is answered ``429``
``application/problem+json`` with ``Retry-After``; every counted answer carries
``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds) of the tightest
limit (draft-ietf-httpapi-ratelimit-headers).

Requests without a valid key never reach the limiter (they are answered 401 first). In sandbox
without ``TRACE30_REDIS_URL`` (the embedded store) the counts are per process (``memory://``).

**Redis down: fail open.** Rate limiting protects the gateway's capacity; it must not become
the outage. When Redis does not answer the request goes on unlimited and a warning is logged
(once per request, without the client's key); everything else that needs Redis still says so.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from apispec import APISpec, BasePlugin
from flask import Flask, Response, g, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.wrappers import RequestLimit

from shared.clients import Client
from shared.errors import TooManyRequests, handle_trace30_error
from shared.redis_client import Store

log = logging.getLogger(__name__)

EXTENSION = "trace30.gateway.ratelimits"
#: The part of the Redis keys after the suite's prefix.
KEY_PART = "ratelimit"


def _client() -> Client | None:
    client: Client | None = g.get("client")
    return client


def client_key() -> str:
    """Whom a request is counted against: the client's tenant and id (never its key)."""
    client = _client()
    return f"{client.tenant}/{client.id}" if client else ""


def _limit_for(default: str) -> str:
    client = _client()
    return client.rate_limit if client and client.rate_limit else default


def _exempt() -> bool:
    return not request.path.startswith("/v1/") or _client() is None


def _seconds_until(reset_at: float, window_s: int) -> int:
    """Whole seconds until ``reset_at``, at least 1 and never more than the window."""
    return max(1, min(window_s, math.ceil(reset_at - time.time())))


def _headers(limit: RequestLimit) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit.limit.amount),
        "RateLimit-Remaining": str(max(0, limit.remaining)),
        "RateLimit-Reset": str(_seconds_until(limit.reset_at, limit.limit.get_expiry())),
    }


class ClientLimits:
    """The gateway's :class:`flask_limiter.Limiter`, keyed by client, and its answers."""

    def __init__(self, app: Flask, store: Store) -> None:
        default = app.config["GATEWAY_RATE_LIMIT"]
        options: dict[str, Any] = {}
        if store.embedded:
            uri = "memory://"
        else:
            # The store's own pool: the same server, timeouts and credentials as everything else.
            uri = "redis://"
            options = {"connection_pool": store.client.connection_pool,
                       "key_prefix": store.key(KEY_PART)}
        self.limiter = Limiter(
            client_key,
            application_limits=[lambda: _limit_for(default)],
            application_limits_exempt_when=_exempt,
            storage_uri=uri,
            storage_options=options,  # the pool is passed on as it is
            strategy="sliding-window-counter",
            headers_enabled=False,  # ours: RateLimit-* (the draft's names), in seconds
            swallow_errors=False,  # fail open below, with one warning of ours
            auto_check=False,  # checked by _check, after access has named the client
        )
        self.limiter.init_app(app)
        app.before_request(self._check)
        app.after_request(self._add_headers)
        app.register_error_handler(RateLimitExceeded, self._too_many)

    def _check(self) -> None:
        try:
            self.limiter._check_request_limit(in_middleware=True)
        except RateLimitExceeded:
            raise
        except Exception as e:
            g.rate_limit_failed = True
            log.warning("rate limit not checked: storage unavailable; request let through",
                        extra={"client_id": getattr(_client(), "id", None),
                               "error": type(e).__name__})

    def _current(self) -> RequestLimit | None:
        if g.get("rate_limit_failed"):
            return None
        return self.limiter.current_limit

    def _add_headers(self, response: Response) -> Response:
        limit = self._current()
        if limit is not None and response.status_code != 429:
            try:
                response.headers.update(_headers(limit))
            except Exception as e:
                log.warning("rate limit headers not added: storage unavailable",
                            extra={"error": type(e).__name__})
        return response

    def _too_many(self, exc: RateLimitExceeded) -> Response:
        limit = self._current()
        try:  # the counts are read from Redis again: gone now, the 429 still answers
            headers = _headers(limit) if limit is not None else {}
        except Exception as e:
            log.warning("rate limit headers not added: storage unavailable",
                        extra={"error": type(e).__name__})
            headers = {}
        retry_after = headers.get("RateLimit-Reset", "1")
        client = _client()
        log.info("rate limit exceeded", extra={"client_id": client.id if client else None,
                                               "limit": str(exc.limit.limit)})
        return handle_trace30_error(TooManyRequests(
            f"This API key may make {exc.limit.limit} requests; try again in {retry_after} s.",
            headers={**headers, "Retry-After": retry_after},
        ))


class _Document(BasePlugin):
    """Adds the ``429`` answer to every ``/v1`` operation."""

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None,
                         **kwargs: Any) -> None:
        if not (path or "").startswith("/v1/"):
            return
        for operation in (operations or {}).values():
            operation.setdefault("responses", {}).setdefault("429", {
                "description": "Over the client's rate limit: retry after Retry-After seconds.",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                "content": {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}},
            })


def document(spec: APISpec) -> None:
    """Describe the 429 in the OpenAPI document (before the blueprints register)."""
    spec.plugins = [*spec.plugins, _Document()]


def init_app(app: Flask, store: Store) -> ClientLimits:
    """Count every authenticated ``/v1`` request against its client's limits.

    Call after :func:`services.gateway.access.init_app`: the client must be known first.
    """
    limits_ = ClientLimits(app, store)
    app.extensions[EXTENSION] = limits_
    return limits_
