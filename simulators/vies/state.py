"""Behaviour knobs and run-time state of the VIES simulator (concurrency counts, statistics).

One :class:`SimulatorState` lives in ``app.extensions["vies_simulator"]``. Concurrency is
counted per process under a :class:`threading.Lock`, so the simulator must run as one process
(with threads) for the limits to hold.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .register import COUNTRY_CODE_RE, TRADER_KEYS, Trader, vat_key

#: The knobs and their defaults.
DEFAULT_CONFIG: dict[str, Any] = {
    "latency_ms": 0,
    "ms_limits": {},
    "global_limit": None,
    "fault_http_status": 500,
    "slow_seconds": 30.0,
    "overrides": {},
    "down": [],
    "front_ends_down": [],
}
#: The front ends the ``front_ends_down`` knob can take down.
FRONT_ENDS = ("soap", "rest")


class ConfigError(ValueError):
    """A knob has an unknown name or an unacceptable value."""


def _number(key: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{key} must be a number >= 0")
    return value


def _limit(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be an integer >= 1")
    return value


def _country(key: str, value: Any) -> str:
    if not isinstance(value, str) or COUNTRY_CODE_RE.fullmatch(value.strip().upper()) is None:
        raise ConfigError(f"{key}: {value!r} is not a two-letter country code")
    return value.strip().upper()


def _override(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"overrides[{key!r}] must be an object")
    if "fault" in value:
        if set(value) != {"fault"} or not isinstance(value["fault"], str) or not value["fault"]:
            raise ConfigError(f'overrides[{key!r}]: a fault override is {{"fault": "CODE"}}')
        return {"fault": value["fault"]}
    unknown = set(value) - TRADER_KEYS
    if unknown:
        raise ConfigError(f"overrides[{key!r}]: unknown keys {sorted(unknown)}")
    try:
        trader = Trader.from_record(value)
    except ValueError as exc:
        raise ConfigError(f"overrides[{key!r}]: {exc}") from exc
    return {
        "valid": trader.valid,
        "name": trader.name,
        "address": trader.address,
        "company_type": trader.company_type,
        "street": trader.street,
        "postcode": trader.postcode,
        "city": trader.city,
        "matching": trader.matching,
    }


def merge_config(patch: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return ``base`` (default: the defaults) with ``patch`` merged in, validated.

    JSON merge semantics: ``null`` puts a knob back to its default; ``ms_limits`` and
    ``overrides`` merge key by key (a ``null`` value removes that key); the other knobs are
    replaced. Raises :class:`ConfigError`.
    """
    result = copy.deepcopy(dict(base) if base is not None else DEFAULT_CONFIG)
    for key, value in patch.items():
        if key not in DEFAULT_CONFIG:
            raise ConfigError(f"unknown config key {key!r}")
        if value is None:
            result[key] = copy.deepcopy(DEFAULT_CONFIG[key])
        elif key in ("latency_ms", "slow_seconds"):
            result[key] = _number(key, value)
        elif key == "global_limit":
            result[key] = _limit(key, value)
        elif key == "fault_http_status":
            if value not in (200, 500) or isinstance(value, bool):
                raise ConfigError("fault_http_status must be 500 or 200")
            result[key] = value
        elif key == "front_ends_down":
            if not isinstance(value, list) or not set(value) <= set(FRONT_ENDS):
                raise ConfigError("front_ends_down must be a list of 'soap' and 'rest'")
            result[key] = sorted(set(value))
        elif key == "down":
            if not isinstance(value, list):
                raise ConfigError("down must be a list of country codes")
            result[key] = sorted({_country("down", item) for item in value})
        elif key == "ms_limits":
            if not isinstance(value, dict):
                raise ConfigError("ms_limits must be an object {country: limit}")
            limits = dict(result[key])
            for country, limit in value.items():
                code = _country("ms_limits", country)
                if limit is None:
                    limits.pop(code, None)
                else:
                    limits[code] = _limit(f"ms_limits[{code}]", limit)
            result[key] = limits
        else:  # overrides
            if not isinstance(value, dict):
                raise ConfigError("overrides must be an object {CCNUMBER: record}")
            overrides = dict(result[key])
            for number, record in value.items():
                if not isinstance(number, str) or len(vat_key(number[:2], number[2:])) < 3:
                    raise ConfigError(f"overrides: {number!r} is not a CCNUMBER key")
                normalized = vat_key(number[:2], number[2:])
                if record is None:
                    overrides.pop(normalized, None)
                else:
                    overrides[normalized] = _override(normalized, record)
            result[key] = overrides
    return result


