"""``trace30 check``: one-off checks from a shell against the simulators, through the services'
own code (:mod:`trace30.check`), with the exit codes scripts rely on: 0 valid, 1 invalid,
2 usage, 3 no verdict (never a verdict when the upstream is down)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from shared.config import ENV_PREFIX
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN, REDIS_URL, ROOT, set_knobs
from trace30 import check
from trace30.check import Exit
from trace30.suite import moved_urls

IBAN = "DE89370400440532013000"  # the payee simulator's "Acme Trading GmbH"


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
def sim_env(vies: str, sim: str, payee: str) -> dict[str, str]:
    """``TRACE30_*`` variables pointing every upstream at this session's simulators."""
    return moved_urls({8201: _port(vies), 8202: _port(sim), 8203: _port(payee)})


@pytest.fixture
def config(sim_env: dict[str, str], store: Store) -> dict[str, Any]:
    """The settings a check runs with in this process: sandbox, the simulators, real Redis."""
    return {
        "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN, "REDIS_STORE": store,
        "LOG_LEVEL": "WARNING", "VIES_DEADLINE_S": 1.5, "VIES_RETRY_BASE_S": 0.05,
        "REGISTRY_DEADLINE_S": 1.5, "REGISTRY_RETRY_BASE_S": 0.05,
        "PAYEE_VERIFICATION_READ_TIMEOUT_S": 0.5,
        **{name.removeprefix(ENV_PREFIX): url for name, url in sim_env.items()},
    }


# -- the checks, in this process ---------------------------------------------------------------


def test_vat_valid_invalid_and_bad_input(config: dict[str, Any]) -> None:
    valid = check.run("vat", {"vat_number": "DE 136 695 976"}, config)
    assert (valid.exit, valid.body["status"], valid.body["vat_number"]) == (
        Exit.VALID, "valid", "DE136695976")
    assert valid.body["consultation_number"]  # the proof of the check, as the service answers

    deregistered = check.run("vat", {"vat_number": "DE129273398"}, config)
    assert (deregistered.exit, deregistered.body["status"]) == (Exit.INVALID, "invalid")

    checksum = check.run("vat", {"vat_number": "DE136695977"}, config)
    assert (checksum.exit, checksum.body["reason"]) == (Exit.INVALID, "checksum")

    blank = check.run("vat", {"vat_number": " "}, config)
    assert (blank.exit, blank.http_status) == (Exit.USAGE, 400)
    assert "vat_number" in blank.body["errors"]
    assert "field vat_number" in check.table(blank)


def test_vat_outage_is_no_verdict(config: dict[str, Any], vies: str) -> None:
    set_knobs(vies, {"down": ["DE"]})
    outcome = check.run("vat", {"vat_number": "DE812383453"}, config)
    assert (outcome.exit, outcome.body["status"]) == (Exit.NO_VERDICT, "unavailable")
    assert outcome.body["error"]["retryable"] is True


def test_vat_without_a_source_is_no_verdict(config: dict[str, Any]) -> None:
    outcome = check.run("vat", {"vat_number": "XX123"}, config)
    assert (outcome.exit, outcome.body["status"]) == (Exit.NO_VERDICT, "unverifiable")


@pytest.mark.parametrize(("number", "status", "code"), [
    ("812345676", "active", Exit.VALID),
    ("798765434", "inactive", Exit.INVALID),
    ("732829320", "not_found", Exit.INVALID),
    ("812345677", "invalid", Exit.INVALID),  # the SIREN's Luhn digit
])
def test_registry_statuses(config: dict[str, Any], number: str, status: str,
                           code: Exit) -> None:
    outcome = check.run("registry", {"country_code": "FR", "number": number}, config)
    assert (outcome.body["status"], outcome.exit) == (status, code)


def test_registry_name_is_compared(config: dict[str, Any]) -> None:
    outcome = check.run("registry", {"country_code": "FR", "number": "812345676",
                                     "name": "Boulangerie Martin SAS"}, config)
    assert outcome.body["name_match"]["verdict"] in ("match", "close")
    assert "name_match.verdict" in check.table(outcome)


