"""The per-process index of request bodies already validated: bounded, least recently used out."""

from __future__ import annotations

from services.gateway.verifications import BodyIndex


def test_the_least_recently_used_body_goes_first() -> None:
    index = BodyIndex(size=2)
    index.put(b"a", "fp-a")
    index.put(b"b", "fp-b")
    assert index.get(b"a") == "fp-a"  # a is now the most recently used
    index.put(b"c", "fp-c")
    assert index.get(b"b") is None
    assert (index.get(b"a"), index.get(b"c")) == ("fp-a", "fp-c")
