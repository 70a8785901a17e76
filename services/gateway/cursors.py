"""Keyset cursors: where the next page of a list starts, as an opaque token.

A cursor carries the sort key of the last row shown (``[updated_at, trader_id]`` for
``GET /v1/traders``, ``[checked_at, trader_id]`` for the dashboard's list), the tenant it was
made for and the filters of the list, signed with the gateway's secret (itsdangerous, Flask's
own signing): a client cannot forge a position, a cursor of another tenant or of other filters
is refused, and the next page is read from the index at that key (never OFFSET), however deep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from shared.errors import BadRequest


def _serializer(kind: str) -> URLSafeSerializer:
    secret = current_app.secret_key or current_app.config["GATEWAY_SESSION_SECRET"]
    return URLSafeSerializer(secret, salt=f"trace30.cursor.{kind}")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def dump(kind: str, *, tenant: str, position: list[Any], filters: dict[str, Any]) -> str:
    """The cursor of ``kind`` (the list) after ``position`` (the last row's sort key)."""
    return _serializer(kind).dumps({
        "t": tenant, "p": [_plain(v) for v in position],
        "f": {k: _plain(v) for k, v in sorted(filters.items()) if v is not None}})


def load(kind: str, token: str, *, tenant: str, filters: dict[str, Any],
         field: str = "cursor") -> list[Any]:
    """The position a cursor carries; a 400 naming ``field`` if it is not a cursor of this
    list, tenant and filters."""
    problem = BadRequest(f"The {field} is not one this list gave with these filters: start "
                         "again from the first page.",
                         errors={field: ["Not a valid cursor for this list and filters."]})
    try:
        data = _serializer(kind).loads(token)
    except BadSignature:
        raise problem from None
    wanted = {k: _plain(v) for k, v in sorted(filters.items()) if v is not None}
    if (not isinstance(data, dict) or data.get("t") != tenant or data.get("f") != wanted
            or not isinstance(data.get("p"), list)):
        raise problem
    return list(data["p"])


def timestamp(value: Any, field: str = "cursor") -> datetime | None:
    """A cursor's time back as a datetime (None stays None); a 400 naming ``field`` if it is
    not one."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadRequest(f"The {field} is not valid.",
                         errors={field: ["Not a valid cursor."]}) from None
    if at.tzinfo is None:
        raise BadRequest(f"The {field} is not valid.", errors={field: ["Not a valid cursor."]})
    return at
