"""``Idempotency-Key`` on the gateway's ``/v1`` POSTs (draft-ietf-httpapi-idempotency-key-header).

A client that retries a POST after a network error sends the same ``Idempotency-Key`` again and
gets the first answer, not a second verification:

- the first request with a key claims it in Redis (``SET NX``, for
  ``TRACE30_GATEWAY_IDEMPOTENCY_LEASE_S`` while it runs) with the request's **fingerprint**
  (SHA-256 of the method, the path with its query and the SHA-256 of the body); its answer
  (status, the headers that matter, body) is then stored for
  ``TRACE30_GATEWAY_IDEMPOTENCY_TTL_S`` (24 h);
- the same key with the same fingerprint: the stored answer again, with
  ``Idempotent-Replayed: true`` (a ``202`` replayed points to the same verification);
- the same key with another fingerprint: ``422`` problem+json (the key was reused);
- the same key while the first request still runs: ``409`` problem+json with ``Retry-After``;
- a key that is empty, longer than 255 characters or holds anything but printable ASCII:
  ``400`` naming ``Idempotency-Key``.

Keys are per tenant and client: ``<prefix>idempotency:<tenant>:<sha256 of client id and key>``;
neither the key (which a client may build from anything) nor the body is in the Redis key. The
stored answer is what the client was answered, kept no longer than the TTL. An answer that the
client should retry (a 5xx, a 429) is not stored: the key is released and a retry runs again.
Redis is shared by every gateway process, so this holds across processes and hosts. With Redis
down a request with a key is answered ``503`` (the store handler), since it could not be kept
exactly once; a request without a key does not touch this module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import redis
from apispec import APISpec, BasePlugin
from flask import Flask, Response, current_app, g, request

from shared.clients import Client
from shared.errors import BadRequest, Conflict, Trace30Error
from shared.redis_client import Store

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
EXTENSION = "trace30.gateway.idempotency"
#: The longest key accepted (the draft suggests UUIDs; 255 leaves room for any scheme).
MAX_KEY_LENGTH = 255
#: Headers of an answer that are replayed with it (the rest belong to the moment it was sent).
REPLAYED_HEADERS = ("Content-Type", "Location", "Content-Location", "Preference-Applied")
#: What a request that meets its key still running is told to wait, seconds.
IN_FLIGHT_RETRY_AFTER_S = 1

# Store the answer only if the key is still held by this request (its lease may have lapsed
# and been taken by a retry); release likewise.
_COMPLETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class IdempotencyKeyReused(Trace30Error):
    """The ``Idempotency-Key`` was already used for another request (draft §2.7: 422)."""

    status, title, slug = 422, "Idempotency key reused", "idempotency-key-reused"


def parse_key(header: str) -> str:
    """The key of an ``Idempotency-Key`` header: an RFC 8941 string (``"..."``, as the draft
    writes it) or the bare text; :class:`BadRequest` naming the header if it is not a key.

    >>> parse_key('"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    '8e03978e-40d5-43e8-bc93-6894a57f9324'
    >>> parse_key("order-1234")
    'order-1234'
    >>> parse_key("a\\x01b")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.BadRequest: The Idempotency-Key header is not valid: ...
    """
    text = header.strip()
    problem = None
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not text:
        problem = "it is empty"
    elif len(text) > MAX_KEY_LENGTH:
        problem = f"it is longer than {MAX_KEY_LENGTH} characters"
    elif not all(" " <= c <= "~" for c in text):
        problem = "it may hold printable ASCII characters only"
    if problem:
        raise BadRequest(f"The {HEADER} header is not valid: {problem}.",
                         errors={HEADER: [f"Not a valid key: {problem}."]})
    return text


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests with one key the same request: method, path and query, body.

    >>> fingerprint("POST", "/v1/verifications", b"{}")[:12]
    'b3ad2f50bd39'
    """
    body_hash = hashlib.sha256(body).hexdigest()
    return hashlib.sha256(f"{method}\n{path}\n{body_hash}".encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """A key this request holds while it runs."""

    redis_key: str
    running: str  # the exact value written at the claim (with a token of this request)
    fingerprint: str


class IdempotencyKeys:
    """Claims, stores and replays idempotency keys in the suite's Redis."""

    def __init__(self, store: Store, *, ttl_s: int, lease_s: int) -> None:
        if ttl_s < 1 or lease_s < 1:
            raise ValueError("the idempotency TTL and lease must be at least 1 s")
        self.store = store
        self.ttl_s = ttl_s
        self.lease_s = lease_s

    def redis_key(self, client: Client, key: str) -> str:
        """Where ``client``'s ``key`` is kept (both hashed: neither appears in Redis)."""
        digest = hashlib.sha256(json.dumps([client.id, key]).encode()).hexdigest()
        return self.store.key("idempotency", client.tenant, digest)

    def begin(self, client: Client, key: str, fp: str) -> Claim | Response:
        """Claim ``key`` for this request, or answer it: the stored answer replayed, 409 while
        the first request runs, 422 for another request under the same key."""
        redis_key = self.redis_key(client, key)
        running = json.dumps({"state": "running", "fingerprint": fp,
                              "token": secrets.token_hex(8)})
        for _ in range(3):  # the key may expire between the SET and the GET: claim again
            if self.store.client.set(redis_key, running, nx=True, ex=self.lease_s):
                return Claim(redis_key, running, fp)
            stored = self.store.client.get(redis_key)
            if stored is None:
                continue
            record = json.loads(stored)
            if record["fingerprint"] != fp:
                raise IdempotencyKeyReused(
                    f"This {HEADER} was used for another request (another body or path); "
                    "use a new key for a new request.",
                    errors={HEADER: ["Already used for another request."]})
            if record["state"] == "running":
                raise Conflict(
                    f"A request with this {HEADER} is still being processed; retry shortly "
                    "to get its answer.",
                    headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_S)})
            return replay(record)
        raise Conflict(f"The {HEADER} could not be claimed; retry shortly.",
                       headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_S)})

    def finish(self, claim: Claim, response: Response) -> None:
        """Store ``response`` under the claimed key, or release the key if the client should
        retry (a 5xx, a 429) or the answer cannot be kept (a stream)."""
        status = response.status_code
        if status >= 500 or status == 429 or response.is_streamed:
            self.release(claim)
            return
        record = {
            "state": "done", "fingerprint": claim.fingerprint, "status": status,
            "headers": {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers},
            "body": base64.b64encode(response.get_data()).decode(),
        }
        stored = self.store.client.eval(_COMPLETE, 1, claim.redis_key, claim.running,
                                        json.dumps(record), self.ttl_s)
        if not stored:
            log.warning("idempotency key lost its lease before the answer was stored",
                        extra={"lease_s": self.lease_s})

    def release(self, claim: Claim) -> None:
        """Let the key be used again (the request did not complete)."""
        self.store.client.eval(_RELEASE, 1, claim.redis_key, claim.running)


