"""An in-memory VIES for unit tests of the check logic: scripted answers, counted calls.

It keeps the adapter contract (``tests/contract/test_adapters.py``): a fault is an
:class:`~shared.upstream.UpstreamError`, and an answer slower than the call's ``timeout_s`` is
a timeout when the timeout passes."""

from __future__ import annotations

import threading
from collections import deque
from datetime import date

from services.vat.vies import TraderQuery, ViesAnswer
from shared.outbound import NotSent
from shared.upstream import UpstreamError
from tests.fakes import answer_after


class FakeVies:
    """Answers from a script per number (``"DE136695976"`` → answers/errors, in order).

    The last scripted item repeats. Unknown numbers are valid with name ``ACME``.
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.scripts: dict[str, deque[ViesAnswer | UpstreamError | NotSent]] = {}
        self.calls: list[dict] = []
        self.delay_s = delay_s
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def script(self, vat_number: str, *items: ViesAnswer | UpstreamError | NotSent | bool) -> None:
        cc, number = vat_number[:2], vat_number[2:]
        self.scripts[vat_number] = deque(
            answer(cc, number, valid=i) if isinstance(i, bool) else i for i in items
        )

    def ready(self) -> None:
        return None

    def check(self, *, country_code: str, number: str, trader: TraderQuery | None = None,
              requester: tuple[str, str] | None = None,
              timeout_s: float | None = None) -> ViesAnswer:
        with self._lock:
            self.calls.append({"cc": country_code, "number": number, "trader": trader,
                               "requester": requester, "timeout_s": timeout_s})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            answer_after(self.delay_s, timeout_s, "VIES")
            script = self.scripts.get(country_code + number)
            if not script:
                return answer(country_code, number)
            item = script.popleft() if len(script) > 1 else script[0]
            if isinstance(item, UpstreamError | NotSent):
                raise item
            return item
        finally:
            with self._lock:
                self.in_flight -= 1


def answer(cc: str, number: str, valid: bool = True, name: str | None = "ACME",
           address: str | None = "1 Main St") -> ViesAnswer:
    """A VIES answer for tests."""
    return ViesAnswer(cc, number if valid else "", valid, date(2026, 11, 28),
                      name if valid else None, address if valid else None)
