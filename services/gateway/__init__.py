"""The gateway: the public API that turns the services' answers into one verdict (port 8080).

``create_app`` and ``shutdown`` live in :mod:`services.gateway.app` and are loaded on first use,
so that importing a light module of the package (``services.gateway.signatures``, which a
marketplace uses to check webhooks) does not pull in Flask, SQLAlchemy and the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.gateway.app import create_app, shutdown

__all__ = ["create_app", "shutdown"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from services.gateway import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
