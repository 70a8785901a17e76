"""The ``Host`` check and relative redirects: no answer is ever built from an untrusted Host.

Werkzeug builds the absolute URL of a redirect from the request's ``Host`` header (the 308 of
``/ops`` to ``/ops/`` answered ``Location: http://evil.example/ops/`` to ``Host:
evil.example``), and a proxy or cache in front may keep such an answer for other clients. Two
guards, applied to every service by :func:`init_app`:

- a request whose ``Host`` is not allowed (``TRACE30_ALLOWED_HOSTS``) gets a 400 problem before
  any other hook or route runs. It is the check of Flask's ``TRUSTED_HOSTS``, done as a hook so
  that ``/healthz`` and ``/readyz`` answer any Host: Kubernetes probes come with the pod IP,
  which no configuration can know, and the two answers name no host;
- a ``Location`` that names the request's own host is made relative (``/ops/``), so even an
  allowed or unchecked Host (sandbox) never comes back in a redirect.

Unset outside sandbox, the allowed hosts are loopback and dotless names: the internal services
are called as ``vat:8101`` in compose and ``127.0.0.1:PORT`` by ``trace30 run``, and a dotless
name cannot point a browser at somebody else's site. A public name (the gateway's behind its
proxy) is refused until it is listed.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, current_app, request

from shared.errors import BadRequest, ConfigError

log = logging.getLogger(__name__)

EXTENSION = "trace30.hosts"

#: Paths that answer whatever the Host: orchestrators' probes (see the module docstring).
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # Prometheus scrapes by pod IP

#: Allowed outside sandbox when ``ALLOWED_HOSTS`` is unset, besides every dotless name.
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")

# A Host header value: a DNS name or IPv4 address, or a bracketed IPv6 address; optional port.
_HOST = re.compile(r"(?P<name>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
_ENTRY = re.compile(r"\*|\.?[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\]")


class HostPolicy:
    """Which ``Host`` names a service answers to.

    >>> policy = HostPolicy.from_setting("api.example.com, .example.org", sandbox=False)
    >>> [policy.allows(h) for h in ("api.example.com:443", "a.example.org", "evil.example")]
    [True, True, False]
    >>> default = HostPolicy.from_setting("", sandbox=False)
    >>> [default.allows(h) for h in ("vat:8101", "127.0.0.1:8080", "[::1]", "evil.example")]
    [True, True, True, False]
    >>> HostPolicy.from_setting("", sandbox=True).allows("evil.example")
    True
    """

    def __init__(self, names: tuple[str, ...], *, any_host: bool, dotless: bool) -> None:
        self.names = names
        self.any_host = any_host
        self.dotless = dotless

    @classmethod
    def from_setting(cls, value: str | None, *, sandbox: bool) -> HostPolicy:
        """The policy of ``TRACE30_ALLOWED_HOSTS``; a malformed entry is a :class:`ConfigError`."""
        entries = [e.strip().lower() for e in (value or "").split(",") if e.strip()]
        if not entries:
            return cls(LOOPBACK, any_host=sandbox, dotless=True)
        for entry in entries:
            if not _ENTRY.fullmatch(entry):
                raise ConfigError(
                    f"TRACE30_ALLOWED_HOSTS: {entry!r} is not a host name: write names without "
                    "scheme or port, e.g. 'trace30.example.com,.internal.example'"
                )
        return cls(tuple(entries), any_host="*" in entries, dotless=False)

    def allows(self, host: str) -> bool:
        """Whether the ``Host`` header value ``host`` (``name[:port]``) is allowed."""
        if self.any_host:
            return True
        match = _HOST.fullmatch(host.lower())
        if match is None:
            return False  # not a host at all (empty, spaces, a path, ...)
        name = match["name"]
        if self.dotless and "." not in name and not name.startswith("["):
            return True
        return any(name == entry or (entry.startswith(".") and
                                     (name.endswith(entry) or name == entry[1:]))
                   for entry in self.names)


def _check_host() -> None:
    if request.path in PROBE_PATHS:
        return
    # HTTP/1.0 may send no Host: then werkzeug names the server's own address.
    host = request.headers.get("Host", request.host)
    if not current_app.extensions[EXTENSION].allows(host):
        log.info("request refused: Host not allowed", extra={"host": host[:100]})
        raise BadRequest(
            "The Host header names no host this service answers to: add the name to "
            "TRACE30_ALLOWED_HOSTS, or call the service by an allowed name."
        )


def _relative_location(response: Response) -> Response:
    """Drop scheme and host from a ``Location`` naming the request's own host."""
    location = response.headers.get("Location")
    if location:
        parts = urlsplit(location)
        if parts.netloc and parts.netloc.lower() == request.host.lower():
            response.headers["Location"] = urlunsplit(("", "", parts.path or "/", parts.query,
                                                       parts.fragment))
    return response


def init_app(app: Flask) -> None:
    """Check the Host of every request to ``app`` and keep its redirects relative.

    Call it before any other ``before_request`` hook that can answer (auth), so that a request
    for a host not allowed gets the 400 whatever else is wrong with it.
    """
    app.extensions[EXTENSION] = HostPolicy.from_setting(app.config.get("ALLOWED_HOSTS"),
                                                       sandbox=bool(app.config.get("SANDBOX")))
    app.before_request(_check_host)
    app.after_request(_relative_location)
