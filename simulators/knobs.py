"""Knobs, counters and the app of a small simulator (the HMRC and UID register simulators).

:class:`KnobState` holds the knobs (validated by a function of the simulator), counts calls by
operation and answers by HTTP status, and keeps a sliding window per key for rate limits. It
is what :func:`simulators.control.control_blueprint` drives (``/_sim/config``, ``/_sim/stats``,
``/_sim/reset``). Counts are per process: run the simulator as one process with threads.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from simulators.control import control_blueprint


class ConfigError(ValueError):
    """A knob has an unknown name or an unacceptable value."""


def number(key: str, value: Any) -> float:
    """A knob that is a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{key} must be a number >= 0")
    return value


def one_of(*choices: Any) -> Callable[[str, Any], Any]:
    """A knob that takes one of ``choices``."""
    def check(key: str, value: Any) -> Any:
        if value not in choices or isinstance(value, bool):
            raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))} or null")
        return value
    return check


def positive_int(key: str, value: Any) -> int:
    """A knob that is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} must be an integer >= 0")
    return value


def merge(defaults: Mapping[str, Any], checks: Mapping[str, Callable[[str, Any], Any]],
          patch: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (default: ``defaults``) with ``patch`` merged in: ``null`` restores a knob's
    default, every other value goes through its check. Raises :class:`ConfigError`."""
    result: dict[str, Any] = copy.deepcopy(dict(base if base is not None else defaults))
    for key, value in patch.items():
        if key not in defaults:
            raise ConfigError(f"unknown config key {key!r}")
        result[key] = copy.deepcopy(defaults[key]) if value is None else checks[key](key, value)
    return result


@dataclass
class KnobState:
    """Knobs, counters and rate windows of one simulator app (thread-safe)."""

    defaults: Mapping[str, Any]
    checks: Mapping[str, Callable[[str, Any], Any]]
    config: dict[str, Any]
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    windows: dict[str, deque[float]] = field(default_factory=dict)

    def get_config(self) -> dict[str, Any]:
        """The current knobs (the dict is replaced, never changed, on update)."""
        with self.lock:
            return self.config

    def patch_config(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``patch`` into the knobs and return them."""
        with self.lock:
            self.config = merge(self.defaults, self.checks, patch, self.config)
            return copy.deepcopy(self.config)

    def count_call(self, operation: str) -> None:
        with self.lock:
            self.calls[operation] += 1

    def count_status(self, status: int) -> None:
        with self.lock:
            self.statuses[str(status)] += 1

    def admit(self, key: str, limit: int, period_s: float) -> float | None:
        """Take a place in ``key``'s window of ``period_s``; None when admitted, else the
        seconds until a place frees (at least 1)."""
        now = time.monotonic()
        with self.lock:
            window = self.windows.setdefault(key, deque())
            while window and window[0] <= now - period_s:
                window.popleft()
            if len(window) >= limit:
                return max(1.0, period_s - (now - window[0])) if window else period_s
            window.append(now)
            return None

    def stats_snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"calls": sum(self.calls.values()), "by_operation": dict(self.calls),
                    "by_status": dict(self.statuses)}

    def reset_stats(self) -> None:
        """Zero the counters and the rate windows."""
        with self.lock:
            self.calls = Counter()
            self.statuses = Counter()
            self.windows = {}


def from_env(environ: Mapping[str, str], prefix: str,
             parsers: Mapping[str, Callable[[str], Any]]) -> dict[str, Any]:
    """The knobs set in the environment, ``{prefix}{KNOB}`` each, read by its parser.

    >>> from_env({"SIM_FAIL": "429", "SIM_LATENCY_MS": ""}, "SIM_",
    ...          {"latency_ms": float, "fail": int})
    {'fail': 429}
    """
    return {name: parse(environ[prefix + name.upper()]) for name, parse in parsers.items()
            if environ.get(prefix + name.upper())}


def simulator_app(import_name: str, name: str, bp: Blueprint, state: KnobState,
                  max_content_length: int) -> Flask:
    """A small simulator's app: ``bp`` (its protocol), ``state`` in ``extensions[name]``, the
    ``/_sim/*`` controls, and every answer outside them counted by status."""
    app = Flask(import_name)
    app.config["MAX_CONTENT_LENGTH"] = max_content_length
    app.extensions[name] = state

    @app.after_request
    def count(response: Response) -> Response:
        if not request.path.startswith("/_sim/"):
            counted: KnobState = current_app.extensions[name]
            counted.count_status(response.status_code)
        return response

    app.register_blueprint(bp)
    app.register_blueprint(control_blueprint(name + "_control", name))
    return app
