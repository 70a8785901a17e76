"""What every call to an outside system shares: the backoff between attempts and the pooled
HTTP session.

- :func:`backoff_s`: the pause after a failed attempt, doubling from a base up to a maximum
  with "equal jitter" (between half and all of it), so the retries of many workers spread out
  and no pause ever passes the maximum. The VAT checks (VIES and the national sources), the
  register lookups and the webhook deliveries all pause by it.
- :func:`new_session`: a ``requests.Session`` with a connection pool (keep-alive saves a TLS
  handshake per call) and no urllib3 retries (retries are the caller's, within its deadline).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import requests
from requests.adapters import HTTPAdapter


def backoff_s(
    attempt: int, base_s: float, max_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first).

    ``base_s`` doubles with each attempt up to ``max_s``; the wait is drawn between half and
    all of that ("equal jitter").

    >>> [backoff_s(n, 5, 3600, rand=lambda: 1.0) for n in (1, 2, 3, 12)]
    [5.0, 10.0, 20.0, 3600.0]
    >>> backoff_s(1, 5, 3600, rand=lambda: 0.0)
    2.5
    >>> max(backoff_s(n, 0.2, 2.0) for n in range(1, 100)) <= 2.0
    True
    """
    ceiling: float = min(max_s, base_s * 2 ** min(attempt - 1, 60))
    return ceiling / 2 + rand() * ceiling / 2


def new_session(user_agent: str | None, pool_size: int = 10, *,
                accept: str | None = None) -> requests.Session:
    """A pooled session sending ``user_agent`` and ``accept`` (None: requests' own), with no
    urllib3 retries."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if user_agent is not None:
        session.headers["User-Agent"] = user_agent
    if accept is not None:
        session.headers["Accept"] = accept
    return session
