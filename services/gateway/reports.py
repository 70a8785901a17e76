"""Transparency figures from the evidence log: ``trace30 report`` and
``GET /v1/reports/traceability``.

Per period (a month or a day, UTC) and country, for one tenant:

- ``traders_submitted``: traders with at least one submission (an ``automated`` verification,
  first checks and re-verifications alike) created in the period;
- ``verified``, ``sent_to_review``, ``rejected``: verifications settled in the period with that
  verdict, automated or a reviewer's decision (a ``manual`` verification);
- ``reviewer_approved``, ``reviewer_rejected``, ``reviewer_requested_information``: reviewers'
  decisions taken in the period (``reviews``);
- ``corrections_requested``, ``suspended``: statements of reasons of that kind (Art 17) issued
  in the period;
- ``reinstated``: reinstatements recorded in the period (``staff_actions``);
- ``complaints_received``; ``complaints_decided`` (``complaints_upheld`` +
  ``complaints_rejected``): complaints received, decided in the period;
- ``median_decision_s``: the median, over the verifications settled ``verified`` or
  ``rejected`` in the period, of the seconds from the submission (for a reviewer's decision:
  the automated verification it settles) to the decision; null when there was none;
- ``reasons`` and ``items``: for the verifications settled in the period, how many carried each
  reason code that rejects or sends to review (severity ``error`` or ``warning``), and how many
  had such a reason on each Art 30(1) item.

**Country**: the registration's country (``registration_key``), else the VAT number's
(``vat_key``; ``EL`` is Greece, ``GR``), else what the redacted submission (kept in clear)
says: registration, VAT number, address; else ``unknown``. A statement, review or complaint
counts in the country of the verification it names, else of the trader's first verification.
Nothing sealed is opened.

**Reproducible**: every figure is read from the evidence log's own records, never from a cache,
each event by its own timestamp; nothing depends on the time the report runs, and the rows are
sorted, so a closed period gives the same report every time (until the purge deletes a trader,
Art 30(5)). The rows are read with plain SELECTs and counted in Python (the same on SQLite and
PostgreSQL; medians included).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from services.gateway.evidence.schema import (
    complaints_table,
    reviews_table,
    staff_actions_table,
    statements_table,
    verifications_table,
)

PERIODS = ("month", "day")
FORMATS = ("json", "csv")
#: The longest report, in days (a day's rows for ten years would be a report nobody reads).
MAX_DAYS = 3700
UNKNOWN = "unknown"
TOTAL = "total"
ALL = "all"

#: The counted figures, in the report's order (``median_decision_s``, ``reasons`` and
#: ``items`` follow them).
COUNTS = ("traders_submitted", "verified", "sent_to_review", "rejected", "reviewer_approved",
          "reviewer_rejected", "reviewer_requested_information", "corrections_requested",
          "suspended", "reinstated", "complaints_received", "complaints_decided",
          "complaints_upheld", "complaints_rejected")
_VERDICT_FIGURE = {"verified": "verified", "needs_review": "sent_to_review",
                   "rejected": "rejected"}
_REVIEW_FIGURE = {"approve": "reviewer_approved", "reject": "reviewer_rejected",
                  "request_information": "reviewer_requested_information"}
_STATEMENT_FIGURE = {"correction_request": "corrections_requested", "suspension": "suspended"}
_CHUNK = 500
#: The reasons counted: those that rejected a trader or sent it to a person (not the upstream
#: faults of a pending verdict, nor what was only recorded).
COUNTED_SEVERITIES = ("error", "warning")


class ReportError(ValueError):
    """A report that cannot be made as asked: ``field`` names what is wrong."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def check_range(start: date, end: date, period: str) -> None:
    """Refuse an empty or too long range, or an unknown period (:class:`ReportError`)."""
    if period not in PERIODS:
        raise ReportError("period", f"Must be one of: {', '.join(PERIODS)}.")
    if end < start:
        raise ReportError("to", "Must not be before 'from'.")
    if (end - start).days >= MAX_DAYS:
        raise ReportError("to", f"The report may cover at most {MAX_DAYS} days.")


