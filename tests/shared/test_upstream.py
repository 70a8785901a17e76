"""The backoff and the pooled session every outside call uses (``shared.upstream``)."""

from __future__ import annotations

from shared.upstream import backoff_s, new_session


def test_backoff_grows_with_jitter_up_to_the_maximum() -> None:
    for attempt, ceiling in ((1, 5), (2, 10), (3, 20), (10, 2560), (11, 3600), (500, 3600)):
        waits = [backoff_s(attempt, 5, 3600) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1


def test_a_small_maximum_bounds_every_pause() -> None:
    """Past the doubling, the pause stays between half the maximum and the maximum."""
    for attempt in range(1, 20):
        assert all(0.05 <= backoff_s(attempt, 0.1, 0.1) <= 0.1 for _ in range(20))


def test_a_session_is_pooled_without_retries_and_names_its_client() -> None:
    session = new_session("trace30-test/1", 7, accept="application/json")
    try:
        adapter = session.get_adapter("https://example.invalid/")
        assert adapter.max_retries.total == 0
        assert adapter._pool_maxsize == 7  # type: ignore[attr-defined]
        assert session.headers["User-Agent"] == "trace30-test/1"
        assert session.headers["Accept"] == "application/json"
        assert session.get_adapter("http://example.invalid/") is adapter
    finally:
        session.close()
