"""The simulated banks' accounts and the rule that answers a payee-verification request.

Per request, in this order:

1. an IBAN not in ``accounts.json``: ``NOAP`` (no bank in the scheme keeps that account);
2. an account with ``"behaviour": "noap"``: ``NOAP`` (its bank does not take part);
3. the party name equal to the holder's name once both are normalised (:func:`normalise`:
   transliterated to ASCII, lower case, punctuation to spaces, spaces collapsed): ``MTCH``;
4. a similarity of at least :data:`CLOSE_SCORE` (rapidfuzz, the higher of the plain and the
   word-order-free ratio of the normalised names): ``CMTC`` with the holder's name as
   ``matchedName``;
5. anything else: ``NMTC``.

This is the simulator's own small rule, on purpose independent of ``shared.names``, so that
trace30's name matching is tested against a different judgement, as a real bank's would be.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz
from unidecode import unidecode

CLOSE_SCORE = 80.0
BEHAVIOURS = ("normal", "noap", "slow")
IBAN_RE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Account:
    """One account of a simulated bank."""

    iban: str
    name: str
    behaviour: str = "normal"


@dataclass(frozen=True)
class Verdict:
    """The answer to one request: ``result`` is MTCH, CMTC, NMTC or NOAP."""

    result: str
    matched_name: str | None = None
    slow: bool = False


def normalise(name: str) -> str:
    """A name as the simulated banks compare it.

    >>> normalise("  Société  Exemple S.A.R.L. ")
    'societe exemple s a r l'
    """
    return " ".join(_NON_ALNUM.sub(" ", unidecode(name).lower()).split())


def load_accounts(path: Path) -> dict[str, Account]:
    """Read ``accounts.json``; a bad record raises :class:`ValueError`."""
    data = json.loads(path.read_text(encoding="utf-8"))
    accounts: dict[str, Account] = {}
    for record in data["accounts"]:
        unknown = set(record) - {"iban", "name", "behaviour"}
        if unknown:
            raise ValueError(f"unknown account keys: {sorted(unknown)}")
        iban, name = record.get("iban"), record.get("name")
        behaviour = record.get("behaviour", "normal")
        if not isinstance(iban, str) or not IBAN_RE.fullmatch(iban):
            raise ValueError("an account's iban must be a compact IBAN")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("an account's name must be a non-empty string")
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {BEHAVIOURS}")
        accounts[iban] = Account(iban, name, behaviour)
    return accounts


def decide(accounts: dict[str, Account], iban: str, party_name: str) -> Verdict:
    """Answer one request (see the module docstring).

    >>> accts = {"DE89370400440532013000": Account("DE89370400440532013000", "Acme Trading GmbH")}
    >>> decide(accts, "DE89370400440532013000", "ACME trading gmbh").result
    'MTCH'
    >>> decide(accts, "DE89370400440532013000", "Acme Trading")
    Verdict(result='CMTC', matched_name='Acme Trading GmbH', slow=False)
    >>> decide(accts, "DE89370400440532013000", "Zenith Logistics BV").result
    'NMTC'
    >>> decide(accts, "NL91ABNA0417164300", "Acme").result
    'NOAP'
    """
    account = accounts.get(iban)
    if account is None or account.behaviour == "noap":
        return Verdict("NOAP")
    slow = account.behaviour == "slow"
    ours, theirs = normalise(account.name), normalise(party_name)
    if ours == theirs:
        return Verdict("MTCH", slow=slow)
    similarity = max(fuzz.ratio(ours, theirs), fuzz.token_sort_ratio(ours, theirs))
    if similarity >= CLOSE_SCORE:
        return Verdict("CMTC", account.name, slow=slow)
    return Verdict("NMTC", slow=slow)