def period_of(at: datetime, period: str) -> str:
    """The period an event falls in: ``2025-03`` (month) or ``2025-03-07`` (day), UTC.

    >>> period_of(datetime(2025, 3, 31, 23, 30, tzinfo=UTC), "month")
    '2025-03'
    """
    at = at.astimezone(UTC)
    return f"{at:%Y-%m}" if period == "month" else f"{at:%Y-%m-%d}"


def _country_code(text: Any) -> str | None:
    if not isinstance(text, str) or len(text) < 2 or not text[:2].isalpha():
        return None
    code = text[:2].upper()
    return "GR" if code == "EL" else code


def country_of(registration_key: str | None, vat_key: str | None,
               submission: dict[str, Any] | None) -> str:
    """The country a verification counts in (see the module's doc).

    >>> country_of("DE:HRB:12345", "FR123", None), country_of(None, "EL094259216", None)
    ('DE', 'GR')
    >>> country_of(None, None, {"vat_number": "nl0044", "address": {"country_code": "BE"}})
    'NL'
    >>> country_of(None, None, {}), country_of(":HRB:1", None, None)
    ('unknown', 'unknown')
    """
    sub: dict[str, Any] = submission if isinstance(submission, dict) else {}
    reg: dict[str, Any] = sub["registration"] if isinstance(sub.get("registration"), dict) else {}
    address: dict[str, Any] = sub["address"] if isinstance(sub.get("address"), dict) else {}
    for candidate in ((registration_key or "").split(":")[0], vat_key,
                      reg.get("country_code"), sub.get("vat_number"),
                      address.get("country_code")):
        code = _country_code(candidate)
        if code:
            return code
    return UNKNOWN


@dataclass
class _Bucket:
    counts: Counter[str] = field(default_factory=Counter)
    traders: set[str] = field(default_factory=set)
    decision_s: list[float] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)

    def row(self) -> dict[str, Any]:
        figures: dict[str, Any] = {name: self.counts[name] for name in COUNTS}
        figures["traders_submitted"] = len(self.traders)
        figures["median_decision_s"] = (round(statistics.median(self.decision_s), 3)
                                        if self.decision_s else None)
        figures["reasons"] = dict(sorted(self.reasons.items()))
        figures["items"] = dict(sorted(self.items.items()))
        return figures


@dataclass
class Report:
    """The figures of one tenant for ``start`` … ``end`` (whole UTC days, both included)."""

    tenant: str
    start: date
    end: date
    period: str
    closed: bool
    rows: list[dict[str, Any]]
    totals: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "from": self.start.isoformat(),
                "to": self.end.isoformat(), "period": self.period, "closed": self.closed,
                "rows": self.rows, "totals": self.totals}

    def csv_rows(self) -> Iterator[tuple[str, str, str, Any]]:
        """``(period, country, figure, value)``: one line a figure, reason codes as
        ``reason:CODE``, items as ``item:30(1)(c)``; the totals last (``total``, ``all``)."""
        for row in [*self.rows, {"period": TOTAL, "country": ALL, **self.totals}]:
            for name in (*COUNTS, "median_decision_s"):
                value = row[name]
                yield row["period"], row["country"], name, "" if value is None else value
            for code, n in row["reasons"].items():
                yield row["period"], row["country"], f"reason:{code}", n
            for item, n in row["items"].items():
                yield row["period"], row["country"], f"item:{item}", n

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["period", "country", "figure", "value"])
        writer.writerows(self.csv_rows())
        return out.getvalue()


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(set(values))
    for i in range(0, len(ordered), _CHUNK):
        yield ordered[i:i + _CHUNK]


