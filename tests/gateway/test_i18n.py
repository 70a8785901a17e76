"""The trader's messages in English, French and German (issue 12 point 6): the catalogues are
complete, their placeholders match, and every message the code shows a trader is in them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from services.gateway import casework, i18n
from services.gateway.reasons import CATALOGUE

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
#: Words spelt the same in English and French.
SAME_IN = {"fr": {"Date", "Source"}, "de": set()}


def entries(locale: str) -> dict[str, str]:
    path = i18n.TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        return {str(m.id): str(m.string) for m in read_po(f, locale=locale) if m.id}


def shown_to_traders() -> set[str]:
    return {r.message for r in CATALOGUE.values()} | set(casework.TEXTS)


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_message_is_translated_with_the_same_placeholders(locale: str) -> None:
    catalogue = entries(locale)
    assert set(catalogue) == set(entries("en")) == shown_to_traders()
    for msgid, msgstr in catalogue.items():
        assert msgstr.strip(), f"{locale}: no translation of {msgid!r}"
        assert sorted(PLACEHOLDER.findall(msgstr)) == sorted(PLACEHOLDER.findall(msgid)), (
            f"{locale}: placeholders differ in {msgid!r}")
        if locale != "en" and msgid not in SAME_IN[locale]:
            assert msgstr != msgid, f"{locale}: {msgid!r} left in English"


def test_translate_fills_placeholders_in_the_traders_language() -> None:
    assert i18n.translate("fr-CH", casework.T_NOTE, note="x") == "La note de l'examinateur : x"
    assert i18n.translate("de", casework.T_TITLE) == "Begründung"
    assert i18n.translate("es", casework.T_TITLE) == "Statement of reasons"
    assert i18n.translate(None, CATALOGUE["MISSING_NAME"].message) == (
        CATALOGUE["MISSING_NAME"].message)


def test_the_catalogues_ship_with_the_package() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["services.gateway"]
    assert "translations/*/LC_MESSAGES/*.po" in data
    deps = pyproject["project"]["dependencies"]
    assert any(d.startswith("babel") for d in deps)
