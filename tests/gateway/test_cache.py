"""The verdict cache's single-flight lock (services/gateway/cache.py), on the real Redis."""

from __future__ import annotations

import redis

from services.gateway.cache import VerdictCache
from shared.redis_client import Store


def test_release_frees_only_the_lock_its_run_holds(store: Store) -> None:
    cache = VerdictCache(store, ttl_s=60, lock_ttl_s=10)
    assert cache.lead("fp", "v1") is None  # v1 leads
    assert cache.lead("fp", "v2") == "v1"  # v2 follows it
    cache.release("fp", "v2")  # not v2's lock: left alone
    assert cache.lead("fp", "v3") == "v1"
    cache.release("fp", "v1")
    assert cache.lead("fp", "v3") is None  # free again: v3 leads
    cache.release("fp", "v3")
    assert store.client.exists(cache.keys.inflight("fp")) == 0


def test_release_without_redis_is_logged_not_raised(store: Store) -> None:
    down = Store(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2),
                 store.prefix)
    VerdictCache(down, ttl_s=60, lock_ttl_s=10).release("fp", "v1")
