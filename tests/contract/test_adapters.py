"""The adapter contract, once, over every adapter of an outside system and every fake of one.

Each real adapter runs against its simulator over loopback HTTP (the VIES simulator for the
SOAP and REST front ends, HMRC, the UID register, the registers simulator for Brønnøysund's VAT
register and the seven business registers, the payee-verification simulator); where a
simulator has no knob for a fault, ``responses`` answers for it. Each fake used by the checks'
tests (:mod:`tests.vat.fakes`, :mod:`tests.registry.fakes`, :mod:`tests.payment.fakes`) keeps
the same contract, so tests that script it see what the real adapter would raise.

Every subject must:

(a) answer within its timeout when the upstream hangs: ``Fault.TIMEOUT``, retryable;
(b) map an outage (a 5xx, a SOAP outage fault) to a retryable fault the breaker counts;
(c) map a throttle (429, ``MS_MAX_CONCURRENT_REQ``, ``Request_limit_exceeded``) to
    ``Fault.THROTTLED``, not counted as an outage, with the ``Retry-After`` it was given;
(d) map a malformed answer to ``Fault.BAD_RESPONSE``;
(e) raise nothing but :class:`~shared.upstream.UpstreamError` for any of these (a real adapter
    also for an upstream nobody listens on: ``Fault.UNREACHABLE``), with a stable code and no
    personal data in the message.

Protocol-specific behaviour (fault tables, tokens, answers) stays in each adapter's own tests.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import pytest
import requests
import responses

from services.payment.payee import HttpPayeeVerification
from services.registry.registers.cz_ares import CzAres
from services.registry.registers.dk_cvr import DkCvr
from services.registry.registers.fr_recherche import FrRecherche
from services.registry.registers.gb_companies_house import CompaniesHouse
from services.registry.registers.gleif import Gleif
from services.registry.registers.http import new_session as register_session
from services.registry.registers.no_brreg import NoBrreg
from services.registry.registers.pl_krs import PlKrs
from services.vat.brreg_mva import BrregMva
from services.vat.hmrc import HmrcVat
from services.vat.uid import UidRegister
from services.vat.vies import ZeepVies
from services.vat.vies_rest import RestVies
from shared.upstream import Fault, UpstreamError
from simulators.hmrc import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.conftest import VIES_PATH, free_port, set_knobs
from tests.payment.fakes import FakePayee
from tests.registry.conftest import CH_KEY, CVR_PASSWORD, CVR_USER
from tests.registry.fakes import FakeGleif
from tests.vat.fakes import FakeVies

#: The timeout every subject is asked with; a hanging upstream answers after HANG_S.
TIMEOUT_S = 0.5
HANG_S = 1.5
#: The Retry-After a throttling upstream sends, where its protocol has one.
WAIT_S = 7.0
#: What no fault message may carry (the subjects are asked about this trader).
SECRET_NAME = "Acme Trading GmbH"

Scenario = Callable[[], AbstractContextManager[object]]


def _nothing() -> AbstractContextManager[object]:
    return contextlib.nullcontext()


@dataclass
class Subject:
    """One adapter or fake under the contract, and how to make its upstream misbehave.

    Each scenario sets the upstream up (a simulator's knobs, a fake's script) and returns the
    context the call is made in (``responses`` where a simulator has no knob for the fault).
    ``retry_after_s`` is what a throttle must carry (None: the protocol sends no wait)."""

    ask: Callable[[float], object]
    hang: Scenario
    outage: Scenario
    throttle: Scenario
    malformed: Scenario
    retry_after_s: float | None = WAIT_S
    #: A real adapter pointed at a port nobody listens on; None for a fake.
    unreachable: Callable[[], object] | None = None


def knobs(sim: str, **values: object) -> Scenario:
    def scenario() -> AbstractContextManager[object]:
        set_knobs(sim, values)
        return contextlib.nullcontext()
    return scenario


def sequence(*steps: Callable[[], object]) -> Scenario:
    def scenario() -> AbstractContextManager[object]:
        for step in steps:
            step()
        return contextlib.nullcontext()
    return scenario


@contextlib.contextmanager
def answering(status: int, body: str, headers: dict[str, str] | None = None) -> Iterator[object]:
    """Every loopback call answered ``status`` with ``body`` (``responses``)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in (responses.GET, responses.POST):
            mock.add(method, re.compile(r"http://127\.0\.0\.1:\d+/.*"), body=body,
                     status=status, headers=headers or {}, content_type="application/json")
        yield mock


