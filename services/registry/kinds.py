"""Kinds of business-registration numbers: which country, which validator, which live register.

:data:`KINDS` maps ``(country, kind)`` to a :class:`Kind`: python-stdnum's module where stdnum
covers the kind, or one of the project's own in :mod:`services.registry.formats` where it does
not. :func:`resolve` picks the kind of a request (inferring it from the number's shape where
only one kind of the country fits) and :func:`check_format` validates the number; together they
are the service's "core", which ``bench/registry_formats.py`` measures against stdnum alone.

>>> parsed = check_format(resolve("FR", None, "732 829 320"), "732 829 320")
>>> parsed.kind, parsed.country, parsed.normalised, parsed.format_valid
('siren', 'FR', '732829320', True)
>>> resolve(None, None, "529900GRZ2BQY5ZM9N49").name
'lei'
>>> check_format(resolve("GB", None, "SC12345"), "SC12345").reason
'length'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import NamedTuple

from stdnum import lei
from stdnum.at import businessid as at_businessid
from stdnum.be import vat as be_vat
from stdnum.bg import vat as bg_vat
from stdnum.ch import uid as ch_uid
from stdnum.dk import cvr as dk_cvr
from stdnum.ee import registrikood as ee_registrikood
from stdnum.es import cif as es_cif
from stdnum.es import nif as es_nif
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)
from stdnum.fi import ytunnus as fi_ytunnus
from stdnum.fr import rcs as fr_rcs
from stdnum.fr import siren as fr_siren
from stdnum.fr import siret as fr_siret
from stdnum.gr import vat as gr_vat
from stdnum.hr import oib as hr_oib
from stdnum.hu import anum as hu_anum
from stdnum.is_ import kennitala as is_kennitala
from stdnum.it import iva as it_iva
from stdnum.li import peid as li_peid
from stdnum.lv import pvn as lv_pvn
from stdnum.no import mva as no_mva
from stdnum.no import orgnr as no_orgnr
from stdnum.pl import nip as pl_nip
from stdnum.pl import regon as pl_regon
from stdnum.pt import nif as pt_nif
from stdnum.ro import cui as ro_cui
from stdnum.ro import onrc as ro_onrc
from stdnum.se import orgnr as se_orgnr
from stdnum.si import maticna as si_maticna

from services.registry.formats import (
    cz_ico,
    de_handelsregister,
    gb_company_number,
    it_rea,
    nl_kvk,
    nl_vestigingsnummer,
    pl_krs,
)

#: Live registers (ids of :mod:`services.registry.registers` adapters).
GLEIF, FR_RECHERCHE, NO_BRREG, GB_COMPANIES_HOUSE, DK_CVR, CZ_ARES, PL_KRS = (
    "gleif", "fr_recherche", "no_brreg", "gb_companies_house", "dk_cvr", "cz_ares", "pl_krs",
)

#: Spellings of country codes that mean another (Greece is EL in EU usage, GB is often UK).
COUNTRY_ALIASES = {"EL": "GR", "UK": "GB"}

#: Why a number fails, by stdnum's exception class.
REASONS: dict[type[ValidationError], str] = {
    InvalidChecksum: "checksum",
    InvalidLength: "length",
    InvalidFormat: "format",
    InvalidComponent: "component",
}

_NOISE = str.maketrans("", "", " \t\n\r\u00a0-./:,")


class NoKindFits(ValueError):
    """The number has the shape of none of its country's kinds: a format failure."""


