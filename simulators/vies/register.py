"""The simulated VAT register: demo traders, VIES test numbers and the rules that pick an answer.

A request is answered, in this order:

1. ``countryCode`` not two capital letters, or ``vatNumber`` empty: ``INVALID_INPUT``.
   For ``checkVatApprox`` with both requester fields sent, a requester country that is not a
   member state or a requester number outside ``[0-9A-Za-z+*.]{2,12}``:
   ``INVALID_REQUESTER_INFO``.
2. An entry of the ``overrides`` knob for ``CCNUMBER``: its trader record, or its fault.
3. A country listed in the ``down`` knob: ``MS_UNAVAILABLE``.
4. A VIES test number (any country code) or a simulator extension number.
5. A country that is not a VIES member state (``GB`` included) or a number outside
   ``[0-9A-Za-z+*.]{2,12}``: ``INVALID_INPUT``.
6. The demo register (``traders.json``). Unknown numbers are reported invalid, as VIES reports
   a number not in the member state's register.

Invalid answers carry an empty ``vatNumber`` (as VIES sends them); unknown and deregistered
numbers also have an empty ``name`` and ``address``; the test number 200 has ``---``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

#: VIES member state codes (Greece is EL, Northern Ireland XI).
_MEMBER_STATE_CODES = (
    "AT BE BG CY CZ DE DK EE EL ES FI FR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK XI"
)
MEMBER_STATES: frozenset[str] = frozenset(_MEMBER_STATE_CODES.split())

COUNTRY_CODE_RE = re.compile(r"[A-Z]{2}")
VAT_NUMBER_RE = re.compile(r"[0-9A-Za-z+*.]{2,12}")

#: Test numbers of the VIES test service answering with a fault (faultstring = the code).
TEST_FAULTS: dict[str, str] = {
    "201": "INVALID_INPUT",
    "202": "INVALID_REQUESTER_INFO",
    "300": "SERVICE_UNAVAILABLE",
    "301": "MS_UNAVAILABLE",
    "302": "TIMEOUT",
    "400": "VAT_BLOCKED",
    "401": "IP_BLOCKED",
    "500": "GLOBAL_MAX_CONCURRENT_REQ",
    "501": "GLOBAL_MAX_CONCURRENT_REQ_TIME",
    "600": "MS_MAX_CONCURRENT_REQ",
    "601": "MS_MAX_CONCURRENT_REQ_TIME",
}
TEST_VALID = "100"
TEST_INVALID = "200"

#: Simulator-only numbers (any country code) for testing clients' robustness.
EXTENSION_TRUNCATED = "700"  # HTTP 200, unparsable (truncated) XML
EXTENSION_SLOW = "701"  # sleeps slow_seconds, then answers as 100
EXTENSION_GATEWAY = "702"  # HTTP 503 HTML page
EXTENSION_NO_FAULTCODE = "703"  # MS_UNAVAILABLE fault without <faultcode>
EXTENSION_SERVER_BUSY = "704"  # legacy SERVER_BUSY fault

TRADER_TEXT_KEYS: tuple[str, ...] = (
    "name",
    "address",
    "company_type",
    "street",
    "postcode",
    "city",
)
TRADER_KEYS: frozenset[str] = frozenset(TRADER_TEXT_KEYS) | {"valid", "matching"}

NOT_DISCLOSED = "---"


@dataclass(frozen=True)
class Trader:
    """One entry of the register: what checkVat and checkVatApprox answer for a number.

    ``matching=False``: the member state does not process approximate matching (every match
    code is 3). ``match_all``: every match code is 1 (the VIES test number 100).
    """

    valid: bool
    name: str = ""
    address: str = ""
    company_type: str = ""
    street: str = ""
    postcode: str = ""
    city: str = ""
    matching: bool = True
    match_all: bool = False

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Trader:
        """Build a trader from a JSON record (``valid`` defaults to true); bad records raise."""
        unknown = set(record) - TRADER_KEYS - {"vat", "fictitious"}
        if unknown:
            raise ValueError(f"unknown trader keys: {sorted(unknown)}")
        valid = record.get("valid", True)
        matching = record.get("matching", True)
        if not isinstance(valid, bool) or not isinstance(matching, bool):
            raise ValueError("trader 'valid' and 'matching' must be booleans")
        for key in TRADER_TEXT_KEYS:
            if not isinstance(record.get(key, ""), str):
                raise ValueError(f"trader {key!r} must be a string")
        return cls(
            valid=valid,
            name=record.get("name", ""),
            address=record.get("address", ""),
            company_type=record.get("company_type", ""),
            street=record.get("street", ""),
            postcode=record.get("postcode", ""),
            city=record.get("city", ""),
            matching=matching,
        )


TEST_VALID_TRADER = Trader(
    valid=True,
    name="John Doe",
    address="123 Main St, Anytown, UK",
    company_type="",
    street="123 Main St",
    postcode="AN1 1AA",
    city="Anytown",
    match_all=True,
)
TEST_INVALID_TRADER = Trader(
    valid=False,
    name=NOT_DISCLOSED,
    address=NOT_DISCLOSED,
    company_type=NOT_DISCLOSED,
    street=NOT_DISCLOSED,
    postcode=NOT_DISCLOSED,
    city=NOT_DISCLOSED,
    matching=False,
)
UNKNOWN_TRADER = Trader(valid=False)


@dataclass(frozen=True)
class Fault:
    """Answer with a SOAP fault whose faultstring is ``code``."""

    code: str
    with_faultcode: bool = True


@dataclass(frozen=True)
class Answer:
    """Answer with the register entry ``trader``, after ``delay_seconds``."""

    trader: Trader
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class Broken:
    """Answer outside SOAP: unparsable XML (HTTP 200) or a gateway's HTML page (HTTP 503)."""

    kind: Literal["truncated", "gateway"]


