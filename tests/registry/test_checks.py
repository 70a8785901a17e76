"""The check orchestration against the registers simulator and real Redis: cache, retries,
throttling, circuit breaker, shared rate limit, unverifiable answers."""

from __future__ import annotations

import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.registry import create_app
from services.registry.checks import CheckRequest, RegistryChecker
from services.registry.registers import Register
from services.registry.registers.gleif import Gleif
from services.registry.registers.http import new_session
from shared.errors import ConfigError
from shared.outbound import NotSent
from shared.redis_client import Store
from shared.upstream import Fault, UpstreamError
from tests.conftest import free_port
from tests.registry.conftest import CH_KEY, CVR_PASSWORD, CVR_USER, app_config, configure, stats
from tests.registry.fakes import FakeGleif

LEI = "5299009TRACE30ACME93"


def checker(sim: str, store: Store, **overrides: object) -> RegistryChecker:
    app = create_app(app_config(sim, store, **overrides))
    return app.extensions["trace30.registry"]


def calls(sim: str, source: str) -> int:
    return int(stats(sim)["by_source"].get(source, 0))


def test_no_pause_passes_retry_max_however_many_retries(
        sim: str, store: Store) -> None:
    """The pauses double from REGISTRY_RETRY_BASE_S and stay within REGISTRY_RETRY_MAX_S
    (with 5+ retries the doubled pause's lower half once passed the maximum)."""
    fake = FakeGleif(UpstreamError("slow down", Fault.THROTTLED))  # 429 without Retry-After
    c = checker(sim, store, REGISTERS={"gleif": fake}, REGISTRY_RETRIES=6,
                REGISTRY_RETRY_BASE_S=0.02, REGISTRY_RETRY_MAX_S=0.03, REGISTRY_DEADLINE_S=5.0)
    pauses: list[float] = []
    c.call.sleep = pauses.append
    r = c.check(CheckRequest(number=LEI))
    assert r["status"] == "unavailable" and len(fake.asked) == 7
    assert len(pauses) == 6
    assert all(0.01 <= p <= 0.03 for p in pauses), pauses


def test_every_adapter_is_a_register(sim: str, store: Store) -> None:
    c = checker(sim, store)
    assert set(c.registers) == {"gleif", "fr_recherche", "no_brreg", "gb_companies_house",
                                "dk_cvr", "cz_ares", "pl_krs"}
    for source, register in c.registers.items():
        assert isinstance(register, Register) and register.source == source and register.title
    assert isinstance(FakeGleif(), Register)


def test_registers_can_be_replaced_by_configuration(sim: str, store: Store) -> None:
    fake = FakeGleif()
    c = checker(sim, store, REGISTERS={"gleif": fake})
    r = c.check(CheckRequest(number=LEI, name="Fake S.E."))
    assert (r["status"], r["source"]["name"], r["name_match"]["verdict"]) == (
        "inactive", "Fake GLEIF", "match")
    assert fake.asked[0][:2] == ("lei", LEI) and 0 < fake.asked[0][2] <= 2.0
    # registers not configured are unverifiable, whatever the credentials
    assert c.check(CheckRequest(number="01234567", country_code="GB"))["status"] == "unverifiable"
    assert stats(sim)["calls"] == 0


def test_found_record_is_cached_24h(sim: str, store: Store) -> None:
    c = checker(sim, store)
    first = c.check(CheckRequest(number=LEI))
    assert (first["status"], first["cached"], first["attempts"]) == ("active", False, 1)
    second = c.check(CheckRequest(number=LEI))
    assert (second["status"], second["cached"]) == ("active", True)
    assert second["checked_at"] == first["checked_at"]  # when the register was asked
    assert calls(sim, "gleif") == 1
    ttl = store.client.ttl(c.cache.key("gleif", "lei", LEI))
    assert 86400 - 5 <= ttl <= 86400


def test_not_found_is_cached_1h(sim: str, store: Store) -> None:
    c = checker(sim, store)
    assert c.check(CheckRequest(number="5299009TRACE30UNKN10"))["status"] == "not_found"
    assert c.check(CheckRequest(number="5299009TRACE30UNKN10"))["cached"] is True
    assert calls(sim, "gleif") == 1
    ttl = store.client.ttl(c.cache.key("gleif", "lei", "5299009TRACE30UNKN10"))
    assert 3600 - 5 <= ttl <= 3600


