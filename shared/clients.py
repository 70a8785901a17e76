"""The gateway's API clients as ``TRACE30_GATEWAY_API_KEYS`` configures them, and tenant ids.

:func:`parse_api_keys` is the parser of that setting in :data:`shared.config.SETTINGS`: the
JSON is read and checked once, when the settings are loaded, and everyone reads the parsed
:class:`Client` tuple. It lives in ``shared`` (which imports nothing above it) because the
settings are parsed here; :mod:`services.gateway.access` adds the sandbox client and checks that
a gateway outside sandbox has a client at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field

import limits

#: The scopes a key may hold.
SCOPES = frozenset({"onboarding", "ops", "batch"})
#: The tenant of a client that names none (and of everything made before tenants existed).
DEFAULT_TENANT = "default"
#: What a tenant id looks like: short, lower case, safe in keys, job ids and file names.
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


@dataclass(frozen=True)
class Client:
    """A marketplace integration calling the gateway."""

    id: str
    key_sha256: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    tenant: str = DEFAULT_TENANT
    #: Rate limits of this client (``"600/minute;20/second"``); None: the gateway's default.
    rate_limit: str | None = None
    #: The webhook secret being rotated out: while set, webhooks carry a signature by each.
    webhook_secret_previous: str | None = None

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """The secrets the client's webhooks are signed with, the current one first."""
        return tuple(s for s in (self.webhook_secret, self.webhook_secret_previous) if s)


def valid_tenant(tenant: object) -> bool:
    """Whether ``tenant`` is a tenant id (:data:`TENANT_ID`).

    >>> valid_tenant("shop-eu_2"), valid_tenant("Shop"), valid_tenant(""), valid_tenant("a:b")
    (True, False, False, False)
    """
    return isinstance(tenant, str) and TENANT_ID.fullmatch(tenant) is not None


def key_digest(key: str) -> str:
    """The SHA-256 (hex) of an API key, as configured and as compared."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_rate_limit(text: str) -> str:
    """``text`` if it is a list of rate limits (``limits`` notation, ``;``-separated), else
    ValueError saying so.

    >>> check_rate_limit("600/minute;20/second")
    '600/minute;20/second'
    >>> check_rate_limit("600 per fortnight")
    Traceback (most recent call last):
    ...
    ValueError: '600 per fortnight' is not a rate limit: write e.g. '600/minute;20/second'
    """
    try:
        parsed = limits.parse_many(text)
    except ValueError:
        parsed = []
    if not parsed:
        raise ValueError(f"{text!r} is not a rate limit: write e.g. '600/minute;20/second'")
    return text


def check_webhook_secret(client_id: str, secret: object) -> str | None:
    """A webhook secret as configured: a ``whsec_`` secret (Standard Webhooks) must hold
    base64 after its prefix; any other non-empty text is used as it is.

    >>> check_webhook_secret("shop", "whsec_dGVzdA==")
    'whsec_dGVzdA=='
    >>> check_webhook_secret("shop", "whsec_")
    Traceback (most recent call last):
    ...
    ValueError: client 'shop': a 'whsec_' webhook secret must hold a key (base64) after the prefix
    >>> check_webhook_secret("shop", "whsec_not base64!")
    Traceback (most recent call last):
    ...
    ValueError: client 'shop': a 'whsec_' webhook secret must be base64 after the prefix
    """
    if secret is None:
        return None
    if not isinstance(secret, str) or not secret:
        raise ValueError(f"client {client_id!r}: a webhook secret must be a non-empty string")
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error as e:
            raise ValueError(f"client {client_id!r}: a 'whsec_' webhook secret must be base64 "
                             "after the prefix") from e
        if not key:  # an empty key would let anyone sign
            raise ValueError(f"client {client_id!r}: a 'whsec_' webhook secret must hold a "
                             "key (base64) after the prefix")
    return secret


def parse_api_keys(text: str) -> tuple[Client, ...]:
    """The clients of ``TRACE30_GATEWAY_API_KEYS``; ValueError saying what is wrong.

    >>> parse_api_keys('[{"id": "shop", "key_sha256": "AB", "scopes": ["ops"]}]')
    (Client(id='shop', key_sha256='ab', scopes=frozenset({'ops'}), webhook_url=None, webhook_secret=None, tenant='default', rate_limit=None, webhook_secret_previous=None),)
    >>> parse_api_keys('{"id": "shop"}')
    Traceback (most recent call last):
    ...
    ValueError: not a list
    """  # noqa: E501 (a doctest's output is one line)
    try:
        entries = json.loads(text or "[]")
        if not isinstance(entries, list):
            raise ValueError("not a list")
        clients = []
        for e in entries:
            scopes = frozenset(e.get("scopes", []))
            if not scopes <= SCOPES:
                raise ValueError(f"unknown scopes {sorted(scopes - SCOPES)}")
            digest = e.get("key_sha256") or (key_digest(e["key"]) if e.get("key") else None)
            if not e.get("id") or not digest:
                raise ValueError("every key needs 'id' and 'key_sha256'")
            tenant = e.get("tenant", DEFAULT_TENANT)
            if not valid_tenant(tenant):
                raise ValueError(f"client {e['id']!r}: 'tenant' must be a short id of lower-case "
                                 "letters, digits, '-' and '_' (e.g. 'shop-eu'), at most 63 "
                                 "characters")
            rate_limit = e.get("rate_limit")
            if rate_limit is not None:
                if not isinstance(rate_limit, str):
                    raise ValueError(f"client {e['id']!r}: 'rate_limit' must be a string")
                try:
                    check_rate_limit(rate_limit)
                except ValueError as bad:
                    raise ValueError(f"client {e['id']!r}: {bad}") from None
            secret = check_webhook_secret(e["id"], e.get("webhook_secret"))
            previous = check_webhook_secret(e["id"], e.get("webhook_secret_previous"))
            if previous and not secret:
                raise ValueError(f"client {e['id']!r}: 'webhook_secret_previous' needs "
                                 "'webhook_secret' (the new secret)")
            clients.append(Client(e["id"], digest.lower(), scopes, e.get("webhook_url"),
                                  secret, tenant, rate_limit, previous))
    except (TypeError, AttributeError) as e:
        raise ValueError(str(e)) from e
    return tuple(clients)