Decision = Fault | Answer | Broken


def vat_key(country_code: str, vat_number: str) -> str:
    """Return the register key of a number: country code and number, upper case, no spaces."""
    return "".join(f"{country_code}{vat_number}".split()).upper()


def load_traders(path: Path) -> dict[str, Trader]:
    """Load the demo register ``{"traders": [{"vat": "DE136695976", ...}, ...]}``."""
    document = json.loads(path.read_text(encoding="utf-8"))
    traders: dict[str, Trader] = {}
    for record in document["traders"]:
        key = vat_key(record["vat"][:2], record["vat"][2:])
        if key in traders:
            raise ValueError(f"{path}: {key} listed twice")
        traders[key] = Trader.from_record(record)
    return traders


def _requester_is_valid(fields: Mapping[str, str]) -> bool:
    country = fields.get("requesterCountryCode", "")
    number = fields.get("requesterVatNumber", "")
    if not (country and number):
        return True
    return country in MEMBER_STATES and VAT_NUMBER_RE.fullmatch(number) is not None


def has_requester(fields: Mapping[str, str]) -> bool:
    """Whether both ``requesterCountryCode`` and ``requesterVatNumber`` were sent."""
    return bool(fields.get("requesterCountryCode")) and bool(fields.get("requesterVatNumber"))


def decide(
    fields: Mapping[str, str],
    traders: Mapping[str, Trader],
    overrides: Mapping[str, Mapping[str, Any]],
    down: frozenset[str] | set[str] | list[str],
    slow_seconds: float,
) -> Decision:
    """Pick the answer to a request with ``fields`` (see the module docstring for the order)."""
    country = fields.get("countryCode", "")
    number = fields.get("vatNumber", "")
    if COUNTRY_CODE_RE.fullmatch(country) is None or not number:
        return Fault("INVALID_INPUT")
    if not _requester_is_valid(fields):
        return Fault("INVALID_REQUESTER_INFO")

    override = overrides.get(vat_key(country, number))
    if override is not None:
        if "fault" in override:
            return Fault(str(override["fault"]))
        return Answer(Trader.from_record(override))
    if country in down:
        return Fault("MS_UNAVAILABLE")

    if number == TEST_VALID:
        return Answer(TEST_VALID_TRADER)
    if number == TEST_INVALID:
        return Answer(TEST_INVALID_TRADER)
    if number in TEST_FAULTS:
        return Fault(TEST_FAULTS[number])
    if number == EXTENSION_TRUNCATED:
        return Broken("truncated")
    if number == EXTENSION_SLOW:
        return Answer(TEST_VALID_TRADER, delay_seconds=slow_seconds)
    if number == EXTENSION_GATEWAY:
        return Broken("gateway")
    if number == EXTENSION_NO_FAULTCODE:
        return Fault("MS_UNAVAILABLE", with_faultcode=False)
    if number == EXTENSION_SERVER_BUSY:
        return Fault("SERVER_BUSY")

    if country not in MEMBER_STATES or VAT_NUMBER_RE.fullmatch(number) is None:
        return Fault("INVALID_INPUT")
    return Answer(traders.get(vat_key(country, number), UNKNOWN_TRADER))


def _normalize(text: str) -> str:
    return "".join(text.split()).casefold()


#: checkVatApprox request field -> (Trader attribute, match element).
MATCHED_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("traderName", "name", "traderNameMatch"),
    ("traderCompanyType", "company_type", "traderCompanyTypeMatch"),
    ("traderStreet", "street", "traderStreetMatch"),
    ("traderPostcode", "postcode", "traderPostcodeMatch"),
    ("traderCity", "city", "traderCityMatch"),
)


def match_codes(trader: Trader, fields: Mapping[str, str]) -> dict[str, str]:
    """Return the match codes for the trader fields the request sent (omitting the others).

    ``"1"`` (VALID): equal to the registered value, ignoring case and white space;
    ``"2"`` (INVALID): different; ``"3"`` (NOT_PROCESSED): the member state does not process
    matching, the number is invalid, or the registered value is empty or ``---``.
    """
    codes: dict[str, str] = {}
    for request_field, attribute, match_field in MATCHED_FIELDS:
        sent = fields.get(request_field, "")
        if not sent:
            continue
        registered = getattr(trader, attribute)
        if trader.match_all:
            codes[match_field] = "1"
        elif not (trader.valid and trader.matching) or registered in ("", NOT_DISCLOSED):
            codes[match_field] = "3"
        else:
            codes[match_field] = "1" if _normalize(sent) == _normalize(registered) else "2"
    return codes


def approx_details(trader: Trader) -> dict[str, str]:
    """Return the trader details a checkVatApprox answer echoes from the register."""
    return {
        "traderName": trader.name,
        "traderCompanyType": trader.company_type,
        "traderAddress": trader.address,
        "traderStreet": trader.street,
        "traderPostcode": trader.postcode,
        "traderCity": trader.city,
    }