def test_inactive_is_cached_like_active(sim: str, store: Store) -> None:
    c = checker(sim, store)
    r = c.check(CheckRequest(number="912345653", country_code="NO"))
    assert (r["status"], r["status_raw"]) == ("inactive", "deleted")
    assert c.check(CheckRequest(number="912345653", country_code="NO"))["cached"] is True


def test_max_age_zero_forces_a_lookup(sim: str, store: Store) -> None:
    c = checker(sim, store)
    c.check(CheckRequest(number=LEI))
    again = c.check(CheckRequest(number=LEI, max_age_s=0))
    assert again["cached"] is False
    assert calls(sim, "gleif") == 2


def test_outage_is_retried_then_unavailable_and_never_cached(sim: str, store: Store) -> None:
    c = checker(sim, store, REGISTRY_RETRIES=2)
    configure(sim, sources={"gleif": {"fail": 503}})
    r = c.check(CheckRequest(number=LEI))
    assert r["status"] == "unavailable"
    assert r["error"]["code"] == "UPSTREAM_SERVER_ERROR" and r["error"]["retryable"] is True
    assert r["retry_after_s"] == 30.0
    assert r["attempts"] == 3 and calls(sim, "gleif") == 3
    assert store.client.get(c.cache.key("gleif", "lei", LEI)) is None
    configure(sim, sources={"gleif": None})
    assert c.check(CheckRequest(number=LEI))["status"] == "active"


def test_timeout_is_unavailable(sim: str, store: Store) -> None:
    c = checker(sim, store, REGISTRY_READ_TIMEOUT_S=0.2, REGISTRY_RETRIES=1)
    configure(sim, sources={"brreg": {"latency_ms": 600}})
    started = time.monotonic()
    r = c.check(CheckRequest(number="912345602", country_code="NO"))
    assert r["status"] == "unavailable" and r["error"]["code"] == "UPSTREAM_TIMEOUT"
    assert r["attempts"] == 2
    assert time.monotonic() - started < 2.0  # the deadline holds


def test_429_is_remembered_for_every_process(sim: str, store: Store) -> None:
    c = checker(sim, store)
    configure(sim, sources={"companies_house": {"rate_limit": 0, "retry_after_s": 30}})
    r = c.check(CheckRequest(number="01234567", country_code="GB"))
    assert r["status"] == "unavailable"
    assert r["error"] == {"code": "UPSTREAM_THROTTLED", "retryable": True,
                          "message": r["error"]["message"]}
    assert r["retry_after_s"] == 30.0 and r["attempts"] == 1
    # another process (another app on the same Redis) does not ask until Retry-After passes
    other = checker(sim, store)
    configure(sim, sources={"companies_house": None})
    again = other.check(CheckRequest(number="01234567", country_code="GB"))
    assert again["status"] == "unavailable" and again["attempts"] == 0
    assert 25 < again["retry_after_s"] <= 30
    assert calls(sim, "companies_house") == 1


def test_short_retry_after_is_waited_for_within_the_deadline(sim: str, store: Store) -> None:
    c = checker(sim, store, REGISTRY_DEADLINE_S=3.0)
    configure(sim, sources={"companies_house": {"rate_limit": 1}})
    assert c.check(CheckRequest(number="01234567", country_code="GB"))["status"] == "active"
    r = c.check(CheckRequest(number="SC123456", country_code="GB"))
    assert (r["status"], r["attempts"]) == ("inactive", 2)  # a 429, one second, then the answer


def test_circuit_opens_after_repeated_outages(sim: str, store: Store) -> None:
    c = checker(sim, store, REGISTRY_BREAKER_THRESHOLD=2, REGISTRY_RETRIES=0)
    configure(sim, sources={"cvr": {"fail": 500}})
    for _ in range(2):
        assert c.check(CheckRequest(number="35123458", country_code="DK"))["error"]["code"] == (
            "UPSTREAM_SERVER_ERROR"
        )
    r = c.check(CheckRequest(number="35123458", country_code="DK"))
    assert (r["status"], r["error"]["code"], r["attempts"]) == ("unavailable", "CIRCUIT_OPEN", 0)
    assert calls(sim, "cvr") == 2
    assert c.breaker.state("dk_cvr") == "open"


