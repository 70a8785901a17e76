"""Behaviour knobs and run-time state of the registers simulator (rate windows, statistics).

One :class:`SimulatorState` lives in ``app.extensions["registers_simulator"]``. Rate windows are
counted per process under a :class:`threading.Lock`, so the simulator must run as one process
(with threads) for ``rate_limit`` to hold.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The registers served, by the name used in knobs and statistics.
SOURCES = ("gleif", "recherche_entreprises", "brreg", "companies_house", "cvr", "ares", "krs")
#: Knobs that apply to every register and can be overridden per register.
KNOBS = ("latency_ms", "fail", "rate_limit", "retry_after_s")

#: The knobs and their defaults.
DEFAULT_CONFIG: dict[str, Any] = {
    "latency_ms": 0,
    "fail": None,
    "rate_limit": None,
    "retry_after_s": None,
    "sources": {},
}


class ConfigError(ValueError):
    """A knob has an unknown name or an unacceptable value."""


def _knob(key: str, value: Any) -> Any:
    """Validate one knob's value (never ``None``: that is handled by the caller)."""
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number")
    if key == "latency_ms":
        if not isinstance(value, (int, float)) or value < 0:
            raise ConfigError("latency_ms must be a number >= 0")
    elif key == "fail":
        if value not in (500, 503):
            raise ConfigError("fail must be 500, 503 or null")
    elif key == "rate_limit":
        if not isinstance(value, int) or value < 0:
            raise ConfigError("rate_limit must be an integer >= 0 (requests per second) or null")
    elif key == "retry_after_s":
        if not isinstance(value, int) or value < 0:
            raise ConfigError("retry_after_s must be an integer >= 0 or null")
    return value


def merge_config(patch: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return ``base`` (default: the defaults) with ``patch`` merged in, validated.

    JSON merge semantics: ``null`` puts a knob back to its default; ``sources`` merges register
    by register and knob by knob (a ``null`` removes that override). Raises
    :class:`ConfigError`.

    >>> merge_config({"fail": 503, "sources": {"gleif": {"latency_ms": 50}}})["sources"]
    {'gleif': {'latency_ms': 50}}
    """
    result = copy.deepcopy(dict(base) if base is not None else DEFAULT_CONFIG)
    for key, value in patch.items():
        if key not in DEFAULT_CONFIG:
            raise ConfigError(f"unknown config key {key!r}")
        if value is None:
            result[key] = copy.deepcopy(DEFAULT_CONFIG[key])
        elif key == "sources":
            if not isinstance(value, dict):
                raise ConfigError("sources must be an object {register: {knob: value}}")
            sources = copy.deepcopy(result["sources"])
            for source, knobs in value.items():
                if source not in SOURCES:
                    raise ConfigError(f"unknown register {source!r}; one of {', '.join(SOURCES)}")
                if knobs is None:
                    sources.pop(source, None)
                    continue
                if not isinstance(knobs, dict):
                    raise ConfigError(f"sources[{source!r}] must be an object")
                merged = dict(sources.get(source, {}))
                for knob, knob_value in knobs.items():
                    if knob not in KNOBS:
                        raise ConfigError(f"sources[{source!r}]: unknown knob {knob!r}")
                    if knob_value is None:
                        merged.pop(knob, None)
                    else:
                        merged[knob] = _knob(knob, knob_value)
                if merged:
                    sources[source] = merged
                else:
                    sources.pop(source, None)
            result["sources"] = sources
        else:
            result[key] = _knob(key, value)
    return result


def _new_stats() -> dict[str, Any]:
    return {"calls": 0, "by_source": Counter(), "by_status": {s: Counter() for s in SOURCES}}


@dataclass
class SimulatorState:
    """Knobs, demo records and counters of one simulator app (thread-safe)."""

    config: dict[str, Any]
    records: dict[str, dict[str, dict[str, Any]]]
    credentials: dict[str, str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    windows: dict[str, deque[float]] = field(default_factory=dict)
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

    def knobs(self, source: str) -> dict[str, Any]:
        """The knobs in force for ``source``: its overrides over the global ones."""
        config = self.get_config()
        overrides = config["sources"].get(source, {})
        return {knob: overrides.get(knob, config[knob]) for knob in KNOBS}

    def count_call(self, source: str) -> None:
        """Count one request to ``source``."""
        with self.lock:
            self.stats["calls"] += 1
            self.stats["by_source"][source] += 1

    def count_status(self, source: str, status: int) -> None:
        """Count one answer of ``source`` by HTTP status."""
        with self.lock:
            self.stats["by_status"][source][str(status)] += 1

    def admit(self, source: str, limit: int) -> float | None:
        """Take a place in ``source``'s one-second window; return None when admitted, else the
        seconds until a place frees (at least 1, as ``Retry-After`` counts whole seconds)."""
        now = time.monotonic()
        with self.lock:
            window = self.windows.setdefault(source, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                wait = 1.0 - (now - window[0]) if window else 1.0
                return float(max(1, math.ceil(wait)))
            window.append(now)
            return None

    def stats_snapshot(self) -> dict[str, Any]:
        """Return the statistics as JSON-ready data."""
        with self.lock:
            by_status = {s: dict(c) for s, c in self.stats["by_status"].items() if c}
            return {
                "calls": self.stats["calls"],
                "by_source": dict(self.stats["by_source"]),
                "by_status": by_status,
                "throttled": {s: c["429"] for s, c in by_status.items() if c.get("429")},
                "failed": {s: sum(n for k, n in c.items() if k.startswith("5"))
                           for s, c in by_status.items()
                           if any(k.startswith("5") for k in c)},
            }

    def reset_stats(self) -> None:
        """Zero the statistics and the rate windows."""
        with self.lock:
            self.stats = _new_stats()
            self.windows = {}
