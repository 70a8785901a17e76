"""What the registry service's format core costs on top of python-stdnum, in the same run.

A mixed batch of 10,000 numbers (valid, wrong check digit, wrong length, with spaces and
separators) of every kind python-stdnum covers is validated twice: through the service's core
(``kinds.resolve`` then ``kinds.check_format``, as ``POST /v1/registry/check`` does before any
lookup, building the same result object) and by calling the stdnum module's ``validate``
directly. Prints both rates and their ratio (target >= 0.8), then, for information, the rate
with the kind inferred from the number's shape and the rate of the project's own formats.

Run: ``make bench`` or ``.venv/bin/python bench/registry_formats.py``.
"""

from __future__ import annotations

import importlib
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stdnum.exceptions import ValidationError

from services.registry import kinds

N = 10_000
ROUNDS = 9
TARGET = 0.8

# (country, kind): numbers as traders type them, valid and not
SAMPLES: dict[tuple[str | None, str], list[str]] = {
    (None, "lei"): ["529900GRZ2BQY5ZM9N49", "5299 00GR Z2BQ Y5ZM 9N48", "529900GRZ2BQY5ZM9N4"],
    ("AT", "firmenbuchnummer"): ["FN 122119m", "122119m", "m123123"],
    ("BE", "enterprise_number"): ["0403.019.261", "0403 019 262", "403019261"],
    ("BG", "eik"): ["175 074 752", "175074751"],
    ("CH", "uid"): ["CHE-100.155.212", "CHE-100.155.213"],
    ("CZ", "ico"): ["25123891", "25123890"],
    ("DK", "cvr"): ["13 58 56 28", "13585627", "1358562"],
    ("EE", "registrikood"): ["10137025", "10137026"],
    ("ES", "cif"): ["J-99216582", "J99216583"],
    ("ES", "nif"): ["54362315-K", "54362315Z"],
    ("FI", "ytunnus"): ["2077474-0", "2077474-1"],
    ("FR", "siren"): ["552 008 443", "552 008 442", "55200844"],
    ("FR", "siret"): ["732 829 320 00074", "73282932000075"],
    ("FR", "rcs"): ["RCS Nancy B 323 159 715", "RCS Nancy B 323 159 716"],
    ("GR", "afm"): ["094259216", "123456781"],
    ("HR", "oib"): ["33392005961", "33392005962"],
    ("HU", "adoszam"): ["12892312", "12892313"],
    ("IS", "kennitala"): ["450401-3150", "530575-0299"],
    ("IT", "partita_iva"): ["IT 00743110157", "00743110158"],
    ("LI", "peid"): ["1234567", "1234567890123"],
    ("NO", "orgnr"): ["988 077 917", "988 077 918"],
    ("NO", "mva"): ["NO 995 525 828 MVA", "NO 995 525 829 MVA"],
    ("PL", "regon"): ["192598184", "192598183"],
    ("PL", "nip"): ["856-734-62-15", "8567346216"],
    ("PT", "nipc"): ["PT 501 964 843", "501964842"],
    ("RO", "cui"): ["RO 18547290", "18547291"],
    ("RO", "onrc"): ["J52/750/2012", "X52/750/2012"],
    ("SE", "orgnr"): ["123456-7897", "1234567891"],
    ("SI", "maticna"): ["5300231", "5300232"],
}
OWN: dict[tuple[str | None, str], list[str]] = {
    ("GB", "company_number"): ["SC123456", "6402", "XX123456"],
    ("NL", "kvk"): ["6959 9084", "6959908"],
    ("PL", "krs"): ["KRS 0000012345", "12345678901"],
    ("IT", "rea"): ["MI-1234567", "XX-1"],
    ("DE", "handelsregisternummer"): ["Aachen HRA 11223", "Atlantis HRB 1"],
}
#: The stdnum module behind each kind (the legal-entity wrappers call the same module). stdnum
#: has no IČO module: for CZ ``ico`` (the project's ``formats/cz_ico.py``) the baseline is
#: ``stdnum.cz.dic``, whose legal-entity rule is the same mod-11 check over the same 8 digits.
MODULES = {
    (None, "lei"): "stdnum.lei", ("AT", "firmenbuchnummer"): "stdnum.at.businessid",
    ("BE", "enterprise_number"): "stdnum.be.vat", ("BG", "eik"): "stdnum.bg.vat",
    ("CH", "uid"): "stdnum.ch.uid", ("CZ", "ico"): "stdnum.cz.dic", ("DK", "cvr"): "stdnum.dk.cvr",
    ("EE", "registrikood"): "stdnum.ee.registrikood", ("ES", "cif"): "stdnum.es.cif",
    ("ES", "nif"): "stdnum.es.nif", ("FI", "ytunnus"): "stdnum.fi.ytunnus",
    ("FR", "siren"): "stdnum.fr.siren", ("FR", "siret"): "stdnum.fr.siret",
    ("FR", "rcs"): "stdnum.fr.rcs", ("GR", "afm"): "stdnum.gr.vat", ("HR", "oib"): "stdnum.hr.oib",
    ("HU", "adoszam"): "stdnum.hu.anum", ("IS", "kennitala"): "stdnum.is_.kennitala",
    ("IT", "partita_iva"): "stdnum.it.iva", ("LI", "peid"): "stdnum.li.peid",
    ("NO", "orgnr"): "stdnum.no.orgnr", ("NO", "mva"): "stdnum.no.mva",
    ("PL", "regon"): "stdnum.pl.regon", ("PL", "nip"): "stdnum.pl.nip",
    ("PT", "nipc"): "stdnum.pt.nif", ("RO", "cui"): "stdnum.ro.cui",
    ("RO", "onrc"): "stdnum.ro.onrc", ("SE", "orgnr"): "stdnum.se.orgnr",
    ("SI", "maticna"): "stdnum.si.maticna",
}