@pytest.mark.parametrize("threshold", [2, 3])
def test_one_check_is_one_failure_however_many_attempts(sim: str, store: Store,
                                                        threshold: int) -> None:
    """Finding 2 of issue 9: the retries of one check counted as consecutive failures, so one
    request could open a register's circuit. Now N checks open it, one check never."""
    c = checker(sim, store, REGISTRY_BREAKER_THRESHOLD=threshold, REGISTRY_RETRIES=threshold)
    configure(sim, sources={"gleif": {"fail": 503}})
    for n in range(1, threshold):
        r = c.check(CheckRequest(number=LEI))
        assert r["error"]["code"] == "UPSTREAM_SERVER_ERROR"
        assert r["attempts"] == threshold + 1  # every attempt failed, more than N of them
        assert c.breaker.state("gleif") == "closed", f"opened by check {n}"
    assert c.check(CheckRequest(number=LEI))["error"]["code"] == "UPSTREAM_SERVER_ERROR"
    assert c.breaker.state("gleif") == "open"
    assert c.check(CheckRequest(number=LEI))["error"]["code"] == "CIRCUIT_OPEN"


@pytest.mark.parametrize(("source", "kind"), [
    ("gleif", "lei"), ("fr_recherche", "siren"), ("fr_recherche", "siret"),
    ("no_brreg", "orgnr"), ("gb_companies_house", "gb_company_number"), ("dk_cvr", "cvr"),
    ("cz_ares", "ico"), ("pl_krs", "krs"),
])
@pytest.mark.parametrize("number", ["12345678\x00", "1234\x01567", "1234567\ud800"])
def test_a_number_no_request_can_carry_is_not_sent(sim: str, store: Store, source: str,
                                                   kind: str, number: str) -> None:
    """Format validation refuses such numbers first; behind it, every adapter refuses them
    itself, naming the field, before anything is sent (not an upstream fault)."""
    c = checker(sim, store, COMPANIES_HOUSE_API_KEY=CH_KEY, CVR_USERNAME=CVR_USER,
                CVR_PASSWORD=CVR_PASSWORD)
    with pytest.raises(NotSent) as refused:
        c.registers[source].lookup(kind=kind, number=number, timeout_s=1.0)
    assert set(refused.value.fields) == {"number"}
    assert number not in str(refused.value)
    assert stats(sim)["calls"] == 0


def test_a_number_stays_one_path_segment(sim: str, store: Store) -> None:
    """A number cannot walk the register's URL to another record (or another resource)."""
    c = checker(sim, store)
    assert c.registers["gleif"].lookup(kind="lei", number=f"nothing/../{LEI}") is None  # 404
    assert calls(sim, "gleif") == 1


def test_a_request_that_cannot_be_built_is_not_retried_nor_counted(sim: str,
                                                                   store: Store) -> None:
    """A register whose requests cannot leave (here a URL scheme requests cannot send to) is
    our fault: raised to the API, never retried, never counted, never unavailable."""
    broken = Gleif("htp://127.0.0.1:9/gleif", session=new_session(1))
    c = checker(sim, store, REGISTERS={"gleif": broken}, REGISTRY_BREAKER_THRESHOLD=1,
                REGISTRY_RETRIES=3)
    for _ in range(2):
        with pytest.raises(NotSent) as refused:
            c.check(CheckRequest(number=LEI))
        assert refused.value.fields == {}
    assert c.breaker.state("gleif") == "closed"
    assert not store.client.exists(c.breaker._key("gleif"))


def test_a_register_url_no_request_can_go_to_stops_start_up(sim: str, store: Store) -> None:
    with pytest.raises(ConfigError, match="TRACE30_REGISTRY_CZ_ARES_URL"):
        checker(sim, store, REGISTRY_CZ_ARES_URL="ares.gov.cz/rest")


def test_rate_limit_is_shared_through_redis(sim: str, store: Store) -> None:
    settings = {"REGISTRY_NO_BRREG_RATE_PER_S": 0.5, "REGISTRY_RATE_BURST": 1,
                "REGISTRY_DEADLINE_S": 0.3}
    one, two = checker(sim, store, **settings), checker(sim, store, **settings)
    assert one.check(CheckRequest(number="912345602", country_code="NO"))["status"] == "active"
    r = two.check(CheckRequest(number="912345610", country_code="NO"))
    assert (r["status"], r["error"]["code"], r["attempts"]) == ("unavailable", "RATE_LIMITED", 0)
    assert r["retry_after_s"] == 2.0
    assert calls(sim, "brreg") == 1