class KindError(ValueError):
    """The request names a kind or country that does not fit; ``field`` is the one at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Kind:
    """One kind of number: where it is valid, how it is checked and looked up."""

    name: str
    country: str | None  # None: not tied to a country (the LEI)
    validate: Callable[..., str]  # returns the compact number or raises ValidationError
    shape: re.Pattern[str]  # what the number looks like, cleaned; used to infer the kind
    description: str
    origin: str  # where the format's definition comes from
    source: str | None = None  # the live register, if any
    takes_register: bool = False  # the "register" field is part of the number


class ParsedNumber(NamedTuple):
    """A number checked locally: ``format_valid`` is ``None`` when there is no rule to apply.

    A named tuple rather than a frozen dataclass: it is built for every number checked and
    builds several times faster (``bench/registry_formats.py`` measures this path). The
    normal form of a number that failed is computed only when asked for.
    """

    kind: str | None
    country: str | None
    number: str  # as given
    compact: str | None  # the validator's normal form; None when the number failed
    format_valid: bool | None
    reason: str | None = None
    detail: str | None = None

    @property
    def normalised(self) -> str:
        """The normal form, or, for a number that failed, the number cleaned up."""
        return self.compact if self.compact is not None else clean(self.number)


def _stdnum(
    module: ModuleType, country: str | None, name: str, shape: str, description: str,
    source: str | None = None,
) -> Kind:
    return Kind(name, country, module.validate, re.compile(shape), description,
                f"python-stdnum {module.__name__}", source)


def _own(
    module: ModuleType, country: str, name: str, shape: str, description: str,
    source: str | None = None, takes_register: bool = False,
) -> Kind:
    return Kind(name, country, module.validate, re.compile(shape), description,
                f"trace30 {module.__name__}", source, takes_register)


def _legal_entity(validate: Callable[[str], str], length: int) -> Callable[[str], str]:
    """A stdnum validator restricted to the legal-entity form of a number of ``length``."""

    def check(number: str) -> str:
        compact = validate(number)
        if len(compact) != length:
            raise InvalidLength()
        return compact

    return check


def _lv_legal_entity(number: str) -> str:
    """Latvian registration number of a legal entity: a PVN whose first digit is above 3."""
    compact = lv_pvn.validate(number)
    if compact[0] <= "3":
        raise InvalidComponent()
    return compact


def _build() -> dict[tuple[str | None, str], Kind]:
    kinds = [
        _stdnum(lei, None, "lei", r"^[0-9A-Z]{18}\d{2}$", "Legal Entity Identifier (ISO 17442)",
                GLEIF),
        _stdnum(at_businessid, "AT", "firmenbuchnummer", r"^(FN)?\d{1,6}[A-Z]$",
                "Firmenbuchnummer"),
        _stdnum(be_vat, "BE", "enterprise_number", r"^(BE)?[01]?\d{9}$",
                "Ondernemingsnummer / numéro d'entreprise (KBO/BCE)"),
        Kind("eik", "BG", _legal_entity(bg_vat.validate, 9), re.compile(r"^(BG)?\d{9}$"),
             "ЕИК (UIC of the Commercial Register) of a legal entity",
             "python-stdnum stdnum.bg.vat (9-digit legal-entity form)"),
        _stdnum(ch_uid, "CH", "uid", r"^CHE\d{9}$", "UID (Unternehmens-Identifikationsnummer)"),
        _own(cz_ico, "CZ", "ico", r"^(CZ|IČO?|ICO?)?\d{1,8}$",
             "IČO (identifikační číslo osoby) of a company or sole trader", CZ_ARES),
        _own(de_handelsregister, "DE", "handelsregisternummer", r"(HRA|HRB|GNR|PR|VR)\d",
             "Handelsregisternummer (court, register type, number)", takes_register=True),
        _stdnum(dk_cvr, "DK", "cvr", r"^(DK)?\d{8}$", "CVR-nummer", DK_CVR),
        _stdnum(ee_registrikood, "EE", "registrikood", r"^\d{8}$", "Registrikood"),
        _stdnum(es_cif, "ES", "cif", r"^(ES)?[A-HJNP-SUVW]\d{7}[0-9A-J]$",
                "CIF / NIF of a legal entity"),
        _stdnum(es_nif, "ES", "nif", r"^(ES)?([0-9KLMXYZ]\d{7}[A-Z])$",
                "NIF of a person (DNI, NIE), for sole traders"),
        _stdnum(fi_ytunnus, "FI", "ytunnus", r"^(FI)?\d{8}$", "Y-tunnus (business ID)"),
        _stdnum(fr_siren, "FR", "siren", r"^\d{9}$", "SIREN", FR_RECHERCHE),
        _stdnum(fr_siret, "FR", "siret", r"^\d{14}$", "SIRET (one establishment)", FR_RECHERCHE),
        _stdnum(fr_rcs, "FR", "rcs", r"^RCS", "RCS (greffe, A/B, SIREN)", FR_RECHERCHE),
        _own(gb_company_number, "GB", "company_number", r"^(([A-Z]{2}|R0)\d{6}|\d{1,8})$",
             "Companies House company number", GB_COMPANIES_HOUSE),
        _stdnum(gr_vat, "GR", "afm", r"^(GR|EL)?\d{8,9}$", "ΑΦΜ (tax number, also of companies)"),
        _stdnum(hr_oib, "HR", "oib", r"^(HR)?\d{11}$", "OIB"),
        _stdnum(hu_anum, "HU", "adoszam", r"^(HU)?\d{8}$", "Adószám (first 8 digits)"),
        _stdnum(is_kennitala, "IS", "kennitala", r"^\d{10}$", "Kennitala of an organisation"),
        _stdnum(it_iva, "IT", "partita_iva", r"^(IT)?\d{11}$", "Partita IVA"),
        _own(it_rea, "IT", "rea", r"^(REA)?[A-Z]{2}\d{1,7}$", "Numero REA"),
        _stdnum(li_peid, "LI", "peid", r"^\d{1,12}$", "PEID"),
        Kind("registracijas_numurs", "LV", _lv_legal_entity, re.compile(r"^(LV)?[4-9]\d{10}$"),
             "Reģistrācijas numurs of a legal entity",
             "python-stdnum stdnum.lv.pvn (legal-entity form, first digit above 3)"),
        _own(nl_kvk, "NL", "kvk", r"^(KVK(NR|NUMMER)?)?\d{8}$", "KvK-nummer"),
        _own(nl_vestigingsnummer, "NL", "vestigingsnummer", r"^\d{12}$", "Vestigingsnummer"),
        _stdnum(no_orgnr, "NO", "orgnr", r"^\d{9}$", "Organisasjonsnummer", NO_BRREG),
        _stdnum(no_mva, "NO", "mva", r"^(NO)?\d{9}MVA$", "Orgnr with MVA (VAT registered)",
                NO_BRREG),
        _stdnum(pl_regon, "PL", "regon", r"^(\d{9}|\d{14})$", "REGON"),
        _stdnum(pl_nip, "PL", "nip", r"^(PL)?[1-9]\d{9}$", "NIP"),
        # KRS numbers are written with 10 digits and, so far, leading zeros (or without them:
        # up to 8 digits); a NIP never starts with 0 (its first digits are a tax office code)
        # and a REGON has 9 or 14 digits, so the shapes do not overlap.
        _own(pl_krs, "PL", "krs", r"^(KRS\d{1,10}|0\d{9}|\d{1,8})$", "Numer KRS", PL_KRS),
        _stdnum(pt_nif, "PT", "nipc", r"^(PT)?[5-9]\d{8}$", "NIPC (NIF of a legal person)"),
        _stdnum(ro_cui, "RO", "cui", r"^(RO)?\d{2,10}$", "CUI / CIF"),
        _stdnum(ro_onrc, "RO", "onrc", r"^[JFC]", "Număr de ordine în Registrul Comerţului"),
        _stdnum(se_orgnr, "SE", "orgnr", r"^\d{10}$", "Organisationsnummer"),
        _stdnum(si_maticna, "SI", "maticna", r"^\d{7}(\d{3})?$", "Matična številka"),
    ]
    return {(k.country, k.name): k for k in kinds}


#: Every kind, by ``(country, name)``; the LEI's country is ``None``.
KINDS: dict[tuple[str | None, str], Kind] = _build()
#: Kind names (the values the API accepts in ``kind``).
KIND_NAMES: frozenset[str] = frozenset(name for _, name in KINDS)
_BY_COUNTRY: dict[str, list[Kind]] = {}
for _kind in KINDS.values():
    if _kind.country:
        _BY_COUNTRY.setdefault(_kind.country, []).append(_kind)
_BY_NAME: dict[str, list[Kind]] = {}
for _kind in KINDS.values():
    _BY_NAME.setdefault(_kind.name, []).append(_kind)


def country_code(code: str | None) -> str | None:
    """An ISO 3166 alpha-2 code, upper-case, with ``EL`` read as ``GR`` and ``UK`` as ``GB``.

    >>> country_code("el"), country_code(None)
    ('GR', None)
    """
    if not code:
        return None
    code = code.strip().upper()
    return COUNTRY_ALIASES.get(code, code)


def kinds_of(country: str) -> list[Kind]:
    """The kinds known for ``country`` (empty when none is)."""
    return _BY_COUNTRY.get(country, [])


def clean(number: str) -> str:
    """Upper-case and without separators: the form shapes are matched against.

    >>> clean(" 732 829-320 ")
    '732829320'
    """
    return number.translate(_NOISE).upper()


def resolve(country: str | None, kind: str | None, number: str) -> Kind | None:
    """The kind of a request; ``None`` when ``country`` has no kind this service knows.

    The kind is inferred when not given: a LEI (by its shape, with or without a country), the
    only kind of a country, or the only kind of the country whose shape fits. Raises
    :class:`KindError` naming the field at fault: an unknown kind, a kind of another country, a
    number that could be several kinds. Raises :class:`NoKindFits` when the number looks like
    none of the country's kinds.
    """
    if country:
        country = country.upper()
        country = COUNTRY_ALIASES.get(country, country)
    if kind is not None:
        found = KINDS.get((country, kind))  # the common case, first: both given and fitting
        if found is not None:
            return found
        if kind == "lei":
            return KINDS[(None, "lei")]
        candidates = _BY_NAME.get(kind)
        if not candidates:
            raise KindError("kind", f"Unknown kind {kind!r}.")
        if country is None:
            if len(candidates) > 1:
                raise KindError("country_code", f"Kind {kind!r} exists in several countries "
                                f"({', '.join(sorted(str(c.country) for c in candidates))}); "
                                "give country_code.")
            return candidates[0]
        for candidate in candidates:
            if candidate.country == country:
                return candidate
        known = ", ".join(k.name for k in kinds_of(country)) or "none"
        raise KindError("kind", f"Kind {kind!r} is not a kind of {country} "
                        f"(kinds of {country}: {known}).")
    cleaned = clean(number)
    lei_kind = KINDS[(None, "lei")]
    if lei_kind.shape.match(cleaned):  # 20 characters ending in 2 digits: no national kind
        return lei_kind
    if country is None:
        raise KindError("country_code", "country_code is required unless the number is a LEI.")
    own = kinds_of(country)
    if not own:
        return None
    if len(own) == 1:
        return own[0]
    fitting = [k for k in own if k.shape.search(cleaned)]
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        raise NoKindFits(f"The number looks like none of the kinds of {country} "
                         f"({', '.join(k.name for k in own)}).")
    raise KindError("kind", "The number could be any of "
                    f"{', '.join(k.name for k in fitting)}; say which in kind.")


def check_format(kind: Kind, number: str, register: str | None = None) -> ParsedNumber:
    """Validate ``number`` as ``kind`` (format and check digits, no lookup)."""
    try:
        compact = kind.validate(number, register) if kind.takes_register else kind.validate(number)
    except ValidationError as e:
        return ParsedNumber(kind.name, kind.country, number, None, False,
                            REASONS.get(type(e), "format"), str(e))
    return ParsedNumber(kind.name, kind.country, number, compact, True, None, None)


def mask(number: str) -> str:
    """A number for logs: its last three characters (a sole trader's number is personal data).

    >>> mask("732829320")
    '******320'
    """
    return "*" * max(0, len(number) - 3) + number[-3:]