def batch(samples: dict[tuple[str | None, str], list[str]]) -> list[tuple[str | None, str, str]]:
    """N (country, kind, number) triples drawn evenly from ``samples``, shuffled."""
    rows = [(c, k, n) for (c, k), numbers in samples.items() for n in numbers]
    rng = random.Random(30)  # noqa: S311 - a reproducible mix, not a secret
    return [rng.choice(rows) for _ in range(N)]


def rates(*runs: Callable[[], object]) -> list[float]:
    """Numbers per second of each run over the batch: best of ``ROUNDS``, the runs interleaved
    round by round so that a busy machine slows them alike."""
    best = [float("inf")] * len(runs)
    for _ in range(ROUNDS):
        for i, run in enumerate(runs):
            started = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - started)
    return [N / b for b in best]


def main() -> int:
    mixed = batch(SAMPLES)
    validators = {key: importlib.import_module(name).validate for key, name in MODULES.items()}
    stdnum_jobs = [(validators[(c, k)], n) for c, k, n in mixed]

    def through_stdnum() -> int:
        ok = 0
        for validate, number in stdnum_jobs:
            try:
                validate(number)
                ok += 1
            except ValidationError:
                pass
        return ok

    def through_core(rows: list[tuple[str | None, str, str]], infer: bool = False) -> int:
        ok = 0
        for country, kind, number in rows:
            try:
                found = kinds.resolve(country, None if infer else kind, number)
            except ValueError:  # KindError, NoKindFits: answered 400 or invalid
                continue
            if found is not None and kinds.check_format(found, number).format_valid:
                ok += 1
        return ok

    assert through_core(mixed) == through_stdnum(), "the core and stdnum disagree"
    own = batch(OWN)
    stdnum_rate, core_rate, inferred_rate, own_rate = rates(
        through_stdnum,
        lambda: through_core(mixed),
        lambda: through_core(mixed, infer=True),
        lambda: through_core(own),
    )
    ratio = core_rate / stdnum_rate
    print(f"batch: {N:,} numbers of {len(SAMPLES)} kinds python-stdnum covers "
          f"({through_stdnum():,} valid), best of {ROUNDS} rounds; both paths agree")
    print(f"python-stdnum directly : {stdnum_rate:>10,.0f} numbers/s")
    print(f"service core           : {core_rate:>10,.0f} numbers/s")
    print(f"ratio core/stdnum      : {ratio:>10.2f}   (target >= {TARGET})")
    print(f"core, kind inferred    : {inferred_rate:>10,.0f} numbers/s (information)")
    print(f"core, own formats      : {own_rate:>10,.0f} numbers/s (information, "
          f"{len(OWN)} kinds)")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
