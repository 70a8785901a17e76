"""The Redis connection every service shares, with the key prefix and timeouts set once.

With ``TRACE30_REDIS_URL`` set, a pooled ``redis.Redis`` client (connect and read timeouts from
``TRACE30_REDIS_TIMEOUT_S``). Without it, only in sandbox, an embedded in-process store
(fakeredis, which runs the same commands and Lua scripts) so that ``TRACE30_SANDBOX=1 make run``
works with nothing installed; the log says so, because caches, concurrency caps and circuit
breakers are then per process.

Outside sandbox a missing ``TRACE30_REDIS_URL`` stops start-up (:class:`ConfigError`): with a
store per process, every gunicorn worker would hold its own VIES concurrency cap (N workers
ask a member state N times as often as VIES allows, and VIES blocks the platform), its own
circuit breakers and its own caches, which is not what the operator configured. An explicit
store passed in the configuration (``REDIS_STORE``, as tests do) is taken as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.errors import ConfigError

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


#: Why a Redis server is required outside sandbox, and what to set.
MISSING_URL = (
    "TRACE30_REDIS_URL is not set. Outside sandbox trace30 needs a Redis server shared by "
    "every process: the caches, the VIES concurrency caps per member state (exceeding them gets "
    "the platform blocked by VIES), the registers' rate limits and the circuit breakers must "
    "hold across processes and hosts, which a store inside each process cannot do. Set "
    "TRACE30_REDIS_URL (e.g. redis://127.0.0.1:6379/0), or set TRACE30_SANDBOX=1 to run "
    "against the simulators with an embedded store."
)


def require_url(url: str | None, *, sandbox: bool) -> None:
    """Raise :class:`ConfigError` (:data:`MISSING_URL`) without ``url`` outside sandbox.

    >>> require_url("redis://127.0.0.1:6379/0", sandbox=False)
    >>> require_url(None, sandbox=True)
    >>> require_url("", sandbox=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.ConfigError: TRACE30_REDIS_URL is not set. Outside sandbox trace30 needs ...
    """
    if not url and not sandbox:
        raise ConfigError(MISSING_URL)


def connect(url: str | None, prefix: str, timeout_s: float = 0.5, *,
            sandbox: bool = False) -> Store:
    """Open a :class:`Store` on ``url``; without ``url``, the embedded store in ``sandbox``,
    else :class:`ConfigError` (:func:`require_url`)."""
    require_url(url, sandbox=sandbox)
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
    """Attach the store to ``app.extensions`` (no network call: the pool connects lazily).

    Raises :class:`ConfigError` outside sandbox without ``TRACE30_REDIS_URL`` (and without a
    ``REDIS_STORE`` passed in the configuration).
    """
    store = app.config.get("REDIS_STORE") or connect(
        app.config["REDIS_URL"], app.config["REDIS_PREFIX"], app.config["REDIS_TIMEOUT_S"],
        sandbox=app.config["SANDBOX"],
    )
    if store.embedded:
        log.warning(
            "TRACE30_REDIS_URL is not set: using an embedded in-process cache (sandbox only); "
            "caches, concurrency caps and circuit breakers are not shared between processes"
        )
    app.extensions[EXTENSION] = store
    return store


def get_store(app: Flask | None = None) -> Store:
    """The store of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION]
