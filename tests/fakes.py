"""What the fakes of outside systems share (``tests/<service>/fakes.py``): the adapter contract's
timeout (``tests/contract/test_adapters.py``)."""

from __future__ import annotations

import time

from shared.upstream import Fault, UpstreamError


def answer_after(delay_s: float, timeout_s: float | None, title: str) -> None:
    """Take ``delay_s`` to answer, as an upstream would; past the call's ``timeout_s`` the call
    is a timeout when the timeout passes, as a real adapter's would be."""
    if not delay_s:
        return
    if timeout_s is not None and delay_s > timeout_s:
        time.sleep(timeout_s)
        raise UpstreamError(f"{title} did not answer in time", Fault.TIMEOUT)
    time.sleep(delay_s)
