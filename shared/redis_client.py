"""The Redis connection every service shares, with the key prefix and timeouts set once.

With ``TRACE30_REDIS_URL`` set, a pooled ``redis.Redis`` client (connect and read timeouts from
``TRACE30_REDIS_TIMEOUT_S``). Without it, an embedded in-process store (fakeredis, which runs
the same commands and Lua scripts) so that ``make run`` works with nothing installed; the log
says so, because caches, concurrency caps and circuit breakers are then per process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

EXTENSION = "trace30.redis"


@dataclass
class Store:
    """A Redis client and the prefix of every key trace30 writes."""

    client: redis.Redis
    prefix: str
    embedded: bool = False

    def key(self, *parts: str) -> str:
        """The full key for ``parts``, e.g. ``key("vat", "cache", digest)``.

        Callers pass digests, never personal data (IBANs, e-mails, phones).
        """
        return self.prefix + ":".join(parts)

    def ping(self) -> None:
        """Raise if Redis does not answer."""
        self.client.ping()


def connect(url: str | None, prefix: str, timeout_s: float = 0.5) -> Store:
    """Open a :class:`Store` on ``url``, or the embedded store when ``url`` is empty."""
    if url:
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
            decode_responses=True,
            # One quick retry, no backoff: with Redis down every caller degrades at once
            # instead of waiting out redis-py's default backoff on each call.
            retry=Retry(NoBackoff(), 1),
        )
        return Store(client, prefix)
    import fakeredis  # only needed without a Redis server

    return Store(fakeredis.FakeRedis(decode_responses=True), prefix, embedded=True)


def init_app(app: Flask) -> Store:
    """Attach the store to ``app.extensions`` (no network call: the pool connects lazily)."""
    store = app.config.get("REDIS_STORE") or connect(
        app.config["REDIS_URL"], app.config["REDIS_PREFIX"], app.config["REDIS_TIMEOUT_S"]
    )
    if store.embedded:
        log.warning(
            "TRACE30_REDIS_URL is not set: using an embedded in-process cache; caches, "
            "concurrency caps and circuit breakers are not shared between processes"
        )
    app.extensions[EXTENSION] = store
    return store


def get_store(app: Flask | None = None) -> Store:
    """The store of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION]
