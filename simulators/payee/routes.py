"""HTTP endpoints of the payee-verification simulator: the VoP API and the ``/_sim/`` controls."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from . import accounts
from .state import SimulatorState

VOP_PATH = "/vop/v1/payee-verifications"
MAX_NAME = 140
_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")

blueprint = Blueprint("payee_simulator", __name__)


def _state() -> SimulatorState:
    state: SimulatorState = current_app.extensions["payee_simulator"]
    return state


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _reply(body: Any, status: int = 200, request_id: str | None = None) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    if request_id:
        resp.headers["X-Request-ID"] = request_id
    resp.headers["X-Response-Timestamp"] = _timestamp()
    return resp


def _format_error(message: str, request_id: str | None) -> Response:
    """A 400; the message names the field at fault and never repeats its value."""
    _state().count("rejected")
    return _reply({"code": "FORMAT_ERROR", "message": message}, 400, request_id)


def _parse() -> tuple[str, str] | str:
    """The IBAN and the party name of the request, or what is wrong with it."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    party, account = body.get("party"), body.get("partyAccount")
    name = party.get("name") if isinstance(party, dict) else None
    iban = account.get("iban") if isinstance(account, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        return f"party.name must be a string of 1 to {MAX_NAME} characters"
    if not isinstance(iban, str) or not accounts.IBAN_RE.fullmatch(iban):
        return "partyAccount.iban must be an IBAN without spaces"
    agent = body.get("partyAgent")
    if agent is not None and not isinstance(agent, dict):
        return "partyAgent must be an object"
    return iban, name


@blueprint.post(VOP_PATH)
def payee_verifications() -> Response:
    """Answer one Verification of Payee request (EPC VoP API shape)."""
    state = _state()
    state.enter()
    try:
        config = state.get_config()
        request_id = request.headers.get("X-Request-ID", "")
        if not _REQUEST_ID.fullmatch(request_id):
            return _format_error("the X-Request-ID header is required", None)
        parsed = _parse()
        if isinstance(parsed, str):
            return _format_error(parsed, request_id)
        iban, name = parsed
        time.sleep(config["latency_ms"] / 1000)
        fail = config["fail"]
        if fail is not None:
            state.count("failure", fail)
            if fail == "bad_response":
                return Response("<html>upstream gateway</html>", 200, content_type="text/html")
            status = 500 if fail == "http_500" else 503
            return _reply({"code": "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE",
                           "message": "simulated fault"}, status, request_id)
        verdict = accounts.decide(state.accounts, iban, name)
        if verdict.slow:
            time.sleep(config["slow_seconds"])
        state.count("result", verdict.result)
        body: dict[str, Any] = {"partyNameMatch": verdict.result}
        if verdict.matched_name is not None:
            body["matchedName"] = verdict.matched_name
        return _reply(body, 200, request_id)
    finally:
        state.leave()
