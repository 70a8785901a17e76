"""Behaviour knobs and run-time counters of the payee-verification simulator.

One :class:`SimulatorState` lives in ``app.extensions["payee_simulator"]``; counters are kept
under a lock, per process (run the simulator as one process with threads). The counters never
hold an IBAN or a name.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .accounts import Account

#: ``fail`` modes: every request answered with this fault instead of a verdict.
FAIL_MODES = ("http_500", "http_503", "bad_response")

#: The knobs and their defaults.
DEFAULT_CONFIG: dict[str, Any] = {
    "latency_ms": 0,  # delay of every answer
    "fail": None,  # None, or one of FAIL_MODES
    "slow_seconds": 30.0,  # delay of the accounts whose behaviour is "slow"
}


class ConfigError(ValueError):
    """A knob has an unknown name or an unacceptable value."""


def _number(key: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{key} must be a number >= 0")
    return value


def merge_config(patch: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return ``base`` (default: the defaults) with ``patch`` merged in, validated.

    JSON merge semantics: ``null`` puts a knob back to its default. Raises :class:`ConfigError`.

    >>> merge_config({"latency_ms": 50})["latency_ms"]
    50
    >>> merge_config({"fail": "http_503"}, merge_config({"latency_ms": 50}))["latency_ms"]
    50
    >>> merge_config({"fail": "sometimes"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    simulators.payee.state.ConfigError: fail must be null or one of ('http_500', ...)
    """
    result = copy.deepcopy(dict(base) if base is not None else DEFAULT_CONFIG)
    for key, value in patch.items():
        if key not in DEFAULT_CONFIG:
            raise ConfigError(f"unknown config key {key!r}")
        if value is None:
            result[key] = copy.deepcopy(DEFAULT_CONFIG[key])
        elif key == "fail":
            if value not in FAIL_MODES:
                raise ConfigError(f"fail must be null or one of {FAIL_MODES}")
            result[key] = value
        else:
            result[key] = _number(key, value)
    return result


def _new_stats() -> dict[str, Any]:
    return {"calls": 0, "results": Counter(), "failures": Counter(), "rejected": 0,
            "max_in_flight": 0}


@dataclass
class SimulatorState:
    """Knobs, demo accounts and counters of one simulator app (thread-safe)."""

    config: dict[str, Any]
    accounts: dict[str, Account]
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    stats: dict[str, Any] = field(default_factory=_new_stats)

    def get_config(self) -> dict[str, Any]:
        """Return the current knobs (the dict is replaced, never changed, on update)."""
        with self.lock:
            return self.config

    def patch_config(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``patch`` into the knobs (see :func:`merge_config`) and return them."""
        with self.lock:
            self.config = merge_config(patch, self.config)
            return copy.deepcopy(self.config)

    def enter(self) -> None:
        """Count one request in flight."""
        with self.lock:
            self.stats["calls"] += 1
            self.in_flight += 1
            self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self.in_flight)

    def leave(self) -> None:
        """The request in flight is answered."""
        with self.lock:
            self.in_flight -= 1

    def count(self, kind: str, name: str | None = None) -> None:
        """Count an outcome: ``result`` (MTCH...), ``failure`` (a fail mode) or ``rejected``."""
        with self.lock:
            if kind == "rejected":
                self.stats["rejected"] += 1
            else:
                self.stats["results" if kind == "result" else "failures"][name] += 1

    def stats_snapshot(self) -> dict[str, Any]:
        """Return the statistics as JSON-ready data."""
        with self.lock:
            s = self.stats
            return {"calls": s["calls"], "results": dict(s["results"]),
                    "failures": dict(s["failures"]), "rejected": s["rejected"],
                    "in_flight": self.in_flight, "max_in_flight": s["max_in_flight"]}

    def reset_stats(self) -> None:
        """Zero the statistics (requests in flight stay counted as in flight)."""
        with self.lock:
            self.stats = _new_stats()
            self.stats["max_in_flight"] = self.in_flight
