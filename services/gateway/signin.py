"""Rate limits of the dashboard's sign-in: failed attempts counted per account and per client IP.

Fixed windows in Redis (shared by every gateway process and host): each failed sign-in adds
one to the account's counter (``tenant/username``, or the username alone) and to the client
IP's; once either has reached its limit (``TRACE30_GATEWAY_SIGNIN_MAX_FAILURES`` per account,
``TRACE30_GATEWAY_SIGNIN_MAX_FAILURES_PER_IP`` per IP) within ``TRACE30_GATEWAY_SIGNIN_WINDOW_S``
seconds, every attempt is refused (429 with ``Retry-After``) until the window ends, whether
its password is right or not: guessing gains nothing from the refusal. A successful sign-in
clears the account's counter (not the IP's). The keys are SHA-256 digests: neither a username
nor an address reaches Redis.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from shared.redis_client import Store


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class SigninLimits:
    """The sign-in limits of one gateway (from its settings)."""

    store: Store
    max_per_account: int
    max_per_ip: int
    window_s: int

    def _keys(self, account: str | None, ip: str) -> list[str]:
        keys = [self.store.key("gateway", "signin", "ip", _digest(ip))]
        if account:
            keys.append(self.store.key("gateway", "signin", "account", _digest(account.lower())))
        return keys

    def blocked_for(self, account: str | None, ip: str) -> int:
        """Seconds until an attempt for ``account`` from ``ip`` may be made; 0: now."""
        keys = self._keys(account, ip)
        limits = [self.max_per_ip, self.max_per_account][:len(keys)]
        pipe = self.store.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
            pipe.ttl(key)
        answers = pipe.execute()
        wait = 0
        for i, limit in enumerate(limits):
            count, ttl = answers[2 * i], answers[2 * i + 1]
            if count is not None and int(count) >= limit:
                wait = max(wait, ttl if ttl and ttl > 0 else self.window_s)
        return wait

    def failed(self, account: str | None, ip: str) -> None:
        """Count a failed attempt against the account and the IP."""
        pipe = self.store.client.pipeline(transaction=False)
        for key in self._keys(account, ip):
            pipe.set(key, 0, ex=self.window_s, nx=True)  # the window starts at the first
            pipe.incr(key)
        pipe.execute()

    def succeeded(self, account: str | None) -> None:
        """Forget the account's failed attempts (the IP's stay counted)."""
        if account:
            self.store.client.delete(
                self.store.key("gateway", "signin", "account", _digest(account.lower())))
