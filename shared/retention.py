"""The retention period in calendar months (DSA Art 30(5)), one rule for every place that
needs it: the API's ``purge_after``, the dashboard's purge date and ``trace30 purge``.

The evidence of a trader is kept for ``TRACE30_RETENTION_MONTHS`` calendar months after the
day its relationship ended (UTC), and is purged from the start (00:00 UTC) of the same day
that many months later. A day the later month lacks is its last day: an end on 31 August is
purged from 28 February on (29 February in a leap year), an end on 31 March from 30 September.
Counting in days cannot say this (six months are 181 to 184 days).
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months (negative: minus), the day clamped to the end
    of the month.

    >>> add_months(date(2025, 8, 31), 6), add_months(date(2023, 8, 31), 6)
    (datetime.date(2026, 2, 28), datetime.date(2024, 2, 29))
    >>> add_months(date(2024, 3, 31), -1), add_months(date(2024, 12, 15), 2)
    (datetime.date(2024, 2, 29), datetime.date(2025, 2, 15))
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _check(months: int) -> None:
    if months < 0:
        raise ValueError("the retention period must not be negative")


def purge_after(ended_at: datetime, months: int) -> datetime:
    """From when the purge deletes a trader whose relationship ended at ``ended_at``
    (timezone-aware): 00:00 UTC of the day ``months`` calendar months after the day it ended.

    >>> purge_after(datetime(2025, 8, 31, 17, 30, tzinfo=UTC), 6)
    datetime.datetime(2026, 2, 28, 0, 0, tzinfo=datetime.timezone.utc)
    """
    _check(months)
    day = add_months(ended_at.astimezone(UTC).date(), months)
    return datetime.combine(day, time(), tzinfo=UTC)


def purge_cutoff(now: datetime, months: int) -> datetime:
    """The instant before which a relationship must have ended for the purge to delete the
    trader at ``now``: ``ended_at < purge_cutoff(now, m)`` exactly when
    ``purge_after(ended_at, m) <= now``.

    :func:`purge_after` never decreases as the end day grows, so the traders due are those
    that ended up to the last day ``d`` with ``add_months(d, m) <= today``; a month's clamped
    days (29 to 31 August, all purged on 28 February) make ``d`` up to three days later than
    ``today`` minus ``m`` months.

    >>> purge_cutoff(datetime(2026, 2, 28, 9, tzinfo=UTC), 6)  # 29, 30 and 31 August are due
    datetime.datetime(2025, 9, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> purge_cutoff(datetime(2026, 2, 27, 23, tzinfo=UTC), 6)
    datetime.datetime(2025, 8, 28, 0, 0, tzinfo=datetime.timezone.utc)
    """
    _check(months)
    today = now.astimezone(UTC).date()
    last = add_months(today, -months)
    while add_months(last + timedelta(days=1), months) <= today:
        last += timedelta(days=1)
    return datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