def replay(record: dict[str, Any]) -> Response:
    """The stored answer of ``record``, marked as replayed."""
    response = Response(base64.b64decode(record["body"]), record["status"])
    for name, value in record["headers"].items():
        response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _keys() -> IdempotencyKeys:
    keys: IdempotencyKeys = current_app.extensions[EXTENSION]
    return keys


def _begin() -> Response | None:
    header = request.headers.get(HEADER)
    client: Client | None = g.get("client")
    if (header is None or request.method != "POST" or client is None
            or not request.path.startswith("/v1/")):
        return None
    key = parse_key(header)
    fp = fingerprint(request.method, request.full_path, request.get_data(cache=True))
    outcome = _keys().begin(client, key, fp)
    if isinstance(outcome, Response):
        return outcome
    g.idempotency_claim = outcome
    return None


def _finish(response: Response) -> Response:
    claim: Claim | None = g.pop("idempotency_claim", None)
    if claim is not None:
        try:
            _keys().finish(claim, response)
        except redis.RedisError as e:
            # The work is done and the client gets its answer; the key is freed when its
            # lease runs out (a retry before that is a 409, after it runs again).
            log.warning("idempotency answer not stored: Redis unavailable",
                        extra={"error": type(e).__name__, "lease_s": _keys().lease_s})
    return response


def _release(_: BaseException | None = None) -> None:
    # Only if no answer was stored (an exception escaped every handler): free the key.
    claim: Claim | None = g.pop("idempotency_claim", None)
    if claim is not None:
        try:
            _keys().release(claim)
        except Exception:
            log.warning("idempotency key not released; its lease will free it")


def _problem(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description,
            "content": {"application/problem+json": {"schema": schema}}}


class _Document(BasePlugin):
    """Adds the ``Idempotency-Key`` header and its answers to every ``/v1`` POST."""

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None,
                         **kwargs: Any) -> None:
        post = (operations or {}).get("post")
        if post is None or not (path or "").startswith("/v1/"):
            return
        post.setdefault("parameters", []).append({
            "name": HEADER, "in": "header", "required": False,
            "description": "Makes a retry of this POST safe: the same key and request answer "
                           "the first answer again (Idempotent-Replayed: true). Kept 24 h.",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH + 2},
        })
        responses = post.setdefault("responses", {})
        responses.setdefault("409", _problem("A request with this Idempotency-Key still runs."))
        responses.setdefault("422", _problem("The Idempotency-Key was used for another request."))


def document(spec: APISpec) -> None:
    """Describe ``Idempotency-Key`` in the OpenAPI document (before the blueprints register)."""
    spec.plugins = [*spec.plugins, _Document()]


def init_app(app: Flask, store: Store) -> IdempotencyKeys:
    """Honour ``Idempotency-Key`` on every authenticated ``/v1`` POST.

    Call after :func:`services.gateway.access.init_app` (the client must be known) and before
    the blueprints are registered (their hooks run after the key is claimed).
    """
    keys = IdempotencyKeys(store, ttl_s=app.config["GATEWAY_IDEMPOTENCY_TTL_S"],
                           lease_s=app.config["GATEWAY_IDEMPOTENCY_LEASE_S"])
    app.extensions[EXTENSION] = keys
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_release)
    return keys
