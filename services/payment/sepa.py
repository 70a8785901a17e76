"""SEPA membership from the project's own table, ``sepa_countries.csv``, dated and sourced.

The table, not schwifty, decides: schwifty's ``in_sepa_zone`` flags New Caledonia, French
Polynesia and Wallis and Futuna, which are outside the SEPA schemes' scope, and misses the
countries admitted since 2024 (Albania, Montenegro, Moldova, North Macedonia, Serbia). The
file's header says where the list comes from and as of when (``as_of``, ``source``); a country
that is not in the file is not in SEPA.

>>> lookup("RS").member, lookup("RS").since
(True, '2025-05')
>>> lookup("NC").member, lookup("US").member
(False, False)
>>> len(table().countries())
41
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

FILE = "sepa_countries.csv"


@dataclass(frozen=True)
class SepaEntry:
    """One row of the table (or, for a code not in it, a non-member with an empty name)."""

    code: str
    name: str
    kind: str  # country | territory
    parent: str | None
    member: bool
    since: str | None
    note: str | None


@dataclass(frozen=True)
class SepaTable:
    """The whole table with its date and source."""

    as_of: str
    source: str
    entries: dict[str, SepaEntry]

    def lookup(self, code: str) -> SepaEntry:
        """The entry for ``code``; a code not in the table is a non-member."""
        entry = self.entries.get(code.upper())
        if entry is None:
            return SepaEntry(code.upper(), "", "country", None, False, None, None)
        return entry

    def countries(self) -> list[str]:
        """The member countries (territories not counted), as the EPC counts them."""
        return sorted(e.code for e in self.entries.values() if e.member and e.kind == "country")


def parse(text: str) -> SepaTable:
    """Read the table: ``#`` comment lines first (``as_of:``, ``source:``), then CSV rows.

    >>> t = parse("# as_of: 2025-05-22\\n# source: x\\ncode,name,kind,parent,sepa,since,note\\n"
    ...           "DE,Germany,country,,yes,,EU\\n")
    >>> t.as_of, t.lookup("de").member
    ('2025-05-22', True)
    """
    meta: dict[str, str] = {}
    rows: list[str] = []
    last: str | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            body = line[1:].strip()
            key, sep, value = body.partition(":")
            if sep and key in ("as_of", "source"):
                meta[key] = value.strip()
                last = key
            elif last == "source" and line.startswith("#   "):
                meta["source"] += " " + body  # the source runs over continuation lines
            else:
                last = None
        elif line.strip():
            rows.append(line)
    if "as_of" not in meta or "source" not in meta:
        raise ValueError(f"{FILE} must say 'as_of:' and 'source:' in its header")
    entries: dict[str, SepaEntry] = {}
    for row in csv.DictReader(rows):
        if row["sepa"] not in ("yes", "no") or row["kind"] not in ("country", "territory"):
            raise ValueError(f"{FILE}: bad row for {row['code']!r}")
        entries[row["code"]] = SepaEntry(
            code=row["code"],
            name=row["name"],
            kind=row["kind"],
            parent=row["parent"] or None,
            member=row["sepa"] == "yes",
            since=row["since"] or None,
            note=row["note"] or None,
        )
    return SepaTable(meta["as_of"], meta["source"], entries)


@functools.cache
def table() -> SepaTable:
    """The table shipped with the service (read once per process)."""
    return parse(resources.files("services.payment").joinpath(FILE).read_text(encoding="utf-8"))


def lookup(code: str) -> SepaEntry:
    """Whether ``code`` (an IBAN's country code) is in SEPA, and what the table says about it."""
    return table().lookup(code)
