"""The gateway's API clients as ``TRACE30_GATEWAY_API_KEYS`` configures them, and tenant ids.

:func:`parse_api_keys` is the parser of that setting in :data:`shared.config.SETTINGS`: the
JSON is read and checked once, when the settings are loaded, and everyone reads the parsed
:class:`Client` tuple. It lives in ``shared`` (which imports nothing above it) because the
settings are parsed here; :mod:`services.gateway.access` adds the sandbox client and checks that
a gateway outside sandbox has a client at all.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

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


def valid_tenant(tenant: object) -> bool:
    """Whether ``tenant`` is a tenant id (:data:`TENANT_ID`).

    >>> valid_tenant("shop-eu_2"), valid_tenant("Shop"), valid_tenant(""), valid_tenant("a:b")
    (True, False, False, False)
    """
    return isinstance(tenant, str) and TENANT_ID.fullmatch(tenant) is not None


def key_digest(key: str) -> str:
    """The SHA-256 (hex) of an API key, as configured and as compared."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_api_keys(text: str) -> tuple[Client, ...]:
    """The clients of ``TRACE30_GATEWAY_API_KEYS``; ValueError saying what is wrong.

    >>> parse_api_keys('[{"id": "shop", "key_sha256": "AB", "scopes": ["ops"]}]')
    (Client(id='shop', key_sha256='ab', scopes=frozenset({'ops'}), webhook_url=None, webhook_secret=None, tenant='default'),)
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
            clients.append(Client(e["id"], digest.lower(), scopes, e.get("webhook_url"),
                                  e.get("webhook_secret"), tenant))
    except (TypeError, AttributeError) as e:
        raise ValueError(str(e)) from e
    return tuple(clients)