def truncated_json() -> AbstractContextManager[object]:
    return answering(200, '{"truncated": ')


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


# -- the subjects --------------------------------------------------------------------------------


def vies_numbers(vies: str) -> tuple[dict[str, str], Callable[..., Scenario]]:
    """The VIES simulator misbehaves by number (``301`` MS_UNAVAILABLE, ``600``
    MS_MAX_CONCURRENT_REQ, ``700`` truncated, ``701`` slow): the number to ask, and a scenario
    maker that picks it (with knobs)."""
    number = {"value": "100"}

    def use(value: str, **values: object) -> Scenario:
        def scenario() -> AbstractContextManager[object]:
            number["value"] = value
            if values:
                set_knobs(vies, values)
            return contextlib.nullcontext()
        return scenario

    return number, use


def vies_soap(request: pytest.FixtureRequest) -> Subject:
    vies: str = request.getfixturevalue("vies")
    number, use = vies_numbers(vies)
    client = ZeepVies(vies + VIES_PATH, connect_timeout_s=1, read_timeout_s=3)
    return Subject(
        ask=lambda t: client.check(country_code="DE", number=number["value"], timeout_s=t),
        hang=use("701", slow_seconds=HANG_S), outage=use("301"), throttle=use("600"),
        malformed=use("700"), retry_after_s=None,
        unreachable=lambda: ZeepVies(dead_url() + VIES_PATH, connect_timeout_s=0.5).check(
            country_code="DE", number="100"),
    )


def vies_rest(request: pytest.FixtureRequest) -> Subject:
    vies: str = request.getfixturevalue("vies")
    number, use = vies_numbers(vies)
    path = "/taxation_customs/vies/rest-api"
    client = RestVies(vies + path, read_timeout_s=2.0)
    return Subject(
        ask=lambda t: client.check(country_code="DE", number=number["value"], timeout_s=t),
        hang=use("100", latency_ms=HANG_S * 1000), outage=use("301"), throttle=use("600"),
        malformed=use("700"), retry_after_s=None,
        unreachable=lambda: RestVies(dead_url() + path, connect_timeout_s=0.5).check(
            country_code="DE", number="100"),
    )


def hmrc(request: pytest.FixtureRequest) -> Subject:
    sim: str = request.getfixturevalue("hmrc")
    client = HmrcVat(sim, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, read_timeout_s=2.0)
    return Subject(
        ask=lambda t: client.check("980780684", timeout_s=t),
        hang=knobs(sim, latency_ms=HANG_S * 1000), outage=knobs(sim, fail=503),
        throttle=lambda: answering(429, '{"code": "MESSAGE_THROTTLED_OUT"}',
                                   {"Retry-After": str(int(WAIT_S))}),
        malformed=knobs(sim, malformed=True),
        unreachable=lambda: HmrcVat(dead_url(), "id", "secret", connect_timeout_s=0.5).check(
            "980780684"),
    )


def uid(request: pytest.FixtureRequest) -> Subject:
    sim: str = request.getfixturevalue("uid")
    path = "/V5.0/PublicServices.svc"
    client = UidRegister(sim + path, read_timeout_s=2.0)
    return Subject(
        ask=lambda t: client.check("116281704", timeout_s=t),
        hang=knobs(sim, latency_ms=HANG_S * 1000), outage=knobs(sim, fail="http_503"),
        throttle=knobs(sim, fail="limit"), malformed=knobs(sim, fail="malformed"),
        retry_after_s=None,  # the UID register's limit fault gives no wait
        unreachable=lambda: UidRegister(dead_url() + path, connect_timeout_s=0.5).check(
            "116281704"),
    )