def _new_stats() -> dict[str, Any]:
    return {
        "calls": 0,
        "by_country": Counter(),
        "by_operation": Counter(),
        "max_in_flight": {},
        "max_in_flight_global": 0,
        "faults": Counter(),
        "anomalies": Counter(),
    }


@dataclass
class SimulatorState:
    """Knobs, demo register and counters of one simulator app (thread-safe)."""

    config: dict[str, Any]
    traders: dict[str, Trader]
    wsdl_path: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: Counter[str] = field(default_factory=Counter)
    in_flight_global: int = 0
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

    def count_call(self, operation: str | None, country: str | None) -> None:
        """Count one SOAP or REST call (``None`` for the parts a malformed request lacks)."""
        with self.lock:
            self.stats["calls"] += 1
            if operation:
                self.stats["by_operation"][operation] += 1
            if country:
                self.stats["by_country"][country] += 1

    def count_fault(self, code: str) -> None:
        """Count one SOAP fault sent, by faultstring."""
        with self.lock:
            self.stats["faults"][code] += 1

    def count_anomaly(self, kind: str) -> None:
        """Count one answer outside SOAP (``unparsable_xml``, ``http_503``)."""
        with self.lock:
            self.stats["anomalies"][kind] += 1

    def acquire(self, country: str) -> str | None:
        """Take an in-flight slot for ``country``.

        Returns ``None`` when taken (call :meth:`release` afterwards), or the fault code when a
        limit is reached: ``GLOBAL_MAX_CONCURRENT_REQ`` or ``MS_MAX_CONCURRENT_REQ``.
        """
        with self.lock:
            global_limit = self.config["global_limit"]
            if global_limit is not None and self.in_flight_global >= global_limit:
                return "GLOBAL_MAX_CONCURRENT_REQ"
            ms_limit = self.config["ms_limits"].get(country)
            if ms_limit is not None and self.in_flight[country] >= ms_limit:
                return "MS_MAX_CONCURRENT_REQ"
            self.in_flight[country] += 1
            self.in_flight_global += 1
            peaks = self.stats["max_in_flight"]
            peaks[country] = max(peaks.get(country, 0), self.in_flight[country])
            self.stats["max_in_flight_global"] = max(
                self.stats["max_in_flight_global"], self.in_flight_global
            )
            return None

    def release(self, country: str) -> None:
        """Give back the in-flight slot taken by :meth:`acquire`."""
        with self.lock:
            self.in_flight[country] -= 1
            if self.in_flight[country] <= 0:
                del self.in_flight[country]
            self.in_flight_global -= 1

    def stats_snapshot(self) -> dict[str, Any]:
        """Return the statistics as JSON-ready data."""
        with self.lock:
            stats = self.stats
            return {
                "calls": stats["calls"],
                "by_country": dict(stats["by_country"]),
                "by_operation": dict(stats["by_operation"]),
                "max_in_flight": dict(stats["max_in_flight"]),
                "max_in_flight_global": stats["max_in_flight_global"],
                "in_flight": dict(self.in_flight),
                "faults": dict(stats["faults"]),
                "anomalies": dict(stats["anomalies"]),
            }

    def reset_stats(self) -> None:
        """Zero the statistics (requests in flight keep counting toward the limits)."""
        with self.lock:
            self.stats = _new_stats()
            self.stats["max_in_flight"] = dict(self.in_flight)
            self.stats["max_in_flight_global"] = self.in_flight_global
