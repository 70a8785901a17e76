"""``Idempotency-Key`` on the gateway's /v1 POSTs (services/gateway/idempotency.py)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from services.gateway import create_app, shutdown
from services.gateway.idempotency import Claim, IdempotencyKeys, fingerprint
from shared.clients import Client
from shared.redis_client import Store, connect
from tests.conftest import Suite
from tests.faults import PrivateRedis
from tests.gateway.conftest import ONBOARDING, OPS
from tests.gateway.test_documents import PDF
from tests.gateway.test_flow import GOOD, submission

URL = "/v1/verifications"


def post(client: FlaskClient, body: dict[str, Any], key: str | None, wait: float = 10,
         url: str = URL) -> Any:
    headers = {**ONBOARDING, "Prefer": f"wait={wait}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(url, json=body, headers=headers)


def verifications_of(client: FlaskClient, trader_id: str) -> int:
    history = client.get(f"/v1/traders/{trader_id}/history", headers=OPS).get_json()
    return len(history["verifications"])


def test_the_same_key_and_body_replay_the_first_answer(client: FlaskClient) -> None:
    first = post(client, GOOD, '"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    again = post(client, GOOD, '"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()  # byte for byte: not "cached": true
    assert again.headers["Content-Location"] == first.headers["Content-Location"]
    assert again.mimetype == "application/json"
    assert verifications_of(client, GOOD["trader_id"]) == 1
    # the same body without a key is an ordinary resubmission (answered from the cache)
    plain = post(client, GOOD, None)
    assert "Idempotent-Replayed" not in plain.headers and plain.get_json()["cached"] is True


def test_a_202_replayed_points_to_the_same_verification(client: FlaskClient,
                                                        suite: Suite) -> None:
    suite.configure("vies-simulator", latency_ms=1500)
    try:
        first = post(client, GOOD, "signup-1", wait=0.2)
        assert first.status_code == 202
        vid = first.get_json()["id"]
        deadline = time.monotonic() + 10
        while client.get(f"{URL}/{vid}", headers=ONBOARDING).get_json()["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        suite.restore("vies-simulator")
    again = post(client, GOOD, "signup-1", wait=0.2)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == vid
    assert again.headers["Location"] == first.headers["Location"] == f"{URL}/{vid}"
    assert verifications_of(client, GOOD["trader_id"]) == 1


def test_the_same_key_with_another_body_is_422(client: FlaskClient) -> None:
    assert post(client, GOOD, "signup-2").status_code == 200
    other = post(client, submission(name="Boulangerie Martin SARL"), "signup-2")
    assert other.status_code == 422
    assert other.mimetype == "application/problem+json"
    body = other.get_json()
    assert "Idempotency-Key" in body["errors"] and body["type"].endswith("/idempotency-key-reused")
    # the same key on another route is another request too
    end = client.post(f"/v1/traders/{GOOD['trader_id']}/end", json={},
                      headers={**ONBOARDING, "Idempotency-Key": "signup-2"})
    assert end.status_code == 422


def test_the_same_key_while_the_first_request_runs_is_409(gateway: Flask, store: Store,
                                                          suite: Suite) -> None:
    answers: list[Any] = []
    suite.configure("vies-simulator", latency_ms=1500)
    try:
        first = threading.Thread(
            target=lambda: answers.append(post(gateway.test_client(), GOOD, "signup-3")))
        first.start()
        deadline = time.monotonic() + 5
        while not list(store.client.scan_iter(match=store.key("idempotency", "*"))):
            assert time.monotonic() < deadline, "the first request never claimed its key"
            time.sleep(0.01)
        during = post(gateway.test_client(), GOOD, "signup-3")
        first.join(15)
    finally:
        suite.restore("vies-simulator")
    assert during.status_code == 409, during.get_json()
    assert during.mimetype == "application/problem+json"
    assert during.headers["Retry-After"] == "1"
    assert answers[0].status_code == 200
    after = post(gateway.test_client(), GOOD, "signup-3")
    assert after.headers["Idempotent-Replayed"] == "true"
    assert after.get_data() == answers[0].get_data()


def test_keys_work_across_gateway_processes(gateway_config: dict) -> None:
    first, second = create_app(gateway_config), create_app(gateway_config)
    try:
        a = post(first.test_client(), GOOD, "signup-4")
        b = post(second.test_client(), GOOD, "signup-4")
        c = post(second.test_client(), submission(phone="+33 1 42 22 00 01"), "signup-4")
    finally:
        shutdown(first)
        shutdown(second)
    assert a.status_code == 200 and "Idempotent-Replayed" not in a.headers
    assert b.headers["Idempotent-Replayed"] == "true" and b.get_data() == a.get_data()
    assert c.status_code == 422


@pytest.fixture
def short_lived(gateway_config: dict) -> Iterator[Flask]:
    app = create_app({**gateway_config, "GATEWAY_IDEMPOTENCY_TTL_S": 1})
    yield app
    shutdown(app)


def test_keys_expire_after_the_configured_time(short_lived: Flask, store: Store) -> None:
    client = short_lived.test_client()
    assert post(client, GOOD, "signup-5").status_code == 200
    (name,) = store.client.scan_iter(match=store.key("idempotency", "*"))
    assert store.client.ttl(name) == 1
    time.sleep(1.2)
    again = post(client, submission(name="Boulangerie Martin SARL"), "signup-5")
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers


def test_keys_are_kept_a_day_by_default_and_never_in_clear(client: FlaskClient,
                                                           store: Store) -> None:
    key = "signup-contact@boulangerie-martin.example"  # a client may build keys from anything
    assert post(client, GOOD, key).status_code == 200
    (name,) = store.client.scan_iter(match=store.key("idempotency", "*"))
    assert name.startswith(store.key("idempotency", "default")) and key not in name
    assert "boulangerie" not in name and GOOD["trader_id"] not in name
    assert 86390 <= store.client.ttl(name) <= 86400
    assert key not in store.client.get(name)


@pytest.mark.parametrize("key", ['""', "x" * 256, "a\x01b", "caf\u00e9", "tab\there"])
def test_a_bad_key_is_400_naming_the_header(client: FlaskClient, key: str) -> None:
    resp = client.post(URL, data=json.dumps(GOOD).encode(),
                       headers={**ONBOARDING, "Content-Type": "application/json",
                                "Idempotency-Key": key.encode("utf-8").decode("latin-1")})
    assert resp.status_code == 400, resp.get_data()
    assert resp.mimetype == "application/problem+json"
    assert "Idempotency-Key" in resp.get_json()["errors"]


def test_a_client_error_is_replayed_too(client: FlaskClient) -> None:
    bad = post(client, submission(phone="12"), "signup-6")
    assert bad.status_code == 400 and "phone" in bad.get_json()["errors"]
    again = post(client, submission(phone="12"), "signup-6")
    assert again.status_code == 400 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == bad.get_data()


def test_other_posts_honour_the_key(client: FlaskClient) -> None:
    assert post(client, GOOD, None).status_code == 200
    url = f"/v1/traders/{GOOD['trader_id']}/end"
    headers = {**ONBOARDING, "Idempotency-Key": "end-1"}
    first = client.post(url, json={}, headers=headers)  # ended now
    assert first.status_code == 200
    time.sleep(0.01)
    again = client.post(url, json={}, headers=headers)  # not a second end, a moment later
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()


def test_keys_of_two_clients_do_not_meet(store: Store) -> None:
    keys = IdempotencyKeys(store, ttl_s=60, lease_s=60)
    shop, other = Client("shop", "a"), Client("other", "b")
    fp = fingerprint("POST", "/v1/verifications?", b"{}")
    assert isinstance(keys.begin(shop, "k", fp), Claim)
    assert isinstance(keys.begin(other, "k", fp), Claim)  # its own key, not a 409
    assert isinstance(keys.begin(Client("shop", "a", tenant="t2"), "k", fp), Claim)


def test_an_answer_to_retry_releases_the_key(store: Store) -> None:
    keys = IdempotencyKeys(store, ttl_s=60, lease_s=60)
    shop = Client("shop", "a")
    fp = fingerprint("POST", "/v1/verifications?", b"{}")
    for status in (500, 503, 429):
        claim = keys.begin(shop, "k", fp)
        assert isinstance(claim, Claim)
        keys.finish(claim, Response(b"{}", status))
        assert store.client.get(claim.redis_key) is None  # a retry runs again
    claim = keys.begin(shop, "k", fp)
    assert isinstance(claim, Claim)
    keys.finish(claim, Response(b'{"ok": 1}', 201, {"Location": "/x", "X-Other": "y"}))
    replayed = keys.begin(shop, "k", fp)
    assert isinstance(replayed, Response) and replayed.status_code == 201
    assert replayed.headers["Location"] == "/x" and "X-Other" not in replayed.headers


def test_an_answer_after_the_lease_lapsed_does_not_overwrite_the_next_claim(
        store: Store) -> None:
    keys = IdempotencyKeys(store, ttl_s=60, lease_s=60)
    shop = Client("shop", "a")
    fp = fingerprint("POST", "/v1/verifications?", b"{}")
    stale = keys.begin(shop, "k", fp)
    assert isinstance(stale, Claim)
    store.client.delete(stale.redis_key)  # its lease ran out
    fresh = keys.begin(shop, "k", fp)
    assert isinstance(fresh, Claim)
    keys.finish(stale, Response(b"stale", 200))
    keys.release(stale)
    assert store.client.get(fresh.redis_key) == fresh.running


def test_a_document_upload_sent_again_as_the_same_bytes_is_replayed(client: FlaskClient) -> None:
    """A multipart body is read (and cached) for its fingerprint, then parsed as usual."""
    assert post(client, GOOD, None).status_code == 200
    boundary, body = encode_multipart({"kind": "register_extract",
                                       "file": FileStorage(io.BytesIO(PDF), "doc.pdf",
                                                           content_type="application/pdf")})
    headers = {**OPS, "Idempotency-Key": "doc-1"}
    content_type = f"multipart/form-data; boundary={boundary}"
    url = f"/v1/traders/{GOOD['trader_id']}/documents"
    first = client.post(url, data=body, content_type=content_type, headers=headers)
    assert first.status_code == 201, first.get_json()
    again = client.post(url, data=body, content_type=content_type, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    listed = client.get(url, headers=OPS).get_json()
    assert len(listed["documents"]) == 1


def test_the_openapi_document_describes_the_key_and_the_429(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    for path, operations in paths.items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            assert "429" in operation["responses"], (method, path)
            names = [p["name"] for p in operation.get("parameters", [])]
            assert ("Idempotency-Key" in names) == (method == "post"), (method, path)
    post_ = paths["/v1/verifications"]["post"]
    assert {"409", "422"} <= set(post_["responses"])


@pytest.mark.slow  # a redis-server of its own
def test_redis_lost_mid_request_still_answers_and_a_key_without_redis_is_503(
        gateway_config: dict, suite: Suite) -> None:
    with PrivateRedis() as private:
        store = connect(private.url, "trace30-test-idem:", 0.5)
        app = create_app({**gateway_config, "REDIS_STORE": store})
        answers: list[Any] = []
        suite.configure("vies-simulator", latency_ms=1500)
        try:
            first = threading.Thread(
                target=lambda: answers.append(post(app.test_client(), GOOD, "signup-7")))
            first.start()
            deadline = time.monotonic() + 5
            while not list(store.client.scan_iter(match=store.key("idempotency", "*"))):
                assert time.monotonic() < deadline, "the request never claimed its key"
                time.sleep(0.01)
            private.stop()  # Redis gone before the answer is stored
            first.join(15)
            later = post(app.test_client(), GOOD, "signup-7")
            plain = post(app.test_client(), GOOD, None)
        finally:
            suite.restore("vies-simulator")
            shutdown(app)
    assert answers[0].status_code == 200  # the work was done: its answer is not a 500
    assert later.status_code == 503 and later.mimetype == "application/problem+json"
    assert later.headers["Retry-After"]
    assert plain.status_code == 200  # without a key nothing needs Redis to answer