def brreg_mva(request: pytest.FixtureRequest) -> Subject:
    sim: str = request.getfixturevalue("brreg")
    path = "/brreg/enhetsregisteret/api"
    client = BrregMva(sim + path, read_timeout_s=2.0)
    number = {"value": "912345602"}

    def truncated() -> AbstractContextManager[object]:
        number["value"] = "912345718"  # the simulator's entity with truncated JSON
        return contextlib.nullcontext()

    def brreg_knobs(**values: object) -> Scenario:
        return knobs(sim, sources={"brreg": values})

    return Subject(
        ask=lambda t: client.check(number["value"], timeout_s=t),
        hang=brreg_knobs(latency_ms=HANG_S * 1000), outage=brreg_knobs(fail=503),
        throttle=brreg_knobs(rate_limit=0, retry_after_s=int(WAIT_S)), malformed=truncated,
        unreachable=lambda: BrregMva(dead_url() + path, connect_timeout_s=0.5).check(
            "912345602"),
    )


#: Each register: its simulator source, how to build it on a base URL, one lookup.
REGISTERS: dict[str, tuple[str, Callable[[str, requests.Session], object], str, str]] = {
    "gleif": ("gleif", lambda base, s: Gleif(base + "/gleif/api/v1", session=s,
                                             connect_timeout_s=1, read_timeout_s=2),
              "lei", "5299009TRACE30ACME93"),
    "fr_recherche": ("recherche_entreprises", lambda base, s: FrRecherche(
        base + "/recherche-entreprises", session=s, connect_timeout_s=1, read_timeout_s=2),
        "siren", "812345676"),
    "no_brreg": ("brreg", lambda base, s: NoBrreg(
        base + "/brreg/enhetsregisteret/api", session=s, connect_timeout_s=1, read_timeout_s=2),
        "orgnr", "912345602"),
    "gb_companies_house": ("companies_house", lambda base, s: CompaniesHouse(
        base + "/companies-house", api_key=CH_KEY, session=s, connect_timeout_s=1,
        read_timeout_s=2), "company_number", "01234567"),
    "dk_cvr": ("cvr", lambda base, s: DkCvr(
        base + "/cvr", username=CVR_USER, password=CVR_PASSWORD, session=s, connect_timeout_s=1,
        read_timeout_s=2), "cvr", "35123458"),
    "cz_ares": ("ares", lambda base, s: CzAres(
        base + "/ares/ekonomicke-subjekty-v-be/rest", session=s, connect_timeout_s=1,
        read_timeout_s=2), "ico", "27300307"),
    "pl_krs": ("krs", lambda base, s: PlKrs(
        base + "/krs/api/krs", session=s, connect_timeout_s=1, read_timeout_s=2),
        "krs", "0000730030"),
}


def register(name: str) -> Callable[[pytest.FixtureRequest], Subject]:
    source, make, kind, number = REGISTERS[name]

    def build(request: pytest.FixtureRequest) -> Subject:
        sim: str = request.getfixturevalue("sim")
        session = register_session(4)
        request.addfinalizer(session.close)
        adapter = make(sim, session)

        def source_knobs(**values: object) -> Scenario:
            return knobs(sim, sources={source: values})

        return Subject(
            ask=lambda t: adapter.lookup(kind=kind, number=number,  # type: ignore[attr-defined]
                                         timeout_s=t),
            hang=source_knobs(latency_ms=HANG_S * 1000), outage=source_knobs(fail=503),
            throttle=source_knobs(rate_limit=0, retry_after_s=int(WAIT_S)),
            malformed=truncated_json,
            unreachable=lambda: make(dead_url(), session).lookup(  # type: ignore[attr-defined]
                kind=kind, number=number, timeout_s=1.0),
        )
    return build


def payee(request: pytest.FixtureRequest) -> Subject:
    sim: str = request.getfixturevalue("payee")
    client = HttpPayeeVerification(sim + "/vop/v1", connect_timeout_s=1.0, read_timeout_s=2.0)
    iban = "DE89370400440532013000"
    return Subject(
        ask=lambda t: client.verify(name=SECRET_NAME, iban=iban, timeout_s=t),
        hang=knobs(sim, latency_ms=HANG_S * 1000), outage=knobs(sim, fail="http_503"),
        throttle=lambda: answering(429, '{"error": "too many requests"}',
                                   {"Retry-After": str(int(WAIT_S))}),
        malformed=knobs(sim, fail="bad_response"),
        unreachable=lambda: HttpPayeeVerification(dead_url(), connect_timeout_s=0.5).verify(
            name=SECRET_NAME, iban=iban),
    )