class _Countries:
    """The country of verifications and traders, looked up once each."""

    def __init__(self, conn: sa.Connection, tenant: str) -> None:
        self.conn, self.tenant = conn, tenant
        self.of_verification: dict[str, str] = {}
        self.created_at: dict[str, datetime] = {}
        self.of_trader: dict[str, str] = {}
        self.settles: dict[str, str] = {}

    def remember(self, row: Any) -> None:
        self.of_verification[row.id] = country_of(row.registration_key, row.vat_key,
                                                  row.submission)
        self.created_at[row.id] = row.created_at
        if getattr(row, "settles_verification_id", None):
            self.settles[row.id] = row.settles_verification_id

    def load_verifications(self, ids: Iterable[str]) -> None:
        t = verifications_table
        for chunk in _chunks(i for i in ids if i and i not in self.of_verification):
            for row in self.conn.execute(
                    sa.select(t.c.id, t.c.registration_key, t.c.vat_key, t.c.submission,
                              t.c.created_at)
                    .where(t.c.tenant_id == self.tenant, t.c.id.in_(chunk))):
                self.remember(row)

    def load_traders(self, trader_ids: Iterable[str]) -> None:
        """Each trader's country: that of its first verification (by creation, then id)."""
        t = verifications_table
        for chunk in _chunks(i for i in trader_ids if i not in self.of_trader):
            rows = self.conn.execute(
                sa.select(t.c.trader_id, t.c.registration_key, t.c.vat_key, t.c.submission)
                .where(t.c.tenant_id == self.tenant, t.c.trader_id.in_(chunk))
                .order_by(t.c.trader_id, t.c.created_at, t.c.id))
            for row in rows:
                if row.trader_id not in self.of_trader:
                    self.of_trader[row.trader_id] = country_of(row.registration_key,
                                                               row.vat_key, row.submission)

    def country(self, verification_id: str | None, trader_id: str) -> str:
        """The verification's country; a reviewer's (``manual``) verification that says none
        counts in that of the verification it settles; else the trader's."""
        for vid in (verification_id, self.settles.get(verification_id or "")):
            if vid and self.of_verification.get(vid, UNKNOWN) != UNKNOWN:
                return self.of_verification[vid]
        return self.of_trader.get(trader_id, UNKNOWN)


