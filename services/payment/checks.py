"""The payment-details check: IBAN, BIC, SEPA, holder name, and payee verification if asked.

:class:`PaymentChecker` is what the API calls. For one request it:

1. cleans up and checks the IBAN locally (:mod:`.ibans`: length, format, checksum, national
   check digits, bank code) and the BIC (:mod:`.bics`: format, consistency with the IBAN);
2. looks the country up in the project's SEPA table (:mod:`.sepa`);
3. fingerprints the account (:mod:`.fingerprints`) when the IBAN is well formed;
4. compares ``account_holder`` with ``trader_name`` locally (``shared.names``): ``holder_match``;
5. only with ``verify_payee``, and only for a valid IBAN in SEPA, asks the Verification of Payee
   provider (:mod:`.payee`) whether the account is held by ``account_holder`` (or, without one,
   ``trader_name``), through a circuit breaker and a Redis cache of its answers.

``status`` is ``invalid`` when a hard check fails (``errors`` lists their codes), ``valid``
otherwise (``warnings`` may list codes), and ``unavailable`` only when payee verification was
asked for and the provider gave no answer (``error`` says why); that answer is never cached.
A name the request cannot carry (:class:`shared.outbound.NotSent`) is no answer of the
provider's: it is raised to the API (a 400 naming ``account_holder`` or ``trader_name``), and
the breaker is not told.
A name that does not match is reported in ``holder_match``/``payee`` and ``warnings``; it does
not make the payment details invalid. Every code is in :mod:`.codes`.

An account without an IBAN (``kind`` ``account`` or ``other``, :mod:`.accounts`) gets what can
be checked of it locally (account number, BIC format, the BIC's country against the account's),
its fingerprint and the holder-name comparison; the payee's bank is never asked for it.

Logs carry the masked IBAN (country and last four characters) or the masked account number or
reference (last four characters) only.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata

from services.payment import accounts, bics, codes, ibans, sepa
from services.payment.cache import PayeeCache
from services.payment.fingerprints import Fingerprinter
from services.payment.ibans import FAIL, NOT_AVAILABLE, PASS, WARNING, Check
from services.payment.payee import PayeeAnswer, PayeeVerification
from services.payment.results import (
    Bank,
    ErrorInfo,
    HolderMatch,
    NameResult,
    Payee,
    PaymentCheckResult,
    Status,
)
from shared import names
from shared.breaker import CircuitBreaker
from shared.outbound import NotSent
from shared.upstream import GuardedCall, Retry

log = logging.getLogger(__name__)

BREAKER_KEY = "vop"
#: What a caller is told to wait before asking again after a provider fault, seconds.
RETRY_AFTER_S = 30.0
#: The provider's codes, in the API's words.
PAYEE_RESULTS: dict[str, NameResult] = {"MTCH": "match", "CMTC": "close_match", "NMTC": "no_match",
                 "NOAP": "not_possible"}
PAYEE_WARNINGS = {"CMTC": codes.PAYEE_CLOSE_MATCH, "NMTC": codes.PAYEE_NO_MATCH,
                  "NOAP": codes.PAYEE_NOT_POSSIBLE}
HOLDER_RESULTS: dict[str, NameResult] = {"match": "match", "close": "close_match",
                                         "no_match": "no_match"}


def _directory_source() -> str:
    try:
        return f"schwifty {metadata.version('schwifty')} bank registry"
    except metadata.PackageNotFoundError:  # pragma: no cover - schwifty is always installed
        return "schwifty bank registry"


BANK_SOURCE = _directory_source()


@dataclass(frozen=True)
class CheckRequest:
    """One payment-details check as the API received it (``kind``: :mod:`.accounts`)."""

    iban: str | None = None
    bic: str | None = None
    account_holder: str | None = None
    trader_name: str | None = None
    verify_payee: bool = False
    kind: str = "iban"
    account_number: str | None = None
    country_code: str | None = None
    reference: str | None = None
    provider: str | None = None


_clock: tuple[int, str] = (0, "")


def _now() -> str:
    """The current UTC time to the second, formatted once per second."""
    global _clock
    second = int(time.time())
    if _clock[0] != second:  # a race only formats the same second twice
        _clock = (second, datetime.fromtimestamp(second, UTC).isoformat().replace("+00:00", "Z"))
    return _clock[1]


def holder_match(holder: str | None, trader: str | None, country: str | None) -> HolderMatch:
    """The local pre-check of ``account_holder`` against ``trader_name`` (``shared.names``).

    >>> holder_match("ACME GmbH", "Acme Gesellschaft mit beschränkter Haftung", "DE")["result"]
    'match'
    >>> holder_match(None, "ACME GmbH", "DE")["result"]
    'not_possible'
    """
    if not holder or not trader:
        missing = "account_holder" if not holder else "trader_name"
        return {"result": "not_possible", "matched_name": None, "score": None,
                "detail": f"Not compared: no {missing} was given."}
    m = names.compare(holder, trader, country)
    result = HOLDER_RESULTS[m.verdict]
    detail = {
        "match": "account_holder and trader_name are the same name.",
        "close_match": "account_holder is close to trader_name but not the same: a person "
                       "should look.",
        "no_match": "account_holder is not trader_name: the account may be someone else's.",
    }[result]
    return {"result": result, "matched_name": trader if result == "close_match" else None,
            "score": m.score, "detail": detail}


class PaymentChecker:
    """Checks payment details; one per process, shared by its threads."""

    def __init__(
        self,
        *,
        payee: PayeeVerification,
        cache: PayeeCache,
        breaker: CircuitBreaker,
        fingerprint: Fingerprinter,
        sandbox: bool = False,
    ) -> None:
        self.payee = payee
        self.cache = cache
        self.breaker = breaker
        # One attempt a check, no retry; without the shared breaker (Redis down) the provider
        # is still asked: unlike VIES, it does not block callers for asking too much, so the
        # answer is worth more than the guard.
        self.call = GuardedCall(breaker, Retry(0.0, 0.0, retries=0), name="vop",
                                store_optional=True)
        self.fingerprint = fingerprint
        self.sandbox = sandbox

    def check(self, req: CheckRequest) -> PaymentCheckResult:
        """Check one set of payment details; never raises for a provider fault.

        Raises :class:`shared.outbound.NotSent` when the provider's request cannot be built.
        """
        if req.kind != "iban":
            return self._check_not_iban(req)
        started = time.perf_counter()
        assert req.iban is not None  # the schema requires it for kind iban
        iban = ibans.check(req.iban)
        cc = iban.country_code
        bic, bic_format = bics.check_format(req.bic)
        consistency = bics.check_consistency(bic, bic_format, iban)
        entry = sepa.lookup(cc) if iban.well_formed and cc else None
        sepa_check = _sepa_check(entry)
        checks = [*iban.checks, bic_format, consistency, sepa_check]
        errors = [*iban.errors, *(c.code for c in (bic_format, consistency)
                                  if c.result == FAIL and c.code)]
        warnings = [*iban.warnings, *(c.code for c in (consistency, sepa_check)
                                      if c.result == WARNING and c.code)]
        fingerprint = self.fingerprint(iban.text) if iban.well_formed else None
        holder = holder_match(req.account_holder, req.trader_name, cc)
        if holder["result"] == "close_match":
            warnings.append(codes.HOLDER_CLOSE_MATCH)
        elif holder["result"] == "no_match":
            warnings.append(codes.HOLDER_NO_MATCH)

        status: Status = "invalid" if errors else "valid"
        payee: Payee | None = None
        error: ErrorInfo | None = None
        retry_after: float | None = None
        if req.verify_payee:
            name_field = "account_holder" if req.account_holder else "trader_name"
            name = req.account_holder or req.trader_name or ""
            if status == "invalid":
                payee = _payee_skipped(name_field, "Not asked: the payment details are invalid.")
            elif entry is None or not entry.member:
                payee = _payee_skipped(name_field, "Not asked: Verification of Payee covers "
                                       "accounts in SEPA only.")
                warnings.append(codes.PAYEE_NOT_POSSIBLE)
            else:
                assert fingerprint is not None
                payee, error, retry_after = self._verify(
                    name, name_field, iban.text, bic or (iban.bank.bic if iban.bank else None),
                    fingerprint)
                if error is not None:
                    status = "unavailable"
                elif payee["code"] in PAYEE_WARNINGS:
                    warnings.append(PAYEE_WARNINGS[payee["code"]])

        bank = iban.bank
        result: PaymentCheckResult = {
            "status": status,
            "kind": "iban",
            "iban_masked": ibans.mask(iban.text),
            "account_masked": None,
            "provider": None,
            "country_code": cc,
            "checks": [c.as_dict() for c in checks],
            "bank": {"name": bank.name, "bic": bank.bic, "source": BANK_SOURCE} if bank
            else {"name": None, "bic": None, "source": None},
            "sepa": {
                "member": entry.member if entry else None,
                "as_of": sepa.table().as_of,
                "source": sepa.table().source,
            },
            "holder_match": holder,
            "payee": payee,
            "errors": errors,
            "warnings": warnings,
            "account_fingerprint": fingerprint,
            "error": error,
            "retry_after_s": retry_after,
            "sandbox": self.sandbox,
            "checked_at": _now(),
        }
        if log.isEnabledFor(logging.INFO):
            log.info("payment check", extra={
                "iban": result["iban_masked"],
                "country": cc,
                "status": status,
                "errors": errors,
                "warnings": warnings,
                "payee": payee and payee["code"],
                "fault": error and error["code"],
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            })
        return result

    def _check_not_iban(self, req: CheckRequest) -> PaymentCheckResult:
        """Check an account without an IBAN (``kind`` ``account`` or ``other``): what can be
        checked locally, the fingerprint and the holder's name; never the payee's bank
        (Verification of Payee covers IBANs in SEPA only)."""
        started = time.perf_counter()
        checks: list[Check] = []
        bank: Bank = {"name": None, "bic": None, "source": None}
        cc: str | None = None
        if req.kind == "account":
            assert req.account_number is not None and req.country_code is not None
            cc = req.country_code
            number, number_check = accounts.check_account_number(req.account_number)
            bic, bic_format = bics.check_format(req.bic)
            checks = [number_check, bic_format,
                      accounts.check_bic_country(bic, bic_format, cc)]
            if (uses_iban := accounts.iban_country_check(cc)) is not None:
                checks.append(uses_iban)
            ok = all(c.result != FAIL for c in checks)
            fingerprint = self.fingerprint.account(bic, number) if ok and bic else None
            masked = accounts.mask(number)
            if ok and bic and (name := accounts.bank_names(bic)):
                bank = {"name": name, "bic": bics.full(bic), "source": BANK_SOURCE}
        else:
            assert req.reference is not None
            reference = accounts.compact_reference(req.reference)
            fingerprint = self.fingerprint.other(reference) if reference else None
            masked = accounts.mask(reference)
        errors = [c.code for c in checks if c.result == FAIL and c.code]
        warnings = [c.code for c in checks if c.result == WARNING and c.code]
        holder = holder_match(req.account_holder, req.trader_name, cc)
        if holder["result"] == "close_match":
            warnings.append(codes.HOLDER_CLOSE_MATCH)
        elif holder["result"] == "no_match":
            warnings.append(codes.HOLDER_NO_MATCH)
        payee: Payee | None = None
        if req.verify_payee:
            payee = _payee_skipped(
                "account_holder" if req.account_holder else "trader_name",
                "Not asked: Verification of Payee covers IBAN accounts in SEPA only.")
            warnings.append(codes.PAYEE_NOT_POSSIBLE)
        status: Status = "invalid" if errors else "valid"
        result: PaymentCheckResult = {
            "status": status,
            "kind": req.kind,
            "iban_masked": None,
            "account_masked": masked,
            "provider": req.provider,
            "country_code": cc,
            "checks": [c.as_dict() for c in checks],
            "bank": bank,
            "sepa": {"member": None, "as_of": sepa.table().as_of, "source": sepa.table().source},
            "holder_match": holder,
            "payee": payee,
            "errors": errors,
            "warnings": warnings,
            "account_fingerprint": fingerprint,
            "error": None,
            "retry_after_s": None,
            "sandbox": self.sandbox,
            "checked_at": _now(),
        }
        if log.isEnabledFor(logging.INFO):
            log.info("payment check", extra={
                "kind": req.kind, "account": masked, "country": cc, "status": status,
                "errors": errors, "warnings": warnings,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            })
        return result

    def _verify(
        self, name: str, name_field: str, iban: str, bic: str | None, fingerprint: str
    ) -> tuple[Payee, ErrorInfo | None, float | None]:
        """Ask the provider (or the cache); return the ``payee`` part, an error, a retry-after."""
        key = self.cache.key(fingerprint, name)
        cached = self.cache.get(key)
        if cached is not None:
            return _payee(cached, name_field, "cache"), None, None

        def attempt(timeout_s: float, attempts: int) -> PayeeAnswer:
            # The adapter's own timeouts bound the call; there is no retry to leave time for.
            return self.payee.verify(name=name, iban=iban, bic=bic)

        try:
            run = self.call.run(BREAKER_KEY, math.inf, attempt)
        except NotSent as e:
            # The adapter's "name" is whichever field the name came from.
            fields = {name_field if f == "name" else f: m for f, m in e.fields.items()}
            raise NotSent(str(e), fields) from e
        if run.denied is not None:
            return (_payee_down(name_field),
                    _error(codes.CIRCUIT_OPEN, True, "The payee-verification provider is failing; "
                           "it is not asked again until the circuit closes."),
                    round(run.denied.retry_after_s, 1))
        fault = run.error
        if fault is not None:
            if not fault.retryable:
                log.error("payee-verification provider refused our request: needs attention",
                          extra={"fault": fault.code})
            return (_payee_down(name_field), _error(fault.code, fault.retryable, str(fault)),
                    (fault.retry_after_s or RETRY_AFTER_S) if fault.retryable else None)
        answer = run.value
        assert answer is not None
        self.cache.put(key, answer)
        return _payee(answer, name_field, "vop"), None, None


_SEPA_NOT_CHECKED = Check("sepa", NOT_AVAILABLE, "Not checked: the IBAN is not well formed.")


def _sepa_check(entry: sepa.SepaEntry | None) -> Check:
    """The ``sepa`` check for a table entry (None: the IBAN is not well formed)."""
    return _SEPA_NOT_CHECKED if entry is None else _sepa_check_for(entry.code)


@functools.lru_cache(maxsize=512)
def _sepa_check_for(code: str) -> Check:
    entry = sepa.lookup(code)
    table = sepa.table()
    if entry.member:
        where = f"{entry.name} ({entry.kind} of {entry.parent})" if entry.parent else entry.name
        return Check("sepa", PASS, f"{where} is in SEPA (EPC list as of {table.as_of}).")
    why = f" ({entry.note})" if entry.note else ""
    name = entry.name or entry.code
    return Check("sepa", WARNING, f"{name} is not in SEPA{why} (EPC list as of {table.as_of}).",
                 codes.SEPA_NOT_MEMBER)


def _error(code: str, retryable: bool, message: str) -> ErrorInfo:
    return {"code": code, "retryable": retryable, "message": message}


def _payee(answer: PayeeAnswer, name_field: str, source: str) -> Payee:
    return {
        "result": PAYEE_RESULTS[answer.result],
        "code": answer.result,
        "matched_name": answer.matched_name if answer.result == "CMTC" else None,
        "name_checked": name_field,
        "source": source,
        "detail": {
            "MTCH": "The payee's bank confirms the name.",
            "CMTC": "The payee's bank reports a close match; matched_name is the holder's name.",
            "NMTC": "The payee's bank reports that the account is not held by this name.",
            "NOAP": "The payee's bank could not verify the name.",
        }[answer.result],
    }


def _payee_skipped(name_field: str, detail: str) -> Payee:
    return {"result": "not_possible", "code": None, "matched_name": None,
            "name_checked": name_field, "source": None, "detail": detail}


def _payee_down(name_field: str) -> Payee:
    return {"result": None, "code": None, "matched_name": None, "name_checked": name_field,
            "source": "vop", "detail": "The payee-verification provider gave no answer."}