def fake_subject(make: Callable[..., object], ask: Callable[[object, float], object],
                 outage_code: str) -> Callable[[pytest.FixtureRequest], Subject]:
    """A fake scripted the way the checks' tests script it."""

    def build(request: pytest.FixtureRequest) -> Subject:
        holder: dict[str, object] = {"fake": make()}

        def scripted(**kwargs: object) -> Scenario:
            return sequence(lambda: holder.update(fake=make(**kwargs)))

        return Subject(
            ask=lambda t: ask(holder["fake"], t),
            hang=scripted(delay_s=HANG_S),
            outage=scripted(error=UpstreamError("down", Fault.OUTAGE, code=outage_code)),
            throttle=scripted(error=UpstreamError("slow down", Fault.THROTTLED,
                                                  retry_after_s=WAIT_S)),
            malformed=scripted(error=UpstreamError("unparsable", Fault.BAD_RESPONSE)),
        )
    return build


def _fake_vies(delay_s: float = 0.0, error: UpstreamError | None = None) -> FakeVies:
    fake = FakeVies(delay_s=delay_s)
    if error is not None:
        fake.script("DE100", error)
    return fake


SUBJECTS: dict[str, Callable[[pytest.FixtureRequest], Subject]] = {
    "vies_soap": vies_soap,
    "vies_rest": vies_rest,
    "hmrc": hmrc,
    "uid": uid,
    "brreg_mva": brreg_mva,
    **{f"register_{name}": register(name) for name in REGISTERS},
    "payee": payee,
    "fake_vies": fake_subject(_fake_vies, lambda f, t: f.check(  # type: ignore[attr-defined]
        country_code="DE", number="100", timeout_s=t), "MS_UNAVAILABLE"),
    "fake_register": fake_subject(FakeGleif, lambda f, t: f.lookup(  # type: ignore[attr-defined]
        kind="lei", number="5299009TRACE30ACME93", timeout_s=t), "UPSTREAM_SERVER_ERROR"),
    "fake_payee": fake_subject(FakePayee, lambda f, t: f.verify(  # type: ignore[attr-defined]
        name=SECRET_NAME, iban="DE89370400440532013000", timeout_s=t), "UPSTREAM_UNREACHABLE"),
}
REAL = [name for name in SUBJECTS if not name.startswith("fake_")]


@pytest.fixture(params=list(SUBJECTS))
def subject(request: pytest.FixtureRequest) -> Subject:
    return SUBJECTS[request.param](request)


def fault_of(subject: Subject, scenario: Scenario) -> UpstreamError:
    """The fault of one call in ``scenario``; anything but an UpstreamError fails (e)."""
    with scenario():
        try:
            answer = subject.ask(TIMEOUT_S)
        except UpstreamError as e:
            error = e
        else:
            pytest.fail(f"a fault was taken for an answer: {answer!r}")
    assert error.code and error.code == error.code.strip()
    assert SECRET_NAME not in str(error) and "DE89370400440532013000" not in str(error)
    return error


def test_a_hanging_upstream_is_a_timeout_within_the_timeout(subject: Subject) -> None:
    started = time.monotonic()
    error = fault_of(subject, subject.hang)
    assert time.monotonic() - started < HANG_S - 0.2  # it did not wait for the answer
    assert error.fault is Fault.TIMEOUT and error.retryable and error.outage


def test_an_outage_is_retryable_and_counted(subject: Subject) -> None:
    error = fault_of(subject, subject.outage)
    assert error.fault in (Fault.OUTAGE, Fault.UNREACHABLE)
    assert error.retryable and error.outage


def test_a_throttle_is_throttled_with_its_wait(subject: Subject) -> None:
    error = fault_of(subject, subject.throttle)
    assert error.fault is Fault.THROTTLED and error.retryable and not error.outage
    assert error.retry_after_s == subject.retry_after_s


def test_a_malformed_answer_is_a_bad_response(subject: Subject) -> None:
    error = fault_of(subject, subject.malformed)
    assert error.fault is Fault.BAD_RESPONSE and error.retryable and error.outage


@pytest.mark.parametrize("name", REAL)
def test_nobody_listening_is_unreachable(name: str, request: pytest.FixtureRequest) -> None:
    real = SUBJECTS[name](request)
    assert real.unreachable is not None
    with pytest.raises(UpstreamError) as info:
        real.unreachable()
    assert info.value.fault is Fault.UNREACHABLE and info.value.retryable