def test_refused_credentials_are_not_retried(sim: str, store: Store) -> None:
    c = checker(sim, store, COMPANIES_HOUSE_API_KEY="revoked")
    r = c.check(CheckRequest(number="01234567", country_code="GB"))
    assert r["status"] == "unavailable"
    assert r["error"]["code"] == "UPSTREAM_AUTH" and r["error"]["retryable"] is False
    assert r["retry_after_s"] is None and r["attempts"] == 1


def test_without_credentials_ch_and_cvr_are_unverifiable(sim: str, store: Store) -> None:
    c = checker(sim, store, COMPANIES_HOUSE_API_KEY=None, CVR_USERNAME=None)
    gb = c.check(CheckRequest(number="01234567", country_code="GB"))
    assert (gb["status"], gb["format_valid"]) == ("unverifiable", True)
    assert "TRACE30_COMPANIES_HOUSE_API_KEY" in gb["detail"] and "extract" in gb["detail"]
    dk = c.check(CheckRequest(number="35123458", country_code="DK"))
    assert dk["status"] == "unverifiable" and "TRACE30_CVR_USERNAME" in dk["detail"]
    assert stats(sim)["calls"] == 0


def test_kinds_without_a_register_are_unverifiable_after_the_format(sim: str,
                                                                    store: Store) -> None:
    c = checker(sim, store)
    kvk = c.check(CheckRequest(number="69599084", country_code="NL"))
    assert (kvk["status"], kvk["kind"], kvk["format_valid"]) == ("unverifiable", "kvk", True)
    assert "extract" in kvk["detail"] and kvk["source"] is None
    bad = c.check(CheckRequest(number="6959908", country_code="NL", kind="kvk"))
    assert (bad["status"], bad["reason"]) == ("invalid", "length")
    unknown_country = c.check(CheckRequest(number="123456789", country_code="LT"))
    assert (unknown_country["status"], unknown_country["format_valid"]) == ("unverifiable", None)
    assert stats(sim)["calls"] == 0


def test_invalid_numbers_never_reach_the_register(sim: str, store: Store) -> None:
    c = checker(sim, store)
    r = c.check(CheckRequest(number="529900GRZ2BQY5ZM9N48"))
    assert (r["status"], r["reason"], r["kind"]) == ("invalid", "checksum", "lei")
    r = c.check(CheckRequest(number="12345", country_code="FR"))
    assert (r["status"], r["kind"]) == ("invalid", None)
    assert stats(sim)["calls"] == 0


def test_name_match_is_computed_for_each_request_even_from_cache(sim: str, store: Store) -> None:
    c = checker(sim, store)
    r = c.check(CheckRequest(number=LEI, name="Acme Handels Gesellschaft mit beschränkter Haftung"))
    assert r["name_match"] == {
        "score": 1.0, "verdict": "match", "declared": "acme handels",
        "registered": "acme handels", "legal_forms": {"declared": "GMBH", "registered": "GMBH"},
    }
    cached = c.check(CheckRequest(number=LEI, name="Acme Handels AG"))
    assert cached["cached"] is True
    assert cached["name_match"]["verdict"] == "close"  # same name, another legal form
    assert c.check(CheckRequest(number=LEI))["name_match"] is None


def test_redis_down_is_unavailable(sim: str) -> None:
    dead = Store(redis.Redis(port=free_port(), socket_timeout=0.2, socket_connect_timeout=0.2,
                             decode_responses=True, retry=Retry(NoBackoff(), 0)),
                 "trace30test:dead:")
    c = checker(sim, dead)
    r = c.check(CheckRequest(number=LEI))
    assert (r["status"], r["error"]["code"]) == ("unavailable", "STORE_UNAVAILABLE")
    assert stats(sim)["calls"] == 0


@pytest.mark.parametrize("status", ["active", "inactive", "not_found"])
def test_cache_stores_only_definitive_answers(sim: str, store: Store, status: str) -> None:
    c = checker(sim, store)
    key = c.cache.key("gleif", "lei", status)
    c.cache.put(key, {"status": status})
    cached = c.cache.get(key)
    assert cached is not None and cached.result == {"status": status}
    for other in ("unavailable", "invalid", "unverifiable"):
        with pytest.raises(ValueError, match="only definitive"):
            c.cache.put(c.cache.key("gleif", "lei", other), {"status": other})


def test_a_number_with_a_lone_surrogate_has_a_cache_key_of_its_own(sim: str,
                                                                   store: Store) -> None:
    cache = checker(sim, store).cache
    assert cache.key("gleif", "lei", "1\ud800") != cache.key("gleif", "lei", "1")
