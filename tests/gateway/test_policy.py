"""The verdict policy (TRACE30_GATEWAY_POLICY): loaded and checked at start-up, applied to
every reason, shown by GET /v1/reasons, its hash kept with each verdict."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from services.gateway import create_app, policy, shutdown
from services.gateway.policy import DEFAULT_ACTIONS, DEFAULT_POLICY, Policy
from services.gateway.reasons import CATALOGUE, ITEM_C, ITEM_D
from shared.errors import ConfigError
from tests.gateway.conftest import ONBOARDING, OPS_KEY
from tests.gateway.test_flow import GOOD, submission
from tests.gateway.test_verdicts import PAY_OK, run


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_follow_the_catalogue_and_upstream_faults_stay_pending() -> None:
    assert policy.load(None) is DEFAULT_POLICY and policy.load("") is DEFAULT_POLICY
    assert DEFAULT_ACTIONS["VAT_NOT_IN_VIES"] == "review"  # domestic-only numbers
    assert DEFAULT_ACTIONS["VAT_INVALID"] == "reject"  # format or check digits
    assert DEFAULT_ACTIONS["ADDRESS_MISMATCH"] == DEFAULT_ACTIONS["REGISTRATION_EXPECTED"] \
        == "review"
    pending = {code for code, r in CATALOGUE.items() if r.severity == "pending"}
    assert pending == {"PAYMENT_CHECK_UNAVAILABLE", "REGISTER_UNAVAILABLE", "VAT_UNAVAILABLE"}
    assert {DEFAULT_ACTIONS[c] for c in pending} == {"pending"}
    assert set(DEFAULT_ACTIONS) == set(CATALOGUE)


def test_json_and_yaml_files_of_the_same_policy_have_the_same_hash(tmp_path: Path) -> None:
    as_json = policy.load(write(tmp_path, "p.json", json.dumps(
        {"PAYEE_NAME_CLOSE_MATCH": "reject", "REGISTER_UNVERIFIABLE": "info"})))
    as_yaml = policy.load(write(tmp_path, "p.yaml", "# ours\nREGISTER_UNVERIFIABLE: info\n"
                                                    "PAYEE_NAME_CLOSE_MATCH: reject\n"))
    assert as_json.actions == as_yaml.actions
    assert as_json.sha256 == as_yaml.sha256 != DEFAULT_POLICY.sha256
    assert re.fullmatch(r"[0-9a-f]{64}", as_json.sha256)
    assert as_json.describe()["overrides"] == {"PAYEE_NAME_CLOSE_MATCH": "reject",
                                               "REGISTER_UNVERIFIABLE": "info"}
    # Restating a default changes nothing, not even the hash; an empty file is the default.
    same = policy.load(write(tmp_path, "d.yaml", "VAT_INVALID: reject\n"))
    assert same.sha256 == DEFAULT_POLICY.sha256
    assert policy.load(write(tmp_path, "e.yaml", "")).sha256 == DEFAULT_POLICY.sha256


@pytest.mark.parametrize(("name", "text", "named"), [
    ("p.json", '{"NO_SUCH_CODE": "reject"}', "'NO_SUCH_CODE' is not a reason code"),
    ("p.yaml", "VAT_NOT_IN_VIES: block\n", "VAT_NOT_IN_VIES: 'block' is not an action"),
    ("p.yaml", "VAT_NOT_IN_VIES: true\n", "VAT_NOT_IN_VIES: True is not an action"),
    ("p.yaml", "VAT_UNAVAILABLE: reject\n", "VAT_UNAVAILABLE is an upstream fault"),
    ("p.yaml", "REGISTER_UNAVAILABLE: info\n", "REGISTER_UNAVAILABLE is an upstream fault"),
    ("p.json", '{"VAT_INVALID": "reject",}', "is not valid JSON"),
    ("p.yaml", "VAT_INVALID: [reject\n", "is not valid YAML"),
    ("p.yaml", "- VAT_INVALID\n", "must map reason codes to an action"),
])
def test_a_bad_policy_stops_start_up_naming_what_to_fix(tmp_path: Path, name: str, text: str,
                                                       named: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as caught:
        policy.load(path)
    assert named in str(caught.value) and "TRACE30_GATEWAY_POLICY" in str(caught.value)


def test_every_problem_is_named_at_once_and_a_missing_file_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        policy.from_mapping({"NOPE": "reject", "VAT_INVALID": "maybe"})
    assert "'NOPE'" in str(caught.value) and "'maybe'" in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read"):
        policy.load(str(tmp_path / "missing.yaml"))


def test_the_policy_decides_what_each_reason_does() -> None:
    close = {**PAY_OK, "holder_match": {"result": "close_match"}}
    strict = policy.from_mapping({"PAYEE_NAME_CLOSE_MATCH": "reject",
                                  "REGISTER_UNVERIFIABLE": "info"})
    assert run(payment=close).verdict == "needs_review"
    d = run(payment=close, policy=strict)
    assert d.verdict == "rejected" and d.items[ITEM_C] == "failed"
    assert d.reasons[0]["severity"] == "error"
    assert d.evidence["policy_sha256"] == strict.sha256
    lenient = run(registry={"status": "unverifiable"}, policy=strict)
    assert lenient.verdict == "verified" and lenient.items[ITEM_D] == "verified"
    assert [r["severity"] for r in lenient.reasons] == ["info"]
    # Upstream faults stay pending whatever else the policy says.
    fault = run(vat={"status": "unavailable", "error": {"code": "MS_UNAVAILABLE"}},
                policy=Policy({**DEFAULT_ACTIONS}))
    assert fault.verdict == "pending"


# -- the gateway -------------------------------------------------------------------------------

def test_a_bad_policy_file_stops_the_gateway(gateway_config: dict, tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", "VAT_UNAVAILABLE: reject\n")
    with pytest.raises(ConfigError, match="VAT_UNAVAILABLE"):
        create_app({**gateway_config, "GATEWAY_POLICY": path})


def verify(client: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("/v1/verifications", json=body, headers={**ONBOARDING, "Prefer": "wait=15"})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_the_gateway_applies_shows_and_records_its_policy(gateway_config: dict,
                                                         tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", "VAT_NOT_IN_VIES: reject\n")
    app = create_app({**gateway_config, "GATEWAY_POLICY": path})
    try:
        client = app.test_client()
        in_force = policy.load(path)
        shown = client.get("/v1/reasons", headers=ONBOARDING).get_json()
        assert shown["policy"] == {"sha256": in_force.sha256, "source": "TRACE30_GATEWAY_POLICY",
                                   "overrides": {"VAT_NOT_IN_VIES": "reject"}}
        by_code = {r["code"]: r for r in shown["reasons"]}
        assert by_code["VAT_NOT_IN_VIES"] | {"message": ""} == {
            "code": "VAT_NOT_IN_VIES", "item": ITEM_D, "message": "", "action": "reject",
            "default_action": "review", "severity": "error"}
        assert by_code["VAT_UNAVAILABLE"]["action"] == "pending"
        assert set(by_code) == set(CATALOGUE)

        good = verify(client, GOOD)
        assert good["verdict"] == "verified" and good["evidence"]["policy_sha256"] == \
            in_force.sha256
        # FR200: a well-formed number VIES reports not valid; this marketplace rejects it.
        body = verify(client, submission(trader_id="not-in-vies", vat_number="FR200"))
        assert body["verdict"] == "rejected", body["reasons"]
        assert "VAT_NOT_IN_VIES" in {r["code"] for r in body["reasons"]}
        assert body["evidence"]["policy_sha256"] == in_force.sha256

        # The dashboard's verification page shows the hash the verdict was decided under.
        token = re.search(r'name="csrf_token" value="([^"]+)"',
                          client.get("/ops/login").get_data(as_text=True))
        assert token is not None
        client.post("/ops/login", data={"api_key": OPS_KEY, "csrf_token": token.group(1)})
        html = client.get(f"/ops/verifications/{body['id']}",
                          headers={"Accept": "text/html"}).get_data(as_text=True)
        assert f'<code class="hash policy-hash">{in_force.sha256}</code>' in html
    finally:
        shutdown(app)


def test_the_default_policy_is_shown_without_a_file(client: FlaskClient) -> None:
    shown = client.get("/v1/reasons", headers=ONBOARDING).get_json()
    assert shown["policy"] == {"sha256": DEFAULT_POLICY.sha256, "source": "default",
                               "overrides": {}}
    assert all(r["action"] == r["default_action"] for r in shown["reasons"])
