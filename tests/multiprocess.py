"""Run a function in several OS processes at once (``spawn``: nothing inherited but arguments).

:func:`together` starts one process per argument tuple, each calling ``target(barrier,
*args)``; the target does its own set-up (an engine, a connection: nothing is shared with the
test's process), waits at the barrier so that the processes race for real, and returns a
picklable result. The results come back in the order of ``args``; a process that raises, dies
or does not answer within the timeout fails the test with what happened.

Targets live in a module (not a test file) so that the spawned interpreter can import them.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Barrier
from typing import Any

#: How long a process may take to start (imports on a busy machine) and reach the barrier.
START_TIMEOUT_S = 60.0


def _run(target: Callable[..., Any], index: int, barrier: Barrier,
         results: multiprocessing.Queue, args: tuple[Any, ...]) -> None:
    try:
        results.put((index, "ok", target(barrier, *args)))
    except BaseException:
        barrier.abort()  # the others do not wait for this one
        results.put((index, "error", traceback.format_exc()))


def together(target: Callable[..., Any], args: Sequence[tuple[Any, ...]],
             timeout_s: float = 60.0) -> list[Any]:
    """``target(barrier, *a)`` for each ``a`` of ``args``, each in a process of its own."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args), timeout=START_TIMEOUT_S)
    results: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_run, args=(target, i, barrier, results, a), daemon=True)
             for i, a in enumerate(args)]
    for proc in procs:
        proc.start()
    found: dict[int, Any] = {}
    errors: list[str] = []
    end = time.monotonic() + START_TIMEOUT_S + timeout_s
    try:
        while len(found) + len(errors) < len(procs):
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(procs) - len(found)} process(es) did not answer")
            try:
                index, status, value = results.get(timeout=min(left, 1.0))
            except queue_module.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise AssertionError(f"a process died (exit codes {dead})") from None
                continue
            if status == "ok":
                found[index] = value
            else:
                errors.append(value)
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    assert not errors, "\n".join(errors)
    return [found[i] for i in range(len(procs))]
