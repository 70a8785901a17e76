"""Payment accounts without an IBAN (``kind`` ``account`` and ``other``) through the API: what
is checked, the 400s naming the field, the fingerprint, and that the account number or the
reference never reaches logs or answers in clear."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest
import requests
from flask.testing import FlaskClient

from shared.logs import JsonFormatter
from tests.conftest import AUTH
from tests.payment.conftest import FINGERPRINT_KEY

URL = "/v1/payment/check"
CN_ACCOUNT = "6222021001043210123"  # a Chinese payout account (19 digits), Bank of China
US_ACCOUNT = "000123456789"


def post(client: FlaskClient, **body: object) -> tuple[int, dict]:
    resp = client.post(URL, json=body, headers=AUTH)
    return resp.status_code, resp.get_json()


def ok(client: FlaskClient, **body: object) -> dict:
    status, data = post(client, **body)
    assert status == 200, data
    return data


def by_name(result: dict) -> dict[str, dict]:
    return {c["name"]: c for c in result["checks"]}


def hmac_hex(message: str) -> str:
    return hmac.new(FINGERPRINT_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()


# --- kind account ---------------------------------------------------------------------------


def test_account_number_with_bic_of_its_country_is_valid(client: FlaskClient) -> None:
    r = ok(client, kind="account", account_number="6222 0210-0104 3210 123", bic="bkch cn bj",
           country_code="CN", account_holder="Shenzhen Widget Co., Ltd.",
           trader_name="Shenzhen Widget Co Ltd")
    assert r["status"] == "valid" and r["kind"] == "account"
    assert r["errors"] == [] and r["warnings"] == []
    assert r["iban_masked"] is None and r["account_masked"] == "****0123"
    assert r["country_code"] == "CN"
    assert {n: c["result"] for n, c in by_name(r).items()} == {
        "account_number_format": "pass", "bic_format": "pass", "bic_country": "pass"}
    assert r["holder_match"]["result"] == "match"
    assert r["sepa"]["member"] is None and r["payee"] is None


def test_bic_of_another_country_is_invalid(client: FlaskClient) -> None:
    r = ok(client, kind="account", account_number=US_ACCOUNT, bic="BKCHCNBJ", country_code="US")
    assert r["status"] == "invalid"
    assert r["errors"] == ["BIC_ACCOUNT_COUNTRY_MISMATCH"]
    assert (by_name(r)["bic_country"]["detail"]
            == "The BIC is of a bank in CN, the account is in US.")
    assert r["account_fingerprint"] is None


def test_malformed_bic_and_account_number_are_invalid(client: FlaskClient) -> None:
    r = ok(client, kind="account", account_number="1234.5678", bic="CHASU33", country_code="US")
    assert r["status"] == "invalid"
    assert r["errors"] == ["ACCOUNT_NUMBER_FORMAT", "BIC_FORMAT"]
    assert by_name(r)["bic_country"]["result"] == "not_available"
    too_long = ok(client, kind="account", account_number="1" * 35, bic="CHASUS33",
                  country_code="US")
    assert too_long["errors"] == ["ACCOUNT_NUMBER_FORMAT"]
    assert "at most 34" in by_name(too_long)["account_number_format"]["detail"]


def test_account_in_an_iban_country_is_a_warning(client: FlaskClient) -> None:
    r = ok(client, kind="account", account_number="0532013000", bic="COBADEFF",
           country_code="DE")
    assert r["status"] == "valid"
    assert r["warnings"] == ["ACCOUNT_COUNTRY_USES_IBAN"]
    assert r["bank"]["name"] == "Commerzbank" and r["bank"]["bic"] == "COBADEFFXXX"


def test_payee_bank_is_never_asked_for_an_account_without_iban(client: FlaskClient,
                                                               payee: str) -> None:
    r = ok(client, kind="account", account_number=US_ACCOUNT, bic="CHASUS33", country_code="US",
           account_holder="Acme Trading Inc", verify_payee=True)
    assert r["status"] == "valid"
    assert r["payee"]["result"] == "not_possible" and r["payee"]["source"] is None
    assert r["warnings"] == ["PAYEE_NOT_POSSIBLE"]
    assert requests.get(payee + "/_sim/stats", timeout=5).json()["calls"] == 0


def test_holder_name_is_compared(client: FlaskClient) -> None:
    r = ok(client, kind="account", account_number=US_ACCOUNT, bic="CHASUS33", country_code="US",
           account_holder="John Smith", trader_name="Acme Trading Inc")
    assert r["holder_match"]["result"] == "no_match"
    assert r["warnings"] == ["HOLDER_NO_MATCH"]


# --- kind other -----------------------------------------------------------------------------


def test_wallet_reference(client: FlaskClient) -> None:
    r = ok(client, kind="other", reference=" Seller@Example.com ", provider="PayPal",
           account_holder="Acme Trading", trader_name="Acme Trading")
    assert r["status"] == "valid" and r["kind"] == "other" and r["provider"] == "PayPal"
    assert r["checks"] == [] and r["errors"] == []
    assert r["account_masked"] == "****.com" and r["iban_masked"] is None
    assert r["holder_match"]["result"] == "match"
    assert r["account_fingerprint"] == hmac_hex("other\x1fseller@example.com")


# --- fingerprints ---------------------------------------------------------------------------


def test_account_fingerprint_is_keyed_over_kind_bic_and_number(client: FlaskClient) -> None:
    a = ok(client, kind="account", account_number="0001-2345 6789", bic="chasus33xxx",
           country_code="US")["account_fingerprint"]
    b = ok(client, kind="account", account_number=US_ACCOUNT, bic="CHASUS33",
           country_code="US")["account_fingerprint"]
    other_bank = ok(client, kind="account", account_number=US_ACCOUNT, bic="BOFAUS3N",
                    country_code="US")["account_fingerprint"]
    assert a == b == hmac_hex("account\x1fCHASUS33\x1f" + US_ACCOUNT)
    assert other_bank != a
    # the IBAN fingerprint is unchanged: the HMAC of the IBAN alone
    iban = ok(client, iban="DE89370400440532013000")["account_fingerprint"]
    assert iban == hmac_hex("DE89370400440532013000")


# --- bad input: 400 naming the field --------------------------------------------------------


@pytest.mark.parametrize(("body", "fields"), [
    ({"kind": "account", "account_number": US_ACCOUNT, "bic": "CHASUS33"}, {"country_code"}),
    ({"kind": "account", "country_code": "US"}, {"account_number", "bic"}),
    ({"kind": "account", "account_number": US_ACCOUNT, "bic": "CHASUS33", "country_code": "us"},
     {"country_code"}),
    ({"kind": "account", "iban": "DE89370400440532013000", "account_number": US_ACCOUNT,
      "bic": "CHASUS33", "country_code": "US"}, {"iban"}),
    ({"kind": "other"}, {"reference"}),
    ({"kind": "other", "reference": "r-1", "bic": "CHASUS33"}, {"bic"}),
    ({"iban": "DE89370400440532013000", "account_number": US_ACCOUNT}, {"account_number"}),
    ({"kind": "cheque", "iban": "DE89370400440532013000"}, {"kind"}),
    ({"kind": "account", "bic": "CHASUS33", "country_code": "US",
      "account_number": "1234\x005678"}, {"account_number"}),
])
def test_bad_input_is_a_400_naming_the_field(client: FlaskClient, body: dict,
                                             fields: set[str]) -> None:
    resp = client.post(URL, json=body, headers=AUTH)
    assert resp.status_code == 400
    assert resp.content_type == "application/problem+json"
    errors = resp.get_json()["errors"]
    assert set(errors) == fields
    assert all("Unknown field." not in errors[f] for f in fields)  # the fields are known
    assert US_ACCOUNT not in resp.get_data(as_text=True)


# --- personal data --------------------------------------------------------------------------


def test_account_number_and_reference_never_in_logs_or_answers(
        client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = [
        client.post(URL, headers=AUTH, json=body).get_data(as_text=True) for body in [
            {"kind": "account", "account_number": CN_ACCOUNT, "bic": "BKCHCNBJ",
             "country_code": "CN"},
            {"kind": "account", "account_number": CN_ACCOUNT, "bic": "CHASUS33",
             "country_code": "CN"},
            {"kind": "account", "account_number": CN_ACCOUNT + "!", "bic": "BKCHCNBJ",
             "country_code": "CN"},
            {"kind": "account", "account_number": CN_ACCOUNT, "bic": "BKCHCNBJ",
             "country_code": "CN", "reference": "wallet-qzx-secret-ref"},
            {"kind": "other", "reference": "wallet-qzx-secret-ref"},
            {"kind": "other", "reference": "wallet-qzx-secret-ref", CN_ACCOUNT: 1},
        ]]
    messages = [r for r in caplog.records if r.getMessage() == "payment check"]
    assert len(messages) == 4
    assert {r.__dict__.get("account") for r in messages} == {"****0123", "****123!", "****-ref"}
    formatter = JsonFormatter("payment")
    texts = [*bodies, caplog.text, *(formatter.format(r) for r in caplog.records),
             *(repr(vars(r)) for r in caplog.records)]
    for text in texts:
        assert CN_ACCOUNT not in text and CN_ACCOUNT[4:] not in text
        assert "wallet-qzx-secret-ref" not in text and "qzx-secret" not in text
