"""``trace30 check``: one VAT number, registration number or payment account checked from a
shell, through the same code as the services.

Each check builds its service in this process with the service's own ``create_app`` (the one
place where settings become adapters, caches, breakers and limiters) and sends the request
through that app's test client with the internal token: the request schema, the checker, the
Redis cache and breakers shared with the running services, and the answer's schema are the
services' own, so a one-off check answers exactly what the gateway would be told. No server
needs to be running, and nothing of the wiring is spelled a second time here.

Exit codes (:class:`Exit`): 0 valid (active), 1 invalid (inactive, not found), 2 a usage or
configuration error, 3 no verdict (the upstream was unavailable, or no source can check it).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask

#: The header of the internal routes (``shared.auth``).
_AUTH = "Authorization"


class Exit(enum.IntEnum):
    """What ``trace30 check`` exits with."""

    VALID = 0
    INVALID = 1
    USAGE = 2
    NO_VERDICT = 3


@dataclass(frozen=True)
class Service:
    """One checking service as the command uses it."""

    name: str
    path: str
    #: ``create_app`` of the service, imported when the check runs (never at import).
    factory: Callable[[Mapping[str, Any] | None], Flask]
    #: The exit code of each ``status`` the service answers.
    exits: Mapping[str, Exit]


def _vat_app(config: Mapping[str, Any] | None) -> Flask:
    from services.vat import create_app

    return create_app(config)


def _registry_app(config: Mapping[str, Any] | None) -> Flask:
    from services.registry import create_app

    return create_app(config)


def _payment_app(config: Mapping[str, Any] | None) -> Flask:
    from services.payment import create_app

    return create_app(config)


SERVICES = {
    "vat": Service("vat", "/v1/vat/check", _vat_app, {
        "valid": Exit.VALID, "invalid": Exit.INVALID,
        "unavailable": Exit.NO_VERDICT, "unverifiable": Exit.NO_VERDICT}),
    "registry": Service("registry", "/v1/registry/check", _registry_app, {
        "active": Exit.VALID, "inactive": Exit.INVALID, "not_found": Exit.INVALID,
        "invalid": Exit.INVALID, "unavailable": Exit.NO_VERDICT,
        "unverifiable": Exit.NO_VERDICT}),
    "payment": Service("payment", "/v1/payment/check", _payment_app, {
        "valid": Exit.VALID, "invalid": Exit.INVALID, "unavailable": Exit.NO_VERDICT}),
}


@dataclass(frozen=True)
class Outcome:
    """What a check answered: the HTTP status, the body (an answer or a problem document)
    and the exit code it means."""

    http_status: int
    body: dict[str, Any]
    exit: Exit

    @property
    def is_answer(self) -> bool:
        return self.http_status == 200


def run(kind: str, request: Mapping[str, Any],
        config: Mapping[str, Any] | None = None) -> Outcome:
    """Check ``request`` (the body of the service's ``POST .../check``) with the ``kind``
    service built from the settings (``config`` overrides them, as for ``create_app``).

    Raises :class:`~shared.errors.ConfigError` when the settings do not let the service start.
    """
    service = SERVICES[kind]
    app = service.factory(config)
    token = app.config["INTERNAL_TOKEN"]
    with app.test_client() as client:
        response = client.post(service.path, json=dict(request),
                               headers={_AUTH: f"Bearer {token}"})
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        body = {"status": response.status_code, "detail": "The service answered no JSON."}
    if response.status_code == 200:
        return Outcome(200, body, service.exits.get(str(body.get("status")), Exit.NO_VERDICT))
    # A 4xx is the request's fault (a field at fault); anything else is no verdict.
    code = Exit.USAGE if 400 <= response.status_code < 500 else Exit.NO_VERDICT
    return Outcome(response.status_code, body, code)


# -- output -----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("\n", ", ")


def rows(answer: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """The answer as (field, value) rows: nested objects as ``a.b``, nulls and empty lists left
    out, a list of named checks as one row each.

    >>> list(rows({"status": "valid", "error": None, "sepa": {"member": True}, "errors": []}))
    [('status', 'valid'), ('sepa.member', 'yes')]
    >>> list(rows({"checks": [{"name": "checksum", "result": "fail", "code": "IBAN_CHECKSUM"}]}))
    [('check checksum', 'fail (IBAN_CHECKSUM)')]
    """
    for key, value in answer.items():
        name = prefix + key
        if value is None or value == [] or value == {}:
            continue
        if isinstance(value, Mapping):
            yield from rows(value, name + ".")
        elif isinstance(value, list) and all(isinstance(v, Mapping) and "name" in v
                                             for v in value):
            for item in value:
                code = f" ({item['code']})" if item.get("code") else ""
                yield f"check {item['name']}", f"{item.get('result', '')}{code}"
        elif isinstance(value, list):
            yield name, ", ".join(_text(v) for v in value)
        else:
            yield name, _text(value)


def table(outcome: Outcome) -> str:
    """The outcome as a two-column table a person reads (the answer, or the problem)."""
    if outcome.is_answer:  # the verdict first, then the fields as the service sent them
        lines = sorted(rows(outcome.body), key=lambda row: row[0] != "status")
    else:
        body = outcome.body
        lines = [("error", f"{body.get('status', outcome.http_status)} "
                           f"{body.get('title', '')}".strip())]
        if body.get("detail"):
            lines.append(("detail", _text(body["detail"])))
        for field, messages in (body.get("errors") or {}).items():
            text = "; ".join(_text(m) for m in messages) if isinstance(messages, list) \
                else _text(messages)
            lines.append((f"field {field}", text))
    width = max((len(k) for k, _ in lines), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines)


def as_json(outcome: Outcome) -> str:
    """The service's answer (or problem document) as it came, for machines."""
    return json.dumps(outcome.body, ensure_ascii=False, indent=2)
