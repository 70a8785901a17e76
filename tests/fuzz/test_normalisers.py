"""Properties of the text normalisers, over any text the input rules accept (hypothesis).

``shared.names`` (company names, every service) and ``services.gateway.submissions`` (the
fingerprint that keys the verdict cache, the redacted copy staff see) take what
``shared.inputs.Text`` lets through: they must never raise on it, and what they give back
must be stable and clean.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway import submissions
from services.gateway.schemas import SubmissionSchema
from shared import names
from shared.inputs import text_problem

#: Any character the input rules accept on one line, and the line breaks multi-line text takes.
ONE_LINE = st.characters(exclude_categories=("Cc", "Cs"))
MULTI_LINE = st.one_of(ONE_LINE, st.sampled_from(" \t\n\r"))
#: Letters and the punctuation legal names are made of, so that legal forms are often found.
NAME_WORDS = st.lists(
    st.one_of(st.sampled_from(["GmbH", "& Co.", "KG", "S.A.", "Ltd", "B.V.", "i.L.", "The",
                               "AG", "and", "et", "A/S", "(publ)", "SAS", "S.p.A.", "Sp. z o.o.",
                               "Müller", "Société", "Générale",
                               "\u0391\u039a\u039c\u0395", "\u0391.\u0395."]),  # Greek
              st.text(MULTI_LINE, max_size=12)),
    max_size=8,
).map(" ".join)
NAMES = st.one_of(st.text(MULTI_LINE, max_size=300), NAME_WORDS)
COUNTRIES = st.one_of(st.none(), st.sampled_from(["DE", "FR", "GB", "GR", "EL", "NL", "PL",
                                                  "SE", "ES", "IT", "XX"]))
_NORMALISED = re.compile(r"(?:[a-z0-9]+(?: [a-z0-9]+)*)?")

# No deadline: the machine is shared, and a slow example is not a failure of these properties.
settings.register_profile("trace30-fuzz", deadline=None)
settings.load_profile("trace30-fuzz")


def accepted(value: str) -> bool:
    return text_problem(value) is None


@given(NAMES, COUNTRIES)
def test_names_normalise_never_raises_and_gives_plain_ascii_words(name: str,
                                                                  country: str | None) -> None:
    assert accepted(name)
    result = names.normalise(name, country)
    assert _NORMALISED.fullmatch(result.text), result
    assert result.original == name
    assert result.legal_form is None or re.fullmatch(r"[A-Z0-9_]+", result.legal_form)


@given(NAMES, COUNTRIES, st.text(st.sampled_from(" \t\n\r"), max_size=3))
def test_names_normalise_ignores_surrounding_white_space_and_ascii_case(
        name: str, country: str | None, space: str) -> None:
    def words(value: str) -> tuple[str, str | None]:
        result = names.normalise(value, country)
        return result.text, result.legal_form

    assert words(space + name + space) == words(name)
    if name.isascii():
        assert words(name.upper()) == words(name)


@given(NAMES, NAMES, COUNTRIES)
def test_names_compare_is_bounded_and_symmetric(a: str, b: str, country: str | None) -> None:
    ab, ba = names.compare(a, b, country), names.compare(b, a, country)
    assert 0.0 <= ab.score <= 1.0
    assert ab.score == ba.score and ab.verdict == ba.verdict
    assert ab.verdict in ("match", "close", "no_match")


@given(NAMES, COUNTRIES)
def test_a_name_matches_itself(name: str, country: str | None) -> None:
    result = names.compare(name, name, country)
    if names.normalise(name, country).text:
        assert (result.score, result.verdict) == (1.0, "match")
    else:
        assert (result.score, result.verdict) == (0.0, "no_match")


def one_line(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(ONE_LINE, min_size=min_size, max_size=max_size)


def padded(inner: st.SearchStrategy[str], spaces: str = " ") -> st.SearchStrategy[str]:
    space = st.text(st.sampled_from(spaces), max_size=2)
    return st.tuples(space, inner, space).map("".join)


SUBMISSIONS = st.fixed_dictionaries(
    {"trader_id": one_line(100, 1).filter(str.strip)},
    optional={
        "name": padded(st.text(MULTI_LINE, max_size=150), " \t\n"),
        "vat_number": padded(one_line(40)),
        "address": st.fixed_dictionaries({}, optional={
            "street": st.text(MULTI_LINE, max_size=200), "postcode": one_line(20),
            "city": st.text(MULTI_LINE, max_size=100),
            "country_code": st.sampled_from(["DE", "FR"])}),
        "payment": st.fixed_dictionaries(
            {"iban": padded(one_line(50, 1), " \t\n").filter(str.strip)},
            optional={"account_holder": st.text(MULTI_LINE, max_size=200),
                      "bic": one_line(20)}),
        "registration": st.fixed_dictionaries({"number": padded(one_line(50, 1)).filter(str.strip)},
                                              optional={"register": one_line(100)}),
        "identification": st.fixed_dictionaries(
            {"type": st.sampled_from(["passport", "eid"])},
            optional={"reference": one_line(100)}),
    },
)


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    return []


@given(SUBMISSIONS)
def test_the_schema_accepts_what_the_rules_accept(raw: dict) -> None:
    SubmissionSchema().load(raw)


@given(SUBMISSIONS)
def test_submission_normalise_is_idempotent_and_clean(raw: dict) -> None:
    sub = SubmissionSchema().load(raw)
    once = submissions.normalise(sub)
    assert submissions.normalise(once) == once
    for text in strings(once):
        assert text and text == text.strip()
        assert accepted(text)
    assert submissions.fingerprint(sub, "shop") == submissions.fingerprint(once, "shop")


@given(SUBMISSIONS)
def test_redact_never_raises_and_keeps_no_full_iban(raw: dict) -> None:
    sub = SubmissionSchema().load(raw)
    redacted = submissions.redact(sub)
    iban = submissions.normalise(sub).get("payment", {}).get("iban")
    if iban:
        masked = redacted["payment"]["iban"]
        assert len(masked) == len(iban)
        assert sum(c != "*" for c in masked) <= 6  # country code and last four at most
    assert all(unicodedata.category(c) != "Cs" for text in strings(redacted) for c in text)