def traceability(engine: sa.Engine, *, tenant: str, start: date, end: date,
                 period: str = "month", today: date | None = None) -> Report:
    """The report of ``tenant`` from ``start`` to ``end`` (UTC days, both included).

    ``today`` (the caller's date, UTC) only says whether the range is ``closed`` (ended before
    it); the figures never depend on it.
    """
    check_range(start, end, period)
    lo = datetime.combine(start, time.min, UTC)
    hi = datetime.combine(end + timedelta(days=1), time.min, UTC)
    t, rv, st = verifications_table, reviews_table, statements_table
    sa_, cp = staff_actions_table, complaints_table
    events: list[tuple[str, str | None, str, datetime, Any]] = []  # figure, vid, trader, at, x
    with engine.connect() as conn:
        countries = _Countries(conn, tenant)
        # verifications created (submissions) or settled (outcomes) in the range
        rows = conn.execute(
            sa.select(t.c.id, t.c.trader_id, t.c.created_at, t.c.settled_at, t.c.state,
                      t.c.verdict, t.c.source, t.c.settles_verification_id, t.c.reasons,
                      t.c.registration_key, t.c.vat_key, t.c.submission)
            .where(t.c.tenant_id == tenant,
                   sa.or_(sa.and_(t.c.created_at >= lo, t.c.created_at < hi),
                          sa.and_(t.c.settled_at >= lo, t.c.settled_at < hi)))
            .order_by(t.c.created_at, t.c.id)).all()
        for row in rows:
            countries.remember(row)
        countries.load_verifications(r.settles_verification_id for r in rows
                                     if r.source == "manual" and r.settles_verification_id)
        for row in rows:
            if row.source == "automated" and lo <= row.created_at < hi:
                events.append(("submitted", row.id, row.trader_id, row.created_at, None))
            if row.state == "settled" and row.settled_at and lo <= row.settled_at < hi:
                events.append(("settled", row.id, row.trader_id, row.settled_at, row))
        reviews = conn.execute(
            sa.select(rv.c.trader_id, rv.c.decision, rv.c.decided_at,
                      rv.c.settles_verification_id)
            .where(rv.c.tenant_id == tenant, rv.c.decided_at >= lo, rv.c.decided_at < hi)
            .order_by(rv.c.decided_at, rv.c.id)).all()
        events += [(_REVIEW_FIGURE.get(r.decision, ""), r.settles_verification_id, r.trader_id,
                    r.decided_at, None) for r in reviews]
        statements = conn.execute(
            sa.select(st.c.trader_id, st.c.kind, st.c.created_at, st.c.verification_id)
            .where(st.c.tenant_id == tenant, st.c.created_at >= lo, st.c.created_at < hi)
            .order_by(st.c.created_at, st.c.id)).all()
        events += [(_STATEMENT_FIGURE.get(s.kind, ""), s.verification_id, s.trader_id,
                    s.created_at, None) for s in statements]
        actions = conn.execute(
            sa.select(sa_.c.trader_id, sa_.c.at, sa_.c.verification_id)
            .where(sa_.c.tenant_id == tenant, sa_.c.action == "reinstate",
                   sa_.c.at >= lo, sa_.c.at < hi)
            .order_by(sa_.c.at, sa_.c.id)).all()
        events += [("reinstated", a.verification_id, a.trader_id, a.at, None) for a in actions]
        complaints = conn.execute(
            sa.select(cp.c.trader_id, cp.c.status, cp.c.received_at, cp.c.decided_at,
                      st.c.verification_id)
            .select_from(cp.outerjoin(st, sa.and_(st.c.id == cp.c.statement_id,
                                                  st.c.tenant_id == cp.c.tenant_id)))
            .where(cp.c.tenant_id == tenant,
                   sa.or_(sa.and_(cp.c.received_at >= lo, cp.c.received_at < hi),
                          sa.and_(cp.c.decided_at >= lo, cp.c.decided_at < hi)))
            .order_by(cp.c.received_at, cp.c.id)).all()
        for c in complaints:
            if lo <= c.received_at < hi:
                events.append(("complaints_received", c.verification_id, c.trader_id,
                               c.received_at, None))
            if c.decided_at and lo <= c.decided_at < hi and c.status in ("upheld", "rejected"):
                events.append(("complaints_decided", c.verification_id, c.trader_id,
                               c.decided_at, c.status))
        countries.load_verifications(vid for _, vid, _, _, _ in events if vid)
        countries.load_verifications(countries.settles.values())
        countries.load_traders(trader for _, vid, trader, _, _ in events
                               if countries.country(vid, trader) == UNKNOWN)
    buckets: defaultdict[tuple[str, str], _Bucket] = defaultdict(_Bucket)
    total = _Bucket()
    for figure, vid, trader_id, at, extra in events:
        if not figure:
            continue
        key = (period_of(at, period), countries.country(vid, trader_id))
        for bucket in (buckets[key], total):
            _count(bucket, figure, trader_id, extra, countries)
    rows_out = [{"period": p, "country": c, **buckets[(p, c)].row()}
                for p, c in sorted(buckets)]
    closed = today is not None and end < today
    return Report(tenant, start, end, period, closed, rows_out, total.row())


def _count(bucket: _Bucket, figure: str, trader_id: str, extra: Any,
           countries: _Countries) -> None:
    if figure == "submitted":
        bucket.traders.add(trader_id)
    elif figure == "settled":
        row = extra
        name = _VERDICT_FIGURE.get(row.verdict or "")
        if name:
            bucket.counts[name] += 1
        if row.verdict in ("verified", "rejected"):
            submitted = countries.created_at.get(row.settles_verification_id or "",
                                                 row.created_at) \
                if row.source == "manual" else row.created_at
            bucket.decision_s.append((row.settled_at - submitted).total_seconds())
        reasons = [r for r in (row.reasons if isinstance(row.reasons, list) else [])
                   if isinstance(r, dict) and r.get("severity") in COUNTED_SEVERITIES]
        codes = {str(r["code"]) for r in reasons if r.get("code")}
        items = {str(r["item"]) for r in reasons if r.get("item")}
        bucket.reasons.update(codes)
        bucket.items.update(items)
    elif figure == "complaints_decided":
        bucket.counts["complaints_decided"] += 1
        bucket.counts[f"complaints_{extra}"] += 1
    else:
        bucket.counts[figure] += 1
