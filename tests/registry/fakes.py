"""A register for unit tests of the check logic, chosen by configuration (``REGISTERS``).

It keeps the adapter contract (``tests/contract/test_adapters.py``): a fault is an
:class:`~shared.upstream.UpstreamError`, and an answer slower than the lookup's ``timeout_s``
is a timeout when the timeout passes."""

from __future__ import annotations

from services.registry.registers import RegisterRecord
from shared.upstream import UpstreamError
from tests.fakes import answer_after


class FakeGleif:
    """Answers an inactive record (or raises ``error``) after ``delay_s``; records each ask."""

    source = "gleif"
    title = "Fake GLEIF"

    def __init__(self, error: UpstreamError | None = None, delay_s: float = 0.0) -> None:
        self.error = error
        self.delay_s = delay_s
        self.asked: list[tuple[str, str, float | None]] = []

    def lookup(self, *, kind: str, number: str,
               timeout_s: float | None = None) -> RegisterRecord | None:
        self.asked.append((kind, number, timeout_s))
        answer_after(self.delay_s, timeout_s, self.title)
        if self.error is not None:
            raise self.error
        return RegisterRecord(status="inactive", status_raw="RETIRED/INACTIVE",
                              registered_name="Fake SE", url="https://example.invalid/fake")