def test_registry_outage_and_no_register_are_no_verdict(config: dict[str, Any],
                                                        sim: str) -> None:
    german = check.run("registry", {"country_code": "DE", "number": "HRB 13085",
                                    "register": "Amtsgericht Fürth"}, config)
    assert (german.body["status"], german.exit) == ("unverifiable", Exit.NO_VERDICT)
    set_knobs(sim, {"fail": 503})
    down = check.run("registry", {"country_code": "FR", "number": "812345676",
                                  "max_age_s": 0}, config)
    assert (down.body["status"], down.exit) == ("unavailable", Exit.NO_VERDICT)


def test_payment_verdicts_and_the_iban_masked(config: dict[str, Any]) -> None:
    ok = check.run("payment", {"iban": IBAN, "account_holder": "Acme Trading GmbH",
                               "verify_payee": True}, config)
    assert (ok.exit, ok.body["status"], ok.body["payee"]["result"]) == (Exit.VALID, "valid",
                                                                        "match")
    text = check.table(ok)
    assert "DE****3000" in text and IBAN not in text
    assert IBAN not in check.as_json(ok)

    bad = check.run("payment", {"iban": IBAN[:-1] + "1"}, config)
    assert (bad.exit, bad.body["errors"]) == (Exit.INVALID, ["IBAN_CHECKSUM"])
    assert "check checksum" in check.table(bad) and "fail (IBAN_CHECKSUM)" in check.table(bad)


def test_payment_payee_outage_is_no_verdict(config: dict[str, Any], payee: str) -> None:
    set_knobs(payee, {"fail": "http_503"})
    outcome = check.run("payment", {"iban": IBAN, "account_holder": "Acme Trading GmbH",
                                    "verify_payee": True}, config)
    assert (outcome.exit, outcome.body["status"]) == (Exit.NO_VERDICT, "unavailable")


# -- the command, as a process ------------------------------------------------------------------


@pytest.fixture
def cli(sim_env: dict[str, str], redis_prefix: str) -> Iterator[Any]:
    """Run ``trace30 check ...`` as a process on the simulators; (exit code, stdout, stderr)."""
    env = {**os.environ, **sim_env, "TRACE30_SANDBOX": "1", "TRACE30_REDIS_URL": REDIS_URL,
           "TRACE30_REDIS_PREFIX": redis_prefix, "TRACE30_VIES_DEADLINE_S": "1.5"}

    def run(*args: str, **extra_env: str) -> tuple[int, str, str]:
        done = subprocess.run([sys.executable, "-m", "trace30.cli", "check", *args],
                              env={**env, **extra_env}, cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        return done.returncode, done.stdout, done.stderr

    yield run


@pytest.mark.slow
def test_the_command_prints_a_table_or_json(cli: Any) -> None:
    code, out, _ = cli("vat", "FR19812345676")
    assert code == 0
    assert out.splitlines()[0].split() == ["status", "valid"]
    assert "SAS BOULANGERIE MARTIN" in out

    code, out, _ = cli("registry", "--country", "FR", "--number", "732829320", "--json")
    assert code == 1 and json.loads(out)["status"] == "not_found"

    code, out, err = cli("payment", "--iban", IBAN, "--name", "Acme Trading GmbH")
    assert code == 0 and "DE****3000" in out
    assert IBAN not in out + err


@pytest.mark.slow
def test_the_command_usage_and_configuration_errors(cli: Any) -> None:
    code, _, err = cli("registry", "--country", "FR")  # --number missing: click's usage error
    assert code == 2 and "--number" in err
    code, out, _ = cli("payment", "--iban", "DE89")
    assert code == 1 and "DE****" in out  # too short: an invalid IBAN, an answer, not an error
    code, out, _ = cli("registry", "--country", "FRA", "--number", "1")
    assert code == 2 and "field country_code" in out
    # outside sandbox without the internal token the services refuse to start: said, exit 2
    code, _, err = cli("vat", "DE136695976", TRACE30_SANDBOX="0", TRACE30_INTERNAL_TOKEN="")
    assert code == 2 and "TRACE30_INTERNAL_TOKEN" in err


def test_redis_down_is_no_verdict(config: dict[str, Any]) -> None:
    """The shared limiter's store down: the service's own answer, unavailable, exit 3."""
    down = {**config, "REDIS_STORE": None, "REDIS_URL": "redis://127.0.0.1:1/0",
            "REDIS_TIMEOUT_S": 0.5}
    outcome = check.run("vat", {"vat_number": "DE136695976"}, down)
    assert (outcome.exit, outcome.body["status"]) == (Exit.NO_VERDICT, "unavailable")
    assert outcome.body["error"]["code"] == "STORE_UNAVAILABLE"
