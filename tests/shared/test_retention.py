"""Calendar months of retention (shared.retention): month ends clamped, leap years, and the
purge's cutoff agreeing with the purge date shown to staff and clients."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from shared.retention import add_months, purge_after, purge_cutoff


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2025, 8, 31), 6, date(2026, 2, 28)),   # no 29 February in 2026
    (date(2023, 8, 31), 6, date(2024, 2, 29)),   # leap year
    (date(2023, 8, 29), 6, date(2024, 2, 29)),
    (date(2023, 8, 28), 6, date(2024, 2, 28)),
    (date(2025, 3, 31), 6, date(2025, 9, 30)),   # 31 -> a month of 30 days
    (date(2025, 12, 31), 6, date(2026, 6, 30)),  # across the year
    (date(2025, 9, 1), 6, date(2026, 3, 1)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),  # a leap day, a year on
    (date(2024, 2, 29), 48, date(2028, 2, 29)),
    (date(2025, 1, 31), 1, date(2025, 2, 28)),
    (date(2025, 5, 15), 0, date(2025, 5, 15)),
    (date(2024, 3, 31), -1, date(2024, 2, 29)),
    (date(2025, 1, 15), -1, date(2024, 12, 15)),
])
def test_add_months_clamps_to_the_end_of_the_month(day: date, months: int,
                                                   expected: date) -> None:
    assert add_months(day, months) == expected


def test_purge_after_is_midnight_utc_of_the_day_months_on() -> None:
    late = datetime(2025, 8, 31, 23, 59, tzinfo=UTC)
    assert purge_after(late, 6) == datetime(2026, 2, 28, tzinfo=UTC)
    # The day is the UTC day: 1 September 01:00 in Paris is 31 August 23:00 UTC.
    from zoneinfo import ZoneInfo

    paris = datetime(2025, 9, 1, 1, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert purge_after(paris, 6) == datetime(2026, 2, 28, tzinfo=UTC)
    with pytest.raises(ValueError, match="negative"):
        purge_after(late, -1)


@pytest.mark.parametrize("months", [0, 1, 6, 13])
def test_the_purge_cutoff_selects_exactly_the_traders_whose_purge_date_has_come(
        months: int) -> None:
    """For every end day of 2023-2024 and purge times around each month end of 2024-2026:
    ``ended_at < purge_cutoff(now)`` if and only if ``purge_after(ended_at) <= now``."""
    ends = [datetime.combine(date(2023, 1, 1) + timedelta(days=i), time(18), tzinfo=UTC)
            for i in range(731)]
    nows = []
    for year in (2024, 2025, 2026):
        for month in range(1, 13):
            first = datetime(year, month, 1, tzinfo=UTC)
            nows += [first - timedelta(seconds=1), first, first + timedelta(hours=12)]
    for now in nows:
        cutoff = purge_cutoff(now, months)
        for ended in ends:
            assert (ended < cutoff) == (purge_after(ended, months) <= now), (now, ended)
