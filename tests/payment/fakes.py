"""A payee-verification provider for unit tests of the check logic (``PAYEE`` in the config).

It keeps the adapter contract (``tests/contract/test_adapters.py``): a fault is an
:class:`~shared.upstream.UpstreamError`, and an answer slower than the call's ``timeout_s`` is a
timeout when the timeout passes."""

from __future__ import annotations

from services.payment.payee import PayeeAnswer
from tests.fakes import answer_after


class FakePayee:
    """Raises ``error`` or answers ``answer`` (after ``delay_s``); counts calls."""

    def __init__(self, error: Exception | None = None, answer: PayeeAnswer | None = None,
                 delay_s: float = 0.0) -> None:
        self.error = error
        self.answer = answer or PayeeAnswer("MTCH")
        self.delay_s = delay_s
        self.calls: list[dict] = []

    def verify(self, *, name: str, iban: str, bic: str | None = None,
               timeout_s: float | None = None) -> PayeeAnswer:
        self.calls.append({"name": name, "iban": iban, "bic": bic})
        answer_after(self.delay_s, timeout_s, "the payee-verification provider")
        if self.error:
            raise self.error
        return self.answer

    def ready(self) -> None:
        pass
