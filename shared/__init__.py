"""trace30's own package of what every service needs once.

Each module holds one concern and exposes ``init_app(app)`` that keeps its state in
``app.extensions``; nothing is created at import time:

- :mod:`shared.config`: settings from ``TRACE30_*`` environment variables, with documented defaults.
- :mod:`shared.logs`: JSON logging with a request id.
- :mod:`shared.errors`: the exception tree and the RFC 9457 ``application/problem+json`` handler.
- :mod:`shared.auth`: bearer-token auth for internal ``/v1`` routes.
- :mod:`shared.redis_client`: the Redis client (or an embedded in-process store) with a key prefix.
- :mod:`shared.health`: ``/healthz`` and ``/readyz``.
- :mod:`shared.openapi`: flask-smorest wiring that serves ``/openapi.json``.
- :mod:`shared.limits`: concurrency and rate limits shared by all processes through Redis.
- :mod:`shared.breaker`: a circuit breaker per upstream, shared through Redis.
- :mod:`shared.factory`: ``create_base_app``, which applies all of the above in order.
"""
